//! Uploads as their clients see them (issue "Uploads that survive anything").
//!
//! * The tus 1.0.0 and PUT protocol tables over raw sockets, each answer
//!   followed by the next request on the same kept-alive connection.
//! * Real clients — tuspy, tus-js-client under Node, curl — killed in the
//!   middle of an upload and resumed by a new process.
//! * Faults: `kill -9` of the server in the middle of a PATCH, a client that
//!   vanishes, two PATCHes racing for one upload, a full disk (a small
//!   tmpfs), expiry, readers during a replacement, memory during 200 MB.
//!
//! Every published file is checked by SHA-256 against its source. Every run
//! of a client or a wait is bounded. A missing client, or a tmpfs that cannot
//! be mounted, fails the test with what to install or fix; nothing skips.

mod support;

use sha2::{Digest, Sha256};
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};
use support::{
    Conn, Proc, Response, Server, TempDir, access_lines, eventually, get, pattern, repo, require,
    require_tus_js, require_tuspy,
};

const MIB: usize = 1 << 20;
const TUS: (&str, &str) = ("Tus-Resumable", "1.0.0");
const OCTETS: (&str, &str) = ("Content-Type", "application/offset+octet-stream");
/// Longest a client process may run before it is killed and the test fails.
const CLIENT_LIMIT: Duration = Duration::from_secs(60);
/// Longest we wait for something the server or a client is about to do.
const SOON: Duration = Duration::from_secs(10);

// ------------------------------------------------------------- helpers

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn sha256_file(path: &Path) -> [u8; 32] {
    let mut f = fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).expect("read");
        if n == 0 {
            return h.finalize().into();
        }
        h.update(&buf[..n]);
    }
}

fn b64(data: &[u8]) -> String {
    ranged::base64::encode(data)
}

/// `Upload-Metadata` naming the file.
fn meta(name: &str) -> String {
    format!("filename {}", b64(name.as_bytes()))
}

fn basic(user_pass: &str) -> String {
    format!("Basic {}", b64(user_pass.as_bytes()))
}

/// A request with a `Content-Length` body when `body` is given.
fn request(method: &str, target: &str, fields: &[(&str, &str)], body: Option<&[u8]>) -> Vec<u8> {
    let mut s = format!("{method} {target} HTTP/1.1\r\nHost: test\r\n");
    for (n, v) in fields {
        s.push_str(&format!("{n}: {v}\r\n"));
    }
    if let Some(b) = body {
        s.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    s.push_str("\r\n");
    let mut out = s.into_bytes();
    out.extend_from_slice(body.unwrap_or_default());
    out
}

/// Sends `body` on `s` from another thread, 64 KiB at a time, until it is
/// all sent or the server stops reading; the test reads the answer meanwhile.
fn send_behind(s: &TcpStream, body: Vec<u8>) -> std::thread::JoinHandle<()> {
    let mut s = s.try_clone().unwrap();
    std::thread::spawn(move || {
        for piece in body.chunks(64 * 1024) {
            if s.write_all(piece).is_err() {
                break;
            }
        }
    })
}

/// A chunked body of `data` in pieces of `piece` bytes.
fn chunked(data: &[u8], piece: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for c in data.chunks(piece) {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fn num(r: &Response, field: &str) -> u64 {
    r.header(field)
        .unwrap_or_else(|| panic!("no {field} in {} {:?}", r.status, r.headers))
        .parse()
        .unwrap_or_else(|_| panic!("{field} is not a number: {:?}", r.header(field)))
}

/// The id part of an upload URL (`/in/?upload=<id>`).
fn upload_id(url: &str) -> &str {
    url.split("upload=")
        .nth(1)
        .and_then(|s| s.split('&').next())
        .unwrap_or_else(|| panic!("no upload id in {url}"))
}

/// Files in the state folder ending in `suffix`.
fn state_files(root: &Path, suffix: &str) -> Vec<String> {
    match fs::read_dir(root.join(".ranged")) {
        Ok(d) => d
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(suffix))
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn data_file(root: &Path, url: &str) -> PathBuf {
    root.join(".ranged")
        .join(format!("{}.data", upload_id(url)))
}

/// A tus (and PUT) client on one kept-alive connection; every request
/// carries `Tus-Resumable` and, if given, the account.
struct Client {
    addr: SocketAddr,
    conn: Conn,
    auth: Option<String>,
}

impl Client {
    fn new(addr: SocketAddr, account: Option<&str>) -> Client {
        Client {
            addr,
            conn: Conn::open(addr),
            auth: account.map(basic),
        }
    }

    fn fields<'a>(&'a self, tus: bool, fields: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut all = Vec::new();
        if tus
            && !fields
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("tus-resumable"))
        {
            all.push(TUS);
        }
        if let Some(a) = &self.auth {
            all.push(("Authorization", a.as_str()));
        }
        all.extend_from_slice(fields);
        all
    }

    /// Sends raw request bytes and reads the answer. The connection must
    /// stay open for the next request after every answer, except a refusal
    /// of a request whose body the server did not read: then it may close,
    /// but must say so (`Connection: close`), and the next request goes on a
    /// fresh connection.
    fn raw(&mut self, bytes: &[u8], head: bool) -> Response {
        self.conn.send(bytes);
        let r = self.conn.response(head);
        if closes(&r) {
            let end = bytes
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .unwrap_or(bytes.len());
            let head_text = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
            let has_body = head_text.contains("transfer-encoding: chunked")
                || head_text
                    .lines()
                    .filter_map(|l| l.strip_prefix("content-length: "))
                    .any(|n| n.trim() != "0");
            assert!(
                has_body && r.status >= 400,
                "the connection was not kept alive after {} {}",
                r.status,
                r.body_str()
            );
            assert!(
                self.conn.is_closed(),
                "Connection: close, but the connection stayed open"
            );
            self.conn = Conn::open(self.addr);
        }
        r
    }

    /// A tus request on the kept-alive connection.
    fn tus(
        &mut self,
        method: &str,
        target: &str,
        fields: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Response {
        let all = self.fields(true, fields);
        self.raw(&request(method, target, &all, body), method == "HEAD")
    }

    /// A request without `Tus-Resumable` (PUT, GET, OPTIONS).
    fn plain(
        &mut self,
        method: &str,
        target: &str,
        fields: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Response {
        let all = self.fields(false, fields);
        self.raw(&request(method, target, &all, body), method == "HEAD")
    }

    /// Creates an upload of `len` bytes named `name` in `folder`; its URL.
    fn create(&mut self, folder: &str, len: usize, name: &str) -> String {
        let (l, m) = (len.to_string(), meta(name));
        let r = self.tus(
            "POST",
            folder,
            &[("Upload-Length", &l), ("Upload-Metadata", &m)],
            None,
        );
        assert_eq!(r.status, 201, "creation of {name}: {}", r.body_str());
        r.header("location").expect("Location").to_owned()
    }

    fn head(&mut self, url: &str) -> Response {
        self.tus("HEAD", url, &[], None)
    }

    fn offset(&mut self, url: &str) -> u64 {
        let r = self.head(url);
        assert!(matches!(r.status, 200 | 204), "HEAD {url}: {}", r.status);
        num(&r, "upload-offset")
    }

    fn patch(&mut self, url: &str, offset: u64, data: &[u8], extra: &[(&str, &str)]) -> Response {
        let o = offset.to_string();
        let mut fields = vec![OCTETS, ("Upload-Offset", o.as_str())];
        fields.extend_from_slice(extra);
        self.tus("PATCH", url, &fields, Some(data))
    }
}

/// The server ends the connection after this answer (`--max-requests`).
fn closes(r: &Response) -> bool {
    r.header("connection")
        .is_some_and(|v| v.eq_ignore_ascii_case("close"))
}

/// What a tus answer must carry whatever its status.
fn assert_tus(r: &Response, what: &str) {
    assert_eq!(
        r.header("tus-resumable"),
        Some("1.0.0"),
        "{what}: Tus-Resumable"
    );
}

/// A refusal: the status, Tus-Resumable, and a one-line reason as the body.
fn assert_refused(r: &Response, status: u16, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.body_str());
    assert_tus(r, what);
    let body = r.body_str();
    assert!(
        body.starts_with(&status.to_string()) && body.ends_with('\n') && body.lines().count() == 1,
        "{what}: the reason is not one line: {body:?}"
    );
}

/// `Upload-Expires` is an IMF-fixdate in the future, within `max` from now.
fn assert_expires(r: &Response, max: Duration, what: &str) {
    let v = r
        .header("upload-expires")
        .unwrap_or_else(|| panic!("{what}: no Upload-Expires"));
    let at =
        httpdate::parse_http_date(v).unwrap_or_else(|_| panic!("{what}: Upload-Expires {v:?}"));
    let now = SystemTime::now();
    assert!(
        at + Duration::from_secs(1) >= now && at <= now + max + Duration::from_secs(1),
        "{what}: Upload-Expires {v} is not within {max:?} from now"
    );
}

/// What these tests read from the upload drivers' output.
trait Progress {
    /// The numbers of the stdout lines `<word> N`, in order.
    fn numbers(&self, word: &str) -> Vec<u64>;
    /// Waits (bounded) for a successful exit.
    fn wait_ok(&mut self);
    /// Waits (bounded) until a stdout line `offset N` has N ≥ `at`; the last N.
    fn wait_offset(&mut self, at: u64) -> u64;
}

impl Progress for Proc {
    fn numbers(&self, word: &str) -> Vec<u64> {
        self.stdout()
            .lines()
            .filter_map(|l| {
                l.strip_prefix(word)?
                    .strip_prefix(' ')?
                    .split(' ')
                    .next()?
                    .parse()
                    .ok()
            })
            .collect()
    }

    fn wait_ok(&mut self) {
        let st = self.wait(CLIENT_LIMIT);
        assert!(
            st.success(),
            "`{}` failed: {st}\n{}",
            self.name,
            self.output()
        );
    }

    fn wait_offset(&mut self, at: u64) -> u64 {
        let start = Instant::now();
        loop {
            if let Some(&n) = self.numbers("offset").last()
                && n >= at
            {
                return n;
            }
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                panic!(
                    "`{}` ended ({st}) before offset {at}\n{}",
                    self.name,
                    self.output()
                );
            }
            assert!(
                start.elapsed() < CLIENT_LIMIT,
                "`{}` did not reach offset {at}\n{}",
                self.name,
                self.output()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// `kill -9` of the server (by its PID), waiting until it is gone.
fn kill9(server: &mut Server) {
    let st = Command::new("kill")
        .args(["-KILL", &server.pid().to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
    assert!(
        server.wait_exit(SOON).is_none(),
        "killed by a signal: no exit code"
    );
}

/// A served folder with an `in/` folder and an account `me:secret` that may
/// write.
fn upload_server(extra: &[&str]) -> (TempDir, Server) {
    let dir = TempDir::new();
    fs::create_dir(dir.path().join("in")).unwrap();
    let mut args = vec!["--upload", "--auth", "me:secret:rw"];
    args.extend_from_slice(extra);
    let server = Server::start_with(dir.path(), &args);
    (dir, server)
}

const ME: Option<&str> = Some("me:secret");

/// A creation: what it tests, `Upload-Length`, `Upload-Defer-Length`,
/// `Upload-Metadata`, `Tus-Resumable` (each `None`: not sent), the status.
type CreationRow = (
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Option<String>,
    Option<&'static str>,
    u16,
);
/// A PATCH: what it tests, `Upload-Offset`, the body, more fields, the status.
type PatchRow<'a> = (&'a str, u64, &'a [u8], Fields<'a>, u16);
/// A PUT: what it tests, the path, more fields, the status.
type PutRow<'a> = (&'a str, &'a str, Fields<'a>, u16);
type Fields<'a> = Vec<(&'a str, &'a str)>;

// ------------------------------------------------------- 1. the tables

/// OPTIONS, and creation: every refusal of a POST, and the names accepted.
#[test]
fn tus_options_and_creation_table() {
    let (dir, server) = upload_server(&["--max-upload-size", "1M"]);
    let mut c = Client::new(server.addr, ME);

    // OPTIONS needs neither Tus-Resumable nor an account.
    let mut anon = Client::new(server.addr, None);
    let r = anon.plain("OPTIONS", "/in/", &[], None);
    assert_eq!(r.status, 204);
    assert_tus(&r, "OPTIONS");
    assert_eq!(r.header("tus-version"), Some("1.0.0"));
    assert_eq!(r.header("tus-max-size"), Some("1048576"));
    let ext: Vec<&str> = r
        .header("tus-extension")
        .unwrap()
        .split(',')
        .map(str::trim)
        .collect();
    for e in [
        "creation",
        "creation-with-upload",
        "creation-defer-length",
        "termination",
        "expiration",
        "checksum",
    ] {
        assert!(ext.contains(&e), "Tus-Extension lacks {e}: {ext:?}");
    }
    let algos: Vec<&str> = r
        .header("tus-checksum-algorithm")
        .unwrap()
        .split(',')
        .map(str::trim)
        .collect();
    assert!(
        algos.contains(&"sha1") && algos.contains(&"sha256"),
        "{algos:?}"
    );

    let name = |n: &[u8]| format!("filename {}", b64(n));
    let long = "x".repeat(256);
    let longest = "y".repeat(255);
    let ok_meta = meta("ok.txt");
    // (what, Upload-Length, Upload-Defer-Length, Upload-Metadata, Tus-Resumable, status)
    // (what, Upload-Length, Upload-Defer-Length, Upload-Metadata, Tus-Resumable, status)
    #[rustfmt::skip]
    let rows: Vec<CreationRow> = vec![
        ("no length header", None, None, Some(ok_meta.clone()), Some("1.0.0"), 400),
        ("both length headers", Some("10"), Some("1"), Some(ok_meta.clone()), Some("1.0.0"), 400),
        ("Upload-Defer-Length: 2", None, Some("2"), Some(ok_meta.clone()), Some("1.0.0"), 400),
        ("Upload-Length: -1", Some("-1"), None, Some(ok_meta.clone()), Some("1.0.0"), 400),
        ("Upload-Length: 0x10", Some("0x10"), None, Some(ok_meta.clone()), Some("1.0.0"), 400),
        ("Upload-Length past u64", Some("99999999999999999999"), None, Some(ok_meta.clone()), Some("1.0.0"), 400),
        ("over --max-upload-size", Some("1048577"), None, Some(ok_meta.clone()), Some("1.0.0"), 413),
        ("metadata not base64", Some("10"), None, Some("filename !!!".into()), Some("1.0.0"), 400),
        ("metadata key twice", Some("10"), None, Some(format!("{ok_meta},{ok_meta}")), Some("1.0.0"), 400),
        ("empty metadata (tuspy's default): no name", Some("10"), None, Some(String::new()), Some("1.0.0"), 400),
        ("no metadata: no name", Some("10"), None, None, Some("1.0.0"), 400),
        ("name with /", Some("10"), None, Some(name(b"a/b.txt")), Some("1.0.0"), 400),
        ("name with \\", Some("10"), None, Some(name(b"a\\b.txt")), Some("1.0.0"), 400),
        ("name with NUL", Some("10"), None, Some(name(b"a\0b.txt")), Some("1.0.0"), 400),
        ("name ..", Some("10"), None, Some(name(b"..")), Some("1.0.0"), 400),
        ("name .", Some("10"), None, Some(name(b".")), Some("1.0.0"), 400),
        ("name with a leading dot", Some("10"), None, Some(name(b".hidden")), Some("1.0.0"), 400),
        ("name of 256 bytes", Some("10"), None, Some(name(long.as_bytes())), Some("1.0.0"), 400),
        ("name not UTF-8", Some("10"), None, Some(name(b"a\xff.txt")), Some("1.0.0"), 400),
        ("name with a newline", Some("10"), None, Some(name(b"a\nb.txt")), Some("1.0.0"), 400),
        ("Tus-Resumable 0.2.2", Some("10"), None, Some(ok_meta.clone()), Some("0.2.2"), 412),
        ("no Tus-Resumable", Some("10"), None, Some(ok_meta.clone()), None, 412),
        ("a..b.txt is an ordinary name", Some("10"), None, Some(name(b"a..b.txt")), Some("1.0.0"), 201),
        ("a name of 255 bytes", Some("10"), None, Some(name(longest.as_bytes())), Some("1.0.0"), 201),
        ("exactly --max-upload-size", Some("1048576"), None, Some(name(b"max.bin")), Some("1.0.0"), 201),
        ("Uppy's `name` key", Some("10"), None, Some(format!("name {}", b64(b"uppy.txt"))), Some("1.0.0"), 201),
        ("a UTF-8 name and more keys", Some("10"), None, Some(format!("{},filetype {}", name("é 日.txt".as_bytes()), b64(b"text/plain"))), Some("1.0.0"), 201),
    ];
    for (what, len, defer, metadata, version, status) in rows {
        let before = state_files(dir.path(), ".meta").len();
        let mut fields = Vec::new();
        if let Some(v) = version {
            fields.push(("Tus-Resumable", v));
        }
        if let Some(l) = len {
            fields.push(("Upload-Length", l));
        }
        if let Some(d) = defer {
            fields.push(("Upload-Defer-Length", d));
        }
        if let Some(m) = &metadata {
            fields.push(("Upload-Metadata", m.as_str()));
        }
        let all = c.fields(false, &fields);
        let r = c.raw(&request("POST", "/in/", &all, None), false);
        let after = state_files(dir.path(), ".meta").len();
        if status == 201 {
            assert_eq!(r.status, 201, "{what}: {}", r.body_str());
            assert_tus(&r, what);
            let loc = r.header("location").unwrap();
            let id = loc.strip_prefix("/in/?upload=").unwrap_or_else(|| {
                panic!("{what}: Location {loc} is not an absolute path of /in/")
            });
            assert!(
                id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
                "{what}: {loc}"
            );
            assert_expires(&r, Duration::from_secs(86400), what);
            assert_eq!(after, before + 1, "{what}: one upload created");
            let h = c.head(loc);
            assert_eq!(
                h.header("upload-metadata"),
                metadata.as_deref(),
                "{what}: metadata echoed"
            );
        } else {
            assert_refused(&r, status, what);
            assert_eq!(after, before, "{what}: nothing created");
            if status == 412 {
                assert_eq!(
                    r.header("tus-version"),
                    Some("1.0.0"),
                    "{what}: Tus-Version"
                );
            }
        }
    }

    // A POST to a name rather than a folder is not a creation.
    let r = c.tus(
        "POST",
        "/in/x.txt",
        &[("Upload-Length", "1"), ("Upload-Metadata", &ok_meta)],
        None,
    );
    assert_eq!(r.status, 405);
    // A folder whose name needs escaping: Location is its escaped path,
    // and it works as it is.
    fs::create_dir(dir.path().join("my photos é")).unwrap();
    let r = c.tus(
        "POST",
        "/my%20photos%20%C3%A9/",
        &[("Upload-Length", "3"), ("Upload-Metadata", &ok_meta)],
        None,
    );
    assert_eq!(r.status, 201, "{}", r.body_str());
    let loc = r.header("location").unwrap().to_owned();
    assert!(loc.starts_with("/my%20photos%20%C3%A9/?upload="), "{loc}");
    assert_eq!(c.patch(&loc, 0, b"abc", &[]).status, 204);
    assert_eq!(
        fs::read(dir.path().join("my photos é/ok.txt")).unwrap(),
        b"abc"
    );
    // Nor into a folder that does not exist, nor a hidden one.
    let r = c.tus(
        "POST",
        "/nowhere/",
        &[("Upload-Length", "1"), ("Upload-Metadata", &ok_meta)],
        None,
    );
    assert!(
        matches!(r.status, 404 | 409),
        "missing folder: {}",
        r.status
    );
    let r = c.tus(
        "POST",
        "/.ranged/",
        &[("Upload-Length", "1"), ("Upload-Metadata", &ok_meta)],
        None,
    );
    assert!(
        (400..500).contains(&r.status),
        "the state folder: {}",
        r.status
    );
    // Nothing else was published by any of it.
    let names: Vec<_> = fs::read_dir(dir.path().join("in")).unwrap().collect();
    assert!(names.is_empty(), "creation published files: {names:?}");
}

/// HEAD and PATCH on one upload, step by step: offsets, refusals that change
/// nothing, checksums, bytes past the length, the method override, and the
/// published file.
#[test]
fn tus_patch_table() {
    let (dir, server) = upload_server(&[]);
    let mut c = Client::new(server.addr, ME);
    let data = pattern(1000, 7);
    let metadata = format!("{},filetype {}", meta("a.bin"), b64(b"application/x-test"));
    let r = c.tus(
        "POST",
        "/in/",
        &[("Upload-Length", "1000"), ("Upload-Metadata", &metadata)],
        None,
    );
    assert_eq!(r.status, 201);
    let url = r.header("location").unwrap().to_owned();

    let h = c.head(&url);
    assert!(matches!(h.status, 200 | 204), "HEAD: {}", h.status);
    assert_tus(&h, "HEAD");
    assert_eq!(h.header("upload-offset"), Some("0"));
    assert_eq!(h.header("upload-length"), Some("1000"));
    assert_eq!(h.header("upload-defer-length"), None);
    assert_eq!(h.header("upload-metadata"), Some(metadata.as_str()));
    assert_eq!(h.header("cache-control"), Some("no-store"));
    assert_expires(&h, Duration::from_secs(86400), "HEAD");

    let r = c.patch(&url, 0, &data[..100], &[]);
    assert_eq!(r.status, 204, "{}", r.body_str());
    assert_tus(&r, "PATCH");
    assert_eq!(num(&r, "upload-offset"), 100);
    assert_expires(&r, Duration::from_secs(86400), "PATCH");

    let sha1 = |d: &[u8]| b64(&sha1::Sha1::digest(d));
    let sha2 = |d: &[u8]| b64(&sha256(d));
    let wrong = pattern(100, 99);
    let (s1_right, s2_right) = (
        format!("sha1 {}", sha1(&data[100..200])),
        format!("sha256 {}", sha2(&data[200..300])),
    );
    let (s1_wrong, s2_wrong) = (
        format!("sha1 {}", sha1(&wrong)),
        format!("sha256 {}", sha2(&wrong)),
    );
    let md5 = format!("md5 {}", b64(&[0u8; 16]));
    let tus_old = [("Tus-Resumable", "0.2.2")];

    // Refusals that change nothing: (what, offset, bytes, extra fields, status).
    #[rustfmt::skip]
    let refusals: Vec<PatchRow> = vec![
        ("an offset behind", 50, &data[50..150], vec![], 409),
        ("an offset ahead", 200, &data[200..300], vec![], 409),
        ("Tus-Resumable 0.2.2", 100, &data[100..200], tus_old.to_vec(), 412),
        ("sha1 mismatch", 100, &data[100..200], vec![("Upload-Checksum", &s1_wrong)], 460),
        ("sha256 mismatch", 100, &data[100..200], vec![("Upload-Checksum", &s2_wrong)], 460),
        ("sha256 of other bytes", 100, &data[100..200], vec![("Upload-Checksum", &s2_right)], 460),
        ("an unknown algorithm", 100, &data[100..200], vec![("Upload-Checksum", &md5)], 400),
        ("a malformed checksum", 100, &data[100..200], vec![("Upload-Checksum", "sha1 !!")], 400),
    ];
    for (what, offset, bytes, extra, status) in &refusals {
        let r = c.patch(&url, *offset, bytes, extra);
        assert_refused(&r, *status, what);
        if *status == 412 {
            assert_eq!(r.header("tus-version"), Some("1.0.0"), "{what}");
        }
        if *status == 409 {
            assert_eq!(
                r.header("upload-offset"),
                Some("100"),
                "{what}: 409 tells the offset"
            );
        }
        assert_eq!(c.offset(&url), 100, "{what}: the offset moved");
        assert_eq!(
            fs::metadata(data_file(dir.path(), &url)).unwrap().len(),
            100,
            "{what}: bytes kept"
        );
    }
    // Content-Type other than application/offset+octet-stream: 415.
    let r = c.tus(
        "PATCH",
        &url,
        &[
            ("Content-Type", "application/octet-stream"),
            ("Upload-Offset", "100"),
        ],
        Some(&data[100..200]),
    );
    assert_refused(&r, 415, "Content-Type application/octet-stream");
    let r = c.tus(
        "PATCH",
        &url,
        &[("Upload-Offset", "100")],
        Some(&data[100..200]),
    );
    assert_refused(&r, 415, "no Content-Type");
    // No Upload-Offset: 400.
    let r = c.tus("PATCH", &url, &[OCTETS], Some(&data[100..200]));
    assert_refused(&r, 400, "no Upload-Offset");
    assert_eq!(c.offset(&url), 100);

    // Right checksums: accepted.
    let r = c.patch(
        &url,
        100,
        &data[100..200],
        &[("Upload-Checksum", &s1_right)],
    );
    assert_eq!(
        (r.status, num(&r, "upload-offset")),
        (204, 200),
        "sha1 right"
    );
    let r = c.patch(
        &url,
        200,
        &data[200..300],
        &[("Upload-Checksum", &s2_right)],
    );
    assert_eq!(
        (r.status, num(&r, "upload-offset")),
        (204, 300),
        "sha256 right"
    );

    // Past Upload-Length, announced: refused before the body, nothing kept.
    let mut too_long = data[300..].to_vec();
    too_long.extend_from_slice(b"EXTRA");
    let o = "300".to_string();
    let all = c.fields(true, &[OCTETS, ("Upload-Offset", &o)]);
    let r = c.raw(&request("PATCH", &url, &all, Some(&too_long)), false);
    assert_refused(&r, 413, "a body past Upload-Length");
    assert_eq!(c.offset(&url), 300, "413: the offset moved");
    // Past Upload-Length, chunked: cut off at the length, nothing past it kept.
    let mut head = request(
        "PATCH",
        &url,
        &c.fields(
            true,
            &[
                OCTETS,
                ("Upload-Offset", &o),
                ("Transfer-Encoding", "chunked"),
            ],
        ),
        None,
    );
    head.extend_from_slice(&chunked(&too_long, 300));
    let r = c.raw(&head, false);
    assert_refused(&r, 413, "a chunked body past Upload-Length");
    let now = c.offset(&url);
    assert!(
        (300..=1000).contains(&now),
        "offset {now} after a chunked body past the length"
    );
    assert!(
        fs::metadata(data_file(dir.path(), &url))
            .map(|m| m.len())
            .unwrap_or(0)
            <= 1000
    );

    // POST with X-HTTP-Method-Override: PATCH is a PATCH (tus core).
    let o = now.to_string();
    let r = c.tus(
        "POST",
        &url,
        &[
            ("X-HTTP-Method-Override", "PATCH"),
            OCTETS,
            ("Upload-Offset", &o),
        ],
        Some(&data[now as usize..900]),
    );
    assert_eq!(
        (r.status, num(&r, "upload-offset")),
        (204, 900),
        "method override: {}",
        r.body_str()
    );
    assert!(
        get(server.addr, "/in/a.bin", &[]).status == 404,
        "published before complete"
    );

    // The last bytes: published, exactly.
    let r = c.patch(&url, 900, &data[900..], &[]);
    assert_eq!((r.status, num(&r, "upload-offset")), (204, 1000));
    assert_eq!(sha256_file(&dir.path().join("in/a.bin")), sha256(&data));
    let g = c.plain("GET", "/in/a.bin", &[], None);
    assert_eq!((g.status, sha256(&g.body)), (200, sha256(&data)));
    // A client whose last answer was lost asks again: complete.
    let h = c.head(&url);
    assert_eq!(
        (h.header("upload-offset"), h.header("upload-length")),
        (Some("1000"), Some("1000"))
    );
    let r = c.patch(&url, 1000, &[], &[]);
    assert_eq!(
        (r.status, r.header("upload-offset")),
        (204, Some("1000")),
        "PATCH at the end after publishing"
    );
    assert!(
        state_files(dir.path(), ".data").is_empty(),
        "the data file stayed behind"
    );

    // Unknown uploads: 404 for every method.
    let unknown = format!("/in/?upload={}", "0".repeat(32));
    for m in ["HEAD", "PATCH", "DELETE"] {
        let body = (m == "PATCH").then_some(&b"x"[..]);
        let fields: &[(&str, &str)] = if m == "PATCH" {
            &[OCTETS, ("Upload-Offset", "0")]
        } else {
            &[]
        };
        let r = c.tus(m, &unknown, fields, body);
        assert_eq!(r.status, 404, "{m} of an unknown upload");
        assert_tus(&r, m);
    }
}

/// Termination, creation-with-upload and creation-defer-length.
#[test]
fn tus_extensions_table() {
    let (dir, server) = upload_server(&["--max-upload-size", "10M"]);
    let mut c = Client::new(server.addr, ME);
    let data = pattern(3000, 11);

    // termination: 204, then 404 for everything, and the bytes are gone.
    let url = c.create("/in/", 3000, "gone.bin");
    assert_eq!(c.patch(&url, 0, &data[..1000], &[]).status, 204);
    assert!(data_file(dir.path(), &url).exists());
    let r = c.tus("DELETE", &url, &[], None);
    assert_eq!(r.status, 204);
    assert_tus(&r, "DELETE");
    for m in ["HEAD", "DELETE"] {
        let r = c.tus(m, &url, &[], None);
        assert!(
            matches!(r.status, 404 | 410),
            "{m} after DELETE: {}",
            r.status
        );
    }
    let r = c.patch(&url, 1000, &data[1000..], &[]);
    assert!(
        matches!(r.status, 404 | 410),
        "PATCH after DELETE: {}",
        r.status
    );
    assert!(
        !data_file(dir.path(), &url).exists(),
        "the data file stayed behind"
    );
    assert_eq!(state_files(dir.path(), ".meta").len(), 0);
    assert_eq!(get(server.addr, "/in/gone.bin", &[]).status, 404);

    // creation-with-upload: the POST body is the first chunk.
    let m = meta("first.bin");
    let r = c.tus(
        "POST",
        "/in/",
        &[("Upload-Length", "3000"), ("Upload-Metadata", &m), OCTETS],
        Some(&data[..1200]),
    );
    assert_eq!(r.status, 201, "{}", r.body_str());
    assert_eq!(num(&r, "upload-offset"), 1200);
    let url = r.header("location").unwrap().to_owned();
    assert_eq!(c.offset(&url), 1200);
    assert_eq!(c.patch(&url, 1200, &data[1200..], &[]).status, 204);
    assert_eq!(sha256_file(&dir.path().join("in/first.bin")), sha256(&data));
    // …the whole file in the POST: published at once.
    let m = meta("whole.bin");
    let r = c.tus(
        "POST",
        "/in/",
        &[("Upload-Length", "3000"), ("Upload-Metadata", &m), OCTETS],
        Some(&data),
    );
    assert_eq!((r.status, num(&r, "upload-offset")), (201, 3000));
    assert_eq!(sha256_file(&dir.path().join("in/whole.bin")), sha256(&data));
    // …again, other bytes under the same name: the file is replaced.
    let other = pattern(2000, 12);
    let r = c.tus(
        "POST",
        "/in/",
        &[("Upload-Length", "2000"), ("Upload-Metadata", &m), OCTETS],
        Some(&other),
    );
    assert_eq!((r.status, num(&r, "upload-offset")), (201, 2000));
    assert_eq!(
        sha256_file(&dir.path().join("in/whole.bin")),
        sha256(&other)
    );
    // …a body of another type: 415, nothing created.
    let before = state_files(dir.path(), ".meta").len();
    let m = meta("bad.bin");
    let r = c.tus(
        "POST",
        "/in/",
        &[
            ("Upload-Length", "3000"),
            ("Upload-Metadata", &m),
            ("Content-Type", "text/plain"),
        ],
        Some(&data[..10]),
    );
    assert_refused(&r, 415, "creation-with-upload of another type");
    assert_eq!(state_files(dir.path(), ".meta").len(), before);
    // …with a checksum of the first chunk.
    let m = meta("summed.bin");
    let sum = format!("sha1 {}", b64(&sha1::Sha1::digest(&data[..500])));
    let r = c.tus(
        "POST",
        "/in/",
        &[
            ("Upload-Length", "3000"),
            ("Upload-Metadata", &m),
            OCTETS,
            ("Upload-Checksum", &sum),
        ],
        Some(&data[..500]),
    );
    assert_eq!((r.status, num(&r, "upload-offset")), (201, 500));

    // An empty file is complete at its creation: published by the POST
    // alone (tus-js-client and tuspy send no PATCH for it).
    let m = meta("empty.txt");
    let r = c.tus(
        "POST",
        "/in/",
        &[("Upload-Length", "0"), ("Upload-Metadata", &m)],
        None,
    );
    assert_eq!((r.status, num(&r, "upload-offset")), (201, 0));
    assert_eq!(
        fs::read(dir.path().join("in/empty.txt")).ok(),
        Some(Vec::new()),
        "an empty upload was not published"
    );
    let h = c.head(r.header("location").unwrap());
    assert_eq!(
        (h.header("upload-offset"), h.header("upload-length")),
        (Some("0"), Some("0"))
    );

    // A whole-file digest announced at creation: checked before
    // publishing; wrong, nothing is published and the upload is gone.
    let m = meta("checked.bin");
    let wrong = format!("sha-256=:{}:", b64(&sha256(b"other bytes")));
    let r = c.tus(
        "POST",
        "/in/",
        &[
            ("Upload-Length", "3000"),
            ("Upload-Metadata", &m),
            ("Repr-Digest", &wrong),
        ],
        None,
    );
    assert_eq!(r.status, 201);
    let url = r.header("location").unwrap().to_owned();
    assert_eq!(c.patch(&url, 0, &data[..2000], &[]).status, 204);
    let r = c.patch(&url, 2000, &data[2000..], &[]);
    assert!(
        (400..500).contains(&r.status),
        "the last PATCH of a wrong file: {}",
        r.status
    );
    assert_tus(&r, "digest mismatch");
    assert!(
        !dir.path().join("in/checked.bin").exists(),
        "published with a wrong digest"
    );
    assert!(
        matches!(c.head(&url).status, 404 | 410),
        "the wrong upload stayed"
    );
    assert!(!data_file(dir.path(), &url).exists());
    let right = format!("sha-256=:{}:", b64(&sha256(&data)));
    let r = c.tus(
        "POST",
        "/in/",
        &[
            ("Upload-Length", "3000"),
            ("Upload-Metadata", &m),
            ("Repr-Digest", &right),
            OCTETS,
        ],
        Some(&data),
    );
    assert_eq!(r.status, 201);
    assert_eq!(r.header("repr-digest"), Some(right.as_str()));
    assert_eq!(
        sha256_file(&dir.path().join("in/checked.bin")),
        sha256(&data)
    );

    // creation-defer-length: the length comes with a later PATCH.
    let m = meta("later.bin");
    let r = c.tus(
        "POST",
        "/in/",
        &[("Upload-Defer-Length", "1"), ("Upload-Metadata", &m)],
        None,
    );
    assert_eq!(r.status, 201);
    let url = r.header("location").unwrap().to_owned();
    let h = c.head(&url);
    assert_eq!(
        (h.header("upload-defer-length"), h.header("upload-length")),
        (Some("1"), None)
    );
    assert_eq!(c.patch(&url, 0, &data[..1000], &[]).status, 204);
    assert_eq!(get(server.addr, "/in/later.bin", &[]).status, 404);
    // A length over the maximum: 413, still deferred.
    let r = c.patch(
        &url,
        1000,
        &data[1000..2000],
        &[("Upload-Length", "10485761")],
    );
    assert_refused(&r, 413, "a deferred length over the maximum");
    assert_eq!(c.head(&url).header("upload-defer-length"), Some("1"));
    let r = c.patch(&url, 1000, &data[1000..2000], &[("Upload-Length", "3000")]);
    assert_eq!((r.status, num(&r, "upload-offset")), (204, 2000));
    let h = c.head(&url);
    assert_eq!(
        (h.header("upload-length"), h.header("upload-defer-length")),
        (Some("3000"), None)
    );
    assert_eq!(c.patch(&url, 2000, &data[2000..], &[]).status, 204);
    assert_eq!(sha256_file(&dir.path().join("in/later.bin")), sha256(&data));
}

/// PUT: created or replaced atomically, preconditions, refusals, chunked
/// bodies, missing folders, a body cut short.
#[test]
fn put_table() {
    let (dir, server) = upload_server(&["--max-upload-size", "1M"]);
    let mut c = Client::new(server.addr, ME);
    let one = pattern(5000, 1);
    let two = pattern(7000, 2);
    let three = pattern(9000, 3);

    // Missing parent folders are created.
    let r = c.plain("PUT", "/new/deep/er/a.bin", &[], Some(&one));
    assert_eq!(r.status, 201, "{}", r.body_str());
    assert_eq!(
        sha256_file(&dir.path().join("new/deep/er/a.bin")),
        sha256(&one)
    );
    let etag_one = c
        .plain("HEAD", "/new/deep/er/a.bin", &[], None)
        .header("etag")
        .unwrap()
        .to_owned();
    // Replaced: 204.
    let r = c.plain("PUT", "/new/deep/er/a.bin", &[], Some(&two));
    assert_eq!(r.status, 204, "{}", r.body_str());
    let g = c.plain("GET", "/new/deep/er/a.bin", &[], None);
    assert_eq!(sha256(&g.body), sha256(&two));
    let etag_two = g.header("etag").unwrap().to_owned();
    assert_ne!(etag_one, etag_two);

    // Refusals that leave the file as it is: (what, path, fields, status).
    let stale = etag_one.clone();
    #[rustfmt::skip]
    let rows: Vec<PutRow> = vec![
        ("If-None-Match: * on an existing file", "/new/deep/er/a.bin", vec![("If-None-Match", "*")], 412),
        ("If-Match with a stale ETag", "/new/deep/er/a.bin", vec![("If-Match", &stale)], 412),
        ("If-Match on a missing file", "/new/nothing.bin", vec![("If-Match", "*")], 412),
        ("Content-Range (a partial PUT)", "/new/deep/er/a.bin", vec![("Content-Range", "bytes 0-8999/9000")], 400),
        ("a hidden name", "/.hidden", vec![], 400),
        ("a hidden folder", "/.secret/x.bin", vec![], 400),
        ("a hidden name in a folder", "/new/.x", vec![], 400),
        ("a folder's name", "/new/deep", vec![], 409),
        ("a file on the way", "/new/deep/er/a.bin/x.bin", vec![], 409),
    ];
    for (what, path, fields, status) in &rows {
        let r = c.plain("PUT", path, fields, Some(&three));
        assert_eq!(r.status, *status, "{what}: {}", r.body_str());
        let g = c.plain("GET", "/new/deep/er/a.bin", &[], None);
        assert_eq!(sha256(&g.body), sha256(&two), "{what}: the file changed");
    }
    assert!(!dir.path().join(".hidden").exists() && !dir.path().join(".secret").exists());
    assert!(!dir.path().join("new/.x").exists() && !dir.path().join("new/nothing.bin").exists());
    // The state folder and the page's assets are never written.
    let r = c.plain("PUT", "/.ranged/page.js", &[], Some(b"alert(1)"));
    assert!(
        (400..500).contains(&r.status),
        "PUT over an asset: {}",
        r.status
    );
    let g = c.plain("GET", "/.ranged/page.js", &[], None);
    assert_ne!(g.body, b"alert(1)");

    // A whole-file digest (RFC 9530 Repr-Digest): checked before
    // publishing; wrong, nothing is published; right, the answer carries it.
    let wrong = format!("sha-256=:{}:", b64(&sha256(&two)));
    let r = c.plain(
        "PUT",
        "/new/digest.bin",
        &[("Repr-Digest", &wrong)],
        Some(&one),
    );
    assert!(
        (400..500).contains(&r.status),
        "a wrong Repr-Digest: {}",
        r.status
    );
    assert!(
        !dir.path().join("new/digest.bin").exists(),
        "published with a wrong digest"
    );
    let right = format!("sha-256=:{}:", b64(&sha256(&one)));
    let r = c.plain(
        "PUT",
        "/new/digest.bin",
        &[("Repr-Digest", &right)],
        Some(&one),
    );
    assert_eq!(r.status, 201);
    assert_eq!(r.header("repr-digest"), Some(right.as_str()));
    assert_eq!(
        state_files(dir.path(), ".put").len(),
        0,
        "staging files left"
    );

    // If-Match with the current ETag, and If-None-Match: * on a new name.
    let r = c.plain(
        "PUT",
        "/new/deep/er/a.bin",
        &[("If-Match", &etag_two)],
        Some(&three),
    );
    assert_eq!(r.status, 204);
    let r = c.plain(
        "PUT",
        "/new/fresh.bin",
        &[("If-None-Match", "*")],
        Some(&one),
    );
    assert_eq!(r.status, 201);
    assert_eq!(sha256_file(&dir.path().join("new/fresh.bin")), sha256(&one));

    // If-Match holds when the body ends, not only when it starts: a file
    // replaced while the body streams in is not overwritten (no lost update).
    let etag_three = c
        .plain("HEAD", "/new/deep/er/a.bin", &[], None)
        .header("etag")
        .unwrap()
        .to_owned();
    let all = c.fields(false, &[("If-Match", &etag_three)]);
    let req = request("PUT", "/new/deep/er/a.bin", &all, Some(&two));
    let mut slow = TcpStream::connect(server.addr).unwrap();
    slow.set_read_timeout(Some(SOON)).unwrap();
    slow.write_all(&req[..req.len() - 1000]).unwrap();
    assert!(
        eventually(SOON, || state_files(dir.path(), ".put").len() == 1),
        "the PUT was not staged"
    );
    let meanwhile = dir.path().join("new/deep/er/.other");
    fs::write(&meanwhile, &one).unwrap();
    fs::rename(&meanwhile, dir.path().join("new/deep/er/a.bin")).unwrap();
    slow.write_all(&req[req.len() - 1000..]).unwrap();
    let r = support::read_response(&mut std::io::BufReader::new(slow), false).unwrap();
    assert_eq!(r.status, 412, "{}", r.body_str());
    assert_eq!(
        sha256_file(&dir.path().join("new/deep/er/a.bin")),
        sha256(&one),
        "the file replaced meanwhile was overwritten"
    );

    // A chunked body (curl -T -).
    let all = c.fields(false, &[("Transfer-Encoding", "chunked")]);
    let mut req = request("PUT", "/new/deep/er/a.bin", &all, None);
    req.extend_from_slice(&chunked(&one, 777));
    let r = c.raw(&req, false);
    assert_eq!(r.status, 204);
    assert_eq!(
        sha256_file(&dir.path().join("new/deep/er/a.bin")),
        sha256(&one)
    );

    // Over --max-upload-size: 413, announced or chunked.
    let big = pattern(MIB + 1, 4);
    let all = c.fields(false, &[]);
    let r = c.raw(&request("PUT", "/new/big.bin", &all, Some(&big)), false);
    assert_eq!(r.status, 413);
    let all = c.fields(false, &[("Transfer-Encoding", "chunked")]);
    let mut req = request("PUT", "/new/big.bin", &all, None);
    req.extend_from_slice(&chunked(&big, 64 * 1024));
    let r = c.raw(&req, false);
    assert_eq!(r.status, 413);
    assert!(!dir.path().join("new/big.bin").exists());

    // A body cut short publishes nothing, new name or replacement.
    for (n, path) in ["/new/cut.bin", "/new/deep/er/a.bin"].iter().enumerate() {
        let mut s = TcpStream::connect(server.addr).unwrap();
        let auth = basic("me:secret");
        s.write_all(&request(
            "PUT",
            path,
            &[("Authorization", &auth), ("Content-Length", "100000")],
            None,
        ))
        .unwrap();
        s.write_all(&three[..5000]).unwrap();
        drop(s);
        assert!(
            eventually(SOON, || server.log().matches("nothing published").count()
                > n),
            "the server did not notice the cut: {}",
            server.log()
        );
    }
    assert_eq!(get(server.addr, "/new/cut.bin", &[]).status, 404);
    assert_eq!(
        sha256_file(&dir.path().join("new/deep/er/a.bin")),
        sha256(&one)
    );
    assert!(
        eventually(SOON, || state_files(dir.path(), ".put").is_empty()),
        "staging files left"
    );
}

/// `--upload-expiry 2`: an idle upload and its bytes go; a finished one
/// answers "complete" until then.
#[test]
fn expiry_removes_idle_uploads_and_their_bytes() {
    let (dir, server) = upload_server(&["--upload-expiry", "2"]);
    let mut c = Client::new(server.addr, ME);
    let data = pattern(4000, 5);
    let idle = c.create("/in/", 4000, "idle.bin");
    let r = c.patch(&idle, 0, &data[..1000], &[]);
    assert_eq!(r.status, 204);
    assert_expires(&r, Duration::from_secs(2), "PATCH with --upload-expiry 2");
    let done = c.create("/in/", 4000, "done.bin");
    assert_eq!(c.patch(&done, 0, &data, &[]).status, 204);
    let h = c.head(&done);
    assert_eq!(h.header("upload-offset"), Some("4000"));
    assert!(data_file(dir.path(), &idle).exists());

    // A PATCH moves the expiry forward: an upload that keeps going stays.
    let alive = c.create("/in/", 4000, "alive.bin");
    let mut offset = 0;
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(500));
        let r = c.patch(
            &alive,
            offset,
            &data[offset as usize..offset as usize + 100],
            &[],
        );
        assert_eq!(r.status, 204, "an upload in progress expired");
        offset += 100;
    }
    // By now (3 s) the idle one is gone, bytes and all.
    assert!(
        eventually(Duration::from_secs(5), || !data_file(dir.path(), &idle)
            .exists()),
        "the idle upload's bytes are still there"
    );
    let h = c.head(&idle);
    assert!(
        matches!(h.status, 404 | 410),
        "HEAD of an expired upload: {}",
        h.status
    );
    let r = c.patch(&idle, 1000, &data[1000..], &[]);
    assert!(
        matches!(r.status, 404 | 410),
        "PATCH of an expired upload: {}",
        r.status
    );
    assert!(
        server.log().contains("upload sweep: removed"),
        "{}",
        server.log()
    );
    assert_eq!(get(server.addr, "/in/idle.bin", &[]).status, 404);
    // The published file stays, of course.
    assert_eq!(sha256_file(&dir.path().join("in/done.bin")), sha256(&data));
}

// --------------------------------------------------- 2. real clients

/// Runs `tests/clients/tuspy_upload.py` for `file` (in `work`) against
/// `endpoint`, with the URL storage `urls.json` in `work`.
fn tuspy(lib: &Path, work: &Path, tag: &str, endpoint: &str, file: &str, sleep: &str) -> Proc {
    let mut cmd = Command::new("python3");
    cmd.env("PYTHONPATH", lib)
        .arg(repo().join("tests/clients/tuspy_upload.py"))
        .args(["--endpoint", endpoint, "--file", file, "--name", file])
        .args(["--storage", "urls.json", "--auth", "me:secret"])
        .args(["--chunk", "1048576", "--checksum", "--sleep", sleep]);
    Proc::start(cmd, work, tag)
}

/// The path and query of an absolute URL.
fn path_of(url: &str) -> &str {
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("not an http URL: {url}"));
    &rest[rest.find('/').unwrap_or(rest.len())..]
}

/// tuspy killed (SIGKILL) in the middle of an upload; a new process with the
/// same URL storage resumes where the server says, and sends nothing twice.
#[test]
fn tuspy_killed_and_resumed_by_a_new_process() {
    let lib = require_tuspy();
    let (dir, server) = upload_server(&[]);
    let work = TempDir::new();
    let size = 24 * MIB;
    let src = work.write("film.mp4", &pattern(size, 21));
    let endpoint = format!("http://{}/in/", server.addr);

    let mut first = tuspy(&lib, work.path(), "first", &endpoint, "film.mp4", "0.05");
    let acked = first.wait_offset(6 * MIB as u64);
    first.kill9();
    let created = first
        .stdout()
        .lines()
        .find_map(|l| l.strip_prefix("created "))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no upload URL\n{}", first.output()));
    let mut c = Client::new(server.addr, ME);
    let at = c.offset(path_of(&created));
    assert!(
        at >= acked && at < size as u64,
        "the server has {at} bytes; tuspy was told {acked}"
    );

    let mut second = tuspy(&lib, work.path(), "second", &endpoint, "film.mp4", "0");
    second.wait_ok();
    let start = second
        .stdout()
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        start,
        format!("start {at} {created}"),
        "the new process did not resume from the stored URL at the server's offset"
    );
    assert_eq!(
        sha256_file(&dir.path().join("in/film.mp4")),
        sha256_file(&src)
    );
    let lines = access_lines(&server.log());
    assert_eq!(
        lines.iter().filter(|l| l.method == "POST").count(),
        1,
        "one creation in all"
    );
    let chunks = lines
        .iter()
        .filter(|l| l.method == "PATCH" && l.status == 204)
        .count();
    assert!(
        chunks <= size / MIB,
        "{chunks} chunks accepted for {} MiB: bytes were sent twice",
        size / MIB
    );
    assert!(
        lines.iter().all(|l| l.user == "me"),
        "requests without the account"
    );

    // An empty file: tuspy sends the POST and nothing else.
    work.write("empty.txt", b"");
    tuspy(&lib, work.path(), "empty", &endpoint, "empty.txt", "0").wait_ok();
    let published = dir.path().join("in/empty.txt");
    assert_eq!(
        fs::metadata(&published).map(|m| m.len()).ok(),
        Some(0),
        "the empty file was not published"
    );
}

/// tus-js-client under Node killed in the middle of an upload; a new process
/// given the stored upload URL resumes at the server's offset.
#[test]
fn tus_js_client_killed_and_resumed_by_a_new_process() {
    require_tus_js();
    let (dir, server) = upload_server(&[]);
    let work = TempDir::new();
    let size = 12 * MIB;
    let src = work.write("photos.tar", &pattern(size, 22));
    let endpoint = format!("http://{}/in/", server.addr);
    let run_file = |tag: &str, file: &str, url_file: &str, delay: &str| {
        let mut cmd = Command::new("node");
        cmd.arg(repo().join("tests/clients/tus_js_upload.mjs"))
            .args(["--endpoint", &endpoint, "--file", file, "--name", file])
            .args(["--url-file", url_file, "--auth", "me:secret"])
            .args(["--chunk", "524288", "--delay-ms", delay]);
        Proc::start(cmd, work.path(), tag)
    };
    let run = |tag: &str, delay: &str| run_file(tag, "photos.tar", "url.txt", delay);

    let mut first = run("first", "30");
    let acked = first.wait_offset(3 * MIB as u64);
    first.kill9();
    let url = fs::read_to_string(work.path().join("url.txt")).expect("the stored upload URL");
    let mut c = Client::new(server.addr, ME);
    let at = c.offset(path_of(url.trim()));
    assert!(
        at >= acked && at < size as u64,
        "the server has {at} bytes; tus-js-client was told {acked}"
    );

    let mut second = run("second", "0");
    second.wait_ok();
    let out = second.stdout();
    let requests: Vec<&str> = out.lines().filter(|l| l.starts_with("request ")).collect();
    assert_eq!(
        requests.first().copied(),
        Some("request HEAD -"),
        "the new process did not ask for the offset first\n{out}"
    );
    assert_eq!(
        requests.get(1).copied(),
        Some(format!("request PATCH {at}").as_str()),
        "the new process did not continue at the server's offset\n{out}"
    );
    assert!(
        !out.contains("request POST"),
        "a new upload was created\n{out}"
    );
    assert!(out.lines().any(|l| l == "done"), "{out}");
    assert_eq!(
        sha256_file(&dir.path().join("in/photos.tar")),
        sha256_file(&src)
    );
    let lines = access_lines(&server.log());
    assert_eq!(lines.iter().filter(|l| l.method == "POST").count(), 1);

    // An empty file: tus-js-client sends the POST and nothing else.
    work.write("empty.txt", b"");
    run_file("empty", "empty.txt", "empty-url.txt", "0").wait_ok();
    let published = dir.path().join("in/empty.txt");
    assert_eq!(
        fs::metadata(&published).map(|m| m.len()).ok(),
        Some(0),
        "the empty file was not published"
    );
}

/// curl: `curl -T file` (201, then 204), `curl -T -` from a pipe (chunked),
/// and the curl-only tus recipe of the README, interrupted every second.
#[test]
fn curl_put_and_the_tus_recipe() {
    require("curl", "curl");
    let (dir, server) = upload_server(&[]);
    let work = TempDir::new();
    let a = work.write("a.iso", &pattern(3 * MIB, 31));
    let curl = |tag: &str, args: &[&str]| -> String {
        let mut cmd = Command::new("curl");
        cmd.args([
            "-sS",
            "-u",
            "me:secret",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .args(args);
        let mut p = Proc::start(cmd, work.path(), tag);
        p.wait_ok();
        p.stdout()
    };
    let put_url = format!("http://{}/in/sub/a.iso", server.addr);
    assert_eq!(curl("put-new", &["-T", "a.iso", &put_url]), "201");
    assert_eq!(curl("put-again", &["-T", "a.iso", &put_url]), "204");
    assert_eq!(
        sha256_file(&dir.path().join("in/sub/a.iso")),
        sha256_file(&a)
    );

    // From a pipe: no length known, so curl sends it chunked.
    let pipe_url = format!("http://{}/in/piped.iso", server.addr);
    let mut sh = Command::new("sh");
    sh.arg("-c").arg(format!(
        "cat a.iso | curl -sS -f -u me:secret -o /dev/null -w '%{{http_code}}' -T - {pipe_url}"
    ));
    let mut p = Proc::start(sh, work.path(), "put-pipe");
    p.wait_ok();
    assert_eq!(p.stdout(), "201");
    assert_eq!(
        sha256_file(&dir.path().join("in/piped.iso")),
        sha256_file(&a)
    );

    // The README's tus recipe, each PATCH cut off after a second at 2 MB/s.
    let big = work.write("big.iso", &pattern(5_000_000, 32));
    let mut sh = Command::new("sh");
    sh.arg(repo().join("tests/clients/tus_curl.sh"))
        .arg("big.iso")
        .arg(format!("http://{}/in/", server.addr))
        .args(["-u", "me:secret"])
        .env("TUS_PATCH_OPTIONS", "--limit-rate 2M --max-time 1")
        .env("TUS_ROUNDS", "20");
    let mut p = Proc::start(sh, work.path(), "tus-curl");
    p.wait_ok();
    let out = p.stdout();
    let offsets: Vec<u64> = out
        .lines()
        .filter_map(|l| {
            l.split("the server has ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert!(
        out.matches("interrupted").count() >= 2,
        "the PATCHes were not cut off:\n{out}"
    );
    assert!(
        offsets.windows(2).all(|w| w[0] < w[1]),
        "every interrupted PATCH kept what arrived: {offsets:?}"
    );
    assert_eq!(offsets.last(), Some(&5_000_000));
    assert_eq!(
        sha256_file(&dir.path().join("in/big.iso")),
        sha256_file(&big)
    );
    assert!(
        !work.path().join("big.iso.tus-url").exists(),
        "the recipe keeps its URL after success"
    );
}

// ----------------------------------------------------------- 3. faults

/// The head of a PATCH whose body (`len` bytes) follows separately.
fn patch_head(url: &str, offset: usize, len: usize, extra: &[(&str, &str)]) -> Vec<u8> {
    let (o, l, auth) = (offset.to_string(), len.to_string(), basic("me:secret"));
    let mut fields = vec![TUS, OCTETS, ("Upload-Offset", o.as_str())];
    fields.extend_from_slice(&[
        ("Content-Length", l.as_str()),
        ("Authorization", auth.as_str()),
    ]);
    fields.extend_from_slice(extra);
    request("PATCH", url, &fields, None)
}

/// Reads one answer from a raw stream (bounded by its read timeout); `None`
/// if the server closed the connection without one.
fn answer(s: &TcpStream) -> Option<Response> {
    s.set_read_timeout(Some(SOON)).unwrap();
    let mut r = std::io::BufReader::new(s.try_clone().unwrap());
    support::read_response(&mut r, false).ok()
}

/// `kill -9` of the server in the middle of a long PATCH: after a restart
/// on the same folder, the offset is at least the last one acknowledged, the
/// torn tail is cut, the restart says so, and the upload finishes exactly.
#[test]
fn server_killed_mid_patch_recovers_on_restart() {
    let dir = TempDir::new();
    fs::create_dir(dir.path().join("in")).unwrap();
    let args = ["--upload", "--auth", "me:secret:rw"];
    let mut server = Server::start_with(dir.path(), &args);
    let data = pattern(8 * MIB, 41);
    let mut c = Client::new(server.addr, ME);
    let url = c.create("/in/", data.len(), "cam.mp4");
    let r = c.patch(&url, 0, &data[..MIB], &[]);
    let acked = num(&r, "upload-offset");
    assert_eq!(acked, MIB as u64);

    // The rest, sent slowly (1.25 MiB/s), until the server has committed
    // part of it (a long request commits every 2 s; the meta file is
    // replaced), then a little more: a torn tail past that commit.
    let meta_file = data_file(dir.path(), &url).with_extension("meta");
    let inode = |p: &Path| {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(p).map(|m| m.ino()).unwrap_or(0)
    };
    let first_commit = inode(&meta_file);
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(&patch_head(&url, MIB, data.len() - MIB, &[]))
        .unwrap();
    let mut sent = MIB;
    let mut tail = 0;
    while tail < 3 && sent + 128 * 1024 < data.len() {
        s.write_all(&data[sent..sent + 128 * 1024]).unwrap();
        sent += 128 * 1024;
        std::thread::sleep(Duration::from_millis(100));
        if inode(&meta_file) != first_commit {
            tail += 1;
        }
    }
    assert_eq!(
        tail,
        3,
        "no commit during {} MiB of a long PATCH",
        (sent - MIB) / MIB
    );
    kill9(&mut server);
    drop(s);

    let server = Server::start_with(dir.path(), &args);
    let log = server.log();
    assert!(
        log.contains("uploads: 1 resumed"),
        "the restart does not report the recovery:\n{log}"
    );
    let mut c = Client::new(server.addr, ME);
    let at = c.offset(&url);
    assert!(at >= acked, "acknowledged bytes lost: {at} < {acked}");
    assert!(
        at > acked,
        "3 s of a long PATCH and nothing of it survived (commits every 2 s)"
    );
    assert!(
        at <= sent as u64,
        "{at} bytes, more than were sent ({sent})"
    );
    assert_eq!(
        fs::metadata(data_file(dir.path(), &url)).unwrap().len(),
        at,
        "the torn tail was not cut"
    );
    let r = c.patch(&url, at, &data[at as usize..], &[]);
    assert_eq!(r.status, 204, "{}", r.body_str());
    assert_eq!(sha256_file(&dir.path().join("in/cam.mp4")), sha256(&data));
}

/// A client that vanishes in the middle of a PATCH: what arrived is kept
/// (HEAD says exactly how much), and the upload resumes from there.
#[test]
fn client_vanishing_mid_patch_keeps_what_arrived() {
    let (dir, server) = upload_server(&[]);
    let data = pattern(4 * MIB, 42);
    let mut c = Client::new(server.addr, ME);
    let url = c.create("/in/", data.len(), "phone.jpg");
    let part = 3 * MIB / 2;
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(&patch_head(&url, 0, data.len(), &[])).unwrap();
    s.write_all(&data[..part]).unwrap();
    drop(s);
    assert!(
        eventually(SOON, || server.log().contains("request ended early")),
        "the server did not notice: {}",
        server.log()
    );
    assert_eq!(
        c.offset(&url),
        part as u64,
        "HEAD does not show what arrived"
    );
    assert_eq!(
        fs::metadata(data_file(dir.path(), &url)).unwrap().len(),
        part as u64
    );
    let r = c.patch(&url, part as u64, &data[part..], &[]);
    assert_eq!(r.status, 204);
    assert_eq!(sha256_file(&dir.path().join("in/phone.jpg")), sha256(&data));
}

/// A chunked PATCH whose every byte arrives but whose end never does (the
/// link drops before the last chunk): the upload is complete, so the file
/// is published at once, not left to expire unseen if the client never
/// comes back.
#[test]
fn every_byte_arrived_but_not_the_end_of_the_request() {
    let (dir, server) = upload_server(&[]);
    let data = pattern(2 * MIB, 44);
    let mut c = Client::new(server.addr, ME);
    let url = c.create("/in/", data.len(), "last.bin");
    assert_eq!(c.patch(&url, 0, &data[..MIB], &[]).status, 204);
    let auth = basic("me:secret");
    let fields = [
        TUS,
        OCTETS,
        ("Upload-Offset", "1048576"),
        ("Transfer-Encoding", "chunked"),
        ("Authorization", auth.as_str()),
    ];
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(&request("PATCH", &url, &fields, None)).unwrap();
    let body = chunked(&data[MIB..], 256 * 1024);
    // Everything but the last chunk `0\r\n\r\n`.
    s.write_all(&body[..body.len() - 5]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    drop(s);
    let published = dir.path().join("in/last.bin");
    assert!(
        eventually(SOON, || published.exists()),
        "a complete upload was not published: {}",
        server.log()
    );
    assert_eq!(sha256_file(&published), sha256(&data));
    let h = c.head(&url);
    assert_eq!(h.header("upload-offset"), Some("2097152"));
}

/// Asking where an upload stands never waits behind other uploads: with
/// every upload slot taken by a long PATCH (`--max-uploads 1`), a HEAD of
/// another upload is answered at once.
#[test]
fn a_head_never_waits_behind_other_uploads() {
    let (_dir, server) = upload_server(&["--max-uploads", "1"]);
    let data = pattern(8 * MIB, 45);
    let mut c = Client::new(server.addr, ME);
    let long = c.create("/in/", data.len(), "long.bin");
    let other = c.create("/in/", 1000, "other.bin");
    assert_eq!(c.patch(&other, 0, &data[..300], &[]).status, 204);

    // The long PATCH holds the only slot, sending a little every 100 ms.
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(&patch_head(&long, 0, data.len(), &[])).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (stop, data) = (Arc::clone(&stop), data.clone());
        let mut s = s.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut sent = 0;
            while !stop.load(Ordering::SeqCst) && sent + 64 * 1024 < data.len() {
                if s.write_all(&data[sent..sent + 64 * 1024]).is_err() {
                    break;
                }
                sent += 64 * 1024;
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let auth = basic("me:secret");
    let mut h = TcpStream::connect(server.addr).unwrap();
    h.write_all(&request(
        "HEAD",
        &other,
        &[TUS, ("Authorization", &auth)],
        None,
    ))
    .unwrap();
    h.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let started = Instant::now();
    let r = support::read_response(&mut std::io::BufReader::new(h), true);
    stop.store(true, Ordering::SeqCst);
    let _ = sender.join();
    drop(s);
    let r = r.unwrap_or_else(|e| {
        panic!(
            "no answer to a HEAD after {:?} while another upload runs: {e}",
            started.elapsed()
        )
    });
    assert_eq!(r.status, 200);
    assert_eq!(r.header("upload-offset"), Some("300"));
}

/// Two PATCHes for one upload, the first still open (its client gave up on
/// it): the newer request ends the stale one instead of a 423 forever, the
/// stale one's bytes are kept, it cannot write any more, and the file is
/// exact.
#[test]
fn a_stale_patch_is_ended_by_a_newer_request() {
    let (dir, server) = upload_server(&[]);
    let data = pattern(6 * MIB, 43);
    let mut c = Client::new(server.addr, ME);
    let url = c.create("/in/", data.len(), "race.bin");

    // A: a PATCH of everything that stalls after 2 MiB.
    let mut a = TcpStream::connect(server.addr).unwrap();
    a.write_all(&patch_head(&url, 0, data.len(), &[])).unwrap();
    a.write_all(&data[..2 * MIB]).unwrap();
    let written = |n: usize| {
        eventually(SOON, || {
            fs::metadata(data_file(dir.path(), &url))
                .map(|m| m.len())
                .ok()
                == Some(n as u64)
        })
    };
    assert!(written(2 * MIB), "the server did not receive A's bytes");

    // B: a PATCH at the offset it last knew (0), waiting for 100-continue:
    // 409 with the offset A reached, and A is ended.
    let mut b = TcpStream::connect(server.addr).unwrap();
    b.write_all(&patch_head(
        &url,
        0,
        data.len(),
        &[("Expect", "100-continue")],
    ))
    .unwrap();
    let r = answer(&b).expect("an answer to the second PATCH");
    assert_ne!(r.status, 423, "the stale PATCH still holds the upload");
    assert_eq!(r.status, 409, "{}", r.body_str());
    let reached = num(&r, "upload-offset");
    assert!(
        reached > 0 && reached <= 2 * MIB as u64,
        "A's bytes: {reached}"
    );
    drop(b);

    // A2: another stale PATCH from there; a HEAD ends it too.
    let mut a2 = TcpStream::connect(server.addr).unwrap();
    a2.write_all(&patch_head(
        &url,
        reached as usize,
        data.len() - reached as usize,
        &[],
    ))
    .unwrap();
    a2.write_all(&data[reached as usize..reached as usize + MIB])
        .unwrap();
    assert!(
        written(reached as usize + MIB),
        "the server did not receive A2's bytes"
    );
    let h = c.head(&url);
    assert_eq!(h.status, 200, "HEAD while a PATCH is open: {}", h.status);
    let at = num(&h, "upload-offset");
    assert!(
        at > reached && at <= reached + MIB as u64,
        "A2's bytes: {at}"
    );

    // The stale ones can write no more: their next bytes are refused.
    for (name, stale) in [("A", &mut a), ("A2", &mut a2)] {
        let _ = stale.write_all(&pattern(64 * 1024, 99));
        let r = answer(stale).unwrap_or_else(|| panic!("{name}: no answer after being ended"));
        assert_eq!(r.status, 409, "{name} after being ended: {}", r.body_str());
    }
    let r = c.patch(&url, at, &data[at as usize..], &[]);
    assert_eq!(r.status, 204, "{}", r.body_str());
    assert_eq!(sha256_file(&dir.path().join("in/race.bin")), sha256(&data));
}

/// A small tmpfs mounted for one test, unmounted when dropped (also when
/// the test fails).
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let path = std::env::temp_dir().join(format!("ranged-tmpfs-{}-{size}", std::process::id()));
        fs::create_dir_all(&path).expect("mount point");
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(&path)
            .output();
        let ok = matches!(&out, Ok(o) if o.status.success());
        if !ok {
            let _ = fs::remove_dir(&path);
        }
        assert!(
            ok,
            "cannot mount a {size} tmpfs at {} for the full-disk test ({:?}); \
             it needs root (or CAP_SYS_ADMIN), as CI runs: this is a failure, not a skip",
            path.display(),
            out.map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        );
        Tmpfs { path }
    }

    /// Bytes free for an unprivileged writer (`statvfs` f_bavail).
    fn free(&self) -> u64 {
        let out = Command::new("stat")
            .args(["-f", "-c", "%a %S"])
            .arg(&self.path)
            .output()
            .expect("stat -f");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut n = text
            .split_whitespace()
            .map(|v| v.parse::<u64>().expect("stat -f number"));
        n.next().expect("blocks") * n.next().expect("block size")
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let st = Command::new("umount").arg(&self.path).status();
        if !matches!(st, Ok(s) if s.success()) {
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
        let _ = fs::remove_dir(&self.path);
    }
}

/// A full disk (an 8 MiB tmpfs): creations and PUTs that cannot fit get a
/// clean 507 before their body; an upload that fills the disk gets 507 and
/// keeps what fitted; downloads go on meanwhile; nothing is published; and
/// the space comes back when the upload is cancelled.
#[test]
fn full_disk_is_a_clean_507() {
    let disk = Tmpfs::mount("8m");
    let root = disk.path.clone();
    fs::create_dir(root.join("in")).unwrap();
    let keep = pattern(64 * 1024, 61);
    fs::write(root.join("keep.bin"), &keep).unwrap();
    let server = Server::start_with(&root, &["--upload", "--anonymous-upload"]);
    let addr = server.addr;
    let mut c = Client::new(addr, None);
    let free = disk.free();
    assert!(
        free > 7 * MIB as u64 && free < 8 * MIB as u64,
        "free: {free}"
    );

    // Declared lengths that cannot fit: refused before any byte.
    let m = meta("huge.bin");
    let r = c.tus(
        "POST",
        "/in/",
        &[("Upload-Length", "16777216"), ("Upload-Metadata", &m)],
        None,
    );
    assert_refused(&r, 507, "a creation larger than the free space");
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(&request(
        "PUT",
        "/in/huge.bin",
        &[("Content-Length", "16777216"), ("Expect", "100-continue")],
        None,
    ))
    .unwrap();
    let r = answer(&s).expect("an answer to the PUT");
    assert_eq!(
        r.status,
        507,
        "a PUT larger than the free space: {}",
        r.body_str()
    );
    drop(s);

    // An upload of unknown length fills the disk, while downloads go on.
    let r = c.tus(
        "POST",
        "/in/",
        &[
            ("Upload-Defer-Length", "1"),
            ("Upload-Metadata", &meta("fill.bin")),
        ],
        None,
    );
    assert_eq!(r.status, 201);
    let url = r.header("location").unwrap().to_owned();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (done, keep) = (Arc::clone(&done), keep.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            let mut conn = Conn::open(addr);
            while !done.load(Ordering::SeqCst) && n < 10_000 {
                let r = conn.request("GET", "/keep.bin", &[]);
                assert_eq!(
                    (r.status, r.body == keep),
                    (200, true),
                    "a download during the full disk"
                );
                n += 1;
                if closes(&r) {
                    conn = Conn::open(addr);
                }
            }
            n
        })
    };
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(&request(
        "PATCH",
        &url,
        &[
            TUS,
            OCTETS,
            ("Upload-Offset", "0"),
            ("Transfer-Encoding", "chunked"),
        ],
        None,
    ))
    .unwrap();
    let body = chunked(&pattern(12 * MIB, 62), 256 * 1024);
    let writer = send_behind(&s, body);
    let r = answer(&s).expect("an answer when the disk is full");
    done.store(true, Ordering::SeqCst);
    assert_refused(&r, 507, "a PATCH that fills the disk");
    drop(s);
    let _ = writer.join();
    let downloads = reader
        .join()
        .expect("downloads failed while the disk was full");
    assert!(downloads > 0, "no download completed during the upload");
    server.assert_serves("/keep.bin", &keep);

    // What fitted is kept, durably, and nothing was published.
    let at = c.offset(&url);
    assert!(
        at > 4 * MIB as u64 && at < 8 * MIB as u64,
        "kept {at} bytes"
    );
    assert_eq!(fs::metadata(data_file(&root, &url)).unwrap().len(), at);
    let published: Vec<_> = fs::read_dir(root.join("in")).unwrap().collect();
    assert!(
        published.is_empty(),
        "published on a full disk: {published:?}"
    );

    // Cancelled: the space comes back.
    assert_eq!(c.tus("DELETE", &url, &[], None).status, 204);
    assert!(
        disk.free() + 64 * 1024 >= free,
        "space not freed: {} of {free}",
        disk.free()
    );

    // A chunked PUT that does not fit: 507, no staging file left, space back.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(&request(
        "PUT",
        "/in/piped.bin",
        &[("Transfer-Encoding", "chunked")],
        None,
    ))
    .unwrap();
    let body = chunked(&pattern(12 * MIB, 63), 256 * 1024);
    let writer = send_behind(&s, body);
    let r = answer(&s).expect("an answer to the PUT when the disk is full");
    assert_eq!(r.status, 507, "{}", r.body_str());
    drop(s);
    let _ = writer.join();
    assert!(
        !root.join("in/piped.bin").exists(),
        "a PUT published on a full disk"
    );
    assert!(state_files(&root, ".put").is_empty(), "staging file left");
    assert!(
        disk.free() + 64 * 1024 >= free,
        "space not freed after the PUT"
    );
    server.assert_serves("/keep.bin", &keep);
    drop(server);
}

/// Readers looping GETs while a multi-MB file is replaced by PUT, again and
/// again, see the whole old file or the whole new one, never a mix; a
/// download resumed with the old ETag gets the whole new file.
#[test]
fn put_replacement_is_atomic_for_readers() {
    let (dir, server) = upload_server(&[]);
    let addr = server.addr;
    let versions = [pattern(4 * MIB, 51), pattern(4 * MIB, 52)];
    let sums = [sha256(&versions[0]), sha256(&versions[1])];
    let mut c = Client::new(addr, ME);
    assert_eq!(
        c.plain("PUT", "/in/v.bin", &[], Some(&versions[0])).status,
        201
    );
    let old_etag = c
        .plain("HEAD", "/in/v.bin", &[], None)
        .header("etag")
        .unwrap()
        .to_owned();

    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (done, reads) = (Arc::clone(&done), Arc::clone(&reads));
            std::thread::spawn(move || {
                let mut conn = Conn::open(addr);
                let mut seen = [false; 2];
                while !done.load(Ordering::SeqCst) && reads.load(Ordering::SeqCst) < 10_000 {
                    let r = conn.request("GET", "/in/v.bin", &[]);
                    assert_eq!(r.status, 200);
                    let sum = sha256(&r.body);
                    let i = sums.iter().position(|s| *s == sum);
                    assert!(
                        i.is_some(),
                        "a reader saw a mix of two versions ({} bytes)",
                        r.body.len()
                    );
                    seen[i.unwrap_or(0)] = true;
                    reads.fetch_add(1, Ordering::SeqCst);
                    if closes(&r) {
                        conn = Conn::open(addr);
                    }
                }
                seen
            })
        })
        .collect();
    for i in 1..=6 {
        let r = c.plain("PUT", "/in/v.bin", &[], Some(&versions[i % 2]));
        assert_eq!(r.status, 204);
    }
    done.store(true, Ordering::SeqCst);
    for r in readers {
        r.join().expect("a reader failed");
    }
    assert!(reads.load(Ordering::SeqCst) >= 6, "too few reads to tell");
    assert_eq!(sha256_file(&dir.path().join("in/v.bin")), sums[0]);

    // Same bytes as the first version, but a new file: the old ETag no
    // longer matches, so a resumed download gets everything.
    let r = c.plain(
        "GET",
        "/in/v.bin",
        &[("Range", "bytes=100-199"), ("If-Range", &old_etag)],
        None,
    );
    assert_eq!(r.status, 200, "If-Range with the replaced file's ETag");
    assert_eq!(sha256(&r.body), sums[0]);
}

// ------------------------------------------------- 4. the new-user story

/// Issue "Done when": `ranged --upload --auth me:secret:rw DIR` takes a
/// tuspy upload, survives a `kill -9` halfway, and finishes it after a
/// restart (same port) with exact bytes.
#[test]
fn new_user_story_tuspy_survives_a_server_kill() {
    let lib = require_tuspy();
    let dir = TempDir::new();
    let args = ["--upload", "--auth", "me:secret:rw"];
    let mut server = Server::start_with(dir.path(), &args);
    let port = server.addr.port();
    let work = TempDir::new();
    let size = 24 * MIB;
    let src = work.write("holiday.mkv", &pattern(size, 71));
    let endpoint = format!("http://127.0.0.1:{port}/");

    let mut first = tuspy(&lib, work.path(), "first", &endpoint, "holiday.mkv", "0.05");
    let acked = first.wait_offset(size as u64 / 2);
    kill9(&mut server);
    let st = first.wait(SOON);
    assert!(
        !st.success(),
        "tuspy cannot have finished without the server"
    );

    let listen = format!("127.0.0.1:{port}");
    let mut again = vec!["--listen", listen.as_str()];
    again.extend_from_slice(&args);
    let server = Server::start_with(dir.path(), &again);
    assert!(
        server.log().contains("uploads: 1 resumed"),
        "{}",
        server.log()
    );
    let mut second = tuspy(&lib, work.path(), "second", &endpoint, "holiday.mkv", "0");
    second.wait_ok();
    let resumed_at = second.numbers("start")[0];
    assert!(
        resumed_at >= acked && resumed_at < size as u64,
        "resumed at {resumed_at}; {acked} were acknowledged before the kill"
    );
    assert_eq!(
        sha256_file(&dir.path().join("holiday.mkv")),
        sha256_file(&src)
    );
}

// ---------------------------------------------------------- 5. memory

/// Streams `total` bytes of `piece` repeated as the body after `head`; the
/// answer.
fn stream_body(addr: SocketAddr, head: &[u8], piece: &[u8], total: usize) -> Response {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(head).unwrap();
    let mut left = total;
    while left > 0 {
        let n = left.min(piece.len());
        s.write_all(&piece[..n]).unwrap();
        left -= n;
    }
    answer(&s).expect("an answer after the body")
}

/// The server's memory does not grow with what a client sends: 200 MB
/// through PUT and 200 MB through one tus PATCH.
#[test]
fn memory_does_not_grow_with_a_200_mb_upload() {
    let (dir, server) = upload_server(&[]);
    let addr = server.addr;
    let total = 200 * 1000 * 1000;
    let piece = pattern(MIB, 81);
    let auth = basic("me:secret");
    let put_head = |path: &str, len: usize| {
        let l = len.to_string();
        request(
            "PUT",
            path,
            &[("Authorization", &auth), ("Content-Length", &l)],
            None,
        )
    };
    // Warm up: every thread and buffer of an upload exists before measuring.
    assert_eq!(
        stream_body(addr, &put_head("/in/warm.bin", MIB), &piece, MIB).status,
        201
    );
    let mut c = Client::new(addr, ME);
    let url = c.create("/in/", MIB, "warm-tus.bin");
    assert_eq!(c.patch(&url, 0, &piece, &[]).status, 204);
    std::thread::sleep(Duration::from_millis(200));
    let before = server.rss_kib();
    assert!(before > 0, "cannot read the server's RSS");

    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(before));
    let pid = server.pid();
    let sampler = {
        let (done, peak) = (Arc::clone(&done), Arc::clone(&peak));
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                if let Some(kib) = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                {
                    peak.fetch_max(kib, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let r = stream_body(addr, &put_head("/in/put.bin", total), &piece, total);
    assert_eq!(r.status, 201, "{}", r.body_str());
    // A fresh connection: the first may have idled out during the PUT.
    let url = Client::new(addr, ME).create("/in/", total, "tus.bin");
    let r = stream_body(addr, &patch_head(&url, 0, total, &[]), &piece, total);
    assert_eq!(r.status, 204, "{}", r.body_str());
    done.store(true, Ordering::SeqCst);
    sampler.join().unwrap();
    let (peak, after) = (peak.load(Ordering::SeqCst), server.rss_kib());
    let limit = 4 * 1024;
    assert!(
        peak <= before + limit && after <= before + limit,
        "RSS grew with the upload: {before} KiB before, peak {peak} KiB, {after} KiB after"
    );
    for name in ["put.bin", "tus.bin"] {
        let path = dir.path().join("in").join(name);
        assert_eq!(fs::metadata(&path).unwrap().len(), total as u64, "{name}");
        let mut f = fs::File::open(&path).unwrap();
        for at in [0, 77 * MIB + 5, total - 1000] {
            use std::io::{Seek, SeekFrom};
            let mut got = vec![0u8; 1000];
            f.seek(SeekFrom::Start(at as u64)).unwrap();
            f.read_exact(&mut got).unwrap();
            let want: Vec<u8> = (at..at + 1000).map(|i| piece[i % MIB]).collect();
            assert_eq!(got, want, "{name} at {at}");
        }
    }
}
