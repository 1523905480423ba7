//! `--rate-limit`: a thin uplink must not be saturated by one client, and the
//! limit must hold within 5 % as measured by the client.

mod support;

use std::io::Read;
use std::time::{Duration, Instant};
use support::{Conn, Server, TempDir, pattern};

/// Downloads `path` on a fresh connection and returns (bytes, seconds from the
/// request to the last body byte).
fn timed_download(server: &Server, path: &str, fields: &[(&str, &str)]) -> (Vec<u8>, f64) {
    let mut c = Conn::open(server.addr);
    let start = Instant::now();
    let r = c.request("GET", path, fields);
    (r.body, start.elapsed().as_secs_f64())
}

#[test]
fn rate_limit_holds_within_five_percent() {
    let dir = TempDir::new();
    let data = pattern(3 * 1024 * 1024, 7);
    dir.write("f.bin", &data);
    // 1 MiB/s: the 3 MiB body must take 3 s (±5 %).
    let server = Server::start_with(dir.path(), &["--rate-limit", "1M"]);
    let (body, secs) = timed_download(&server, "/f.bin", &[]);
    assert_eq!(body, data);
    let rate = data.len() as f64 / secs / (1024.0 * 1024.0);
    eprintln!("rate limit 1 MiB/s: measured {rate:.3} MiB/s over {secs:.2} s");
    assert!((0.95..=1.05).contains(&rate), "measured {rate:.3} MiB/s");

    // A range is paced the same way: 1 MiB in about 1 s.
    let (part, secs) = timed_download(&server, "/f.bin", &[("Range", "bytes=1048576-2097151")]);
    assert_eq!(part, &data[1048576..2097152]);
    assert!(
        (0.95..=1.10).contains(&secs),
        "1 MiB range took {secs:.2} s"
    );

    // Two connections each get the full rate: the limit is per connection.
    let t = Instant::now();
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let addr = server.addr;
            std::thread::spawn(move || {
                let mut c = Conn::open(addr);
                c.request("GET", "/f.bin", &[("Range", "bytes=0-1048575")])
                    .body
                    .len()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 1048576);
    }
    let both = t.elapsed().as_secs_f64();
    assert!(
        both < 1.5,
        "two 1 MiB downloads in parallel took {both:.2} s"
    );
}

#[test]
fn no_rate_limit_is_fast() {
    let dir = TempDir::new();
    let data = pattern(8 * 1024 * 1024, 9);
    dir.write("f.bin", &data);
    let server = Server::start(dir.path());
    let mut c = Conn::open(server.addr);
    let start = Instant::now();
    c.send(b"GET /f.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let mut all = Vec::new();
    c.stream()
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut s = c.stream().try_clone().unwrap();
    s.read_to_end(&mut all).unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert!(all.ends_with(&data[data.len() - 4096..]));
    // Far above any rate-limit figure above: 8 MiB well under 2 s even in debug.
    assert!(secs < 2.0, "8 MiB took {secs:.2} s without a limit");
}

/// The send deadline counts from the last byte the client took, not from the
/// start of the response: a paced download longer than `--send-timeout` that
/// keeps moving must complete.
#[test]
fn steady_download_outlives_the_send_timeout() {
    let dir = TempDir::new();
    let data = pattern(3 * 1024 * 1024, 11);
    dir.write("f.bin", &data);
    let server = Server::start_with(dir.path(), &["--rate-limit", "1M", "--send-timeout", "1"]);
    let (body, secs) = timed_download(&server, "/f.bin", &[]);
    assert_eq!(body.len(), data.len(), "download cut after {secs:.2} s");
    assert!(body == data);
    assert!(secs > 2.5, "the rate limit did not apply ({secs:.2} s)");
}

/// Small answers wait only for their own bytes: with `--rate-limit 500K` a
/// few hundred bytes are due within a millisecond, not after a whole tenth of
/// a second's worth of data.
#[test]
fn small_answers_are_not_held_back() {
    let dir = TempDir::new();
    dir.write("small.txt", b"hello\n");
    let server = Server::start_with(dir.path(), &["--rate-limit", "500K"]);
    let mut c = Conn::open(server.addr);
    let start = Instant::now();
    for _ in 0..5 {
        assert_eq!(c.request("GET", "/small.txt", &[]).body, b"hello\n");
        assert_eq!(c.request("GET", "/missing", &[]).status, 404);
    }
    let secs = start.elapsed().as_secs_f64();
    assert!(secs < 0.25, "10 small answers took {secs:.3} s");
}

/// A paced download whose client resets the connection is closed at once: the
/// worker must not spin on the error poll reports while the pause lasts.
#[test]
fn reset_paced_downloads_cost_no_cpu() {
    let dir = TempDir::new();
    dir.write("f.bin", &pattern(1024 * 1024, 5));
    let server = Server::start_with(dir.path(), &["--rate-limit", "1024", "-t", "1"]);
    let mut conns = Vec::new();
    for _ in 0..20 {
        let mut c = Conn::open(server.addr);
        c.send(b"GET /f.bin HTTP/1.1\r\nHost: t\r\n\r\n");
        conns.push(c);
    }
    std::thread::sleep(Duration::from_millis(300));
    // Unread data makes these closes resets.
    drop(conns);
    std::thread::sleep(Duration::from_millis(200));
    let cpu = || {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", server.pid())).unwrap();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    };
    let before = cpu();
    std::thread::sleep(Duration::from_millis(1500));
    let ticks = cpu() - before;
    assert!(
        ticks <= 5,
        "the server used {ticks} ticks of CPU in 1.5 s with no client"
    );
    let r = support::get(server.addr, "/f.bin", &[("Range", "bytes=0-99")]);
    assert_eq!(
        (r.status, r.body.as_slice()),
        (206, &pattern(1024 * 1024, 5)[..100])
    );
}
