//! Validators of a file: the strong `ETag` and the `Last-Modified` date, plus the
//! guarded HTTP-date formatting and parsing both need (RFC 9110 §8.8, §5.6.7).

use std::time::SystemTime;

/// A strong entity-tag (with its quotes) from the file's size, mtime (seconds and
/// nanoseconds, which may be negative seconds for dates before 1970) and inode.
pub fn etag(len: u64, mtime_sec: i64, mtime_nsec: i64, ino: u64) -> String {
    let _ = (len, mtime_sec, mtime_nsec, ino);
    todo!()
}

/// Last-Modified for an mtime: truncated to whole seconds, `None` outside the
/// range an IMF-fixdate can carry.
pub fn last_modified(mtime_sec: i64) -> Option<SystemTime> {
    let _ = mtime_sec;
    todo!()
}

/// IMF-fixdate for `t`, `None` instead of a panic outside 1970..=9999.
pub fn fmt_http_date(t: SystemTime) -> Option<String> {
    let _ = t;
    todo!()
}

/// Any of the three HTTP-date formats (RFC 9110 §5.6.7); `None` if invalid.
pub fn parse_http_date(s: &str) -> Option<SystemTime> {
    let _ = s;
    todo!()
}
