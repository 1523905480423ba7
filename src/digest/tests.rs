//! Tests of the digest store with real files: digests equal `sha256sum`'s, a
//! changed file never gets an old digest, a restart reads the xattr instead
//! of hashing, and clients can never make more than one hash run at a time.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use super::hasher::{Abandon, BUF_SIZE, Stamp, hash_file};
use super::*;

/// A directory removed on drop, on a file system where `user.` xattrs work
/// (the system temp dir if it has them, else one under `target/`).
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "ranged-digest-{tag}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        for base in [
            std::env::temp_dir(),
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tmp"),
        ] {
            let dir = base.join(&name);
            std::fs::create_dir_all(&dir).expect("create temp dir");
            let dir = TempDir(std::fs::canonicalize(&dir).expect("canonicalize"));
            let probe = dir.write("probe", b"x");
            let f = File::open(&probe).expect("open probe");
            let works = sys::set_xattr(f.as_raw_fd(), c"user.ranged.probe", b"1").is_ok();
            std::fs::remove_file(&probe).expect("remove probe");
            if works {
                return dir;
            }
        }
        panic!("no temp dir with user xattrs");
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn write(&self, rel: &str, contents: &[u8]) -> PathBuf {
        let path = self.0.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(&path, contents).expect("write file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Deterministic bytes that differ from one file to the next (xorshift).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// What `sha256sum` says, as bytes.
fn sha256sum(path: &Path) -> [u8; 32] {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("run sha256sum");
    assert!(out.status.success());
    let hex = out.stdout.get(..64).expect("64 hex digits");
    let mut d = [0u8; 32];
    for (b, pair) in d.iter_mut().zip(hex.chunks_exact(2)) {
        *b = (nibble(pair[0]).unwrap() << 4) | nibble(pair[1]).unwrap();
    }
    d
}

fn open(path: &Path) -> (File, Metadata) {
    let f = File::open(path).expect("open");
    let m = f.metadata().expect("fstat");
    (f, m)
}

/// Polls `done` every 10 ms for at most 60 s.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Nothing queued and nothing being hashed.
fn idle(d: &Digests) -> bool {
    let q = lock(&d.shared.queue);
    q.jobs.is_empty() && q.current.is_none()
}

/// Sets the file's mtime `secs` seconds into the past, so that its version
/// differs from what a write now gives it.
fn age(path: &Path, secs: u64) {
    let f = OpenOptions::new().write(true).open(path).expect("open");
    f.set_modified(SystemTime::now() - Duration::from_secs(secs))
        .expect("set mtime");
}

fn persisted(file: &File) -> Option<Vec<u8>> {
    let mut buf = [0u8; RECORD_MAX];
    let n = sys::get_xattr(file.as_raw_fd(), XATTR_NAME, &mut buf).ok()?;
    Some(buf[..n].to_vec())
}

const V: Version = Version {
    dev: 0x803,
    ino: 131,
    size: 1_048_577,
    mtime_sec: 1_700_000_000,
    mtime_nsec: 123_456_789,
};

const D: [u8; 32] = [
    0x00, 0x01, 0x7f, 0x80, 0xff, 0xa5, 0x5a, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90,
    0xa0, 0xb0, 0xc0, 0xd0, 0xe0, 0xf0, 0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78, 0x87, 0x96,
];

#[test]
fn record_round_trip_and_refusals() {
    let (buf, len) = format_record(&V, &D);
    let record = std::str::from_utf8(&buf[..len]).unwrap();
    assert_eq!(
        record,
        "1 1048577 1700000000 123456789 131 \
         00017f80ffa55a102030405060708090a0b0c0d0e0f00f1e2d3c4b5a69788796"
    );
    assert_eq!(record_digest(record.as_bytes(), &V), Some(D));
    // The device is not part of the record: a new device number after a
    // reboot keeps the digest.
    assert_eq!(
        record_digest(record.as_bytes(), &Version { dev: 9, ..V }),
        Some(D)
    );

    // Any other version: stale, never served.
    for other in [
        Version { ino: 132, ..V },
        Version {
            size: 1_048_576,
            ..V
        },
        Version {
            mtime_sec: 1_700_000_001,
            ..V
        },
        Version {
            mtime_nsec: 123_456_788,
            ..V
        },
    ] {
        assert_eq!(record_digest(record.as_bytes(), &other), None, "{other:?}");
    }

    // Extremes fit and come back.
    let far = Version {
        dev: u64::MAX,
        ino: u64::MAX,
        size: u64::MAX,
        mtime_sec: i64::MIN,
        mtime_nsec: i64::MIN,
    };
    let (buf, len) = format_record(&far, &D);
    assert!(len < RECORD_MAX);
    assert_eq!(record_digest(&buf[..len], &far), Some(D));
    let before_1970 = Version {
        mtime_sec: -1,
        mtime_nsec: 0,
        ..V
    };
    let (buf, len) = format_record(&before_1970, &D);
    assert_eq!(record_digest(&buf[..len], &before_1970), Some(D));

    let hex = "00017f80ffa55a102030405060708090a0b0c0d0e0f00f1e2d3c4b5a69788796";
    let malformed = [
        String::new(),
        format!("2 1048577 1700000000 123456789 131 {hex}"),
        format!("1  1048577 1700000000 123456789 131 {hex}"),
        format!("1 +1048577 1700000000 123456789 131 {hex}"),
        format!("1 1048577 1700000000 123456789 131 {hex} "),
        format!("1 1048577 1700000000 123456789 131 {hex} x"),
        format!("1 1048577 1700000000 123456789 {hex}"),
        format!("1 1048577 1700000000 123456789 131 {}", hex.to_uppercase()),
        format!("1 1048577 1700000000 123456789 131 {}", &hex[..62]),
        format!("1 1048577 1700000000 123456789 131 {hex}00"),
        format!("1 1048577 1700000000 123456789 131 {}g", &hex[..63]),
        format!("1 1048577 --1700000000 123456789 131 {hex}"),
        format!("1 99999999999999999999999 1700000000 123456789 131 {hex}"),
        format!("1 1048577 1700000000 123456789 131 {}é", &hex[..62]),
    ];
    for m in &malformed {
        assert_eq!(record_digest(m.as_bytes(), &V), None, "{m:?}");
    }
    assert_eq!(record_digest(b"1 1048577 \xff", &V), None);
}

/// SHA-256 of the empty string (FIPS 180-4 test vector).
const EMPTY: [u8; 32] = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

#[test]
fn field_values() {
    assert_eq!(
        repr_digest_value(&EMPTY),
        "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"
    );
    assert_eq!(
        legacy_digest_value(&EMPTY),
        "SHA-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    );
}

#[test]
fn mode_spellings() {
    assert_eq!(Mode::parse("off"), Some(Mode::Off));
    assert_eq!(Mode::parse("on-demand"), Some(Mode::OnDemand));
    assert_eq!(Mode::parse("eager"), Some(Mode::Eager));
    assert_eq!(Mode::parse("Eager"), None);
    assert_eq!(Mode::parse(""), None);
    assert_eq!(Mode::default(), Mode::OnDemand);
}

#[test]
fn digests_equal_sha256sum() {
    let dir = TempDir::new("sizes");
    let sizes = [0, 1, 1 << 20, (1 << 20) + 1, 10 << 20];
    let paths: Vec<PathBuf> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| dir.write(&format!("f{i}"), &noise(n, i as u64 + 7)))
        .collect();
    let digests = Digests::new(Mode::OnDemand, dir.path());
    for p in &paths {
        let (f, m) = open(p);
        assert_eq!(digests.known(&f, &m), None, "nothing known before hashing");
        digests.request(p.clone(), Version::of(&m));
    }
    wait_until("all hashed", || {
        digests.stats().hashed == sizes.len() as u64
    });
    for p in &paths {
        let (f, m) = open(p);
        let want = sha256sum(p);
        assert_eq!(digests.known(&f, &m), Some(want), "{}", p.display());
        // Persisted on the file, for exactly this version.
        let record = persisted(&f).expect("xattr written");
        assert_eq!(record_digest(&record, &Version::of(&m)), Some(want));
    }
    let s = digests.stats();
    assert_eq!((s.discarded, s.dropped, s.peak_hashing), (0, 0, 1));
}

#[test]
fn changed_files_never_get_the_old_digest() {
    let dir = TempDir::new("changes");
    let rewrite = dir.write("rewrite", &noise(5000, 1));
    let replace = dir.write("replace", &noise(5000, 2));
    let truncate = dir.write("truncate", &noise(5000, 3));
    let touched = dir.write("touched", &noise(5000, 4));
    for p in [&rewrite, &replace, &truncate, &touched] {
        age(p, 60);
    }
    let digests = Digests::new(Mode::OnDemand, dir.path());
    let mut old = Vec::new();
    for p in [&rewrite, &replace, &truncate, &touched] {
        let (f, m) = open(p);
        digests.remember(&f, &m, sha256sum(p));
        assert_eq!(digests.known(&f, &m), Some(sha256sum(p)));
        old.push((f, m));
    }

    // Same size, new bytes, new mtime; the xattr stays on the inode.
    std::fs::write(&rewrite, noise(5000, 11)).unwrap();
    // A new file renamed over the old name.
    let tmp = dir.write("replace.tmp", &noise(5000, 12));
    std::fs::rename(&tmp, &replace).unwrap();
    // Cut short in place.
    OpenOptions::new()
        .write(true)
        .open(&truncate)
        .unwrap()
        .set_len(4000)
        .unwrap();
    // Only the mtime changes (`touch`).
    age(&touched, 30);

    let restarted = Digests::new(Mode::OnDemand, dir.path());
    for (i, p) in [&rewrite, &replace, &truncate, &touched].iter().enumerate() {
        let (f, m) = open(p);
        assert_ne!(Version::of(&m), Version::of(&old[i].1), "{}", p.display());
        assert_eq!(digests.known(&f, &m), None, "{}", p.display());
        assert_eq!(
            restarted.known(&f, &m),
            None,
            "after restart: {}",
            p.display()
        );
    }
    // The replaced file's old handle is still that old version.
    let (f, m) = &old[1];
    assert!(digests.known(f, m).is_some());
}

#[test]
fn persisted_digest_of_another_version_is_ignored() {
    let dir = TempDir::new("stale");
    let path = dir.write("f", b"hello\n");
    let (f, m) = open(&path);
    let v = Version::of(&m);
    let real = sha256sum(&path);
    for (other, expect) in [
        (
            Version {
                size: v.size + 1,
                ..v
            },
            None,
        ),
        (
            Version {
                ino: v.ino + 1,
                ..v
            },
            None,
        ),
        (
            Version {
                mtime_sec: v.mtime_sec - 1,
                ..v
            },
            None,
        ),
        (
            Version {
                mtime_nsec: (v.mtime_nsec + 1) % 1_000_000_000,
                ..v
            },
            None,
        ),
        (v, Some(real)),
    ] {
        let (record, len) = format_record(&other, &real);
        sys::set_xattr(f.as_raw_fd(), XATTR_NAME, &record[..len]).unwrap();
        // A fresh store each time: nothing cached from the previous row.
        let digests = Digests::new(Mode::OnDemand, dir.path());
        assert_eq!(digests.known(&f, &m), expect, "record for {other:?}");
        assert_eq!(digests.stats().from_xattr, u64::from(expect.is_some()));
    }
    sys::set_xattr(f.as_raw_fd(), XATTR_NAME, b"not a record").unwrap();
    assert_eq!(Digests::new(Mode::OnDemand, dir.path()).known(&f, &m), None);
}

/// A change between two buffers abandons the hash, including one that puts
/// mtime and size back (only the ctime tells).
#[test]
fn a_change_during_hashing_abandons_the_hash() {
    let dir = TempDir::new("during");
    let len = 3 * BUF_SIZE + 5;
    let mut buf = vec![0u8; BUF_SIZE];

    type Change = fn(&Path);
    let changes: [(&str, Change); 4] = [
        ("append", |p| {
            let mut f = OpenOptions::new().append(true).open(p).unwrap();
            f.write_all(b"more").unwrap();
        }),
        ("overwrite", |p| {
            let f = OpenOptions::new().write(true).open(p).unwrap();
            f.write_all_at(b"XXXX", 10).unwrap();
        }),
        ("truncate", |p| {
            OpenOptions::new()
                .write(true)
                .open(p)
                .unwrap()
                .set_len(7)
                .unwrap();
        }),
        ("overwrite, mtime restored", |p| {
            let before = std::fs::metadata(p).unwrap().modified().unwrap();
            let f = OpenOptions::new().write(true).open(p).unwrap();
            f.write_all_at(b"XXXX", 10).unwrap();
            f.set_modified(before).unwrap();
        }),
    ];
    for (what, change) in changes {
        let path = dir.write(what, &noise(len, 5));
        let (mut f, m) = open(&path);
        let start = Stamp::of(&m);
        let mut calls = 0;
        let r = hash_file(&mut f, &start, &mut buf, || {
            calls += 1;
            if calls == 1 {
                change(&path);
            }
            true
        });
        assert!(matches!(r, Err(Abandon::Changed)), "{what}: {r:?}");
        assert_eq!(calls, 1, "{what}: abandoned at the first check");
    }

    // Unchanged, the same function gives sha256sum's answer.
    let path = dir.write("unchanged", &noise(len, 5));
    let (mut f, m) = open(&path);
    let r = hash_file(&mut f, &Stamp::of(&m), &mut buf, || true);
    assert_eq!(r.ok(), Some(sha256sum(&path)));
    // And stops when told to.
    let (mut f, m) = open(&path);
    let r = hash_file(&mut f, &Stamp::of(&m), &mut buf, || false);
    assert!(matches!(r, Err(Abandon::Stopped)));
}

/// The same through the background thread: a big file modified while the
/// hasher reads it gets no digest, neither for the old nor the new version.
#[test]
fn a_file_changed_while_the_hasher_reads_it_gets_no_digest() {
    let dir = TempDir::new("during-bg");
    let path = dir.path().join("big");
    let f = File::create(&path).unwrap();
    f.set_len(2 << 30).unwrap(); // sparse: takes no disk, reads as zeros
    drop(f);
    let digests = Digests::new(Mode::OnDemand, dir.path());
    let (f, old) = open(&path);
    digests.request(path.clone(), Version::of(&old));
    wait_until("the hash starts", || digests.stats().hashing == 1);
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .write_all_at(b"changed", 1 << 30)
        .unwrap();
    wait_until("the job ends", || {
        idle(&digests) && digests.stats().hashing == 0
    });
    let s = digests.stats();
    assert_eq!((s.hashed, s.discarded), (0, 1), "{s:?}");
    let (f2, new) = open(&path);
    assert_eq!(digests.known(&f, &old), None);
    assert_eq!(digests.known(&f2, &new), None);
    assert_eq!(persisted(&f2), None, "nothing persisted");
}

#[test]
fn a_restart_reads_the_xattr_instead_of_hashing() {
    let dir = TempDir::new("restart");
    let a = dir.write("a.bin", &noise(300_000, 21));
    let b = dir.write("sub/b.bin", &noise(70_000, 22));
    let first = Digests::new(Mode::OnDemand, dir.path());
    for p in [&a, &b] {
        let (_, m) = open(p);
        first.request(p.clone(), Version::of(&m));
    }
    wait_until("both hashed", || first.stats().hashed == 2);
    drop(first);

    let second = Digests::new(Mode::OnDemand, dir.path());
    for p in [&a, &b] {
        let (f, m) = open(p);
        assert_eq!(second.known(&f, &m), Some(sha256sum(p)));
    }
    // From the cache now: the xattr is read once per file.
    let (f, m) = open(&a);
    assert!(second.known(&f, &m).is_some());
    let s = second.stats();
    assert_eq!((s.hashed, s.from_xattr), (0, 2), "{s:?}");

    // An eager walk after a restart finds both persisted: nothing rehashed.
    let eager = Digests::new(Mode::Eager, dir.path());
    wait_until("the walk ends", || !eager.stats().walking && idle(&eager));
    let s = eager.stats();
    assert_eq!((s.hashed, s.from_xattr), (0, 2), "{s:?}");
}

#[test]
fn remember_persists_without_hashing() {
    let dir = TempDir::new("remember");
    let p = dir.write("upload.bin", &noise(10_000, 31));
    let digests = Digests::new(Mode::OnDemand, dir.path());
    let (f, m) = open(&p);
    digests.remember(&f, &m, sha256sum(&p));
    // A request for a known version is not even queued.
    digests.request(p.clone(), Version::of(&m));
    assert!(idle(&digests));
    let restarted = Digests::new(Mode::OnDemand, dir.path());
    assert_eq!(restarted.known(&f, &m), Some(sha256sum(&p)));
    assert_eq!(digests.stats().hashed + restarted.stats().hashed, 0);
}

/// A cached digest is only taken while the inode's ctime is the one it was
/// known for; past a change, only a record in the xattr vouches for it. A
/// recreated file that got the same inode number, length and mtime back has
/// a new ctime and no record (simulated by spoiling the record, which moves
/// the ctime on too); a chmod or our own xattr write leaves the record.
#[test]
fn a_changed_inode_needs_the_xattr_to_vouch_for_a_cached_digest() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("ctime");
    // (what happens to the inode after the digest is known, still known)
    let cases: &[(&str, bool)] = &[
        ("nothing", true),
        ("chmod", true),
        (
            "another file under the same number: no record of its own",
            false,
        ),
    ];
    for (i, &(change, still_known)) in cases.iter().enumerate() {
        let p = dir.write(&format!("c{i}"), &noise(4096, 40 + i as u64));
        let digests = Digests::new(Mode::OnDemand, dir.path());
        let (f, m) = open(&p);
        digests.remember(&f, &m, sha256sum(&p));
        std::thread::sleep(Duration::from_millis(20));
        match change {
            "nothing" => {}
            "chmod" => {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod")
            }
            _ => sys::set_xattr(f.as_raw_fd(), XATTR_NAME, b"1 0 0 0 0 garbage").expect("xattr"),
        }
        let now = f.metadata().expect("fstat");
        assert_eq!(Version::of(&now), Version::of(&m), "{change}: same version");
        let want = still_known.then(|| sha256sum(&p));
        assert_eq!(digests.known(&f, &now), want, "{change}");
        // Asked again, the answer holds (the cache follows the new ctime).
        assert_eq!(digests.known(&f, &now), want, "{change}, twice");
    }
}

/// 1,000 requests for 1,000 files: one hash at a time, a queue that never
/// holds more than its bound (nor reallocates), the rest dropped.
#[test]
fn a_thousand_requests_hash_one_at_a_time_within_the_bound() {
    let dir = TempDir::new("flood");
    let files: Vec<(PathBuf, Version)> = (0..1000)
        .map(|i| {
            let p = dir.write(&format!("d{}/f{i}", i % 10), &noise(64 + i, i as u64));
            let (_, m) = open(&p);
            (p, Version::of(&m))
        })
        .collect();
    // The first file changed just now: the hasher waits for it to settle
    // (hasher::SETTLE, 2 s) while the other 999 requests arrive.
    let mut files = files;
    std::fs::write(&files[0].0, b"rewritten").unwrap();
    files[0].1 = Version::of(&open(&files[0].0).1);
    let digests = Digests::new(Mode::OnDemand, dir.path());
    let capacity = lock(&digests.shared.queue).jobs.capacity();
    for (p, v) in &files {
        digests.request(p.clone(), *v);
        let q = lock(&digests.shared.queue);
        assert!(q.jobs.len() <= QUEUE_MAX);
        assert_eq!(q.jobs.capacity(), capacity, "the queue never grows");
    }
    // Asking again for what is queued, being hashed or known changes nothing.
    let before = digests.stats();
    for (p, v) in files.iter().take(QUEUE_MAX) {
        digests.request(p.clone(), *v);
    }
    let after = digests.stats();
    assert_eq!(after.dropped, before.dropped, "duplicates are not queued");
    assert!(after.queued <= before.queued);
    wait_until("the queue drains", || idle(&digests));
    let s = digests.stats();
    assert_eq!(s.peak_hashing, 1, "{s:?}");
    assert_eq!(s.hashed + s.dropped + s.discarded, 1000, "{s:?}");
    // At most the one being hashed plus a full queue got through.
    assert!(s.hashed <= 1 + QUEUE_MAX as u64, "{s:?}");
    assert!(s.dropped >= 1000 - 1 - QUEUE_MAX as u64, "{s:?}");
    for (p, v) in files.iter().take(3) {
        let (f, m) = open(p);
        assert_eq!(Version::of(&m), *v);
        assert_eq!(digests.known(&f, &m), Some(sha256sum(p)));
    }
}

#[test]
fn eager_walk_skips_dotfiles_state_and_symlinks() {
    let outside = TempDir::new("outside");
    let secret = outside.write("secret", b"outside the root");
    let dir = TempDir::new("eager");
    let a = dir.write("a.txt", b"a");
    let b = dir.write("x/y/b.txt", b"b");
    let hidden = dir.write(".hidden", b"h");
    let state = dir.write(".ranged/upload.part", b"p");
    let in_hidden_dir = dir.write(".git/config", b"c");
    std::os::unix::fs::symlink(&secret, dir.path().join("link")).unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("linkdir")).unwrap();

    let digests = Digests::new(Mode::Eager, dir.path());
    assert!(digests.stats().walking);
    wait_until("the walk ends", || {
        !digests.stats().walking && idle(&digests)
    });
    assert_eq!(digests.stats().hashed, 2);
    for p in [&a, &b] {
        let (f, m) = open(p);
        assert_eq!(digests.known(&f, &m), Some(sha256sum(p)));
    }
    for p in [&hidden, &state, &in_hidden_dir, &secret] {
        let (f, m) = open(p);
        assert_eq!(digests.known(&f, &m), None, "{}", p.display());
        assert_eq!(persisted(&f), None, "{}", p.display());
    }
}

#[test]
fn the_request_path_helper_follows_the_mode() {
    let dir = TempDir::new("policy");
    let p = dir.write("f", b"data");
    let (f, m) = open(&p);
    let asks = Wants::parse([], ["SHA-256"]);

    let on_demand = Digests::new(Mode::OnDemand, dir.path());
    assert_eq!(
        on_demand.for_response(&f, &m, || Some(p.clone()), Wants::NONE),
        None
    );
    assert!(idle(&on_demand), "nobody asked: nothing queued");
    assert_eq!(
        on_demand.for_response(&f, &m, || Some(p.clone()), asks),
        None
    );
    assert!(!idle(&on_demand), "asked: queued");
    wait_until("hashed", || on_demand.stats().hashed == 1);
    assert_eq!(
        on_demand.for_response(&f, &m, || Some(p.clone()), Wants::NONE),
        Some(sha256sum(&p))
    );

    let eager = Digests::new(Mode::Eager, dir.path());
    wait_until("the walk ends", || !eager.stats().walking && idle(&eager));
    let q = dir.write("new", b"new file");
    let (fq, mq) = open(&q);
    assert_eq!(
        eager.for_response(&fq, &mq, || Some(q.clone()), Wants::NONE),
        None
    );
    assert!(!idle(&eager), "eager: queued without being asked");
}

#[test]
fn off_does_nothing_at_all() {
    let dir = TempDir::new("off");
    let p = dir.write("f", b"data");
    let (f, m) = open(&p);
    let (record, len) = format_record(&Version::of(&m), &sha256sum(&p));
    sys::set_xattr(f.as_raw_fd(), XATTR_NAME, &record[..len]).unwrap();
    let off = Digests::new(Mode::Off, dir.path());
    assert_eq!(off.known(&f, &m), None, "not even the xattr is read");
    off.request(p.clone(), Version::of(&m));
    let asks = Wants::parse(["sha-256=9"], ["SHA-256"]);
    assert_eq!(off.for_response(&f, &m, || Some(p.clone()), asks), None);
    off.remember(&f, &m, [0; 32]);
    assert_eq!(off.known(&f, &m), None);
    assert_eq!(
        persisted(&f).as_deref(),
        Some(&record[..len]),
        "xattr untouched"
    );
    assert!(idle(&off));
    assert_eq!(off.stats(), Stats::default());
    assert_eq!(
        Arc::strong_count(&off.shared),
        1,
        "no thread holds the store"
    );
}

/// Dropping the store stops the hasher between two buffers, even mid-file.
#[test]
fn dropping_the_store_stops_the_hasher() {
    let dir = TempDir::new("drop");
    let path = dir.path().join("big");
    File::create(&path).unwrap().set_len(4 << 30).unwrap();
    let digests = Digests::new(Mode::OnDemand, dir.path());
    let (f, m) = open(&path);
    digests.request(path.clone(), Version::of(&m));
    wait_until("the hash starts", || digests.stats().hashing == 1);
    let shared = Arc::clone(&digests.shared);
    drop(digests);
    let dropped = Instant::now();
    wait_until("the thread ends", || Arc::strong_count(&shared) == 1);
    assert!(dropped.elapsed() < Duration::from_secs(5));
    assert_eq!(shared.hashed.load(Ordering::Relaxed), 0);
    assert_eq!(persisted(&f), None);
}

/// Hashing speed on a page-cached 1 GiB file against `sha256sum`, for the
/// three buffer sizes, and of a buffer in memory (no `read`). `cargo test --release --lib digest::tests::throughput
/// -- --ignored --nocapture`.
#[test]
#[ignore]
fn throughput() {
    let dir = TempDir::new("speed");
    let path = dir.path().join("1g");
    {
        let mut f = File::create(&path).unwrap();
        let chunk = noise(1 << 20, 99);
        for _ in 0..1024 {
            f.write_all(&chunk).unwrap();
        }
    }
    let want = sha256sum(&path); // also warms the page cache
    let gb = (1u64 << 30) as f64 / 1e9;
    let block = noise(64 << 20, 98);
    for _ in 0..3 {
        use sha2::Digest;
        let t = Instant::now();
        std::hint::black_box(sha2::Sha256::digest(&block));
        let s = t.elapsed().as_secs_f64();
        println!("in memory, 64 MiB: {:.2} GB/s", (64 << 20) as f64 / 1e9 / s);
        let t = Instant::now();
        sha256sum(&path);
        let s = t.elapsed().as_secs_f64();
        println!("sha256sum: {s:.3} s, {:.2} GB/s", gb / s);
        for size in [64 << 10, 256 << 10, 1 << 20] {
            let mut buf = vec![0u8; size];
            let (mut f, m) = open(&path);
            f.seek(SeekFrom::Start(0)).unwrap();
            let t = Instant::now();
            let got = hash_file(&mut f, &Stamp::of(&m), &mut buf, || true).unwrap();
            let s = t.elapsed().as_secs_f64();
            assert_eq!(got, want);
            println!(
                "hash_file, {:4} KiB buffer: {s:.3} s, {:.2} GB/s",
                size >> 10,
                gb / s
            );
        }
    }
}

/// The cache holds at most `CACHE_MAX` digests, whatever is served: the
/// newest is kept, one older entry goes.
#[test]
fn the_cache_is_bounded() {
    let dir = TempDir::new("bounded");
    let d = Digests::new(Mode::OnDemand, dir.path());
    let version = |ino: u64| Version {
        dev: 1,
        ino,
        size: 1,
        mtime_sec: 0,
        mtime_nsec: 0,
    };
    let mut known = lock(&d.shared.known);
    for ino in 0..=CACHE_MAX as u64 {
        known.insert(version(ino), (0, 0), [7; 32]);
    }
    assert_eq!(known.map.len(), CACHE_MAX);
    assert!(known.map.contains_key(&version(CACHE_MAX as u64)));
}

/// A device that cannot hold the xattr is remembered (at most
/// `NO_XATTR_DEVICES_MAX` of them) and its files' xattrs are not read
/// again: a valid record there goes unread.
#[test]
fn devices_without_xattrs_are_remembered_and_bounded() {
    let dir = TempDir::new("noxattr");
    let p = dir.write("f", b"data");
    let (f, m) = open(&p);
    let (record, len) = format_record(&Version::of(&m), &sha256sum(&p));
    sys::set_xattr(f.as_raw_fd(), XATTR_NAME, &record[..len]).unwrap();
    let d = Digests::new(Mode::OnDemand, dir.path());
    let unsupported = io::Error::from_raw_os_error(95); // EOPNOTSUPP
    d.shared.no_xattr(m.dev(), &unsupported);
    assert_eq!(
        d.known(&f, &m),
        None,
        "the xattr was read on a no-xattr device"
    );
    for dev in 1..=NO_XATTR_DEVICES_MAX as u64 + 1 {
        d.shared.no_xattr(m.dev() ^ (dev << 32), &unsupported);
    }
    assert_eq!(lock(&d.shared.known).no_xattr.len(), NO_XATTR_DEVICES_MAX);
    let other = Digests::new(Mode::OnDemand, dir.path());
    assert_eq!(
        other.known(&f, &m),
        Some(sha256sum(&p)),
        "the record is valid"
    );
}
