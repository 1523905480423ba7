//! The HTTP/1.1 connection layer: owns the sockets, reads and checks request heads,
//! writes exact responses, and bounds every resource a client can make it spend.
//!
//! Shape: a fixed pool of worker threads, each running its own
//! `poll(2)` loop (`event_loop`) over the connections it accepted. The thread
//! that reads a request answers it — no hand-off between threads, which on a
//! 2-core host cost more than the whole request — and sends the response
//! without blocking, resuming it when the socket is writable. A slow, idle or
//! stalled client therefore never holds a thread, and the number of threads
//! never depends on what clients do.

mod event_loop;
mod head;

pub use crate::sys::{request_shutdown, shutdown_requested};
pub use head::{Framing, Head, MAX_HEAD, MAX_HEADERS, MAX_REQUEST_LINE, Scan, parse, scan};

use crate::message::Handler;
use crate::sys;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

/// Limits and deadlines of the connection layer. `Default` gives the documented
/// defaults (README, "Limits").
#[derive(Debug, Clone)]
pub struct Config {
    /// Worker threads, each with its own readiness loop.
    pub threads: usize,
    /// Open connections at most; one more is answered 503 and closed.
    pub max_connections: usize,
    /// A whole request head must arrive within this, from its first byte (or
    /// from the connection's accept for the first request).
    pub head_timeout: Duration,
    /// An idle keep-alive connection is closed after this.
    pub idle_timeout: Duration,
    /// A response write that makes no progress for this long closes the connection.
    pub send_timeout: Duration,
    /// Requests served on one connection before it is closed.
    pub max_requests: u32,
    /// On SIGTERM/SIGINT, in-flight responses get this long to finish.
    pub shutdown_grace: Duration,
    /// Bytes per second per connection for responses (head and body; the
    /// engine's own refusals are exempt); `None`: unlimited.
    pub rate_limit: Option<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            max_connections: 1000,
            head_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(15),
            send_timeout: Duration::from_secs(30),
            max_requests: 1000,
            shutdown_grace: Duration::from_secs(10),
            rate_limit: None,
        }
    }
}

/// A request body we do not want is read and discarded up to this size so that
/// the connection can be reused; a larger one closes the connection.
const DRAIN_CAP: u64 = 64 * 1024;
/// Connections the kernel queues before we accept them (std's default is 128,
/// which a burst of a few hundred connects overflows).
const LISTEN_BACKLOG: i32 = 1024;
/// Each worker's stack. Handlers are shallow; the largest frame holds the
/// parsed header array (`MAX_HEADERS` × 32 bytes).
const WORKER_STACK: usize = 256 * 1024;

/// State shared by the workers.
struct Shared {
    config: Config,
    /// Connections open in all workers together.
    open: AtomicUsize,
}

/// A bound listening socket, ready to run.
pub struct Server {
    listener: TcpListener,
    config: Config,
}

impl Server {
    pub fn bind(addr: SocketAddr, config: Config) -> io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        Ok(Server { listener, config })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until SIGTERM or SIGINT, then lets in-flight responses finish for
    /// up to `shutdown_grace` and returns.
    pub fn run<H: Handler>(self, handler: H) -> io::Result<()> {
        // The signal handler writes one byte here and nobody reads it: the fd
        // stays readable, so every worker's poll wakes up and sees the flag.
        let (wake_rx, wake_tx) = UnixStream::pair()?;
        wake_tx.set_nonblocking(true)?;
        self.listener.set_nonblocking(true)?;
        if let Err(e) = sys::set_backlog(self.listener.as_raw_fd(), LISTEN_BACKLOG) {
            log::warn!("could not raise the listen backlog: {e}");
        }
        sys::install_shutdown_signals(wake_tx.as_raw_fd());
        let shared = Shared {
            config: self.config,
            open: AtomicUsize::new(0),
        };
        let threads = shared.config.threads.max(1);
        let listener = &self.listener;
        let wake_fd = wake_rx.as_raw_fd();
        std::thread::scope(|scope| -> io::Result<()> {
            for i in 0..threads {
                let (shared, handler) = (&shared, &handler);
                std::thread::Builder::new()
                    .name(format!("worker-{i}"))
                    .stack_size(WORKER_STACK)
                    .spawn_scoped(scope, move || {
                        event_loop::run(shared, handler, listener, wake_fd)
                    })?;
            }
            Ok(())
        })?;
        sys::forget_wake_fd();
        drop(wake_tx);
        Ok(())
    }
}
