//! One worker: a `poll(2)` loop over the connections it owns. It accepts its
//! share of new connections, drives each connection's state machine when its
//! socket is ready or its deadline passes, hands connections whose handler
//! took a body to the body threads and takes them back with their answer,
//! and at shutdown lets answers in flight finish within the grace period.

use super::conn::{self, Conn, Ctx, Fate, State};
use super::{Shared, accept, body};
use crate::message::Handler;
use crate::sys::{self, POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, PollFd};
use std::net::TcpListener;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// While stopping, wake at least this often: a second signal, which ends the
/// grace period at once, wakes only the thread it lands on.
const STOP_TICK: Duration = Duration::from_millis(100);

pub(super) fn run<H: Handler>(
    shared: &Arc<Shared>,
    me: usize,
    handler: &H,
    listeners: &[TcpListener],
    wake_fd: RawFd,
) {
    let cfg = &shared.config;
    let inbox = &shared.inboxes[me];
    let mut conns: Vec<Conn> = Vec::new();
    let mut returned: Vec<Conn> = Vec::new();
    let mut pfds: Vec<PollFd> = Vec::new();
    let mut ctx = Ctx::default();
    let mut accept_paused_until: Option<Instant> = None;
    let mut stopping = false;
    // Poll entries before the connections: the signal wake-up, this
    // worker's inbox, then the listeners.
    let base = 2 + listeners.len();

    loop {
        if !stopping && sys::shutdown_requested() {
            stopping = true;
            shared.begin_stop(listeners);
        }
        if stopping {
            // Idle and half-read connections have nothing in flight: close them.
            conns.retain(|c| !matches!(c.state, State::Head { .. }));
            if conns.is_empty() && inbox.settled() {
                return;
            }
            if shared.grace_over() {
                for c in &conns {
                    if let State::Sending(s) = &c.state {
                        log::warn!(
                            "{}: answer cut off at shutdown after {} bytes",
                            c.peer,
                            s.sent
                        );
                        conn::log_access(c, s);
                    }
                }
                let n = conns.len();
                if n > 0 {
                    log::warn!(
                        "shutdown grace period over with {n} {} unfinished",
                        if n == 1 { "answer" } else { "answers" }
                    );
                }
                return;
            }
        }

        let now = Instant::now();
        if accept_paused_until.is_some_and(|t| now >= t) {
            accept_paused_until = None;
        }
        let accepting = !stopping && accept_paused_until.is_none();
        pfds.clear();
        // The wake fd becomes readable, for every worker at once, on SIGTERM;
        // it stays readable, so once stopping it is no longer polled.
        pfds.push(PollFd {
            fd: if stopping { -1 } else { wake_fd },
            events: POLLIN,
            revents: 0,
        });
        pfds.push(PollFd {
            fd: inbox.wake_rx.as_raw_fd(),
            events: POLLIN,
            revents: 0,
        });
        for l in listeners {
            // A negative fd is skipped by poll(2): a stopped listener would
            // otherwise report an error on every call.
            pfds.push(PollFd {
                fd: if accepting { l.as_raw_fd() } else { -1 },
                events: POLLIN,
                revents: 0,
            });
        }
        let mut next = accept_paused_until;
        if stopping {
            next = Some(now + STOP_TICK);
        }
        if let Some(after) = handler.housekeeping() {
            next = Some(next.map_or(now + after, |n| n.min(now + after)));
        }
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
            let revents = pfds[i + base].revents;
            let ready = revents & (POLLIN | POLLOUT | POLLHUP | POLLERR | POLLNVAL) != 0;
            let paused_until = match &conns[i].state {
                State::Sending(s) => s.paused_until,
                _ => None,
            };
            let paused_due = paused_until.is_some_and(|t| now >= t);
            let broken = revents & (POLLERR | POLLHUP | POLLNVAL) != 0;
            let fate = if paused_until.is_some() && broken && !paused_due {
                // A paused answer polls for nothing, but errors are always
                // reported: without this the loop would spin until the pause ends.
                let c = &conns[i];
                if let State::Sending(s) = &c.state {
                    conn::log_access(c, s);
                }
                log::debug!("{}: connection broke while paused", c.peer);
                Fate::Close
            } else if ready || paused_due {
                let readable = revents & (POLLIN | POLLHUP | POLLERR) != 0;
                conn::drive(shared, handler, &mut ctx, &mut conns[i], now, readable)
            } else if conns[i].check_deadline(cfg, now, &mut ctx) {
                // A 408 was set up: send it now.
                conn::drive(shared, handler, &mut ctx, &mut conns[i], now, false)
            } else {
                Fate::Close
            };
            match fate {
                Fate::Keep => {}
                Fate::Close => conns.swap_remove(i).recycle(&mut ctx.spare),
                Fate::Receive => {
                    let c = conns.swap_remove(i);
                    if let Some(refused) = body::hand_off(shared, c, me, &mut ctx) {
                        returned.push(refused);
                    }
                }
            }
        }

        if pfds[1].revents != 0 {
            inbox.take(&mut returned);
        }
        // Answers prepared elsewhere (body threads, a busy pool's 503): send
        // what the socket takes now, then poll them with the rest.
        for mut c in returned.drain(..) {
            match conn::drive(shared, handler, &mut ctx, &mut c, now, false) {
                Fate::Keep => conns.push(c),
                Fate::Close => c.recycle(&mut ctx.spare),
                Fate::Receive => {
                    if let Some(refused) = body::hand_off(shared, c, me, &mut ctx) {
                        conns.push(refused);
                    }
                }
            }
        }

        if accepting {
            for (k, l) in listeners.iter().enumerate() {
                if pfds[2 + k].revents != 0 {
                    accept::burst(shared, l, &mut conns, &mut accept_paused_until);
                }
            }
        }
    }
}
