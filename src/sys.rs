//! The few system calls std does not expose: `poll(2)` for the readiness loops,
//! `listen(2)` for a deeper accept backlog and `shutdown(2)` to stop listening,
//! `openat2(2)` (through `syscall`) for opening files strictly beneath the
//! served folder, `signal(2)` with `write(2)` for graceful shutdown on SIGTERM
//! and SIGINT, extended attributes (`fgetxattr`/`fsetxattr`) for persisted
//! digests, `fstatvfs(3)` for free space, `setpriority(2)`/`ioprio_set(2)` for
//! background work, and the credential calls for dropping privileges. Shared by
//! the connection layer, the file layer and the upload store. This is the only module with `unsafe`
//! code; each block is one FFI call with arguments whose validity the safe
//! wrapper guarantees.
//!
//! Hand-written rather than the `libc` crate: five declarations whose C types
//! are the same on every Linux target we build (glibc and musl, 32 and 64 bit).
#![allow(unsafe_code)]

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::time::Duration;

/// `struct pollfd` from `<poll.h>`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct PollFd {
    pub fd: RawFd,
    pub events: i16,
    pub revents: i16,
}

pub const POLLIN: i16 = 0x001;
pub const POLLOUT: i16 = 0x004;
pub const POLLERR: i16 = 0x008;
pub const POLLHUP: i16 = 0x010;
pub const POLLNVAL: i16 = 0x020;

const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

/// `struct open_how` for `openat2(2)`.
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// `openat2(2)` has number 437 on every architecture (the unified table).
const SYS_OPENAT2: std::ffi::c_long = 437;
/// Fail with EXDEV if resolution would leave the directory (`..`, absolute or
/// escaping symlinks), and refuse `/proc` magic links.
const RESOLVE_BENEATH_NO_MAGIC: u64 = 0x08 | 0x02;
const O_CLOEXEC: i32 = 0o2000000;
/// A raw `openat2` on a 32-bit kernel does not add `O_LARGEFILE` the way the C
/// library's `open` does: without it a file over 2 GiB fails with EOVERFLOW.
/// 64-bit kernels force it. The value differs by architecture.
#[cfg(target_arch = "arm")]
const O_LARGEFILE: i32 = 0o400000;
#[cfg(target_arch = "x86")]
const O_LARGEFILE: i32 = 0o100000;
#[cfg(not(any(target_arch = "arm", target_arch = "x86")))]
const O_LARGEFILE: i32 = 0;

unsafe extern "C" {
    fn syscall(number: std::ffi::c_long, ...) -> std::ffi::c_long;
    fn poll(fds: *mut PollFd, nfds: std::ffi::c_ulong, timeout: i32) -> i32;
    fn listen(fd: i32, backlog: i32) -> i32;
    fn shutdown(fd: i32, how: i32) -> i32;
    fn signal(signum: i32, handler: usize) -> usize;
    fn write(fd: i32, buf: *const u8, count: usize) -> isize;
    fn fgetxattr(fd: i32, name: *const std::ffi::c_char, value: *mut u8, size: usize) -> isize;
    fn fsetxattr(
        fd: i32,
        name: *const std::ffi::c_char,
        value: *const u8,
        size: usize,
        flags: i32,
    ) -> i32;
    fn fstatvfs(fd: i32, buf: *mut u8) -> i32;
    fn gettid() -> i32;
    fn setpriority(which: i32, who: u32, prio: i32) -> i32;
    fn setgroups(size: usize, list: *const u32) -> i32;
    fn setgid(gid: u32) -> i32;
    fn setuid(uid: u32) -> i32;
    fn geteuid() -> u32;
}

/// Waits until one of `fds` is ready or `timeout` passes (`None`: forever).
/// Returns how many entries have `revents` set; 0 on time-out or on a signal.
pub fn poll_fds(fds: &mut [PollFd], timeout: Option<Duration>) -> io::Result<usize> {
    let ms = match timeout {
        None => -1,
        // Round up so that a deadline 0.3 ms away is not polled with 0 in a busy loop.
        Some(d) => d.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32,
    };
    // SAFETY: `fds` is a valid, exclusively borrowed slice of `struct pollfd` for
    // the duration of the call, and its length is passed alongside.
    let n = unsafe { poll(fds.as_mut_ptr(), fds.len() as std::ffi::c_ulong, ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(n as usize)
}

/// Opens `path` (relative) for reading under the directory `dir` with
/// `openat2(2)` and `RESOLVE_BENEATH`: the kernel walks the path once and
/// refuses (EXDEV) anything that would leave `dir`. Linux 5.6 and later; older
/// kernels answer ENOSYS, and a seccomp filter may answer EPERM.
pub fn open_beneath(dir: RawFd, path: &std::ffi::CStr, flags: i32) -> io::Result<std::fs::File> {
    use std::os::fd::FromRawFd;
    let how = OpenHow {
        flags: (flags | O_CLOEXEC | O_LARGEFILE) as u64,
        mode: 0,
        resolve: RESOLVE_BENEATH_NO_MAGIC,
    };
    // SAFETY: every argument is passed as the C `long`/pointer the kernel
    // reads; `path` and `how` outlive the call.
    let fd = unsafe {
        syscall(
            SYS_OPENAT2,
            dir as std::ffi::c_long,
            path.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us; nobody else owns it.
    Ok(unsafe { std::fs::File::from_raw_fd(fd as RawFd) })
}

/// Sets the listen backlog of an already listening socket (std uses 128,
/// which a burst of connections overflows; Linux caps it at `somaxconn`).
pub fn set_backlog(fd: RawFd, backlog: i32) -> io::Result<()> {
    // SAFETY: listen(2) on a descriptor we own; the kernel validates it.
    if unsafe { listen(fd, backlog) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Shutdown signals received so far (a second one ends the grace period).
static SHUTDOWN: AtomicUsize = AtomicUsize::new(0);
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(_signum: i32) {
    SHUTDOWN.fetch_add(1, Ordering::SeqCst);
    let fd = WAKE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        let b = 1u8;
        // SAFETY: write(2) is async-signal-safe; `b` outlives the call. A full
        // pipe (EAGAIN) is fine: the reader is already due to wake up.
        unsafe {
            write(fd, &b, 1);
        }
    }
}

/// Makes SIGTERM and SIGINT set the shutdown flag and write a byte to `wake_fd`
/// (a non-blocking socket the readiness loop polls), instead of killing us.
pub fn install_shutdown_signals(wake_fd: RawFd) {
    SHUTDOWN.store(0, Ordering::SeqCst);
    WAKE_FD.store(wake_fd, Ordering::SeqCst);
    for sig in [SIGTERM, SIGINT] {
        // SAFETY: `on_signal` only touches atomics and calls write(2), both
        // async-signal-safe.
        unsafe {
            signal(sig, on_signal as extern "C" fn(i32) as usize);
        }
    }
}

/// Forgets the wake fd before it is closed, so a late signal cannot write to
/// whatever later reuses that descriptor number.
pub fn forget_wake_fd() {
    WAKE_FD.store(-1, Ordering::SeqCst);
}

/// Whether a shutdown signal has arrived.
pub fn shutdown_requested() -> bool {
    SHUTDOWN.load(Ordering::SeqCst) > 0
}

/// How many shutdown signals have arrived.
pub fn shutdown_signals() -> usize {
    SHUTDOWN.load(Ordering::SeqCst)
}

/// Asks for a shutdown as the signal handler would (tests, embedding).
pub fn request_shutdown() {
    on_signal(0);
}

/// Stops a listening socket from accepting: new connection attempts are
/// refused at once (Linux turns a listening socket shut down for reading back
/// into a closed one), and every worker polling it sees an error instead of
/// waiting. Used at shutdown, so that no client connects into a server that
/// will never answer it.
pub fn stop_listening(fd: RawFd) -> io::Result<()> {
    const SHUT_RDWR: i32 = 2;
    // SAFETY: shutdown(2) on a descriptor we own; the kernel validates it.
    if unsafe { shutdown(fd, SHUT_RDWR) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reads the extended attribute `name` of the open file `fd` into `buf`;
/// the value's length. `ENODATA` (no such attribute) and `ENOTSUP` (a file
/// system without xattrs) come back as errors for the caller to tell apart.
pub fn get_xattr(fd: RawFd, name: &std::ffi::CStr, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `name` is NUL-terminated and `buf` is valid for `buf.len()`
    // bytes for the duration of the call.
    let n = unsafe { fgetxattr(fd, name.as_ptr(), buf.as_mut_ptr(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// Sets the extended attribute `name` of the open file `fd` to `value`.
pub fn set_xattr(fd: RawFd, name: &std::ffi::CStr, value: &[u8]) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated and `value` is valid for its length.
    if unsafe { fsetxattr(fd, name.as_ptr(), value.as_ptr(), value.len(), 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Bytes an unprivileged user may still write on the file system holding
/// `fd` (`f_bavail × f_frsize` of `fstatvfs(3)`).
pub fn available_bytes(fd: RawFd) -> io::Result<u64> {
    /// The leading fields of `struct statvfs`, the same on glibc and musl for
    /// every Linux target we build (musl's block counts are 64-bit
    /// everywhere; glibc's are on 64-bit targets, the only glibc builds).
    #[repr(C)]
    struct Prefix {
        bsize: std::ffi::c_ulong,
        frsize: std::ffi::c_ulong,
        blocks: u64,
        bfree: u64,
        bavail: u64,
    }
    // The whole struct is under 128 bytes on every target; 256 is room to spare.
    #[repr(C, align(8))]
    struct Buf([u8; 256]);
    let mut buf = Buf([0; 256]);
    // SAFETY: `buf` is larger than `struct statvfs` and suitably aligned.
    if unsafe { fstatvfs(fd, buf.0.as_mut_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel filled the struct; `Prefix` is its first fields.
    let p = unsafe { &*(buf.0.as_ptr() as *const Prefix) };
    #[allow(clippy::unnecessary_cast)] // c_ulong is u32 on 32-bit targets
    let unit = if p.frsize != 0 { p.frsize } else { p.bsize } as u64;
    let _ = (p.blocks, p.bfree);
    Ok(p.bavail.saturating_mul(unit))
}

/// Lowers the calling thread's CPU and I/O priority as far as it goes (nice
/// 19, the idle I/O class): background work such as hashing must yield to
/// every request. Best effort: a refusal is ignored.
pub fn lower_thread_priority() {
    const PRIO_PROCESS: i32 = 0;
    // ioprio_set(IOPRIO_WHO_PROCESS, tid, IOPRIO_CLASS_IDLE << 13); the
    // syscall number differs by architecture.
    #[cfg(target_arch = "x86_64")]
    const SYS_IOPRIO_SET: Option<std::ffi::c_long> = Some(251);
    #[cfg(target_arch = "aarch64")]
    const SYS_IOPRIO_SET: Option<std::ffi::c_long> = Some(30);
    #[cfg(target_arch = "arm")]
    const SYS_IOPRIO_SET: Option<std::ffi::c_long> = Some(314);
    #[cfg(target_arch = "x86")]
    const SYS_IOPRIO_SET: Option<std::ffi::c_long> = Some(289);
    #[cfg(not(any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "arm",
        target_arch = "x86"
    )))]
    const SYS_IOPRIO_SET: Option<std::ffi::c_long> = None;
    const IOPRIO_WHO_PROCESS: std::ffi::c_long = 1;
    const IOPRIO_IDLE: std::ffi::c_long = 3 << 13;
    // SAFETY: plain integer arguments; on Linux both calls act on the one
    // thread named by its id, and a failure changes nothing.
    unsafe {
        let tid = gettid();
        setpriority(PRIO_PROCESS, tid as u32, 19);
        if let Some(nr) = SYS_IOPRIO_SET {
            syscall(nr, IOPRIO_WHO_PROCESS, tid as std::ffi::c_long, IOPRIO_IDLE);
        }
    }
}

/// Whether the process runs as root (effective user id 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid(2) has no arguments and cannot fail.
    unsafe { geteuid() == 0 }
}

/// Drops the process's privileges for good: supplementary groups to just
/// `gid`, then the group, then the user (in that order: once the user is not
/// root, the group can no longer be changed). Called before any thread starts.
pub fn drop_privileges(uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: plain integer arguments and a one-element array that outlives
    // the call.
    unsafe {
        if setgroups(1, &gid) < 0 || setgid(gid) < 0 || setuid(uid) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

// The upload store: one process per state folder.

unsafe extern "C" {
    fn flock(fd: i32, operation: i32) -> i32;
}

/// Takes an exclusive `flock(2)` on `fd` without waiting: `Ok(false)` when
/// another open file (in this process or another) holds it. The lock goes
/// with the open file: closing it releases the lock, so does the process
/// ending, however it ends.
pub fn try_lock_exclusive(fd: RawFd) -> io::Result<bool> {
    const LOCK_EX: i32 = 2;
    const LOCK_NB: i32 = 4;
    // SAFETY: flock(2) on a descriptor the caller owns; plain integers.
    if unsafe { flock(fd, LOCK_EX | LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.kind() == io::ErrorKind::WouldBlock {
        Ok(false)
    } else {
        Err(e)
    }
}
