//! The connection layer's promises that no request to the file server can
//! reach: a panicking handler or body sink, a sink's refusal of a HEAD, and
//! the per-connection request cap.

mod support;

use ranged::engine::{Config, Server as Engine, request_shutdown};
use ranged::message::{Abort, Action, Body, BodySink, Handler, Headers, Receive, Reply, Request};
use std::ops::ControlFlow;
use std::time::Duration;
use support::{Conn, Server, TempDir};

/// Answers `ok`, but panics on `/boom`. Takes bodies into [`Sink`].
struct Panicky;

impl Handler for Panicky {
    fn handle(&self, req: &Request<'_>, h: &mut Headers) -> Action {
        assert!(req.target != "/boom", "handler bug on purpose");
        if req.method == "PUT" || req.target == "/refuse" {
            let sink = Sink {
                panics: req.target == "/boom-body",
                refuses: req.target == "/refuse",
                got: 0,
            };
            return Action::Receive(Receive {
                sink: Box::new(sink),
                max: 1 << 20,
            });
        }
        h.add("Content-Type", "text/plain; charset=utf-8");
        Reply::new(200, Body::Static("ok\n")).into()
    }
}

/// Counts a body; panics in `write` or refuses in `begin` when told to.
struct Sink {
    panics: bool,
    refuses: bool,
    got: usize,
}

impl BodySink for Sink {
    fn begin(&mut self, h: &mut Headers) -> Result<(), Reply> {
        if self.refuses {
            h.add("Content-Type", "text/plain; charset=utf-8");
            return Err(Reply::new(409, Body::Static("refused by the sink\n")));
        }
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> ControlFlow<()> {
        assert!(!self.panics, "sink bug on purpose");
        self.got += data.len();
        ControlFlow::Continue(())
    }

    fn finish(self: Box<Self>, _h: &mut Headers) -> Reply {
        Reply::new(200, Body::Bytes(format!("got {}\n", self.got).into_bytes()))
    }

    fn abort(self: Box<Self>, _why: Abort) {}
}

/// A handler panic is caught and answered with 500, and the same worker (there
/// is only one) goes on answering — on the same connection, too. A sink that
/// panics costs its connection, not the body thread: with one body thread,
/// bodies are still received after three such panics. And a sink's answer
/// to a HEAD goes out without its body, so the next answer on the
/// connection is read as what it is.
#[test]
fn handler_panic_is_answered_500_and_the_worker_lives_on() {
    let config = Config {
        threads: 1,
        body_threads: 1,
        ..Config::default()
    };
    let engine = Engine::bind("127.0.0.1:0".parse().unwrap(), config).unwrap();
    let addr = engine.local_addr().unwrap();
    let running = std::thread::spawn(move || engine.run(Panicky));

    let mut c = Conn::open(addr);
    let r = c.request("GET", "/boom", &[]);
    assert_eq!(r.status, 500);
    assert_eq!(r.body, b"500 Internal Server Error\n");
    let r = c.request("GET", "/", &[]);
    assert_eq!((r.status, r.body.as_slice()), (200, &b"ok\n"[..]));
    for _ in 0..3 {
        assert_eq!(Conn::open(addr).request("GET", "/boom", &[]).status, 500);
        assert_eq!(Conn::open(addr).request("GET", "/x", &[]).status, 200);
    }

    for _ in 0..3 {
        let mut c = Conn::open(addr);
        c.send(b"PUT /boom-body HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
        assert!(c.is_closed(), "a panicking sink's connection stays open");
    }
    let mut c = Conn::open(addr);
    c.send(b"PUT /f HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
    let r = c.response(false);
    assert_eq!((r.status, r.body.as_slice()), (200, &b"got 5\n"[..]));

    let mut c = Conn::open(addr);
    c.send(b"HEAD /refuse HTTP/1.1\r\nHost: t\r\n\r\nGET /after HTTP/1.1\r\nHost: t\r\n\r\n");
    let head = c.response(true);
    assert_eq!(head.status, 409);
    let next = c.response(false);
    assert_eq!((next.status, next.body.as_slice()), (200, &b"ok\n"[..]));

    // The shutdown flag is process-wide; this test binary runs one engine.
    request_shutdown();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !running.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(running.is_finished(), "engine did not stop after shutdown");
    running.join().unwrap().unwrap();
}

/// `--max-requests N`: the Nth answer on a connection says `Connection:
/// close`, and the connection then ends.
#[test]
fn request_cap_closes_the_connection() {
    let dir = TempDir::new();
    dir.write("f.txt", b"hello\n");
    let server = Server::start_with(dir.path(), &["--max-requests", "3"]);
    let mut c = Conn::open(server.addr);
    for i in 1..=3 {
        let r = c.request("GET", "/f.txt", &[]);
        assert_eq!(r.body, b"hello\n");
        let close = r.header("connection") == Some("close");
        assert_eq!(
            close,
            i == 3,
            "answer {i}: Connection header {:?}",
            r.header("connection")
        );
    }
    assert!(c.is_closed(), "connection still open after the cap");
    server.assert_serves("/f.txt", b"hello\n");
}

/// A small request body is drained and the connection then idles quietly: it
/// must not be mistaken for a half-sent head and answered 408 at the head
/// deadline, but closed silently at the idle deadline.
#[test]
fn drained_body_then_idle_gets_no_408() {
    let dir = TempDir::new();
    dir.write("f.txt", b"hello\n");
    let server = Server::start_with(dir.path(), &["--head-timeout", "1", "--idle-timeout", "3"]);
    let mut c = Conn::open(server.addr);
    c.send(b"GET /f.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n");
    assert_eq!(c.response(false).body, b"hello\n");
    c.send(b"hello");
    // Past the head deadline: nothing may arrive, the connection stays open.
    c.stream()
        .set_read_timeout(Some(Duration::from_millis(1800)))
        .unwrap();
    let mut b = [0u8; 64];
    match std::io::Read::read(&mut c.stream().try_clone().unwrap(), &mut b) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!(
            "idle connection got {other:?}: {:?}",
            String::from_utf8_lossy(&b)
        ),
    }
    // And it is still usable.
    let r = c.request("GET", "/f.txt", &[]);
    assert_eq!(r.body, b"hello\n");
}
