//! The one background thread that hashes files, and the eager walk it runs
//! when idle. Nothing here runs on a request worker.
//!
//! For each job: open the path, `fstat`, check that it is still the version
//! asked for, wait until its last change has settled, hash it, and keep the
//! result only if the handle's `fstat` never changed meanwhile.

use std::fs::{File, OpenOptions, ReadDir};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use super::{Ctime, Shared, Version, lock};
use crate::sys;

/// Read size while hashing. Measured on x86-64 with SHA-NI, page-cached
/// 1 GiB: 64 KiB, 256 KiB and 1 MiB all hash at the same speed (see the
/// `throughput` test); 256 KiB is enough to amortise the `read` and `fstat`
/// per buffer and keeps the thread's memory small on small boards.
pub(super) const BUF_SIZE: usize = 256 * 1024;

/// A file whose last change is more recent than this is not hashed yet.
/// File systems stamp times in ticks (a few ms on ext4, 2 s on FAT): a write
/// within the same tick as the last one leaves mtime, and so the version,
/// unchanged. Only once the last change is older than a tick is every later
/// write sure to change the mtime, and so the version (git's "racy clean"
/// problem). The ctime is used because nobody can set it back.
pub(super) const SETTLE: Duration = Duration::from_secs(2);

/// Directories deeper than this below the root are not walked (a bind mount
/// of a parent would otherwise make the walk endless; each level holds one
/// open directory handle).
const WALK_DEPTH_MAX: usize = 32;

/// Directory entries looked at per walk step before the queue is checked
/// again, so that a client's job never waits behind a huge directory.
const WALK_STEP_ENTRIES: usize = 256;

/// `O_NONBLOCK` on Linux for x86, ARM and AArch64, as in `fs_path`: a FIFO
/// swapped in for a file must not block the thread forever.
const O_NONBLOCK: i32 = 0o4000;

/// What was read and when: a version plus the ctime, which also changes on
/// writes that restore mtime and size (`touch -d`, `cp --preserve`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamp {
    pub(super) version: Version,
    ctime_sec: i64,
    ctime_nsec: i64,
}

impl Stamp {
    pub(super) fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            version: Version::of(meta),
            ctime_sec: meta.ctime(),
            ctime_nsec: meta.ctime_nsec(),
        }
    }

    pub(super) fn ctime(&self) -> Ctime {
        (self.ctime_sec, self.ctime_nsec)
    }

    /// How long until the last change is [`SETTLE`] old; zero if it is, or
    /// if the ctime lies in the future (the clock was set back: no later
    /// write can fall in the same tick).
    fn unsettled_for(&self, now: SystemTime) -> Duration {
        let Ok(sec) = u64::try_from(self.ctime_sec) else {
            return Duration::ZERO;
        };
        let nsec = u32::try_from(self.ctime_nsec).unwrap_or(0);
        let Some(settled) = UNIX_EPOCH
            .checked_add(Duration::new(sec, nsec))
            .and_then(|t| t.checked_add(SETTLE))
        else {
            return Duration::ZERO;
        };
        match settled.duration_since(now) {
            Ok(wait) if wait <= SETTLE => wait,
            _ => Duration::ZERO,
        }
    }
}

/// Why a hash was not finished.
#[derive(Debug)]
pub(super) enum Abandon {
    /// The file is not the version it was at the start.
    Changed,
    /// Shutdown, or the store was dropped.
    Stopped,
    Io(io::Error),
}

/// SHA-256 of `file` from its current offset (0 for a fresh handle), which
/// `start` describes. After every buffer, `go_on` says whether to continue
/// and the handle is `fstat`ed again: any change to the version or the ctime
/// abandons the hash, and so does reading more or fewer bytes than the size.
pub(super) fn hash_file(
    file: &mut File,
    start: &Stamp,
    buf: &mut [u8],
    mut go_on: impl FnMut() -> bool,
) -> Result<[u8; 32], Abandon> {
    let mut hasher = Sha256::new();
    let mut total: u64 = 0;
    loop {
        let n = match file.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Abandon::Io(e)),
        };
        total = total.saturating_add(n as u64);
        if total > start.version.size {
            return Err(Abandon::Changed);
        }
        hasher.update(&buf[..n]);
        if !go_on() {
            return Err(Abandon::Stopped);
        }
        if Stamp::of(&file.metadata().map_err(Abandon::Io)?) != *start {
            return Err(Abandon::Changed);
        }
    }
    if total != start.version.size || Stamp::of(&file.metadata().map_err(Abandon::Io)?) != *start {
        return Err(Abandon::Changed);
    }
    Ok(hasher.finalize().into())
}

/// The thread's body: jobs first, then one walk step when there is no job,
/// else sleep until woken. Ends when the store is dropped or on shutdown.
pub(super) fn run(shared: Arc<Shared>, mut walk: Option<Walk>) {
    sys::lower_thread_priority();
    let mut buf = Vec::new();
    loop {
        let job = {
            let mut queue = lock(&shared.queue);
            loop {
                if stopping(&shared) {
                    return;
                }
                if let Some(job) = queue.jobs.pop_front() {
                    queue.current = Some(job.version);
                    break Some(job);
                }
                if walk.is_some() {
                    break None;
                }
                // Idle: give the buffer back.
                buf = Vec::new();
                queue = shared
                    .wake
                    .wait(queue)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
        };
        match (job, walk.as_mut()) {
            (Some(job), _) => {
                process(&shared, &job.path, Some(job.version), &mut buf);
                lock(&shared.queue).current = None;
            }
            (None, Some(w)) => match w.step() {
                Step::File(path) => process(&shared, &path, None, &mut buf),
                Step::More => {}
                Step::Done => {
                    log::info!("digests: walked {} files", w.files);
                    shared.walking.store(false, Ordering::Relaxed);
                    walk = None;
                }
            },
            (None, None) => {}
        }
    }
}

fn stopping(shared: &Shared) -> bool {
    shared.closed.load(Ordering::Relaxed) || sys::shutdown_requested()
}

/// Hashes the file at `path` and stores its digest, if it is (still)
/// `expected` (`None`: any regular file, for the walk) and not known yet.
fn process(shared: &Shared, path: &Path, expected: Option<Version>, buf: &mut Vec<u8>) {
    let mut file = match OpenOptions::new()
        .read(true)
        .custom_flags(O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) => {
            log::debug!("not hashed {}: {e}", path.display());
            return;
        }
    };
    let mut tries = 0;
    let start = loop {
        let Ok(meta) = file.metadata() else { return };
        if !meta.is_file() {
            return;
        }
        let stamp = Stamp::of(&meta);
        if expected.is_some_and(|v| v != stamp.version) {
            shared.discarded.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if tries == 0 && already_known(shared, &file, &stamp, expected.is_some()) {
            return;
        }
        let wait = stamp.unsettled_for(SystemTime::now());
        if wait.is_zero() {
            break stamp;
        }
        // Changed again during a wait, twice: busy, given up (a later
        // request asks again).
        tries += 1;
        if tries > 2 || !sleep(shared, wait) {
            shared.discarded.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    if buf.is_empty() {
        buf.resize(BUF_SIZE, 0);
    }
    let began = Instant::now();
    let now = shared.hashing.fetch_add(1, Ordering::SeqCst) + 1;
    shared.peak_hashing.fetch_max(now, Ordering::SeqCst);
    let result = hash_file(&mut file, &start, buf, || !stopping(shared));
    shared.hashing.fetch_sub(1, Ordering::SeqCst);
    match result {
        Ok(digest) => {
            lock(&shared.known).insert(start.version, start.ctime(), digest);
            shared.persist(&file, &start.version, &digest);
            shared.hashed.fetch_add(1, Ordering::Relaxed);
            // Integer arithmetic: float formatting would add 20 KiB to the
            // static binary. `ms` ≥ 1, so no division by zero.
            let ms = began.elapsed().as_millis().max(1);
            let centi_gb_s = u128::from(start.version.size) / ms / 10_000;
            log::info!(
                "hashed {}: {} bytes in {}.{} s ({}.{:02} GB/s)",
                path.display(),
                start.version.size,
                ms / 1000,
                ms / 100 % 10,
                centi_gb_s / 100,
                centi_gb_s % 100
            );
        }
        Err(Abandon::Changed) => {
            shared.discarded.fetch_add(1, Ordering::Relaxed);
            log::debug!("not hashed {}: changed while hashed", path.display());
        }
        Err(Abandon::Stopped) => {}
        Err(Abandon::Io(e)) => log::debug!("not hashed {}: {e}", path.display()),
    }
}

/// Whether `version` is in the cache or persisted on `file` already (the
/// latter counted; kept in the cache only for a client's job, so a walk of
/// a big tree does not flush what clients use).
fn already_known(shared: &Shared, file: &File, stamp: &Stamp, cache_it: bool) -> bool {
    let version = &stamp.version;
    if lock(&shared.known)
        .map
        .get(version)
        .is_some_and(|e| e.ctime == stamp.ctime())
    {
        return true;
    }
    let Some(digest) = shared.read_xattr(file, version) else {
        return false;
    };
    shared.from_xattr.fetch_add(1, Ordering::Relaxed);
    if cache_it {
        lock(&shared.known).insert(*version, stamp.ctime(), digest);
    }
    true
}

/// Sleeps `d` in short slices; false if the thread is to stop.
fn sleep(shared: &Shared, d: Duration) -> bool {
    let end = Instant::now() + d;
    loop {
        if stopping(shared) {
            return false;
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// The eager walk of the served tree: depth first, one open directory per
/// level, regular files only. Names starting with `.` (dotfiles, the
/// `.ranged` state folder) and symlinks are skipped, so the walk never leaves
/// the root through a link.
pub(super) struct Walk {
    stack: Vec<ReadDir>,
    pub(super) files: u64,
}

pub(super) enum Step {
    File(PathBuf),
    /// Nothing found in this step; call again.
    More,
    Done,
}

impl Walk {
    pub(super) fn new(root: &Path) -> Walk {
        let stack = match std::fs::read_dir(root) {
            Ok(dir) => vec![dir],
            Err(e) => {
                log::warn!("digests: cannot walk {}: {e}", root.display());
                Vec::new()
            }
        };
        Walk { stack, files: 0 }
    }

    /// Looks at up to [`WALK_STEP_ENTRIES`] entries; the next regular file.
    pub(super) fn step(&mut self) -> Step {
        for _ in 0..WALK_STEP_ENTRIES {
            let Some(dir) = self.stack.last_mut() else {
                return Step::Done;
            };
            let entry = match dir.next() {
                None => {
                    self.stack.pop();
                    continue;
                }
                Some(Err(_)) => continue,
                Some(Ok(entry)) => entry,
            };
            if entry.file_name().as_encoded_bytes().starts_with(b".") {
                continue;
            }
            // `DirEntry::file_type` does not follow symlinks.
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_file() {
                self.files += 1;
                return Step::File(entry.path());
            }
            if kind.is_dir() && self.stack.len() < WALK_DEPTH_MAX {
                match std::fs::read_dir(entry.path()) {
                    Ok(sub) => self.stack.push(sub),
                    Err(e) => log::debug!("digests: cannot walk {}: {e}", entry.path().display()),
                }
            }
        }
        Step::More
    }
}
