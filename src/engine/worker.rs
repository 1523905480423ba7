//! Workers: each takes a connection with a complete request head, parses it
//! strictly, asks the `Handler` for the response and writes it exactly — the
//! promised `Content-Length` or a closed connection, never anything in between —
//! then keeps answering while the next request is already readable.

use super::head::{self, Framing, MAX_HEADERS, Scan};
use super::sys::{self, POLLIN, POLLOUT};
use super::{Conn, DRAIN_CAP, Shared, error_response};
use crate::message::{Body, Handler, Headers, Reply, Request, Segment, error_body, reason};
use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

/// Size of the writes that carry bodies: large writes are what makes loopback
/// and LAN transfers fast (engine-notes: 256 KiB ≈ sendfile on loopback).
const CHUNK: usize = 256 * 1024;

/// A worker's reusable buffers: nothing is allocated per request once warm.
struct Ctx {
    headers: Headers,
    head: Vec<u8>,
    out: Vec<u8>,
}

pub(super) fn run<H: Handler>(shared: &Shared, handler: &H) {
    let mut ctx = Ctx {
        headers: Headers::default(),
        head: Vec::with_capacity(512),
        out: Vec::new(),
    };
    loop {
        let conn = {
            let mut q = shared.ready.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(c) = q.pop_front() {
                    break c;
                }
                if shared.is_stopping() {
                    return;
                }
                // The time-out only guards against a missed notification.
                q = shared
                    .ready_cv
                    .wait_timeout(q, Duration::from_secs(1))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        };
        match serve_conn(shared, handler, &mut ctx, conn) {
            Some(c) => {
                shared
                    .back
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(c);
                shared.wake();
            }
            None => shared.closed(),
        }
    }
}

/// Answers requests on `c` while complete ones are available without waiting.
/// `Some(c)`: hand it back to the readiness loop; `None`: it has been closed.
fn serve_conn<H: Handler>(
    shared: &Shared,
    handler: &H,
    ctx: &mut Ctx,
    mut c: Conn,
) -> Option<Conn> {
    loop {
        let drain = answer(shared, handler, ctx, &mut c)?;
        c.buf.copy_within(c.head_len..c.filled, 0);
        c.filled -= c.head_len;
        c.head_len = 0;
        c.requests += 1;
        if drain > 0 && !drain_body(&mut c, drain, shared.config.head_timeout) {
            return None;
        }
        // Pipelined or freshly arrived: answer it here, without a hand-off.
        loop {
            match head::scan(&c.buf[..c.filled], 0) {
                Scan::Complete(n) => {
                    c.head_len = n;
                    break;
                }
                Scan::Reject(status) => {
                    log::warn!("{}: request refused with {status}", c.peer);
                    send_error(ctx, &c.stream, status, shared.config.send_timeout);
                    return None;
                }
                Scan::Incomplete => {}
            }
            if c.filled == c.buf.len() {
                let grown = (c.buf.len() * 2).clamp(1024, head::MAX_HEAD);
                if grown <= c.buf.len() {
                    send_error(ctx, &c.stream, 431, shared.config.send_timeout);
                    return None;
                }
                c.buf.resize(grown, 0);
            }
            match (&c.stream).read(&mut c.buf[c.filled..]) {
                Ok(0) => return None,
                Ok(n) => c.filled += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    c.since = Instant::now();
                    c.reading = c.filled > 0;
                    return Some(c);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
    }
}

/// Parses and answers the head at the start of `c.buf`. `Some(n)`: the
/// connection stays open once `n` body bytes are discarded; `None`: close it.
fn answer<H: Handler>(shared: &Shared, handler: &H, ctx: &mut Ctx, c: &mut Conn) -> Option<u64> {
    let cfg = &shared.config;
    let started = Instant::now();
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let head = match head::parse(&c.buf[..c.head_len], &mut slots) {
        Ok(h) => h,
        Err(status) => {
            log::warn!("{}: request refused with {status}", c.peer);
            send_error(ctx, &c.stream, status, cfg.send_timeout);
            return None;
        }
    };
    // A body we do not want: drain a small one so the connection stays usable;
    // otherwise answer and close (RFC 9112 §9.6; RFC 9110 §10.1.1 for Expect —
    // a client that waits for 100 Continue never sends the body, so close).
    let drain = match head.framing {
        Framing::None => 0,
        Framing::Length(n) => n,
        Framing::Chunked => u64::MAX,
    };
    let body_ok = drain == 0 || (drain <= DRAIN_CAP && !head.expect_continue);
    let keep = head.keep_alive
        && body_ok
        && c.requests + 1 < cfg.max_requests
        && !shared.stopping.load(Ordering::Relaxed);

    let req = Request::new(
        head.method,
        head.target,
        head.http10,
        SystemTime::now(),
        head.headers,
    );
    ctx.headers.clear();
    let reply = match catch_unwind(AssertUnwindSafe(|| handler.handle(&req, &mut ctx.headers))) {
        Ok(r) => r,
        Err(_) => {
            log::error!(
                "{}: handler panicked on {} {}",
                c.peer,
                head.method,
                head.target
            );
            ctx.headers.clear();
            ctx.headers.add("Content-Type", "text/plain; charset=utf-8");
            Reply {
                status: 500,
                body: Body::Static(error_body(500)),
            }
        }
    };
    let status = reply.status;
    let head_only = head.method == "HEAD";
    let result = write_reply(ctx, &c.stream, reply, keep, head.http10, head_only, cfg);
    let (ok, body_bytes) = match result {
        Ok(n) => (true, n),
        Err((e, n)) => {
            if matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof | io::ErrorKind::Other
            ) {
                log::warn!(
                    "{}: {} {}: {e}; connection closed",
                    c.peer,
                    head.method,
                    head.target
                );
            } else {
                log::debug!("{}: {} {}: {e}", c.peer, head.method, head.target);
            }
            (false, n)
        }
    };
    if log::log_enabled!(log::Level::Info) {
        log::info!(
            "{} \"{} {} HTTP/1.{}\" {} {} \"{}\" {}ms",
            c.peer,
            head.method,
            head.target,
            if head.http10 { 0 } else { 1 },
            status,
            body_bytes,
            req.header("range").unwrap_or("-"),
            started.elapsed().as_millis()
        );
    }
    (ok && keep).then_some(drain)
}

/// Writes status line, fields and body. Returns body bytes written; on error
/// the connection must be closed (what was promised was not delivered).
fn write_reply(
    ctx: &mut Ctx,
    stream: &TcpStream,
    reply: Reply,
    keep: bool,
    http10: bool,
    head_only: bool,
    cfg: &super::Config,
) -> Result<u64, (io::Error, u64)> {
    let status = reply.status;
    let body_len = reply.body.len();
    // RFC 9110 §6.4.1 / §8.6: 304 (and 1xx/204) carry no body and we send no
    // Content-Length for them; HEAD carries the GET's length and no body.
    let bodiless = status == 304 || status == 204 || status < 200;
    let head = &mut ctx.head;
    head.clear();
    let _ = write!(head, "HTTP/1.1 {status} {}\r\nDate: ", reason(status));
    with_date(|d| head.extend_from_slice(d.as_bytes()));
    if !bodiless {
        let _ = write!(head, "\r\nContent-Length: {body_len}");
    }
    head.extend_from_slice(b"\r\n");
    if !keep {
        head.extend_from_slice(b"Connection: close\r\n");
    } else if http10 {
        head.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    head.extend_from_slice(ctx.headers.as_str().as_bytes());
    head.extend_from_slice(b"\r\n");

    if ctx.out.len() != CHUNK {
        ctx.out = vec![0; CHUNK];
    }
    let mut out = Out::new(stream, &mut ctx.out, cfg.send_timeout, cfg.rate_limit);
    let head_len = ctx.head.len() as u64;
    let body_written = |out: &Out| out.sent.saturating_sub(head_len);
    if let Err(e) = out.push(&ctx.head) {
        return Err((e, 0));
    }
    let r = if head_only || bodiless {
        Ok(())
    } else {
        match &reply.body {
            Body::Empty => Ok(()),
            Body::Static(s) => out.push(s.as_bytes()),
            Body::Bytes(b) => out.push(b),
            Body::File { file, start, len } => out.copy_file(file, *start, *len),
            Body::Parts { file, parts } => parts.iter().try_for_each(|p| match p {
                Segment::Bytes(b) => out.push(b),
                Segment::Slice { start, len } => out.copy_file(file, *start, *len),
            }),
        }
    };
    match r.and_then(|()| out.flush()) {
        Ok(()) => Ok(body_written(&out)),
        Err(e) => Err((e, body_written(&out))),
    }
}

/// A write buffer in front of the socket: the head and the first body bytes
/// leave in one write, bodies in `CHUNK`-sized writes.
struct Out<'a> {
    stream: &'a TcpStream,
    buf: &'a mut [u8],
    pos: usize,
    /// Bytes per write; smaller when a rate limit is set so pacing stays smooth.
    limit: usize,
    timeout: Duration,
    sent: u64,
    rate: Option<(u64, Instant)>,
}

impl<'a> Out<'a> {
    fn new(stream: &'a TcpStream, buf: &'a mut [u8], timeout: Duration, rate: Option<u64>) -> Self {
        let limit = match rate {
            // About ten writes a second, at least 4 KiB each.
            Some(r) => ((r / 10) as usize).clamp(4096, buf.len()),
            None => buf.len(),
        };
        Out {
            stream,
            buf,
            pos: 0,
            limit,
            timeout,
            sent: 0,
            rate: rate.map(|r| (r.max(1), Instant::now())),
        }
    }

    fn push(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            if self.pos == self.limit {
                self.flush()?;
            }
            let n = data.len().min(self.limit - self.pos);
            self.buf[self.pos..self.pos + n].copy_from_slice(&data[..n]);
            self.pos += n;
            data = &data[n..];
        }
        Ok(())
    }

    /// Streams `len` bytes of `file` from `start`: seek, then `Read::take`.
    /// A file that ends early (truncated while we send) is an error, so the
    /// caller closes the connection instead of padding or reusing it.
    fn copy_file(&mut self, mut file: &File, start: u64, len: u64) -> io::Result<()> {
        file.seek(SeekFrom::Start(start))?;
        let mut slice = file.take(len);
        let mut left = len;
        while left > 0 {
            if self.pos == self.limit {
                self.flush()?;
            }
            let room = (self.limit - self.pos).min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = match slice.read(&mut self.buf[self.pos..self.pos + room]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("file ended {left} bytes before the announced length"),
                    ));
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io::Error::other(format!("reading the file: {e}"))),
            };
            self.pos += n;
            left -= n as u64;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.pos == 0 {
            return Ok(());
        }
        if let Some((rate, since)) = self.rate {
            // Hold these bytes until they are due at `rate` bytes/s, counting
            // them too: the last byte then arrives at total/rate, not a chunk early.
            let due = Duration::from_secs_f64((self.sent + self.pos as u64) as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(since.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        send_all(self.stream, &self.buf[..self.pos], self.timeout)?;
        self.sent += self.pos as u64;
        self.pos = 0;
        Ok(())
    }
}

/// Writes all of `data` to a non-blocking socket, failing with `TimedOut` if no
/// byte can be written for `timeout` (a client that stopped reading).
fn send_all(mut stream: &TcpStream, mut data: &[u8], timeout: Duration) -> io::Result<()> {
    while !data.is_empty() {
        match stream.write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if !sys::wait_fd(stream.as_raw_fd(), POLLOUT, timeout)? {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "client stopped reading",
                    ));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads and discards `n` body bytes (buffered ones first); `false` if the
/// client does not deliver them in time.
fn drain_body(c: &mut Conn, n: u64, timeout: Duration) -> bool {
    let buffered = usize::try_from(n).unwrap_or(usize::MAX).min(c.filled);
    c.buf.copy_within(buffered..c.filled, 0);
    c.filled -= buffered;
    let mut left = n - buffered as u64;
    let mut sink = [0u8; 4096];
    while left > 0 {
        let want = sink.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        match (&c.stream).read(&mut sink[..want]) {
            Ok(0) => return false,
            Ok(k) => left -= k as u64,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if !matches!(
                    sys::wait_fd(c.stream.as_raw_fd(), POLLIN, timeout),
                    Ok(true)
                ) {
                    return false;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

fn send_error(ctx: &mut Ctx, stream: &TcpStream, status: u16, timeout: Duration) {
    error_response(status, &mut ctx.head);
    let _ = send_all(stream, &ctx.head, timeout);
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
            // be, the epoch is a better Date than a panic.
            let t = if secs < 253_402_300_800 {
                now
            } else {
                SystemTime::UNIX_EPOCH
            };
            d.1 = httpdate::fmt_http_date(t);
            d.0 = secs;
        }
        f(&d.1)
    })
}

pub(super) fn http_date_now() -> String {
    with_date(str::to_owned)
}
