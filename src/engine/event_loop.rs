//! One worker: a `poll(2)` loop over the connections it owns. It accepts its
//! share of new connections, reads request heads without blocking, answers each
//! complete request through the `Handler` on this same thread (no hand-off), and
//! sends the response without blocking — a response that does not fit the socket
//! is resumed when the socket is writable again, so a slow, idle or stalled
//! client never holds the worker.

use super::head::{self, Framing, MAX_HEADERS, Scan};
use super::{DRAIN_CAP, Shared};
use crate::message::{Body, Handler, Headers, Reply, Request, Segment, error_body, reason};
use crate::sys::{self, POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, PollFd};
use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

/// Largest single write. Large writes are what makes loopback and LAN transfers
/// fast. Measured here, full 1 GiB GET over loopback: 256 KiB ≈ 2.6 GB/s,
/// 1 MiB ≈ 3.6 GB/s, 2 MiB no faster but 2 MiB more RSS per worker.
///
/// Bodies are copied (seek + `Read::take` into this buffer), not sent with
/// `sendfile(2)`: sendfile queues page-cache pages, and a file truncated while
/// they wait in the socket goes out as zeros under an honest-looking length —
/// measured here (tests/robustness.rs, `file_truncated_during_download`). A
/// copy sends exactly the bytes read, and a short read closes the connection.
/// sendfile was not faster on loopback either (random 64 KiB slices slower).
const CHUNK: usize = 1024 * 1024;
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
/// How long accepting pauses after the process ran out of descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How long a worker over its fair share of connections leaves accepting to
/// the others.
const FAIR_SHARE_PAUSE: Duration = Duration::from_millis(5);
/// Connections accepted per wake-up, so a flood cannot starve the others.
const ACCEPT_BURST: usize = 32;

/// One client connection and where it stands.
struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    /// Read buffer: bytes `..filled` are valid; empty while the connection idles.
    buf: Vec<u8>,
    filled: usize,
    /// Requests answered so far.
    requests: u32,
    /// When the current wait began (accept, idle start, first head byte, or
    /// the last byte of progress while sending).
    since: Instant,
    /// Part of a head is buffered (the head deadline applies).
    reading: bool,
    /// Bytes of `buf` already scanned for the end of a head, so that a head
    /// trickled in byte by byte is not rescanned from the start each time.
    scanned: usize,
    /// Body bytes of the previous request still to be read and discarded.
    drain: u64,
    /// The response being sent, if any.
    send: Option<Sending>,
    /// The last response's head buffer, kept for the next one.
    spare_head: Vec<u8>,
    /// Answered and half-closed: bytes we may still read and discard before
    /// closing (see `LINGER_TIME`). `None` while the connection is in use.
    lingering: Option<u64>,
}

/// A response in flight: literal bytes (status line, fields, small bodies) and
/// then slices of a file, with a cursor that survives partial writes.
struct Sending {
    literal: Vec<u8>,
    literal_pos: usize,
    file: Option<File>,
    /// File slices (or multipart pieces) after the literal.
    parts: Parts,
    /// Cursor: current part and offset within it.
    idx: usize,
    off: u64,
    /// Where the file's own position is, when known (saves a seek per chunk).
    file_pos: Option<u64>,
    /// Length of the head (everything before the body) at the literal's start.
    head_len: u64,
    /// Bytes written so far.
    sent: u64,
    keep: bool,
    drain: u64,
    /// Rate limiting: bytes/s and when sending began.
    rate: Option<(u64, Instant)>,
    paused_until: Option<Instant>,
    log: AccessLog,
}

enum Parts {
    None,
    One { start: u64, len: u64 },
    Many(Vec<Segment>),
}

impl Parts {
    fn get(&self, i: usize) -> Option<Piece<'_>> {
        match self {
            Parts::None => None,
            Parts::One { start, len } => (i == 0).then_some(Piece::Slice(*start, *len)),
            Parts::Many(v) => v.get(i).map(|s| match s {
                Segment::Bytes(b) => Piece::Bytes(b),
                Segment::Slice { start, len } => Piece::Slice(*start, *len),
            }),
        }
    }
}

enum Piece<'a> {
    Bytes(&'a [u8]),
    Slice(u64, u64),
}

impl Piece<'_> {
    fn len(&self) -> u64 {
        match self {
            Piece::Bytes(b) => b.len() as u64,
            Piece::Slice(_, len) => *len,
        }
    }
}

/// What the access line needs, kept as offsets into the still-buffered head.
struct AccessLog {
    started: Instant,
    status: u16,
    head_bytes: usize,
    method: (usize, usize),
    target: (usize, usize),
    range: Option<(usize, usize)>,
    http10: bool,
}

/// How far a send got.
enum Pumped {
    Done,
    Blocked,
    Paused,
}

/// The worker's reusable buffers: nothing is allocated per request once warm,
/// beyond what the handler itself needs.
struct Ctx {
    headers: Headers,
    scratch: Vec<u8>,
    spare: Vec<Vec<u8>>,
}

pub(super) fn run<H: Handler>(
    shared: &Shared,
    handler: &H,
    listener: &TcpListener,
    wake_fd: RawFd,
) {
    let cfg = &shared.config;
    let mut conns: Vec<Conn> = Vec::new();
    let mut pfds: Vec<PollFd> = Vec::new();
    let mut ctx = Ctx {
        headers: Headers::default(),
        scratch: Vec::new(),
        spare: Vec::new(),
    };
    let mut accept_paused_until: Option<Instant> = None;
    let mut stop_deadline: Option<Instant> = None;

    loop {
        if stop_deadline.is_none() && sys::shutdown_requested() {
            stop_deadline = Some(Instant::now() + cfg.shutdown_grace);
        }
        if let Some(deadline) = stop_deadline {
            // Idle and half-read connections have nothing in flight: close them.
            conns.retain(|c| {
                let keep = c.send.is_some();
                if !keep {
                    shared.open.fetch_sub(1, Ordering::SeqCst);
                }
                keep
            });
            if conns.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                log::warn!(
                    "shutdown grace period over with {} responses unfinished",
                    conns.len()
                );
                shared.open.fetch_sub(conns.len(), Ordering::SeqCst);
                return;
            }
        }

        let now = Instant::now();
        if accept_paused_until.is_some_and(|t| now >= t) {
            accept_paused_until = None;
        }
        let accepting = stop_deadline.is_none() && accept_paused_until.is_none();
        pfds.clear();
        // The wake fd becomes readable, for every worker at once, on SIGTERM.
        pfds.push(PollFd {
            fd: wake_fd,
            events: if stop_deadline.is_none() { POLLIN } else { 0 },
            revents: 0,
        });
        pfds.push(PollFd {
            fd: listener.as_raw_fd(),
            events: if accepting { POLLIN } else { 0 },
            revents: 0,
        });
        let mut next = stop_deadline.or(accept_paused_until);
        for c in &conns {
            let (events, deadline) = c.interest(cfg);
            pfds.push(PollFd {
                fd: c.stream.as_raw_fd(),
                events,
                revents: 0,
            });
            next = Some(next.map_or(deadline, |n| n.min(deadline)));
        }
        let timeout = next.map(|d| d.saturating_duration_since(now));
        if let Err(e) = sys::poll_fds(&mut pfds, timeout) {
            log::error!("poll failed: {e}");
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        let now = Instant::now();

        // Walk backwards so swap_remove keeps the pfds/conns pairing intact.
        for i in (0..conns.len()).rev() {
            let revents = pfds[i + 2].revents;
            let ready = revents & (POLLIN | POLLOUT | POLLHUP | POLLERR | POLLNVAL) != 0;
            let paused_due = conns[i]
                .send
                .as_ref()
                .and_then(|s| s.paused_until)
                .is_some_and(|t| now >= t);
            let paused = conns[i]
                .send
                .as_ref()
                .is_some_and(|s| s.paused_until.is_some());
            let broken = revents & (POLLERR | POLLHUP | POLLNVAL) != 0;
            let alive = if paused && broken && !paused_due {
                // A rate-paused answer polls for nothing, but errors are always
                // reported: without this the loop would spin until the pause ends.
                let c = &conns[i];
                if let Some(s) = &c.send {
                    log_access(c, s);
                }
                log::debug!("{}: connection broke while paced", c.peer);
                false
            } else if ready || paused_due {
                let readable = revents & (POLLIN | POLLHUP | POLLERR) != 0;
                drive(shared, handler, &mut ctx, &mut conns[i], now, readable)
            } else {
                conns[i].check_deadline(cfg, now, &mut ctx)
            };
            if !alive {
                let c = conns.swap_remove(i);
                if !c.buf.is_empty() && ctx.spare.len() < SPARE_BUFS {
                    ctx.spare.push(c.buf);
                }
                shared.open.fetch_sub(1, Ordering::SeqCst);
            }
        }

        if accepting && pfds[1].revents != 0 {
            accept_burst(shared, listener, &mut conns, &mut accept_paused_until);
        }
    }
}

impl Conn {
    /// Drops the buffered bytes of the unwanted body still owed (`drain`).
    fn discard_drained(&mut self) {
        let k = usize::try_from(self.drain)
            .unwrap_or(usize::MAX)
            .min(self.filled);
        self.buf.copy_within(k..self.filled, 0);
        self.filled -= k;
        self.drain -= k as u64;
        self.scanned = 0;
    }

    /// What to poll for, and when this connection's current wait runs out.
    fn interest(&self, cfg: &super::Config) -> (i16, Instant) {
        if self.lingering.is_some() {
            return (POLLIN, self.since + LINGER_TIME);
        }
        match &self.send {
            Some(s) => match s.paused_until {
                Some(t) => (0, t.min(self.since + cfg.send_timeout)),
                None => (POLLOUT, self.since + cfg.send_timeout),
            },
            // The first request must arrive within the head deadline of the
            // accept; later ones within the idle deadline, then the head one.
            None if self.reading || self.requests == 0 || self.drain > 0 => {
                (POLLIN, self.since + cfg.head_timeout)
            }
            None => (POLLIN, self.since + cfg.idle_timeout),
        }
    }

    /// `false` if the connection's deadline passed and it was closed.
    fn check_deadline(&mut self, cfg: &super::Config, now: Instant, ctx: &mut Ctx) -> bool {
        let (_, deadline) = self.interest(cfg);
        if now < deadline {
            return true;
        }
        if self.lingering.is_some() {
            return false;
        }
        match &self.send {
            Some(s) => {
                log::warn!(
                    "{}: client stopped reading; dropped after {} bytes",
                    self.peer,
                    s.sent
                )
            }
            None if self.reading => {
                // RFC 9110 §15.5.9: a head that never completed gets 408, sent
                // like any answer (then the connection lingers and closes).
                log::warn!("{}: request head not complete in time", self.peer);
                reject(self, ctx, 408, 0);
                return true;
            }
            None => log::debug!("{}: idle connection closed", self.peer),
        }
        false
    }
}

fn accept_burst(
    shared: &Shared,
    listener: &TcpListener,
    conns: &mut Vec<Conn>,
    paused: &mut Option<Instant>,
) {
    let cfg = &shared.config;
    for _ in 0..ACCEPT_BURST {
        // Take no more than a fair share while other workers can take the
        // rest: keeps the load spread over the cores.
        let open = shared.open.load(Ordering::SeqCst);
        if cfg.threads > 1 && conns.len() > open / cfg.threads + 1 {
            // Leave it to another worker; stop polling the listener for a
            // moment, or level-triggered poll would spin on it meanwhile.
            *paused = Some(Instant::now() + FAIR_SHARE_PAUSE);
            return;
        }
        match listener.accept() {
            Ok((stream, peer)) => {
                if shared.open.fetch_add(1, Ordering::SeqCst) >= cfg.max_connections {
                    shared.open.fetch_sub(1, Ordering::SeqCst);
                    log::warn!(
                        "{peer}: refused with 503: {} connections open",
                        cfg.max_connections
                    );
                    refuse_over_capacity(&stream);
                    continue;
                }
                if stream.set_nonblocking(true).is_err() {
                    shared.open.fetch_sub(1, Ordering::SeqCst);
                    continue;
                }
                // Responses are written whole; Nagle would only delay the last
                // segment of each (44 ms per keep-alive response, measured).
                let _ = stream.set_nodelay(true);
                conns.push(Conn {
                    stream,
                    peer,
                    buf: Vec::new(),
                    filled: 0,
                    requests: 0,
                    since: Instant::now(),
                    reading: false,
                    scanned: 0,
                    drain: 0,
                    send: None,
                    spare_head: Vec::new(),
                    lingering: None,
                });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) => match e.raw_os_error() {
                // The peer gave up before we got to it, or a transient network
                // error on that one socket (accept(2), "Error handling").
                Some(103 | 71 | 104 | 110 | 113 | 101 | 100 | 64 | 92 | 93 | 95 | 4) => continue,
                _ => {
                    // EMFILE, ENFILE, ENOBUFS, ENOMEM and anything unknown: never
                    // end the loop (tiny_http went deaf here), pause and retry.
                    log::warn!(
                        "accept failed: {e}; pausing {} ms",
                        ACCEPT_BACKOFF.as_millis()
                    );
                    *paused = Some(Instant::now() + ACCEPT_BACKOFF);
                    return;
                }
            },
        }
    }
}

/// Makes all the progress `c` allows now: send, read, answer, repeat.
/// `false`: the connection is finished and must be dropped.
fn drive<H: Handler>(
    shared: &Shared,
    handler: &H,
    ctx: &mut Ctx,
    c: &mut Conn,
    now: Instant,
    mut may_read: bool,
) -> bool {
    if c.lingering.is_some() {
        return linger(c, &mut ctx.scratch);
    }
    loop {
        if let Some(s) = c.send.as_mut() {
            let sent_before = s.sent;
            let pumped = pump(s, &c.stream, &mut ctx.scratch);
            if s.sent != sent_before {
                // The send deadline counts from the last byte the client took.
                c.since = Instant::now();
            }
            match pumped {
                Ok(Pumped::Done) => {
                    if !finish(c, &mut ctx.scratch) {
                        return false;
                    }
                    if c.lingering.is_some() {
                        return true;
                    }
                }
                Ok(Pumped::Blocked) => return true,
                Ok(Pumped::Paused) => return true,
                Err(e) => {
                    let s = c.send.take().expect("sending");
                    log_access(c, &s);
                    if e.kind() == io::ErrorKind::UnexpectedEof || e.kind() == io::ErrorKind::Other
                    {
                        log::warn!("{}: {e}; connection closed", c.peer);
                    } else {
                        log::debug!("{}: send ended: {e}", c.peer);
                    }
                    return false;
                }
            }
            continue;
        }
        if c.drain == 0 {
            match head::scan(&c.buf[..c.filled], c.scanned.saturating_sub(3)) {
                Scan::Complete(len) => {
                    c.scanned = 0;
                    start(shared, handler, ctx, c, len);
                    continue;
                }
                Scan::Reject(status) => {
                    log::warn!("{}: request refused with {status}", c.peer);
                    reject(c, ctx, status, 0);
                    continue;
                }
                Scan::Incomplete => c.scanned = c.filled,
            }
        }
        // Read only when poll said there is something, or the last read filled
        // the buffer: after a response, a read would mostly return EAGAIN —
        // one wasted system call per request (level-triggered poll tells us).
        if !may_read {
            return true;
        }
        match read_more(c, &mut ctx.spare, now) {
            Ok(Some(filled_all_room)) => may_read = filled_all_room,
            Ok(None) => return true,
            Err(()) => return false,
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
            if c.drain > 0 {
                c.discard_drained();
                if c.drain == 0 && c.filled == 0 {
                    // Body discarded, nothing more yet: idle, not mid-head.
                    c.reading = false;
                    c.since = now;
                }
            }
            if !c.reading && c.filled > 0 {
                c.reading = true;
                c.since = now;
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
/// sets up the response in `c.send`.
fn start<H: Handler>(shared: &Shared, handler: &H, ctx: &mut Ctx, c: &mut Conn, head_len: usize) {
    let cfg = &shared.config;
    let started = Instant::now();
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let base = c.buf.as_ptr() as usize;
    let offsets = |s: &str| {
        let a = s.as_ptr() as usize - base;
        (a, a + s.len())
    };
    ctx.headers.clear();
    let (reply, keep, drain, log, head_only) = match head::parse(&c.buf[..head_len], &mut slots) {
        Err(status) => {
            log::warn!("{}: request refused with {status}", c.peer);
            reject(c, ctx, status, head_len);
            return;
        }
        Ok(h) => {
            // A body we do not want: drain a small one so the connection stays
            // usable; otherwise answer and close (RFC 9112 §9.6). A client
            // waiting for 100 Continue never sends the body (RFC 9110 §10.1.1).
            let drain = match h.framing {
                Framing::None => 0,
                Framing::Length(n) => n,
                Framing::Chunked => u64::MAX,
            };
            let body_ok = drain == 0 || (drain <= DRAIN_CAP && !h.expect_continue);
            let keep = h.keep_alive
                && body_ok
                && c.requests + 1 < cfg.max_requests
                && !sys::shutdown_requested();
            let req = Request::new(h.method, h.target, h.http10, SystemTime::now(), h.headers);
            let reply =
                match catch_unwind(AssertUnwindSafe(|| handler.handle(&req, &mut ctx.headers))) {
                    Ok(r) => r,
                    Err(_) => {
                        log::error!("{}: handler panicked on {} {}", c.peer, h.method, h.target);
                        ctx.headers.clear();
                        ctx.headers.add("Content-Type", "text/plain; charset=utf-8");
                        Reply {
                            status: 500,
                            body: Body::Static(error_body(500)),
                        }
                    }
                };
            let log = AccessLog {
                started,
                status: reply.status,
                head_bytes: head_len,
                method: offsets(h.method),
                target: offsets(h.target),
                range: req.header("range").map(offsets),
                http10: h.http10,
            };
            let head_only = h.method == "HEAD";
            (reply, keep, if keep { drain } else { 0 }, log, head_only)
        }
    };
    let literal = std::mem::take(&mut c.spare_head);
    c.send = Some(prepare(
        literal,
        reply,
        &ctx.headers,
        keep,
        drain,
        log,
        head_only,
        cfg.rate_limit,
    ));
    c.since = Instant::now();
}

/// Sets up the engine's own answer to a request it refuses (400, 408, 414,
/// 431, 505 …): sent like any response — so a full socket cannot cut it short
/// — then the connection lingers and closes. Never rate-limited.
fn reject(c: &mut Conn, ctx: &mut Ctx, status: u16, head_bytes: usize) {
    ctx.headers.clear();
    ctx.headers.add("Content-Type", "text/plain; charset=utf-8");
    let reply = Reply {
        status,
        body: Body::Static(error_body(status)),
    };
    let log = AccessLog {
        started: Instant::now(),
        status,
        head_bytes,
        method: (0, 0),
        target: (0, 0),
        range: None,
        http10: false,
    };
    let literal = std::mem::take(&mut c.spare_head);
    c.send = Some(prepare(
        literal,
        reply,
        &ctx.headers,
        false,
        0,
        log,
        false,
        None,
    ));
    c.reading = false;
    c.since = Instant::now();
}

/// Builds the head and the body cursor of a response.
#[allow(clippy::too_many_arguments)] // one call site; a struct would only rename them
fn prepare(
    mut literal: Vec<u8>,
    reply: Reply,
    fields: &Headers,
    keep: bool,
    drain: u64,
    log: AccessLog,
    head_only: bool,
    rate: Option<u64>,
) -> Sending {
    let status = reply.status;
    let body_len = reply.body.len();
    // RFC 9110 §6.4.1 / §8.6: 304 (and 1xx/204) carry no body and no
    // Content-Length from us.
    let bodiless = status == 304 || status == 204 || status < 200;
    literal.clear();
    let _ = write!(literal, "HTTP/1.1 {status} {}\r\nDate: ", reason(status));
    with_date(|d| literal.extend_from_slice(d.as_bytes()));
    if !bodiless {
        let _ = write!(literal, "\r\nContent-Length: {body_len}");
    }
    literal.extend_from_slice(b"\r\n");
    if !keep {
        literal.extend_from_slice(b"Connection: close\r\n");
    } else if log.http10 {
        literal.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    literal.extend_from_slice(fields.as_str().as_bytes());
    literal.extend_from_slice(b"\r\n");
    let head_len = literal.len() as u64;
    // HEAD: the GET's fields and Content-Length, no body (RFC 9110 §9.3.2).
    let (file, parts) = match reply.body {
        _ if bodiless || head_only => (None, Parts::None),
        Body::Empty => (None, Parts::None),
        Body::Static(s) => {
            literal.extend_from_slice(s.as_bytes());
            (None, Parts::None)
        }
        Body::Bytes(b) => {
            literal.extend_from_slice(&b);
            (None, Parts::None)
        }
        Body::File { file, start, len } => (Some(file), Parts::One { start, len }),
        Body::Parts { file, parts } => (Some(file), Parts::Many(parts)),
    };
    Sending {
        literal,
        literal_pos: 0,
        file_pos: file.as_ref().map(|_| 0),
        file,
        parts,
        idx: 0,
        off: 0,
        head_len,
        sent: 0,
        keep,
        drain,
        rate: rate.map(|r| (r.max(1), Instant::now())),
        paused_until: None,
        log,
    }
}

/// Writes as much of the response as the socket takes now.
fn pump(s: &mut Sending, stream: &TcpStream, scratch: &mut Vec<u8>) -> io::Result<Pumped> {
    if scratch.len() != CHUNK {
        *scratch = vec![0; CHUNK];
    }
    loop {
        let mut limit = CHUNK;
        if let Some((rate, since)) = s.rate {
            // Send only what is due at `rate` bytes/s, in pieces of about a
            // tenth of a second, so the last byte arrives at total/rate.
            let piece = (rate / 10).clamp(1024, CHUNK as u64);
            let due = (since.elapsed().as_secs_f64() * rate as f64) as u64;
            let allowed = due.saturating_sub(s.sent);
            // Wait only for what this response still needs: a small answer
            // must not wait for a whole piece.
            let need = piece.min(s.remaining());
            if allowed < need {
                let wait = (s.sent + need) as f64 / rate as f64 - since.elapsed().as_secs_f64();
                s.paused_until = Some(Instant::now() + Duration::from_secs_f64(wait.max(0.001)));
                return Ok(Pumped::Paused);
            }
            limit = usize::try_from(allowed.min(CHUNK as u64)).unwrap_or(CHUNK);
        }
        s.paused_until = None;
        let n = s.fill(scratch, limit)?;
        if n == 0 {
            return Ok(Pumped::Done);
        }
        match (&*stream).write(&scratch[..n]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(w) => s.advance(w),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Pumped::Blocked),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

impl Sending {
    fn remaining(&self) -> u64 {
        let mut left = (self.literal.len() - self.literal_pos) as u64;
        let mut i = self.idx;
        let mut off = self.off;
        while let Some(p) = self.parts.get(i) {
            left += p.len() - off;
            off = 0;
            i += 1;
        }
        left
    }

    /// Copies up to `limit` bytes from the cursor into `scratch`, without
    /// moving the cursor. A file that ends early (truncated while we send) is
    /// an error: the connection is closed, never padded.
    fn fill(&mut self, scratch: &mut [u8], limit: usize) -> io::Result<usize> {
        let limit = limit.min(scratch.len());
        let mut n = 0;
        let lit = &self.literal[self.literal_pos..];
        let k = lit.len().min(limit);
        scratch[..k].copy_from_slice(&lit[..k]);
        n += k;
        let (mut i, mut off) = (self.idx, self.off);
        while n < limit {
            let Some(piece) = self.parts.get(i) else {
                break;
            };
            match piece {
                Piece::Bytes(b) => {
                    let b = &b[off as usize..];
                    let k = b.len().min(limit - n);
                    scratch[n..n + k].copy_from_slice(&b[..k]);
                    n += k;
                    if k < b.len() {
                        break;
                    }
                }
                // An empty slice (a zero-byte file) has nothing to read.
                Piece::Slice(_, len) if len == off => {}
                Piece::Slice(start, len) => {
                    let Some(mut file) = self.file.as_ref() else {
                        break;
                    };
                    let at = start + off;
                    // File + seek + Read::take: seek only when the file is not
                    // already there (a partial write leaves it ahead).
                    if self.file_pos != Some(at) {
                        file.seek(SeekFrom::Start(at))?;
                    }
                    let want = (len - off).min((limit - n) as u64);
                    let got = loop {
                        match file.take(want).read(&mut scratch[n..n + want as usize]) {
                            Ok(g) => break g,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                            Err(e) => {
                                self.file_pos = None;
                                return Err(io::Error::other(format!("reading the file: {e}")));
                            }
                        }
                    };
                    if got == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("file ended {} bytes before the announced length", len - off),
                        ));
                    }
                    self.file_pos = Some(at + got as u64);
                    n += got;
                    if (got as u64) < len - off {
                        break;
                    }
                }
            }
            i += 1;
            off = 0;
        }
        Ok(n)
    }

    /// Moves the cursor past `w` written bytes.
    fn advance(&mut self, mut w: usize) {
        self.sent += w as u64;
        let lit_left = self.literal.len() - self.literal_pos;
        let k = lit_left.min(w);
        self.literal_pos += k;
        w -= k;
        let mut w = w as u64;
        while w > 0 {
            let Some(piece) = self.parts.get(self.idx) else {
                break;
            };
            let left = piece.len() - self.off;
            if w < left {
                self.off += w;
                return;
            }
            w -= left;
            self.idx += 1;
            self.off = 0;
        }
        // Skip empty parts so `fill` never sees a finished one.
        while self
            .parts
            .get(self.idx)
            .is_some_and(|p| p.len() == self.off)
        {
            self.idx += 1;
            self.off = 0;
        }
    }
}

/// A response is complete: log it, consume its head, and get ready for the
/// next request — or, when the connection is not kept, half-close it and
/// start lingering. `false`: close the connection now.
fn finish(c: &mut Conn, scratch: &mut Vec<u8>) -> bool {
    let mut s = c.send.take().expect("sending");
    log_access(c, &s);
    // A listing's big buffer is not worth keeping for the next head.
    if s.literal.capacity() <= 64 * 1024 {
        c.spare_head = std::mem::take(&mut s.literal);
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
    c.drain = s.drain;
    c.discard_drained();
    c.since = Instant::now();
    c.reading = c.filled > 0 || c.drain > 0;
    true
}

/// The answer is out and the write side half-closed: linger until the client
/// closes too, so unread input does not turn our close into an RST.
fn start_lingering(c: &mut Conn, scratch: &mut Vec<u8>) -> bool {
    c.lingering = Some(LINGER_BYTES);
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
        let Some(left) = c.lingering else {
            return false;
        };
        let want = scratch
            .len()
            .min(usize::try_from(left).unwrap_or(usize::MAX));
        match (&c.stream).read(&mut scratch[..want]) {
            Ok(0) => return false,
            Ok(n) if (n as u64) < left => c.lingering = Some(left - n as u64),
            Ok(_) => return false,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

fn log_access(c: &Conn, s: &Sending) {
    if !log::log_enabled!(log::Level::Info) {
        return;
    }
    let l = &s.log;
    let text = |r: (usize, usize)| std::str::from_utf8(&c.buf[r.0..r.1]).unwrap_or("?");
    log::info!(
        "{} \"{} {} HTTP/1.{}\" {} {} \"{}\" {}ms",
        c.peer,
        text(l.method),
        text(l.target),
        if l.http10 { 0 } else { 1 },
        l.status,
        s.sent.saturating_sub(s.head_len),
        l.range.map_or("-", text),
        l.started.elapsed().as_millis()
    );
}

/// The 503 for a connection over `--max-connections`, which is never
/// registered: one best-effort write of a fresh socket's first bytes (it
/// always fits), then close. Never blocks.
fn refuse_over_capacity(mut stream: &TcpStream) {
    let body = error_body(503);
    let answer = with_date(|date| {
        format!(
            "HTTP/1.1 503 {}\r\nDate: {date}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nRetry-After: 5\r\nConnection: close\r\n\r\n{body}",
            reason(503),
            body.len(),
        )
    });
    let _ = stream.set_nonblocking(true);
    let _ = stream.write(answer.as_bytes());
    let _ = stream.shutdown(std::net::Shutdown::Write);
}

thread_local! {
    /// The `Date` value, formatted once per second per thread.
    static DATE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

fn with_date<R>(f: impl FnOnce(&str) -> R) -> R {
    let now = SystemTime::now();
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with(|cell| {
        let mut d = cell.borrow_mut();
        if d.0 != secs {
            // The clock of a running host is within 1970..9999; should it not
            // be (a board without RTC before NTP), the epoch is a better Date
            // than a panic outside the handler's catch_unwind.
            let date = crate::validators::http_date(now)
                .unwrap_or_else(|| httpdate::HttpDate::from(SystemTime::UNIX_EPOCH));
            d.1.clear();
            let _ = std::fmt::Write::write_fmt(&mut d.1, format_args!("{date}"));
            d.0 = secs;
        }
        f(&d.1)
    })
}
