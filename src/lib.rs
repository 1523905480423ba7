//! ranged: a small, uncrashable HTTP/1.1 file server built for resumable downloads.
//!
//! The crate is split into a pure core (parsing and deciding, no I/O), a thin
//! file-system layer (`serve`), and a connection layer (`engine`) that owns the
//! sockets. `message` is the only thing the core and the engine share, besides
//! `sys`, the few system calls std lacks.

#![deny(unsafe_code)]

pub mod app;
pub mod auth;
pub mod base64;
pub mod conditional;
pub mod config;
pub mod digest;
pub mod engine;
pub mod fs_path;
pub mod hex;
pub mod listing;
pub mod logging;
pub mod message;
pub mod mime;
pub mod multipart;
pub mod open_cache;
pub mod privileges;
pub mod random;
pub mod range;
pub mod run;
pub mod serve;
mod sys;
#[doc(hidden)]
pub mod testing;
pub mod upload;
pub mod validators;
