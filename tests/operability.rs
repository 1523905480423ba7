//! What an operator of a small host sees: shutdown refuses new clients at
//! once, the port is printed even with `-q`, refusals and dropped answers
//! are logged with reasons and access lines, several listen addresses,
//! levels, a total bandwidth cap, dropping privileges, syslog, content types.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};
use support::{Conn, Logged, Server, TempDir, access_lines, eventually, pattern};

const BIN: &str = env!("CARGO_BIN_EXE_ranged");

/// Starts `ranged ARGS` (the test names the address and the folder).
fn start(args: &[&str]) -> Logged {
    Logged::spawn(Command::new(BIN).args(args))
}

/// Starts a GET of `path` and reads only the head: the answer is then in
/// flight, paced by the server's rate limit.
fn start_download(addr: SocketAddr, path: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let mut first = [0u8; 12];
    s.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    s
}

/// SIGTERM stops accepting at once: a new client is refused instead of
/// hanging with nothing until the grace period ends, while the download in
/// flight goes on; a second signal ends the grace at once. Each cut-off
/// answer still gets its access line.
#[test]
fn shutdown_refuses_new_clients_and_a_second_signal_ends_the_grace() {
    let dir = TempDir::new();
    dir.write("big.bin", &pattern(4 << 20, 1));
    let mut p = start(&[
        "--listen",
        "127.0.0.1:0",
        "--rate-limit",
        "200K",
        dir.path().to_str().unwrap(),
    ]);
    let addr = p.listening(1)[0];
    let mut inflight = start_download(addr, "/big.bin");
    p.signal("-TERM");
    // Bounded: the listener closes within moments of the signal.
    let refused = eventually(Duration::from_secs(2), || TcpStream::connect(addr).is_err());
    assert!(refused, "a new client could still connect after SIGTERM");
    // The answer in flight is still being sent.
    let mut buf = vec![0u8; 64 * 1024];
    let n = inflight.read(&mut buf).unwrap();
    assert!(n > 0, "the download in flight stopped at the first signal");
    let t = Instant::now();
    p.signal("-TERM");
    assert_eq!(p.wait_exit(Duration::from_secs(3)), Some(0));
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "the second signal did not end the grace ({:?})",
        t.elapsed()
    );
    let log = p.log();
    assert!(log.contains("cut off at shutdown"), "{log}");
    let cut: Vec<_> = access_lines(&log)
        .into_iter()
        .filter(|a| a.target == "/big.bin")
        .collect();
    assert_eq!(cut.len(), 1, "one access line for the cut answer: {log}");
    assert!(cut[0].bytes < 4 << 20 && cut[0].bytes > 0, "{:?}", cut[0]);
    assert!(log.contains("1 answer unfinished"), "singular: {log}");
}

/// `-q` hides access lines, not the port: with `--listen …:0` the listening
/// line is the only way to learn it.
#[test]
fn quiet_still_prints_the_listening_line_and_settings() {
    let dir = TempDir::new();
    dir.write("f.txt", b"hi\n");
    let p = start(&[
        "-q",
        "--listen",
        "127.0.0.1:0",
        dir.path().to_str().unwrap(),
    ]);
    let addr = p.listening(1)[0];
    assert_eq!(support::get(addr, "/f.txt", &[]).body, b"hi\n");
    assert!(
        eventually(Duration::from_secs(2), || p.log().contains("settings: ")),
        "{}",
        p.log()
    );
    let log = p.log();
    let settings = log.lines().find(|l| l.contains("settings: ")).unwrap();
    for word in [
        "threads",
        "listing on",
        "uploads off",
        "digests on demand",
        "rate limit none",
    ] {
        assert!(settings.contains(word), "{word} missing from {settings}");
    }
    assert!(
        access_lines(&log).is_empty(),
        "-q must hide access lines: {log}"
    );
}

/// Several addresses at once (IPv4 and IPv6 on a router), each serving.
#[test]
fn several_listen_addresses_all_serve() {
    let dir = TempDir::new();
    dir.write("f.txt", b"both\n");
    let p = start(&[
        "--listen",
        "127.0.0.1:0",
        "--listen",
        "127.0.0.2:0",
        dir.path().to_str().unwrap(),
    ]);
    let addrs = p.listening(2);
    assert_ne!(addrs[0].ip(), addrs[1].ip());
    for a in addrs {
        assert_eq!(support::get(a, "/f.txt", &[]).body, b"both\n", "{a}");
    }
}

/// Every refusal is logged with the peer, the request line (escaped), the
/// status and a reason in words, and its access line names the method and
/// path when the request line had them.
#[test]
fn refusals_name_peer_request_and_reason() {
    let dir = TempDir::new();
    let server = Server::start(dir.path());
    let cases: &[(&[u8], u16, &str, &str)] = &[
        (b"GET /no-host HTTP/1.1\r\n\r\n", 400, "without Host", "/no-host"),
        (
            b"POST /smuggle HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            400,
            "request smuggling",
            "/smuggle",
        ),
        (b"GET /v2 HTTP/2.0\r\nHost: t\r\n\r\n", 505, "HTTP version", "/v2"),
        (
            b"POST /gz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            501,
            "transfer coding",
            "/gz",
        ),
        (b"GET /%2e%2e/etc/passwd HTTP/1.1\r\nHost: t\r\n\r\n", 400, ".. segment", "/%2e%2e/etc/passwd"),
        (b"GET /quo\"te HTTP/1.1\r\nHost: t\r\nHost: u\r\n\r\n", 400, "Host appears twice", "/quo\\\"te"),
    ];
    for (raw, status, reason, target) in cases {
        let r = support::raw(server.addr, raw);
        assert_eq!(r.status, *status, "{reason}");
        let found = eventually(Duration::from_secs(2), || {
            server.log().lines().any(|l| {
                l.contains("127.0.0.1:")
                    && l.contains(&format!("refused with {status}"))
                    && l.contains(reason)
                    && l.contains(target)
            })
        });
        assert!(found, "no refusal line for {reason}: {}", server.log());
        assert!(!server.log().contains("DotDot"), "Rust names in the log");
    }
    for (_, status, _, target) in cases {
        let plain = target.replace("\\\"", "\"");
        // The access line follows the answer, a moment after the warning.
        let logged = eventually(Duration::from_secs(2), || {
            access_lines(&server.log())
                .iter()
                .any(|a| a.status == *status && a.target == plain && !a.method.is_empty())
        });
        assert!(
            logged,
            "no access line with method and target {plain}: {}",
            server.log()
        );
    }
}

/// A client that stops reading is dropped after `--send-timeout`, and that
/// answer still gets its access line, with the bytes actually sent.
#[test]
fn a_dropped_answer_gets_its_access_line() {
    let dir = TempDir::new();
    dir.write("big.bin", &pattern(32 << 20, 2));
    let server = Server::start_with(dir.path(), &["--send-timeout", "1"]);
    // This client never reads: the kernel's buffers fill within a few MiB,
    // then the server's send stalls.
    let mut s = TcpStream::connect(server.addr).unwrap();
    write!(s, "GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let found = eventually(Duration::from_secs(8), || {
        access_lines(&server.log())
            .iter()
            .any(|a| a.target == "/big.bin")
    });
    assert!(
        found,
        "no access line for the dropped answer: {}",
        server.log()
    );
    let a = access_lines(&server.log())
        .into_iter()
        .find(|a| a.target == "/big.bin")
        .unwrap();
    assert_eq!(a.status, 200);
    assert!(a.bytes > 0 && a.bytes < 32 << 20, "{a:?}");
    assert!(server.log().contains("client stopped reading"));
    drop(s);
}

/// `--log-level trace` says more than `debug`: each request head.
#[test]
fn trace_is_more_than_debug() {
    let dir = TempDir::new();
    dir.write("f.txt", b"x");
    for (level, expect) in [("trace", true), ("debug", false)] {
        let p = start(&[
            "--listen",
            "127.0.0.1:0",
            "--log-level",
            level,
            dir.path().to_str().unwrap(),
        ]);
        let addr = p.listening(1)[0];
        support::get(addr, "/f.txt?token=secret123", &[]);
        let seen = eventually(Duration::from_secs(2), || {
            p.log().contains("request GET /f.txt")
        });
        assert_eq!(seen, expect, "{level}: {}", p.log());
        assert!(!p.log().contains("secret123"), "a token reached the log");
    }
}

/// `--rate-limit-total` caps all answers together — eight connections get
/// the cap between them, not eight times it — within 5 %, and fairly.
#[test]
fn total_rate_limit_holds_within_5_percent() {
    const RATE: u64 = 4 << 20;
    const EACH: usize = 2 << 20;
    const CONNS: usize = 8;
    let dir = TempDir::new();
    dir.write("f.bin", &pattern(EACH, 3));
    let server = Server::start_with(dir.path(), &["--rate-limit-total", "4M"]);
    let start = Instant::now();
    let readers: Vec<_> = (0..CONNS)
        .map(|_| {
            let addr = server.addr;
            std::thread::spawn(move || {
                let r = Conn::open(addr).request("GET", "/f.bin", &[]);
                assert_eq!(r.body.len(), EACH);
                start.elapsed()
            })
        })
        .collect();
    let done: Vec<Duration> = readers.into_iter().map(|t| t.join().unwrap()).collect();
    let total = done.iter().max().unwrap().as_secs_f64();
    let rate = (EACH * CONNS) as f64 / total;
    let ratio = rate / RATE as f64;
    eprintln!(
        "total cap {RATE} B/s: {rate:.0} B/s over {total:.2} s ({ratio:.3}); finishes {done:?}"
    );
    assert!(
        (0.95..=1.05).contains(&ratio),
        "total rate {rate:.0} B/s is not within 5 % of {RATE}"
    );
    // Fair: nobody finishes much before the others.
    let first = done.iter().min().unwrap().as_secs_f64();
    assert!(
        first > total * 0.8,
        "unfair: first done at {first:.2} s of {total:.2} s"
    );
}

/// `--user nobody` after binding: the process runs as that user and serves.
/// Only root can switch users; CI runs as root.
#[test]
fn drops_privileges_after_binding() {
    if !running_as_root() {
        eprintln!("skipped: switching users needs root (CI runs as root)");
        return;
    }
    let dir = TempDir::new();
    dir.write("f.txt", b"as nobody\n");
    set_mode(dir.path(), 0o755);
    set_mode(&dir.path().join("f.txt"), 0o644);
    let p = start(&[
        "--listen",
        "127.0.0.1:0",
        "--user",
        "nobody",
        dir.path().to_str().unwrap(),
    ]);
    let addr = p.listening(1)[0];
    assert_eq!(support::get(addr, "/f.txt", &[]).body, b"as nobody\n");
    let status = std::fs::read_to_string(format!("/proc/{}/status", p.pid())).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid.split_whitespace().skip(1).all(|u| u == "65534"),
        "still privileged: {uid}"
    );
    // Refusing root as the target keeps the promise "drop".
    let mut q = start(&[
        "--listen",
        "127.0.0.1:0",
        "--user",
        "root",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(q.wait_exit(Duration::from_secs(5)), Some(1), "{}", q.log());
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
}

fn set_mode(p: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `--syslog-socket PATH` sends every line — the listening notice and the
/// access lines — as datagrams in the format BusyBox `logread` reads.
#[test]
fn syslog_gets_the_lines() {
    let dir = TempDir::new();
    dir.write("f.txt", b"x");
    let sock_path = dir.path().join("log.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let www = TempDir::new();
    www.write("f.txt", b"x");
    let p = start(&[
        "--listen",
        "127.0.0.1:0",
        "--syslog-socket",
        sock_path.to_str().unwrap(),
        www.path().to_str().unwrap(),
    ]);
    let addr = p.listening(1)[0];
    support::get(addr, "/f.txt", &[]);
    let pid = p.pid();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline && !got.iter().any(|l: &String| l.contains("GET /f.txt")) {
        if let Ok(n) = sock.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    let prefix = format!("ranged[{pid}]: ");
    assert!(
        got.iter()
            .any(|l| l.starts_with("<29>") && l.contains(&prefix) && l.contains("listening on")),
        "{got:#?}"
    );
    assert!(
        got.iter().any(|l| l.starts_with("<30>")
            && l.contains(&prefix)
            && l.contains("\"GET /f.txt HTTP/1.1\" 200")),
        "{got:#?}"
    );
}

/// Streaming and camera formats have their types, and `--mime` adds or
/// overrides one.
#[test]
fn content_types_for_streaming_and_overrides() {
    let dir = TempDir::new();
    for name in [
        "a.m3u8", "a.ts", "a.mpd", "a.vtt", "a.avif", "a.heic", "a.epub", "fw.bin",
    ] {
        dir.write(name, b"x");
    }
    let server = Server::start_with(
        dir.path(),
        &[
            "--mime",
            "bin=application/x-firmware",
            "--mime",
            "vtt=text/plain",
        ],
    );
    for (name, want) in [
        ("a.m3u8", "application/vnd.apple.mpegurl"),
        ("a.ts", "video/mp2t"),
        ("a.mpd", "application/dash+xml"),
        ("a.avif", "image/avif"),
        ("a.heic", "image/heic"),
        ("a.epub", "application/epub+zip"),
        ("fw.bin", "application/x-firmware"),
        ("a.vtt", "text/plain"),
    ] {
        let r = support::get(server.addr, &format!("/{name}"), &[]);
        let ct = r.header("content-type").unwrap_or("");
        assert!(ct.starts_with(want), "{name}: {ct}");
    }
}
