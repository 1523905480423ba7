//! One client connection and its state machine:
//!
//! ```text
//!   Head ──(head complete, handler answers)──────────────► Sending
//!     │                                                       │
//!     └─(handler takes the body)─► Receiving ─(body thread)─►─┤
//!                                                             │
//!   Head ◄──(answer sent, connection kept)────────────────────┤
//!   Lingering ◄──(answer sent, connection not kept)───────────┘
//! ```
//!
//! `Head` reads request heads without blocking (discarding a small unwanted
//! body first); `Receiving` is spent on a body thread (`body.rs`), away from
//! the readiness loop; `Sending` writes the answer as the socket takes it;
//! `Lingering` reads and discards after a final answer so that closing does
//! not turn into a reset. The worker (`worker.rs`) polls and calls [`drive`].

use super::head::{self, Framing, MAX_HEADERS, Refusal, Scan};
use super::send::{self, Pumped, Sending};
use super::{Config, DRAIN_CAP, Shared, Slot};
use crate::message::{Abort, Action, BodyLength, Handler, Headers, Reply, Request};
use crate::sys::{self, POLLIN, POLLOUT};
use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// After a final answer on a connection with unread input (an unwanted body,
/// pipelined requests, a refused head), we half-close and read and discard for
/// up to this long before closing: closing with unread data sends an RST, which
/// can destroy the answer before the client reads it (Apache's lingering close).
const LINGER_TIME: Duration = Duration::from_secs(2);
/// ... and at most this many bytes.
const LINGER_BYTES: u64 = 256 * 1024;
/// First size of a read buffer; it doubles up to `MAX_HEAD` as a head needs.
const INITIAL_BUF: usize = 2048;
/// Read buffers kept for reuse, so a keep-alive request costs no allocation.
const SPARE_BUFS: usize = 32;

/// One client connection and where it stands.
pub(super) struct Conn {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    /// Read buffer: bytes `..filled` are valid; empty while the connection idles.
    pub buf: Vec<u8>,
    pub filled: usize,
    /// Bytes of `buf` already scanned for the end of a head, so that a head
    /// trickled in byte by byte is not rescanned from the start each time.
    pub scanned: usize,
    /// Requests answered so far.
    pub requests: u32,
    /// When the current wait began (accept, idle start, first head byte, the
    /// last byte of progress while sending, or the start of lingering).
    pub since: Instant,
    /// The last response's head buffer, kept for the next one.
    pub spare_head: Vec<u8>,
    pub state: State,
    /// Holds this connection's place in the open-connection count; dropping
    /// the connection, wherever that happens, gives it back.
    _slot: Slot,
}

// Sending is large and Head small, but every connection spends most of its
// life in one of the two, and boxing Sending would allocate per request.
#[allow(clippy::large_enum_variant)]
pub(super) enum State {
    /// Waiting for a request head, or reading one (`reading`: part of a head
    /// is buffered, so the head deadline applies). `drain`: body bytes of the
    /// previous request still to read and discard first.
    Head { reading: bool, drain: u64 },
    /// The body is being received on a body thread.
    Receiving(Box<Receiving>),
    /// An answer is being written.
    Sending(Sending),
    /// Answered and half-closed: bytes we may still read and discard before
    /// closing.
    Lingering { left: u64 },
}

/// A request whose body a sink takes, on its way to a body thread.
pub(super) struct Receiving {
    pub rx: crate::message::Receive,
    pub framing: Framing,
    pub expect_continue: bool,
    /// The connection may serve another request after this one.
    pub keep_alive: bool,
    pub head_len: usize,
    /// A HEAD request: whatever the sink answers goes out without its body
    /// (RFC 9110 §9.3.2), or the next response on the connection would be
    /// read from it.
    pub head_only: bool,
    pub log: AccessLog,
    /// Header lines the handler wrote, which start the sink's answer.
    pub fields: Headers,
}

/// What happens to a connection after `drive`.
pub(super) enum Fate {
    Keep,
    Close,
    /// Hand it to a body thread.
    Receive,
}

/// A byte range of the connection's buffer.
type Span = (usize, usize);

/// What the access line needs, kept as offsets into the still-buffered head.
pub(super) struct AccessLog {
    pub started: Instant,
    pub time: SystemTime,
    pub status: u16,
    pub head_bytes: usize,
    pub method: Span,
    pub target: Span,
    pub range: Option<Span>,
    pub referer: Option<Span>,
    pub user_agent: Option<Span>,
    pub http10: bool,
    pub user: Option<Arc<str>>,
}

/// The worker's reusable buffers: nothing is allocated per request once warm,
/// beyond what the handler itself needs.
#[derive(Default)]
pub(super) struct Ctx {
    pub headers: Headers,
    pub scratch: Vec<u8>,
    pub spare: Vec<Vec<u8>>,
}

impl Conn {
    pub fn new(stream: TcpStream, peer: SocketAddr, slot: Slot) -> Conn {
        Conn {
            stream,
            peer,
            buf: Vec::new(),
            filled: 0,
            scanned: 0,
            requests: 0,
            since: Instant::now(),
            spare_head: Vec::new(),
            state: State::Head {
                reading: false,
                drain: 0,
            },
            _slot: slot,
        }
    }

    /// What to poll for, and when this connection's current wait runs out.
    pub fn interest(&self, cfg: &Config) -> (i16, Instant) {
        match &self.state {
            State::Lingering { .. } => (POLLIN, self.since + LINGER_TIME),
            State::Sending(s) => match s.paused_until {
                Some(t) => (0, t),
                None => (POLLOUT, self.since + cfg.send_timeout),
            },
            // The first request must arrive within the head deadline of the
            // accept; later ones within the idle deadline, then the head one.
            State::Head { reading, drain } if *reading || self.requests == 0 || *drain > 0 => {
                (POLLIN, self.since + cfg.head_timeout)
            }
            State::Head { .. } => (POLLIN, self.since + cfg.idle_timeout),
            State::Receiving(_) => (0, self.since + cfg.body_timeout),
        }
    }

    /// `false` if the connection's deadline passed and it was closed.
    pub fn check_deadline(&mut self, cfg: &Config, now: Instant, ctx: &mut Ctx) -> bool {
        let (_, deadline) = self.interest(cfg);
        if now < deadline {
            return true;
        }
        match &self.state {
            State::Lingering { .. } | State::Receiving(_) => false,
            State::Sending(s) => {
                log::warn!(
                    "{}: client stopped reading; dropped after {} bytes",
                    self.peer,
                    s.sent
                );
                log_access(self, s);
                false
            }
            State::Head { reading: true, .. } => {
                // RFC 9110 §15.5.9: a head that never completed gets 408, sent
                // like any answer (then the connection lingers and closes).
                reject(self, ctx, TIMED_OUT, 0);
                true
            }
            State::Head { .. } => {
                log::debug!("{}: idle connection closed", self.peer);
                false
            }
        }
    }

    /// Gives the read buffer back for reuse when the connection ends.
    pub fn recycle(self, spare: &mut Vec<Vec<u8>>) {
        if !self.buf.is_empty() && spare.len() < SPARE_BUFS {
            spare.push(self.buf);
        }
    }

    /// Drops the buffered bytes of the unwanted body still owed.
    fn discard_drained(&mut self) {
        let State::Head { drain, .. } = &mut self.state else {
            return;
        };
        let k = usize::try_from(*drain)
            .unwrap_or(usize::MAX)
            .min(self.filled);
        *drain -= k as u64;
        self.buf.copy_within(k..self.filled, 0);
        self.filled -= k;
        self.scanned = 0;
    }
}

const TIMED_OUT: Refusal = Refusal {
    status: 408,
    reason: "the request head was not complete in time",
};

/// Makes all the progress `c` allows now: send, read, answer, repeat.
pub(super) fn drive<H: Handler>(
    shared: &Shared,
    handler: &H,
    ctx: &mut Ctx,
    c: &mut Conn,
    now: Instant,
    mut may_read: bool,
) -> Fate {
    loop {
        match &mut c.state {
            State::Lingering { .. } => {
                return if linger(c, &mut ctx.scratch) {
                    Fate::Keep
                } else {
                    Fate::Close
                };
            }
            State::Receiving(_) => return Fate::Receive,
            State::Sending(s) => {
                let sent_before = s.sent;
                let pumped = send::pump(s, &c.stream, &mut ctx.scratch, shared.total_rate.as_ref());
                if s.sent != sent_before {
                    // The send deadline counts from the last byte the client took.
                    c.since = Instant::now();
                }
                match pumped {
                    Ok(Pumped::Done) => {
                        if !finish(c, &mut ctx.scratch) {
                            return Fate::Close;
                        }
                        if matches!(c.state, State::Lingering { .. }) {
                            return Fate::Keep;
                        }
                    }
                    Ok(Pumped::Blocked | Pumped::Paused) => return Fate::Keep,
                    Err(e) => {
                        if let State::Sending(s) = &c.state {
                            log_access(c, s);
                        }
                        if matches!(
                            e.kind(),
                            io::ErrorKind::UnexpectedEof | io::ErrorKind::Other
                        ) {
                            log::warn!("{}: {e}; connection closed", c.peer);
                        } else {
                            log::debug!("{}: send ended: {e}", c.peer);
                        }
                        return Fate::Close;
                    }
                }
            }
            State::Head { drain, .. } => {
                if *drain == 0 {
                    match head::scan(&c.buf[..c.filled], c.scanned.saturating_sub(3)) {
                        Scan::Complete(len) => {
                            c.scanned = 0;
                            start(shared, handler, ctx, c, len);
                            continue;
                        }
                        Scan::Reject(r) => {
                            reject(c, ctx, r, 0);
                            continue;
                        }
                        Scan::Incomplete => c.scanned = c.filled,
                    }
                }
                // Read only when poll said there is something, or the last read
                // filled the buffer: after a response, a read would mostly
                // return EAGAIN — one wasted system call per request
                // (level-triggered poll tells us).
                if !may_read {
                    return Fate::Keep;
                }
                match read_more(c, &mut ctx.spare, now) {
                    Ok(Some(filled_all_room)) => may_read = filled_all_room,
                    Ok(None) => return Fate::Keep,
                    Err(()) => return Fate::Close,
                }
            }
        }
    }
}

/// Reads what is available. `Ok(Some(full))`: new bytes, `full` if they
/// filled all the room there was; `Ok(None)`: nothing now; `Err`: closed or
/// failed.
fn read_more(c: &mut Conn, spare: &mut Vec<Vec<u8>>, now: Instant) -> Result<Option<bool>, ()> {
    if c.buf.is_empty() {
        c.buf = spare.pop().unwrap_or_else(|| vec![0; INITIAL_BUF]);
    }
    if c.filled == c.buf.len() {
        let grown = (c.buf.len() * 2).min(head::MAX_HEAD);
        if grown == c.buf.len() {
            // scan() refuses a full head buffer first; this is a safety net.
            return Err(());
        }
        c.buf.resize(grown, 0);
    }
    let room = c.buf.len() - c.filled;
    match (&c.stream).read(&mut c.buf[c.filled..]) {
        Ok(0) => {
            log::debug!("{}: client closed the connection", c.peer);
            Err(())
        }
        Ok(n) => {
            c.filled += n;
            let draining = matches!(c.state, State::Head { drain, .. } if drain > 0);
            if draining {
                c.discard_drained();
            }
            if let State::Head { reading, drain } = &mut c.state {
                if draining && *drain == 0 && c.filled == 0 {
                    // Body discarded, nothing more yet: idle, not mid-head.
                    *reading = false;
                    c.since = now;
                }
                if !*reading && c.filled > 0 {
                    *reading = true;
                    c.since = now;
                }
            }
            Ok(Some(n == room))
        }
        Err(e)
            if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted =>
        {
            Ok(None)
        }
        Err(e) => {
            log::debug!("{}: read failed: {e}", c.peer);
            Err(())
        }
    }
}

/// Parses the complete head at the start of `c.buf`, asks the handler, and
/// sets up the answer — or hands the body to a sink.
fn start<H: Handler>(shared: &Shared, handler: &H, ctx: &mut Ctx, c: &mut Conn, head_len: usize) {
    let cfg = &shared.config;
    let started = Instant::now();
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    ctx.headers.clear();
    let h = match head::parse(&c.buf[..head_len], &mut slots) {
        Ok(h) => h,
        Err(r) => return reject(c, ctx, r, head_len),
    };
    let body = match h.framing {
        Framing::None => BodyLength::None,
        Framing::Length(n) => BodyLength::Known(n),
        Framing::Chunked => BodyLength::Chunked,
    };
    let req = Request::new(h.method, h.target, h.http10, c.peer.ip(), body, h.headers);
    if log::log_enabled!(log::Level::Trace) {
        let mut target = String::new();
        crate::logging::push_url(&mut target, h.target.as_bytes());
        log::trace!("{}: request {} {target}", c.peer, h.method);
    }
    let base = c.buf.as_ptr() as usize;
    let span = |s: &str| {
        let a = s.as_ptr() as usize - base;
        (a, a + s.len())
    };
    let log = AccessLog {
        started,
        time: req.now,
        status: 0,
        head_bytes: head_len,
        method: span(h.method),
        target: span(h.target),
        range: req.header("range").map(span),
        referer: req.header("referer").map(span),
        user_agent: req.header("user-agent").map(span),
        http10: h.http10,
        user: None,
    };
    let may_keep = h.keep_alive && c.requests + 1 < cfg.max_requests && !sys::shutdown_requested();
    let (framing, expect_continue, head_only) = (h.framing, h.expect_continue, h.method == "HEAD");
    let action = match catch_unwind(AssertUnwindSafe(|| handler.handle(&req, &mut ctx.headers))) {
        Ok(a) => a,
        Err(_) => {
            // Through `push_url`, like every line that shows a target: a
            // link's token must not reach the log.
            let mut target = String::new();
            crate::logging::push_url(&mut target, h.target.as_bytes());
            log::error!("{}: handler panicked on {} {target}", c.peer, h.method);
            ctx.headers.clear();
            Action::Reply(Reply::error(&mut ctx.headers, 500))
        }
    };
    match action {
        Action::Reply(reply) => {
            // A body we do not want: drain a small one so the connection stays
            // usable; otherwise answer and close (RFC 9112 §9.6). A client
            // waiting for 100 Continue never sends the body (RFC 9110 §10.1.1).
            let drain = match framing {
                Framing::None => 0,
                Framing::Length(n) => n,
                Framing::Chunked => u64::MAX,
            };
            let keep = may_keep && (drain == 0 || (drain <= DRAIN_CAP && !expect_continue));
            let drain = if keep { drain } else { 0 };
            respond(
                c,
                &ctx.headers,
                reply,
                keep,
                drain,
                log,
                head_only,
                cfg.rate_limit,
            );
        }
        Action::Receive(rx) => {
            // The handler should refuse a too-long Content-Length itself (with
            // its own fields); this is the engine's guarantee that it holds.
            if let Framing::Length(n) = framing
                && n > rx.max
            {
                rx.sink.abort(Abort::TooLarge);
                ctx.headers.clear();
                let reply = Reply::error(&mut ctx.headers, 413);
                return respond(c, &ctx.headers, reply, false, 0, log, head_only, None);
            }
            let mut fields = Headers::default();
            fields.extend(&ctx.headers);
            c.state = State::Receiving(Box::new(Receiving {
                rx,
                framing,
                expect_continue,
                keep_alive: may_keep,
                head_len,
                head_only,
                log,
                fields,
            }));
        }
    }
}

/// Sets `c` to send `reply`, whose header lines are in `headers`.
#[allow(clippy::too_many_arguments)] // the answer, and how the connection goes on
pub(super) fn respond(
    c: &mut Conn,
    headers: &Headers,
    reply: Reply,
    keep: bool,
    drain: u64,
    mut log: AccessLog,
    head_only: bool,
    rate: Option<u64>,
) {
    log.status = reply.status;
    log.user = reply.user.clone();
    let framing = send::Framing {
        keep,
        http10: log.http10,
        head_only,
    };
    let literal = std::mem::take(&mut c.spare_head);
    let mut s = send::prepare(literal, reply, headers, framing, log, rate);
    s.drain = drain;
    c.state = State::Sending(s);
    c.since = Instant::now();
}

/// Sets up the engine's own answer to a request it refuses (400, 408, 414,
/// 431, 501, 505 …): logged with the peer, the request line and the reason,
/// sent like any response — so a full socket cannot cut it short — then the
/// connection lingers and closes. Never rate-limited.
pub(super) fn reject(c: &mut Conn, ctx: &mut Ctx, r: Refusal, head_len: usize) {
    let buffered = &c.buf[..c.filled];
    let line = head::request_line(buffered);
    let mut text = String::new();
    match line {
        Some((m, t)) => {
            text.push('"');
            crate::logging::push_escaped(&mut text, m, false);
            text.push(' ');
            crate::logging::push_url(&mut text, &t[..t.len().min(512)]);
            text.push_str(if t.len() > 512 { "…\"" } else { "\"" });
        }
        None => text.push_str("no request line"),
    }
    log::warn!(
        "{}: refused with {}, {}: {text}",
        c.peer,
        r.status,
        r.reason
    );
    let base = c.buf.as_ptr() as usize;
    let span = |s: &[u8]| {
        let a = s.as_ptr() as usize - base;
        (a, a + s.len())
    };
    let (method, target) = line.map_or(((0, 0), (0, 0)), |(m, t)| (span(m), span(t)));
    let head_only = line.is_some_and(|(m, _)| m == b"HEAD");
    let log = AccessLog {
        started: Instant::now(),
        time: SystemTime::now(),
        status: r.status,
        head_bytes: head_len,
        method,
        target,
        range: None,
        referer: None,
        user_agent: None,
        http10: false,
        user: None,
    };
    ctx.headers.clear();
    let reply = Reply::error(&mut ctx.headers, r.status);
    respond(c, &ctx.headers, reply, false, 0, log, head_only, None);
}

/// A response is complete: log it, consume its head, and get ready for the
/// next request — or, when the connection is not kept, half-close it and
/// start lingering. `false`: close the connection now.
fn finish(c: &mut Conn, scratch: &mut Vec<u8>) -> bool {
    let idle = State::Head {
        reading: false,
        drain: 0,
    };
    let State::Sending(mut s) = std::mem::replace(&mut c.state, idle) else {
        unreachable!("finish without an answer");
    };
    log_access(c, &s);
    if let Some(literal) = s.take_literal() {
        c.spare_head = literal;
    }
    let head_len = s.log.head_bytes.min(c.filled);
    c.buf.copy_within(head_len..c.filled, 0);
    c.filled -= head_len;
    c.scanned = 0;
    c.requests += 1;
    if !s.keep {
        let _ = c.stream.shutdown(std::net::Shutdown::Write);
        return start_lingering(c, scratch);
    }
    c.state = State::Head {
        reading: false,
        drain: s.drain,
    };
    c.discard_drained();
    c.since = Instant::now();
    if let State::Head { reading, drain } = &mut c.state {
        *reading = c.filled > 0 || *drain > 0;
    }
    true
}

/// The answer is out and the write side half-closed: linger until the client
/// closes too, so unread input does not turn our close into an RST.
pub(super) fn start_lingering(c: &mut Conn, scratch: &mut Vec<u8>) -> bool {
    c.state = State::Lingering { left: LINGER_BYTES };
    c.since = Instant::now();
    c.filled = 0;
    linger(c, scratch)
}

/// Reads and discards; `false` once the client closed, the budget is spent or
/// reading fails (the deadline is `interest`'s).
fn linger(c: &mut Conn, scratch: &mut Vec<u8>) -> bool {
    if scratch.len() < 4096 {
        scratch.resize(4096, 0);
    }
    loop {
        let State::Lingering { left } = c.state else {
            return false;
        };
        let want = scratch
            .len()
            .min(usize::try_from(left).unwrap_or(usize::MAX));
        match (&c.stream).read(&mut scratch[..want]) {
            Ok(0) => return false,
            Ok(n) if (n as u64) < left => {
                c.state = State::Lingering {
                    left: left - n as u64,
                }
            }
            Ok(_) => return false,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

/// Writes the access line of the answer `s` on `c`: exactly one per answer
/// that got a status, with the body bytes actually sent.
pub(super) fn log_access(c: &Conn, s: &Sending) {
    if !log::log_enabled!(target: "access", log::Level::Info) {
        return;
    }
    let l = &s.log;
    let text = |r: Span| c.buf.get(r.0..r.1).unwrap_or(b"");
    let a = crate::logging::Access {
        peer: c.peer.ip(),
        user: l.user.as_deref(),
        time: l.time,
        method: text(l.method),
        target: text(l.target),
        http10: l.http10,
        status: l.status,
        bytes: s.body_sent(),
        referer: l.referer.map(text),
        user_agent: l.user_agent.map(text),
        range: l.range.map(text),
        duration: l.started.elapsed(),
    };
    crate::logging::log_access(&a);
}
