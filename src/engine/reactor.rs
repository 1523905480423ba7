//! The readiness thread: accepts connections, reads request heads without
//! blocking, enforces the head and idle deadlines, and hands connections with a
//! complete head to the workers. It never waits on a single client.

use super::head::{self, Scan};
use super::sys::{self, POLLERR, POLLHUP, POLLIN, POLLNVAL, PollFd};
use super::{Conn, Shared, error_response};
use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// First size of a read buffer; it doubles up to `MAX_HEAD` as a head needs.
const INITIAL_BUF: usize = 2048;
/// Read buffers kept for reuse, so a keep-alive request costs no allocation.
const SPARE_BUFS: usize = 64;
/// How long accepting pauses after the process ran out of descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Connections accepted per wake-up, so a flood cannot starve reads.
const ACCEPT_BURST: usize = 64;

pub(super) fn run(
    shared: &Shared,
    listener: TcpListener,
    mut wake_rx: UnixStream,
) -> io::Result<()> {
    let cfg = &shared.config;
    let mut conns: Vec<Conn> = Vec::new();
    let mut spare: Vec<Vec<u8>> = Vec::new();
    let mut pfds: Vec<PollFd> = Vec::new();
    let mut accept_paused_until: Option<Instant> = None;
    let mut stop_deadline: Option<Instant> = None;
    let mut scratch = Vec::new();

    loop {
        // Connections the workers are done with come back here to be watched.
        {
            let mut back = shared.back.lock().unwrap_or_else(|e| e.into_inner());
            for mut c in back.drain(..) {
                if c.filled == 0 && !c.buf.is_empty() && spare.len() < SPARE_BUFS {
                    spare.push(std::mem::take(&mut c.buf));
                }
                conns.push(c);
            }
        }

        if sys::shutdown_requested() && stop_deadline.is_none() {
            log::info!("shutting down: no new connections, finishing in-flight responses");
            shared.stopping.store(true, Ordering::SeqCst);
            shared.ready_cv.notify_all();
            stop_deadline = Some(Instant::now() + cfg.shutdown_grace);
        }
        if let Some(deadline) = stop_deadline {
            // Idle and half-read connections have nothing in flight: close them.
            for _ in conns.drain(..) {
                shared.open.fetch_sub(1, Ordering::SeqCst);
            }
            if shared.open.load(Ordering::SeqCst) == 0 {
                return Ok(());
            }
            if Instant::now() >= deadline {
                log::warn!(
                    "shutdown grace period over with {} responses unfinished",
                    shared.open.load(Ordering::SeqCst)
                );
                return Ok(());
            }
        }

        let now = Instant::now();
        if accept_paused_until.is_some_and(|t| now >= t) {
            accept_paused_until = None;
        }
        let accepting = stop_deadline.is_none() && accept_paused_until.is_none();

        pfds.clear();
        pfds.push(PollFd {
            fd: wake_rx.as_raw_fd(),
            events: POLLIN,
            revents: 0,
        });
        pfds.push(PollFd {
            fd: listener.as_raw_fd(),
            events: if accepting { POLLIN } else { 0 },
            revents: 0,
        });
        let mut next_deadline = stop_deadline.or(accept_paused_until);
        for c in &conns {
            pfds.push(PollFd {
                fd: c.stream.as_raw_fd(),
                events: POLLIN,
                revents: 0,
            });
            let d = c.deadline(cfg);
            next_deadline = Some(next_deadline.map_or(d, |n| n.min(d)));
        }
        let timeout = next_deadline.map(|d| d.saturating_duration_since(now));
        sys::poll_fds(&mut pfds, timeout)?;
        let now = Instant::now();

        if pfds[0].revents != 0 {
            let mut sink = [0u8; 64];
            while matches!(wake_rx.read(&mut sink), Ok(n) if n > 0) {}
        }
        let listener_ready = pfds[1].revents != 0;

        // Walk backwards so swap_remove keeps the pfds/conns pairing intact.
        for i in (0..conns.len()).rev() {
            let revents = pfds[i + 2].revents;
            if revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL) != 0 {
                match read_head(&mut conns[i], &mut spare, now) {
                    Step::Wait => {}
                    Step::Ready => {
                        let c = conns.swap_remove(i);
                        let mut q = shared.ready.lock().unwrap_or_else(|e| e.into_inner());
                        q.push_back(c);
                        drop(q);
                        shared.ready_cv.notify_one();
                        continue;
                    }
                    Step::Close => {
                        conns.swap_remove(i);
                        shared.open.fetch_sub(1, Ordering::SeqCst);
                        continue;
                    }
                    Step::Refuse(status) => {
                        let c = conns.swap_remove(i);
                        log::warn!("{}: request refused with {status}", c.peer);
                        refuse(&c.stream, status, &mut scratch);
                        shared.open.fetch_sub(1, Ordering::SeqCst);
                        continue;
                    }
                }
            }
            let c = &conns[i];
            if now >= c.deadline(cfg) {
                let c = conns.swap_remove(i);
                if c.reading {
                    // RFC 9110 §15.5.9: a head that never completed gets 408.
                    log::warn!("{}: request head not complete in time", c.peer);
                    refuse(&c.stream, 408, &mut scratch);
                } else {
                    log::debug!("{}: idle keep-alive connection closed", c.peer);
                }
                shared.open.fetch_sub(1, Ordering::SeqCst);
            }
        }

        if listener_ready && accepting {
            accept_burst(
                shared,
                &listener,
                &mut conns,
                &mut accept_paused_until,
                &mut scratch,
            );
        }
    }
}

fn accept_burst(
    shared: &Shared,
    listener: &TcpListener,
    conns: &mut Vec<Conn>,
    paused_until: &mut Option<Instant>,
    scratch: &mut Vec<u8>,
) {
    for _ in 0..ACCEPT_BURST {
        match listener.accept() {
            Ok((stream, peer)) => {
                if shared.open.load(Ordering::SeqCst) >= shared.config.max_connections {
                    log::warn!(
                        "{peer}: connection refused with 503: {} open",
                        shared.config.max_connections
                    );
                    refuse(&stream, 503, scratch);
                    continue;
                }
                if stream.set_nonblocking(true).is_err() {
                    continue;
                }
                // Responses are written whole; Nagle would only delay the last
                // segment of each (engine-notes: 44 ms per keep-alive response).
                let _ = stream.set_nodelay(true);
                shared.open.fetch_add(1, Ordering::SeqCst);
                conns.push(Conn {
                    stream,
                    peer,
                    buf: Vec::new(),
                    filled: 0,
                    head_len: 0,
                    requests: 0,
                    since: Instant::now(),
                    reading: false,
                });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) => match e.raw_os_error() {
                // The peer gave up before we got to it, or a transient network
                // error on that one socket (accept(2) "Error handling").
                Some(103 | 71 | 104 | 110 | 113 | 101 | 100 | 64 | 92 | 93 | 95 | 4) => continue,
                _ => {
                    // EMFILE, ENFILE, ENOBUFS, ENOMEM and anything unknown: never
                    // end the loop (tiny_http went deaf here), pause and retry.
                    log::warn!(
                        "accept failed: {e}; pausing {} ms",
                        ACCEPT_BACKOFF.as_millis()
                    );
                    *paused_until = Some(Instant::now() + ACCEPT_BACKOFF);
                    return;
                }
            },
        }
    }
}

enum Step {
    Wait,
    Ready,
    Close,
    Refuse(u16),
}

fn read_head(c: &mut Conn, spare: &mut Vec<Vec<u8>>, now: Instant) -> Step {
    if c.buf.is_empty() {
        c.buf = spare.pop().unwrap_or_else(|| vec![0; INITIAL_BUF]);
    }
    if c.filled == c.buf.len() {
        let grown = (c.buf.len() * 2).min(head::MAX_HEAD);
        if grown == c.buf.len() {
            return Step::Refuse(431);
        }
        c.buf.resize(grown, 0);
    }
    let before = c.filled;
    match c.stream.read(&mut c.buf[before..]) {
        Ok(0) => {
            log::debug!("{}: client closed the connection", c.peer);
            Step::Close
        }
        Ok(n) => {
            c.filled += n;
            if !c.reading {
                c.reading = true;
                c.since = now;
            }
            match head::scan(&c.buf[..c.filled], before) {
                Scan::Incomplete => Step::Wait,
                Scan::Complete(len) => {
                    c.head_len = len;
                    Step::Ready
                }
                Scan::Reject(status) => Step::Refuse(status),
            }
        }
        Err(e)
            if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted =>
        {
            Step::Wait
        }
        Err(e) => {
            log::debug!("{}: read failed: {e}", c.peer);
            Step::Close
        }
    }
}

/// Best-effort error answer on a socket about to be closed; never blocks.
fn refuse(mut stream: &std::net::TcpStream, status: u16, scratch: &mut Vec<u8>) {
    let _ = stream.set_nonblocking(true);
    error_response(status, scratch);
    let _ = stream.write(scratch);
    // Half-close first so the answer is not destroyed by an RST for unread input.
    let _ = stream.shutdown(std::net::Shutdown::Write);
}
