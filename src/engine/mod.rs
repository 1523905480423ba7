//! The HTTP/1.1 connection layer: owns the sockets, reads and checks request heads,
//! writes exact responses, and bounds every resource a client can make it spend.
//!
//! Shape (engine-notes.md): one readiness thread (`reactor`) accepts connections,
//! reads request heads and parks idle keep-alive connections in one `poll(2)`; a
//! fixed pool of workers (`worker`) only ever holds a connection that has a
//! complete request, answers it through the `Handler`, and keeps answering while
//! the next request is already there. A slow or idle client therefore never costs
//! a thread, and the number of threads never depends on what clients do.

mod head;
mod reactor;
mod sys;
mod worker;

pub use head::{Framing, Head, MAX_HEAD, MAX_HEADERS, MAX_REQUEST_LINE, Scan, parse, scan};
pub use sys::{request_shutdown, shutdown_requested};

use crate::message::Handler;
use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Limits and deadlines of the connection layer. `Default` gives the documented
/// defaults (README, "Limits").
#[derive(Debug, Clone)]
pub struct Config {
    /// Worker threads answering requests.
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
    /// Bytes per second per connection for response bodies; `None`: unlimited.
    pub rate_limit: Option<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            threads: 16,
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
/// Each worker's stack. Handlers are shallow; the largest frame holds the
/// parsed header array (`MAX_HEADERS` × 32 bytes).
const WORKER_STACK: usize = 256 * 1024;

/// One client connection and what has been read from it.
struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    /// Read buffer: bytes `..filled` are valid; empty while the connection idles.
    buf: Vec<u8>,
    filled: usize,
    /// Length of the complete head at the start of `buf`, once scanned.
    head_len: usize,
    /// Requests answered so far.
    requests: u32,
    /// When the current wait began (accept, idle start, or first head byte).
    since: Instant,
    /// `true` while part of a head is buffered (the head deadline applies),
    /// `false` while idle between requests (the idle deadline applies).
    reading: bool,
}

impl Conn {
    fn deadline(&self, cfg: &Config) -> Instant {
        // The first request must arrive within the head deadline of the accept.
        if self.reading || self.requests == 0 {
            self.since + cfg.head_timeout
        } else {
            self.since + cfg.idle_timeout
        }
    }
}

/// State shared by the readiness thread and the workers.
struct Shared {
    config: Config,
    /// Connections with a complete request head, waiting for a worker.
    ready: Mutex<VecDeque<Conn>>,
    ready_cv: Condvar,
    /// Connections a worker has finished with, to be watched again.
    back: Mutex<Vec<Conn>>,
    /// Written to (one byte) to wake the readiness thread.
    wake_tx: UnixStream,
    /// Connections open anywhere (readiness thread, queue or worker).
    open: AtomicUsize,
    /// Set once shutdown began; workers close connections instead of keeping them.
    stopping: std::sync::atomic::AtomicBool,
}

impl Shared {
    fn wake(&self) {
        use std::io::Write;
        // A full socket buffer means a wake-up is already pending.
        let _ = (&self.wake_tx).write(&[1]);
    }

    fn closed(&self) {
        self.open.fetch_sub(1, Ordering::SeqCst);
        self.wake();
    }

    fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
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
        let (wake_rx, wake_tx) = UnixStream::pair()?;
        wake_rx.set_nonblocking(true)?;
        wake_tx.set_nonblocking(true)?;
        self.listener.set_nonblocking(true)?;
        {
            use std::os::fd::AsRawFd;
            sys::install_shutdown_signals(wake_tx.as_raw_fd());
        }
        let shared = Arc::new(Shared {
            config: self.config,
            ready: Mutex::new(VecDeque::new()),
            ready_cv: Condvar::new(),
            back: Mutex::new(Vec::new()),
            wake_tx,
            open: AtomicUsize::new(0),
            stopping: std::sync::atomic::AtomicBool::new(false),
        });
        let handler = Arc::new(handler);
        let mut workers = Vec::with_capacity(shared.config.threads);
        for i in 0..shared.config.threads.max(1) {
            let shared = Arc::clone(&shared);
            let handler = Arc::clone(&handler);
            workers.push(
                std::thread::Builder::new()
                    .name(format!("worker-{i}"))
                    .stack_size(WORKER_STACK)
                    .spawn(move || worker::run(&shared, &*handler))?,
            );
        }
        reactor::run(&shared, self.listener, wake_rx)?;
        // Workers finished or the grace period ran out; either way we are done.
        // Joining only the finished ones keeps a stuck send from holding exit.
        for w in workers {
            if w.is_finished() {
                let _ = w.join();
            }
        }
        Ok(())
    }
}

/// Writes a complete error response for a request the engine itself refuses
/// (framing, limits, overload), always with `Connection: close`.
fn error_response(status: u16, out: &mut Vec<u8>) {
    use std::io::Write;
    let body = crate::message::error_body(status);
    out.clear();
    let _ = write!(
        out,
        "HTTP/1.1 {status} {}\r\nDate: {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n{body}",
        crate::message::reason(status),
        worker::http_date_now(),
        body.len(),
        if status == 503 {
            "Retry-After: 5\r\n"
        } else {
            ""
        },
    );
}
