//! The logger: stderr or syslog, and the access line.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

/// One answered request, for its access line.
pub struct Access<'a> {
    pub peer: IpAddr,
    pub user: Option<&'a str>,
    pub time: SystemTime,
    pub method: &'a [u8],
    pub target: &'a [u8],
    pub http10: bool,
    pub status: u16,
    pub bytes: u64,
    pub referer: Option<&'a [u8]>,
    pub user_agent: Option<&'a [u8]>,
    pub range: Option<&'a [u8]>,
    pub duration: Duration,
}

/// Appends `bytes` escaped for a log line.
pub fn escape_into(out: &mut String, bytes: &[u8]) {
    for &b in bytes {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02X}")),
        }
    }
}

pub fn log_access(a: &Access<'_>) {
    let mut line = String::new();
    line.push_str(&a.peer.to_string());
    line.push_str(" - ");
    line.push_str(a.user.unwrap_or("-"));
    line.push_str(" \"");
    escape_into(&mut line, a.method);
    line.push(' ');
    escape_into(&mut line, a.target);
    line.push_str(if a.http10 {
        " HTTP/1.0\" "
    } else {
        " HTTP/1.1\" "
    });
    line.push_str(&format!("{} {} \"", a.status, a.bytes));
    escape_into(&mut line, a.range.unwrap_or(b"-"));
    line.push_str(&format!("\" {}ms", a.duration.as_millis()));
    let _ = (a.time, a.referer, a.user_agent);
    log::info!(target: "access", "{line}");
}
