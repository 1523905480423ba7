//! Kept file handles never serve a stale byte: a file replaced by rename,
//! rewritten in place, or a symlink swapped to point outside the root —
//! between two requests on the same keep-alive connection, and under a
//! concurrent loop — is never answered with old bytes under new validators,
//! new bytes under old ones, or a byte from outside the root. And the kept
//! handles stay bounded and are closed when idle.

mod support;

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{Conn, Response, Server, TempDir, eventually};

/// `len` bytes all equal to `v`: a torn or mixed body is visible at once.
fn version(v: u8, len: usize) -> Vec<u8> {
    vec![v; len]
}

fn etag(r: &Response) -> String {
    r.header("etag").expect("an ETag").to_owned()
}

/// Same connection, change in between: the second answer has the new bytes
/// and a new ETag — whatever the kind of change.
#[test]
fn every_change_between_two_requests_is_seen() {
    let dir = TempDir::new();
    let outside = TempDir::new();
    outside.write("secret.txt", b"SECRET");
    dir.write("www/f.txt", &version(b'a', 4096));
    dir.write("www/real.txt", b"real");
    let www = dir.path().join("www");
    std::os::unix::fs::symlink("real.txt", www.join("link.txt")).unwrap();
    // One worker: the second request surely meets the first one's handle.
    let server = Server::start_with(&www, &["--threads", "1"]);
    let mut c = Conn::open(server.addr);

    let first = c.request("GET", "/f.txt", &[]);
    assert_eq!(first.body, version(b'a', 4096));
    // Replaced by rename (what uploads, rsync and editors do).
    dir.write("www/.tmp", &version(b'b', 4096));
    std::fs::rename(www.join(".tmp"), www.join("f.txt")).unwrap();
    let second = c.request("GET", "/f.txt", &[]);
    assert_eq!(second.body, version(b'b', 4096), "old bytes after a rename");
    assert_ne!(etag(&first), etag(&second), "old validators after a rename");

    // Rewritten in place, same size, same second.
    std::fs::write(www.join("f.txt"), version(b'c', 4096)).unwrap();
    let third = c.request("GET", "/f.txt", &[]);
    assert_eq!(third.body, version(b'c', 4096), "old bytes after a rewrite");
    assert_ne!(
        etag(&second),
        etag(&third),
        "old validators after a rewrite"
    );

    // Truncated.
    std::fs::write(www.join("f.txt"), b"short").unwrap();
    let fourth = c.request("GET", "/f.txt", &[]);
    assert_eq!(fourth.body, b"short");

    // A symlink swapped to a file outside the root: never served.
    assert_eq!(c.request("GET", "/link.txt", &[]).body, b"real");
    std::fs::remove_file(www.join("link.txt")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), www.join("link.txt")).unwrap();
    let swapped = c.request("GET", "/link.txt", &[]);
    assert_eq!(
        swapped.status, 404,
        "a link leading outside the root was served"
    );
    assert!(!swapped.body.windows(6).any(|w| w == b"SECRET"));

    // Removed.
    std::fs::remove_file(www.join("f.txt")).unwrap();
    assert_eq!(c.request("GET", "/f.txt", &[]).status, 404);
}

fn mtime_ns(m: &std::fs::Metadata) -> u128 {
    m.mtime() as u128 * 1_000_000_000 + m.mtime_nsec() as u128
}

/// The version an ETag (`"<size>-<mtime ns>-<inode>"`, hex) names.
fn etag_version(etag: &str) -> (u64, u128) {
    let fields: Vec<&str> = etag.trim_matches('"').split('-').collect();
    (
        u64::from_str_radix(fields[2], 16).unwrap(),
        u128::from_str_radix(fields[1], 16).unwrap(),
    )
}

/// Readers loop while a writer replaces the file by rename and swaps a
/// symlink in and out of the root. The writer records which content each
/// version (inode, mtime) holds; every answer's body must be exactly the
/// content of the version its ETag names — never old bytes with new
/// validators or the reverse — and no body is the secret.
#[test]
fn a_concurrent_loop_never_mixes_versions() {
    const LEN: usize = 4096;
    let dir = TempDir::new();
    let outside = TempDir::new();
    outside.write("secret.txt", &version(b'S', LEN));
    let www = dir.path().join("www");
    dir.write("www/f.bin", &version(b'0', LEN));
    dir.write("www/inside.bin", &version(b'i', LEN));
    std::os::unix::fs::symlink("inside.bin", www.join("l.bin")).unwrap();
    let server = Server::start(&www);
    let stop = Arc::new(AtomicBool::new(false));
    let truth: Arc<Mutex<HashMap<(u64, u128), u8>>> = Arc::default();
    let first = std::fs::metadata(www.join("f.bin")).unwrap();
    truth
        .lock()
        .unwrap()
        .insert((first.ino(), mtime_ns(&first)), b'0');

    let writer = {
        let (www, secret, stop) = (
            www.clone(),
            outside.path().join("secret.txt"),
            Arc::clone(&stop),
        );
        let truth = Arc::clone(&truth);
        std::thread::spawn(move || {
            let mut n = 0u32;
            let start = Instant::now();
            while !stop.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(10) {
                n += 1;
                let v = b'0' + (n % 10) as u8;
                let tmp = www.join(format!(".t{}", n % 2));
                std::fs::write(&tmp, version(v, LEN)).unwrap();
                let m = std::fs::metadata(&tmp).unwrap();
                truth.lock().unwrap().insert((m.ino(), mtime_ns(&m)), v);
                std::fs::rename(&tmp, www.join("f.bin")).unwrap();
                let link = www.join(".l");
                let _ = std::fs::remove_file(&link);
                if n.is_multiple_of(2) {
                    std::os::unix::fs::symlink(&secret, &link).unwrap();
                } else {
                    std::os::unix::fs::symlink("inside.bin", &link).unwrap();
                }
                std::fs::rename(&link, www.join("l.bin")).unwrap();
                std::thread::sleep(Duration::from_micros(500));
            }
            n
        })
    };

    let readers: Vec<_> = (0..3)
        .map(|_| {
            let addr = server.addr;
            let truth = Arc::clone(&truth);
            std::thread::spawn(move || {
                let mut seen: HashMap<String, u8> = HashMap::new();
                let mut c = Conn::open(addr);
                let (mut answers, mut links) = (0, 0);
                let start = Instant::now();
                while start.elapsed() < Duration::from_secs(3) {
                    // A connection serves --max-requests (1000) requests.
                    if answers % 400 == 399 {
                        c = Conn::open(addr);
                    }
                    let r = c.request("GET", "/f.bin", &[]);
                    assert_eq!(r.status, 200);
                    assert_eq!(r.body.len(), LEN);
                    let v = r.body[0];
                    assert!(r.body.iter().all(|&b| b == v), "a body mixing two versions");
                    // The bytes are those of the version the ETag names.
                    let named = truth.lock().unwrap().get(&etag_version(&etag(&r))).copied();
                    assert_eq!(
                        named,
                        Some(v),
                        "ETag {} served with the bytes of another version",
                        etag(&r)
                    );
                    seen.insert(etag(&r), v);
                    let l = c.request("GET", "/l.bin", &[]);
                    match l.status {
                        200 => {
                            assert_eq!(l.body, version(b'i', LEN), "a byte from outside the root");
                            links += 1;
                        }
                        404 => {}
                        s => panic!("link answered {s}"),
                    }
                    answers += 1;
                }
                (answers, links, seen.len())
            })
        })
        .collect();
    let results: Vec<_> = readers.into_iter().map(|t| t.join().unwrap()).collect();
    stop.store(true, Ordering::Relaxed);
    let rewrites = writer.join().unwrap();
    eprintln!("{rewrites} replacements; readers (answers, link hits, versions seen): {results:?}");
    for (answers, links, versions) in results {
        assert!(
            answers > 100 && links > 0 && versions > 3,
            "the loop did not exercise changes"
        );
    }
}

/// Kept handles are bounded per worker, and closed when unused for a few
/// seconds (a replaced file's disk space must not stay allocated).
#[test]
fn kept_handles_are_bounded_and_closed_when_idle() {
    let dir = TempDir::new();
    for i in 0..100 {
        dir.write(&format!("f{i}.txt"), b"x");
    }
    let server = Server::start_with(dir.path(), &["--threads", "2"]);
    let base = server.file_fds();
    let mut c = Conn::open(server.addr);
    for i in 0..100 {
        assert_eq!(c.request("GET", &format!("/f{i}.txt"), &[]).status, 200);
    }
    let kept = server.file_fds() - base;
    assert!(
        kept > 0 && kept <= 2 * ranged::open_cache::CAPACITY,
        "kept {kept} file handles"
    );
    drop(c);
    let closed = eventually(ranged::open_cache::IDLE + Duration::from_secs(3), || {
        server.file_fds() == base
    });
    assert!(
        closed,
        "idle handles not closed: {} > {base}",
        server.file_fds()
    );
}

/// A file deleted and made again with the same length and its old mtime
/// restored (`tar -x`, `cp -p`) — where ext4 hands the freed inode number
/// out again at once — is a new version: a resume with the old ETag gets
/// the whole new file, a pinned link stops, never a splice.
#[test]
fn a_recreated_file_with_restored_mtime_is_a_new_version() {
    let dir = TempDir::new();
    let path = dir.write("img.bin", &version(b'o', 8192));
    let server = Server::start(dir.path());
    let old = support::get(server.addr, "/img.bin", &[]);
    let old_etag = etag(&old);
    // A kept handle keeps the inode (and its number) alive: recreate the
    // file while no server holds it, as after a restart.
    drop(server);
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    let ino = std::fs::metadata(&path).unwrap().ino();
    let mut same_inode = false;
    // Bounded: a few tries to be handed the same inode number again.
    for _ in 0..20 {
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, version(b'n', 8192)).unwrap();
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(mtime).unwrap();
        if std::fs::metadata(&path).unwrap().ino() == ino {
            same_inode = true;
            break;
        }
    }
    eprintln!("inode number reused: {same_inode}");
    assert!(
        same_inode,
        "ext4 did not hand the inode number out again; the test proves nothing"
    );
    let server = Server::start(dir.path());
    let new = support::get(server.addr, "/img.bin", &[]);
    assert_eq!(new.body, version(b'n', 8192));
    assert_ne!(etag(&new), old_etag, "the new file kept the old ETag");
    let resumed = support::get(
        server.addr,
        "/img.bin",
        &[("Range", "bytes=4096-"), ("If-Range", &old_etag)],
    );
    assert_eq!(resumed.status, 200, "a resume with the old ETag spliced");
    assert_eq!(resumed.body, version(b'n', 8192));
    let pin = format!("/img.bin?v={}", old_etag.trim_matches('"'));
    let pinned = support::get(server.addr, &pin, &[("Range", "bytes=4096-")]);
    assert_eq!(pinned.status, 412, "a pinned link passed on the new file");
}
