//! Request heads (RFC 9112 §2–§3, §6): finding where one ends (`scan`, run on every
//! read by the readiness loop) and parsing it strictly (`parse`, run by the worker
//! that answers it). Pure; every error is the status to answer before closing.

use crate::message::trim_ows_bytes;

/// Longest request line accepted; longer → 414 (RFC 9112 §3 recommends ≥ 8000).
pub const MAX_REQUEST_LINE: usize = 8 * 1024;
/// Longest request head (request line + fields) accepted; longer → 431.
pub const MAX_HEAD: usize = 16 * 1024;
/// Most header fields accepted; more → 431 (RFC 6585 §5).
pub const MAX_HEADERS: usize = 64;

/// Where a buffer stands after new bytes arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    /// No end of head yet, and nothing wrong so far.
    Incomplete,
    /// A head of this many bytes (through the empty line) is complete.
    Complete(usize),
    /// Refuse and close.
    Reject(Refusal),
}

/// A request the engine refuses before any handler sees it: the status to
/// answer before closing, and the reason in words for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: &'static str,
}

const fn refuse(status: u16, reason: &'static str) -> Refusal {
    Refusal { status, reason }
}

const BARE_LF: Refusal = refuse(400, "a line ends in a bare LF");
const LINE_TOO_LONG: Refusal = refuse(414, "the request line is longer than 8 KiB");
const HEAD_TOO_LARGE: Refusal = refuse(431, "the request head is larger than 16 KiB");

/// Scans `buf` for the end of a request head; `from` is where bytes not yet
/// scanned start (so each byte is looked at about once across reads).
///
/// A bare LF anywhere in the head is refused (RFC 9112 §2.2 lets a server accept
/// it, but a front proxy that does not is how request smuggling starts).
pub fn scan(buf: &[u8], from: usize) -> Scan {
    let start = from.min(buf.len());
    for i in start..buf.len() {
        if buf[i] == b'\n' {
            if i == 0 || buf[i - 1] != b'\r' {
                return Scan::Reject(BARE_LF);
            }
            if i >= 3 && &buf[i - 3..=i] == b"\r\n\r\n" {
                let len = i + 1;
                if first_line_too_long(&buf[..len]) {
                    return Scan::Reject(LINE_TOO_LONG);
                }
                return Scan::Complete(len);
            }
        }
    }
    if first_line_too_long(buf) {
        return Scan::Reject(LINE_TOO_LONG);
    }
    if buf.len() >= MAX_HEAD {
        return Scan::Reject(HEAD_TOO_LARGE);
    }
    Scan::Incomplete
}

fn first_line_too_long(buf: &[u8]) -> bool {
    let window = &buf[..buf.len().min(MAX_REQUEST_LINE + 2)];
    match window.iter().position(|&b| b == b'\n') {
        Some(i) => i > MAX_REQUEST_LINE,
        None => buf.len() > MAX_REQUEST_LINE + 1,
    }
}

/// How the request says its body is framed (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(u64),
    Chunked,
}

/// A parsed head, borrowing the read buffer.
#[derive(Debug)]
pub struct Head<'h, 'b> {
    pub method: &'b str,
    pub target: &'b str,
    pub http10: bool,
    pub headers: &'h [httparse::Header<'b>],
    pub framing: Framing,
    /// The client allows the connection to stay open (RFC 9112 §9.3).
    pub keep_alive: bool,
    /// `Expect: 100-continue` on HTTP/1.1 (RFC 9110 §10.1.1).
    pub expect_continue: bool,
}

/// Parses a complete head strictly. `Err`: answer its status and close.
pub fn parse<'h, 'b>(
    buf: &'b [u8],
    headers: &'h mut [httparse::Header<'b>],
) -> Result<Head<'h, 'b>, Refusal> {
    let mut req = httparse::Request::new(headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(refuse(400, "the request head is incomplete")),
        Err(httparse::Error::Version) => return Err(version_error(buf)),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(refuse(431, "the request has more than 64 fields"));
        }
        Err(httparse::Error::HeaderName | httparse::Error::Token) => {
            return Err(refuse(400, "a field name or the method is malformed"));
        }
        Err(httparse::Error::HeaderValue) => {
            return Err(refuse(
                400,
                "a field value holds a control character or is folded",
            ));
        }
        Err(_) => return Err(refuse(400, "the request line is malformed")),
    }
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err(refuse(400, "the request line is malformed"));
    };
    let http10 = version == 0;
    let headers: &'h [httparse::Header<'b>] = req.headers;

    let mut content_length: Option<u64> = None;
    let mut codings: Option<Codings> = None;
    let mut hosts = 0;
    let mut close = false;
    let mut keep_alive_token = false;
    let mut expect_continue = false;
    for h in headers {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            // RFC 9112 §6.3: several or invalid Content-Length values are
            // unrecoverable framing errors. Only 1*DIGIT: no sign, no list.
            if content_length.is_some() {
                return Err(refuse(400, "Content-Length appears twice"));
            }
            content_length =
                Some(parse_digits(h.value).ok_or(refuse(400, "Content-Length is not a number"))?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // Several fields form one list (RFC 9110 §5.3).
            let c = codings.get_or_insert(Codings::default());
            for token in h.value.split(|&b| b == b',').map(trim_ows_bytes) {
                if token.is_empty() {
                    continue;
                }
                c.count += 1;
                c.last_chunked = token.eq_ignore_ascii_case(b"chunked");
                c.chunked += usize::from(c.last_chunked);
            }
        } else if name.eq_ignore_ascii_case("host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',').map(trim_ows_bytes) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case("expect") && !http10 {
            // RFC 9110 §10.1.1: 100-continue is the only expectation defined.
            if trim_ows_bytes(h.value).eq_ignore_ascii_case(b"100-continue") {
                expect_continue = true;
            } else {
                return Err(refuse(417, "an expectation other than 100-continue"));
            }
        }
    }
    // RFC 9112 §3.2: a 1.1 request without exactly one Host is a 400.
    if hosts > 1 {
        return Err(refuse(400, "Host appears twice"));
    }
    if hosts == 0 && !http10 {
        return Err(refuse(400, "an HTTP/1.1 request without Host"));
    }
    let framing = match (content_length, codings) {
        // RFC 9112 §6.1: both present is a smuggling attempt.
        (Some(_), Some(_)) => {
            return Err(refuse(
                400,
                "both Content-Length and Transfer-Encoding (request smuggling)",
            ));
        }
        (None, Some(_)) if http10 => {
            return Err(refuse(400, "Transfer-Encoding in an HTTP/1.0 request"));
        }
        // §6.3: a final coding other than chunked leaves the length
        // unknowable, a MUST 400; chunked twice is forbidden (§7).
        (None, Some(c)) if c.count == 0 || !c.last_chunked || c.chunked > 1 => {
            return Err(refuse(
                400,
                "Transfer-Encoding does not end in exactly one chunked",
            ));
        }
        // §6.1: a coding we do not implement (gzip, chunked) is a 501.
        (None, Some(c)) if c.count > 1 => {
            return Err(refuse(501, "a transfer coding other than chunked"));
        }
        (None, Some(_)) => Framing::Chunked,
        (Some(0), None) | (None, None) => Framing::None,
        (Some(n), None) => Framing::Length(n),
    };
    let keep_alive = !close && (!http10 || keep_alive_token);
    Ok(Head {
        method,
        target,
        http10,
        headers,
        framing,
        keep_alive,
        expect_continue,
    })
}

/// The transfer codings a request lists (RFC 9112 §6.1).
#[derive(Default, Clone, Copy)]
struct Codings {
    count: usize,
    chunked: usize,
    last_chunked: bool,
}

/// 505 for a well-formed request line naming another version (`HTTP/2.0`,
/// RFC 9110 §15.6.6); 400 for a request line that is simply malformed.
fn version_error(buf: &[u8]) -> Refusal {
    let line = buf.split(|&b| b == b'\r').next().unwrap_or(buf);
    let mut parts = line.split(|&b| b == b' ');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None)
            if !m.is_empty()
                && !t.is_empty()
                && v.len() == 8
                && v.starts_with(b"HTTP/")
                && v[5].is_ascii_digit()
                && v[6] == b'.'
                && v[7].is_ascii_digit() =>
        {
            refuse(505, "an HTTP version other than 1.0 and 1.1")
        }
        _ => refuse(400, "the request line is malformed"),
    }
}

/// The method and target of a request line, when it has that shape, for
/// logging a refused request (RFC 9112 §3: `method SP target SP version`).
/// Only the first `MAX_REQUEST_LINE` bytes are looked at.
pub fn request_line(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    let window = &buf[..buf.len().min(MAX_REQUEST_LINE)];
    let end = window
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(window.len());
    let mut parts = window[..end].splitn(3, |&b| b == b' ');
    match (parts.next(), parts.next()) {
        (Some(m), Some(t))
            if !m.is_empty() && !t.is_empty() && m.iter().all(u8::is_ascii_alphabetic) =>
        {
            Some((m, t))
        }
        _ => None,
    }
}

/// `1*DIGIT` as u64; `None` for anything else, including overflow.
fn parse_digits(v: &[u8]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.iter().try_fold(0u64, |acc, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (framing, keep-alive, expect-continue) or the refusing status.
    type Parsed = Result<(Framing, bool, bool), u16>;

    fn parse_str(s: &str) -> Parsed {
        let mut hs = [httparse::EMPTY_HEADER; MAX_HEADERS];
        parse(s.as_bytes(), &mut hs)
            .map(|h| (h.framing, h.keep_alive, h.expect_continue))
            .map_err(|r| r.status)
    }

    fn rejected(status: u16) -> Scan {
        match status {
            400 => Scan::Reject(BARE_LF),
            414 => Scan::Reject(LINE_TOO_LONG),
            _ => Scan::Reject(HEAD_TOO_LARGE),
        }
    }

    #[test]
    fn scan_finds_end_and_refuses_bare_lf_and_oversize() {
        let cases: &[(&[u8], Scan)] = &[
            (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", Scan::Complete(27)),
            (
                b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /next",
                Scan::Complete(27),
            ),
            (b"GET / HTTP/1.1\r\nHost: a\r\n", Scan::Incomplete),
            (b"GET / HTTP/1.1\nHost: a\n\n", rejected(400)),
            (b"GET / HTTP/1.1\r\nHost: a\n\r\n", rejected(400)),
            (b"\n", rejected(400)),
            (b"", Scan::Incomplete),
        ];
        for (input, want) in cases {
            assert_eq!(
                scan(input, 0),
                *want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        let long_line = format!("GET /{} HTTP/1.1\r\n", "a".repeat(MAX_REQUEST_LINE));
        assert_eq!(scan(long_line.as_bytes(), 0), rejected(414));
        let unterminated = vec![b'a'; MAX_REQUEST_LINE + 2];
        assert_eq!(scan(&unterminated, 0), rejected(414));
        let mut big = b"GET / HTTP/1.1\r\n".to_vec();
        while big.len() < MAX_HEAD {
            big.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        assert_eq!(scan(&big, 0), rejected(431));
    }

    #[test]
    fn scan_resumes_across_reads() {
        let whole = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        for split in 1..whole.len() {
            assert_eq!(scan(&whole[..split], 0), Scan::Incomplete, "split {split}");
            assert_eq!(
                scan(whole, split),
                Scan::Complete(whole.len()),
                "split {split}"
            );
        }
    }

    #[test]
    fn parse_framing_table() {
        use Framing::*;
        let ok = |f, ka, ex| Ok((f, ka, ex));
        let cases: &[(&str, Parsed)] = &[
            ("GET / HTTP/1.1\r\nHost: a\r\n\r\n", ok(None, true, false)),
            ("GET / HTTP/1.0\r\n\r\n", ok(None, false, false)),
            (
                "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                ok(None, true, false),
            ),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
                ok(None, false, false),
            ),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, Close\r\n\r\n",
                ok(None, false, false),
            ),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
                ok(Length(5), true, false),
            ),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
                ok(None, true, false),
            ),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n",
                ok(Length(7), true, false),
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
                ok(Chunked, true, false),
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n",
                ok(Chunked, true, false),
            ),
            // RFC 9112 §6.1: a coding we do not implement is a 501 ...
            (
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                Err(501),
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
                Err(501),
            ),
            // ... but a final coding other than chunked, or chunked twice,
            // leaves the length unknowable: 400 (§6.3, §7).
            (
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
                Err(400),
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
                Err(400),
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,\r\n\r\n",
                Err(400),
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
                ok(Length(3), true, true),
            ),
            // Smuggling variants (RFC 9112 §6.1, §6.3).
            (
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                Err(400),
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
                Err(400),
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n",
                Err(400),
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
                Err(400),
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
                Err(400),
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n",
                Err(400),
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n",
                Err(400),
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
                Err(400),
            ),
            (
                "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
                Err(400),
            ),
            ("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", Err(400)),
            ("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", Err(400)),
            ("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", Err(400)),
            ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", Err(400)),
            // Host rules (RFC 9112 §3.2).
            ("GET / HTTP/1.1\r\n\r\n", Err(400)),
            ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", Err(400)),
            // Versions and request lines.
            ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", Err(505)),
            ("GET / HTTP/1.2\r\nHost: a\r\n\r\n", Err(505)),
            ("GET /  HTTP/1.1\r\nHost: a\r\n\r\n", Err(400)),
            ("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", Err(400)),
            ("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", Err(400)),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nExpect: something\r\n\r\n",
                Err(417),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse_str(input), *want, "{input:?}");
        }
    }

    #[test]
    fn too_many_headers_is_431() {
        let mut s = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
        for i in 0..MAX_HEADERS {
            s.push_str(&format!("X-{i}: v\r\n"));
        }
        s.push_str("\r\n");
        assert_eq!(parse_str(&s), Err(431));
    }

    /// A refused request is logged with its method and target when its
    /// request line has that shape, whatever else is wrong.
    #[test]
    fn request_line_for_the_log() {
        type Line<'a> = Option<(&'a [u8], &'a [u8])>;
        let cases: &[(&[u8], Line)] = &[
            (b"GET /a HTTP/1.1\r\n", Some((b"GET", b"/a"))),
            (b"GET /a HTTP/2.0\r\nHost: x\r\n\r\n", Some((b"GET", b"/a"))),
            (b"PUT /x", Some((b"PUT", b"/x"))),
            (b"GET", None),
            (b"\x16\x03\x01 binary", None),
            (b" /a HTTP/1.1", None),
        ];
        for (input, want) in cases {
            assert_eq!(
                request_line(input),
                *want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        let long = vec![b'a'; MAX_REQUEST_LINE * 2];
        assert_eq!(request_line(&long), None);
    }

    #[test]
    fn digits_are_strict() {
        assert_eq!(parse_digits(b"0"), Some(0));
        assert_eq!(parse_digits(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_digits(b"18446744073709551616"), None);
        assert_eq!(parse_digits(b""), None);
        assert_eq!(parse_digits(b" 1"), None);
    }
}
