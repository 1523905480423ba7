//! The command line of the real binary: help and version, refused arguments
//! (exit 2, one line and a hint), folders and ports it cannot use (exit 1 with one
//! sentence), the first log line, and a graceful SIGTERM.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};
use support::{Conn, TempDir, pattern, read_response};

const BIN: &str = env!("CARGO_BIN_EXE_ranged");

/// A child this test started; killed (by its own handle) if still running.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Running {
    /// Exit code if the process ends within `limit`.
    fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.0.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

/// Runs `ranged ARGS` to completion (at most 10 s): exit code, stdout, stderr.
fn run(args: &[&str]) -> (i32, String, String) {
    let mut child = Running(
        Command::new(BIN)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ranged"),
    );
    let code = child
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("ranged {args:?} did not exit"));
    let mut out = String::new();
    let mut err = String::new();
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (code, out, err)
}

/// Starts `ranged ARGS` and forwards its stderr lines to a channel.
fn start(args: &[&str]) -> (Running, Receiver<String>) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ranged");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (Running(child), rx)
}

#[test]
fn help_and_version() {
    for flag in ["--help", "-h"] {
        let (code, out, err) = run(&[flag]);
        assert_eq!(code, 0, "{flag}");
        assert!(
            out.starts_with("Usage: ranged [OPTIONS] [DIR]\n"),
            "{flag}: {out}"
        );
        for option in [
            "--listen",
            "--threads",
            "--follow-symlinks",
            "--dotfiles",
            "--no-listing",
        ] {
            assert!(out.contains(option), "{flag}: usage lacks {option}");
        }
        assert_eq!(err, "", "{flag}");
    }
    for flag in ["--version", "-V"] {
        let (code, out, err) = run(&[flag]);
        assert_eq!(code, 0, "{flag}");
        assert_eq!(out, "ranged 0.1.0\n", "{flag}");
        assert_eq!(err, "", "{flag}");
    }
}

/// A bad argument is one line naming the problem and a hint to `--help`
/// (the convention of command-line tools), not the 60-line usage.
#[test]
fn bad_arguments_exit_2_with_one_line_and_a_hint() {
    let a = TempDir::new();
    let b = TempDir::new();
    let (a, b) = (a.path().to_str().unwrap(), b.path().to_str().unwrap());
    for (args, says) in [
        (vec!["--bogus"], "unknown option '--bogus'"),
        (
            vec!["--threads", "0"],
            "--threads: '0' is not a whole number",
        ),
        (vec!["--threads", "+3"], "--threads: '+3'"),
        (
            vec!["--listen", "nowhere"],
            "--listen: 'nowhere' is not ADDR:PORT",
        ),
        (vec!["--listen"], "--listen needs ADDR:PORT"),
        (vec![a, b], "only one DIR can be served"),
        (vec!["--rate-limit", "fast", a], "--rate-limit: 'fast'"),
        (vec!["--rate-limit", "5T", a], "--rate-limit: '5T'"),
        (vec!["--log-level", "loud", a], "--log-level: 'loud'"),
        (vec!["--dotfiles=yes", a], "--dotfiles takes no value"),
    ] {
        let (code, out, err) = run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_eq!(out, "", "{args:?}: nothing on stdout");
        let first = err.lines().next().unwrap_or("");
        assert!(
            first.starts_with("ranged: ") && first.contains(says),
            "{args:?}: {first:?}"
        );
        assert_eq!(
            err,
            format!("{first}\nTry 'ranged --help' for more information.\n"),
            "{args:?}: one line and a hint, no usage"
        );
    }
}

/// The non-empty stderr lines, which must be exactly one.
fn one_line(err: &str) -> &str {
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one sentence on stderr: {err:?}");
    lines[0]
}

#[test]
fn folders_it_cannot_serve_exit_1() {
    let tmp = TempDir::new();
    let missing = tmp.path().join("no-such-folder");
    let file = tmp.write("plain.txt", b"not a folder");
    let (missing_s, file_s) = (missing.to_str().unwrap(), file.to_str().unwrap());
    for (args, path, why) in [
        (
            vec!["--listen", "127.0.0.1:0", missing_s],
            missing_s,
            "No such file or directory",
        ),
        (
            vec!["--listen", "127.0.0.1:0", file_s],
            file_s,
            "not a folder",
        ),
    ] {
        let (code, out, err) = run(&args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert_eq!(out, "");
        let line = one_line(&err);
        assert!(
            line.contains(&format!("cannot serve {path}")) && line.contains(why),
            "{args:?}: {line:?}"
        );
        assert!(!line.contains("Usage"), "no usage for a folder problem");
        // Also when logging is off: the reason still reaches a person.
        let mut quiet = vec!["--log-level", "off"];
        quiet.extend(&args);
        let (code, _, err) = run(&quiet);
        assert_eq!(code, 1, "{quiet:?}");
        let sentence = &line[line.find("cannot serve").unwrap()..];
        assert_eq!(one_line(&err), format!("ranged: {sentence}"));
    }
}

#[test]
fn port_in_use_exits_1() {
    let dir = TempDir::new();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, out, err) = run(&["--listen", &addr, dir.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(out, "");
    let line = one_line(&err);
    assert!(
        line.contains(&format!("cannot listen on {addr}")),
        "{line:?}"
    );
    assert!(line.contains("in use"), "{line:?}");
    drop(taken);
}

#[test]
fn first_log_line_names_the_real_port_and_canonical_folder() {
    let dir = TempDir::new();
    dir.write("sub/hello.txt", b"hello");
    let canonical = std::fs::canonicalize(dir.path().join("sub")).unwrap();
    // A roundabout spelling of the folder: ranged must print its canonical form.
    let roundabout = dir.path().join("sub/../sub/.");
    let (mut child, lines) = start(&["--listen", "127.0.0.1:0", roundabout.to_str().unwrap()]);
    let first = lines
        .recv_timeout(Duration::from_secs(10))
        .expect("a first log line");
    let rest = first
        .split_once("listening on http://127.0.0.1:")
        .unwrap_or_else(|| panic!("first line {first:?}"))
        .1;
    let (port, tail) = rest.split_once('/').expect("port then /");
    let port: u16 = port.parse().expect("numeric port");
    assert_ne!(port, 0, "the real port, not 0");
    assert_eq!(
        tail,
        format!(" serving {}", canonical.display()),
        "{first:?}"
    );
    // That port is the server.
    let mut c = Conn::open(format!("127.0.0.1:{port}").parse().unwrap());
    let r = c.request("GET", "/hello.txt", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"hello");
    assert_eq!(
        child.wait_exit(Duration::from_millis(1)),
        None,
        "still running"
    );
}

fn terminate(child: &Running) {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.0.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
}

#[test]
fn sigterm_exits_0_and_finishes_the_download_in_flight() {
    let dir = TempDir::new();
    let data = pattern(400 * 1024, 9);
    dir.write("big.bin", &data);
    let (mut child, lines) = start(&[
        "--listen",
        "127.0.0.1:0",
        "--rate-limit",
        "200K",
        dir.path().to_str().unwrap(),
    ]);
    let first = lines
        .recv_timeout(Duration::from_secs(10))
        .expect("started");
    let addr = first
        .split_once("listening on http://")
        .and_then(|(_, r)| r.split_once('/'))
        .map(|(a, _)| a.to_owned())
        .unwrap_or_else(|| panic!("{first:?}"));
    let mut c = Conn::open(addr.parse().unwrap());
    c.send(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n");
    // Read the first bytes, so the response is surely under way.
    let mut reader = BufReader::new(c.stream().try_clone().unwrap());
    let mut first_bytes = [0u8; 64];
    reader.read_exact(&mut first_bytes).unwrap();
    let started = Instant::now();
    terminate(&child);
    let mut whole = first_bytes.to_vec();
    reader
        .read_to_end(&mut whole)
        .expect("read until the server closes");
    let mut cursor = std::io::Cursor::new(whole);
    let r = read_response(&mut cursor, false).expect("a complete response");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("409600"));
    assert!(r.body == data, "all {} bytes, intact", data.len());
    assert_eq!(
        cursor.position() as usize,
        cursor.get_ref().len(),
        "nothing after the body"
    );
    assert!(
        started.elapsed() > Duration::from_millis(500),
        "the rate limit held the download open past the signal ({:?})",
        started.elapsed()
    );
    assert_eq!(
        child.wait_exit(Duration::from_secs(5)),
        Some(0),
        "exit 0 after SIGTERM"
    );
    // New connections are no longer served.
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "still accepting after exit"
    );
}

#[test]
fn sigterm_when_idle_exits_0_quickly() {
    let dir = TempDir::new();
    let (mut child, lines) = start(&["--listen", "127.0.0.1:0", dir.path().to_str().unwrap()]);
    let first = lines
        .recv_timeout(Duration::from_secs(10))
        .expect("started");
    assert!(first.contains("listening on"), "{first:?}");
    let started = Instant::now();
    terminate(&child);
    assert_eq!(child.wait_exit(Duration::from_secs(5)), Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

/// `make run` serves a folder of its own, never the checkout itself (whose
/// `target/` holds gigabytes of build output a LAN would see).
#[test]
fn make_run_does_not_serve_the_checkout() {
    let out = Command::new("make")
        .args(["-n", "run"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("make is installed with the toolchain");
    let text = String::from_utf8_lossy(&out.stdout);
    let serve = text
        .lines()
        .find(|l| l.contains("ranged --listen"))
        .unwrap_or_else(|| panic!("no ranged command in make -n run: {text}"));
    let dir = serve.split_whitespace().last().unwrap();
    assert_eq!(dir, "www", "make run serves {dir:?}: {serve}");
}
