//! Request bodies, received on a small pool of body threads. A worker whose
//! handler takes a body hands the whole connection here; a body thread reads
//! the body with blocking reads (Content-Length or chunked), feeds the sink —
//! which may write to a slow disk and `fsync` — asks it for the final answer
//! and hands the connection back to its worker to send it. The readiness
//! loops that serve downloads therefore never wait for a disk on a body's
//! behalf.
//!
//! Bounded: at most `Config::body_threads` bodies at once (threads start on
//! demand and end after a minute idle, so an idle server holds none), a
//! queue of a few more, and a 503 beyond that. One buffer per thread, so
//! memory never grows with what a client sends.
//!
//! Deadlines (Apache `mod_reqtimeout`'s shape): no byte for `body_timeout`
//! ends the body, and so does falling behind `body_timeout` plus one second
//! per `min_body_rate` bytes received — a client trickling a byte a second
//! is cut off like a slowloris head.

use super::chunked::Decoder;
use super::conn::{self, Conn, Receiving, State};
use super::head::Framing;
use super::{Config, Shared};
use crate::message::{Abort, Headers, Reply};
use crate::sys;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::ops::ControlFlow;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Size of each body thread's read buffer: large reads make fast uploads
/// (a few system calls per MiB) at a fixed cost per busy thread.
const BODY_BUF: usize = 512 * 1024;
/// How often a blocked read wakes to check deadlines and shutdown.
const TICK: Duration = Duration::from_millis(500);
/// A body thread with nothing to do for this long ends.
const IDLE_THREAD: Duration = Duration::from_secs(60);
/// Body threads' stacks: sinks are shallow; hashing state lives on the heap.
const BODY_STACK: usize = 256 * 1024;

/// A connection on its way through a body thread, and the worker it
/// returns to.
struct Job {
    conn: Conn,
    home: usize,
}

#[derive(Default)]
struct PoolState {
    queue: VecDeque<Job>,
    /// Threads alive, and how many of them wait for work.
    threads: usize,
    idle: usize,
}

/// The body threads and their queue.
pub(super) struct Pool {
    state: Mutex<PoolState>,
    work: Condvar,
    /// Signalled when a thread ends, for `wait_idle`.
    ended: Condvar,
}

impl Pool {
    pub fn new() -> Pool {
        Pool {
            state: Mutex::new(PoolState::default()),
            work: Condvar::new(),
            ended: Condvar::new(),
        }
    }

    /// Takes `conn` (in `State::Receiving`) for a body thread. `Err` gives
    /// it back when every thread is busy and the queue is full.
    #[allow(clippy::result_large_err)] // the connection itself goes back; boxing it would allocate per body
    pub fn submit(shared: &Arc<Shared>, conn: Conn, home: usize) -> Result<(), Conn> {
        let pool = &shared.bodies;
        let cfg = &shared.config;
        let mut st = pool.state.lock().unwrap_or_else(|e| e.into_inner());
        let busy = st.threads - st.idle + st.queue.len();
        if busy >= cfg.body_threads + cfg.body_queue {
            return Err(conn);
        }
        st.queue.push_back(Job { conn, home });
        if st.idle > 0 {
            pool.work.notify_one();
        } else if st.threads < cfg.body_threads {
            let shared = Arc::clone(shared);
            let spawned = std::thread::Builder::new()
                .name("body".into())
                .stack_size(BODY_STACK)
                .spawn(move || body_thread(shared));
            match spawned {
                Ok(_) => st.threads += 1,
                // The job waits for a running thread; with none, it is
                // refused below by the worker's deadline-free path.
                Err(e) => log::warn!("could not start a body thread: {e}"),
            }
        }
        if st.threads == 0 {
            let job = st.queue.pop_back().expect("just queued");
            return Err(job.conn);
        }
        Ok(())
    }

    /// Waits up to `limit` for every body thread to finish its current
    /// body (at shutdown, so that sinks can keep what arrived).
    pub fn wait_idle(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while st.threads > st.idle || !st.queue.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            self.work.notify_all();
            st = self
                .ended
                .wait_timeout(st, left.min(TICK))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

fn body_thread(shared: Arc<Shared>) {
    let pool = &shared.bodies;
    let mut buf = vec![0u8; BODY_BUF];
    let mut headers = Headers::default();
    loop {
        let job = {
            let mut st = pool.state.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(job) = st.queue.pop_front() {
                    break Some(job);
                }
                if sys::shutdown_requested() && st.queue.is_empty() {
                    break None;
                }
                st.idle += 1;
                let (s, timeout) = pool
                    .work
                    .wait_timeout(st, IDLE_THREAD)
                    .unwrap_or_else(|e| e.into_inner());
                st = s;
                st.idle -= 1;
                if timeout.timed_out() && st.queue.is_empty() {
                    break None;
                }
            }
        };
        let Some(Job { mut conn, home }) = job else {
            let mut st = pool.state.lock().unwrap_or_else(|e| e.into_inner());
            st.threads -= 1;
            pool.ended.notify_all();
            return;
        };
        // A sink that panics loses its connection, not the thread: the
        // pool's count and the worker's inbox must stay true, or uploads
        // would stop for good after `--max-uploads` panics.
        let back = catch_unwind(AssertUnwindSafe(|| {
            receive(&shared, &mut conn, &mut buf, &mut headers)
        }))
        .unwrap_or_else(|_| {
            log::error!("{}: a request body's handler panicked", conn.peer);
            false
        });
        if back {
            shared.inboxes[home].put(conn);
        } else {
            shared.inboxes[home].forget();
        }
        pool.ended.notify_all();
    }
}

/// How a body ended, from the engine's side.
enum End {
    /// All of it arrived.
    Complete,
    /// The sink stopped reading (its answer follows; the rest is unread).
    Stopped,
    Aborted(Abort),
}

/// Receives the body of the request in `conn` and prepares the answer.
/// `true`: hand the connection back to send it; `false`: it is finished
/// (the client is gone, or the server is stopping).
fn receive(shared: &Shared, conn: &mut Conn, buf: &mut [u8], h: &mut Headers) -> bool {
    let cfg = &shared.config;
    let idle = State::Head {
        reading: false,
        drain: 0,
    };
    let State::Receiving(r) = std::mem::replace(&mut conn.state, idle) else {
        unreachable!("a body thread got a connection without a body");
    };
    let Receiving {
        rx,
        framing,
        expect_continue,
        keep_alive,
        head_len,
        head_only,
        log,
        fields,
    } = *r;
    let answer = |conn: &mut Conn, h: &Headers, reply, keep| {
        answer(shared, conn, h, reply, keep, head_only, log)
    };
    let mut sink = rx.sink;
    let has_body = framing != Framing::None;
    if blocking(conn, cfg).is_err() {
        sink.abort(Abort::ClientGone);
        return false;
    }
    h.clear();
    h.extend(&fields);
    if let Err(reply) = sink.begin(h) {
        // Refused before the body: with 100-continue it never comes; without,
        // the connection cannot be reused unless there was none.
        return answer(conn, h, reply, keep_alive && !has_body);
    }
    if expect_continue && has_body {
        // RFC 9110 §10.1.1: only now that the body is wanted.
        if (&conn.stream)
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .is_err()
        {
            sink.abort(Abort::ClientGone);
            return false;
        }
    }
    let mut body = BodyReader {
        framing,
        left: match framing {
            Framing::Length(n) => n,
            _ => 0,
        },
        decoder: Decoder::default(),
        received: 0,
        max: rx.max,
    };
    // Body bytes that came in with the head are in the connection's buffer
    // behind it; whatever follows the body there is the next request.
    let buffered = conn.buf.get(head_len..conn.filled).unwrap_or(&[]);
    let (used, mut end) = body.feed(buffered, sink.as_mut());
    let mut leftover: Vec<u8> = conn.buf[head_len + used..conn.filled].to_vec();
    if end.is_none() {
        end = Some(read_body(
            shared,
            conn,
            buf,
            &mut body,
            sink.as_mut(),
            &mut leftover,
        ));
    }
    let end = end.unwrap_or(End::Complete);
    // The head stays at the front of the buffer for the access line; what
    // came after the body follows it, if it fits.
    conn.filled = head_len;
    let mut keep = keep_alive;
    if matches!(end, End::Complete) && !leftover.is_empty() {
        let filled = head_len + leftover.len();
        if filled <= super::head::MAX_HEAD {
            if conn.buf.len() < filled {
                conn.buf.resize(filled, 0);
            }
            conn.buf[head_len..filled].copy_from_slice(&leftover);
            conn.filled = filled;
        } else {
            keep = false;
        }
    }
    match end {
        // A sink that stopped early leaves body bytes unread: the
        // connection cannot go on.
        End::Complete | End::Stopped => {
            h.clear();
            h.extend(&fields);
            let reply = sink.finish(h);
            answer(conn, h, reply, keep && matches!(end, End::Complete))
        }
        End::Aborted(why) => {
            log::warn!(
                "{}: request body ended after {} bytes: {why}",
                conn.peer,
                body.received
            );
            sink.abort(why);
            let status = match why {
                Abort::Malformed => 400,
                Abort::TooLarge => 413,
                Abort::TooSlow => 408,
                Abort::ClientGone | Abort::Shutdown | Abort::Busy => return false,
            };
            h.clear();
            h.extend(&fields);
            let reply = Reply::error(h, status);
            answer(conn, h, reply, false)
        }
    }
}

/// Puts the socket in blocking mode with a read timeout of one tick, so a
/// body thread can sleep in `read` and still keep its deadlines.
fn blocking(conn: &Conn, cfg: &Config) -> io::Result<()> {
    conn.stream.set_nonblocking(false)?;
    conn.stream.set_read_timeout(Some(TICK))?;
    conn.stream.set_write_timeout(Some(cfg.send_timeout))
}

/// Prepares `reply` on `conn` for its worker to send. `true`: hand it back.
fn answer(
    shared: &Shared,
    conn: &mut Conn,
    h: &Headers,
    reply: Reply,
    keep: bool,
    head_only: bool,
    log: conn::AccessLog,
) -> bool {
    if conn.stream.set_nonblocking(true).is_err() {
        return false;
    }
    let keep = keep && !sys::shutdown_requested();
    conn::respond(
        conn,
        h,
        reply,
        keep,
        0,
        log,
        head_only,
        shared.config.rate_limit,
    );
    true
}

/// The body's framing and progress.
struct BodyReader {
    framing: Framing,
    /// Content-Length bytes still to come.
    left: u64,
    decoder: Decoder,
    received: u64,
    max: u64,
}

impl BodyReader {
    /// Feeds body bytes found in `input` to the sink. Returns how much of
    /// `input` belongs to the body, and how the body ended if it did.
    fn feed(
        &mut self,
        input: &[u8],
        sink: &mut dyn crate::message::BodySink,
    ) -> (usize, Option<End>) {
        match self.framing {
            Framing::None => (0, Some(End::Complete)),
            Framing::Length(_) => {
                let n = usize::try_from(self.left)
                    .unwrap_or(usize::MAX)
                    .min(input.len());
                self.left -= n as u64;
                self.received += n as u64;
                if n > 0 && sink.write(&input[..n]).is_break() {
                    return (n, Some(End::Stopped));
                }
                (n, (self.left == 0).then_some(End::Complete))
            }
            Framing::Chunked => {
                let mut pos = 0;
                while pos < input.len() && !self.decoder.is_done() {
                    let step = match self.decoder.step(&input[pos..]) {
                        Ok(s) => s,
                        Err(e) => {
                            log::debug!("chunked body refused: {e}");
                            return (pos, Some(End::Aborted(Abort::Malformed)));
                        }
                    };
                    pos += step.used;
                    if !step.data.is_empty() {
                        self.received += step.data.len() as u64;
                        if self.received > self.max {
                            return (pos, Some(End::Aborted(Abort::TooLarge)));
                        }
                        if sink.write(step.data) == ControlFlow::Break(()) {
                            return (pos, Some(End::Stopped));
                        }
                    }
                    if step.used == 0 {
                        break;
                    }
                }
                (pos, self.decoder.is_done().then_some(End::Complete))
            }
        }
    }
}

/// Reads the rest of the body from the socket, keeping the deadlines.
/// Bytes read past the end of a chunked body go to `leftover`.
fn read_body(
    shared: &Shared,
    conn: &mut Conn,
    buf: &mut [u8],
    body: &mut BodyReader,
    sink: &mut dyn crate::message::BodySink,
    leftover: &mut Vec<u8>,
) -> End {
    let cfg = &shared.config;
    let started = Instant::now();
    let mut last = started;
    loop {
        if shared.grace_over() {
            return End::Aborted(Abort::Shutdown);
        }
        // Content-Length: never read past the body, so a pipelined request
        // stays in the socket for the worker.
        let want = match body.framing {
            Framing::Length(_) => usize::try_from(body.left)
                .unwrap_or(usize::MAX)
                .min(buf.len()),
            _ => buf.len(),
        };
        match (&conn.stream).read(&mut buf[..want]) {
            Ok(0) => return End::Aborted(Abort::ClientGone),
            Ok(n) => {
                last = Instant::now();
                let (used, end) = body.feed(&buf[..n], sink);
                if let Some(end) = end {
                    leftover.extend_from_slice(&buf[used..n]);
                    return end;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut => {
            }
            Err(e) => {
                log::debug!("{}: reading the body failed: {e}", conn.peer);
                return End::Aborted(Abort::ClientGone);
            }
        }
        let now = Instant::now();
        let credit =
            Duration::from_secs_f64(body.received as f64 / cfg.min_body_rate.max(1) as f64);
        if now.duration_since(last) >= cfg.body_timeout
            || now.duration_since(started) >= cfg.body_timeout + credit
        {
            return End::Aborted(Abort::TooSlow);
        }
    }
}

/// What the worker does with a connection its handler gave a sink: a body
/// thread takes it, or — every thread busy and the queue full — it is
/// answered 503 with `Retry-After` and closed, the sink told why.
pub(super) fn hand_off(
    shared: &Arc<Shared>,
    conn: Conn,
    home: usize,
    ctx: &mut conn::Ctx,
) -> Option<Conn> {
    shared.inboxes[home].away();
    match Pool::submit(shared, conn, home) {
        Ok(()) => None,
        Err(mut conn) => {
            shared.inboxes[home].forget();
            let idle = State::Head {
                reading: false,
                drain: 0,
            };
            let State::Receiving(r) = std::mem::replace(&mut conn.state, idle) else {
                unreachable!("hand_off without a body");
            };
            log::warn!("{}: refused with 503: every body thread is busy", conn.peer);
            r.rx.sink.abort(Abort::Busy);
            ctx.headers.clear();
            ctx.headers.add("Retry-After", "5");
            let reply = Reply::error(&mut ctx.headers, 503);
            conn::respond(
                &mut conn,
                &ctx.headers,
                reply,
                false,
                0,
                r.log,
                r.head_only,
                None,
            );
            Some(conn)
        }
    }
}
