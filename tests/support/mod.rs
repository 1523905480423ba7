//! Test support: a temporary folder, the real `ranged` binary started on
//! 127.0.0.1:0, raw-socket requests and a strict response parser. Every test
//! speaks bytes to the server as a client would.
#![allow(dead_code, unused_imports)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod proc;

pub use proc::{
    Proc, aria2_args, file_len, repo, require, require_tus_js, require_tuspy, sha256sum,
};
pub use ranged::testing::{TempDir, pattern};

/// A ranged process a test started: stdin and stdout closed, each stderr
/// line kept in the log and sent on `lines` until the process ends (so it
/// never blocks on a full pipe). Killed and reaped when dropped.
pub struct Logged {
    child: Child,
    pub lines: Receiver<String>,
    log: Arc<Mutex<String>>,
}

impl Logged {
    pub fn spawn(cmd: &mut Command) -> Logged {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ranged");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, lines) = channel();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                {
                    let mut log = sink.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
                let _ = tx.send(line);
            }
        });
        Logged { child, lines, log }
    }

    /// The addresses of the first `n` "listening on" lines, waiting up to
    /// 10 s; `Err` with the log if the process says nothing or ends first.
    pub fn try_listening(&self, n: usize) -> Result<Vec<SocketAddr>, String> {
        let mut addrs = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while addrs.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = self.lines.recv_timeout(left) else {
                return Err(self.log());
            };
            if let Some(rest) = line.split("listening on http://").nth(1) {
                addrs.push(rest.split('/').next().unwrap().parse().unwrap());
            }
        }
        Ok(addrs)
    }

    /// Like [`Logged::try_listening`], failing the test with the log.
    pub fn listening(&self, n: usize) -> Vec<SocketAddr> {
        self.try_listening(n)
            .unwrap_or_else(|log| panic!("ranged did not start:\n{log}"))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends `sig` (`-TERM`, `-HUP` …) by PID: only the process this test
    /// started.
    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([sig, &self.pid().to_string()])
            .status();
    }

    /// Waits up to `limit` for the process to exit; its exit code if it did.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// SIGKILL: no chance to finish a write or say goodbye.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The real binary, serving a folder on 127.0.0.1 with an ephemeral port.
pub struct Server {
    proc: Logged,
    pub addr: SocketAddr,
}

impl Server {
    pub fn start(root: &Path) -> Server {
        Server::start_with(root, &[])
    }

    /// Starts `ranged --listen 127.0.0.1:0 ARGS ROOT` and waits for its
    /// "listening on" line.
    pub fn start_with(root: &Path, args: &[&str]) -> Server {
        Server::spawn(Command::new(env!("CARGO_BIN_EXE_ranged")), root, args)
    }

    /// Like `start_with`, but from a prepared `Command` (e.g. run under a
    /// shell with `ulimit`); the program must exec ranged with the arguments
    /// appended.
    pub fn spawn(mut cmd: Command, root: &Path, args: &[&str]) -> Server {
        cmd.arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--log-level")
            .arg("debug")
            .args(args)
            .arg(root);
        let proc = Logged::spawn(&mut cmd);
        let addr = proc.listening(1)[0];
        Server { proc, addr }
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        self.proc.log()
    }

    /// Threads of the server process.
    pub fn threads(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/task", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Open descriptors of the server process other than files and
    /// folders: sockets, pipes, event fds — what a leaked connection leaves.
    /// (Files are counted apart: the server keeps a bounded number of
    /// recently served files open on purpose, see `file_fds`.)
    pub fn fds(&self) -> usize {
        self.fd_targets().filter(|t| !t.starts_with('/')).count()
    }

    /// Open descriptors of files and folders (kept file handles, the root).
    pub fn file_fds(&self) -> usize {
        self.fd_targets().filter(|t| t.starts_with('/')).count()
    }

    fn fd_targets(&self) -> impl Iterator<Item = String> {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .map(|t| t.to_string_lossy().into_owned())
    }

    /// Resident set size in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// Sends SIGTERM (by PID: only the process this test started).
    pub fn terminate(&self) {
        self.proc.signal("-TERM");
    }

    /// Waits up to `limit` for the process to exit; its exit code if it did.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        self.proc.wait_exit(limit)
    }

    /// A plain GET on a fresh connection: proves the server still serves.
    pub fn assert_serves(&self, path: &str, expected: &[u8]) {
        let r = get(self.addr, path, &[]);
        assert_eq!(
            r.status,
            200,
            "server no longer serves {path}; log:\n{}",
            self.log()
        );
        assert_eq!(r.body, expected, "wrong body for {path}");
    }
}

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The value of the only field called `name`; panics if it appears twice.
    pub fn header(&self, name: &str) -> Option<&str> {
        let mut found = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name));
        let first = found.next().map(|(_, v)| v.as_str());
        assert!(found.next().is_none(), "field {name} appears twice");
        first
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A client connection that can carry several requests (keep-alive).
pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
        Conn {
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
        }
    }

    pub fn send(&mut self, raw: &[u8]) {
        self.writer.write_all(raw).expect("send request");
    }

    /// Reads one response. `head` must be true for a response to HEAD.
    pub fn response(&mut self, head: bool) -> Response {
        read_response(&mut self.reader, head).expect("read response")
    }

    /// GET/HEAD `path` with extra fields, on this connection.
    pub fn request(&mut self, method: &str, path: &str, fields: &[(&str, &str)]) -> Response {
        self.send(&build(method, path, fields));
        self.response(method == "HEAD")
    }

    /// True if the server has closed the connection (EOF with no more bytes).
    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.reader.read(&mut b), Ok(0))
    }

    pub fn stream(&self) -> &TcpStream {
        &self.writer
    }
}

/// Builds an HTTP/1.1 request with `Host` and the given extra fields.
pub fn build(method: &str, path: &str, fields: &[(&str, &str)]) -> Vec<u8> {
    let mut s = format!("{method} {path} HTTP/1.1\r\nHost: test\r\n");
    for (n, v) in fields {
        s.push_str(&format!("{n}: {v}\r\n"));
    }
    s.push_str("\r\n");
    s.into_bytes()
}

/// GET on a fresh connection.
pub fn get(addr: SocketAddr, path: &str, fields: &[(&str, &str)]) -> Response {
    Conn::open(addr).request("GET", path, fields)
}

/// Sends raw bytes on a fresh connection and reads one response.
pub fn raw(addr: SocketAddr, bytes: &[u8]) -> Response {
    let mut c = Conn::open(addr);
    c.send(bytes);
    c.response(bytes.starts_with(b"HEAD "))
}

/// Reads one response strictly: status line, fields, then exactly
/// `Content-Length` body bytes (none for HEAD, 304, 204).
pub fn read_response(r: &mut impl BufRead, head: bool) -> std::io::Result<Response> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    if line.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    assert!(
        line.ends_with("\r\n"),
        "status line not CRLF-terminated: {line:?}"
    );
    let mut parts = line.trim_end().splitn(3, ' ');
    assert_eq!(parts.next(), Some("HTTP/1.1"), "status line {line:?}");
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line)?;
        assert!(
            line.ends_with("\r\n"),
            "field line not CRLF-terminated: {line:?}"
        );
        if line == "\r\n" {
            break;
        }
        let (n, v) = line.trim_end().split_once(':').expect("field line");
        headers.push((n.to_owned(), v.trim().to_owned()));
    }
    let mut resp = Response {
        status,
        headers,
        body: Vec::new(),
    };
    if head || status == 304 || status == 204 {
        return Ok(resp);
    }
    let len: usize = resp
        .header("content-length")
        .expect("every response carries Content-Length")
        .parse()
        .expect("numeric Content-Length");
    resp.body = vec![0; len];
    r.read_exact(&mut resp.body)?;
    Ok(resp)
}

/// Polls `cond` every 50 ms for up to `limit`; true as soon as it holds.
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One access line of the server's log (Combined Log Format, then the Range
/// field and the duration).
#[derive(Debug, Clone)]
pub struct AccessLine {
    pub peer: String,
    pub user: String,
    pub method: String,
    pub target: String,
    pub status: u16,
    /// Body bytes sent (`-` in the log is 0).
    pub bytes: u64,
    pub user_agent: String,
    pub range: String,
}

/// The access lines in `log`, in order; other lines are skipped.
pub fn access_lines(log: &str) -> Vec<AccessLine> {
    log.lines().filter_map(parse_access_line).collect()
}

/// Splits a log line into fields: bare words, `[…]` and `"…"` (with `\"`
/// inside), the quotes removed.
fn fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            ' ' => {
                chars.next();
            }
            '"' => {
                chars.next();
                let mut f = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => f.extend(chars.next()),
                        '"' => break,
                        _ => f.push(c),
                    }
                }
                out.push(f);
            }
            '[' => {
                let f: String = chars.by_ref().take_while(|&c| c != ']').collect();
                out.push(f);
            }
            _ => {
                let mut f = String::new();
                while let Some(&c) = chars.peek() {
                    if c == ' ' {
                        break;
                    }
                    f.push(c);
                    chars.next();
                }
                out.push(f);
            }
        }
    }
    out
}

fn parse_access_line(line: &str) -> Option<AccessLine> {
    let f = fields(line);
    // peer - user [time] "request" status bytes "referer" "ua" "range" 12ms
    if f.len() != 11 || f[1] != "-" || !f[10].ends_with("ms") {
        return None;
    }
    let mut request = f[4].split(' ');
    let method = request.next()?.to_owned();
    let target = request.next().unwrap_or("").to_owned();
    Some(AccessLine {
        peer: f[0].clone(),
        user: f[2].clone(),
        method,
        target,
        status: f[5].parse().ok()?,
        bytes: if f[6] == "-" { 0 } else { f[6].parse().ok()? },
        user_agent: f[8].clone(),
        range: f[9].clone(),
    })
}
