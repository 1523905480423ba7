//! No client splices silently (issue "No silent splice for any client").
//!
//! The real binary on 127.0.0.1:0, checked against coreutils' `sha256sum`
//! and the real clients people resume with (curl, wget, aria2c):
//!
//! 1. `Repr-Digest`/`Digest` values on 200, 206 (single and multipart) and
//!    HEAD; never the digest of an earlier version across a rewrite, a
//!    rename over and an append, nor across a file recreated under the same
//!    inode number, length and mtime; persisted across a restart, never
//!    stale.
//! 2. aria2c verifies the `Digest` it is sent: a resumed partial whose prefix
//!    was corrupted fails with exit 32.
//! 3. A flood of digest requests: one hasher, flat memory, small GETs fast.
//! 4. Version-pinned links (`?v=<etag>`) stop curl, wget and aria2c after a
//!    replacement and leave the partial file alone.
//! 5. Upload checksums: tus `Upload-Checksum` per PATCH, a whole-file
//!    `Repr-Digest` at creation and on PUT; uploads racing for one name never
//!    lend their digest to each other.
//! 6. The promise table: what each client does on a resume after the file
//!    was replaced, measured.
//!
//! Every client run is bounded and killed by its own PID; a missing client
//! fails the test naming the Debian package. Figures and the measured table
//! are printed with `eprintln!` (`--nocapture`).

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use support::{
    Conn, Proc, Response, Server, TempDir, aria2_args, eventually, file_len, get, pattern, require,
    sha256sum,
};

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;
/// Longest any client run may take before it is killed and the test fails.
const CLIENT_LIMIT: Duration = Duration::from_secs(60);
/// Longest a digest may take to become known for a small file: the hasher
/// waits until the file's last change is 2 s old, then hashes a few MiB.
const DIGEST_LIMIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------- clients

/// Runs a client to completion (bounded): its exit code (-1 for a signal)
/// and its output.
fn run(work: &Path, tag: &str, program: &str, args: &[&str]) -> (i32, String) {
    let mut c = Proc::spawn(work, tag, program, args);
    let st = c.wait(CLIENT_LIMIT);
    (st.code().unwrap_or(-1), c.output())
}

/// Starts a client and stops it (by PID, with `signal`) once `progress`
/// says it got at least `at_least` bytes. Fails if the client finishes
/// first.
fn interrupt(
    mut c: Proc,
    at_least: u64,
    signal: &str,
    mut progress: impl FnMut() -> u64,
) -> ExitStatus {
    let reached = eventually(Duration::from_secs(30), || progress() >= at_least);
    assert!(
        c.is_running(),
        "`{}` finished before it could be interrupted\n{}",
        c.name,
        c.output()
    );
    assert!(
        reached,
        "`{}` got no {at_least} bytes in 30 s\n{}",
        c.name,
        c.output()
    );
    c.stop(signal)
}

/// Hex digits to bytes.
fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex digit"))
        .collect()
}

/// What the server must send for a file: `sha-256=:<base64>:` of the hex
/// digest `sha256sum` printed.
fn repr_of(hex: &str) -> String {
    format!("sha-256=:{}:", ranged::base64::encode(&unhex(hex)))
}

/// The legacy form, `SHA-256=<base64>`.
fn legacy_of(hex: &str) -> String {
    format!("SHA-256={}", ranged::base64::encode(&unhex(hex)))
}

/// `sha256sum` of bytes held in memory (through a file, so the reference is
/// always coreutils, never our own hashing).
fn sha256sum_bytes(work: &Path, bytes: &[u8]) -> String {
    let p = work.join("sha256sum-input");
    std::fs::write(&p, bytes).unwrap();
    let hex = sha256sum(&p);
    let _ = std::fs::remove_file(&p);
    hex
}

fn url(server: &Server, target: &str) -> String {
    format!("http://{}{target}", server.addr)
}

/// Lines of the log saying the hasher finished `path`.
fn hashed_lines(log: &str, path: &Path) -> usize {
    let needle = format!("hashed {}: ", path.display());
    log.lines().filter(|l| l.contains(&needle)).count()
}

/// A request with a body, on a fresh connection.
fn send(
    addr: SocketAddr,
    method: &str,
    target: &str,
    fields: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut raw = format!("{method} {target} HTTP/1.1\r\nHost: test\r\n");
    for (n, v) in fields {
        raw.push_str(&format!("{n}: {v}\r\n"));
    }
    raw.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = raw.into_bytes();
    bytes.extend_from_slice(body);
    let mut c = Conn::open(addr);
    c.send(&bytes);
    c.response(method == "HEAD")
}

/// The pinned link of `/name` as the JSON listing of `/` offers it:
/// `?v=` and the entry's ETag without its quotes.
fn pinned_target(server: &Server, name: &str) -> String {
    let r = get(server.addr, "/?format=json", &[]);
    assert_eq!(r.status, 200, "JSON listing");
    let json = r.body_str();
    let entry = json
        .split("\n{")
        .find(|e| e.starts_with(&format!("\"name\":\"{name}\"")))
        .unwrap_or_else(|| panic!("{name} not in the JSON listing:\n{json}"));
    let etag = entry
        .split("\"etag\":\"\\\"")
        .nth(1)
        .and_then(|rest| rest.split("\\\"").next())
        .unwrap_or_else(|| panic!("no etag in {entry}"));
    format!("/{name}?v={etag}")
}

/// Replaces `path` by a rename of a fully written sibling (a new inode), as
/// `rsync` and editors do.
fn replace_by_rename(path: &Path, data: &[u8]) {
    let tmp = path.with_extension("replacement");
    std::fs::write(&tmp, data).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Polls (bounded) with `Want-Repr-Digest` until the server sends a
/// `Repr-Digest` for the current version of `target`; the value.
fn wait_for_digest(server: &Server, target: &str) -> String {
    let mut value = None;
    let known = eventually(DIGEST_LIMIT, || {
        let r = get(
            server.addr,
            target,
            &[("Want-Repr-Digest", "sha-256=9"), ("Range", "bytes=0-0")],
        );
        value = r.header("repr-digest").map(str::to_owned);
        value.is_some()
    });
    assert!(
        known,
        "no Repr-Digest for {target} within {DIGEST_LIMIT:?}; log:\n{}",
        server.log()
    );
    value.unwrap()
}

// ---------------------------------------------------------- 1. digest values

/// One response seen around a change: when its request was sent, its ETag
/// and digest fields.
struct Seen {
    sent: Instant,
    what: &'static str,
    status: u16,
    etag: Option<String>,
    repr: Option<String>,
    legacy: Option<String>,
}

/// Requests `/doc.bin` in a loop on one keep-alive connection (HEAD, one
/// range, two ranges, all asking for both digests) until `stop`.
fn watch(addr: SocketAddr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<Seen>> {
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut conn = Conn::open(addr);
        let asks = [
            ("Want-Repr-Digest", "sha-256=9"),
            ("Want-Digest", "SHA-256"),
        ];
        let kinds: [(&'static str, &str, Option<&str>); 3] = [
            ("HEAD", "HEAD", None),
            ("206", "GET", Some("bytes=100-199")),
            ("multipart", "GET", Some("bytes=0-9,4096-4105")),
        ];
        for i in 0..100_000usize {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let (what, method, range) = kinds[i % kinds.len()];
            let mut fields = asks.to_vec();
            if let Some(r) = range {
                fields.push(("Range", r));
            }
            let sent = Instant::now();
            let r = conn.request(method, "/doc.bin", &fields);
            seen.push(Seen {
                sent,
                what,
                status: r.status,
                etag: r.header("etag").map(str::to_owned),
                repr: r.header("repr-digest").map(str::to_owned),
                legacy: r.header("digest").map(str::to_owned),
            });
            std::thread::sleep(Duration::from_millis(2));
        }
        seen
    })
}

/// Changes `/doc.bin` (by `change`) while `watch` runs, and checks every
/// response: a digest is only ever the one of the version its ETag names;
/// nothing sent after the change carries the old digest; then the new
/// digest, once known, is `sha256sum`'s.
fn change_under_watch(
    server: &Server,
    path: &Path,
    label: &str,
    old: (&str, &str),
    change: impl FnOnce(),
) -> (String, String) {
    let (old_etag, old_hex) = old;
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch(server.addr, Arc::clone(&stop));
    std::thread::sleep(Duration::from_millis(300));
    change();
    let changed = Instant::now();
    let new_hex = sha256sum(path);
    let new_etag = Conn::open(server.addr)
        .request("HEAD", "/doc.bin", &[])
        .header("etag")
        .unwrap()
        .to_owned();
    assert_ne!(new_etag, old_etag, "{label}: the ETag must change");
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    let seen = watcher.join().expect("watcher");

    let before = seen.iter().filter(|s| s.sent < changed).count();
    let after = seen.len() - before;
    assert!(
        before >= 10 && after >= 10,
        "{label}: the loop must run around the change ({before} before, {after} after)"
    );
    let old_repr = repr_of(old_hex);
    let old_legacy = legacy_of(old_hex);
    let new_repr = repr_of(&new_hex);
    let with_old = seen
        .iter()
        .filter(|s| s.repr.as_deref() == Some(old_repr.as_str()))
        .count();
    assert!(
        with_old >= 5,
        "{label}: before the change the old digest must be sent ({with_old} times)"
    );
    for s in &seen {
        let ctx = format!(
            "{label}: {} sent {:?} after the change began, status {}, ETag {:?}, \
             Repr-Digest {:?}, Digest {:?}",
            s.what,
            s.sent.checked_duration_since(changed),
            s.status,
            s.etag,
            s.repr,
            s.legacy
        );
        assert!(matches!(s.status, 200 | 206), "{ctx}");
        // A digest belongs to the version the ETag names, and to no other.
        match s.repr.as_deref() {
            None => assert!(s.legacy.is_none(), "Digest without Repr-Digest: {ctx}"),
            Some(r) if r == old_repr => {
                assert_eq!(
                    s.etag.as_deref(),
                    Some(old_etag),
                    "old digest, other ETag: {ctx}"
                );
                assert_eq!(s.legacy.as_deref(), Some(old_legacy.as_str()), "{ctx}");
            }
            Some(r) if r == new_repr => {
                assert_eq!(s.etag.as_deref(), Some(new_etag.as_str()), "{ctx}");
            }
            Some(_) => panic!("a digest of no version of the file: {ctx}"),
        }
        if s.sent >= changed {
            assert_eq!(s.etag.as_deref(), Some(new_etag.as_str()), "{ctx}");
            assert_ne!(
                s.repr.as_deref(),
                Some(old_repr.as_str()),
                "STALE DIGEST: {ctx}"
            );
        }
    }
    let got = wait_for_digest(server, "/doc.bin");
    assert_eq!(
        got, new_repr,
        "{label}: the new version's digest is sha256sum's"
    );
    eprintln!(
        "{label}: {before} responses before, {after} after the change, old digest never \
         after it; new digest known {:?} after the change",
        changed.elapsed()
    );
    (new_etag, new_hex)
}

/// Digest values on every kind of answer, never stale across a change, and
/// persisted across a restart without hashing again.
#[test]
fn digests_are_exact_never_stale_and_survive_a_restart() {
    require("getfattr", "attr");
    let t = Instant::now();
    let root = TempDir::new();
    let work = TempDir::new();
    let v1 = pattern(3 * MIB + 17, 0xD16E57);
    let doc = root.write("doc.bin", &v1);
    let other = root.write("other.bin", &pattern(256 * KIB, 0x0_7E4));
    let mut server = Server::start(root.path());

    // The first request asks, and gets no digest: nothing is ever hashed on
    // the request path.
    let first =
        Conn::open(server.addr).request("HEAD", "/doc.bin", &[("Want-Repr-Digest", "sha-256=9")]);
    assert_eq!(first.status, 200);
    assert_eq!(
        first.header("repr-digest"),
        None,
        "no digest before hashing"
    );
    let _ = get(
        server.addr,
        "/other.bin",
        &[("Want-Digest", "SHA-256"), ("Range", "bytes=0-0")],
    );
    let hex = sha256sum(&doc);
    let repr = repr_of(&hex);
    let legacy = legacy_of(&hex);
    assert_eq!(wait_for_digest(&server, "/doc.bin"), repr);
    eprintln!("digest known {:?} after the first request", t.elapsed());

    // The same value on 200, 206, multipart 206 and HEAD of this version.
    let asks: &[(&str, &str)] = &[
        ("Want-Repr-Digest", "sha-256=9"),
        ("Want-Digest", "SHA-256;q=1, SHA;q=0.1"),
    ];
    let mut conn = Conn::open(server.addr);
    let full = conn.request("GET", "/doc.bin", asks);
    assert_eq!(full.status, 200);
    assert_eq!(sha256sum_bytes(work.path(), &full.body), hex, "200 body");
    let etag = full.header("etag").unwrap().to_owned();
    let ranges = [
        ("bytes=0-0", 206),
        ("bytes=1000-", 206),
        ("bytes=-5", 206),
        ("bytes=0-9,2000-2999,-1", 206),
    ];
    let mut answers = vec![("200".to_owned(), full)];
    for (range, status) in ranges {
        let mut fields = asks.to_vec();
        fields.push(("Range", range));
        let r = conn.request("GET", "/doc.bin", &fields);
        assert_eq!(r.status, status, "{range}");
        answers.push((range.to_owned(), r));
    }
    answers.push(("HEAD".to_owned(), conn.request("HEAD", "/doc.bin", asks)));
    for (what, r) in &answers {
        assert_eq!(r.header("repr-digest"), Some(repr.as_str()), "{what}");
        assert_eq!(r.header("digest"), Some(legacy.as_str()), "{what}");
        assert_eq!(r.header("etag"), Some(etag.as_str()), "{what}");
    }
    assert!(
        answers[4]
            .1
            .header("content-type")
            .is_some_and(|c| c.starts_with("multipart/byteranges")),
        "the 3-range answer is multipart"
    );
    // Repr-Digest goes out unasked; Digest only when Want-Digest asks; a
    // refusal of SHA-256 is honoured; 416 describes no representation.
    let plain = conn.request("GET", "/doc.bin", &[("Range", "bytes=5-6")]);
    assert_eq!(plain.header("repr-digest"), Some(repr.as_str()));
    assert_eq!(plain.header("digest"), None, "Digest only when asked");
    let refused = conn.request("HEAD", "/doc.bin", &[("Want-Repr-Digest", "sha-256=0")]);
    assert_eq!(refused.header("repr-digest"), None, "sha-256=0 refuses");
    let unsat = conn.request("GET", "/doc.bin", &[("Range", "bytes=99999999-")]);
    assert_eq!(unsat.status, 416);
    assert_eq!(unsat.header("repr-digest"), None, "416 carries no digest");
    // The JSON listing shows the same digest.
    let listing = get(server.addr, "/?format=json", &[]).body_str();
    assert!(
        listing.contains(&format!("\"digest\":\"{repr}\"")),
        "JSON listing digest:\n{listing}"
    );
    assert_eq!(hashed_lines(&server.log(), &doc), 1, "hashed once");

    // Three changes, each watched by a loop of requests around it.
    let meta = std::fs::metadata(&doc).unwrap();
    let v2: Vec<u8> = pattern(v1.len(), 0xBEEF);
    let (etag2, hex2) =
        change_under_watch(&server, &doc, "rewritten in place", (&etag, &hex), || {
            std::fs::write(&doc, &v2).unwrap()
        });
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(&doc).unwrap().ino(),
        meta.ino(),
        "same inode"
    );
    let v3 = pattern(v1.len(), 0xCAFE);
    let (etag3, hex3) =
        change_under_watch(&server, &doc, "replaced by rename", (&etag2, &hex2), || {
            replace_by_rename(&doc, &v3)
        });
    let (_, hex4) = change_under_watch(&server, &doc, "appended", (&etag3, &hex3), || {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&doc).unwrap();
        f.write_all(b"one more line\n").unwrap();
    });
    let other_hex = sha256sum(&other);
    assert_eq!(wait_for_digest(&server, "/other.bin"), repr_of(&other_hex));

    // The digest is persisted on the file, with the version it is of.
    let record = Command::new("getfattr")
        .args(["--only-values", "-n", "user.ranged.sha256"])
        .arg(&doc)
        .output()
        .expect("getfattr");
    let record = String::from_utf8_lossy(&record.stdout).into_owned();
    let m = std::fs::metadata(&doc).unwrap();
    assert!(
        record.starts_with(&format!("1 {} ", m.len())) && record.ends_with(&hex4),
        "xattr record {record:?}"
    );
    eprintln!("persisted: user.ranged.sha256 = {record:?}");

    // Restart. Meanwhile other.bin is rewritten in place, same length: its
    // record now names an older version and must not be served.
    server.terminate();
    assert!(
        server.wait_exit(Duration::from_secs(10)).is_some(),
        "server stops"
    );
    drop(server);
    let other_v2 = pattern(256 * KIB, 0x0_7E5);
    std::fs::write(&other, &other_v2).unwrap();
    let server = Server::start(root.path());
    // No Want-* field at all: on-demand mode would never hash for this
    // request, so a digest here can only come from the xattr.
    let r = Conn::open(server.addr).request("HEAD", "/doc.bin", &[]);
    assert_eq!(
        r.header("repr-digest"),
        Some(repr_of(&hex4).as_str()),
        "at once after a restart"
    );
    let r = get(server.addr, "/doc.bin", &[("Range", "bytes=0-99")]);
    assert_eq!(r.header("repr-digest"), Some(repr_of(&hex4).as_str()));
    let r = Conn::open(server.addr).request("HEAD", "/other.bin", &[("Want-Digest", "SHA-256")]);
    assert_eq!(r.header("repr-digest"), None, "stale xattr record served");
    assert_eq!(r.header("digest"), None, "stale xattr record served");
    let other_hex2 = sha256sum(&other);
    assert_eq!(wait_for_digest(&server, "/other.bin"), repr_of(&other_hex2));
    let log = server.log();
    assert_eq!(
        hashed_lines(&log, &doc),
        0,
        "doc.bin hashed again after a restart:\n{log}"
    );
    assert_eq!(
        hashed_lines(&log, &other),
        1,
        "other.bin must be hashed anew:\n{log}"
    );
    eprintln!("digest values and staleness ({:?})", t.elapsed());
}

// ------------------------------------------------------ 2. aria2c verifies

/// An interrupted aria2c download (one connection, throttled by aria2c's own
/// limit, stopped with SIGTERM as a person would): the partial file and its
/// control file.
fn interrupted_aria2c(work: &Path, name: &str, u: &str, at_least: u64) {
    let dir = work.to_str().unwrap();
    let args = aria2_args(
        dir,
        name,
        u,
        &["-x", "1", "-s", "1", "--max-download-limit=1M"],
    );
    let tag = format!("aria2c-interrupted-{name}");
    let c = Proc::spawn(work, &tag, "aria2c", &args);
    // Files under 5 MiB are not preallocated (aria2c's
    // --no-file-allocation-limit): the length on disk is its progress.
    let out = work.join(name);
    let st = interrupt(c, at_least, "TERM", || file_len(&out));
    assert!(!st.success(), "interrupted aria2c must say so: {st}");
    let control = work.join(format!("{name}.aria2"));
    assert!(
        control.exists(),
        "interrupted aria2c leaves its control file {}",
        control.display()
    );
}

/// Flips four bytes at `at` in a file.
fn flip(path: &Path, at: u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 4];
    f.read_exact_at(&mut b, at).unwrap();
    for x in &mut b {
        *x ^= 0xFF;
    }
    f.write_all_at(&b, at).unwrap();
}

/// aria2c checks the `Digest` it was sent (no option needed: it verifies a
/// whole-file digest from the server at the end by default). A resumed
/// download whose first part was corrupted on disk fails with exit 32
/// ("checksum error"); without a digest the same resume passes silently.
#[test]
fn aria2c_verifies_the_digest_and_catches_a_corrupted_partial() {
    require("aria2c", "aria2");
    let t = Instant::now();
    let root = TempDir::new();
    let work = TempDir::new();
    let data = pattern(4 * MIB, 0xA2C);
    let src = root.write("img.bin", &data);
    let hex = sha256sum(&src);
    let server = Server::start(root.path());
    let u = url(&server, "/img.bin");
    let dir = work.path().to_str().unwrap();
    let out = work.path().join("img.bin");

    // Make the digest known, as a first aria2c request would ask for it.
    let mut known = None;
    eventually(DIGEST_LIMIT, || {
        let r = Conn::open(server.addr).request(
            "HEAD",
            "/img.bin",
            &[("Want-Digest", "SHA-512;q=1, SHA-256;q=1, SHA;q=0.1")],
        );
        known = r.header("digest").map(str::to_owned);
        known.is_some()
    });
    assert_eq!(
        known.as_deref(),
        Some(legacy_of(&hex).as_str()),
        "Digest for aria2c"
    );

    // A whole download: aria2c is sent the digest and verifies it.
    let log = work.path().join("aria2c-full.log");
    let mut args = aria2_args(dir, "img.bin", &u, &[]);
    let log_arg = format!("--log={}", log.display());
    args.insert(0, &log_arg);
    args.insert(0, "--log-level=info");
    let (code, output) = run(work.path(), "aria2c-full", "aria2c", &args);
    assert_eq!(code, 0, "aria2c with a correct Digest\n{output}");
    assert_eq!(sha256sum(&out), hex, "aria2c download");
    let alog = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        alog.contains(&format!("Digest: {}", legacy_of(&hex))),
        "aria2c received the Digest field:\n{alog}"
    );
    assert!(
        alog.contains("Verification finished successfully"),
        "aria2c verified the download:\n{alog}"
    );
    std::fs::remove_file(&out).unwrap();

    // Interrupted after its first 1 MiB piece, then that piece corrupted on
    // disk; `aria2c -c` continues from the control file and fails at the
    // end with exit 32.
    interrupted_aria2c(work.path(), "img.bin", &u, 3 * MIB as u64 / 2);
    let partial = std::fs::read(&out).unwrap();
    assert_eq!(
        partial[..MIB],
        data[..MIB],
        "the first piece arrived before the kill"
    );
    assert_ne!(partial, data, "the download is incomplete");
    flip(&out, 4096);
    let args = aria2_args(dir, "img.bin", &u, &["-c"]);
    let (code, output) = run(work.path(), "aria2c-resume", "aria2c", &args);
    assert_eq!(
        code, 32,
        "aria2c -c over a corrupted prefix must fail with 32 (checksum error)\n{output}"
    );
    assert!(output.contains("Checksum error detected"), "{output}");
    // Running it again re-downloads what failed the check: exact.
    let (code, output) = run(work.path(), "aria2c-again", "aria2c", &args);
    assert_eq!(code, 0, "aria2c -c after a checksum error\n{output}");
    assert_eq!(sha256sum(&out), hex, "aria2c after a checksum error");
    eprintln!(
        "aria2c: Digest verified; corrupted partial → exit 32; rerun → exact ({:?})",
        t.elapsed()
    );

    // The same corrupted resume against a server that sends no digest:
    // aria2c cannot tell, and completes with the wrong bytes.
    let blind = Server::start_with(root.path(), &["--digests", "off"]);
    let u = url(&blind, "/img.bin");
    std::fs::remove_file(&out).unwrap();
    interrupted_aria2c(work.path(), "img.bin", &u, 3 * MIB as u64 / 2);
    flip(&out, 4096);
    let args = aria2_args(dir, "img.bin", &u, &["-c"]);
    let (code, output) = run(work.path(), "aria2c-blind", "aria2c", &args);
    assert_eq!(code, 0, "{output}");
    assert_ne!(
        sha256sum(&out),
        hex,
        "without a digest the corruption goes unnoticed"
    );
    eprintln!(
        "aria2c without a digest: corrupted partial → exit 0, wrong bytes ({:?})",
        t.elapsed()
    );
}

// ------------------------------------------------------------ 3. abuse

/// The server's threads: (name, CPU time in clock ticks).
fn threads(pid: u32) -> Vec<(String, u64)> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let p = e.ok()?.path();
        let name = std::fs::read_to_string(p.join("comm"))
            .ok()?
            .trim()
            .to_owned();
        let stat = std::fs::read_to_string(p.join("stat")).ok()?;
        let rest = stat.rsplit_once(") ")?.1;
        let f: Vec<&str> = rest.split(' ').collect();
        // utime and stime: fields 14 and 15 of proc(5), 12th and 13th after
        // the name.
        let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
        Some((name, ticks))
    })
    .collect()
}

/// (CPU ticks of the hasher, CPU ticks of every other thread).
fn cpu_split(pid: u32) -> (u64, u64) {
    threads(pid).iter().fold((0, 0), |(h, o), (name, t)| {
        if name == "digests" {
            (h + t, o)
        } else {
            (h, o + t)
        }
    })
}

/// The files under `dir` the process is reading through now: open, with
/// their file offset moved (`pos` in proc(5)'s fdinfo). The hasher reads
/// with read(2); the workers serve with positional reads, or seek and close
/// the file with the answer, so a handle they keep stays at offset 0.
fn being_read_under(pid: u32, dir: &Path) -> Vec<PathBuf> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    fds.filter_map(|e| {
        let fd = e.ok()?;
        let target = std::fs::read_link(fd.path()).ok()?;
        if !target.starts_with(dir) {
            return None;
        }
        let info = std::fs::read_to_string(format!(
            "/proc/{pid}/fdinfo/{}",
            fd.file_name().to_string_lossy()
        ))
        .ok()?;
        let pos: u64 = info
            .lines()
            .find_map(|l| l.strip_prefix("pos:"))?
            .trim()
            .parse()
            .ok()?;
        (pos > 0).then_some(target)
    })
    .collect()
}

fn hasher_threads(pid: u32) -> usize {
    threads(pid).iter().filter(|(n, _)| n == "digests").count()
}

/// (end of the hash in ms since midnight UTC, its duration in ms) of each
/// `hashed` line of a timestamped log (`2026-…T14:20:05.123Z INFO  hashed
/// /p: N bytes in 5.3 s (…)`).
fn hash_intervals(log: &str) -> Vec<(i64, i64)> {
    log.lines()
        .filter(|l| l.contains(" hashed /"))
        .filter_map(|l| {
            let time = l.split('T').nth(1)?.split('Z').next()?;
            let mut hms = time.split(':');
            let h: i64 = hms.next()?.parse().ok()?;
            let m: i64 = hms.next()?.parse().ok()?;
            let s: f64 = hms.next()?.parse().ok()?;
            let end = (h * 3600 + m * 60) * 1000 + (s * 1000.0) as i64;
            let secs: f64 = l
                .split(" bytes in ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse()
                .ok()?;
            Some((end, (secs * 1000.0) as i64))
        })
        .collect()
}

/// 1,000 digest requests for 1,000 different 256 MiB files: one hasher
/// thread does all the hashing, one file at a time, memory stays flat and
/// small GETs are served at once meanwhile.
#[test]
fn a_flood_of_digest_requests_hashes_one_file_at_a_time() {
    let t = Instant::now();
    let root = TempDir::new();
    let small = pattern(2 * KIB, 0x5A11);
    root.write("small.txt", &small);
    std::fs::create_dir(root.path().join("many")).unwrap();
    const FILES: usize = 1000;
    for i in 0..FILES {
        let f = std::fs::File::create(root.path().join(format!("many/f{i:04}"))).unwrap();
        f.set_len(256 * MIB as u64).unwrap();
    }
    eprintln!("{FILES} sparse files of 256 MiB made in {:?}", t.elapsed());
    let server = Server::start_with(root.path(), &["--log-timestamps"]);
    let pid = server.pid();
    assert_eq!(hasher_threads(pid), 1, "one hasher thread");

    // Baseline once warm: a few connections and requests of each kind.
    for i in 0..20 {
        server.assert_serves("/small.txt", &small);
        let _ =
            Conn::open(server.addr).request("HEAD", &format!("/many/f{:04}", FILES - 1 - i), &[]);
    }
    std::thread::sleep(Duration::from_millis(300));
    let rss_before = server.rss_kib();
    let cpu_before = cpu_split(pid);

    // The flood, from four keep-alive connections.
    let flood_started = Instant::now();
    let addr = server.addr;
    let senders: Vec<_> = (0..4)
        .map(|k| {
            std::thread::spawn(move || {
                let mut conn = Conn::open(addr);
                let mut with_digest = 0;
                for i in (k..FILES).step_by(4) {
                    let target = format!("/many/f{i:04}");
                    let r = if i % 2 == 0 {
                        conn.request("HEAD", &target, &[("Want-Digest", "SHA-256")])
                    } else {
                        conn.request(
                            "GET",
                            &target,
                            &[("Want-Digest", "SHA-256"), ("Range", "bytes=0-0")],
                        )
                    };
                    assert!(matches!(r.status, 200 | 206), "{target}: {}", r.status);
                    if r.header("digest").is_some() {
                        with_digest += 1;
                    }
                }
                with_digest
            })
        })
        .collect();

    // Small GETs, timed, during the flood and while the hasher works.
    let mut took_all = Vec::new();
    let mut gets = 0;
    let mut flood_done = None;
    let mut joined = Vec::new();
    let mut senders = senders;
    let many = root.path().join("many");
    let (mut samples, mut hashing_samples) = (0, 0);
    let mut hashed_files: Vec<PathBuf> = Vec::new();
    while flood_started.elapsed() < Duration::from_secs(10) {
        let t0 = Instant::now();
        let r = get(server.addr, "/small.txt", &[]);
        let took = t0.elapsed();
        assert_eq!(r.status, 200);
        assert!(r.body == small, "small GET body");
        took_all.push(took);
        gets += 1;
        assert_eq!(hasher_threads(pid), 1, "exactly one hasher thread");
        if flood_done.is_some() {
            // Once the flood is answered, only the hasher reads these
            // files: never more than one at a time.
            let open = being_read_under(pid, &many);
            assert!(open.len() <= 1, "several files hashed at once: {open:?}");
            samples += 1;
            if let Some(f) = open.first() {
                hashing_samples += 1;
                if !hashed_files.contains(f) {
                    hashed_files.push(f.clone());
                }
            }
        }
        if flood_done.is_none() && senders.iter().all(|s| s.is_finished()) {
            flood_done = Some(flood_started.elapsed());
            joined = senders
                .drain(..)
                .map(|s| s.join().expect("sender"))
                .collect();
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let flood_done = flood_done.expect("the flood finished within 10 s");
    let answered_with_digest: usize = joined.iter().sum();
    let cpu_after = cpu_split(pid);
    let rss_after = server.rss_kib();
    let hasher_ticks = cpu_after.0 - cpu_before.0;
    let other_ticks = cpu_after.1 - cpu_before.1;
    let log = server.log();
    let intervals = hash_intervals(&log);
    // The server's own time per small GET (the access line's duration): the
    // client's, printed too, also holds the test's scheduling on a busy box.
    let served_ms: Vec<u64> = log
        .lines()
        .filter(|l| l.contains("\"GET /small.txt HTTP/1.1\" 200 "))
        .filter_map(|l| l.rsplit(' ').next()?.strip_suffix("ms")?.parse().ok())
        .collect();
    took_all.sort();
    let median = took_all[took_all.len() / 2];
    let worst = took_all[took_all.len() - 1];
    let served_worst = served_ms.iter().copied().max().unwrap_or(0);
    eprintln!(
        "flood: {FILES} requests in {flood_done:?}, {answered_with_digest} answered with a \
         digest; {gets} small GETs, client median {median:?}, slowest {worst:?}, server at \
         most {served_worst} ms; CPU ticks: hasher {hasher_ticks}, all \
         other threads {other_ticks}; one file being hashed in {hashing_samples} of \
         {samples} samples after the flood ({} distinct), none more; {} files hashed \
         (intervals ms {intervals:?}); RSS {rss_before} KiB → {rss_after} KiB",
        hashed_files.len(),
        intervals.len()
    );
    assert_eq!(
        answered_with_digest, 0,
        "nothing is hashed on the request path"
    );
    assert!(
        served_ms.len() >= gets,
        "every small GET was logged ({} of {gets})",
        served_ms.len()
    );
    assert!(
        served_worst < 200,
        "a small GET took {served_worst} ms in the server during the flood"
    );
    assert!(
        median < Duration::from_millis(200),
        "small GETs took {median:?} (median) during the flood"
    );
    // The requests gave the hasher work, and nothing else hashed: one 256
    // MiB file costs this debug build several seconds of CPU (600+ ticks),
    // while every other thread together spent under one.
    assert!(
        hashing_samples * 5 >= samples && samples >= 20,
        "the hasher was reading a file in {hashing_samples} of {samples} samples"
    );
    assert!(
        other_ticks < 100,
        "hashing happened outside the hasher thread: {other_ticks} ticks (hasher {hasher_ticks})"
    );
    // One at a time: no two hashes overlap (100 ms of rounding allowed).
    let mut spans: Vec<(i64, i64)> = intervals.iter().map(|&(end, d)| (end - d, end)).collect();
    spans.sort();
    for w in spans.windows(2) {
        assert!(w[1].0 + 100 >= w[0].1, "two hashes overlapped: {w:?}");
    }
    assert!(
        rss_after <= rss_before + 4 * 1024,
        "memory grew from {rss_before} KiB to {rss_after} KiB"
    );
    eprintln!("flood ({:?})", t.elapsed());
}

/// The file the hasher's speed is measured on: 1 GiB against the release
/// binary (`cargo test --release --test integrity large_file`, the figure
/// for the README), 256 MiB against the debug binary `cargo test` builds,
/// whose unoptimised SHA-256 runs at about 40 MB/s (1 GiB would take 25 s
/// on an idle 2-core machine, 85 s on a busy one).
const THROUGHPUT_LEN: u64 = if cfg!(debug_assertions) {
    256 << 20
} else {
    1 << 30
};

/// The hasher's speed against coreutils on the same (sparse) file, printed
/// for the README, not asserted; the digest itself must agree. Named to
/// start first: it is the longest test (its hasher runs at the lowest
/// priority).
#[test]
fn a_large_file_hashed_by_the_server_as_by_sha256sum() {
    let root = TempDir::new();
    let path = root.path().join("large.img");
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(THROUGHPUT_LEN).unwrap();
    drop(f);
    let server = Server::start_with(root.path(), &["--digests", "eager"]);
    let line = |log: &str| {
        log.lines()
            .find(|l| l.contains(&format!("hashed {}: ", path.display())))
            .map(str::to_owned)
    };
    let limit = Duration::from_secs(60);
    let done = eventually(limit, || line(&server.log()).is_some());
    assert!(done, "not hashed within {limit:?}:\n{}", server.log());
    let line = line(&server.log()).unwrap();
    let t = Instant::now();
    let hex = sha256sum(&path);
    let coreutils = t.elapsed();
    let r = Conn::open(server.addr).request("HEAD", "/large.img", &[]);
    assert_eq!(r.header("repr-digest"), Some(repr_of(&hex).as_str()));
    eprintln!(
        "throughput on a {} MiB sparse file: server `{}`; sha256sum {:?} ({:.2} GB/s)",
        THROUGHPUT_LEN >> 20,
        line.split("INFO").last().unwrap_or(&line).trim(),
        coreutils,
        THROUGHPUT_LEN as f64 / coreutils.as_secs_f64() / 1e9
    );
}

// ------------------------------------------------------- 4. pinned links

/// How each client is run on a pinned link: the first (interrupted) run and
/// the resume, as a person would type them.
struct Pinned {
    name: &'static str,
    program: &'static str,
    signal: &'static str,
}

fn first_run_args(p: &Pinned, dir: &str, file: &str, u: &str) -> Vec<String> {
    match p.program {
        "curl" => vec![
            "-sS".into(),
            "-f".into(),
            "-o".into(),
            format!("{dir}/{file}"),
            u.into(),
        ],
        "wget" => vec!["-q".into(), "-O".into(), format!("{dir}/{file}"), u.into()],
        _ => aria2_args(dir, file, u, &["-x", "1", "-s", "1"])
            .into_iter()
            .map(str::to_owned)
            .collect(),
    }
}

fn resume_args(p: &Pinned, dir: &str, file: &str, u: &str) -> Vec<String> {
    match p.program {
        "curl" => vec![
            "-sS".into(),
            "-f".into(),
            "-C".into(),
            "-".into(),
            "-o".into(),
            format!("{dir}/{file}"),
            u.into(),
        ],
        "wget" => vec![
            "-q".into(),
            "-c".into(),
            "-O".into(),
            format!("{dir}/{file}"),
            u.into(),
        ],
        _ => aria2_args(dir, file, u, &["-c"])
            .into_iter()
            .map(str::to_owned)
            .collect(),
    }
}

fn run_owned(work: &Path, tag: &str, program: &str, args: &[String]) -> (i32, String) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(work, tag, program, &args)
}

/// A pinned link (`?v=<etag>` from the listing) resumes exactly while the
/// file is unchanged, and after a replacement every client stops with an
/// error and leaves its partial file as it was.
#[test]
fn pinned_links_stop_curl_wget_and_aria2c_after_a_replacement() {
    require("curl", "curl");
    require("wget", "wget");
    require("aria2c", "aria2");
    let t = Instant::now();
    let root = TempDir::new();
    let work = TempDir::new();
    let clients = [
        Pinned {
            name: "c.bin",
            program: "curl",
            signal: "KILL",
        },
        Pinned {
            name: "w.bin",
            program: "wget",
            signal: "KILL",
        },
        // SIGTERM: aria2c writes its control file, as when a person stops it.
        Pinned {
            name: "a.bin",
            program: "aria2c",
            signal: "TERM",
        },
    ];
    let len = 2 * MIB;
    for (i, p) in clients.iter().enumerate() {
        root.write(p.name, &pattern(len, 0x9100 + i as u64));
    }
    // The interrupted runs go through a throttled server, the resumes through
    // a fast one: same root, so the same ETags and pinned links.
    let slow = Server::start_with(root.path(), &["--rate-limit", "1M"]);
    let fast = Server::start(root.path());
    let a = work.path().join("unchanged");
    let b = work.path().join("replaced");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let (da, db) = (a.to_str().unwrap(), b.to_str().unwrap());

    let mut pins = Vec::new();
    for p in &clients {
        let pin = pinned_target(&fast, p.name);
        let old_hex = sha256sum(&root.path().join(p.name));
        let args = first_run_args(p, da, p.name, &url(&slow, &pin));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let c = Proc::spawn(
            work.path(),
            &format!("{}-first", p.program),
            p.program,
            &args,
        );
        let out = a.join(p.name);
        // aria2c does not preallocate files under 5 MiB: for every client
        // the length on disk is its progress.
        interrupt(c, 256 * KIB as u64, p.signal, || file_len(&out));
        let partial = std::fs::read(&out).unwrap();
        let source = std::fs::read(root.path().join(p.name)).unwrap();
        assert_ne!(
            partial, source,
            "{}: the first run is incomplete",
            p.program
        );
        assert!(
            source.starts_with(&partial),
            "{}: partial is a prefix",
            p.program
        );
        for f in [p.name.to_owned(), format!("{}.aria2", p.name)] {
            if a.join(&f).exists() {
                std::fs::copy(a.join(&f), b.join(&f)).unwrap();
            }
        }
        pins.push((pin, old_hex, partial.len()));
    }

    // Unchanged: each client resumes through its pinned link, exactly.
    for (p, (pin, old_hex, n)) in clients.iter().zip(&pins) {
        let args = resume_args(p, da, p.name, &url(&fast, pin));
        let (code, output) = run_owned(&a, &format!("{}-resume", p.program), p.program, &args);
        assert_eq!(code, 0, "{} resume through {pin}\n{output}", p.program);
        assert_eq!(
            &sha256sum(&a.join(p.name)),
            old_hex,
            "{} resumed exactly",
            p.program
        );
        eprintln!(
            "pinned, unchanged: {} resumed ({n}-byte partial file), exact",
            p.program
        );
    }
    // Those were resumes: each client got a 206 for a range not from 0.
    let lines = support::access_lines(&fast.log());
    for (p, (pin, _, _)) in clients.iter().zip(&pins) {
        assert!(
            lines.iter().any(|l| &l.target == pin
                && l.status == 206
                && l.range.starts_with("bytes=")
                && !l.range.starts_with("bytes=0-")),
            "{} did not resume with a range: {lines:#?}",
            p.program
        );
    }

    // Replaced (same length, new inode): each resume stops with an error and
    // the partial file is untouched.
    for (i, p) in clients.iter().enumerate() {
        replace_by_rename(&root.path().join(p.name), &pattern(len, 0x9200 + i as u64));
    }
    let mut codes = Vec::new();
    for (p, (pin, _, _)) in clients.iter().zip(&pins) {
        let out = b.join(p.name);
        let before = sha256sum(&out);
        let args = resume_args(p, db, p.name, &url(&fast, pin));
        let (code, output) = run_owned(&b, &format!("{}-after", p.program), p.program, &args);
        assert_ne!(
            code, 0,
            "{} resumed a replaced file through {pin}\n{output}",
            p.program
        );
        assert_eq!(
            sha256sum(&out),
            before,
            "{}: the partial file changed",
            p.program
        );
        codes.push((p.program, code));
    }
    // curl without -f: the same refusal, another exit code.
    let (pin, _, _) = &pins[0];
    let out = b.join("c.bin");
    let before = sha256sum(&out);
    let (code, output) = run(
        &b,
        "curl-no-f",
        "curl",
        &[
            "-sS",
            "-C",
            "-",
            "-o",
            out.to_str().unwrap(),
            &url(&fast, pin),
        ],
    );
    assert_ne!(code, 0, "curl -C - without -f\n{output}");
    assert_eq!(
        sha256sum(&out),
        before,
        "curl without -f changed the partial"
    );
    codes.push(("curl (no -f)", code));
    let refused = support::access_lines(&fast.log())
        .into_iter()
        .filter(|l| l.status == 412 && l.target.contains("?v="))
        .count();
    assert!(
        refused >= 4,
        "the server answered the pinned resumes with 412"
    );
    eprintln!("pinned, replaced: exit codes {codes:?}, partial files unchanged");

    // The edge the server guards: curl takes a non-206 answer whose length
    // equals the resume offset for "already complete" (exit 0). A partial
    // exactly as long as the 412 body must still fail.
    let gone = get(fast.addr, pin, &[]);
    assert_eq!(gone.status, 412);
    let body_len = gone.body.len();
    let at_offset = get(fast.addr, pin, &[("Range", &format!("bytes={body_len}-"))]);
    assert_eq!(at_offset.status, 412);
    assert_ne!(
        at_offset.body.len(),
        body_len,
        "a 412 as long as the resume offset reads as complete to curl"
    );
    let old_c = pattern(len, 0x9100);
    for (tag, flags) in [("edge-f", &["-sS", "-f"][..]), ("edge", &["-sS"][..])] {
        let edge = b.join(format!("{tag}.bin"));
        std::fs::write(&edge, &old_c[..body_len]).unwrap();
        let mut args = flags.to_vec();
        args.extend(["-C", "-", "-o", edge.to_str().unwrap()]);
        let u = url(&fast, pin);
        args.push(&u);
        let (code, output) = run(&b, tag, "curl", &args);
        assert_ne!(
            code, 0,
            "curl {flags:?} -C - with a {body_len}-byte partial\n{output}"
        );
        assert_eq!(
            std::fs::read(&edge).unwrap(),
            old_c[..body_len],
            "{tag}: partial kept"
        );
        eprintln!(
            "curl {flags:?} -C - with a partial as long as the 412 body ({body_len}): exit {code}"
        );
    }
    eprintln!("pinned links ({:?})", t.elapsed());
}

// ---------------------------------------------------- 5. upload checksums

/// The hex digest `tool` (`sha1sum`, `sha256sum`) prints for `bytes`.
fn coreutils_sum(work: &Path, tool: &str, bytes: &[u8]) -> String {
    let p = work.join("sum-input");
    std::fs::write(&p, bytes).unwrap();
    let out = Command::new(tool).arg(&p).output().expect(tool);
    let _ = std::fs::remove_file(&p);
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_owned()
}

/// `Upload-Checksum: <algo> <base64>` for `bytes`.
fn upload_checksum(work: &Path, algo: &str, bytes: &[u8]) -> String {
    let tool = if algo == "sha1" {
        "sha1sum"
    } else {
        "sha256sum"
    };
    let hex = coreutils_sum(work, tool, bytes);
    format!("{algo} {}", ranged::base64::encode(&unhex(&hex)))
}

/// A tus creation in `/in/` for `name`; the upload's URL.
fn tus_create(
    server: &Server,
    name: &str,
    len: usize,
    extra: &[(&str, &str)],
) -> (Response, String) {
    let meta = format!("filename {}", ranged::base64::encode(name.as_bytes()));
    let len = len.to_string();
    let mut fields = vec![
        ("Tus-Resumable", "1.0.0"),
        ("Upload-Length", len.as_str()),
        ("Upload-Metadata", meta.as_str()),
    ];
    fields.extend_from_slice(extra);
    let r = send(server.addr, "POST", "/in/", &fields, b"");
    let location = r.header("location").unwrap_or("").to_owned();
    (r, location)
}

fn tus_patch(
    server: &Server,
    location: &str,
    offset: usize,
    body: &[u8],
    checksum: Option<&str>,
) -> Response {
    let offset = offset.to_string();
    let mut fields = vec![
        ("Tus-Resumable", "1.0.0"),
        ("Content-Type", "application/offset+octet-stream"),
        ("Upload-Offset", offset.as_str()),
    ];
    if let Some(c) = checksum {
        fields.push(("Upload-Checksum", c));
    }
    send(server.addr, "PATCH", location, &fields, body)
}

fn tus_offset(server: &Server, location: &str) -> Option<String> {
    let r = Conn::open(server.addr).request("HEAD", location, &[("Tus-Resumable", "1.0.0")]);
    r.header("upload-offset").map(str::to_owned)
}

/// tus `Upload-Checksum` (sha1, sha256) per PATCH, and a whole-file
/// `Repr-Digest` at tus creation and on PUT: a mismatch keeps nothing and
/// publishes nothing; a published file's digest is served at once, never
/// hashed again.
#[test]
fn upload_checksums_and_digests_are_verified() {
    let t = Instant::now();
    let root = TempDir::new();
    let work = TempDir::new();
    std::fs::create_dir(root.path().join("in")).unwrap();
    let server = Server::start_with(root.path(), &["--upload", "--anonymous-upload"]);
    let chunk1 = pattern(300 * KIB, 0x7051);
    let chunk2 = pattern(200 * KIB + 3, 0x7052);
    let whole = [chunk1.clone(), chunk2.clone()].concat();
    let whole_hex = sha256sum_bytes(work.path(), &whole);
    let whole_repr = repr_of(&whole_hex);

    // Per-PATCH checksums: right sha1 accepted; wrong sha256 and wrong sha1
    // → 460, the offset unchanged; right sha256 accepted.
    let (r, loc) = tus_create(&server, "t.bin", whole.len(), &[]);
    assert_eq!(r.status, 201, "creation: {}", r.body_str());
    let r = tus_patch(
        &server,
        &loc,
        0,
        &chunk1,
        Some(&upload_checksum(work.path(), "sha1", &chunk1)),
    );
    assert_eq!(r.status, 204, "right sha1: {}", r.body_str());
    let n1 = chunk1.len().to_string();
    assert_eq!(r.header("upload-offset"), Some(n1.as_str()));
    for (algo, wrong) in [("sha256", &chunk1), ("sha1", &chunk1)] {
        let r = tus_patch(
            &server,
            &loc,
            chunk1.len(),
            &chunk2,
            Some(&upload_checksum(work.path(), algo, wrong)),
        );
        assert_eq!(r.status, 460, "wrong {algo}: {}", r.body_str());
        assert_eq!(
            tus_offset(&server, &loc).as_deref(),
            Some(n1.as_str()),
            "offset after a wrong {algo}"
        );
    }
    assert_eq!(
        get(server.addr, "/in/t.bin", &[]).status,
        404,
        "nothing published yet"
    );
    let r = tus_patch(
        &server,
        &loc,
        chunk1.len(),
        &chunk2,
        Some(&upload_checksum(work.path(), "sha256", &chunk2)),
    );
    assert_eq!(r.status, 204, "right sha256: {}", r.body_str());
    assert_eq!(
        r.header("repr-digest"),
        Some(whole_repr.as_str()),
        "final answer's digest"
    );
    let published = root.path().join("in/t.bin");
    assert_eq!(sha256sum(&published), whole_hex, "published bytes");

    // Whole-file Repr-Digest at creation: wrong → nothing published.
    let wrong_repr = repr_of(&sha256sum_bytes(work.path(), &chunk1));
    let (r, loc) = tus_create(
        &server,
        "bad.bin",
        whole.len(),
        &[("Repr-Digest", &wrong_repr)],
    );
    assert_eq!(r.status, 201);
    let r = tus_patch(&server, &loc, 0, &whole, None);
    assert_eq!(
        r.status,
        460,
        "wrong Repr-Digest at creation: {}",
        r.body_str()
    );
    assert!(
        r.body_str().contains("nothing was published"),
        "{}",
        r.body_str()
    );
    assert!(
        !root.path().join("in/bad.bin").exists(),
        "a file was published"
    );
    assert_eq!(
        tus_offset(&server, &loc),
        None,
        "a wrong upload cannot be resumed"
    );
    assert_eq!(get(server.addr, "/in/bad.bin", &[]).status, 404);
    eprintln!(
        "tus wrong Repr-Digest: {} {}",
        r.status,
        r.body_str().trim()
    );
    // Right → published, and the answer carries the digest.
    let (r, loc) = tus_create(
        &server,
        "good.bin",
        whole.len(),
        &[("Repr-Digest", &whole_repr)],
    );
    assert_eq!(r.status, 201);
    let r = tus_patch(&server, &loc, 0, &whole, None);
    assert_eq!(r.status, 204, "{}", r.body_str());
    assert_eq!(r.header("repr-digest"), Some(whole_repr.as_str()));
    assert_eq!(sha256sum(&root.path().join("in/good.bin")), whole_hex);

    // PUT: a wrong digest publishes nothing, neither a new file nor over an
    // existing one; a right one replaces and answers with the digest.
    let r = send(
        server.addr,
        "PUT",
        "/in/put.bin",
        &[("Repr-Digest", &wrong_repr)],
        &whole,
    );
    assert_eq!(
        r.status, 400,
        "PUT with a wrong Repr-Digest: a bad request, nothing published"
    );
    assert!(
        !root.path().join("in/put.bin").exists(),
        "PUT published a wrong file"
    );
    eprintln!(
        "PUT wrong Repr-Digest: {} {}",
        r.status,
        r.body_str().trim()
    );
    let r = send(
        server.addr,
        "PUT",
        "/in/put.bin",
        &[("Repr-Digest", &whole_repr)],
        &whole,
    );
    assert_eq!(r.status, 201, "{}", r.body_str());
    assert_eq!(r.header("repr-digest"), Some(whole_repr.as_str()));
    let r = send(
        server.addr,
        "PUT",
        "/in/put.bin",
        &[("Repr-Digest", &wrong_repr)],
        &chunk2,
    );
    assert_eq!(r.status, 400, "PUT over a file with a wrong Repr-Digest");
    assert_eq!(
        sha256sum(&root.path().join("in/put.bin")),
        whole_hex,
        "the old file stays"
    );
    let v2 = pattern(whole.len(), 0x7053);
    let v2_repr = repr_of(&sha256sum_bytes(work.path(), &v2));
    let r = send(
        server.addr,
        "PUT",
        "/in/put.bin",
        &[("Repr-Digest", &v2_repr)],
        &v2,
    );
    assert_eq!(r.status, 204, "replaced: {}", r.body_str());
    assert_eq!(r.header("repr-digest"), Some(v2_repr.as_str()));

    // Downloads carry each published file's digest at once, unasked (the
    // on-demand hasher never runs for a request that does not ask), and
    // the hasher never touched them.
    for (target, repr) in [
        ("/in/t.bin", &whole_repr),
        ("/in/good.bin", &whole_repr),
        ("/in/put.bin", &v2_repr),
    ] {
        let r = get(server.addr, target, &[("Range", "bytes=0-99")]);
        assert_eq!(r.status, 206, "{target}");
        assert_eq!(r.header("repr-digest"), Some(repr.as_str()), "{target}");
    }
    let log = server.log();
    assert!(
        !log.contains(" hashed /"),
        "an upload was hashed again:\n{log}"
    );
    eprintln!("upload checksums ({:?})", t.elapsed());
}

// ------------------------------------------------------ 6. promise table

/// What a resume left on disk, given the partial file before it and the
/// old and new versions of the file. A splice is a file of the new length
/// whose start is old bytes and whose rest is new bytes.
fn outcome(got: &[u8], partial: &[u8], old: &[u8], new: &[u8]) -> &'static str {
    let old_prefix = got.iter().zip(old).take_while(|(a, b)| a == b).count();
    let new_suffix = got
        .iter()
        .rev()
        .zip(new.iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    if got == new {
        "the whole new file"
    } else if got == partial {
        "partial file untouched"
    } else if got == old {
        "the old file"
    } else if got.len() == new.len()
        && old_prefix > 0
        && new_suffix > 0
        && old_prefix + new_suffix >= got.len()
    {
        "SPLICE (old prefix + new rest)"
    } else {
        "other bytes"
    }
}

/// The README's promise table, measured: after the file was replaced by
/// another of the same length, what a resume gives with each client and
/// each protection. Clients that splice are confirmed to splice (if one
/// stops doing so, this test fails and the table must change).
#[test]
fn promise_table_resume_after_a_replacement() {
    require("curl", "curl");
    require("wget", "wget");
    require("aria2c", "aria2");
    let t = Instant::now();
    let root = TempDir::new();
    let work = TempDir::new();
    let len = 2 * MIB;
    let v1 = pattern(len, 0x7AB1E1);
    let v2 = pattern(len, 0x7AB1E2);
    let path = root.write("f.bin", &v1);
    // A throttled server to interrupt aria2c, one without digests, one with.
    let slow = Server::start_with(root.path(), &["--rate-limit", "1M", "--digests", "off"]);
    let blind = Server::start_with(root.path(), &["--digests", "off"]);
    let on = Server::start(root.path());
    let old_etag = get(blind.addr, "/f.bin", &[("Range", "bytes=0-0")])
        .header("etag")
        .unwrap()
        .to_owned();
    let pin = pinned_target(&blind, "f.bin");

    // Partial files: curl and wget resume from the file's length (a prefix
    // of the old version); aria2c from its control file, so its partial
    // comes from an interrupted run, copied for each aria2c row.
    let n = 700_001;
    let rows_dir = |name: &str| {
        let d = work.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        d
    };
    let first = rows_dir("aria2c-first");
    interrupted_aria2c(&first, "f.bin", &url(&slow, "/f.bin"), 512 * KIB as u64);
    let aria2_partial = std::fs::read(first.join("f.bin")).unwrap();
    eprintln!("aria2c's partial file: {} bytes", aria2_partial.len());

    replace_by_rename(&path, &v2);
    let new_hex = sha256sum(&path);
    // The digest of the new version, known to `on` before aria2c asks.
    let mut known = None;
    eventually(DIGEST_LIMIT, || {
        let r = Conn::open(on.addr).request("HEAD", "/f.bin", &[("Want-Digest", "SHA-256")]);
        known = r.header("digest").map(str::to_owned);
        known.is_some()
    });
    assert_eq!(
        known,
        Some(legacy_of(&new_hex)),
        "Digest of the new version"
    );

    let if_range = format!("If-Range: {old_etag}");
    let plain = url(&blind, "/f.bin");
    let pinned = url(&blind, &pin);
    let with_digest = url(&on, "/f.bin");
    struct Row {
        what: &'static str,
        program: &'static str,
        args: Vec<String>,
        aria2: bool,
        expect: (Option<i32>, &'static str),
    }
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let rows = vec![
        Row {
            what: "curl -C -",
            program: "curl",
            args: s(&["-sS", "-f", "-C", "-", "-o", "OUT", &plain]),
            aria2: false,
            expect: (Some(0), "SPLICE (old prefix + new rest)"),
        },
        Row {
            what: "wget -c",
            program: "wget",
            args: s(&["-q", "-c", "-O", "OUT", &plain]),
            aria2: false,
            expect: (Some(0), "SPLICE (old prefix + new rest)"),
        },
        Row {
            what: "aria2c -c, no digest from the server",
            program: "aria2c",
            args: s(&aria2_args("DIR", "f.bin", &plain, &["-c"])),
            aria2: true,
            expect: (Some(0), "SPLICE (old prefix + new rest)"),
        },
        Row {
            what: "curl -C - -H 'If-Range: <old etag>'",
            program: "curl",
            args: s(&["-sS", "-f", "-C", "-", "-H", &if_range, "-o", "OUT", &plain]),
            aria2: false,
            expect: (Some(33), "partial file untouched"),
        },
        Row {
            what: "wget -c --header 'If-Range: <old etag>'",
            program: "wget",
            args: s(&["-q", "-c", "--header", &if_range, "-O", "OUT", &plain]),
            aria2: false,
            expect: (Some(0), "SPLICE (old prefix + new rest)"),
        },
        Row {
            what: "aria2c -c, Digest known",
            program: "aria2c",
            args: s(&aria2_args("DIR", "f.bin", &with_digest, &["-c"])),
            aria2: true,
            expect: (Some(32), "SPLICE (old prefix + new rest)"),
        },
        Row {
            what: "curl -f -C - URL?v=<etag>",
            program: "curl",
            args: s(&["-sS", "-f", "-C", "-", "-o", "OUT", &pinned]),
            aria2: false,
            expect: (Some(22), "partial file untouched"),
        },
        Row {
            what: "wget -c URL?v=<etag>",
            program: "wget",
            args: s(&["-q", "-c", "-O", "OUT", &pinned]),
            aria2: false,
            expect: (Some(8), "partial file untouched"),
        },
        Row {
            what: "aria2c -c URL?v=<etag>",
            program: "aria2c",
            args: s(&aria2_args("DIR", "f.bin", &pinned, &["-c"])),
            aria2: true,
            expect: (Some(22), "partial file untouched"),
        },
    ];
    let mut table = Vec::new();
    let mut wrong = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let dir = rows_dir(&format!("row{i}"));
        let out = dir.join("f.bin");
        let old_part = if row.aria2 {
            for f in ["f.bin", "f.bin.aria2"] {
                std::fs::copy(first.join(f), dir.join(f)).unwrap();
            }
            aria2_partial.clone()
        } else {
            std::fs::write(&out, &v1[..n]).unwrap();
            v1[..n].to_vec()
        };
        let args: Vec<String> = row
            .args
            .iter()
            .map(|a| match a.as_str() {
                "OUT" => out.to_str().unwrap().to_owned(),
                "DIR" => dir.to_str().unwrap().to_owned(),
                _ => a.clone(),
            })
            .collect();
        let (code, output) = run_owned(&dir, "client", row.program, &args);
        let got = std::fs::read(&out).unwrap_or_default();
        let what = outcome(&got, &old_part, &v1, &v2);
        if (Some(code), what) != row.expect {
            wrong.push(format!(
                "{}: exit {code}, {what}; expected {:?}\n{output}",
                row.what, row.expect
            ));
        }
        table.push(format!("| {:<42} | {:>4} | {:<30} |", row.what, code, what));
    }
    eprintln!(
        "resume after the file was replaced (same length, new content):\n\
         | client and protection                      | exit | file afterwards                |\n{}",
        table.join("\n")
    );
    assert!(
        wrong.is_empty(),
        "measured behaviour differs from the table:\n{}",
        wrong.join("\n")
    );
    eprintln!("promise table ({:?})", t.elapsed());
}

/// Uploads racing for one name (two cameras pushing `latest.jpg`): every
/// download's `Repr-Digest` is the digest of the bytes it carries, never
/// the digest of another upload that was published a moment before or
/// after, and the file left at the end carries its own.
#[test]
fn racing_uploads_never_lend_their_digest_to_another_version() {
    let t = Instant::now();
    let root = TempDir::new();
    let work = TempDir::new();
    std::fs::create_dir(root.path().join("in")).unwrap();
    let server = Server::start_with(
        root.path(),
        &[
            "--upload",
            "--anonymous-upload",
            "--max-uploads",
            "8",
            "--log-level",
            "info",
        ],
    );
    let addr = server.addr;
    let stop = Arc::new(AtomicBool::new(false));
    // Same length for all: the length cannot tell versions apart.
    let writers: Vec<_> = (0..3u64)
        .map(|k| {
            std::thread::spawn(move || {
                for i in 0..40u64 {
                    let body = pattern(8 * KIB, k * 1000 + i + 1);
                    let r = send(addr, "PUT", "/in/latest.jpg", &[], &body);
                    assert!(matches!(r.status, 201 | 204), "PUT: {}", r.status);
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                for _ in 0..100_000 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let r = get(addr, "/in/latest.jpg", &[]);
                    if let (200, Some(d)) = (r.status, r.header("repr-digest")) {
                        seen.push((d.to_owned(), r.body));
                    }
                }
                seen
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer");
    }
    stop.store(true, Ordering::SeqCst);
    let mut seen = Vec::new();
    for r in readers {
        seen.extend(r.join().expect("reader"));
    }
    // Each distinct body is checked once, by coreutils.
    seen.sort();
    seen.dedup();
    let mut wrong = 0;
    for (digest, body) in &seen {
        if *digest != repr_of(&sha256sum_bytes(work.path(), body)) {
            wrong += 1;
        }
    }
    assert!(
        seen.len() >= 5,
        "too few downloads carried a digest: {}",
        seen.len()
    );
    assert_eq!(
        wrong,
        0,
        "{wrong} of {} downloads carried another version's digest",
        seen.len()
    );
    let last = root.path().join("in/latest.jpg");
    let r = get(addr, "/in/latest.jpg", &[("Want-Repr-Digest", "sha-256=9")]);
    if let Some(d) = r.header("repr-digest") {
        assert_eq!(d, repr_of(&sha256sum(&last)), "the last file's digest");
    }
    eprintln!(
        "racing uploads: {} distinct downloads with a digest, all exact ({:?})",
        seen.len(),
        t.elapsed()
    );
}

/// A file deleted and created again with the same length and the same
/// mtime (a reproducible build's fixed timestamp, `tar -x`, `cp -p`) may get
/// the same inode number back (ext4 reuses it at once): its version then
/// looks the same, and the digest of the old bytes must still not be sent.
#[test]
fn a_recreated_file_with_the_same_inode_mtime_and_length_gets_no_old_digest() {
    use std::os::unix::fs::MetadataExt;
    let root = TempDir::new();
    let v1 = pattern(64 * KIB, 0x5EED1);
    let path = root.write("release.img", &v1);
    let fixed = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let set_mtime = |p: &Path| {
        let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
        f.set_modified(fixed).unwrap();
    };
    set_mtime(&path);
    let ino = std::fs::metadata(&path).unwrap().ino();
    let server = Server::start(root.path());
    let old = repr_of(&sha256sum(&path));
    assert_eq!(wait_for_digest(&server, "/release.img"), old);
    let etag1 = get(server.addr, "/release.img", &[("Range", "bytes=0-0")])
        .header("etag")
        .unwrap()
        .to_owned();

    let v2 = pattern(64 * KIB, 0x5EED2);
    let mut reused = false;
    // The server lets go of the old inode once it has noticed the last
    // connection close: until then the number cannot come back.
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(50));
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, &v2).unwrap();
        set_mtime(&path);
        if std::fs::metadata(&path).unwrap().ino() == ino {
            reused = true;
            break;
        }
    }
    let new = repr_of(&sha256sum(&path));
    let r = get(
        server.addr,
        "/release.img",
        &[("Want-Repr-Digest", "sha-256=9"), ("Range", "bytes=0-0")],
    );
    eprintln!(
        "recreated file: inode {} reused, ETag {} (the ETag is made of the same inputs)",
        if reused { "was" } else { "was not" },
        if r.header("etag") == Some(etag1.as_str()) {
            "unchanged"
        } else {
            "changed"
        }
    );
    assert_ne!(
        r.header("repr-digest"),
        Some(old.as_str()),
        "the old bytes' digest"
    );
    assert_eq!(wait_for_digest(&server, "/release.img"), new);
}
