//! The upload store: uploads that are never corrupted and never lost, and are
//! published into the served tree all at once. Protocol-neutral (tus today,
//! an IETF resumable-upload adapter later); synchronous.
//!
//! # On disk
//!
//! A state folder (mode 0700) on the same file system as the served folder
//! holds, per upload, `<id>.data` (the bytes, 0600, created `O_EXCL`) and
//! `<id>.meta` (see `meta.rs`: target, name, length, committed offset,
//! times, metadata, owner, expected digest, SHA-256 state). A meta file is
//! only ever replaced whole: written to `<id>.meta.tmp`, fsynced, renamed,
//! and the folder fsynced. Whole-file PUTs stage in `<random>.put`. Ids are
//! 128 random bits in hex.
//!
//! # The promise
//!
//! An offset returned by [`Writer::commit`] is durable: the data is
//! `fdatasync`ed before the meta file that records the offset is written, so
//! after `kill -9` or a power loss the data file holds at least that many
//! bytes. Anything past it (a torn tail) is cut off by [`Store::open`] and by
//! every [`Store::begin`].
//!
//! # Life of an upload
//!
//! 1. [`Store::create`] (limits: unfinished uploads, free space).
//! 2. [`Store::begin`] → [`Writer`]: one writer per upload. A new `begin` (or
//!    [`Store::settle`], for a HEAD) ends a stale writer instead of waiting for
//!    it forever: it raises the writer's cancel flag, waits for any call the
//!    writer is inside (at most [`STALE_WRITER_WAIT`]), commits the stale
//!    writer's bytes unless it asked not to ([`Writer::set_keep_partial`]), and
//!    takes over.
//! 3. [`Writer::write`], [`Writer::commit`] (at the end of every request, and
//!    when [`Writer::should_commit`] says so), [`Writer::rollback`].
//! 4. [`Writer::publish`] at offset == length: digest check, fsync, rename into
//!    the target folder through its handle, fsync that folder. The meta file
//!    stays behind as a tombstone (`state published`) until expiry, so that
//!    [`Store::info`] still answers "complete" to a client whose last
//!    response was lost.
//! 5. [`Store::terminate`], or expiry: [`Store::sweep`] removes uploads idle
//!    (no commit) for longer than the expiry, or past their hard deadline.
//!
//! # Locks
//!
//! `Store::inner` (the index) is held only for memory operations, never
//! across disk I/O or a wait, so [`Store::info`] never waits for a disk. A
//! writer's own state has its own mutex; when both are needed, the writer's is
//! taken first.

use super::meta::{Meta, State};
use crate::digest::Version;
use sha2::Digest;
use sha2::Sha256;
use sha2::digest::common::hazmat::{SerializableState, SerializedState};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::{Duration, Instant, SystemTime};

/// How long [`Store::begin`], [`Store::settle`] and [`Store::terminate`] wait
/// for a stale writer to come out of the call it is in (a write or an fsync on
/// a slow card) before answering [`BeginError::Busy`].
pub const STALE_WRITER_WAIT: Duration = Duration::from_secs(3);

/// [`Writer::should_commit`] after this many bytes since the last commit…
pub const COMMIT_BYTES: u64 = 16 << 20;
/// …or this long since the last commit, with bytes pending.
pub const COMMIT_INTERVAL: Duration = Duration::from_secs(2);

/// Free space never handed to upload bytes: room for the meta files that
/// make those bytes count. A write that would dip into it is refused.
const SPACE_RESERVE: u64 = 64 << 10;
/// Free space is re-read (`statvfs`) after this many bytes written; between
/// reads it is estimated, and a real ENOSPC is caught as well.
const SPACE_RECHECK: u64 = 8 << 20;

/// Tombstones of published uploads kept at most (the oldest go first).
const MAX_TOMBSTONES: usize = 1024;

/// The longest target, name, owner and metadata strings stored.
const MAX_FIELD: usize = 8192;
/// The most read of a meta file: four fields of [`MAX_FIELD`] bytes, each
/// byte escaped as three, fit with room to spare.
const META_READ_LIMIT: u64 = 256 << 10;

/// Mode of published files: what `creat` gives under the usual umask 022.
const PUBLISHED_MODE: u32 = 0o644;

/// Limits and the expiry.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// An upload with no progress for this long is removed (tus expiration).
    pub expiry: Duration,
    /// Most uploads not yet published (creation beyond → [`CreateError::TooMany`]).
    pub max_unfinished: usize,
    /// Most writers and PUT stagings at once (→ `TooManyActive` / `TooMany`).
    pub max_active: usize,
}

/// An upload id: 128 random bits, written as 32 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UploadId([u8; 16]);

impl UploadId {
    fn random() -> io::Result<UploadId> {
        crate::random::bytes().map(UploadId)
    }

    /// Parses the 32-hex-digit form (lowercase only: one id, one spelling).
    pub fn parse(text: &str) -> Option<UploadId> {
        if text.len() != 32 || text.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        crate::hex::decode(text)?.try_into().ok().map(UploadId)
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::hex::encode(&self.0))
    }
}

/// What [`Store::create`] needs to know.
#[derive(Debug, Clone, Default)]
pub struct NewUpload {
    /// The decoded URL path of the destination folder, e.g. `/incoming/`.
    pub target: String,
    /// The file name, already checked (see `tus::check_file_name`).
    pub name: String,
    /// `None`: deferred; [`Writer::set_length`] sets it later.
    pub length: Option<u64>,
    /// The raw `Upload-Metadata` value to echo on HEAD (may be empty).
    pub metadata: String,
    /// Who may continue the upload: a user name, `link`, or `-`.
    pub owner: String,
    /// The SHA-256 the whole file must have to be published.
    pub sha256: Option<[u8; 32]>,
    /// Unix seconds after which the upload is gone (a capability link's expiry).
    pub deadline: Option<u64>,
}

/// What [`Store::info`] tells about an upload, from memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub id: UploadId,
    /// The committed (durable) offset.
    pub offset: u64,
    /// `None`: deferred.
    pub length: Option<u64>,
    /// The raw `Upload-Metadata` given at creation.
    pub metadata: String,
    pub target: String,
    pub name: String,
    pub owner: String,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds: the earlier of last progress + expiry and the deadline.
    pub expires_at: u64,
    /// Published: `offset == length`, and the file is in place.
    pub finished: bool,
    /// A writer is open on it right now.
    pub writing: bool,
}

/// What [`Store::open`] found, for one log line (see its `Display`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Unfinished uploads kept, ready to resume.
    pub resumed: usize,
    /// Uploads (and tombstones) past their expiry, removed.
    pub expired_removed: usize,
    /// Files without their partner, unreadable meta files, leftover tmp and
    /// staging files, removed.
    pub orphans_removed: usize,
    /// Bytes past the committed offsets (torn tails), cut off.
    pub bytes_truncated: u64,
    /// Uploads whose bytes are all committed but which were not published
    /// (the process stopped between the last commit and the rename): the
    /// caller publishes them (`begin(id, length)` then [`Writer::publish`]),
    /// or a client's next request does.
    pub unpublished: Vec<UploadId>,
}

impl fmt::Display for Recovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "uploads: {} resumed, {} expired removed, {} orphan files removed, \
             {} bytes of torn tails cut, {} complete but unpublished",
            self.resumed,
            self.expired_removed,
            self.orphans_removed,
            self.bytes_truncated,
            self.unpublished.len()
        )
    }
}

/// Why [`Store::create`] (or [`Store::stage`]) refused.
#[derive(Debug)]
pub enum CreateError {
    /// Too many unfinished uploads (or active writers, for a staging): 503.
    TooMany,
    /// The declared length does not fit on the disk: 507.
    NoSpace,
    Io(io::Error),
}

/// Why [`Store::begin`] (and `settle`, `terminate`) refused.
#[derive(Debug)]
pub enum BeginError {
    /// No such upload (or it was terminated): 404.
    NotFound,
    /// Past its expiry or deadline: 404 or 410.
    Gone,
    /// Already published; `length` bytes went into the file. A request with
    /// `Upload-Offset == length` and no body may be answered as a success.
    Finished {
        length: u64,
    },
    /// The client's offset is not the committed one: 409.
    OffsetMismatch {
        current: u64,
    },
    /// A stale writer stayed inside one call for [`STALE_WRITER_WAIT`]: 423
    /// (tus clients retry it) or 503.
    Busy,
    /// Too many writers at once: 503.
    TooManyActive,
    Io(io::Error),
}

/// Why a write (or commit, rollback, length change) failed.
#[derive(Debug)]
pub enum WriteError {
    /// The bytes would go past the declared length: nothing of this call was
    /// written (413). Bytes of earlier calls stay until a commit or rollback.
    PastLength,
    /// [`Writer::set_length`]: the length is already set to another value, or
    /// is below the bytes already received (400).
    Length,
    /// The disk is full (ENOSPC, EDQUOT, or free space below the reserve): 507.
    /// The committed state is intact.
    NoSpace,
    /// A newer request took the upload over (or it was terminated): stop and
    /// drop the writer (which keeps what it has, unless told otherwise).
    Cancelled,
    Io(io::Error),
}

/// Why publishing failed.
#[derive(Debug)]
pub enum PublishError {
    /// Fewer bytes than the declared length (or no length yet).
    Incomplete,
    /// The whole-file SHA-256 differs from the expected one: nothing was
    /// published, and the upload is removed (it can never become right).
    DigestMismatch,
    /// `no_clobber` and the name exists: 412.
    Exists,
    /// The name is an existing directory: 409.
    IsDirectory,
    /// The writer was taken over before publishing.
    Cancelled,
    /// The disk or the quota is full (`ENOSPC`, `EDQUOT`): 507.
    NoSpace,
    Io(io::Error),
}

impl From<io::Error> for CreateError {
    fn from(e: io::Error) -> Self {
        if is_no_space(&e) {
            CreateError::NoSpace
        } else {
            CreateError::Io(e)
        }
    }
}

impl From<io::Error> for BeginError {
    fn from(e: io::Error) -> Self {
        BeginError::Io(e)
    }
}

impl From<io::Error> for WriteError {
    fn from(e: io::Error) -> Self {
        if is_no_space(&e) {
            WriteError::NoSpace
        } else {
            WriteError::Io(e)
        }
    }
}

impl From<WriteError> for PublishError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Io(e) => PublishError::Io(e),
            WriteError::NoSpace => PublishError::NoSpace,
            WriteError::Cancelled => PublishError::Cancelled,
            WriteError::PastLength | WriteError::Length => PublishError::Incomplete,
        }
    }
}

impl From<io::Error> for PublishError {
    fn from(e: io::Error) -> Self {
        if is_no_space(&e) {
            PublishError::NoSpace
        } else {
            PublishError::Io(e)
        }
    }
}

/// Where to publish: a folder the caller opened safely beneath the served
/// root (readable, `O_DIRECTORY`; not `O_PATH`, as it is fsynced), and a
/// name that is a single path segment.
#[derive(Debug)]
pub struct Target {
    pub dir: File,
    pub name: String,
    /// Fail with [`PublishError::Exists`] rather than replace (`If-None-Match: *`).
    pub no_clobber: bool,
}

/// A published file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// A file of that name was replaced (204) rather than created (201).
    pub replaced: bool,
    pub len: u64,
    /// SHA-256 of the whole file, computed while it was written.
    pub sha256: [u8; 32],
    /// The version placed (from the handle, before the rename): the digest
    /// belongs to it alone, even if another upload replaces the name at once.
    pub version: Version,
}

/// The upload store. Share it as `Arc<Store>`.
pub struct Store {
    dir: PathBuf,
    dir_file: File,
    settings: Settings,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    uploads: Index,
    /// Writers plus stagings.
    active: usize,
    /// Creations between their limit check and their insertion.
    creating: usize,
}

/// Uploads by id: a sorted vector (a few hundred entries at most; smaller
/// code than a hash map, and lookups are a binary search).
#[derive(Default)]
struct Index(Vec<(UploadId, Entry)>);

impl Index {
    fn get(&self, id: &UploadId) -> Option<&Entry> {
        let i = self.0.binary_search_by(|(k, _)| k.cmp(id)).ok()?;
        Some(&self.0[i].1)
    }

    fn get_mut(&mut self, id: &UploadId) -> Option<&mut Entry> {
        let i = self.0.binary_search_by(|(k, _)| k.cmp(id)).ok()?;
        Some(&mut self.0[i].1)
    }

    fn insert(&mut self, id: UploadId, entry: Entry) {
        match self.0.binary_search_by(|(k, _)| k.cmp(&id)) {
            Ok(i) => self.0[i].1 = entry,
            Err(i) => self.0.insert(i, (id, entry)),
        }
    }

    fn remove(&mut self, id: &UploadId) -> Option<Entry> {
        let i = self.0.binary_search_by(|(k, _)| k.cmp(id)).ok()?;
        Some(self.0.remove(i).1)
    }

    fn retain(&mut self, mut keep: impl FnMut(&UploadId, &Entry) -> bool) {
        self.0.retain(|(id, e)| keep(id, e));
    }

    fn iter(&self) -> impl Iterator<Item = (&UploadId, &Entry)> {
        self.0.iter().map(|(id, e)| (id, e))
    }
}

struct Entry {
    meta: Meta,
    /// The writer holding the upload, if any.
    writer: Option<Arc<Slot>>,
    /// Being terminated: invisible, and no new writer may start.
    ending: bool,
}

/// A writer's state, shared with whoever has to end it.
struct Slot {
    cancel: AtomicBool,
    /// `None`: not yet ready, or ended.
    state: Mutex<Option<WriteState>>,
}

struct WriteState {
    file: File,
    /// The durable record; `meta.offset` is the committed offset.
    meta: Meta,
    /// Bytes in the data file that count (committed or not).
    offset: u64,
    /// SHA-256 over `[0, offset)`.
    hasher: Sha256,
    /// SHA-256 over `[0, meta.offset)`, for a rollback.
    committed_hasher: Sha256,
    keep_partial: bool,
    since_commit: u64,
    last_commit: Instant,
    space: Space,
}

impl Store {
    /// Opens (creating it, mode 0700, if missing) the state folder and
    /// recovers every upload in it: data files are cut to their committed
    /// offsets, expired uploads and orphan files are removed. Files whose
    /// names are not the store's are left alone. The state folder must never
    /// be served: outside the served folder, or a dot-folder inside it.
    ///
    /// Refuses a state folder on another file system than `served_root`
    /// (publishing is a rename), one that another process (or another
    /// `Store`) has open (an exclusive `flock` on the folder, held as long as
    /// the store lives), and a system without `/proc/self/fd` (publishing
    /// renames through a folder handle).
    pub fn open(
        state_dir: &Path,
        served_root: &Path,
        settings: Settings,
    ) -> io::Result<(Store, Recovery)> {
        match fs::DirBuilder::new().mode(0o700).create(state_dir) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            Err(_) => {}
            // Its entry is durable before any upload is acknowledged in it.
            Ok(()) => crate::fs_path::sync_parent(state_dir)?,
        }
        let dir_file = File::open(state_dir)?;
        let stat = dir_file.metadata()?;
        if !stat.is_dir() {
            return Err(io::Error::other(format!(
                "the upload state folder {} is not a folder",
                state_dir.display()
            )));
        }
        if stat.dev() != fs::metadata(served_root)?.dev() {
            return Err(io::Error::other(format!(
                "the upload state folder {} is on another file system than the served folder {}; \
                 uploads are published by renaming, which only works within one file system",
                state_dir.display(),
                served_root.display()
            )));
        }
        if !crate::sys::try_lock_exclusive(dir_file.as_raw_fd())? {
            return Err(io::Error::other(format!(
                "another ranged process uses the upload state folder {}",
                state_dir.display()
            )));
        }
        if !fd_path(&dir_file).is_dir() {
            return Err(io::Error::other(
                "uploads need /proc mounted: files are published through /proc/self/fd",
            ));
        }
        let store = Store {
            dir: state_dir.to_path_buf(),
            dir_file,
            settings,
            inner: Mutex::new(Inner::default()),
        };
        let recovery = store.recover(unix_now())?;
        Ok((store, recovery))
    }

    /// Creates an upload: its empty data file and its meta file, durably.
    /// Refused when [`Settings::max_unfinished`] uploads are unfinished, or a
    /// known length (plus a small reserve) exceeds the free space of the state
    /// folder. Free space is not reserved: uploads created together may still
    /// fill the disk, and their writes then fail with [`WriteError::NoSpace`].
    pub fn create(&self, new: NewUpload) -> Result<Info, CreateError> {
        if [&new.target, &new.name, &new.owner, &new.metadata]
            .iter()
            .any(|s| s.len() > MAX_FIELD)
        {
            return Err(CreateError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                "upload field too long",
            )));
        }
        {
            let mut inner = lock(&self.inner);
            let open = inner
                .uploads
                .iter()
                .filter(|(_, e)| e.meta.state == State::Open)
                .count();
            if open + inner.creating >= self.settings.max_unfinished {
                return Err(CreateError::TooMany);
            }
            inner.creating += 1;
        }
        let result = self.create_files(new);
        let mut inner = lock(&self.inner);
        inner.creating -= 1;
        let (id, meta) = result?;
        let info = self.info_of(&id, &meta, false);
        inner.uploads.insert(
            id,
            Entry {
                meta,
                writer: None,
                ending: false,
            },
        );
        Ok(info)
    }

    fn create_files(&self, new: NewUpload) -> Result<(UploadId, Meta), CreateError> {
        if let Some(len) = new.length {
            let free = crate::sys::available_bytes(self.dir_file.as_raw_fd())?;
            if free < len.saturating_add(SPACE_RESERVE) {
                return Err(CreateError::NoSpace);
            }
        }
        let id = UploadId::random()?;
        let data = self.path(&id, DATA);
        new_private_file(&data)?;
        let now = unix_now();
        let meta = Meta {
            state: State::Open,
            target: new.target,
            name: new.name,
            owner: new.owner,
            length: new.length,
            offset: 0,
            created: now,
            progress: now,
            deadline: new.deadline,
            sha256: new.sha256,
            metadata: new.metadata,
            hash_state: Some(save_hasher(&Sha256::new())),
        };
        if let Err(e) = self.write_meta(&id, &meta) {
            let _ = fs::remove_file(&data);
            return Err(e.into());
        }
        Ok((id, meta))
    }

    /// The upload as known in memory; `None` when unknown, terminated,
    /// expired or past its deadline (the caller answers 404 or 410).
    /// Never touches the disk.
    pub fn info(&self, id: &UploadId) -> Option<Info> {
        self.info_at(id, unix_now())
    }

    fn info_at(&self, id: &UploadId, now: u64) -> Option<Info> {
        let inner = lock(&self.inner);
        let entry = inner.uploads.get(id).filter(|e| !e.ending)?;
        if now >= self.expires_at(&entry.meta) {
            return None;
        }
        Some(self.info_of(id, &entry.meta, entry.writer.is_some()))
    }

    fn info_of(&self, id: &UploadId, meta: &Meta, writing: bool) -> Info {
        Info {
            id: *id,
            offset: meta.offset,
            length: meta.length,
            metadata: meta.metadata.clone(),
            target: meta.target.clone(),
            name: meta.name.clone(),
            owner: meta.owner.clone(),
            created: meta.created,
            expires_at: self.expires_at(meta),
            finished: meta.state == State::Published,
            writing,
        }
    }

    fn expires_at(&self, meta: &Meta) -> u64 {
        let idle = meta
            .progress
            .saturating_add(self.settings.expiry.as_secs().max(1));
        meta.deadline.map_or(idle, |d| d.min(idle))
    }

    /// Starts writing at `client_offset`, which must be the committed offset.
    ///
    /// A writer still open on the upload is ended first (see the module doc):
    /// its bytes are committed unless it asked otherwise. Then the data file
    /// is cut to the committed offset, and the whole-file SHA-256 resumes from
    /// the state saved at the last commit. Only when that state is missing
    /// (a meta file from elsewhere) are the committed bytes read again to
    /// rebuild it: a full read of the prefix, seconds per GiB on a slow card.
    ///
    /// Blocking: up to [`STALE_WRITER_WAIT`] plus one commit of a stale
    /// writer. Call it from the thread that will write.
    pub fn begin(
        self: &Arc<Self>,
        id: &UploadId,
        client_offset: u64,
    ) -> Result<Writer, BeginError> {
        let slot = Arc::new(Slot {
            cancel: AtomicBool::new(false),
            state: Mutex::new(None),
        });
        // Held until the writer is ready: a newer begin waits for it (bounded).
        let mut ready = lock(&slot.state);
        let old = {
            let mut inner = lock(&self.inner);
            let now = unix_now();
            let entry = inner
                .uploads
                .get(id)
                .filter(|e| !e.ending)
                .ok_or(BeginError::NotFound)?;
            if let (State::Published, Some(length)) = (entry.meta.state, entry.meta.length) {
                return Err(BeginError::Finished { length });
            }
            if now >= self.expires_at(&entry.meta) {
                return Err(BeginError::Gone);
            }
            let takeover = entry.writer.is_some();
            if !takeover && inner.active >= self.settings.max_active {
                return Err(BeginError::TooManyActive);
            }
            if !takeover {
                inner.active += 1;
            }
            let entry = inner.uploads.get_mut(id).ok_or(BeginError::NotFound)?;
            entry.writer.replace(Arc::clone(&slot))
        };
        if let Some(old) = old
            && !self.end_writer(id, &old)
        {
            let mut inner = lock(&self.inner);
            if let Some(entry) = inner.uploads.get_mut(id)
                && entry.writer.as_ref().is_some_and(|w| Arc::ptr_eq(w, &slot))
            {
                entry.writer = Some(old);
            }
            return Err(BeginError::Busy);
        }
        match self.open_writer(id, client_offset) {
            Ok(state) => {
                let (offset, committed, length) =
                    (state.offset, state.meta.offset, state.meta.length);
                *ready = Some(state);
                drop(ready);
                Ok(Writer {
                    store: Arc::clone(self),
                    id: *id,
                    slot,
                    offset,
                    committed,
                    length,
                })
            }
            Err(e) => {
                drop(ready);
                self.release(id, &slot);
                Err(e)
            }
        }
    }

    fn open_writer(&self, id: &UploadId, client_offset: u64) -> Result<WriteState, BeginError> {
        let meta = {
            let inner = lock(&self.inner);
            let entry = inner.uploads.get(id).ok_or(BeginError::NotFound)?;
            entry.meta.clone()
        };
        if let (State::Published, Some(length)) = (meta.state, meta.length) {
            return Err(BeginError::Finished { length });
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.path(id, DATA))?;
        let on_disk = file.metadata()?.len();
        if on_disk < meta.offset {
            return Err(BeginError::Io(io::Error::other(format!(
                "upload {id}: data file shorter than its committed offset"
            ))));
        }
        if on_disk > meta.offset {
            file.set_len(meta.offset)?;
        }
        if client_offset != meta.offset {
            return Err(BeginError::OffsetMismatch {
                current: meta.offset,
            });
        }
        let hasher = match meta.hash_state.as_deref().and_then(load_hasher) {
            Some(h) => h,
            None => {
                let h = hash_prefix(&file, meta.offset)?;
                let mut inner = lock(&self.inner);
                if let Some(entry) = inner.uploads.get_mut(id)
                    && entry.meta.offset == meta.offset
                {
                    entry.meta.hash_state = Some(save_hasher(&h));
                }
                h
            }
        };
        Ok(WriteState {
            file,
            offset: meta.offset,
            meta,
            committed_hasher: hasher.clone(),
            hasher,
            keep_partial: true,
            since_commit: 0,
            last_commit: Instant::now(),
            space: Space::default(),
        })
    }

    /// Ends a stale writer, if one is open, so that [`Store::info`] then gives
    /// the offset a client may resume from (for a HEAD). Its bytes are
    /// committed unless it asked otherwise. Blocking, like [`Store::begin`].
    /// Errors: `NotFound`, `Busy`.
    pub fn settle(&self, id: &UploadId) -> Result<(), BeginError> {
        let old = {
            let inner = lock(&self.inner);
            let entry = inner
                .uploads
                .get(id)
                .filter(|e| !e.ending)
                .ok_or(BeginError::NotFound)?;
            entry.writer.clone()
        };
        if let Some(old) = old {
            if !self.end_writer(id, &old) {
                return Err(BeginError::Busy);
            }
            self.release(id, &old);
        }
        Ok(())
    }

    /// Removes an upload (tus termination): ends its writer without keeping
    /// its uncommitted bytes, then deletes its files. A tombstone is removed
    /// too. Later lookups: `None` / `NotFound`. Errors: `NotFound`, `Busy`,
    /// `Io`.
    pub fn terminate(&self, id: &UploadId) -> Result<(), BeginError> {
        let writer = {
            let mut inner = lock(&self.inner);
            let entry = inner
                .uploads
                .get_mut(id)
                .filter(|e| !e.ending)
                .ok_or(BeginError::NotFound)?;
            entry.ending = true;
            entry.writer.clone()
        };
        if let Some(w) = writer {
            w.cancel.store(true, Ordering::SeqCst);
            match lock_bounded(&w.state, STALE_WRITER_WAIT) {
                Some(mut state) => drop(state.take()),
                None => {
                    if let Some(entry) = lock(&self.inner).uploads.get_mut(id) {
                        entry.ending = false;
                    }
                    return Err(BeginError::Busy);
                }
            }
        }
        {
            let mut inner = lock(&self.inner);
            if let Some(entry) = inner.uploads.remove(id)
                && entry.writer.is_some()
            {
                inner.active -= 1;
            }
        }
        self.remove_files(id)?;
        self.dir_file.sync_all()?;
        Ok(())
    }

    /// Removes uploads idle (no commit) past the expiry, past their deadline,
    /// and tombstones past the expiry, unless a writer holds them (a later
    /// sweep will). `now` is Unix seconds. Returns how many were removed, and
    /// logs one line when that is not zero.
    pub fn sweep(&self, now: u64) -> usize {
        let mut victims = Vec::new();
        {
            let mut inner = lock(&self.inner);
            inner.uploads.retain(|id, e| {
                let expired = e.writer.is_none() && !e.ending && now >= self.expires_at(&e.meta);
                if expired {
                    victims.push((*id, e.meta.state, e.meta.offset));
                }
                !expired
            });
        }
        if victims.is_empty() {
            return 0;
        }
        let mut bytes = 0u64;
        for (id, state, offset) in &victims {
            if *state == State::Open {
                bytes = bytes.saturating_add(*offset);
            }
            if let Err(e) = self.remove_files(id) {
                log::warn!("upload {id}: removing expired files: {e}");
            }
        }
        let _ = self.dir_file.sync_all();
        let open = victims.iter().filter(|v| v.1 == State::Open).count();
        log::info!(
            "upload sweep: removed {open} expired uploads ({bytes} bytes) and {} tombstones",
            victims.len() - open
        );
        victims.len()
    }

    /// Runs [`Store::sweep`] every `period` on a background thread, until the
    /// store is dropped. See [`sweep_period`].
    pub fn spawn_sweeper(
        store: Arc<Store>,
        period: Duration,
    ) -> io::Result<std::thread::JoinHandle<()>> {
        let weak = Arc::downgrade(&store);
        drop(store);
        std::thread::Builder::new()
            .name("upload-sweep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(period);
                    let Some(store) = weak.upgrade() else {
                        return;
                    };
                    store.sweep(unix_now());
                }
            })
    }

    /// Starts a whole-file upload (PUT) into a staging file. `expected_len`
    /// (a `Content-Length`) is checked against the free space and bounds the
    /// writes; `expected_sha256` (a `Repr-Digest`) is verified before
    /// publishing. Counts as an active writer. Dropping the [`Staged`]
    /// without publishing removes the file.
    pub fn stage(
        self: &Arc<Self>,
        expected_len: Option<u64>,
        expected_sha256: Option<[u8; 32]>,
    ) -> Result<Staged, CreateError> {
        {
            let mut inner = lock(&self.inner);
            if inner.active >= self.settings.max_active {
                return Err(CreateError::TooMany);
            }
            inner.active += 1;
        }
        let result = (|| -> Result<Staged, CreateError> {
            if let Some(len) = expected_len {
                let free = crate::sys::available_bytes(self.dir_file.as_raw_fd())?;
                if free < len.saturating_add(SPACE_RESERVE) {
                    return Err(CreateError::NoSpace);
                }
            }
            let path = self.path(&UploadId::random()?, STAGE);
            let file = new_private_file(&path)?;
            Ok(Staged {
                store: Arc::clone(self),
                path,
                file,
                len: 0,
                expected_len,
                expected_sha256,
                hasher: Sha256::new(),
                space: Space::default(),
                published: false,
            })
        })();
        if result.is_err() {
            lock(&self.inner).active -= 1;
        }
        result
    }

    /// Ends `old`: raises its cancel flag, waits (bounded) for the call it is
    /// in, commits its bytes if it allows that, and leaves it ended. `false`:
    /// it did not come out of its call in time.
    fn end_writer(&self, id: &UploadId, old: &Slot) -> bool {
        old.cancel.store(true, Ordering::SeqCst);
        let Some(mut guard) = lock_bounded(&old.state, STALE_WRITER_WAIT) else {
            return false;
        };
        if let Some(mut state) = guard.take()
            && state.keep_partial
            && state.offset > state.meta.offset
        {
            match self.commit_state(id, &mut state) {
                Ok(n) => log::info!("upload {id}: stale writer ended, kept {n} bytes"),
                Err(e) => log::warn!("upload {id}: stale writer ended, its tail dropped: {e:?}"),
            }
        }
        true
    }

    /// Forgets `slot` as the writer of `id`, if it still is.
    fn release(&self, id: &UploadId, slot: &Arc<Slot>) {
        let mut inner = lock(&self.inner);
        let Some(entry) = inner.uploads.get_mut(id) else {
            return;
        };
        if entry.writer.as_ref().is_some_and(|w| Arc::ptr_eq(w, slot)) {
            entry.writer = None;
            inner.active -= 1;
        }
    }

    /// fdatasync, then the meta file with the new offset: the promise.
    fn commit_state(&self, id: &UploadId, state: &mut WriteState) -> Result<u64, WriteError> {
        if state.offset == state.meta.offset {
            return Ok(state.offset);
        }
        state.file.sync_data()?;
        let mut meta = state.meta.clone();
        meta.offset = state.offset;
        meta.progress = unix_now();
        meta.hash_state = Some(save_hasher(&state.hasher));
        self.write_meta(id, &meta)?;
        self.update_entry(id, &meta);
        state.meta = meta;
        state.committed_hasher = state.hasher.clone();
        state.since_commit = 0;
        state.last_commit = Instant::now();
        Ok(state.offset)
    }

    fn update_entry(&self, id: &UploadId, meta: &Meta) {
        if let Some(entry) = lock(&self.inner).uploads.get_mut(id) {
            entry.meta.clone_from(meta);
        }
    }

    /// Replaces `<id>.meta` whole: tmp, fsync, rename, fsync the folder.
    fn write_meta(&self, id: &UploadId, meta: &Meta) -> io::Result<()> {
        use std::io::Write;
        let tmp = self.path(id, META_TMP);
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        let written = file
            .write_all(meta.encode().as_bytes())
            .and_then(|()| file.sync_all())
            .and_then(|()| fs::rename(&tmp, self.path(id, META)));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        self.dir_file.sync_all()
    }

    /// Meta first: a data file without its meta is an orphan at the next
    /// start, while a meta without data could read as a finished upload.
    fn remove_files(&self, id: &UploadId) -> io::Result<()> {
        for kind in [META, DATA] {
            match fs::remove_file(self.path(id, kind)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    fn path(&self, id: &UploadId, kind: &str) -> PathBuf {
        self.dir.join(format!("{id}{kind}"))
    }

    /// Removes the oldest tombstones beyond [`MAX_TOMBSTONES`].
    fn prune_tombstones(&self) {
        let victims: Vec<UploadId> = {
            let mut inner = lock(&self.inner);
            let mut tombs: Vec<(u64, UploadId)> = inner
                .uploads
                .iter()
                .filter(|(_, e)| {
                    e.meta.state == State::Published && e.writer.is_none() && !e.ending
                })
                .map(|(id, e)| (e.meta.progress, *id))
                .collect();
            let mut victims = Vec::new();
            // Usually one over the limit: pick the oldest each time rather
            // than sort.
            while tombs.len() > MAX_TOMBSTONES {
                let Some(i) = (0..tombs.len()).min_by_key(|&i| tombs[i].0) else {
                    break;
                };
                let (_, id) = tombs.swap_remove(i);
                inner.uploads.remove(&id);
                victims.push(id);
            }
            victims
        };
        for id in victims {
            let _ = self.remove_files(&id);
        }
    }

    /// Start-up: reads every meta file, cuts torn tails, removes what is
    /// expired or orphaned. Files whose names are not ours are left alone.
    fn recover(&self, now: u64) -> io::Result<Recovery> {
        let mut rec = Recovery::default();
        let mut metas = Vec::new();
        let mut datas = Vec::new();
        let mut removed_any = false;
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            match classify(&name) {
                Some((id, Kind::Meta)) => metas.push(id),
                Some((id, Kind::Data)) => datas.push(id),
                Some((_, Kind::MetaTmp | Kind::Stage)) => {
                    fs::remove_file(entry.path())?;
                    rec.orphans_removed += 1;
                    removed_any = true;
                }
                None => {}
            }
        }
        let mut inner = lock(&self.inner);
        for id in metas {
            let has_data = match datas.iter().position(|d| *d == id) {
                Some(i) => {
                    datas.swap_remove(i);
                    true
                }
                None => false,
            };
            let meta = read_meta(&self.path(&id, META));
            let Some(mut meta) = meta else {
                log::warn!("upload {id}: unreadable meta file, upload removed");
                rec.orphans_removed += 1 + usize::from(has_data);
                self.remove_files(&id)?;
                removed_any = true;
                continue;
            };
            if now >= self.expires_at(&meta) {
                rec.expired_removed += 1;
                self.remove_files(&id)?;
                removed_any = true;
                continue;
            }
            let complete = meta.length == Some(meta.offset);
            match (meta.state, has_data) {
                (State::Published, true) => {
                    fs::remove_file(self.path(&id, DATA))?;
                    rec.orphans_removed += 1;
                    removed_any = true;
                }
                (State::Published, false) => {}
                // The data went to its target (rename done), the tombstone
                // was not written yet.
                (State::Open, false) if complete => {
                    meta.state = State::Published;
                    meta.hash_state = None;
                    self.write_meta(&id, &meta)?;
                }
                (State::Open, false) => {
                    log::warn!("upload {id}: data file missing, upload removed");
                    fs::remove_file(self.path(&id, META))?;
                    rec.orphans_removed += 1;
                    removed_any = true;
                    continue;
                }
                (State::Open, true) => {
                    let file = OpenOptions::new().write(true).open(self.path(&id, DATA))?;
                    let len = file.metadata()?.len();
                    if len > meta.offset {
                        file.set_len(meta.offset)?;
                        rec.bytes_truncated += len - meta.offset;
                    } else if len < meta.offset {
                        // Committed bytes are gone (the disk did not keep a
                        // flushed write, or someone cut the file): resume
                        // from what is there rather than lose the upload.
                        log::warn!(
                            "upload {id}: data file has {len} of {} committed bytes; resuming from {len}",
                            meta.offset
                        );
                        meta.offset = len;
                        meta.hash_state = None;
                        self.write_meta(&id, &meta)?;
                    }
                    rec.resumed += 1;
                    if complete {
                        rec.unpublished.push(id);
                    }
                }
            }
            inner.uploads.insert(
                id,
                Entry {
                    meta,
                    writer: None,
                    ending: false,
                },
            );
        }
        for id in datas {
            fs::remove_file(self.path(&id, DATA))?;
            rec.orphans_removed += 1;
            removed_any = true;
        }
        drop(inner);
        if removed_any {
            self.dir_file.sync_all()?;
        }
        self.prune_tombstones();
        Ok(rec)
    }
}

/// A good sweep period for an expiry: a quarter of it, between 1 s and 60 s.
pub fn sweep_period(expiry: Duration) -> Duration {
    (expiry / 4).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// The one writer of an upload, from [`Store::begin`]. Dropping it commits
/// the bytes written since the last commit, as a takeover does, unless
/// [`Writer::set_keep_partial`] is `false` (then the next `begin` cuts them
/// off). Roll back explicitly what must not be kept.
pub struct Writer {
    store: Arc<Store>,
    id: UploadId,
    slot: Arc<Slot>,
    offset: u64,
    committed: u64,
    length: Option<u64>,
}

impl Writer {
    pub fn id(&self) -> UploadId {
        self.id
    }

    /// Bytes received, committed or not.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The last committed offset (at `begin`, the client's offset).
    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// `None` while deferred.
    pub fn length(&self) -> Option<u64> {
        self.length
    }

    /// A newer request wants the upload: stop reading the body, commit, drop.
    pub fn is_cancelled(&self) -> bool {
        self.slot.cancel.load(Ordering::SeqCst)
    }

    /// Whether bytes not yet committed are committed when a newer request
    /// takes the upload over (default `true`: resuming is the point). Set
    /// `false` while a per-request checksum is pending: such bytes may only
    /// be kept once verified. While `false`, [`Writer::should_commit`] says no.
    pub fn set_keep_partial(&mut self, keep: bool) {
        if let Some(state) = lock(&self.slot.state).as_mut() {
            state.keep_partial = keep;
        }
    }

    /// Appends `data`. Never past the declared length: such a call writes
    /// nothing and fails with [`WriteError::PastLength`] (the caller then rolls
    /// back and answers 413). [`WriteError::NoSpace`] when the disk is full;
    /// [`WriteError::Cancelled`] once a newer request took over.
    pub fn write(&mut self, data: &[u8]) -> Result<(), WriteError> {
        let mut guard = lock(&self.slot.state);
        let state = guard.as_mut().ok_or(WriteError::Cancelled)?;
        if self.slot.cancel.load(Ordering::SeqCst) {
            return Err(WriteError::Cancelled);
        }
        let n = data.len() as u64;
        let end = state.offset.checked_add(n).ok_or(WriteError::PastLength)?;
        if state.meta.length.is_some_and(|len| end > len) {
            return Err(WriteError::PastLength);
        }
        state.space.take(&self.store.dir_file, n)?;
        let (written, result) = write_all_at(&state.file, data, state.offset);
        state.hasher.update(&data[..written]);
        state.offset += written as u64;
        state.since_commit += written as u64;
        self.offset = state.offset;
        result.map_err(WriteError::from)
    }

    /// Time for a commit in the middle of a long request: after
    /// [`COMMIT_BYTES`] or [`COMMIT_INTERVAL`] with bytes pending; never while
    /// [`Writer::set_keep_partial`] is `false`.
    pub fn should_commit(&self) -> bool {
        let guard = lock(&self.slot.state);
        guard.as_ref().is_some_and(|s| {
            s.keep_partial
                && s.since_commit > 0
                && (s.since_commit >= COMMIT_BYTES || s.last_commit.elapsed() >= COMMIT_INTERVAL)
        })
    }

    /// Makes every byte written so far durable and records the new offset
    /// (fdatasync, then the meta file), and returns it. **The offset returned
    /// survives `kill -9` and power loss.** Also moves the expiry forward.
    /// Allowed after [`WriteError::Cancelled`] from `write` (the stale writer
    /// keeps what it has) until the takeover completes; then `Cancelled`.
    pub fn commit(&mut self) -> Result<u64, WriteError> {
        let mut guard = lock(&self.slot.state);
        let state = guard.as_mut().ok_or(WriteError::Cancelled)?;
        let n = self.store.commit_state(&self.id, state)?;
        self.committed = n;
        Ok(n)
    }

    /// Drops every byte since `begin` or the last commit (a checksum mismatch,
    /// a request that cannot be verified): the data file is cut back and the
    /// whole-file hash rewound.
    pub fn rollback(&mut self) -> Result<(), WriteError> {
        let mut guard = lock(&self.slot.state);
        let state = guard.as_mut().ok_or(WriteError::Cancelled)?;
        state.file.set_len(state.meta.offset)?;
        state.offset = state.meta.offset;
        state.hasher = state.committed_hasher.clone();
        state.since_commit = 0;
        self.offset = state.offset;
        Ok(())
    }

    /// Sets a deferred length (once; the same value again is accepted), and
    /// records it durably. [`WriteError::Length`] when already set to another
    /// value or below [`Writer::offset`].
    pub fn set_length(&mut self, length: u64) -> Result<(), WriteError> {
        let mut guard = lock(&self.slot.state);
        let state = guard.as_mut().ok_or(WriteError::Cancelled)?;
        match state.meta.length {
            Some(n) if n == length => return Ok(()),
            Some(_) => return Err(WriteError::Length),
            None if length < state.offset => return Err(WriteError::Length),
            None => {}
        }
        let mut meta = state.meta.clone();
        meta.length = Some(length);
        self.store.write_meta(&self.id, &meta)?;
        self.store.update_entry(&self.id, &meta);
        state.meta = meta;
        self.length = Some(length);
        Ok(())
    }

    /// Publishes the complete upload (offset == length) as `target`:
    ///
    /// 1. the expected SHA-256, if any, must match ([`PublishError::DigestMismatch`]
    ///    removes the upload: it can never become right);
    /// 2. pending bytes are committed, so a failure below leaves a whole
    ///    upload that can be published again;
    /// 3. mode 0644, fsync, then rename into the folder through its handle
    ///    (`/proc/self/fd/<dirfd>/<name>`: a folder swapped for a symlink after
    ///    the caller opened it cannot redirect the file) — or link, then
    ///    unlink, for `no_clobber`;
    /// 4. fsync of the target folder;
    /// 5. the meta file becomes a tombstone, kept until expiry.
    pub fn publish(self, target: &Target) -> Result<Published, PublishError> {
        let mut guard = lock(&self.slot.state);
        let state = guard.as_mut().ok_or(PublishError::Cancelled)?;
        let len = state.offset;
        if state.meta.length != Some(len) {
            return Err(PublishError::Incomplete);
        }
        let sha256: [u8; 32] = state.hasher.clone().finalize().into();
        if state.meta.sha256.is_some_and(|want| want != sha256) {
            guard.take();
            {
                let mut inner = lock(&self.store.inner);
                if let Some(entry) = inner.uploads.remove(&self.id)
                    && entry.writer.is_some()
                {
                    inner.active -= 1;
                }
            }
            self.store.remove_files(&self.id)?;
            log::info!("upload {}: SHA-256 mismatch, upload removed", self.id);
            return Err(PublishError::DigestMismatch);
        }
        self.store.commit_state(&self.id, state)?;
        state
            .file
            .set_permissions(fs::Permissions::from_mode(PUBLISHED_MODE))?;
        state.file.sync_all()?;
        let version = Version::of(&state.file.metadata()?);
        let replaced = place(&self.store.path(&self.id, DATA), target)?;
        sync_published(target);
        let mut meta = state.meta.clone();
        meta.state = State::Published;
        meta.hash_state = None;
        meta.progress = unix_now();
        if let Err(e) = self.store.write_meta(&self.id, &meta) {
            // The file is in place; only the "complete" answer to a late
            // HEAD is at risk (recovery infers it from the missing data).
            log::warn!("upload {}: writing its tombstone: {e}", self.id);
        }
        self.store.update_entry(&self.id, &meta);
        guard.take();
        drop(guard);
        self.store.prune_tombstones();
        Ok(Published {
            replaced,
            len,
            sha256,
            version,
        })
    }
}

impl Drop for Writer {
    /// Keeps what arrived (a client that vanished resumes from there) unless
    /// [`Writer::set_keep_partial`] said otherwise, then lets go. Holding the
    /// state lock through the commit makes a takeover wait for it.
    fn drop(&mut self) {
        let mut guard = lock(&self.slot.state);
        if let Some(mut state) = guard.take()
            && state.keep_partial
            && state.offset > state.meta.offset
            && let Err(e) = self.store.commit_state(&self.id, &mut state)
        {
            log::warn!("upload {}: keeping the last bytes: {e:?}", self.id);
        }
        drop(guard);
        self.store.release(&self.id, &self.slot);
    }
}

/// A whole-file upload (PUT) being received, from [`Store::stage`].
pub struct Staged {
    store: Arc<Store>,
    path: PathBuf,
    file: File,
    len: u64,
    expected_len: Option<u64>,
    expected_sha256: Option<[u8; 32]>,
    hasher: Sha256,
    space: Space,
    published: bool,
}

impl Staged {
    /// Bytes received.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `data`; never past `expected_len` ([`WriteError::PastLength`],
    /// nothing of this call written). [`WriteError::NoSpace`] when full.
    pub fn write(&mut self, data: &[u8]) -> Result<(), WriteError> {
        let n = data.len() as u64;
        let end = self.len.checked_add(n).ok_or(WriteError::PastLength)?;
        if self.expected_len.is_some_and(|len| end > len) {
            return Err(WriteError::PastLength);
        }
        self.space.take(&self.store.dir_file, n)?;
        let (written, result) = write_all_at(&self.file, data, self.len);
        self.hasher.update(&data[..written]);
        self.len += written as u64;
        result.map_err(WriteError::from)
    }

    /// Publishes the staged file as `target`, with the same steps as
    /// [`Writer::publish`]: length and digest checks, mode 0644, fsync,
    /// rename (or link) through the folder handle, fsync of the folder.
    /// On any error nothing is published and the staging file is removed.
    pub fn publish(mut self, target: &Target) -> Result<Published, PublishError> {
        if self.expected_len.is_some_and(|len| len != self.len) {
            return Err(PublishError::Incomplete);
        }
        let sha256: [u8; 32] = self.hasher.clone().finalize().into();
        if self.expected_sha256.is_some_and(|want| want != sha256) {
            return Err(PublishError::DigestMismatch);
        }
        self.file
            .set_permissions(fs::Permissions::from_mode(PUBLISHED_MODE))?;
        self.file.sync_all()?;
        let version = Version::of(&self.file.metadata()?);
        let replaced = place(&self.path, target)?;
        self.published = true;
        sync_published(target);
        Ok(Published {
            replaced,
            len: self.len,
            sha256,
            version,
        })
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.published
            && let Err(e) = fs::remove_file(&self.path)
        {
            log::warn!("removing staging file {}: {e}", self.path.display());
        }
        lock(&self.store.inner).active -= 1;
    }
}

/// Moves `src` (in the state folder) to `target`, through the folder handle.
/// Returns whether a file was replaced.
fn place(src: &Path, target: &Target) -> Result<bool, PublishError> {
    let name = target.name.as_str();
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(PublishError::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a published name must be one path segment",
        )));
    }
    let dest = fd_path(&target.dir).join(name);
    let existing = match fs::symlink_metadata(&dest) {
        Ok(m) => Some(m.is_dir()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e.into()),
    };
    match existing {
        Some(true) => return Err(PublishError::IsDirectory),
        Some(false) if target.no_clobber => return Err(PublishError::Exists),
        _ => {}
    }
    if target.no_clobber {
        match fs::hard_link(src, &dest) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(match fs::symlink_metadata(&dest) {
                    Ok(m) if m.is_dir() => PublishError::IsDirectory,
                    _ => PublishError::Exists,
                });
            }
            Err(e) => return Err(e.into()),
        }
        if let Err(e) = fs::remove_file(src) {
            log::warn!("removing {} after publishing it: {e}", src.display());
        }
        Ok(false)
    } else {
        match fs::rename(src, &dest) {
            Ok(()) => Ok(existing.is_some()),
            Err(e) if e.kind() == io::ErrorKind::IsADirectory => Err(PublishError::IsDirectory),
            Err(e) => Err(e.into()),
        }
    }
}

/// fsyncs the folder a file was just renamed into. A failure is logged, not
/// returned: the file is in place and readers already see it, so answering
/// the upload as failed would only make the client send it again.
fn sync_published(target: &Target) {
    if let Err(e) = target.dir.sync_all() {
        log::warn!("fsync of the folder of {}: {e}", target.name);
    }
}

/// `/proc/self/fd/<fd>`: the kernel resolves it to the very folder the
/// handle refers to, whatever happened to its path since.
fn fd_path(dir: &File) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()))
}

/// Free space, read with `statvfs` now and then and estimated in between.
#[derive(Default)]
struct Space {
    estimate: u64,
    since_check: u64,
    checked: bool,
}

impl Space {
    /// Claims `n` bytes, or [`WriteError::NoSpace`] when they would dip into
    /// the reserve.
    fn take(&mut self, dir: &File, n: u64) -> Result<(), WriteError> {
        let wanted = n.saturating_add(SPACE_RESERVE);
        if !self.checked || self.since_check >= SPACE_RECHECK || self.estimate < wanted {
            self.estimate = crate::sys::available_bytes(dir.as_raw_fd())?;
            self.since_check = 0;
            self.checked = true;
        }
        if self.estimate < wanted {
            return Err(WriteError::NoSpace);
        }
        self.estimate -= n;
        self.since_check = self.since_check.saturating_add(n);
        Ok(())
    }
}

/// `write_all` at a position, reporting how much went in before an error.
fn write_all_at(file: &File, data: &[u8], pos: u64) -> (usize, io::Result<()>) {
    let mut done = 0;
    while done < data.len() {
        match file.write_at(&data[done..], pos + done as u64) {
            Ok(0) => return (done, Err(io::ErrorKind::WriteZero.into())),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (done, Err(e)),
        }
    }
    (done, Ok(()))
}

fn hash_prefix(file: &File, len: u64) -> io::Result<Sha256> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut pos = 0u64;
    while pos < len {
        let want = buf
            .len()
            .min(usize::try_from(len - pos).unwrap_or(usize::MAX));
        let n = file.read_at(&mut buf[..want], pos)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        hasher.update(&buf[..n]);
        pos += n as u64;
    }
    Ok(hasher)
}

fn save_hasher(h: &Sha256) -> Vec<u8> {
    h.serialize().to_vec()
}

fn load_hasher(bytes: &[u8]) -> Option<Sha256> {
    let state = SerializedState::<Sha256>::try_from(bytes).ok()?;
    Sha256::deserialize(&state).ok()
}

fn read_meta(path: &Path) -> Option<Meta> {
    let mut text = String::new();
    File::open(path)
        .ok()?
        .take(META_READ_LIMIT)
        .read_to_string(&mut text)
        .ok()?;
    Meta::decode(&text)
}

fn new_private_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

const DATA: &str = ".data";
const META: &str = ".meta";
const META_TMP: &str = ".meta.tmp";
const STAGE: &str = ".put";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Data,
    Meta,
    MetaTmp,
    Stage,
}

/// Which of our files a name in the state folder is; `None`: not ours.
fn classify(name: &str) -> Option<(UploadId, Kind)> {
    let id = UploadId::parse(name.get(..32)?)?;
    let kind = match name.get(32..)? {
        DATA => Kind::Data,
        META => Kind::Meta,
        META_TMP => Kind::MetaTmp,
        STAGE => Kind::Stage,
        _ => return None,
    };
    Some((id, kind))
}

fn is_no_space(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

fn unix_now() -> u64 {
    super::tus::unix_secs(SystemTime::now())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `lock`, giving up after `bound`.
fn lock_bounded<T>(m: &Mutex<T>, bound: Duration) -> Option<MutexGuard<'_, T>> {
    let start = Instant::now();
    loop {
        match m.try_lock() {
            Ok(g) => return Some(g),
            Err(TryLockError::Poisoned(p)) => return Some(p.into_inner()),
            Err(TryLockError::WouldBlock) if start.elapsed() >= bound => return None,
            Err(TryLockError::WouldBlock) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A served root under /tmp with `in/` as the upload folder and `.state/`
    /// as the state folder; removed on drop.
    struct Fixture {
        root: PathBuf,
        _dir: crate::testing::TempDir,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = crate::testing::TempDir::new();
            let root = dir.path().to_path_buf();
            fs::create_dir_all(root.join("in")).unwrap();
            Fixture { root, _dir: dir }
        }

        fn state(&self) -> PathBuf {
            self.root.join(".state")
        }

        fn open(&self, settings: Settings) -> (Arc<Store>, Recovery) {
            let (store, rec) = Store::open(&self.state(), &self.root, settings).unwrap();
            (Arc::new(store), rec)
        }

        fn target(&self, name: &str, no_clobber: bool) -> Target {
            Target {
                dir: File::open(self.root.join("in")).unwrap(),
                name: name.into(),
                no_clobber,
            }
        }

        fn data_len(&self, id: &UploadId) -> u64 {
            fs::metadata(self.state().join(format!("{id}.data")))
                .unwrap()
                .len()
        }

        /// Names in the state folder, sorted.
        fn state_files(&self) -> Vec<String> {
            let mut names: Vec<String> = fs::read_dir(self.state())
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            names.sort();
            names
        }
    }

    const SETTINGS: Settings = Settings {
        expiry: Duration::from_secs(3600),
        max_unfinished: 16,
        max_active: 8,
    };

    fn new_upload(length: Option<u64>) -> NewUpload {
        NewUpload {
            target: "/in/".into(),
            name: "f.bin".into(),
            length,
            metadata: "filename Zi5iaW4=".into(),
            owner: "alice".into(),
            sha256: None,
            deadline: None,
        }
    }

    fn sha256(data: &[u8]) -> [u8; 32] {
        Sha256::digest(data).into()
    }

    /// Deterministic test bytes.
    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    /// Writers and stagings move to body threads; the store is shared.
    const _: fn() = || {
        fn shared<T: Send + Sync>() {}
        shared::<Store>();
        shared::<Writer>();
        shared::<Staged>();
    };

    #[test]
    fn ids_and_file_names() {
        let id = UploadId::random().unwrap();
        let text = id.to_string();
        assert_eq!(text.len(), 32);
        assert_eq!(UploadId::parse(&text), Some(id));
        const IDS: &[(&str, bool)] = &[
            ("0123456789abcdef0123456789abcdef", true),
            ("0123456789ABCDEF0123456789abcdef", false),
            ("0123456789abcdef0123456789abcde", false),
            ("0123456789abcdef0123456789abcdef0", false),
            ("0123456789abcdeg0123456789abcdef", false),
            ("", false),
        ];
        for &(text, ok) in IDS {
            assert_eq!(UploadId::parse(text).is_some(), ok, "{text:?}");
        }
        const NAMES: &[(&str, Option<Kind>)] = &[
            ("0123456789abcdef0123456789abcdef.data", Some(Kind::Data)),
            ("0123456789abcdef0123456789abcdef.meta", Some(Kind::Meta)),
            (
                "0123456789abcdef0123456789abcdef.meta.tmp",
                Some(Kind::MetaTmp),
            ),
            ("0123456789abcdef0123456789abcdef.put", Some(Kind::Stage)),
            ("0123456789abcdef0123456789abcdef.dat", None),
            ("0123456789abcdef0123456789abcdef", None),
            ("0123456789ABCDEF0123456789abcdef.data", None),
            ("notes.txt", None),
            ("ééééééééééééééééé.data", None),
        ];
        for &(name, kind) in NAMES {
            assert_eq!(classify(name).map(|(_, k)| k), kind, "{name:?}");
        }
    }

    /// Create, write, commit, restart: the committed offset survives, a torn
    /// tail is cut, and the whole-file digest resumes from the saved state.
    #[test]
    fn restart_keeps_committed_bytes_and_cuts_torn_tail() {
        let fx = Fixture::new();
        let content = pattern(300_000, 1);
        let id = {
            let (store, rec) = fx.open(SETTINGS);
            assert_eq!(rec, Recovery::default());
            let info = store
                .create(new_upload(Some(content.len() as u64)))
                .unwrap();
            assert_eq!((info.offset, info.finished), (0, false));
            let mut w = store.begin(&info.id, 0).unwrap();
            w.write(&content[..100_000]).unwrap();
            w.write(&content[100_000..120_000]).unwrap();
            assert_eq!(w.commit().unwrap(), 120_000);
            // Written but never committed: a crash loses it.
            w.write(&content[120_000..130_000]).unwrap();
            assert_eq!(store.info(&info.id).unwrap().offset, 120_000);
            // As if killed: the bytes stay in the file, uncommitted.
            w.set_keep_partial(false);
            drop(w);
            info.id
        };
        // A torn tail behind the store's back, as after a power loss.
        let mut f = OpenOptions::new()
            .append(true)
            .open(fx.state().join(format!("{id}.data")))
            .unwrap();
        f.write_all(&[0xEE; 5000]).unwrap();
        drop(f);
        let (store, rec) = fx.open(SETTINGS);
        assert_eq!(rec.resumed, 1);
        assert_eq!(rec.bytes_truncated, 10_000 + 5000);
        assert_eq!(fx.data_len(&id), 120_000);
        let info = store.info(&id).unwrap();
        assert_eq!(info.offset, 120_000);
        assert_eq!(info.length, Some(content.len() as u64));
        assert_eq!(info.metadata, "filename Zi5iaW4=");
        assert_eq!(info.owner, "alice");
        let mut w = store.begin(&id, 120_000).unwrap();
        w.write(&content[120_000..]).unwrap();
        let published = w.publish(&fx.target("f.bin", false)).unwrap();
        assert_eq!(
            published,
            Published {
                replaced: false,
                len: content.len() as u64,
                sha256: sha256(&content),
                version: Version::of(&fs::metadata(fx.root.join("in/f.bin")).unwrap()),
            }
        );
        assert_eq!(fs::read(fx.root.join("in/f.bin")).unwrap(), content);
        let mode = fs::metadata(fx.root.join("in/f.bin")).unwrap().mode();
        assert_eq!(mode & 0o777, PUBLISHED_MODE);
    }

    /// A meta file without the saved SHA-256 state: `begin` re-reads the
    /// committed bytes, and the digest is still that of the whole file.
    #[test]
    fn digest_rebuilt_when_hash_state_missing() {
        let fx = Fixture::new();
        let content = pattern(200_000, 2);
        let id = {
            let (store, _) = fx.open(SETTINGS);
            let id = store.create(new_upload(Some(200_000))).unwrap().id;
            let mut w = store.begin(&id, 0).unwrap();
            w.write(&content[..150_001]).unwrap();
            w.commit().unwrap();
            id
        };
        let meta_path = fx.state().join(format!("{id}.meta"));
        let text = fs::read_to_string(&meta_path).unwrap();
        let stripped: String = text
            .lines()
            .map(|l| if l.starts_with("hash ") { "hash -" } else { l })
            .flat_map(|l| [l, "\n"])
            .collect();
        assert_ne!(text, stripped);
        fs::write(&meta_path, stripped).unwrap();
        let (store, _) = fx.open(SETTINGS);
        let mut w = store.begin(&id, 150_001).unwrap();
        w.write(&content[150_001..]).unwrap();
        let published = w.publish(&fx.target("g.bin", false)).unwrap();
        assert_eq!(published.sha256, sha256(&content));
    }

    #[test]
    fn rollback_discards_since_last_commit() {
        let fx = Fixture::new();
        let (store, _) = fx.open(SETTINGS);
        let id = store.create(new_upload(Some(9))).unwrap().id;
        let mut w = store.begin(&id, 0).unwrap();
        w.write(b"abc").unwrap();
        assert_eq!(w.commit().unwrap(), 3);
        w.write(b"XXXX").unwrap();
        w.rollback().unwrap();
        assert_eq!((w.offset(), w.committed()), (3, 3));
        assert_eq!(fx.data_len(&id), 3);
        w.write(b"def").unwrap();
        w.commit().unwrap();
        w.write(b"ghi").unwrap();
        let published = w.publish(&fx.target("r.txt", false)).unwrap();
        assert_eq!(fs::read(fx.root.join("in/r.txt")).unwrap(), b"abcdefghi");
        // The whole-file hash was rewound with the bytes.
        assert_eq!(published.sha256, sha256(b"abcdefghi"));
    }

    #[test]
    fn offset_mismatch_changes_nothing() {
        let fx = Fixture::new();
        let (store, _) = fx.open(SETTINGS);
        let id = store.create(new_upload(Some(10))).unwrap().id;
        assert!(matches!(
            store.begin(&id, 5),
            Err(BeginError::OffsetMismatch { current: 0 })
        ));
        let mut w = store.begin(&id, 0).unwrap();
        w.write(b"12345").unwrap();
        w.commit().unwrap();
        drop(w);
        for wrong in [0, 4, 6, 10] {
            assert!(matches!(
                store.begin(&id, wrong),
                Err(BeginError::OffsetMismatch { current: 5 })
            ));
        }
        assert_eq!(store.info(&id).unwrap().offset, 5);
        assert!(!store.info(&id).unwrap().writing);
        assert!(store.begin(&id, 5).is_ok());
        let unknown = UploadId::random().unwrap();
        assert!(matches!(
            store.begin(&unknown, 0),
            Err(BeginError::NotFound)
        ));
    }

    #[test]
    fn nothing_past_the_length_is_kept() {
        let fx = Fixture::new();
        let (store, _) = fx.open(SETTINGS);
        let id = store.create(new_upload(Some(10))).unwrap().id;
        let mut w = store.begin(&id, 0).unwrap();
        w.write(b"12345678").unwrap();
        assert!(matches!(w.write(b"9abc"), Err(WriteError::PastLength)));
        assert_eq!(w.offset(), 8);
        assert_eq!(w.commit().unwrap(), 8);
        assert_eq!(fx.data_len(&id), 8);
        assert!(matches!(
            w.publish(&fx.target("p", false)),
            Err(PublishError::Incomplete)
        ));
        assert!(!fx.root.join("in/p").exists());
        let mut w = store.begin(&id, 8).unwrap();
        w.write(b"9a").unwrap();
        assert!(matches!(w.write(b"b"), Err(WriteError::PastLength)));
        w.publish(&fx.target("p", false)).unwrap();
        assert_eq!(fs::read(fx.root.join("in/p")).unwrap(), b"123456789a");
    }

    /// A client gave up on a request and retried: the new `begin` ends the
    /// idle stale writer at once, keeping its bytes; the stale one is told.
    #[test]
    fn new_begin_ends_stale_writer() {
        let fx = Fixture::new();
        let (store, _) = fx.open(SETTINGS);
        let id = store.create(new_upload(Some(100))).unwrap().id;
        let (to_old, from_main) = std::sync::mpsc::channel::<()>();
        let (to_main, from_old) = std::sync::mpsc::channel::<()>();
        let s = Arc::clone(&store);
        let old = std::thread::spawn(move || {
            let mut w = s.begin(&id, 0).unwrap();
            w.write(b"0123").unwrap();
            w.commit().unwrap();
            w.write(b"456").unwrap(); // uncommitted
            to_main.send(()).unwrap();
            from_main.recv().unwrap(); // stalls, as on a dead connection
            let write = w.write(b"zzz");
            let commit = w.commit();
            (w.is_cancelled(), write, commit)
        });
        from_old.recv().unwrap();
        assert!(store.info(&id).unwrap().writing);
        let started = Instant::now();
        // The stale writer's 7 bytes were kept: resuming at 4 is a mismatch.
        assert!(matches!(
            store.begin(&id, 4),
            Err(BeginError::OffsetMismatch { current: 7 })
        ));
        let mut w = store.begin(&id, 7).unwrap();
        assert!(started.elapsed() < Duration::from_secs(1));
        to_old.send(()).unwrap();
        let (cancelled, write, commit) = old.join().unwrap();
        assert!(cancelled);
        assert!(matches!(write, Err(WriteError::Cancelled)));
        assert!(matches!(commit, Err(WriteError::Cancelled)));
        w.write(b"789").unwrap();
        assert_eq!(w.commit().unwrap(), 10);
        drop(w);
        let mut content = fs::read(fx.state().join(format!("{id}.data"))).unwrap();
        content.truncate(10);
        assert_eq!(content, b"0123456789");
        assert_eq!(lock(&store.inner).active, 0);
    }

    /// A stale writer that asked not to keep unverified bytes (a checksum
    /// pending) loses them on a takeover; `settle` reports the offset.
    #[test]
    fn settle_drops_unverified_bytes_and_keeps_others() {
        let fx = Fixture::new();
        let (store, _) = fx.open(SETTINGS);
        let id = store.create(new_upload(Some(100))).unwrap().id;
        let mut w = store.begin(&id, 0).unwrap();
        w.write(b"abcd").unwrap();
        w.commit().unwrap();
        w.set_keep_partial(false);
        w.write(b"efgh").unwrap();
        assert!(!w.should_commit());
        store.settle(&id).unwrap();
        assert_eq!(store.info(&id).unwrap().offset, 4);
        assert!(!store.info(&id).unwrap().writing);
        assert!(matches!(w.write(b"x"), Err(WriteError::Cancelled)));
        drop(w);
        let mut w = store.begin(&id, 4).unwrap();
        assert_eq!(fx.data_len(&id), 4);
        w.write(b"EFGH").unwrap();
        store.settle(&id).unwrap(); // keep_partial defaults to true
        assert_eq!(store.info(&id).unwrap().offset, 8);
        drop(w);
        assert_eq!(lock(&store.inner).active, 0);
    }

    /// A writer streaming on one thread while another request takes over:
    /// the data file is exactly the stale writer's kept prefix followed by the
    /// new writer's bytes — no interleaving, whatever the timing.
    #[test]
    fn takeover_during_a_stream_never_interleaves() {
        let fx = Fixture::new();
        let (store, _) = fx.open(SETTINGS);
        let len = 4 << 20;
        let id = store.create(new_upload(Some(len))).unwrap().id;
        let s = Arc::clone(&store);
        let (to_main, started) = std::sync::mpsc::channel::<()>();
        let streamer = std::thread::spawn(move || {
            let mut w = s.begin(&id, 0).unwrap();
            let chunk = [b'A'; 4096];
            let mut first = true;
            loop {
                match w.write(&chunk) {
                    Ok(()) => {}
                    Err(WriteError::Cancelled) => return w.offset(),
                    Err(e) => panic!("{e:?}"),
                }
                if w.should_commit() {
                    w.commit().unwrap();
                }
                if first {
                    to_main.send(()).unwrap();
                    first = false;
                }
                if w.offset() >= len / 2 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        });
        started.recv().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        store.settle(&id).unwrap();
        let kept = store.info(&id).unwrap().offset;
        let mut w = store.begin(&id, kept).unwrap();
        let written_by_old = streamer.join().unwrap();
        // Whoever ended the stream (the takeover or the writer's drop), the
        // bytes it wrote were kept.
        assert!(
            kept > 0 && kept == written_by_old,
            "{kept} {written_by_old}"
        );
        let rest = vec![b'B'; usize::try_from(len - kept).unwrap()];
        w.write(&rest).unwrap();
        w.publish(&fx.target("s.bin", false)).unwrap();
        let got = fs::read(fx.root.join("in/s.bin")).unwrap();
        let kept = usize::try_from(kept).unwrap();
        assert!(got[..kept].iter().all(|&b| b == b'A'));
        assert!(got[kept..].iter().all(|&b| b == b'B'));
    }

    #[test]
    fn expiry_and_deadline() {
        let fx = Fixture::new();
        let (store, _) = fx.open(SETTINGS);
        let now = unix_now();
        let id = store.create(new_upload(Some(10))).unwrap().id;
        let mut w = store.begin(&id, 0).unwrap();
        w.write(b"12345").unwrap();
        w.commit().unwrap();
        let expires = store.info(&id).unwrap().expires_at;
        assert!(
            (now + 3600..=now + 3601 + 5).contains(&expires),
            "{expires}"
        );
        // A writer holds it: not swept even when due.
        assert_eq!(store.sweep(expires + 10), 0);
        drop(w);
        assert_eq!(store.sweep(expires - 1), 0);
        assert!(store.info_at(&id, expires - 1).is_some());
        assert!(store.info_at(&id, expires).is_none());
        assert_eq!(store.sweep(expires), 1);
        assert!(!fx.state().join(format!("{id}.data")).exists());
        assert!(!fx.state().join(format!("{id}.meta")).exists());
        assert!(matches!(store.begin(&id, 5), Err(BeginError::NotFound)));

        let past = NewUpload {
            deadline: Some(now.saturating_sub(1)),
            ..new_upload(Some(10))
        };
        let id = store.create(past).unwrap().id;
        assert!(store.info(&id).is_none());
        assert!(matches!(store.begin(&id, 0), Err(BeginError::Gone)));
        assert_eq!(store.sweep(unix_now()), 1);
        assert!(fx.state_files().is_empty(), "{:?}", fx.state_files());
    }

    /// The background sweeper removes an idle upload within a few seconds of
    /// its expiry (the integration tests use a 3 s expiry).
    #[test]
    fn sweeper_thread_removes_bytes() {
        let fx = Fixture::new();
        let settings = Settings {
            expiry: Duration::from_secs(1),
            ..SETTINGS
        };
        let (store, _) = fx.open(settings);
        let id = store.create(new_upload(Some(10))).unwrap().id;
        let mut w = store.begin(&id, 0).unwrap();
        w.write(b"12345").unwrap();
        w.commit().unwrap();
        drop(w);
        let sweeper =
            Store::spawn_sweeper(Arc::clone(&store), sweep_period(settings.expiry)).unwrap();
        let data = fx.state().join(format!("{id}.data"));
        let start = Instant::now();
        while data.exists() && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(!data.exists());
        assert!(store.info(&id).is_none());
        drop(store);
        sweeper.join().unwrap(); // ends once the store is gone
    }

    #[test]
    fn open_removes_orphans_and_expired_leaves_strangers() {
        let fx = Fixture::new();
        let (store, _) = fx.open(SETTINGS);
        let keep = store.create(new_upload(Some(10))).unwrap().id;
        let lost_data = store.create(new_upload(Some(10))).unwrap().id;
        let old = store.create(new_upload(Some(10))).unwrap().id;
        drop(store);
        let st = fx.state();
        let a = UploadId::random().unwrap();
        fs::write(st.join(format!("{a}.data")), b"no meta").unwrap();
        fs::write(st.join(format!("{a}.meta.tmp")), b"half").unwrap();
        let b = UploadId::random().unwrap();
        fs::write(st.join(format!("{b}.put")), b"cut-short PUT").unwrap();
        let c = UploadId::random().unwrap();
        fs::write(st.join(format!("{c}.meta")), b"garbage").unwrap();
        fs::write(st.join(format!("{c}.data")), b"x").unwrap();
        fs::remove_file(st.join(format!("{lost_data}.data"))).unwrap();
        fs::write(st.join("notes.txt"), b"not ours").unwrap();
        // Last progress two hours ago: past the one-hour expiry.
        let meta_path = st.join(format!("{old}.meta"));
        let text = fs::read_to_string(&meta_path).unwrap();
        let stale = unix_now() - 7200;
        let text: String = text
            .lines()
            .map(|l| {
                if l.starts_with("progress ") {
                    format!("progress {stale}\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        fs::write(&meta_path, text).unwrap();

        let (store, rec) = fx.open(SETTINGS);
        assert_eq!(rec.resumed, 1);
        assert_eq!(rec.expired_removed, 1);
        // a.data, a.meta.tmp, b.put, c.meta + c.data, lost_data.meta
        assert_eq!(rec.orphans_removed, 6);
        assert!(store.info(&keep).is_some());
        assert!(store.info(&lost_data).is_none());
        assert!(store.info(&old).is_none());
        assert_eq!(
            fx.state_files(),
            vec![
                format!("{keep}.data"),
                format!("{keep}.meta"),
                "notes.txt".to_owned()
            ]
        );
    }

    /// A reader opening the target in a loop sees the whole old file or the
    /// whole new one, never a mix or a missing file.
    #[test]
    fn publish_replaces_atomically() {
        let fx = Fixture::new();
        let (store, _) = fx.open(SETTINGS);
        let path = fx.root.join("in/v.bin");
        let old = vec![b'o'; 1 << 20];
        let new = vec![b'n'; 3 << 19];
        fs::write(&path, &old).unwrap();
        let id = store.create(new_upload(Some(new.len() as u64))).unwrap().id;
        let mut w = store.begin(&id, 0).unwrap();
        w.write(&new).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (stop, path, old, new) =
                (Arc::clone(&stop), path.clone(), old.clone(), new.clone());
            std::thread::spawn(move || {
                let (mut saw_old, mut saw_new) = (0, 0);
                let start = Instant::now();
                while start.elapsed() < Duration::from_secs(10) {
                    let got = fs::read(&path).expect("the target is never missing");
                    if got == old {
                        saw_old += 1;
                    } else if got == new {
                        saw_new += 1;
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                    } else {
                        panic!("a mix of {} bytes", got.len());
                    }
                }
                (saw_old, saw_new)
            })
        };
        std::thread::sleep(Duration::from_millis(30));
        let published = w.publish(&fx.target("v.bin", false)).unwrap();
        stop.store(true, Ordering::SeqCst);
        assert!(published.replaced);
        let (saw_old, saw_new) = reader.join().unwrap();
        assert!(saw_old > 0 && saw_new > 0, "{saw_old} {saw_new}");
    }

    #[test]
    fn no_clobber_and_directories() {
        let fx = Fixture::new();
        let (store, _) = fx.open(SETTINGS);
        fs::write(fx.root.join("in/taken"), b"first").unwrap();
        fs::create_dir(fx.root.join("in/folder")).unwrap();
        let id = store.create(new_upload(Some(6))).unwrap().id;
        let mut w = store.begin(&id, 0).unwrap();
        w.write(b"second").unwrap();
        assert!(matches!(
            w.publish(&fx.target("taken", true)),
            Err(PublishError::Exists)
        ));
        assert_eq!(fs::read(fx.root.join("in/taken")).unwrap(), b"first");
        // Still whole and committed: publish it elsewhere.
        let info = store.info(&id).unwrap();
        assert_eq!((info.offset, info.finished), (6, false));
        for no_clobber in [false, true] {
            let w = store.begin(&id, 6).unwrap();
            assert!(matches!(
                w.publish(&fx.target("folder", no_clobber)),
                Err(PublishError::IsDirectory)
            ));
        }
        let w = store.begin(&id, 6).unwrap();
        let published = w.publish(&fx.target("fresh", true)).unwrap();
        assert!(!published.replaced);
        assert_eq!(fs::read(fx.root.join("in/fresh")).unwrap(), b"second");
        assert!(!fx.state().join(format!("{id}.data")).exists());
        let w = store.stage(None, None).unwrap();
        assert!(matches!(
            w.publish(&fx.target("..", false)),
            Err(PublishError::Io(_))
        ));
    }

    /// The rename goes through the folder handle: a folder swapped for a
    /// symlink after the caller opened it cannot redirect the file.
    #[test]
    fn publish_follows_the_handle_not_the_path() {
        let fx = Fixture::new();
        let (store, _) = fx.open(SETTINGS);
        fs::create_dir(fx.root.join("elsewhere")).unwrap();
        let target = fx.target("t.txt", false);
        fs::rename(fx.root.join("in"), fx.root.join("moved")).unwrap();
        std::os::unix::fs::symlink(fx.root.join("elsewhere"), fx.root.join("in")).unwrap();
        let id = store.create(new_upload(Some(2))).unwrap().id;
        let mut w = store.begin(&id, 0).unwrap();
        w.write(b"ok").unwrap();
        w.publish(&target).unwrap();
        assert_eq!(fs::read(fx.root.join("moved/t.txt")).unwrap(), b"ok");
        assert!(!fx.root.join("elsewhere/t.txt").exists());
    }

    #[test]
    fn digest_mismatch_publishes_nothing() {
        let fx = Fixture::new();
        let (store, _) = fx.open(SETTINGS);
        let good = NewUpload {
            sha256: Some(sha256(b"right")),
            ..new_upload(Some(5))
        };
        let id = store.create(good.clone()).unwrap().id;
        let mut w = store.begin(&id, 0).unwrap();
        w.write(b"wrong").unwrap();
        assert!(matches!(
            w.publish(&fx.target("d", false)),
            Err(PublishError::DigestMismatch)
        ));
        assert!(!fx.root.join("in/d").exists());
        assert!(store.info(&id).is_none());
        assert!(fx.state_files().is_empty(), "{:?}", fx.state_files());
        assert_eq!(lock(&store.inner).active, 0);

        let id = store.create(good).unwrap().id;
        let mut w = store.begin(&id, 0).unwrap();
        w.write(b"right").unwrap();
        w.publish(&fx.target("d", false)).unwrap();
        assert_eq!(fs::read(fx.root.join("in/d")).unwrap(), b"right");
    }

    #[test]
    fn deferred_length() {
        let fx = Fixture::new();
        let id = {
            let (store, _) = fx.open(SETTINGS);
            let info = store.create(new_upload(None)).unwrap();
            assert_eq!(info.length, None);
            let mut w = store.begin(&info.id, 0).unwrap();
            w.write(b"12345").unwrap();
            assert!(matches!(w.set_length(4), Err(WriteError::Length)));
            w.set_length(8).unwrap();
            w.set_length(8).unwrap();
            assert!(matches!(w.set_length(9), Err(WriteError::Length)));
            assert_eq!(w.length(), Some(8));
            assert!(matches!(w.write(b"6789"), Err(WriteError::PastLength)));
            w.commit().unwrap();
            info.id
        };
        let (store, _) = fx.open(SETTINGS);
        let info = store.info(&id).unwrap();
        assert_eq!((info.offset, info.length), (5, Some(8)));
        let mut w = store.begin(&id, 5).unwrap();
        assert!(matches!(w.set_length(7), Err(WriteError::Length)));
        w.write(b"678").unwrap();
        w.publish(&fx.target("deferred", false)).unwrap();
        assert_eq!(fs::read(fx.root.join("in/deferred")).unwrap(), b"12345678");
    }

    /// After publishing, the upload still answers "complete" (also after a
    /// restart), so a client whose last response was lost does not start over.
    #[test]
    fn tombstone_answers_complete() {
        let fx = Fixture::new();
        let id = {
            let (store, _) = fx.open(SETTINGS);
            let id = store.create(new_upload(Some(3))).unwrap().id;
            let mut w = store.begin(&id, 0).unwrap();
            w.write(b"abc").unwrap();
            w.publish(&fx.target("done", false)).unwrap();
            let info = store.info(&id).unwrap();
            assert_eq!(
                (info.offset, info.length, info.finished),
                (3, Some(3), true)
            );
            assert!(matches!(
                store.begin(&id, 3),
                Err(BeginError::Finished { length: 3 })
            ));
            id
        };
        let (store, rec) = fx.open(SETTINGS);
        assert_eq!(rec, Recovery::default());
        let info = store.info(&id).unwrap();
        assert_eq!((info.offset, info.finished), (3, true));
        // A finished upload does not count against the unfinished limit.
        let one = Settings {
            max_unfinished: 1,
            ..SETTINGS
        };
        drop(store);
        let (store, _) = fx.open(one);
        store.create(new_upload(Some(1))).unwrap();
        store.terminate(&id).unwrap();
        assert!(store.info(&id).is_none());
        assert_eq!(fs::read(fx.root.join("in/done")).unwrap(), b"abc");
    }

    /// A crash between the last commit and the rename: the upload is whole,
    /// and recovery lists it for publishing; a crash between the rename and
    /// the tombstone: recovery infers the tombstone.
    #[test]
    fn recovery_around_publishing() {
        let fx = Fixture::new();
        let (store, _) = fx.open(SETTINGS);
        let whole = store.create(new_upload(Some(2))).unwrap().id;
        let mut w = store.begin(&whole, 0).unwrap();
        w.write(b"hi").unwrap();
        w.commit().unwrap();
        drop(w);
        let renamed = store.create(new_upload(Some(2))).unwrap().id;
        let mut w = store.begin(&renamed, 0).unwrap();
        w.write(b"yo").unwrap();
        w.commit().unwrap();
        drop(w);
        drop(store);
        fs::rename(
            fx.state().join(format!("{renamed}.data")),
            fx.root.join("in/yo"),
        )
        .unwrap();
        let (store, rec) = fx.open(SETTINGS);
        assert_eq!(rec.unpublished, vec![whole]);
        assert_eq!(rec.resumed, 1);
        assert!(store.info(&renamed).unwrap().finished);
        let w = store.begin(&whole, 2).unwrap();
        w.publish(&fx.target("hi", false)).unwrap();
        assert_eq!(fs::read(fx.root.join("in/hi")).unwrap(), b"hi");
    }

    #[test]
    fn terminate_ends_writer_and_removes_files() {
        let fx = Fixture::new();
        let (store, _) = fx.open(SETTINGS);
        let id = store.create(new_upload(Some(10))).unwrap().id;
        let mut w = store.begin(&id, 0).unwrap();
        w.write(b"1234").unwrap();
        w.commit().unwrap();
        store.terminate(&id).unwrap();
        assert!(matches!(w.write(b"5"), Err(WriteError::Cancelled)));
        assert!(matches!(w.commit(), Err(WriteError::Cancelled)));
        assert!(store.info(&id).is_none());
        assert!(fx.state_files().is_empty(), "{:?}", fx.state_files());
        assert!(matches!(store.terminate(&id), Err(BeginError::NotFound)));
        assert!(matches!(store.begin(&id, 4), Err(BeginError::NotFound)));
        drop(w);
        assert_eq!(lock(&store.inner).active, 0);
    }

    #[test]
    fn limits() {
        let fx = Fixture::new();
        let settings = Settings {
            max_unfinished: 2,
            max_active: 1,
            ..SETTINGS
        };
        let (store, _) = fx.open(settings);
        let a = store.create(new_upload(Some(1))).unwrap().id;
        let b = store.create(new_upload(Some(1))).unwrap().id;
        assert!(matches!(
            store.create(new_upload(Some(1))),
            Err(CreateError::TooMany)
        ));
        let w = store.begin(&a, 0).unwrap();
        assert!(matches!(store.begin(&b, 0), Err(BeginError::TooManyActive)));
        assert!(matches!(store.stage(None, None), Err(CreateError::TooMany)));
        // A takeover of the same upload is not one more writer.
        let w2 = store.begin(&a, 0).unwrap();
        drop(w);
        drop(w2);
        let w = store.begin(&b, 0).unwrap();
        drop(w);
        store.terminate(&a).unwrap();
        store.create(new_upload(Some(1))).unwrap();
        store.terminate(&b).unwrap();
        let huge = store.create(new_upload(Some(u64::MAX / 2)));
        assert!(matches!(huge, Err(CreateError::NoSpace)), "{huge:?}");
        assert!(matches!(
            store.stage(Some(u64::MAX / 2), None),
            Err(CreateError::NoSpace)
        ));
    }

    #[test]
    fn staging() {
        let fx = Fixture::new();
        let (store, _) = fx.open(SETTINGS);
        // A cut-short PUT publishes nothing and leaves nothing.
        let mut s = store.stage(Some(10), None).unwrap();
        s.write(b"12345").unwrap();
        assert_eq!(fx.state_files().len(), 1);
        drop(s);
        assert!(fx.state_files().is_empty());
        let mut s = store.stage(Some(10), None).unwrap();
        s.write(b"12345").unwrap();
        assert!(matches!(
            s.publish(&fx.target("put", false)),
            Err(PublishError::Incomplete)
        ));
        assert!(!fx.root.join("in/put").exists());
        // Past the announced length: refused, nothing of it written.
        let mut s = store.stage(Some(4), None).unwrap();
        s.write(b"123").unwrap();
        assert!(matches!(s.write(b"45"), Err(WriteError::PastLength)));
        assert_eq!(s.len(), 3);
        drop(s);
        // Digest mismatch: nothing published.
        let mut s = store.stage(None, Some(sha256(b"other"))).unwrap();
        s.write(b"12345").unwrap();
        assert!(matches!(
            s.publish(&fx.target("put", false)),
            Err(PublishError::DigestMismatch)
        ));
        assert!(!fx.root.join("in/put").exists());
        // Success, then replace.
        for (content, replaced) in [(&b"first"[..], false), (&b"second!"[..], true)] {
            let mut s = store
                .stage(Some(content.len() as u64), Some(sha256(content)))
                .unwrap();
            s.write(content).unwrap();
            let p = s.publish(&fx.target("put", false)).unwrap();
            assert_eq!(
                (p.replaced, p.len, p.sha256),
                (replaced, content.len() as u64, sha256(content))
            );
            assert_eq!(fs::read(fx.root.join("in/put")).unwrap(), content);
        }
        let mut s = store.stage(None, None).unwrap();
        s.write(b"x").unwrap();
        assert!(matches!(
            s.publish(&fx.target("put", true)),
            Err(PublishError::Exists)
        ));
        assert!(fx.state_files().is_empty(), "{:?}", fx.state_files());
        assert_eq!(lock(&store.inner).active, 0);
    }

    #[test]
    fn one_store_per_state_folder() {
        let fx = Fixture::new();
        let (store, _) = fx.open(SETTINGS);
        let err = Store::open(&fx.state(), &fx.root, SETTINGS)
            .err()
            .expect("refused");
        assert!(err.to_string().contains("another ranged process"), "{err}");
        drop(store);
        fx.open(SETTINGS);
    }

    #[test]
    fn refuses_state_folder_on_another_file_system() {
        let fx = Fixture::new();
        // /proc is never the file system of /tmp.
        let err = Store::open(&fx.state(), Path::new("/proc"), SETTINGS)
            .err()
            .expect("refused");
        assert!(err.to_string().contains("another file system"), "{err}");
    }

    /// A full disk (a 2 MiB tmpfs; needs root, as CI runs): writes fail with
    /// `NoSpace`, what was committed stays committed, a commit still works,
    /// and a restart finds exactly the committed bytes.
    #[test]
    fn full_disk_keeps_committed_state() {
        if !crate::sys::is_root() {
            eprintln!("full_disk_keeps_committed_state: not root, no tmpfs; skipped");
            return;
        }
        struct Mount(PathBuf);
        impl Drop for Mount {
            fn drop(&mut self) {
                let _ = std::process::Command::new("umount").arg(&self.0).status();
                let _ = fs::remove_dir(&self.0);
            }
        }
        let point =
            std::env::temp_dir().join(format!("ranged-upload-tmpfs-{}", std::process::id()));
        fs::create_dir_all(&point).unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
            .arg(&point)
            .status()
            .is_ok_and(|s| s.success());
        let mount = Mount(point.clone());
        if !mounted {
            eprintln!("full_disk_keeps_committed_state: mount refused; skipped");
            return;
        }
        fs::create_dir(point.join("in")).unwrap();
        let state = point.join(".state");
        let (store, _) = Store::open(&state, &point, SETTINGS).unwrap();
        let store = Arc::new(store);
        assert!(matches!(
            store.create(new_upload(Some(4 << 20))),
            Err(CreateError::NoSpace)
        ));
        let id = store.create(new_upload(None)).unwrap().id;
        let mut w = store.begin(&id, 0).unwrap();
        let chunk = vec![7u8; 256 << 10];
        w.write(&chunk).unwrap();
        let committed = w.commit().unwrap();
        let mut result = Ok(());
        for _ in 0..16 {
            result = w.write(&chunk);
            if result.is_err() {
                break;
            }
        }
        assert!(matches!(result, Err(WriteError::NoSpace)), "{result:?}");
        // The reserve leaves room to record what did fit.
        let kept = w.commit().unwrap();
        assert!(kept > committed && kept < 2 << 20, "{kept}");
        assert!(matches!(w.write(&chunk), Err(WriteError::NoSpace)));
        drop(w);
        drop(store);
        let (store, rec) = Store::open(&state, &point, SETTINGS).unwrap();
        assert_eq!(rec.resumed, 1);
        assert_eq!(store.info(&id).unwrap().offset, kept);
        assert_eq!(
            fs::metadata(state.join(format!("{id}.data")))
                .unwrap()
                .len(),
            kept
        );
        drop(store);
        drop(mount);
    }
}
