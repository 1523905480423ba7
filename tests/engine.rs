//! The connection layer's promises that no request to the file server can
//! reach: a panicking handler, and the per-connection request cap.

mod support;

use ranged::engine::{Config, Server as Engine, request_shutdown};
use ranged::message::{Action, Body, Handler, Headers, Reply, Request};
use std::time::Duration;
use support::{Conn, Server, TempDir};

/// Answers `ok`, but panics on `/boom`.
struct Panicky;

impl Handler for Panicky {
    fn handle(&self, req: &Request<'_>, h: &mut Headers) -> Action {
        assert!(req.target != "/boom", "handler bug on purpose");
        h.add("Content-Type", "text/plain; charset=utf-8");
        Reply::new(200, Body::Static("ok\n")).into()
    }
}

/// A handler panic is caught and answered with 500, and the same worker (there
/// is only one) goes on answering — on the same connection, too.
#[test]
fn handler_panic_is_answered_500_and_the_worker_lives_on() {
    let config = Config {
        threads: 1,
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
