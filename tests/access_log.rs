//! The access line as log analysers see it: a few hundred lines from the
//! library's formatter, with hostile and odd fields, and the log of a real
//! server answering hostile requests, must all be read by goaccess's
//! COMBINED format (the Debian package `goaccess`, which CI installs); and
//! the logger's syslog datagrams, end to end.

mod support;

use ranged::logging::{self, Access, Settings, format_access};
use ranged::testing::{TempDir, Xorshift};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

/// The crate's generator, with a pick.
struct XorShift(Xorshift);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.0.below(from.len())]
    }
}

const SECRET: &str = "s3cr3t-capability";

/// The number after `"key": ` in goaccess's JSON (it writes `"key": 12`).
fn json_number(json: &str, key: &str) -> u64 {
    let needle = format!("\"{key}\": ");
    let at = json
        .find(&needle)
        .unwrap_or_else(|| panic!("no {key} in goaccess's report"));
    json[at + needle.len()..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{key} is not a number"))
}

/// goaccess's JSON report of `log` (COMBINED format), written under `dir`.
fn goaccess(dir: &Path, log: &str) -> String {
    let log_path = dir.join("access.log");
    let report = dir.join("report.json");
    std::fs::write(&log_path, log).unwrap();
    let out = Command::new("goaccess")
        .arg(&log_path)
        .args(["--log-format=COMBINED", "--no-global-config", "-o"])
        .arg(&report)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run goaccess ({e}): install the Debian package `goaccess` (apt-get install goaccess)")
        });
    assert!(
        out.status.success(),
        "goaccess failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&report).expect("goaccess's report")
}

/// The access lines of a real server that answered downloads, ranges,
/// refusals and hostile fields — as the test suite makes them — are all
/// valid Combined Log Format to goaccess, with nothing forged and no token.
#[test]
fn goaccess_reads_a_real_servers_log() {
    let www = TempDir::new();
    www.write("a b.iso", &support::pattern(100_000, 7));
    www.write("dir/f.txt", b"hello");
    let server = support::Server::start(www.path());
    let a = server.addr;
    let requests: Vec<Vec<u8>> = vec![
        support::build("GET", "/a%20b.iso", &[]),
        support::build("GET", "/a%20b.iso", &[("Range", "bytes=0-99")]),
        support::build("GET", "/a%20b.iso", &[("Range", r#"bytes=0-1" 200 9 "x"#)]),
        support::build("HEAD", "/dir/", &[("User-Agent", r#"evil" 200 9 "x"#)]),
        support::build(
            "GET",
            &format!("/dir/f.txt?token={SECRET}"),
            &[("Referer", "http://x/?token=zz")],
        ),
        support::build("GET", "/nope", &[]),
        support::build("DELETE", "/dir/f.txt", &[]),
        b"GET /%2e%2e/etc/passwd HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(),
        b"GET /no-host HTTP/1.1\r\n\r\n".to_vec(),
        b"GET / HTTP/2.0\r\nHost: t\r\n\r\n".to_vec(),
        b"\x16\x03\x01 not http\r\n\r\n".to_vec(),
    ];
    for r in &requests {
        let _ = support::raw(a, r);
    }
    let n = requests.len();
    let lines = support::eventually(Duration::from_secs(3), || {
        support::access_lines(&server.log()).len() >= n
    });
    assert!(lines, "{}", server.log());
    let log: String = server
        .log()
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with(|c: char| c.is_ascii_uppercase()))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        log.lines().count(),
        n,
        "one access line per request:\n{log}"
    );
    let dir = TempDir::new();
    let json = goaccess(dir.path(), &log);
    assert_eq!(
        json_number(&json, "valid_requests"),
        n as u64,
        "{json:.400}"
    );
    assert_eq!(json_number(&json, "failed_requests"), 0);
    assert!(
        !log.contains(SECRET) && !log.contains("zz"),
        "a token reached the log"
    );
}

#[test]
fn goaccess_reads_every_line_as_combined_log_format() {
    let peers = [
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V4(Ipv4Addr::new(192, 168, 1, 23)),
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
        IpAddr::V6("fe80::1c2:3ff:fe04:506".parse().unwrap()),
        IpAddr::V6("2001:db8::42".parse().unwrap()),
        IpAddr::V6(Ipv4Addr::new(172, 16, 0, 9).to_ipv6_mapped()),
    ];
    let users: &[Option<&str>] = &[
        None,
        None,
        Some("alice"),
        Some("bob smith"),
        Some("\u{e9}ric"),
        Some("q\"uote"),
    ];
    let statuses = [
        200u16, 200, 206, 206, 304, 400, 401, 403, 404, 405, 412, 416, 500, 503,
    ];
    let methods: &[&[u8]] = &[
        b"GET", b"GET", b"GET", b"HEAD", b"PUT", b"PATCH", b"POST", b"DELETE", b"OPTIONS", b"",
        b"BREW",
    ];
    let token_target = format!("/incoming/?token={SECRET}");
    let key_target = format!("/files/1?offset=5&key={SECRET}");
    let targets: &[&[u8]] = &[
        b"/",
        b"/a%20b.iso",
        b"/firmware/openwrt-23.05-sysupgrade.bin",
        "/fotos/\u{e9}t\u{e9} 2026/IMG_0001.HEIC".as_bytes(),
        b"/bad\xff\xfeutf8",
        br#"/quote"in"path"#,
        br"/back\slash\",
        b"/ctl\x01\x7f",
        b"/list/?sort=name&order=desc",
        token_target.as_bytes(),
        key_target.as_bytes(),
        b"http://lan:8080/absolute/form",
        b"*",
    ];
    let agents: &[Option<&[u8]>] = &[
        None,
        Some(b"curl/7.88.1"),
        Some(b"Wget/1.21.3"),
        Some(b"aria2/1.36.0"),
        Some(b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
        Some(br#"evil" 200 9 "x"#),
        Some(b"line\r\nbreak"),
        Some(b"\xc3\x28 invalid"),
        Some(b""),
    ];
    let referers: &[Option<&[u8]>] = &[
        None,
        None,
        Some(b"http://lan:8080/list/"),
        Some(b"http://lan:8080/up/?token=abc"),
        Some(br#"x" "y"#),
    ];
    let ranges: &[Option<&[u8]>] = &[
        None,
        None,
        Some(b"bytes=0-1048575"),
        Some(b"bytes=-500"),
        Some(br#"bytes=0-1" 200 9 "x"#),
        Some(b"bytes=0-0,2-3"),
    ];

    let mut rng = XorShift(Xorshift::new(0x9e37_79b9_7f4a_7c15));
    let mut log = String::new();
    let mut bytes_total = 0u64;
    let lines = 400;
    for i in 0..lines {
        let bytes = match rng.next() % 4 {
            0 => 0,
            1 => rng.next() % 1000,
            2 => rng.next() % (1 << 30),
            _ => rng.next() % (1 << 40),
        };
        bytes_total += bytes;
        let a = Access {
            peer: rng.pick(&peers),
            user: rng.pick(users),
            // Across a month end and a year end, one line a few minutes apart.
            time: UNIX_EPOCH + Duration::from_secs(1_798_700_000 + i * 397),
            method: rng.pick(methods),
            target: rng.pick(targets),
            http10: rng.next().is_multiple_of(5),
            status: rng.pick(&statuses),
            bytes,
            referer: rng.pick(referers),
            user_agent: rng.pick(agents),
            range: rng.pick(ranges),
            duration: Duration::from_micros(rng.next() % 90_000_000),
        };
        format_access(&a, &mut log);
        log.push('\n');
    }
    assert_eq!(log.lines().count(), lines as usize, "one line per request");
    assert!(log.is_ascii());
    assert!(!log.contains(SECRET), "a token reached the log");

    let dir = TempDir::new();
    let json = goaccess(dir.path(), &log);
    assert_eq!(json_number(&json, "total_requests"), lines, "{json:.400}");
    assert_eq!(json_number(&json, "valid_requests"), lines);
    assert_eq!(json_number(&json, "failed_requests"), 0);
    // %b was read right on every line, "-" included.
    assert_eq!(json_number(&json, "bandwidth"), bytes_total);
    // Every client, as written (the IPv4-mapped one as plain IPv4).
    for ip in [
        "127.0.0.1",
        "192.168.1.23",
        "10.0.0.2",
        "::1",
        "fe80::1c2:3ff:fe04:506",
        "2001:db8::42",
        "172.16.0.9",
    ] {
        assert!(json.contains(&format!("\"data\": \"{ip}\"")), "host {ip}");
    }
    assert!(
        json.contains(r#"\/incoming\/?token=[redacted]"#),
        "redacted path"
    );
    assert!(!json.contains(SECRET));
}

#[test]
fn records_reach_syslog_as_one_datagram_each() {
    let dir = TempDir::new();
    let sock = dir.path().join("log.sock");
    let rx = UnixDatagram::bind(&sock).unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    logging::init(Settings {
        level: log::LevelFilter::Info,
        timestamps: true,
        syslog: Some(sock.clone()),
    })
    .unwrap();
    let again = logging::init(Settings {
        level: log::LevelFilter::Info,
        timestamps: false,
        syslog: None,
    });
    assert!(again.is_err(), "a second init is refused");

    let pid = std::process::id();
    let recv = || {
        let mut buf = [0u8; 8192];
        let n = rx.recv(&mut buf).expect("a datagram");
        String::from_utf8(buf[..n].to_vec()).unwrap()
    };
    log::warn!("127.0.0.1:5000: request head not complete in time");
    assert_eq!(
        recv(),
        format!("<28>ranged[{pid}]: 127.0.0.1:5000: request head not complete in time")
    );
    log::debug!("below the level: not sent");
    log::info!("{} gone", "a\nforged line");
    assert_eq!(recv(), format!("<30>ranged[{pid}]: a\\x0Aforged line gone"));
    logging::log_access(&Access {
        peer: IpAddr::V4(Ipv4Addr::LOCALHOST),
        user: Some("alice"),
        time: UNIX_EPOCH + Duration::from_secs(1_795_789_205),
        method: b"GET",
        target: b"/up/?token=abc",
        http10: false,
        status: 200,
        bytes: 9,
        referer: None,
        user_agent: Some(b"curl/7.88.1"),
        range: None,
        duration: Duration::from_millis(3),
    });
    assert_eq!(
        recv(),
        format!(
            r#"<30>ranged[{pid}]: 127.0.0.1 - alice [27/Nov/2026:14:20:05 +0000] "GET /up/?token=[redacted] HTTP/1.1" 200 9 "-" "curl/7.88.1" "-" 3ms"#
        )
    );
    logging::notice(format_args!("listening on http://127.0.0.1:8080/"));
    assert_eq!(
        recv(),
        format!("<29>ranged[{pid}]: listening on http://127.0.0.1:8080/")
    );
    log::error!("disk gone");
    assert_eq!(recv(), format!("<27>ranged[{pid}]: disk gone"));
}
