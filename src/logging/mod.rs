//! The logger: a `log::Log` that writes one line per record to stderr or to
//! the local syslog daemon, the access line's format, and the calendar
//! helper both use.
//!
//! - **stderr**: `LEVEL message` (`WARN  127.0.0.1:5000: request head not
//!   complete in time`), with an RFC 3339 UTC time in front when
//!   [`Settings::timestamps`] is on (`2026-11-27T14:20:05.123Z WARN  …`).
//!   Meant to be off unless asked for: journald, procd's `logread` and
//!   `svlogd -tt` stamp lines themselves. Each line leaves in one `write(2)`, so lines from several
//!   workers never interleave.
//! - **access lines** are records with `target: "access"` ([`log_access`]),
//!   written bare (no time, no level word): the access lines of a log are
//!   standard Combined Log Format lines ([`format_access`]).
//! - **syslog** ([`Settings::syslog`]): every record also goes to the socket
//!   as one datagram (the `syslog` submodule: never blocks, drops and counts
//!   when the daemon is behind). Then stderr gets only errors and notices,
//!   so that an init system that also forwards stderr to syslog (procd,
//!   systemd) does not log every line twice, while a failure still reaches
//!   the terminal of whoever started the server.
//! - **notices** ([`notice`]) are printed whatever the level, even with
//!   `--log-level off`: "listening on http://…" must always reach the user.
//!
//! Any control character in a message (a newline in a file name, say) is
//! written as `\xHH`: one record is always one line.

mod access;
mod syslog;
mod time;

pub use access::{Access, SECRET_PARAMS, format_access, push_escaped, push_url};
pub use time::{Civil, civil, civil_from_days, push_clf, push_rfc3339};

use std::cell::Cell;
use std::fmt::{self, Write as _};
use std::io::{self, Write as _};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::thread::LocalKey;
use std::time::{Instant, SystemTime};

/// How the logger is set up, from the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    pub level: log::LevelFilter,
    /// Put an RFC 3339 UTC time in front of each stderr line.
    pub timestamps: bool,
    /// A Unix datagram socket to send every line to, normally `/dev/log`.
    pub syslog: Option<PathBuf>,
}

/// The target that marks access lines.
pub const ACCESS: &str = "access";

struct Logger {
    level: log::LevelFilter,
    timestamps: bool,
    syslog: Option<Mutex<syslog::Syslog>>,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Installs the logger, once per process. Fails if the syslog socket cannot
/// be reached now (nothing is installed then, so the caller can report it
/// on stderr) or if a logger is already installed.
pub fn init(settings: Settings) -> io::Result<()> {
    let syslog = match &settings.syslog {
        Some(path) => Some(Mutex::new(syslog::Syslog::connect(path).map_err(|e| {
            io::Error::new(e.kind(), format!("syslog socket {}: {e}", path.display()))
        })?)),
        None => None,
    };
    let logger = Logger {
        level: settings.level,
        timestamps: settings.timestamps,
        syslog,
    };
    if LOGGER.set(logger).is_err() {
        return Err(io::Error::other("the logger is already set up"));
    }
    let Some(logger) = LOGGER.get() else {
        return Err(io::Error::other("the logger is already set up"));
    };
    log::set_logger(logger).map_err(|_| io::Error::other("another logger is already set up"))?;
    log::set_max_level(settings.level);
    Ok(())
}

/// Prints a line whatever the level, even `off`: on stderr always (as
/// `NOTE  …`, with the time when timestamps are on) and to syslog, if
/// configured, with severity 5 (notice). Works before [`init`] too.
///
/// ```
/// ranged::logging::notice(format_args!("listening on http://{}/", "127.0.0.1:8080"));
/// ```
pub fn notice(args: fmt::Arguments) {
    let logger = LOGGER.get();
    let now = SystemTime::now();
    with_buf(&LINE, |line| {
        push_stderr_line(
            line,
            "NOTE",
            logger.is_some_and(|l| l.timestamps),
            now,
            args,
        );
        write_stderr(line);
        if let Some(l) = logger {
            l.to_syslog(line, syslog::NOTICE, args);
        }
    });
}

/// Logs the access line for one request at info level, target
/// [`ACCESS`]. Formats nothing when info is off.
pub fn log_access(a: &Access) {
    if !log::log_enabled!(target: ACCESS, log::Level::Info) {
        return;
    }
    with_buf(&ACCESS_LINE, |s| {
        format_access(a, s);
        log::info!(target: ACCESS, "{s}");
    });
}

thread_local! {
    /// The line being written, reused so that logging does not allocate.
    static LINE: Cell<String> = const { Cell::new(String::new()) };
    /// The access line being formatted (it is then logged through `LINE`).
    static ACCESS_LINE: Cell<String> = const { Cell::new(String::new()) };
}

/// Runs `f` with the thread-local buffer `key`, cleared. The buffer is
/// taken out while `f` runs, so a `Display` that logs gets a fresh one
/// instead of a borrow panic, and so does a thread being torn down. A buffer
/// that grew past 16 KiB is let go, so a rare long line does not keep memory
/// in every worker.
fn with_buf<R>(key: &'static LocalKey<Cell<String>>, f: impl FnOnce(&mut String) -> R) -> R {
    let mut s = key.try_with(Cell::take).unwrap_or_default();
    s.clear();
    let r = f(&mut s);
    if s.capacity() <= 16 * 1024 {
        let _ = key.try_with(|c| c.set(s));
    }
    r
}

/// Writes a finished line to stderr in one call (Rust's stderr is
/// unbuffered; the lock keeps a rare short write's rest from interleaving).
fn write_stderr(line: &str) {
    let _ = io::stderr().lock().write_all(line.as_bytes());
}

/// Builds a stderr line: `[TIME ]WORD  message\n`, the level word padded to
/// five columns so messages line up.
fn push_stderr_line(
    out: &mut String,
    word: &str,
    timestamps: bool,
    now: SystemTime,
    args: fmt::Arguments,
) {
    if timestamps {
        push_rfc3339(out, now);
        out.push(' ');
    }
    let _ = write!(out, "{word:<5} ");
    push_message(out, args);
    out.push('\n');
}

/// Appends the message with control characters as `\xHH`, so that a record
/// is one line whatever it quotes.
fn push_message(out: &mut String, args: fmt::Arguments) {
    let start = out.len();
    let _ = out.write_fmt(args);
    let Some(first) = out[start..].bytes().position(|b| b < 0x20 || b == 0x7f) else {
        return;
    };
    let tail = out.split_off(start + first);
    for c in tail.chars() {
        if c < ' ' || c == '\x7f' {
            let _ = write!(out, "\\x{:02X}", c as u32);
        } else {
            out.push(c);
        }
    }
}

impl Logger {
    fn to_syslog(&self, line: &mut String, severity: u8, args: fmt::Arguments) {
        let Some(s) = &self.syslog else {
            return;
        };
        line.clear();
        syslog::push_header(line, severity);
        push_message(line, args);
        // A poisoned lock only means a send panicked; the state is still usable.
        let mut s = s.lock().unwrap_or_else(|e| e.into_inner());
        s.send(line.as_bytes(), Instant::now());
    }
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = record.level();
        with_buf(&LINE, |line| {
            if self.syslog.is_none() || level == log::Level::Error {
                if record.target() == ACCESS {
                    push_message(line, *record.args());
                    line.push('\n');
                } else {
                    let now = SystemTime::now();
                    push_stderr_line(line, level.as_str(), self.timestamps, now, *record.args());
                }
                write_stderr(line);
            }
            self.to_syslog(line, syslog::severity(level), *record.args());
        });
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn stderr_line(word: &str, timestamps: bool, args: fmt::Arguments) -> String {
        let mut s = String::new();
        let t = UNIX_EPOCH + Duration::from_millis(1_795_789_205_123);
        push_stderr_line(&mut s, word, timestamps, t, args);
        s
    }

    #[test]
    fn stderr_lines() {
        let peer = "127.0.0.1:5000";
        let cases = [
            (
                stderr_line(
                    "WARN",
                    false,
                    format_args!("{peer}: request head not complete in time"),
                ),
                "WARN  127.0.0.1:5000: request head not complete in time\n",
            ),
            (
                stderr_line("ERROR", false, format_args!("poll failed")),
                "ERROR poll failed\n",
            ),
            (stderr_line("INFO", false, format_args!("x")), "INFO  x\n"),
            (stderr_line("TRACE", false, format_args!("x")), "TRACE x\n"),
            (
                stderr_line("NOTE", false, format_args!("listening")),
                "NOTE  listening\n",
            ),
            (
                stderr_line("DEBUG", true, format_args!("{peer}: idle")),
                "2026-11-27T14:20:05.123Z DEBUG 127.0.0.1:5000: idle\n",
            ),
            // A newline in a quoted name cannot start a forged line.
            (
                stderr_line(
                    "WARN",
                    false,
                    format_args!("{}: gone", "a\nERROR b\r\t\x7fé"),
                ),
                "WARN  a\\x0AERROR b\\x0D\\x09\\x7Fé: gone\n",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn the_buffer_is_reused_and_reentry_gets_a_fresh_one() {
        let outer = with_buf(&LINE, |a| {
            a.push_str("outer");
            // A Display that logs while the line is being built.
            let inner = with_buf(&LINE, |b| {
                assert!(b.is_empty());
                b.push_str("inner");
                b.clone()
            });
            assert_eq!(a, "outer");
            inner
        });
        assert_eq!(outer, "inner");
        with_buf(&LINE, |a| {
            assert!(a.is_empty(), "cleared before reuse");
            assert!(a.capacity() >= 5, "the allocation was kept");
            a.push_str(&"x".repeat(20_000));
        });
        with_buf(&LINE, |a| {
            assert!(a.capacity() < 20_000, "a huge buffer is let go")
        });
    }
}
