//! Digests of served files (RFC 9530): computed in the background, persisted, never stale.
//!
//! A response carries `Repr-Digest: sha-256=:…:` (RFC 9530 §3) whenever the
//! SHA-256 of the exact version of the file being sent is known, and the
//! legacy `Digest: SHA-256=…` (RFC 3230 §4.3.2) when `Want-Digest` asks for it
//! (docs: uploads.md §4). This module owns how a digest becomes known:
//!
//! 1. A file *version* is [`Version`]: device, inode, size and mtime to the
//!    nanosecond, the strong ETag's inputs (`validators::etag_into`) plus the
//!    device. A digest is only ever looked up by the version of the open
//!    handle the body is read from, so a rewritten, truncated or replaced file
//!    never gets the digest of its predecessor.
//! 2. [`Digests::known`] runs on request workers: an in-memory cache of at
//!    most [`CACHE_MAX`] digests, then one `fgetxattr` of
//!    `user.ranged.sha256` on the open handle. No hashing there, ever. A
//!    cached digest also keeps the inode's ctime: a file deleted and created
//!    again gets the same inode number back at once on ext4, and with the
//!    same length and a restored mtime (`tar -x`, `cp -p`, reproducible
//!    builds) its version looks the same; its ctime does not. Then only the
//!    xattr, which lives and dies with the inode, can vouch for the digest.
//! 3. [`Digests::request`] puts a version in a queue of at most
//!    [`QUEUE_MAX`] jobs, never blocking: a duplicate is not queued twice and
//!    a full queue drops the request (the client gets no digest this time).
//!    ONE background thread, at the lowest CPU and I/O priority, hashes one
//!    file at a time (dufs#641: a hash per request is a denial of service).
//! 4. The result is kept in the cache and persisted in the extended attribute
//!    together with the version it belongs to, so a restart does not rehash.
//!    A file that changes while it is hashed gets no digest.
//! 5. [`Digests::remember`] records a digest known by other means (an upload
//!    hashes what it writes).
//!
//! [`Mode`] picks how much of this runs: `off` does nothing at all (no
//! thread, no xattr read, no field), `on-demand` hashes a file once a client
//! asks for SHA-256 (`Want-Repr-Digest` or `Want-Digest`), `eager` also walks
//! the whole tree once after start.
//!
//! `want` parses the request fields; [`repr_digest_value`] and
//! [`legacy_digest_value`] format the response fields.

mod hasher;
mod want;

pub use want::{Want, Wants, want_digest, want_repr_digest};

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::CStr;
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::sys;

/// Digests kept in memory at most. 3,584 fill a 4,096-bucket table exactly
/// (hashbrown's 7/8 load): about 360 KiB once full, nothing before. Beyond
/// that an arbitrary entry is forgotten; the xattr still holds it.
pub const CACHE_MAX: usize = 3584;

/// Hash jobs waiting at most; a request beyond is dropped. Each job is a
/// path, so the queue holds at most 64 × `PATH_MAX` bytes.
pub const QUEUE_MAX: usize = 64;

/// The extended attribute holding a file's digest and the version it is of.
const XATTR_NAME: &CStr = c"user.ranged.sha256";

/// Devices remembered as unable to hold our xattr; more are simply retried.
const NO_XATTR_DEVICES_MAX: usize = 16;

/// How much is computed and sent (`--digests off|on-demand|eager`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Nothing: no thread, no xattr read, no digest field.
    Off,
    /// Hash a file when a client asks for SHA-256; send what is known.
    #[default]
    OnDemand,
    /// As `OnDemand`, and hash every file of the tree once after start.
    Eager,
}

impl Mode {
    /// The command-line spelling: `off`, `on-demand`, `eager`.
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "off" => Some(Mode::Off),
            "on-demand" => Some(Mode::OnDemand),
            "eager" => Some(Mode::Eager),
            _ => None,
        }
    }
}

/// The identity of one version of a file: what the strong ETag is made of,
/// plus the device (two files on two mounts may share an inode number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Version {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_sec: i64,
    pub mtime_nsec: i64,
}

impl Version {
    /// The version an `fstat` describes.
    pub fn of(meta: &Metadata) -> Version {
        Version {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_sec: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
        }
    }
}

/// `sha-256=:<base64>:`, the `Repr-Digest` value (RFC 9530 §3: a Dictionary
/// whose member is a Byte Sequence, RFC 9651 §3.3.5).
pub fn repr_digest_value(sha256: &[u8; 32]) -> String {
    let mut out = String::with_capacity(10 + 44 + 1);
    out.push_str("sha-256=:");
    crate::base64::encode_to(&mut out, sha256);
    out.push(':');
    out
}

/// `SHA-256=<base64>`, the legacy `Digest` value (RFC 3230 §4.3.2, the
/// algorithm spelled as RFC 5843 registers it).
pub fn legacy_digest_value(sha256: &[u8; 32]) -> String {
    let mut out = String::with_capacity(8 + 44);
    out.push_str("SHA-256=");
    crate::base64::encode_to(&mut out, sha256);
    out
}

/// Counters since start, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Files hashed to the end, unchanged, and stored.
    pub hashed: u64,
    /// Digests found in the extended attribute (not hashed again).
    pub from_xattr: u64,
    /// Requests dropped because the queue was full.
    pub dropped: u64,
    /// Jobs given up because the file was not the version asked for, or
    /// changed while it was hashed.
    pub discarded: u64,
    /// Jobs waiting now.
    pub queued: usize,
    /// Files being hashed now (0 or 1).
    pub hashing: usize,
    /// The most files ever hashed at the same time (1 once any was).
    pub peak_hashing: usize,
    /// The eager walk is still going.
    pub walking: bool,
}

/// The store of known digests, shared by every worker through an `Arc`.
/// Dropping it stops the hasher thread after its current buffer.
pub struct Digests {
    shared: Arc<Shared>,
}

/// What the request workers and the hasher thread share.
struct Shared {
    mode: Mode,
    known: Mutex<Known>,
    queue: Mutex<Queue>,
    /// Signalled when a job is queued or the store closes.
    wake: Condvar,
    /// Set when the store is dropped; read between buffers.
    closed: AtomicBool,
    hashed: AtomicU64,
    from_xattr: AtomicU64,
    dropped: AtomicU64,
    discarded: AtomicU64,
    hashing: AtomicUsize,
    peak_hashing: AtomicUsize,
    walking: AtomicBool,
    /// A refused xattr write (permissions) was logged once already.
    told_permission: AtomicBool,
}

/// An inode's change time (seconds, nanoseconds).
type Ctime = (i64, i64);

fn ctime_of(meta: &Metadata) -> Ctime {
    (meta.ctime(), meta.ctime_nsec())
}

/// A cached digest and the ctime of the inode it was known for.
struct Entry {
    sha256: [u8; 32],
    ctime: Ctime,
}

struct Known {
    map: HashMap<Version, Entry>,
    /// Devices where the xattr cannot be read or written (no `user.` xattrs,
    /// read-only): neither is tried again there.
    no_xattr: Vec<u64>,
    /// Versions whose xattr holds no digest of theirs: not read again on
    /// every download (a system call per request otherwise). A digest
    /// learned later (hashing, an upload) removes the version from here.
    absent: HashSet<Version>,
}

/// Versions remembered as having no stored digest, at most (then forgotten
/// all at once: the cost is one more `fgetxattr` each).
const ABSENT_MAX: usize = 4096;

struct Queue {
    jobs: VecDeque<Job>,
    /// The version being hashed, so that it is not queued again meanwhile.
    current: Option<Version>,
}

struct Job {
    path: PathBuf,
    version: Version,
}

impl Digests {
    /// A store in `mode`; unless `Off`, starts the hasher thread. `root` is
    /// the served folder, walked once in `Eager` mode.
    pub fn new(mode: Mode, root: &Path) -> Digests {
        let shared = Arc::new(Shared {
            mode,
            known: Mutex::new(Known {
                map: HashMap::new(),
                no_xattr: Vec::new(),
                absent: HashSet::new(),
            }),
            queue: Mutex::new(Queue {
                jobs: VecDeque::with_capacity(QUEUE_MAX),
                current: None,
            }),
            wake: Condvar::new(),
            closed: AtomicBool::new(mode == Mode::Off),
            hashed: AtomicU64::new(0),
            from_xattr: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            discarded: AtomicU64::new(0),
            hashing: AtomicUsize::new(0),
            peak_hashing: AtomicUsize::new(0),
            walking: AtomicBool::new(mode == Mode::Eager),
            told_permission: AtomicBool::new(false),
        });
        if mode != Mode::Off {
            let walk = (mode == Mode::Eager).then(|| hasher::Walk::new(root));
            let for_thread = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name("digests".into())
                .spawn(move || hasher::run(for_thread, walk));
            if let Err(e) = spawned {
                log::warn!("no digests will be computed: cannot start a thread: {e}");
                shared.closed.store(true, Ordering::SeqCst);
                shared.walking.store(false, Ordering::Relaxed);
            }
        }
        Digests { shared }
    }

    /// The SHA-256 of the version `meta` describes, if known; `meta` must be
    /// the `fstat` of `file`. The cache first, then at most one `fgetxattr`
    /// on the handle; a persisted digest of another version is ignored. No
    /// hashing, no allocation except a new cache entry. `None` in `Off` mode.
    pub fn known(&self, file: &File, meta: &Metadata) -> Option<[u8; 32]> {
        if self.shared.mode == Mode::Off || !meta.is_file() {
            return None;
        }
        let version = Version::of(meta);
        let ctime = ctime_of(meta);
        {
            let mut known = lock(&self.shared.known);
            match known.map.get(&version) {
                Some(e) if e.ctime == ctime => return Some(e.sha256),
                // The inode changed since: our own xattr write, a rename,
                // or another file under the same number. The xattr tells.
                Some(_) => {
                    known.map.remove(&version);
                }
                None => {}
            }
            if known.no_xattr.contains(&version.dev) || known.absent.contains(&version) {
                return None;
            }
        }
        let Some(digest) = self.shared.read_xattr(file, &version) else {
            let mut known = lock(&self.shared.known);
            if known.absent.len() >= ABSENT_MAX {
                known.absent.clear();
            }
            known.absent.insert(version);
            return None;
        };
        self.shared.from_xattr.fetch_add(1, Ordering::Relaxed);
        lock(&self.shared.known).insert(version, ctime, digest);
        Some(digest)
    }

    /// Asks for the digest of `version` of the file at `path` (absolute, under
    /// the served root). Never blocks: queued unless already queued, being
    /// hashed, known, or the queue is full (then dropped and counted).
    pub fn request(&self, path: PathBuf, version: Version) {
        self.shared.enqueue(version, || Some(path));
    }

    /// The request path in one call: [`known`](Self::known), and when unknown
    /// a [`request`](Self::request) if the mode calls for one (`Eager`: always;
    /// `OnDemand`: when `wants` asks for SHA-256). `path` is called only when
    /// a job is queued: a GET of a file whose digest is known builds no path.
    pub fn for_response(
        &self,
        file: &File,
        meta: &Metadata,
        path: impl FnOnce() -> Option<PathBuf>,
        wants: Wants,
    ) -> Option<[u8; 32]> {
        if let Some(d) = self.known(file, meta) {
            return Some(d);
        }
        let wanted = match self.shared.mode {
            Mode::Off => false,
            Mode::OnDemand => wants.asks(),
            Mode::Eager => true,
        };
        if wanted && meta.is_file() {
            self.shared.enqueue(Version::of(meta), path);
        }
        None
    }

    /// Records `sha256` as the digest of the version `meta` (the `fstat` of
    /// `file`) describes, known by other means: an upload that hashed what it
    /// wrote. Kept in the cache and persisted on the handle. Nothing in `Off`.
    pub fn remember(&self, file: &File, meta: &Metadata, sha256: [u8; 32]) {
        if self.shared.mode == Mode::Off || !meta.is_file() {
            return;
        }
        let version = Version::of(meta);
        lock(&self.shared.known).insert(version, ctime_of(meta), sha256);
        self.shared.persist(file, &version, &sha256);
    }

    pub fn stats(&self) -> Stats {
        let s = &self.shared;
        Stats {
            hashed: s.hashed.load(Ordering::Relaxed),
            from_xattr: s.from_xattr.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            discarded: s.discarded.load(Ordering::Relaxed),
            queued: lock(&s.queue).jobs.len(),
            hashing: s.hashing.load(Ordering::Relaxed),
            peak_hashing: s.peak_hashing.load(Ordering::Relaxed),
            walking: s.walking.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Digests {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        // Under the lock, so the hasher cannot miss the wake-up between its
        // check of `closed` and its wait.
        let mut queue = lock(&self.shared.queue);
        queue.jobs.clear();
        self.shared.wake.notify_all();
    }
}

impl Shared {
    /// Queues a job for `version` unless pointless or over the bound. `path`
    /// is only built when the job is queued.
    fn enqueue(&self, version: Version, path: impl FnOnce() -> Option<PathBuf>) {
        if self.closed.load(Ordering::Relaxed) {
            return;
        }
        if lock(&self.known).map.contains_key(&version) {
            return;
        }
        let mut queue = lock(&self.queue);
        if queue.current == Some(version) || queue.jobs.iter().any(|j| j.version == version) {
            return;
        }
        if queue.jobs.len() >= QUEUE_MAX {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let Some(path) = path() else {
            return;
        };
        queue.jobs.push_back(Job { path, version });
        self.wake.notify_one();
    }

    /// The digest persisted on `file` for exactly `version`, if any. Marks
    /// the device when the file system has no `user.` xattrs.
    fn read_xattr(&self, file: &File, version: &Version) -> Option<[u8; 32]> {
        let mut buf = [0u8; RECORD_MAX];
        match sys::get_xattr(file.as_raw_fd(), XATTR_NAME, &mut buf) {
            Ok(n) => record_digest(buf.get(..n)?, version),
            Err(e) => {
                if e.raw_os_error() == Some(EOPNOTSUPP) {
                    self.no_xattr(version.dev, &e);
                }
                None
            }
        }
    }

    /// Writes the record for `version` on `file`. Where the file system
    /// cannot hold it the digest stays in memory only: a device without
    /// `user.` xattrs or mounted read-only is not tried again; a file we may
    /// not write (permissions) is a matter of that file alone.
    fn persist(&self, file: &File, version: &Version, sha256: &[u8; 32]) {
        if lock(&self.known).no_xattr.contains(&version.dev) {
            return;
        }
        let (record, len) = format_record(version, sha256);
        let Err(e) = sys::set_xattr(file.as_raw_fd(), XATTR_NAME, &record[..len]) else {
            return;
        };
        match e.raw_os_error() {
            Some(EOPNOTSUPP | EROFS) => self.no_xattr(version.dev, &e),
            Some(EACCES | EPERM) => {
                if !self.told_permission.swap(true, Ordering::Relaxed) {
                    log::info!("some digests are kept in memory only: {e}");
                }
            }
            _ => log::debug!("digest not persisted: {e}"),
        }
    }

    /// Remembers that `dev` cannot hold our xattr, and says so once.
    fn no_xattr(&self, dev: u64, e: &io::Error) {
        let mut known = lock(&self.known);
        if known.no_xattr.contains(&dev) || known.no_xattr.len() >= NO_XATTR_DEVICES_MAX {
            return;
        }
        known.no_xattr.push(dev);
        log::info!("digests of files on device {dev:#x} are kept in memory only: {e}");
    }
}

impl Known {
    fn insert(&mut self, version: Version, ctime: Ctime, sha256: [u8; 32]) {
        self.absent.remove(&version);
        if self.map.len() >= CACHE_MAX && !self.map.contains_key(&version) {
            // Any entry will do: the xattr, where there is one, still holds it.
            if let Some(old) = self.map.keys().next().copied() {
                self.map.remove(&old);
            }
        }
        self.map.insert(version, Entry { sha256, ctime });
    }
}

/// A poisoned lock still guards consistent data here (every critical section
/// is a few plain assignments), so it is used rather than spread the panic.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

// errno values shared by every Linux target we build (x86, ARM, AArch64).
const EPERM: i32 = 1;
const EACCES: i32 = 13;
const EROFS: i32 = 30;
const EOPNOTSUPP: i32 = 95;

/// The longest record [`format_record`] writes (150 bytes) with room to spare.
const RECORD_MAX: usize = 160;

/// The persisted record: `1 <size> <mtime_s> <mtime_ns> <ino> <hex sha-256>`,
/// decimal numbers, 64 lowercase hex digits. `1` is the format's version.
/// The device is left out on purpose: its number may change between boots
/// (removable disks, btrfs, network file systems), the inode is stored to
/// catch copies that carry xattrs along (`cp -a`, `rsync -X`).
fn format_record(version: &Version, sha256: &[u8; 32]) -> ([u8; RECORD_MAX], usize) {
    use std::io::Write;
    let mut buf = [0u8; RECORD_MAX];
    let mut cursor = &mut buf[..];
    // Cannot fail: RECORD_MAX holds the longest possible record.
    let _ = write!(
        cursor,
        "1 {} {} {} {} ",
        version.size, version.mtime_sec, version.mtime_nsec, version.ino
    );
    for b in sha256 {
        let _ = write!(cursor, "{b:02x}");
    }
    let len = RECORD_MAX - cursor.len();
    (buf, len)
}

/// The digest in `record` if the record is well formed and of `version`
/// exactly (device aside, see [`format_record`]); `None` for anything else:
/// another version (stale), another format, garbage.
fn record_digest(record: &[u8], version: &Version) -> Option<[u8; 32]> {
    let text = std::str::from_utf8(record).ok()?;
    let mut fields = text.split(' ');
    let mut next = || fields.next();
    if next()? != "1" {
        return None;
    }
    let size = decimal(next()?)?;
    let mtime_sec = signed(next()?)?;
    let mtime_nsec = signed(next()?)?;
    let ino = decimal(next()?)?;
    let hex = next()?.as_bytes();
    if next().is_some() || hex.len() != 64 {
        return None;
    }
    if (size, mtime_sec, mtime_nsec, ino)
        != (
            version.size,
            version.mtime_sec,
            version.mtime_nsec,
            version.ino,
        )
    {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

/// `1*DIGIT` as a u64 (no sign: `str::parse` would take `+5`).
fn decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `["-"] 1*DIGIT` as an i64.
fn signed(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    decimal(digits)?;
    s.parse().ok()
}

/// One lowercase hex digit (the record is ours: `format_record` writes
/// lowercase, anything else was not written by us).
fn nibble(b: u8) -> Option<u8> {
    crate::hex::digit(b).filter(|_| !b.is_ascii_uppercase())
}

#[cfg(test)]
mod tests;
