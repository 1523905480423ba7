//! Uploads: the crash-safe upload store and the tus 1.0 protocol rules.
//!
//! * [`tus`]: the tus 1.0.0 header grammar and refusals (pure).
//! * [`store`]: uploads on disk, protocol-neutral: creation, appending with
//!   durable offsets, recovery after a crash, expiry, publishing into the
//!   served tree by an atomic rename, and whole-file PUT staging.

pub mod http;
mod meta;
pub mod store;
pub mod tus;
