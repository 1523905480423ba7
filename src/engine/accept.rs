//! Accepting connections: a bounded burst per wake-up, a fair share per
//! worker, the connection cap answered with 503, and an accept loop that
//! never dies — `EMFILE` and the like pause it, they never end it.

use super::conn::Conn;
use super::send::with_date;
use super::{Shared, Slot};
use crate::message::{error_body, reason};
use std::io::{self, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long accepting pauses after the process ran out of descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How long a worker over its fair share of connections leaves accepting to
/// the others.
const FAIR_SHARE_PAUSE: Duration = Duration::from_millis(5);
/// Connections accepted per wake-up, so a flood cannot starve the others.
const ACCEPT_BURST: usize = 32;

/// Errors of `accept(2)` that concern only the one connection: the peer gave
/// up before we got to it, or a transient network error on that socket
/// (accept(2), "Error handling").
const PER_CONNECTION: &[i32] = &[
    103, // ECONNABORTED
    71,  // EPROTO
    104, // ECONNRESET
    110, // ETIMEDOUT
    113, // EHOSTUNREACH
    101, // ENETUNREACH
    100, // ENETDOWN
    64,  // ENONET
    92,  // ENOPROTOOPT
    93,  // EPROTONOSUPPORT
    95,  // EOPNOTSUPP
    4,   // EINTR
];

/// Accepts what `listener` has ready, up to a burst, into `conns`.
pub(super) fn burst(
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
                let Some(slot) = Slot::take(&shared.open, cfg.max_connections) else {
                    log::warn!(
                        "{peer}: refused with 503: {} connections open",
                        cfg.max_connections
                    );
                    refuse_over_capacity(&stream);
                    continue;
                };
                if stream.set_nonblocking(true).is_err() {
                    continue;
                }
                // Responses are written whole; Nagle would only delay the last
                // segment of each (44 ms per keep-alive response, measured).
                let _ = stream.set_nodelay(true);
                log::debug!("{peer}: connection opened");
                conns.push(Conn::new(stream, peer, slot));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e)
                if e.raw_os_error()
                    .is_some_and(|n| PER_CONNECTION.contains(&n)) =>
            {
                continue;
            }
            // The listener was just stopped for shutdown (EINVAL).
            Err(_) if crate::sys::shutdown_requested() => return,
            Err(e) => {
                // EMFILE, ENFILE, ENOBUFS, ENOMEM and anything unknown: never
                // end the loop (tiny_http went deaf here), pause and retry.
                log::warn!(
                    "accept failed: {e}; pausing {} ms",
                    ACCEPT_BACKOFF.as_millis()
                );
                *paused = Some(Instant::now() + ACCEPT_BACKOFF);
                return;
            }
        }
    }
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
