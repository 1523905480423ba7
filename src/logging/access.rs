//! The access line: one Combined Log Format line per request, so that
//! goaccess, awstats, fail2ban and `awk` one-liners read it as they read
//! Apache's and nginx's, with two fields of ours after the standard nine.
//!
//! ```text
//! %h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i" "range" duration
//! 127.0.0.1 - alice [27/Nov/2026:14:20:05 +0000] "GET /a%20b.iso HTTP/1.1" 206 1048576 "-" "curl/7.88.1" "bytes=0-1048575" 3ms
//! ```
//!
//! Everything a client chose is escaped before it is written, so that no
//! request can forge a field or a line (see [`push_escaped`]), and the values
//! of secret query parameters never reach the log (see [`SECRET_PARAMS`]).

use super::time::push_clf;
use crate::hex;
use std::fmt::Write;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

/// What the access line says about one request. Byte fields are the raw
/// bytes from the request head; `format_access` escapes them.
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    /// The client. An IPv4-mapped IPv6 address (`::ffff:10.0.0.2`, what a
    /// dual-stack listener sees) is written as the IPv4 address it is.
    pub peer: IpAddr,
    /// The authenticated user name, never a password; `None` for anonymous.
    pub user: Option<&'a str>,
    /// When the request head arrived.
    pub time: SystemTime,
    /// Empty when the request line could not be parsed: `%r` is then `-`,
    /// as Apache logs a 400 for garbage.
    pub method: &'a [u8],
    pub target: &'a [u8],
    pub http10: bool,
    pub status: u16,
    /// Body bytes sent, headers excluded (Apache's `%b`).
    pub bytes: u64,
    pub referer: Option<&'a [u8]>,
    pub user_agent: Option<&'a [u8]>,
    pub range: Option<&'a [u8]>,
    pub duration: Duration,
}

/// Query parameters whose values are secrets: capability and upload tokens
/// (`?token=`, `?key=`) and OAuth bearer tokens (`access_token`, RFC 6750
/// §2.3). Matched by name, ASCII case-insensitively, after percent-decoding
/// the name, so `?%74oken=` is redacted too.
pub const SECRET_PARAMS: &[&str] = &["token", "key", "access_token"];

/// What a secret parameter's value is replaced with.
const REDACTED: &str = "[redacted]";

/// Appends the access line for `a` to `out`, without a line break.
///
/// - `%b` is `-` for a body of 0 bytes, as Apache's `%b` (the Combined Log
///   Format's own definition); goaccess's `COMBINED` reads `-` as 0.
/// - An absent or empty Referer, User-Agent or Range is `"-"`.
/// - The target and the Referer have secret query values replaced by
///   `[redacted]`.
pub fn format_access(a: &Access, out: &mut String) {
    let _ = write!(out, "{} - ", a.peer.to_canonical());
    match a.user {
        Some(u) if !u.is_empty() => push_escaped(out, u.as_bytes(), true),
        _ => out.push('-'),
    }
    out.push_str(" [");
    push_clf(out, a.time);
    out.push_str("] \"");
    if a.method.is_empty() {
        out.push('-');
    } else {
        push_escaped(out, a.method, false);
        out.push(' ');
        push_url(out, a.target);
        out.push_str(if a.http10 { " HTTP/1.0" } else { " HTTP/1.1" });
    }
    let _ = write!(out, "\" {} ", a.status);
    if a.bytes == 0 {
        out.push('-');
    } else {
        let _ = write!(out, "{}", a.bytes);
    }
    out.push_str(" \"");
    match a.referer {
        Some(r) if !r.is_empty() => push_url(out, r),
        _ => out.push('-'),
    }
    for field in [a.user_agent, a.range] {
        out.push_str("\" \"");
        match field {
            Some(v) if !v.is_empty() => push_escaped(out, v, false),
            _ => out.push('-'),
        }
    }
    let _ = write!(out, "\" {}ms", a.duration.as_millis());
}

/// Appends `bytes` so that the line stays one printable-ASCII line and a
/// quoted field cannot be closed from inside: `"` → `\"` and `\` → `\\`
/// (Apache's `ap_escape_logitem`, which goaccess unescapes), every other
/// byte below 0x20, 0x7f and every byte from 0x80 → `\xHH` (nginx's
/// `escape=default`). UTF-8 is therefore logged as its bytes (`é` →
/// `\xC3\xA9`), and invalid UTF-8 the same way: nothing is lost, nothing
/// is guessed. With `space`, a space becomes `\x20` too: the user field is
/// not quoted, and a space in it would shift every later field.
pub fn push_escaped(out: &mut String, bytes: &[u8], space: bool) {
    for &b in bytes {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b' ' if space => out.push_str("\\x20"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\x{b:02X}");
            }
        }
    }
}

/// Appends a request target or a Referer URL, escaped, with the values of
/// [`SECRET_PARAMS`] in its query replaced: `/up/?token=abc&x=1` →
/// `/up/?token=[redacted]&x=1`. Parameters are split at `&` and at `;` (the
/// old HTML 4 separator some parsers still honour), so no reading of the
/// query finds a secret left in place.
pub fn push_url(out: &mut String, url: &[u8]) {
    let Some(q) = url.iter().position(|&b| b == b'?') else {
        push_escaped(out, url, false);
        return;
    };
    push_escaped(out, &url[..=q], false);
    let mut rest = &url[q + 1..];
    loop {
        let end = rest
            .iter()
            .position(|&b| b == b'&' || b == b';')
            .unwrap_or(rest.len());
        let param = &rest[..end];
        match param.iter().position(|&b| b == b'=') {
            Some(eq) if is_secret(&param[..eq]) => {
                push_escaped(out, &param[..=eq], false);
                out.push_str(REDACTED);
            }
            _ => push_escaped(out, param, false),
        }
        match rest.get(end) {
            Some(&sep) => {
                out.push(char::from(sep));
                rest = &rest[end + 1..];
            }
            None => return,
        }
    }
}

/// Whether a query parameter name, percent-decoded, is one of
/// [`SECRET_PARAMS`] (ASCII case-insensitively).
fn is_secret(name: &[u8]) -> bool {
    // The longest secret name is 12 bytes; a longer decoded name is none.
    let mut buf = [0u8; 12];
    let mut len = 0;
    let mut i = 0;
    while i < name.len() {
        let b = match (name[i], name.get(i + 1..i + 3)) {
            (b'%', Some(&[h, l])) if let (Some(h), Some(l)) = (hex::digit(h), hex::digit(l)) => {
                i += 3;
                h << 4 | l
            }
            (b, _) => {
                i += 1;
                b
            }
        };
        let Some(slot) = buf.get_mut(len) else {
            return false;
        };
        *slot = b;
        len += 1;
    }
    SECRET_PARAMS
        .iter()
        .any(|s| s.as_bytes().eq_ignore_ascii_case(&buf[..len]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::time::UNIX_EPOCH;

    /// 2026-11-27T14:20:05Z.
    fn nov27() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_795_789_205)
    }

    fn base() -> Access<'static> {
        Access {
            peer: IpAddr::V4(Ipv4Addr::LOCALHOST),
            user: None,
            time: nov27(),
            method: b"GET",
            target: b"/",
            http10: false,
            status: 200,
            bytes: 5,
            referer: None,
            user_agent: None,
            range: None,
            duration: Duration::from_millis(0),
        }
    }

    fn line(a: &Access) -> String {
        let mut s = String::new();
        format_access(a, &mut s);
        s
    }

    #[test]
    fn whole_lines() {
        let full = Access {
            user: Some("alice"),
            target: b"/a%20b.iso",
            status: 206,
            bytes: 1_048_576,
            user_agent: Some(b"curl/7.88.1"),
            range: Some(b"bytes=0-1048575"),
            duration: Duration::from_micros(3_900),
            ..base()
        };
        let cases: &[(Access, &str)] = &[
            (
                full,
                r#"127.0.0.1 - alice [27/Nov/2026:14:20:05 +0000] "GET /a%20b.iso HTTP/1.1" 206 1048576 "-" "curl/7.88.1" "bytes=0-1048575" 3ms"#,
            ),
            (
                base(),
                r#"127.0.0.1 - - [27/Nov/2026:14:20:05 +0000] "GET / HTTP/1.1" 200 5 "-" "-" "-" 0ms"#,
            ),
            // An unparsable request line; no body.
            (
                Access {
                    method: b"",
                    target: b"",
                    status: 400,
                    bytes: 0,
                    ..base()
                },
                r#"127.0.0.1 - - [27/Nov/2026:14:20:05 +0000] "-" 400 - "-" "-" "-" 0ms"#,
            ),
            (
                Access {
                    peer: IpAddr::V6(Ipv6Addr::LOCALHOST),
                    method: b"HEAD",
                    http10: true,
                    referer: Some(b"http://lan/list/"),
                    duration: Duration::from_secs(2),
                    ..base()
                },
                r#"::1 - - [27/Nov/2026:14:20:05 +0000] "HEAD / HTTP/1.0" 200 5 "http://lan/list/" "-" "-" 2000ms"#,
            ),
            // A dual-stack listener's view of an IPv4 client.
            (
                Access {
                    peer: IpAddr::V6(Ipv4Addr::new(10, 0, 0, 2).to_ipv6_mapped()),
                    ..base()
                },
                r#"10.0.0.2 - - [27/Nov/2026:14:20:05 +0000] "GET / HTTP/1.1" 200 5 "-" "-" "-" 0ms"#,
            ),
            // Present but empty headers and user are "-", never an empty field.
            (
                Access {
                    user: Some(""),
                    referer: Some(b""),
                    user_agent: Some(b""),
                    range: Some(b""),
                    ..base()
                },
                r#"127.0.0.1 - - [27/Nov/2026:14:20:05 +0000] "GET / HTTP/1.1" 200 5 "-" "-" "-" 0ms"#,
            ),
            (
                Access {
                    bytes: u64::MAX,
                    status: 599,
                    ..base()
                },
                r#"127.0.0.1 - - [27/Nov/2026:14:20:05 +0000] "GET / HTTP/1.1" 599 18446744073709551615 "-" "-" "-" 0ms"#,
            ),
        ];
        for (a, want) in cases {
            assert_eq!(line(a), *want);
        }
    }

    #[test]
    fn client_fields_cannot_forge_fields_or_lines() {
        const CASES: &[(&[u8], &str)] = &[
            (b"curl/7.88.1", "curl/7.88.1"),
            (b"Mozilla/5.0 (X11; Linux)", "Mozilla/5.0 (X11; Linux)"),
            (br#"bytes=0-1" 200 9 "x"#, r#"bytes=0-1\" 200 9 \"x"#),
            (br"a\b", r"a\\b"),
            (br#"\""#, r#"\\\""#),
            (
                b"a\r\n127.0.0.1 - - [x] \"GET",
                r#"a\x0D\x0A127.0.0.1 - - [x] \"GET"#,
            ),
            (b"tab\there", r"tab\x09here"),
            (b"\x00\x1f\x7f", r"\x00\x1F\x7F"),
            (
                "caf\u{e9} \u{1f600}".as_bytes(),
                r"caf\xC3\xA9 \xF0\x9F\x98\x80",
            ),
            (b"bad \xff\xc3(", r"bad \xFF\xC3("),
            (b"", ""),
        ];
        for &(raw, want) in CASES {
            let mut s = String::new();
            push_escaped(&mut s, raw, false);
            assert_eq!(s, want, "{raw:?}");
            let whole = line(&Access {
                user_agent: Some(raw),
                range: Some(raw),
                ..base()
            });
            assert!(whole.bytes().all(|b| (0x20..0x7f).contains(&b)), "{whole}");
            // Nine standard fields and two of ours, whatever the client sent:
            // counting only unescaped quotes, there are exactly eight.
            assert_eq!(unescaped_quotes(&whole), 8, "{whole}");
        }
    }

    fn unescaped_quotes(s: &str) -> usize {
        let (mut n, mut esc) = (0, false);
        for c in s.chars() {
            match (esc, c) {
                (true, _) => esc = false,
                (false, '\\') => esc = true,
                (false, '"') => n += 1,
                _ => {}
            }
        }
        n
    }

    #[test]
    fn user_names_are_escaped_and_keep_the_field_count() {
        const CASES: &[(&str, &str)] = &[
            ("alice", "alice"),
            ("bob smith", r"bob\x20smith"),
            ("\u{e9}ve", r"\xC3\xA9ve"),
            ("q\"x", r#"q\"x"#),
            (
                "[01/Jan/1970:00:00:00 +0000]",
                r"[01/Jan/1970:00:00:00\x20+0000]",
            ),
        ];
        for &(user, want) in CASES {
            let l = line(&Access {
                user: Some(user),
                ..base()
            });
            let field = l.split(' ').nth(2).unwrap_or("");
            assert_eq!(field, want, "{l}");
            assert_eq!(l.split(' ').nth(3), Some("[27/Nov/2026:14:20:05"), "{l}");
        }
    }

    #[test]
    fn requests_are_escaped_and_secrets_redacted() {
        const CASES: &[(&[u8], &[u8], &str)] = &[
            (b"GET", b"/a%20b.iso", "GET /a%20b.iso"),
            (
                b"GET",
                b"/incoming/?token=s3cr3t",
                "GET /incoming/?token=[redacted]",
            ),
            (
                b"PATCH",
                b"/up/1?key=abc&offset=5",
                "PATCH /up/1?key=[redacted]&offset=5",
            ),
            (
                b"GET",
                b"/f?a=1&TOKEN=x;Key=y&b=2",
                "GET /f?a=1&TOKEN=[redacted];Key=[redacted]&b=2",
            ),
            (
                b"GET",
                b"/f?%74oken=x&%4B%45%59=y",
                "GET /f?%74oken=[redacted]&%4B%45%59=[redacted]",
            ),
            (
                b"GET",
                b"/f?access_token=x",
                "GET /f?access_token=[redacted]",
            ),
            // The value runs to the next separator; a fragment is no end.
            (
                b"GET",
                b"/f?token=a#b\"c&d=1",
                "GET /f?token=[redacted]&d=1",
            ),
            (b"GET", b"/f?token=", "GET /f?token=[redacted]"),
            (
                b"GET",
                b"/f?token=a&token=b",
                "GET /f?token=[redacted]&token=[redacted]",
            ),
            // Names that merely contain a secret name, or have no value.
            (
                b"GET",
                b"/f?tokens=1&mykey=2&token",
                "GET /f?tokens=1&mykey=2&token",
            ),
            (b"GET", b"/f?x=token%3Dy", "GET /f?x=token%3Dy"),
            (b"GET", b"/token=x/key=y", "GET /token=x/key=y"),
            (
                b"GET",
                b"/f?%zzoken=1&%=2&%4=3",
                "GET /f?%zzoken=1&%=2&%4=3",
            ),
            (b"GET", b"/f??token=x", "GET /f??token=x"),
            (b"GET", b"/f?&&;", "GET /f?&&;"),
            // UTF-8 and invalid UTF-8 in the target.
            (b"G\xc3\xa9T", b"/caf\xc3\xa9", r"G\xC3\xA9T /caf\xC3\xA9"),
            (
                b"GET",
                "/\u{65e5}\u{672c}?token=\u{e9}".as_bytes(),
                r"GET /\xE6\x97\xA5\xE6\x9C\xAC?token=[redacted]",
            ),
            (
                b"GET",
                b"/\xff\xfe?q=\xc3&token=\xc3",
                r"GET /\xFF\xFE?q=\xC3&token=[redacted]",
            ),
            (
                b"GET",
                br#"/a" 200 1 "-" "x"#,
                r#"GET /a\" 200 1 \"-\" \"x"#,
            ),
            (b"G\"T", b"/\r\n", r#"G\"T /\x0D\x0A"#),
        ];
        for &(method, target, want) in CASES {
            let l = line(&Access {
                method,
                target,
                ..base()
            });
            let r = l
                .split_once(" \"")
                .and_then(|(_, r)| r.rsplit_once(" HTTP/1.1\" 200 5 "))
                .map(|(r, _)| r);
            assert_eq!(r, Some(want), "{l}");
            assert!(!l.contains("s3cr3t") && l.is_ascii(), "{l}");
        }
    }

    #[test]
    fn the_referer_is_redacted_too() {
        let l = line(&Access {
            referer: Some(b"http://lan/up/?token=abc&x=1"),
            ..base()
        });
        assert!(
            l.contains(r#" "http://lan/up/?token=[redacted]&x=1" "#),
            "{l}"
        );
    }

    #[test]
    fn secret_names() {
        for (name, secret) in [
            (&b"token"[..], true),
            (b"Token", true),
            (b"KEY", true),
            (b"access_token", true),
            (b"access%5Ftoken", true),
            (b"%6b%65%79", true),
            (b"", false),
            (b"tok", false),
            (b"keys", false),
            (b"access_tokens", false),
            (b"%00token", false),
            (b"token%", false),
            (
                b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
                false,
            ),
        ] {
            assert_eq!(is_secret(name), secret, "{name:?}");
        }
    }
}
