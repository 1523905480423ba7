//! Open files kept from one request to the next, per worker thread, so that
//! a small file costs one `statx` instead of `openat2` + `fstat` + `close`
//! each time — never at the price of a stale byte.
//!
//! Every use is checked by one `statx` of the path: only when it names the
//! same file (device and inode) unchanged (size, mtime and ctime to the
//! nanosecond — ctime cannot be set back by anyone) is the kept handle
//! used, with the validators of that very `statx`, which describe the
//! handle's file as an `fstat` of it would (docs/semantics.md §7). Anything
//! else — a file replaced by rename, rewritten, truncated, removed, a
//! symlink swapped to point elsewhere — is a miss: the handle is closed and
//! the request opens the path the usual way, where containment under the
//! root is decided (a symlink that now leads outside it is refused there;
//! the cache never serves a file it did not first open through that check).
//!
//! Bounded: [`CAPACITY`] handles per worker, least recently used first out,
//! and none unused for [`IDLE`] (a kept handle of a replaced file would keep
//! its disk space allocated, which on a small card is the next upload's).

use crate::fs_path::{self, Root};
use std::cell::RefCell;
use std::fs::{File, Metadata};
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Handles kept per worker thread.
pub const CAPACITY: usize = 32;
/// A handle unused this long is closed.
pub const IDLE: Duration = Duration::from_secs(5);

/// What identifies one version of one file.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Identity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Identity {
    fn of(m: &Metadata) -> Identity {
        Identity {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

struct Entry {
    /// The served root (by address: one process may serve several in tests).
    root: usize,
    path: Box<str>,
    /// The same path under the root, for `statx` (built once, not per use).
    full: std::path::PathBuf,
    file: Arc<File>,
    identity: Identity,
    used: Instant,
}

thread_local! {
    static KEPT: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
}

/// A kept handle still valid for `decoded` under `root`, with the `statx`
/// that proved it; `None` (and the handle closed) otherwise.
pub fn lookup(root: &Root, decoded: &str) -> Option<(Arc<File>, Metadata)> {
    let key = root as *const Root as usize;
    KEPT.with(|kept| {
        let mut kept = kept.borrow_mut();
        let i = kept
            .iter()
            .position(|e| e.root == key && *e.path == *decoded)?;
        match std::fs::metadata(&kept[i].full).ok() {
            Some(meta) if meta.is_file() && Identity::of(&meta) == kept[i].identity => {
                kept[i].used = Instant::now();
                Some((Arc::clone(&kept[i].file), meta))
            }
            _ => {
                kept.swap_remove(i);
                None
            }
        }
    })
}

/// Keeps `file`, just opened for `decoded` under `root` (with `meta` its
/// `fstat`), for the next requests on this thread.
pub fn keep(root: &Root, decoded: &str, file: &Arc<File>, meta: &Metadata) {
    if !meta.is_file() {
        return;
    }
    let Some(full) = fs_path::join(root, decoded) else {
        return;
    };
    let key = root as *const Root as usize;
    KEPT.with(|kept| {
        let mut kept = kept.borrow_mut();
        kept.retain(|e| !(e.root == key && *e.path == *decoded));
        if kept.len() >= CAPACITY
            && let Some(oldest) = (0..kept.len()).min_by_key(|&i| kept[i].used)
        {
            kept.swap_remove(oldest);
        }
        kept.push(Entry {
            root: key,
            path: decoded.into(),
            full,
            file: Arc::clone(file),
            identity: Identity::of(meta),
            used: Instant::now(),
        });
    });
}

/// Closes the handles unused for [`IDLE`]; when to call again (`None`: no
/// handle is kept on this thread).
pub fn expire() -> Option<Duration> {
    KEPT.with(|kept| {
        let mut kept = kept.borrow_mut();
        let now = Instant::now();
        kept.retain(|e| now.duration_since(e.used) < IDLE);
        kept.iter()
            .map(|e| IDLE.saturating_sub(now.duration_since(e.used)))
            .min()
            .map(|d| d.max(Duration::from_millis(100)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;
    use std::io::Read;

    fn read(f: &File) -> Vec<u8> {
        let mut out = Vec::new();
        (&*f).read_to_end(&mut out).unwrap();
        out
    }

    fn opened(root: &Root, path: &str) -> (Arc<File>, Metadata) {
        let o = fs_path::open(root, path, false).unwrap();
        (Arc::new(o.file), o.meta)
    }

    /// An unchanged file is served from its kept handle; every kind of
    /// change is a miss, so the caller opens the path afresh.
    #[test]
    fn every_change_is_a_miss() {
        let dir = TempDir::new();
        dir.write("a.txt", b"one");
        let root = Root::new(dir.path().to_path_buf()).unwrap();
        let (f, m) = opened(&root, "/a.txt");
        keep(&root, "/a.txt", &f, &m);
        let (hit, meta) = lookup(&root, "/a.txt").expect("unchanged: a hit");
        assert!(Arc::ptr_eq(&hit, &f));
        assert_eq!(meta.ino(), m.ino());

        // Replaced by rename: a new inode.
        dir.write("tmp", b"two");
        std::fs::rename(dir.path().join("tmp"), dir.path().join("a.txt")).unwrap();
        assert!(lookup(&root, "/a.txt").is_none(), "rename must miss");
        assert!(lookup(&root, "/a.txt").is_none(), "and the handle is gone");

        // Rewritten in place, same size: mtime and ctime move.
        let (f, m) = opened(&root, "/a.txt");
        keep(&root, "/a.txt", &f, &m);
        std::thread::sleep(Duration::from_millis(10));
        std::fs::write(dir.path().join("a.txt"), b"TWO").unwrap();
        assert!(
            lookup(&root, "/a.txt").is_none(),
            "in-place rewrite must miss"
        );
        let (f, m) = opened(&root, "/a.txt");
        assert_eq!(read(&f), b"TWO");

        // Removed.
        keep(&root, "/a.txt", &f, &m);
        std::fs::remove_file(dir.path().join("a.txt")).unwrap();
        assert!(lookup(&root, "/a.txt").is_none(), "removal must miss");
    }

    /// A symlink swapped to a file outside the root never serves the kept
    /// handle's bytes as the outside file's, nor the outside file.
    #[test]
    fn a_swapped_symlink_misses() {
        let dir = TempDir::new();
        dir.write("www/in.txt", b"inside");
        dir.write("secret.txt", b"outside");
        let www = dir.path().join("www");
        std::os::unix::fs::symlink("in.txt", www.join("link")).unwrap();
        let root = Root::new(www.clone()).unwrap();
        let (f, m) = opened(&root, "/link");
        keep(&root, "/link", &f, &m);
        assert!(lookup(&root, "/link").is_some());
        std::fs::remove_file(www.join("link")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.txt"), www.join("link")).unwrap();
        assert!(lookup(&root, "/link").is_none(), "a swapped link must miss");
        assert!(
            fs_path::open(&root, "/link", false).is_err(),
            "and the open refuses it"
        );
    }

    #[test]
    fn bounded_and_expiring() {
        let dir = TempDir::new();
        let root = Root::new(dir.path().to_path_buf()).unwrap();
        for i in 0..CAPACITY + 5 {
            let name = format!("/f{i}");
            dir.write(&name[1..], b"x");
            let (f, m) = opened(&root, &name);
            keep(&root, &name, &f, &m);
        }
        assert_eq!(KEPT.with(|k| k.borrow().len()), CAPACITY);
        assert!(lookup(&root, "/f0").is_none(), "the oldest went first");
        assert!(expire().is_some_and(|d| d <= IDLE));
        KEPT.with(|k| {
            for e in k.borrow_mut().iter_mut() {
                e.used -= IDLE;
            }
        });
        assert_eq!(expire(), None, "idle handles are closed");
    }
}
