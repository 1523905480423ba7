//! The thin interface between the connection layer (`engine`) and the file-serving
//! core (`serve`): a parsed request goes in, a status, header lines and a body plan
//! come out. Neither side sees the other's internals: the core never touches a
//! socket, the engine never knows what a Range or an ETag means.

use std::fs::File;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// One request, as the engine parsed it. Borrowed from the engine's read buffer.
pub struct Request<'a> {
    pub method: &'a str,
    /// The request-target exactly as sent (origin-form, e.g. `/a%20b?x=1`).
    pub target: &'a str,
    /// `true` for HTTP/1.0, `false` for HTTP/1.1.
    pub http10: bool,
    /// The instant the request head was complete. The If-Range "at least one
    /// second old" rule (RFC 9110 §8.8.2.2) compares against it; the `Date`
    /// field is the engine's own clock when the answer is written.
    pub now: SystemTime,
    /// Who sent it (for per-client decisions such as slowing down guessing).
    pub peer: IpAddr,
    /// How the request frames its body (RFC 9112 §6.3).
    pub body: BodyLength,
    headers: &'a [httparse::Header<'a>],
}

/// The body a request announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLength {
    /// No body (no `Content-Length`, or `Content-Length: 0`).
    None,
    /// `Content-Length: n`, n > 0.
    Known(u64),
    /// `Transfer-Encoding: chunked`: the length is known only at its end.
    Chunked,
}

impl<'a> Request<'a> {
    pub fn new(
        method: &'a str,
        target: &'a str,
        http10: bool,
        peer: IpAddr,
        body: BodyLength,
        headers: &'a [httparse::Header<'a>],
    ) -> Self {
        Request {
            method,
            target,
            http10,
            now: SystemTime::now(),
            peer,
            body,
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
        // The common case, a plain string, without the formatter.
        if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            debug_assert!(false, "header {name} carries CR, LF or NUL");
            return;
        }
        self.buf.reserve(name.len() + value.len() + 4);
        self.buf.push_str(name);
        self.buf.push_str(": ");
        self.buf.push_str(value);
        self.buf.push_str("\r\n");
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

    /// Appends the lines of `other` (already checked when they were added).
    pub fn extend(&mut self, other: &Headers) {
        self.buf.push_str(&other.buf);
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
    /// `len` bytes of `file` from offset `start`, read with positional
    /// reads (`pread`): the handle may be shared and its offset is never
    /// used, so one kept handle serves any number of answers at once.
    File {
        file: Arc<File>,
        start: u64,
        len: u64,
    },
    /// A multipart body interleaving literal bytes and slices of `file`.
    Parts {
        file: Arc<File>,
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
    /// Hold the answer back this long before sending it (repeated failed
    /// logins are slowed down this way). The connection waits in the
    /// engine's readiness loop; no thread waits with it.
    pub delay: Duration,
    /// The authenticated user, for the access log (`%u`).
    pub user: Option<Arc<str>>,
}

impl Reply {
    pub fn new(status: u16, body: Body) -> Reply {
        Reply {
            status,
            body,
            delay: Duration::ZERO,
            user: None,
        }
    }

    /// The one constructor of every error page, the core's and the
    /// engine's: the status, its reason and one line of plain text. Never any
    /// detail from the file system or the OS — that goes to the log.
    pub fn error(h: &mut Headers, status: u16) -> Reply {
        h.add("Content-Type", "text/plain; charset=utf-8");
        Reply::new(status, Body::Static(error_body(status)))
    }

    pub fn delayed(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }

    pub fn by(mut self, user: Option<Arc<str>>) -> Reply {
        self.user = user;
        self
    }
}

/// What a handler does with a request: answer it now, or take its body
/// first.
pub enum Action {
    Reply(Reply),
    /// Accept the body into `sink`. The engine moves the connection to a body
    /// thread (disk writes and `fsync` there never stall the connections that
    /// download), sends `100 Continue` if the client waits for it, feeds the
    /// body as it arrives and asks the sink for the final answer at its end.
    /// Header lines the handler wrote before returning this start every
    /// answer the sink gives.
    /// Also for bodiless requests whose answer needs slow disk work (a tus
    /// `HEAD` that must end a stale upload first): the body is then empty.
    Receive(Receive),
}

impl From<Reply> for Action {
    fn from(r: Reply) -> Action {
        Action::Reply(r)
    }
}

/// A body the handler accepts.
pub struct Receive {
    pub sink: Box<dyn BodySink>,
    /// The most body bytes the sink takes: a longer `Content-Length` is
    /// refused 413 before a byte is read, a chunked body that grows past it is
    /// cut off with 413 (RFC 9110 §15.5.14).
    pub max: u64,
}

/// Why a body ended before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abort {
    /// The client closed the connection or it broke.
    ClientGone,
    /// No byte for the body deadline, or slower than the minimum rate.
    TooSlow,
    /// The chunked framing was broken (answered 400).
    Malformed,
    /// Longer than `Receive::max` (answered 413).
    TooLarge,
    /// The server is stopping and the grace period is over.
    Shutdown,
    /// Every body thread was busy (answered 503 before any byte was read).
    Busy,
}

impl std::fmt::Display for Abort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Abort::ClientGone => "the client went away",
            Abort::TooSlow => "the body arrived too slowly",
            Abort::Malformed => "the chunked framing was broken",
            Abort::TooLarge => "the body was too large",
            Abort::Shutdown => "the server is stopping",
            Abort::Busy => "the server was too busy to take it",
        })
    }
}

/// Where a request body goes. Runs on a body thread, never on a readiness
/// loop: it may block on the disk. Exactly one of `finish` and `abort` ends
/// it (a sink dropped without either must leave nothing half done).
pub trait BodySink: Send {
    /// Called once before the body is read, on the body thread: slow checks
    /// and preparations (ending a stale writer, opening files) belong here.
    /// `Err` refuses the request with that answer; with
    /// `Expect: 100-continue` the client then never sends the body.
    fn begin(&mut self, _h: &mut Headers) -> Result<(), Reply> {
        Ok(())
    }

    /// The next bytes of the body. `Break` stops reading (a full disk, a
    /// body past what the sink can keep); `finish` then gives the answer and
    /// the connection closes, since the rest of the body is unread.
    fn write(&mut self, data: &[u8]) -> std::ops::ControlFlow<()>;

    /// The body is complete (or the sink stopped it): the final answer.
    fn finish(self: Box<Self>, h: &mut Headers) -> Reply;

    /// The body ended early; the connection closes without the sink's answer.
    fn abort(self: Box<Self>, why: Abort);
}

/// What the engine calls for each request. Implementations must be cheap to
/// share between worker threads, and `handle` must not block: it runs on a
/// readiness loop that serves many connections. Slow work goes in a sink.
pub trait Handler: Send + Sync + 'static {
    /// Decides what to do with `req`, writing response header lines into
    /// `headers` when it answers at once.
    fn handle(&self, req: &Request<'_>, headers: &mut Headers) -> Action;

    /// Called by each worker, on its own thread, after it wakes up: the
    /// handler's per-thread upkeep (closing idle kept files). Returns how
    /// soon it wants to be called again, if at all.
    fn housekeeping(&self) -> Option<std::time::Duration> {
        None
    }
}

/// Strips optional whitespace from both ends of a field value: SP and HTAB
/// only (RFC 9110 §5.6.3) — `str::trim` would also take VT, FF and Unicode
/// spaces, which are not whitespace in HTTP.
pub fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// `tchar` of RFC 9110 §5.6.2: the bytes of a token.
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// [`trim_ows`] for raw bytes.
pub fn trim_ows_bytes(v: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = v.iter().position(|b| !is_ows(b)).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !is_ows(b)).map_or(start, |i| i + 1);
    &v[start..end]
}

/// Every status this server sends, with its reason phrase (RFC 9110 §15;
/// 460 is the tus checksum extension's "Checksum Mismatch") — the one table
/// both [`reason`] and [`error_body`] are made from.
macro_rules! statuses {
    ($($code:literal $reason:literal,)*) => {
        /// The reason phrase of `status`; a status outside the table is a
        /// bug, sent as "Unknown" rather than a panic.
        pub fn reason(status: u16) -> &'static str {
            match status {
                $($code => $reason,)*
                _ => "Unknown",
            }
        }

        /// The short plain-text body of an error page: the status and its
        /// reason, one line.
        pub fn error_body(status: u16) -> &'static str {
            match status {
                $($code => concat!(stringify!($code), " ", $reason, "\n"),)*
                _ => "500 Internal Server Error\n",
            }
        }

        /// The statuses in the table, for tests that check it is total.
        pub const STATUSES: &[u16] = &[$($code),*];
    };
}

statuses! {
    100 "Continue",
    200 "OK",
    201 "Created",
    204 "No Content",
    206 "Partial Content",
    301 "Moved Permanently",
    303 "See Other",
    304 "Not Modified",
    400 "Bad Request",
    401 "Unauthorized",
    403 "Forbidden",
    404 "Not Found",
    405 "Method Not Allowed",
    408 "Request Timeout",
    409 "Conflict",
    410 "Gone",
    411 "Length Required",
    412 "Precondition Failed",
    413 "Content Too Large",
    414 "URI Too Long",
    415 "Unsupported Media Type",
    416 "Range Not Satisfiable",
    417 "Expectation Failed",
    423 "Locked",
    431 "Request Header Fields Too Large",
    460 "Checksum Mismatch",
    500 "Internal Server Error",
    501 "Not Implemented",
    503 "Service Unavailable",
    505 "HTTP Version Not Supported",
    507 "Insufficient Storage",
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

    /// Every status has a reason and a body that says the same, and nothing
    /// outside the table passes for a real status.
    #[test]
    fn status_table_is_total_and_consistent() {
        for &code in STATUSES {
            assert_ne!(reason(code), "Unknown", "{code}");
            assert_eq!(error_body(code), format!("{code} {}\n", reason(code)));
        }
        assert_eq!(reason(299), "Unknown");
        assert_eq!(error_body(299), "500 Internal Server Error\n");
        let mut h = Headers::default();
        let r = Reply::error(&mut h, 401);
        assert_eq!((r.status, r.body.len()), (401, 17));
        assert_eq!(h.as_str(), "Content-Type: text/plain; charset=utf-8\r\n");
    }

    #[test]
    fn body_len_counts_every_part() {
        let f = File::open("Cargo.toml").unwrap();
        let b = Body::Parts {
            file: Arc::new(f),
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
