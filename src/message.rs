//! The thin interface between the connection layer (`engine`) and the file-serving
//! core (`serve`): a parsed request goes in, a status, header lines and a body plan
//! come out. Neither side sees the other's internals: the core never touches a
//! socket, the engine never knows what a Range or an ETag means.

use std::fs::File;
use std::time::SystemTime;

/// One request, as the engine parsed it. Borrowed from the engine's read buffer.
pub struct Request<'a> {
    pub method: &'a str,
    /// The request-target exactly as sent (origin-form, e.g. `/a%20b?x=1`).
    pub target: &'a str,
    /// `true` for HTTP/1.0, `false` for HTTP/1.1.
    pub http10: bool,
    /// The instant the request head was complete; `Date` and the If-Range
    /// "at least one second old" rule (RFC 9110 §8.8.2.2) both use it.
    pub now: SystemTime,
    headers: &'a [httparse::Header<'a>],
}

impl<'a> Request<'a> {
    pub fn new(
        method: &'a str,
        target: &'a str,
        http10: bool,
        now: SystemTime,
        headers: &'a [httparse::Header<'a>],
    ) -> Self {
        Request {
            method,
            target,
            http10,
            now,
            headers,
        }
    }

    /// The value of the first field called `name` (case-insensitive), if it is
    /// valid UTF-8. The engine has already refused CR, LF and NUL in values.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
    }

    /// Every UTF-8 value of the fields called `name`, in order.
    pub fn all(&self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let headers: &'a [httparse::Header<'a>] = self.headers;
        headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .filter_map(|h| std::str::from_utf8(h.value).ok())
    }

    /// How many fields called `name` the request carries. A list-valued field
    /// sent on several lines (RFC 9110 §5.3) is rare; the core asks so that it
    /// can treat it conservatively instead of silently reading only the first.
    pub fn header_count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .count()
    }
}

/// Header lines of a response, written straight into one buffer that the engine
/// reuses from request to request (no allocation per header on the hot path).
///
/// The engine adds the status line, `Date`, `Server`, `Content-Length` and
/// `Connection`; the core adds everything else here.
#[derive(Default)]
pub struct Headers {
    buf: String,
}

impl Headers {
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// Appends `name: value`. A value containing CR, LF or NUL would split the
    /// response (header injection, RFC 9110 §5.5); such a value is replaced by
    /// nothing and the line is dropped, and a debug build stops loudly.
    pub fn add(&mut self, name: &'static str, value: &str) {
        self.add_fmt(name, format_args!("{value}"));
    }

    /// Appends `name: value` formatted in place, without an intermediate String.
    pub fn add_fmt(&mut self, name: &'static str, value: std::fmt::Arguments<'_>) {
        use std::fmt::Write;
        let start = self.buf.len();
        self.buf.push_str(name);
        self.buf.push_str(": ");
        let value_start = self.buf.len();
        let _ = self.buf.write_fmt(value);
        if self.buf[value_start..]
            .bytes()
            .any(|b| b == b'\r' || b == b'\n' || b == 0)
        {
            debug_assert!(false, "header {name} carries CR, LF or NUL");
            self.buf.truncate(start);
            return;
        }
        self.buf.push_str("\r\n");
    }

    /// The lines written so far, each ending in CRLF.
    pub fn as_str(&self) -> &str {
        &self.buf
    }
}

/// One piece of a `multipart/byteranges` body: literal bytes (boundary and part
/// headers) or a slice of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Bytes(Vec<u8>),
    Slice { start: u64, len: u64 },
}

/// What the body of a response is made of. The engine derives `Content-Length`
/// from it, so the two can never disagree.
pub enum Body {
    Empty,
    Static(&'static str),
    Bytes(Vec<u8>),
    /// `len` bytes of `file` from offset `start` (seek + `Read::take`). The
    /// handle must be freshly opened (at offset 0): the engine skips the seek
    /// when `start` is 0.
    File {
        file: File,
        start: u64,
        len: u64,
    },
    /// A multipart body interleaving literal bytes and slices of `file`.
    Parts {
        file: File,
        parts: Vec<Segment>,
    },
}

impl Body {
    /// The exact number of bytes this body puts on the wire.
    pub fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Static(s) => s.len() as u64,
            Body::Bytes(b) => b.len() as u64,
            Body::File { len, .. } => *len,
            Body::Parts { parts, .. } => parts
                .iter()
                .map(|p| match p {
                    Segment::Bytes(b) => b.len() as u64,
                    Segment::Slice { len, .. } => *len,
                })
                .sum(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A planned response: everything decided, nothing sent yet.
pub struct Reply {
    pub status: u16,
    pub body: Body,
}

/// What the engine calls for each request. Implementations must be cheap to
/// share between worker threads.
pub trait Handler: Send + Sync + 'static {
    /// Decides the response to `req`, writing its header lines into `headers`.
    fn handle(&self, req: &Request<'_>, headers: &mut Headers) -> Reply;
}

/// The reason phrase for the statuses this server sends (RFC 9110 §15).
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        301 => "Moved Permanently",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// The short plain-text body of an error page: the status and its reason, one
/// line. Never any detail from the file system or the OS (that goes to the log).
pub fn error_body(status: u16) -> &'static str {
    match status {
        400 => "400 Bad Request\n",
        403 => "403 Forbidden\n",
        404 => "404 Not Found\n",
        405 => "405 Method Not Allowed\n",
        408 => "408 Request Timeout\n",
        412 => "412 Precondition Failed\n",
        413 => "413 Content Too Large\n",
        414 => "414 URI Too Long\n",
        416 => "416 Range Not Satisfiable\n",
        417 => "417 Expectation Failed\n",
        431 => "431 Request Header Fields Too Large\n",
        503 => "503 Service Unavailable\n",
        505 => "505 HTTP Version Not Supported\n",
        _ => "500 Internal Server Error\n",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_refuse_injection() {
        let mut h = Headers::default();
        h.add("ETag", "\"1-2\"");
        assert_eq!(h.as_str(), "ETag: \"1-2\"\r\n");
        let r = std::panic::catch_unwind(move || {
            let mut h = Headers::default();
            h.add("X", "a\r\nSet-Cookie: x");
            h.as_str().to_owned()
        });
        // Debug builds assert; release builds drop the line. Either way nothing
        // injected reaches the wire.
        if let Ok(s) = r {
            assert_eq!(s, "");
        }
    }

    #[test]
    fn body_len_counts_every_part() {
        let f = File::open("Cargo.toml").unwrap();
        let b = Body::Parts {
            file: f,
            parts: vec![
                Segment::Bytes(b"abc".to_vec()),
                Segment::Slice { start: 5, len: 10 },
                Segment::Bytes(b"--".to_vec()),
            ],
        };
        assert_eq!(b.len(), 15);
        assert_eq!(Body::Static("xy").len(), 2);
        assert!(Body::Empty.is_empty());
    }
}
