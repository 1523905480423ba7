//! Sending log lines to the local syslog daemon: one datagram per line on a
//! Unix datagram socket (normally `/dev/log`), never blocking the caller.
//!
//! The format is the one `syslog(3)` sends locally, RFC 3164 §4.1 without
//! the optional timestamp and host name: `<PRI>ranged[PID]: message`, with
//! PRI = facility × 8 + severity (§4.1.1) and facility 3, "system daemons".
//! The daemon stamps the time of arrival. BusyBox `syslogd` (and so
//! `logread`), rsyslog and journald all accept it.
//!
//! A full socket (the daemon is behind) drops the line and counts it; the
//! count is reported in a line of its own before the next line that fits,
//! `(12 log lines dropped)`. A socket whose daemon went away (ECONNREFUSED:
//! syslogd restarted and bound a new socket at the path) is reconnected at
//! most once a second, dropping and counting lines in between.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// RFC 3164 §4.1.1 facility 3, "system daemons", times 8.
const DAEMON: u8 = 3 << 3;

/// How often a vanished socket is looked for again.
const RECONNECT_EVERY: Duration = Duration::from_secs(1);

/// The RFC 3164 / syslog(3) severity of a log level.
pub fn severity(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

/// Severity 5, "normal but significant condition", for notices.
pub const NOTICE: u8 = 5;

/// Appends the datagram header `<PRI>ranged[PID]: ` for a severity.
pub fn push_header(out: &mut String, severity: u8) {
    use std::fmt::Write;
    let _ = write!(
        out,
        "<{}>ranged[{}]: ",
        DAEMON | (severity & 7),
        std::process::id()
    );
}

/// A connection to the syslog socket, with the count of lines dropped since
/// the last one that was delivered.
#[derive(Debug)]
pub struct Syslog {
    path: PathBuf,
    sock: Option<UnixDatagram>,
    dropped: u64,
    last_attempt: Instant,
}

impl Syslog {
    /// Connects to the socket at `path`. Fails if nothing listens there now:
    /// asking for syslog where there is none is a mistake to report at start.
    pub fn connect(path: &Path) -> io::Result<Syslog> {
        Ok(Syslog {
            path: path.to_owned(),
            sock: Some(open(path)?),
            dropped: 0,
            last_attempt: Instant::now(),
        })
    }

    /// Sends one datagram (a header from [`push_header`] and the message),
    /// or drops and counts it. Never blocks. `now` paces reconnecting.
    pub fn send(&mut self, datagram: &[u8], now: Instant) {
        if self.sock.is_none() {
            if now.saturating_duration_since(self.last_attempt) < RECONNECT_EVERY {
                self.dropped += 1;
                return;
            }
            self.last_attempt = now;
            match open(&self.path) {
                Ok(s) => self.sock = Some(s),
                Err(_) => {
                    self.dropped += 1;
                    return;
                }
            }
        }
        if self.dropped > 0 {
            let mut note = String::new();
            push_header(&mut note, severity(log::Level::Warn));
            note.push_str(&format!("({} log lines dropped)", self.dropped));
            if !self.try_send(note.as_bytes()) {
                self.dropped += 1;
                return;
            }
            self.dropped = 0;
        }
        if !self.try_send(datagram) {
            self.dropped += 1;
        }
    }

    /// Lines dropped and not yet reported.
    #[cfg(test)]
    fn dropped(&self) -> u64 {
        self.dropped
    }

    fn try_send(&mut self, datagram: &[u8]) -> bool {
        let Some(sock) = &self.sock else {
            return false;
        };
        match sock.send(datagram) {
            Ok(_) => true,
            // The daemon is gone (its socket closed or removed): look again
            // later. Matched by kind, because errno values differ on MIPS.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::NotFound
                        | io::ErrorKind::NotConnected
                        | io::ErrorKind::BrokenPipe
                ) =>
            {
                self.sock = None;
                false
            }
            // EAGAIN (the daemon's queue is full), ENOBUFS, EMSGSIZE: this
            // line is lost, the socket is fine.
            Err(_) => false,
        }
    }
}

fn open(path: &Path) -> io::Result<UnixDatagram> {
    let s = UnixDatagram::unbound()?;
    s.connect(path)?;
    s.set_nonblocking(true)?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket path of its own under /tmp, removed on drop.
    struct Sock(PathBuf);

    impl Sock {
        fn new(tag: &str) -> Sock {
            let p = std::env::temp_dir()
                .join(format!("ranged-syslog-{}-{tag}.sock", std::process::id()));
            let _ = std::fs::remove_file(&p);
            Sock(p)
        }

        fn bind(&self) -> UnixDatagram {
            let _ = std::fs::remove_file(&self.0);
            let r = UnixDatagram::bind(&self.0).expect("bind");
            r.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            r
        }
    }

    impl Drop for Sock {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn recv(r: &UnixDatagram) -> String {
        let mut buf = [0u8; 4096];
        let n = r.recv(&mut buf).expect("a datagram");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    fn datagram(sev: u8, msg: &str) -> String {
        let mut s = String::new();
        push_header(&mut s, sev);
        s.push_str(msg);
        s
    }

    #[test]
    fn headers() {
        let pid = std::process::id();
        for (level, pri) in [
            (log::Level::Error, 27),
            (log::Level::Warn, 28),
            (log::Level::Info, 30),
            (log::Level::Debug, 31),
            (log::Level::Trace, 31),
        ] {
            assert_eq!(
                datagram(severity(level), "m"),
                format!("<{pri}>ranged[{pid}]: m")
            );
        }
        assert_eq!(datagram(NOTICE, "m"), format!("<29>ranged[{pid}]: m"));
    }

    #[test]
    fn nothing_listening_is_an_error_at_start() {
        let s = Sock::new("absent");
        assert!(Syslog::connect(&s.0).is_err());
    }

    #[test]
    fn lines_arrive_as_one_datagram_each() {
        let s = Sock::new("lines");
        let r = s.bind();
        let mut l = Syslog::connect(&s.0).unwrap();
        let now = Instant::now();
        for msg in ["first", "second line", ""] {
            let d = datagram(6, msg);
            l.send(d.as_bytes(), now);
            assert_eq!(recv(&r), d);
        }
    }

    #[test]
    fn a_full_socket_drops_lines_without_blocking_and_reports_the_count() {
        let s = Sock::new("full");
        let r = s.bind();
        let mut l = Syslog::connect(&s.0).unwrap();
        let now = Instant::now();
        let started = Instant::now();
        let line = datagram(6, &"x".repeat(1000));
        // The receiver's queue holds a few hundred datagrams at most
        // (net.unix.max_dgram_qlen, 512 by default; the buffer limits first).
        let mut sent = 0;
        while l.dropped() < 5 && sent < 100_000 {
            l.send(line.as_bytes(), now);
            sent += 1;
        }
        assert_eq!(l.dropped(), 5, "the queue never filled after {sent} lines");
        assert!(started.elapsed() < Duration::from_secs(5));
        let delivered = sent - 5;
        for _ in 0..delivered {
            assert_eq!(recv(&r), line);
        }
        l.send(datagram(3, "after").as_bytes(), now);
        assert_eq!(recv(&r), datagram(4, "(5 log lines dropped)"));
        assert_eq!(recv(&r), datagram(3, "after"));
        assert_eq!(l.dropped(), 0);
    }

    #[test]
    fn a_restarted_daemon_is_found_again_at_most_once_a_second() {
        let s = Sock::new("restart");
        let r = s.bind();
        let mut l = Syslog::connect(&s.0).unwrap();
        let t0 = Instant::now();
        l.send(b"one", t0);
        assert_eq!(recv(&r), "one");
        drop(r);
        l.send(b"lost while down", t0);
        assert_eq!(l.dropped(), 1);
        let r = s.bind();
        // Within the second after the last attempt: no reconnecting yet.
        l.send(b"too soon", t0 + Duration::from_millis(900));
        assert_eq!(l.dropped(), 2);
        l.send(b"two", t0 + Duration::from_millis(1_100));
        assert_eq!(l.dropped(), 0);
        assert_eq!(recv(&r), datagram(4, "(2 log lines dropped)"));
        assert_eq!(recv(&r), "two");
    }
}
