//! Request-target to file-system path: percent-decoding exactly once, refusing
//! hostile paths (docs/semantics.md §4), and containment under the served root.
//!
//! Step 1 of the request pipeline, in three calls:
//!
//! 1. [`decode`] turns the raw origin-form target into a clean absolute path
//!    (`/a%20b/?x=1` → `/a b/`) or a [`PathError`] (→ 400, docs/semantics.md §6
//!    rows 22–23). Pure.
//! 2. [`has_dotfile`] tells the caller whether a segment is hidden (served only
//!    when the operator opts in, docs/semantics.md §4). Pure.
//! 3. [`open`] opens the decoded path under the canonical root and checks that
//!    the file the kernel opened is inside it (symlinks out of the root → 404).
//!    Touches the file system, nothing else.
//!
//! [`encode_path`] is the inverse of [`decode`] for `Location` headers and the
//! links of a directory listing: `decode(&encode_path(d)) == Ok(d)` for every
//! `d` that `decode` returns.

use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// Why a request path is refused with 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// Not origin-form (does not start with `/`).
    NotOrigin,
    /// A `%` not followed by two hex digits.
    BadEscape,
    /// A NUL byte, raw or `%00`.
    Nul,
    /// A backslash, raw or `%5C`.
    Backslash,
    /// `%2F`: a slash inside a segment.
    EncodedSlash,
    /// A `..` segment.
    DotDot,
    /// The decoded bytes are not UTF-8.
    NotUtf8,
}

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PathError::NotOrigin => "the target does not start with /",
            PathError::BadEscape => "a % is not followed by two hex digits",
            PathError::Nul => "the path holds a NUL byte",
            PathError::Backslash => "the path holds a backslash",
            PathError::EncodedSlash => "the path holds an encoded slash (%2F)",
            PathError::DotDot => "the path holds a .. segment",
            PathError::NotUtf8 => "the decoded path is not UTF-8",
        })
    }
}

impl std::error::Error for PathError {}

/// Decodes a raw request-target (origin-form, as sent) into an absolute path.
///
/// * `?query` and, defensively, `#fragment` are cut off first (RFC 9112 §3.2.1:
///   `origin-form = absolute-path [ "?" query ]`; a fragment is never sent).
/// * The rest must start with `/` (`*`, `http://x/`, `a` → [`PathError::NotOrigin`]).
/// * Percent-escapes are decoded exactly once (`%2541` → `%41`), so an escape
///   cannot smuggle a second round of decoding past these checks.
/// * Refused, per docs/semantics.md §4: NUL, `\`, `%2F`, any `..` segment (raw or
///   decoded; we never clamp like Go's `path.Clean`, §6 row 23), bad escapes,
///   non-UTF-8 results. With several faults, the leftmost wins, and
///   [`PathError::NotUtf8`] only when nothing else is wrong.
/// * `.` and empty segments are dropped (`//a/./b` → `/a/b`): they name the
///   same resource (RFC 3986 §5.2.4 removes `.`; `//` is how Unix reads it).
/// * A trailing `/` is kept, and a dropped last segment counts as one
///   (`/a/.` → `/a/`, as RFC 3986 §5.2.4), because a directory is listed at
///   `/a/` but redirected from `/a`.
/// * `...` and other names that merely start with dots are ordinary names
///   (a file may be called `...`); only exactly `..` climbs. They are hidden
///   files all the same, see [`has_dotfile`].
///
/// The result starts with `/`, has no empty, `.` or `..` segment, no NUL or
/// `\`, and is never longer than `target`; it is the only allocation.
///
/// ```
/// use ranged::fs_path::{decode, PathError};
/// assert_eq!(decode("/a%20b/?x=1").as_deref(), Ok("/a b/"));
/// assert_eq!(decode("/%2e%2e/etc/passwd"), Err(PathError::DotDot));
/// ```
pub fn decode(target: &str) -> Result<String, PathError> {
    let path = match target.find(['?', '#']) {
        Some(end) => &target[..end],
        None => target,
    };
    let Some(segments) = path.strip_prefix('/') else {
        return Err(PathError::NotOrigin);
    };
    // Decoding only shrinks a segment, and each kept segment reuses the `/`
    // before it, so the output never outgrows the input.
    let mut out: Vec<u8> = Vec::with_capacity(path.len());
    let mut ends_in_slash = false;
    for segment in segments.split('/') {
        let start = out.len();
        out.push(b'/');
        decode_segment(segment.as_bytes(), &mut out)?;
        match out.get(start + 1..) {
            Some(b"..") => return Err(PathError::DotDot),
            // `//` and `/./`: same directory, nothing to keep.
            Some(b"" | b".") => {
                out.truncate(start);
                ends_in_slash = true;
            }
            _ => ends_in_slash = false,
        }
    }
    if ends_in_slash || out.is_empty() {
        out.push(b'/');
    }
    String::from_utf8(out).map_err(|_| PathError::NotUtf8)
}

/// Appends one percent-decoded segment to `out`, refusing NUL, `\` and `/`
/// whether raw or escaped (docs/semantics.md §4).
fn decode_segment(raw: &[u8], out: &mut Vec<u8>) -> Result<(), PathError> {
    let mut rest = raw;
    while let [first, tail @ ..] = rest {
        let byte = if *first == b'%' {
            // `%`, `%4`, `%zz`: RFC 3986 §2.1 pct-encoded is exactly "%" HEXDIG HEXDIG.
            let [hi, lo, after @ ..] = tail else {
                return Err(PathError::BadEscape);
            };
            let (Some(hi), Some(lo)) = (crate::hex::digit(*hi), crate::hex::digit(*lo)) else {
                return Err(PathError::BadEscape);
            };
            rest = after;
            match hi << 4 | lo {
                // A slash inside a name would change the segment structure
                // after decoding, e.g. `/a%2f..%2fb`.
                b'/' => return Err(PathError::EncodedSlash),
                decoded => decoded,
            }
        } else {
            rest = tail;
            *first
        };
        match byte {
            // NUL truncates C paths (Go answers 500, docs/semantics.md §6 row 22).
            0 => return Err(PathError::Nul),
            // A separator on Windows and in some proxies' normalisation.
            b'\\' => return Err(PathError::Backslash),
            _ => out.push(byte),
        }
    }
    Ok(())
}

/// The value of the first `name=value` (or bare `name`, as `""`) in the
/// query of a raw request target; `None` when absent. Values are returned
/// as sent (not percent-decoded): tokens, ids and ETags never need it.
pub fn query_param<'a>(target: &'a str, name: &str) -> Option<&'a str> {
    let (_, query) = target.split_once('?')?;
    let query = query.split('#').next().unwrap_or(query);
    query.split('&').find_map(|kv| match kv.split_once('=') {
        Some((k, v)) if k == name => Some(v),
        None if kv == name => Some(""),
        _ => None,
    })
}

/// True if any segment of a decoded path starts with `.` (`/.git/config`,
/// `/a/.env`, `/...`): hidden files are served only if the operator opts in
/// (docs/semantics.md §4).
pub fn has_dotfile(decoded: &str) -> bool {
    decoded.split('/').any(|segment| segment.starts_with('.'))
}

/// The URL namespace and default state folder name that belong to the server
/// itself: `/.ranged/` holds the page's assets, `DIR/.ranged` unfinished
/// uploads and the link secret.
pub const RESERVED: &str = ".ranged";

/// True if the first segment of a decoded path is [`RESERVED`], in any case:
/// such a request never reaches the file system, whatever `--dotfiles`
/// says. Case-insensitively because the served folder may be FAT or exFAT
/// (a USB stick on a router), where `/.RANGED` opens `.ranged`.
pub fn is_reserved(decoded: &str) -> bool {
    decoded
        .split('/')
        .find(|s| !s.is_empty())
        .is_some_and(|first| first.eq_ignore_ascii_case(RESERVED))
}

/// The served folder: its canonical path, a descriptor of it that files
/// are opened beneath, and the folder inside it that is never served.
#[derive(Debug)]
pub struct Root {
    path: PathBuf,
    dir: File,
    /// Device and inode of the state folder, when it lies on the root's
    /// file system: it and the files directly in it (the state folder is
    /// flat) are never opened through the root, by any name — a
    /// percent-encoded dot, another case on FAT, an 8.3 alias, a symlink to
    /// a folder.
    fence: OnceLock<(u64, u64)>,
}

impl Root {
    /// `path` must be canonical (absolute, no symlinks): containment is
    /// checked against it when `openat2(2)` is not available.
    pub fn new(path: PathBuf) -> io::Result<Root> {
        let dir = File::open(&path)?;
        Ok(Root {
            path,
            dir,
            fence: OnceLock::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Never serve the folder `meta` describes, nor the files in it (set
    /// once, before the server starts).
    pub fn fence(&self, meta: &Metadata) {
        let _ = self.fence.set((meta.dev(), meta.ino()));
    }

    /// True if `meta` describes the fenced folder itself.
    pub fn is_fence(&self, meta: &Metadata) -> bool {
        self.fence.get() == Some(&(meta.dev(), meta.ino()))
    }

    /// True if the object opened for `decoded` is the fenced folder or lies
    /// directly in it. Costs one `stat` of the parent folder, and only on a
    /// fresh open (kept handles were checked when they were opened).
    fn fenced(&self, decoded: &str, meta: &Metadata) -> bool {
        let Some(&(dev, _)) = self.fence.get() else {
            return false;
        };
        if meta.dev() != dev {
            return false;
        }
        if meta.is_dir() {
            return self.is_fence(meta);
        }
        let parent = decoded
            .trim_end_matches('/')
            .rsplit_once('/')
            .map_or("/", |(p, _)| p);
        // Resolved by the kernel, symlinks followed: the folder this name
        // leads into, whatever it was called. Unknown (it changed since the
        // open) → refused.
        join(self, parent).is_none_or(|p| std::fs::metadata(p).map_or(true, |m| self.is_fence(&m)))
    }
}

/// A file or folder opened under the root: the handle and its `fstat`.
#[derive(Debug)]
pub struct Opened {
    pub file: File,
    pub meta: Metadata,
}

/// `O_NONBLOCK` on Linux for x86, ARM and AArch64: opening a FIFO someone left
/// in the folder must not block a worker forever (regular files ignore it).
const O_NONBLOCK: i32 = 0o4000;
/// `O_PATH`: a handle that names a file without opening it for I/O.
const O_PATH: i32 = 0o10000000;
/// Set once `openat2(2)` turned out to be missing (Linux < 5.6) or filtered.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// Opens a decoded path under `root`; `Err(NotFound)` (→ 404) when it does not
/// exist or leaves the root.
///
/// * Each non-empty segment is taken as one plain component; `Path::join`
///   with an absolute path would replace the root (docs/semantics.md §4), so
///   `/etc/passwd` becomes `root/etc/passwd`. A segment that is not a plain
///   name (`..`, `.`) is refused, in case a caller skips [`decode`].
/// * Unless `follow_symlinks`, the file must lie under the root, symlinks
///   resolved (a symlink pointing outside → 404). `openat2(2)` with
///   `RESOLVE_BENEATH` checks that in the same path walk that opens the file.
///   Where it is missing, or refuses an absolute symlink that may well point
///   back inside, the kernel is asked which file it opened
///   (`/proc/self/fd/N`, one `readlink`) and that real path must start with
///   the root's. Either way the check is of the very handle the body will be
///   read from, so nothing can be swapped in between.
/// * A trailing `/` on something that is not a directory is refused, as
///   `open("file/")` fails with `ENOTDIR` (POSIX path resolution); serving
///   `/file.txt/` would break every relative link in it.
pub fn open(root: &Root, decoded: &str, follow_symlinks: bool) -> io::Result<Opened> {
    let not_found = || io::Error::from(io::ErrorKind::NotFound);
    let file = if follow_symlinks {
        open_plain(&join(root, decoded).ok_or_else(not_found)?)?
    } else {
        match open_beneath(root, decoded) {
            Some(Ok(file)) => file,
            Some(Err(e)) => return Err(e),
            None => open_checked(root, &join(root, decoded).ok_or_else(not_found)?)?,
        }
    };
    let meta = file.metadata()?;
    if decoded.ends_with('/') && !meta.is_dir() {
        return Err(not_found());
    }
    if root.fenced(decoded, &meta) {
        log::warn!("{decoded}: refused, it is in the state folder");
        return Err(not_found());
    }
    Ok(Opened { file, meta })
}

/// Opens the folder `decoded_dir` under the root, creating the folders that
/// are missing when `create` (a PUT to `/new/folder/file`). Each folder is
/// made inside its already opened parent, named through that parent's handle
/// (`/proc/self/fd/N/name`), and then opened with the same containment rule
/// as [`open`]: a folder swapped for a symlink that leads outside the root is
/// never written into; the parent of each new folder is `fsync`ed.
/// `Err(NotFound)` when a folder is missing and `create` is off;
/// `Err(AlreadyExists)` when a segment is a file.
pub fn open_dir(
    root: &Root,
    decoded_dir: &str,
    follow_symlinks: bool,
    create: bool,
) -> io::Result<File> {
    use std::os::unix::fs::DirBuilderExt;
    let mut at = String::from("/");
    let mut dir = open(root, &at, follow_symlinks)?.file;
    for segment in decoded_dir.split('/').filter(|s| !s.is_empty()) {
        let name = plain(segment).ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        at.push_str(name);
        at.push('/');
        let opened = match open(root, &at, follow_symlinks) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                let made = std::fs::DirBuilder::new()
                    .mode(0o755)
                    .create(format!("/proc/self/fd/{}/{name}", dir.as_raw_fd()));
                match made {
                    // Another request made it meanwhile: as good.
                    Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                    // The new folder's entry is durable before anything is
                    // published into it: a power cut must not lose the
                    // folder, and the acknowledged file with it.
                    Ok(()) => dir
                        .sync_all()
                        .and_then(|()| open(root, &at, follow_symlinks)),
                    Err(_) => open(root, &at, follow_symlinks),
                }
            }
            other => other,
        };
        dir = match opened {
            Ok(o) if o.meta.is_dir() => o.file,
            Ok(_) => return Err(io::Error::from(io::ErrorKind::AlreadyExists)),
            // `open` refuses `name/` when `name` is a file.
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    && join(root, at.trim_end_matches('/')).is_some_and(|p| p.is_file()) =>
            {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            Err(e) => return Err(e),
        };
    }
    Ok(dir)
}

/// `fsync`s the folder that holds `path` (a relative name's is `.`), so that
/// a folder or file just made there survives a power cut.
pub fn sync_parent(path: &Path) -> io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)?.sync_all()
}

/// The decoded path as a path under the root: each non-empty segment pushed
/// as one plain component (`Path::join` of an absolute path would replace the
/// root, docs/semantics.md §4). `None` for a segment that is not a plain name
/// (`..`, `.`), in case a caller skips [`decode`]. No symlink is resolved.
pub fn join(root: &Root, decoded: &str) -> Option<PathBuf> {
    let mut path = root.path.clone();
    for segment in decoded.split('/').filter(|s| !s.is_empty()) {
        path.push(plain(segment)?);
    }
    Some(path)
}

/// `segment` if it is one plain file name, not `.`, `..` or empty.
fn plain(segment: &str) -> Option<&str> {
    let mut components = Path::new(segment).components();
    match (components.next(), components.next()) {
        (Some(Component::Normal(_)), None) => Some(segment),
        _ => None,
    }
}

/// Opens `path` for reading only once its real path is known to lie under the
/// root. The first open is `O_PATH`: it touches nothing (a symlink to a device
/// outside the root, say a watchdog, must not even be opened), and the kernel
/// then names the file it reached; the read open goes through that same handle
/// (`/proc/self/fd/N`), so nothing can be swapped in between.
fn open_checked(root: &Root, path: &Path) -> io::Result<File> {
    let not_found = || io::Error::from(io::ErrorKind::NotFound);
    let probe = OpenOptions::new()
        .read(true)
        .custom_flags(O_PATH)
        .open(path)?;
    let fd_path = format!("/proc/self/fd/{}", probe.as_raw_fd());
    match std::fs::read_link(&fd_path) {
        Ok(real) if real.starts_with(&root.path) => open_plain(Path::new(&fd_path)),
        Ok(_) => Err(not_found()),
        // No /proc (a bare chroot): resolve the path, then open what it names.
        Err(_) => {
            let real = std::fs::canonicalize(path)?;
            if !real.starts_with(&root.path) {
                return Err(not_found());
            }
            open_plain(&real)
        }
    }
}

/// Opens `path` for reading with `O_NONBLOCK`: a FIFO swapped in for a file
/// never blocks a worker.
pub fn open_plain(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(O_NONBLOCK)
        .open(path)
}

/// `openat2` beneath the root; `None` when the caller must check another way.
fn open_beneath(root: &Root, decoded: &str) -> Option<io::Result<File>> {
    const ENOSYS: i32 = 38;
    const EPERM: i32 = 1;
    const EXDEV: i32 = 18;
    if NO_OPENAT2.load(Ordering::Relaxed) {
        return None;
    }
    // The relative C path in one allocation (room for `.` and the NUL).
    let mut relative = Vec::with_capacity(decoded.len() + 2);
    for segment in decoded.split('/').filter(|s| !s.is_empty()) {
        let Some(name) = plain(segment) else {
            return Some(Err(io::Error::from(io::ErrorKind::NotFound)));
        };
        if !relative.is_empty() {
            relative.push(b'/');
        }
        relative.extend_from_slice(name.as_bytes());
    }
    if relative.is_empty() {
        relative.push(b'.');
    }
    // Decoded paths hold no NUL (`decode` refuses it); a stray one is a 404.
    let Ok(c_path) = std::ffi::CString::new(relative) else {
        return Some(Err(io::Error::from(io::ErrorKind::NotFound)));
    };
    match crate::sys::open_beneath(root.dir.as_raw_fd(), &c_path, O_NONBLOCK) {
        Ok(file) => Some(Ok(file)),
        Err(e) => match e.raw_os_error() {
            Some(ENOSYS | EPERM) => {
                NO_OPENAT2.store(true, Ordering::Relaxed);
                log::info!("openat2 unavailable ({e}); checking containment by path");
                None
            }
            // Leaves the root, or an absolute symlink: decide by real path.
            Some(EXDEV) => None,
            _ => Some(Err(e)),
        },
    }
}

/// Percent-encodes a decoded path for a `Location` header or an `href`:
/// everything but unreserved characters (RFC 3986 §2.3: `A-Z a-z 0-9 - . _ ~`)
/// and `/` becomes `%XX`, per UTF-8 byte. Encoding `:` also keeps a relative
/// link such as `a:b` from being read as a URI scheme (RFC 3986 §4.2).
///
/// ```
/// assert_eq!(ranged::fs_path::encode_path("/a b/€?#"), "/a%20b/%E2%82%AC%3F%23");
/// ```
pub fn encode_path(decoded: &str) -> String {
    let mut out = String::with_capacity(decoded.len());
    encode_into(&mut out, decoded);
    out
}

/// [`encode_path`] appending to an existing buffer (the listing writes many links).
pub(crate) fn encode_into(out: &mut String, decoded: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in decoded.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PathError::*;
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn query_parameters() {
        let cases = [
            ("/a/?upload=abc", "upload", Some("abc")),
            ("/a/?x=1&token=t&upload=u", "token", Some("t")),
            ("/a/?login", "login", Some("")),
            ("/a/?loginx=1", "login", None),
            ("/a/?tokens=1", "token", None),
            ("/a/", "token", None),
            ("/a/?token=t#frag", "token", Some("t")),
        ];
        for (target, name, want) in cases {
            assert_eq!(query_param(target, name), want, "{target} {name}");
        }
    }

    /// The whole contract of `decode`, in the style of darkhttpd's
    /// `make_safe_url` table: input → decoded path or the reason for a 400.
    const DECODE: &[(&str, Result<&str, PathError>)] = &[
        // Plain paths, escapes decoded exactly once.
        ("/", Ok("/")),
        ("/a", Ok("/a")),
        ("/a/b.txt", Ok("/a/b.txt")),
        ("/dir/", Ok("/dir/")),
        ("/a%20b", Ok("/a b")),
        ("/%41", Ok("/A")),
        ("/%2541", Ok("/%41")), // once: not "/A"
        ("/a%3Fb", Ok("/a?b")), // an escaped `?` is part of the name
        ("/a%23b", Ok("/a#b")),
        ("/%e2%82%ac", Ok("/€")),
        ("/%E2%82%AC", Ok("/€")),
        ("/€", Ok("/€")),     // raw UTF-8 passes through
        ("/a+b", Ok("/a+b")), // `+` is not a space in a path
        // Query and fragment are cut off before anything else.
        ("/a?x=1", Ok("/a")),
        ("/a/?x=../..", Ok("/a/")),
        ("/a?x=%zz", Ok("/a")),
        ("/a#frag", Ok("/a")),
        ("/?", Ok("/")),
        // Empty and `.` segments name the same thing and are dropped.
        ("//a//b/", Ok("/a/b/")),
        ("//", Ok("/")),
        ("/a/./b", Ok("/a/b")),
        ("/./", Ok("/")),
        ("/.", Ok("/")),
        ("/a/.", Ok("/a/")), // RFC 3986 §5.2.4: "/a/." → "/a/"
        ("/a/%2e", Ok("/a/")),
        // Names that start with dots but are not `..`: allowed, yet hidden.
        ("/...", Ok("/...")),
        ("/.hidden", Ok("/.hidden")),
        ("/..a", Ok("/..a")),
        ("/a..", Ok("/a..")),
        ("/.git/config", Ok("/.git/config")),
        // `..` in any spelling, anywhere: refused, never clamped (§6 row 23).
        ("/..", Err(DotDot)),
        ("/../", Err(DotDot)),
        ("/../etc/passwd", Err(DotDot)),
        ("/%2e%2e/x", Err(DotDot)),
        ("/%2E%2E", Err(DotDot)),
        ("/.%2e", Err(DotDot)),
        ("/%2e.", Err(DotDot)),
        ("/a/..", Err(DotDot)),
        ("/a/../b", Err(DotDot)), // would stay under the root, refused anyway
        ("/a/..?x", Err(DotDot)),
        // NUL, backslash, encoded slash (§4, §6 row 22).
        ("/%00", Err(Nul)),
        ("/a\0b", Err(Nul)),
        ("/a%5Cb", Err(Backslash)),
        ("/a%5cb", Err(Backslash)),
        ("/a\\b", Err(Backslash)),
        ("/..\\x", Err(Backslash)),
        ("/a%2fb", Err(EncodedSlash)),
        ("/a%2Fb", Err(EncodedSlash)),
        ("/..%2f..%2fetc", Err(EncodedSlash)),
        // Bad escapes: RFC 3986 §2.1 wants exactly two hex digits.
        ("/%", Err(BadEscape)),
        ("/%4", Err(BadEscape)),
        ("/%4/1", Err(BadEscape)), // the digits may not span a `/`
        ("/%zz", Err(BadEscape)),
        ("/%%41", Err(BadEscape)),
        ("/%+1", Err(BadEscape)),
        // Leftmost fault wins; NotUtf8 only when nothing else is wrong.
        ("/%00/%zz", Err(Nul)),
        ("/%ff/..", Err(DotDot)),
        // Decoded bytes that are not UTF-8.
        ("/%ff", Err(NotUtf8)),
        ("/%e2%82", Err(NotUtf8)),    // truncated €
        ("/%c0%af", Err(NotUtf8)),    // overlong `/`
        ("/%ed%a0%80", Err(NotUtf8)), // surrogate
        // Not origin-form.
        ("", Err(NotOrigin)),
        ("relative", Err(NotOrigin)),
        ("*", Err(NotOrigin)),
        ("http://x/", Err(NotOrigin)),
        ("?/a", Err(NotOrigin)),
        ("%2Fa", Err(NotOrigin)),
    ];

    #[test]
    fn decode_table() {
        for &(input, expected) in DECODE {
            let got = decode(input);
            assert_eq!(
                got.as_deref().map_err(|&e| e),
                expected,
                "decode({input:?})"
            );
        }
    }

    #[test]
    fn decode_round_trips_through_encode_path() {
        for &(input, expected) in DECODE {
            if let Ok(decoded) = expected {
                let encoded = encode_path(decoded);
                assert_eq!(decode(&encoded).as_deref(), Ok(decoded), "{input:?}");
            }
        }
    }

    /// Property check with a xorshift generator instead of a proptest
    /// dependency: random targets built from the dangerous
    /// characters never panic, and every accepted result keeps the promises
    /// of `decode`'s contract.
    #[test]
    fn decode_random_targets_keep_the_contract() {
        const ALPHABET: &[&str] = &[
            "/",
            "/",
            ".",
            "..",
            "%",
            "%2e",
            "%2E",
            "%2f",
            "%5c",
            "%00",
            "%25",
            "%41",
            "%ff",
            "%e2%82%ac",
            "\\",
            "\0",
            "a",
            "é",
            "?",
            "#",
            "%3F",
            "~",
        ];
        let mut rng = crate::testing::Xorshift::new(0x9E37_79B9_7F4A_7C15);
        let mut next = || rng.next_u64();
        let mut accepted = 0;
        for _ in 0..20_000 {
            let mut target = String::from(if next() % 8 == 0 { "" } else { "/" });
            for _ in 0..next() % 10 {
                target.push_str(ALPHABET[(next() % ALPHABET.len() as u64) as usize]);
            }
            let Ok(decoded) = decode(&target) else {
                continue;
            };
            accepted += 1;
            assert!(decoded.starts_with('/'), "{target:?} → {decoded:?}");
            assert!(decoded.len() <= target.len(), "{target:?} → {decoded:?}");
            assert!(!decoded.contains(['\0', '\\']), "{target:?} → {decoded:?}");
            let inner = decoded.trim_start_matches('/').trim_end_matches('/');
            assert!(
                decoded == "/" || inner.split('/').all(|s| !matches!(s, "" | "." | "..")),
                "{target:?} → {decoded:?}"
            );
            assert_eq!(decode(&encode_path(&decoded)), Ok(decoded.clone()));
        }
        assert!(
            accepted > 1000,
            "the generator should also produce valid paths"
        );
    }

    #[test]
    fn dotfiles() {
        for (path, hidden) in [
            ("/", false),
            ("/a/b.txt", false),
            ("/a.b/c", false),
            ("/.hidden", true),
            ("/.git/config", true),
            ("/a/.env", true),
            ("/a/b/.well-known/", true),
            ("/...", true),
        ] {
            assert_eq!(has_dotfile(path), hidden, "{path:?}");
        }
        // The table row `/.hidden` decodes fine; hiding it is the caller's call.
        assert_eq!(decode("/%2ehidden").map(|d| has_dotfile(&d)), Ok(true));
    }

    #[test]
    fn encode_path_keeps_only_unreserved_and_slash() {
        for (decoded, encoded) in [
            ("/", "/"),
            ("/AZaz09-._~/", "/AZaz09-._~/"),
            ("/a b", "/a%20b"),
            ("/a#b?.txt", "/a%23b%3F.txt"),
            ("/100%", "/100%25"),
            ("/a:b", "/a%3Ab"),
            ("/<&\"'>", "/%3C%26%22%27%3E"),
            ("/é", "/%C3%A9"),
            ("/日本", "/%E6%97%A5%E6%9C%AC"),
            (
                "/a+b=c;d,e@f!g$h*i(j)k",
                "/a%2Bb%3Dc%3Bd%2Ce%40f%21g%24h%2Ai%28j%29k",
            ),
        ] {
            assert_eq!(encode_path(decoded), encoded, "{decoded:?}");
        }
    }

    use crate::testing::TempDir;

    /// The real path `open` arrives at, or `None` for a 404.
    fn locate(root: &Path, decoded: &str, follow_symlinks: bool) -> Option<PathBuf> {
        let root = Root::new(root.to_path_buf()).ok()?;
        let o = open(&root, decoded, follow_symlinks).ok()?;
        std::fs::read_link(format!("/proc/self/fd/{}", o.file.as_raw_fd())).ok()
    }

    /// A served root `www/` next to a `secret/` directory outside it.
    fn site() -> (TempDir, PathBuf) {
        let tmp = TempDir::new();
        tmp.write("www/index.html", b"hi");
        tmp.write("www/a/b/c.txt", b"nested");
        tmp.write("www/etc/passwd", b"not the real one");
        tmp.write("secret/key", b"outside");
        let root = tmp.path().join("www");
        (tmp, root)
    }

    #[test]
    fn locate_files_and_directories() {
        let (_tmp, root) = site();
        assert_eq!(
            locate(&root, "/index.html", false),
            Some(root.join("index.html"))
        );
        assert_eq!(
            locate(&root, "/a/b/c.txt", false),
            Some(root.join("a/b/c.txt"))
        );
        assert_eq!(locate(&root, "/a/b/", false), Some(root.join("a/b")));
        assert_eq!(locate(&root, "/a/b", false), Some(root.join("a/b")));
        assert_eq!(locate(&root, "/", false), Some(root.clone()));
        assert_eq!(locate(&root, "", false), Some(root.clone()));
    }

    #[test]
    fn locate_missing_is_none() {
        let (_tmp, root) = site();
        assert_eq!(locate(&root, "/nope.txt", false), None);
        assert_eq!(locate(&root, "/a/nope/c.txt", false), None);
        assert_eq!(locate(&root, "/index.html/x", false), None);
        // A trailing slash on a file: ENOTDIR, not the file.
        assert_eq!(locate(&root, "/index.html/", false), None);
    }

    #[test]
    fn locate_absolute_looking_path_stays_under_root() {
        let (_tmp, root) = site();
        // `Path::join("/etc/passwd")` would have escaped to the real file.
        assert_eq!(
            locate(&root, "/etc/passwd", false),
            Some(root.join("etc/passwd"))
        );
        assert_eq!(
            locate(&root, "//etc//passwd", false),
            Some(root.join("etc/passwd"))
        );
        assert_eq!(locate(&root, "/etc/shadow", false), None);
    }

    #[test]
    fn locate_refuses_dot_segments_even_without_decode() {
        let (_tmp, root) = site();
        assert_eq!(locate(&root, "/../secret/key", false), None);
        assert_eq!(locate(&root, "/a/../index.html", false), None);
        assert_eq!(locate(&root, "/../secret/key", true), None);
        assert_eq!(locate(&root, "/./index.html", false), None);
    }

    #[test]
    fn locate_symlinks() {
        symlink_cases();
    }

    /// The same answers where the kernel has no `openat2(2)` (Linux < 5.6,
    /// many routers) and the real path of the open handle decides. The flag
    /// is process-wide: tests running meanwhile take the fallback too, which
    /// must give them the same answers.
    #[test]
    fn locate_symlinks_without_openat2() {
        NO_OPENAT2.store(true, Ordering::Relaxed);
        symlink_cases();
        NO_OPENAT2.store(false, Ordering::Relaxed);
    }

    fn symlink_cases() {
        use std::os::unix::fs::symlink;
        let (tmp, root) = site();
        symlink(root.join("a/b/c.txt"), root.join("inside")).expect("symlink");
        symlink("a/b", root.join("inside-dir")).expect("symlink");
        symlink(tmp.path().join("secret/key"), root.join("outside")).expect("symlink");
        symlink("../secret", root.join("outside-dir")).expect("symlink");
        symlink("missing", root.join("dangling")).expect("symlink");

        let c = root.join("a/b/c.txt");
        assert_eq!(locate(&root, "/inside", false), Some(c.clone()));
        assert_eq!(locate(&root, "/inside-dir/c.txt", false), Some(c));

        // Out of the root: 404 unless the operator opted in (§4).
        let key = tmp.path().join("secret/key");
        assert_eq!(locate(&root, "/outside", false), None);
        assert_eq!(locate(&root, "/outside-dir/key", false), None);
        assert_eq!(locate(&root, "/outside", true), Some(key.clone()));
        assert_eq!(locate(&root, "/outside-dir/key", true), Some(key));

        assert_eq!(locate(&root, "/dangling", false), None);
        assert_eq!(locate(&root, "/dangling", true), None);
    }

    #[test]
    fn locate_root_that_is_a_prefix_of_a_sibling() {
        // `/tmp/x/www` must not accept `/tmp/x/www2/...` (component-wise check).
        use std::os::unix::fs::symlink;
        let (tmp, root) = site();
        tmp.write("www2/f", b"sibling");
        symlink(tmp.path().join("www2/f"), root.join("sib")).expect("symlink");
        assert_eq!(locate(&root, "/sib", false), None);
    }
}
