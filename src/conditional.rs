//! Conditional requests (RFC 9110 §13): evaluates If-Match, If-Unmodified-Since,
//! If-None-Match, If-Modified-Since and If-Range in the §13.2.2 order. Pure.

use std::time::SystemTime;

/// The conditional header fields of a GET or HEAD request, as sent.
#[derive(Debug, Default, Clone, Copy)]
pub struct Conditions<'a> {
    pub if_match: Option<&'a str>,
    pub if_none_match: Option<&'a str>,
    pub if_modified_since: Option<&'a str>,
    pub if_unmodified_since: Option<&'a str>,
    pub if_range: Option<&'a str>,
}

/// The validators of the representation about to be sent.
#[derive(Debug, Clone, Copy)]
pub struct Validators<'a> {
    /// A strong entity-tag including its quotes, e.g. `"1f-5e0c9d2a3b1c0"`.
    pub etag: &'a str,
    /// Last-Modified truncated to whole seconds; `None` when the file's mtime
    /// cannot be written as an HTTP-date (before 1970, after 9999).
    pub last_modified: Option<SystemTime>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go on; honour the Range header only if `use_range`.
    Proceed { use_range: bool },
    /// 304 Not Modified.
    NotModified,
    /// 412 Precondition Failed.
    PreconditionFailed,
}

pub fn evaluate(c: &Conditions<'_>, v: &Validators<'_>, now: SystemTime) -> Decision {
    let _ = (c, v, now);
    todo!()
}
