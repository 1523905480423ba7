//! Base64 (RFC 4648 §4) and its URL-safe form (§5).
