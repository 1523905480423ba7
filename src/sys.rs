//! The few system calls std does not expose: `poll(2)` for the readiness loops,
//! `listen(2)` for a deeper accept backlog, `openat2(2)` (through `syscall`)
//! for opening files strictly beneath the served folder, and `signal(2)` with
//! `write(2)` for graceful shutdown on SIGTERM and SIGINT. Shared by the
//! connection layer and the file layer. This is the only module with `unsafe`
//! code; each block is one FFI call with arguments whose validity the safe
//! wrapper guarantees.
//!
//! Hand-written rather than the `libc` crate: five declarations whose C types
//! are the same on every Linux target we build (glibc and musl, 32 and 64 bit).
#![allow(unsafe_code)]

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
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
    fn signal(signum: i32, handler: usize) -> usize;
    fn write(fd: i32, buf: *const u8, count: usize) -> isize;
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

static SHUTDOWN: AtomicBool = AtomicBool::new(false);
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(_signum: i32) {
    SHUTDOWN.store(true, Ordering::SeqCst);
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
    SHUTDOWN.store(false, Ordering::SeqCst);
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
    SHUTDOWN.load(Ordering::SeqCst)
}

/// Asks for a shutdown as the signal handler would (tests, embedding).
pub fn request_shutdown() {
    on_signal(0);
}
