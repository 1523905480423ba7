//! The HTTP/1.1 connection layer: owns the sockets, reads and checks request
//! heads, receives request bodies, writes exact responses, and bounds every
//! resource a client can make it spend.
//!
//! Shape: a fixed pool of worker threads, each running its own `poll(2)` loop
//! (`worker`) over the connections it accepted (`accept`), each connection a
//! small state machine (`conn`). The thread that reads a request answers it —
//! no hand-off between threads, which on a 2-core host cost more than the
//! whole request — and sends the response without blocking (`send`),
//! resuming it when the socket is writable. A slow, idle or stalled client
//! therefore never holds a thread, and the number of threads never depends on
//! what clients do. The one exception is a request body a handler accepts:
//! the connection then goes to a bounded pool of body threads (`body`) whose
//! sinks may block on a slow disk, and comes back to its worker with the
//! answer.

mod accept;
mod body;
pub mod chunked;
mod conn;
mod head;
mod send;
mod worker;

pub use crate::sys::request_shutdown;
pub use head::{
    Framing, Head, MAX_HEAD, MAX_HEADERS, MAX_REQUEST_LINE, Refusal, Scan, parse, request_line,
    scan,
};

use crate::message::Handler;
use crate::sys;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

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
    /// Bytes per second for all responses together; `None`: unlimited.
    pub rate_limit_total: Option<u64>,
    /// Request bodies received at once (one body thread each).
    pub body_threads: usize,
    /// Bodies waiting for a body thread; more are answered 503.
    pub body_queue: usize,
    /// A request body that sends nothing for this long is cut off (408) …
    pub body_timeout: Duration,
    /// … and so is one that falls behind `body_timeout` plus a second per
    /// this many bytes received.
    pub min_body_rate: u64,
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
            rate_limit_total: None,
            body_threads: 4,
            body_queue: 8,
            body_timeout: Duration::from_secs(30),
            min_body_rate: 1024,
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

/// State shared by the workers and the body threads.
struct Shared {
    config: Config,
    /// Connections open in all workers and body threads together.
    open: Arc<AtomicUsize>,
    total_rate: Option<send::TotalRate>,
    bodies: body::Pool,
    /// One per worker: connections coming back from body threads.
    inboxes: Vec<Inbox>,
    /// When the shutdown grace period ends, once a signal came.
    stop_at: OnceLock<Instant>,
    stopped_listening: std::sync::Once,
}

impl Shared {
    /// Starts the shutdown: at once no new connection is accepted (clients
    /// are refused rather than left hanging), and the grace period begins.
    fn begin_stop(&self, listeners: &[TcpListener]) {
        self.stop_at
            .get_or_init(|| Instant::now() + self.config.shutdown_grace);
        self.stopped_listening.call_once(|| {
            for l in listeners {
                if let Err(e) = sys::stop_listening(l.as_raw_fd()) {
                    log::warn!("could not stop listening: {e}");
                }
            }
        });
    }

    /// The grace period is over, or a second signal cut it short.
    fn grace_over(&self) -> bool {
        sys::shutdown_signals() >= 2 || self.stop_at.get().is_some_and(|t| Instant::now() >= *t)
    }
}

/// A place in the open-connection count, given back when dropped — so no
/// path that ends a connection can forget it.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    /// Takes a place if fewer than `max` are taken.
    fn take(open: &Arc<AtomicUsize>, max: usize) -> Option<Slot> {
        if open.fetch_add(1, Ordering::SeqCst) >= max {
            open.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Slot(Arc::clone(open)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Where body threads return connections to their worker, with a socket
/// pair to wake its poll.
struct Inbox {
    conns: Mutex<Vec<conn::Conn>>,
    /// Connections of this worker currently on a body thread.
    away: AtomicUsize,
    wake_rx: UnixStream,
    wake_tx: UnixStream,
}

impl Inbox {
    fn new() -> io::Result<Inbox> {
        let (wake_rx, wake_tx) = UnixStream::pair()?;
        wake_rx.set_nonblocking(true)?;
        wake_tx.set_nonblocking(true)?;
        Ok(Inbox {
            conns: Mutex::new(Vec::new()),
            away: AtomicUsize::new(0),
            wake_rx,
            wake_tx,
        })
    }

    fn away(&self) {
        self.away.fetch_add(1, Ordering::SeqCst);
    }

    /// A connection comes back with its answer.
    fn put(&self, c: conn::Conn) {
        self.conns.lock().unwrap_or_else(|e| e.into_inner()).push(c);
        self.forget();
    }

    /// A connection that went away will not come back (it ended there).
    fn forget(&self) {
        self.away.fetch_sub(1, Ordering::SeqCst);
        // A full socket means a wake-up is already pending.
        let _ = (&self.wake_tx).write(&[1]);
    }

    fn take(&self, into: &mut Vec<conn::Conn>) {
        let mut buf = [0u8; 64];
        while matches!((&self.wake_rx).read(&mut buf), Ok(n) if n > 0) {}
        let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        into.append(&mut conns);
    }

    fn settled(&self) -> bool {
        self.away.load(Ordering::SeqCst) == 0
            && self
                .conns
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty()
    }
}

/// Bound listening sockets, ready to run.
pub struct Server {
    listeners: Vec<TcpListener>,
    config: Config,
    /// The signal handler writes one byte to `wake_tx` and nobody reads it:
    /// `wake_rx` stays readable, so every worker's poll wakes up and sees
    /// the flag.
    wake_rx: UnixStream,
    wake_tx: UnixStream,
}

impl Server {
    pub fn bind(addr: SocketAddr, config: Config) -> io::Result<Server> {
        Server::bind_all(&[addr], config)
    }

    /// Listens on every address (IPv4 and IPv6 together, say). An error
    /// names the address that failed. From here on SIGTERM and SIGINT
    /// request a graceful stop instead of killing the process — before
    /// anyone is told where we listen, so no early signal is lost.
    pub fn bind_all(addrs: &[SocketAddr], config: Config) -> io::Result<Server> {
        let mut listeners = Vec::with_capacity(addrs.len());
        for addr in addrs {
            let l = TcpListener::bind(addr)
                .map_err(|e| io::Error::new(e.kind(), format!("{addr}: {e}")))?;
            listeners.push(l);
        }
        let (wake_rx, wake_tx) = UnixStream::pair()?;
        wake_tx.set_nonblocking(true)?;
        sys::install_shutdown_signals(wake_tx.as_raw_fd());
        Ok(Server {
            listeners,
            config,
            wake_rx,
            wake_tx,
        })
    }

    /// The first address listened on (its real port if 0 was asked).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listeners[0].local_addr()
    }

    pub fn local_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        self.listeners.iter().map(|l| l.local_addr()).collect()
    }

    /// Serves until SIGTERM or SIGINT, then lets in-flight responses finish for
    /// up to `shutdown_grace` (a second signal ends it at once) and returns.
    pub fn run<H: Handler>(self, handler: H) -> io::Result<()> {
        for l in &self.listeners {
            l.set_nonblocking(true)?;
            if let Err(e) = sys::set_backlog(l.as_raw_fd(), LISTEN_BACKLOG) {
                log::warn!("could not raise the listen backlog: {e}");
            }
        }
        let threads = self.config.threads.max(1);
        let shared = Arc::new(Shared {
            total_rate: self.config.rate_limit_total.map(send::TotalRate::new),
            config: self.config,
            open: Arc::new(AtomicUsize::new(0)),
            bodies: body::Pool::new(),
            inboxes: (0..threads)
                .map(|_| Inbox::new())
                .collect::<io::Result<_>>()?,
            stop_at: OnceLock::new(),
            stopped_listening: std::sync::Once::new(),
        });
        let listeners = &self.listeners;
        let wake_fd = self.wake_rx.as_raw_fd();
        std::thread::scope(|scope| -> io::Result<()> {
            for i in 0..threads {
                let (shared, handler) = (&shared, &handler);
                std::thread::Builder::new()
                    .name(format!("worker-{i}"))
                    .stack_size(WORKER_STACK)
                    .spawn_scoped(scope, move || {
                        worker::run(shared, i, handler, listeners, wake_fd)
                    })?;
            }
            Ok(())
        })?;
        // Bodies still arriving were cut at the end of the grace period; let
        // their sinks keep what arrived before the process goes.
        shared.bodies.wait_idle(Duration::from_secs(5));
        sys::forget_wake_fd();
        drop(self.wake_tx);
        Ok(())
    }
}
