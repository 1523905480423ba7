//! Uploads: the crash-safe upload store and the tus 1.0 protocol rules.
