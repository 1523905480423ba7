//! Sending a response without blocking: the head and body planned by the
//! handler become a cursor over literal bytes and file slices that survives
//! partial writes, paced by the per-connection and total rate limits.

use crate::message::{Body, Headers, Reply, Segment, reason};
use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Write};
use std::net::TcpStream;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use super::conn::AccessLog;

/// Largest single write. Large writes are what makes loopback and LAN transfers
/// fast. Measured here, full 1 GiB GET over loopback: 256 KiB ≈ 2.6 GB/s,
/// 1 MiB ≈ 3.6 GB/s, 2 MiB no faster but 2 MiB more RSS per worker.
///
/// Bodies are copied (positional reads into this buffer), not sent with
/// `sendfile(2)`: sendfile queues page-cache pages, and a file truncated while
/// they wait in the socket goes out as zeros under an honest-looking length —
/// measured here (tests/robustness.rs, `file_truncated_during_download`). A
/// copy sends exactly the bytes read, and a short read closes the connection.
/// sendfile was not faster on loopback either (random 64 KiB slices slower).
pub(super) const CHUNK: usize = 1024 * 1024;

/// A response in flight: literal bytes (status line, fields, small bodies) and
/// then slices of a file, with a cursor that survives partial writes.
pub(super) struct Sending {
    literal: Vec<u8>,
    literal_pos: usize,
    file: Option<Arc<File>>,
    /// File slices (or multipart pieces) after the literal.
    parts: Parts,
    /// Cursor: current part and offset within it.
    idx: usize,
    off: u64,
    /// Length of the head (everything before the body) at the literal's start.
    pub head_len: u64,
    /// Bytes written so far.
    pub sent: u64,
    /// The connection stays open for another request afterwards.
    pub keep: bool,
    /// Body bytes of the request still to read and discard afterwards.
    pub drain: u64,
    /// Per-connection rate: bytes/s and when sending began.
    rate: Option<(u64, Instant)>,
    /// Nothing is written before this (a rate pause, or a held answer).
    pub paused_until: Option<Instant>,
    /// This answer's part of the total rate limit, once it sends.
    share: Option<Share>,
    pub log: AccessLog,
}

enum Parts {
    None,
    One { start: u64, len: u64 },
    Many(Vec<Segment>),
}

impl Parts {
    fn get(&self, i: usize) -> Option<Piece<'_>> {
        match self {
            Parts::None => None,
            Parts::One { start, len } => (i == 0).then_some(Piece::Slice(*start, *len)),
            Parts::Many(v) => v.get(i).map(|s| match s {
                Segment::Bytes(b) => Piece::Bytes(b),
                Segment::Slice { start, len } => Piece::Slice(*start, *len),
            }),
        }
    }
}

enum Piece<'a> {
    Bytes(&'a [u8]),
    Slice(u64, u64),
}

impl Piece<'_> {
    fn len(&self) -> u64 {
        match self {
            Piece::Bytes(b) => b.len() as u64,
            Piece::Slice(_, len) => *len,
        }
    }
}

/// How far a send got.
pub(super) enum Pumped {
    Done,
    Blocked,
    Paused,
}

/// How the connection is framed after this answer, for the head.
pub(super) struct Framing {
    pub keep: bool,
    pub http10: bool,
    pub head_only: bool,
}

/// Builds the head and the body cursor of a response. `literal` is a spare
/// buffer to build it in.
pub(super) fn prepare(
    mut literal: Vec<u8>,
    reply: Reply,
    fields: &Headers,
    framing: Framing,
    log: AccessLog,
    rate: Option<u64>,
) -> Sending {
    let status = reply.status;
    let body_len = reply.body.len();
    // RFC 9110 §6.4.1 / §8.6: 304 (and 1xx/204) carry no body and no
    // Content-Length from us.
    let bodiless = status == 304 || status == 204 || status < 200;
    literal.clear();
    // The status line and fields by hand: this runs once per answer, and
    // the formatter costs several times the copies.
    literal.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(&mut literal, u64::from(status));
    literal.push(b' ');
    literal.extend_from_slice(reason(status).as_bytes());
    literal.extend_from_slice(b"\r\nDate: ");
    with_date(|d| literal.extend_from_slice(d.as_bytes()));
    if !bodiless {
        literal.extend_from_slice(b"\r\nContent-Length: ");
        push_decimal(&mut literal, body_len);
    }
    literal.extend_from_slice(b"\r\n");
    if !framing.keep {
        literal.extend_from_slice(b"Connection: close\r\n");
    } else if framing.http10 {
        literal.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    literal.extend_from_slice(fields.as_str().as_bytes());
    literal.extend_from_slice(b"\r\n");
    let head_len = literal.len() as u64;
    // HEAD: the GET's fields and Content-Length, no body (RFC 9110 §9.3.2).
    let (file, parts) = match reply.body {
        _ if bodiless || framing.head_only => (None, Parts::None),
        Body::Empty => (None, Parts::None),
        Body::Static(s) => {
            literal.extend_from_slice(s.as_bytes());
            (None, Parts::None)
        }
        Body::Bytes(b) => {
            literal.extend_from_slice(&b);
            (None, Parts::None)
        }
        Body::File { file, start, len } => (Some(file), Parts::One { start, len }),
        Body::Parts { file, parts } => (Some(file), Parts::Many(parts)),
    };
    let now = Instant::now();
    Sending {
        literal,
        literal_pos: 0,
        file,
        parts,
        idx: 0,
        off: 0,
        head_len,
        sent: 0,
        keep: framing.keep,
        drain: 0,
        rate: rate.map(|r| (r.max(1), now)),
        paused_until: (!reply.delay.is_zero()).then(|| now + reply.delay),
        share: None,
        log,
    }
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Writes as much of the response as the socket and the rate limits take now.
pub(super) fn pump(
    s: &mut Sending,
    stream: &TcpStream,
    scratch: &mut Vec<u8>,
    total: Option<&TotalRate>,
) -> io::Result<Pumped> {
    if scratch.len() != CHUNK {
        *scratch = vec![0; CHUNK];
    }
    loop {
        let now = Instant::now();
        if s.paused_until.is_some_and(|t| now < t) {
            return Ok(Pumped::Paused);
        }
        s.paused_until = None;
        let mut limit = CHUNK;
        if let Some((rate, since)) = s.rate {
            // Send only what is due at `rate` bytes/s, in pieces of about a
            // tenth of a second, so the last byte arrives at total/rate.
            let piece = (rate / 10).clamp(1024, CHUNK as u64);
            let due = (since.elapsed().as_secs_f64() * rate as f64) as u64;
            let allowed = due.saturating_sub(s.sent);
            // Wait only for what this response still needs: a small answer
            // must not wait for a whole piece.
            let need = piece.min(s.remaining());
            if allowed < need {
                let wait = (s.sent + need) as f64 / rate as f64 - since.elapsed().as_secs_f64();
                s.paused_until = Some(now + Duration::from_secs_f64(wait.max(0.001)));
                return Ok(Pumped::Paused);
            }
            limit = usize::try_from(allowed.min(CHUNK as u64)).unwrap_or(CHUNK);
        }
        if let Some(total) = total {
            let share = s.share.get_or_insert_with(|| total.join(now));
            match total.allowance(share, now) {
                Ok(piece) => limit = limit.min(piece),
                Err(wait) => {
                    s.paused_until = Some(now + wait);
                    return Ok(Pumped::Paused);
                }
            }
        }
        let n = s.fill(scratch, limit)?;
        if n == 0 {
            return Ok(Pumped::Done);
        }
        match (&*stream).write(&scratch[..n]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(w) => {
                s.advance(w);
                if let (Some(total), Some(share)) = (total, s.share.as_mut()) {
                    total.charge(share, w as u64, now);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Pumped::Blocked),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

impl Sending {
    /// Body bytes written (the access log's `%b`).
    pub fn body_sent(&self) -> u64 {
        self.sent.saturating_sub(self.head_len)
    }

    fn remaining(&self) -> u64 {
        let mut left = (self.literal.len() - self.literal_pos) as u64;
        let mut i = self.idx;
        let mut off = self.off;
        while let Some(p) = self.parts.get(i) {
            left += p.len() - off;
            off = 0;
            i += 1;
        }
        left
    }

    /// The head buffer, for reuse by the next response (a listing's big
    /// buffer is not worth keeping).
    pub fn take_literal(&mut self) -> Option<Vec<u8>> {
        (self.literal.capacity() <= 64 * 1024).then(|| std::mem::take(&mut self.literal))
    }

    /// Copies up to `limit` bytes from the cursor into `scratch`, without
    /// moving the cursor. A file that ends early (truncated while we send) is
    /// an error: the connection is closed, never padded.
    fn fill(&mut self, scratch: &mut [u8], limit: usize) -> io::Result<usize> {
        let limit = limit.min(scratch.len());
        let mut n = 0;
        let lit = &self.literal[self.literal_pos..];
        let k = lit.len().min(limit);
        scratch[..k].copy_from_slice(&lit[..k]);
        n += k;
        let (mut i, mut off) = (self.idx, self.off);
        while n < limit {
            let Some(piece) = self.parts.get(i) else {
                break;
            };
            match piece {
                Piece::Bytes(b) => {
                    let b = &b[off as usize..];
                    let k = b.len().min(limit - n);
                    scratch[n..n + k].copy_from_slice(&b[..k]);
                    n += k;
                    if k < b.len() {
                        break;
                    }
                }
                // An empty slice (a zero-byte file) has nothing to read.
                Piece::Slice(_, len) if len == off => {}
                Piece::Slice(start, len) => {
                    let Some(file) = self.file.as_deref() else {
                        break;
                    };
                    let at = start + off;
                    let want = (len - off).min((limit - n) as u64) as usize;
                    let got = loop {
                        match file.read_at(&mut scratch[n..n + want], at) {
                            Ok(g) => break g,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                            Err(e) => {
                                return Err(io::Error::other(format!("reading the file: {e}")));
                            }
                        }
                    };
                    if got == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("file ended {} bytes before the announced length", len - off),
                        ));
                    }
                    n += got;
                    if (got as u64) < len - off {
                        break;
                    }
                }
            }
            i += 1;
            off = 0;
        }
        Ok(n)
    }

    /// Moves the cursor past `w` written bytes.
    fn advance(&mut self, mut w: usize) {
        self.sent += w as u64;
        let lit_left = self.literal.len() - self.literal_pos;
        let k = lit_left.min(w);
        self.literal_pos += k;
        w -= k;
        let mut w = w as u64;
        while w > 0 {
            let Some(piece) = self.parts.get(self.idx) else {
                break;
            };
            let left = piece.len() - self.off;
            if w < left {
                self.off += w;
                return;
            }
            w -= left;
            self.idx += 1;
            self.off = 0;
        }
        // Skip empty parts so `fill` never sees a finished one.
        while self
            .parts
            .get(self.idx)
            .is_some_and(|p| p.len() == self.off)
        {
            self.idx += 1;
            self.off = 0;
        }
    }
}

/// The total rate limit shared by every connection (`--rate-limit-total`).
///
/// Fair by construction: each answer being sent gets an equal share (the
/// total divided by how many are sending), paced on its own virtual clock
/// — so eight `aria2c` segments split the cap eight ways instead of taking
/// turns at it. A global virtual-time bucket (GCRA) on top keeps the sum
/// under the cap while shares adjust to answers starting and ending. Each
/// write is charged after it happens; an answer may run up to a burst
/// (50 ms) ahead of its clock, then waits.
pub(super) struct TotalRate {
    rate: u64,
    epoch: Instant,
    /// Nanoseconds after `epoch` at which the bytes already sent are "paid".
    paid_until: AtomicU64,
    burst: Duration,
    /// Answers sending now, among which the rate is shared.
    active: Arc<AtomicUsize>,
}

/// One answer's part of the total rate; leaving the count when dropped.
pub(super) struct Share {
    active: Arc<AtomicUsize>,
    /// This answer's own clock: its bytes so far are paid until then.
    paid_until: Instant,
}

impl Drop for Share {
    fn drop(&mut self) {
        self.active.fetch_sub(1, Ordering::Relaxed);
    }
}

impl TotalRate {
    pub fn new(rate: u64) -> TotalRate {
        TotalRate {
            rate: rate.max(1),
            epoch: Instant::now(),
            paid_until: AtomicU64::new(0),
            // Enough to keep a socket busy between wake-ups, small enough
            // that an idle bucket cannot burst much past the cap.
            burst: Duration::from_millis(50),
            active: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn join(&self, now: Instant) -> Share {
        self.active.fetch_add(1, Ordering::Relaxed);
        Share {
            active: Arc::clone(&self.active),
            paid_until: now,
        }
    }

    /// This answer's rate now: an equal share of the total.
    fn share_rate(&self) -> u64 {
        let n = self.active.load(Ordering::Relaxed).max(1) as u64;
        (self.rate / n).max(1)
    }

    fn nanos(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// How much `share` may write now, or how long it waits.
    fn allowance(&self, share: &Share, now: Instant) -> Result<usize, Duration> {
        if share.paid_until > now + self.burst {
            return Err(share.paid_until - self.burst - now);
        }
        let now_ns = self.nanos(now);
        let debt = self
            .paid_until
            .load(Ordering::Relaxed)
            .saturating_sub(now_ns);
        let burst = self.burst.as_nanos() as u64;
        if debt > burst {
            return Err(Duration::from_nanos(debt - burst).max(Duration::from_millis(1)));
        }
        // A burst's worth of this answer's share per write.
        let piece = self.share_rate() / 20;
        Ok(usize::try_from(piece.clamp(1024, 64 * 1024)).unwrap_or(1024))
    }

    /// Records `bytes` of `share` written at `now`.
    fn charge(&self, share: &mut Share, bytes: u64, now: Instant) {
        let cost = |rate: u64| {
            Duration::from_nanos((u128::from(bytes) * 1_000_000_000 / u128::from(rate)) as u64)
        };
        // An idle answer banks no credit: its clock starts from now.
        share.paid_until = share.paid_until.max(now) + cost(self.share_rate());
        let now_ns = self.nanos(now);
        let total_cost = cost(self.rate).as_nanos() as u64;
        let _ = self
            .paid_until
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |paid| {
                let from = paid.max(now_ns.saturating_sub(self.burst.as_nanos() as u64));
                Some(from.saturating_add(total_cost))
            });
    }
}

thread_local! {
    /// The `Date` value, formatted once per second per thread.
    static DATE: RefCell<(u64, [u8; 29])> = const { RefCell::new((u64::MAX, [0; 29])) };
}

/// Calls `f` with the current IMF-fixdate (RFC 9110 §5.6.7).
pub(super) fn with_date<R>(f: impl FnOnce(&str) -> R) -> R {
    let now = SystemTime::now();
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with(|cell| {
        let mut d = cell.borrow_mut();
        if d.0 != secs {
            // The clock of a running host is within 1970..9999; should it not
            // be (a board without RTC before NTP), the epoch is a better Date
            // than none.
            let mut buf = [0u8; 29];
            if crate::validators::imf_fixdate_into(&mut buf, now).is_none() {
                crate::validators::imf_fixdate_into(&mut buf, SystemTime::UNIX_EPOCH);
            }
            *d = (secs, buf);
        }
        f(std::str::from_utf8(&d.1).unwrap_or_default())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals() {
        for n in [0u64, 7, 10, 206, 4096, 18_446_744_073_709_551_615] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }

    /// Two answers share the total equally, and the global bucket caps
    /// their sum after a burst.
    #[test]
    fn total_rate_is_shared_and_capped() {
        let t = TotalRate::new(1_000_000);
        let now = t.epoch + Duration::from_secs(1);
        let mut a = t.join(now);
        let mut b = t.join(now);
        assert_eq!(t.share_rate(), 500_000);
        assert!(t.allowance(&a, now).is_ok());
        // 50 KB at a's 500 KB/s share is 100 ms of its clock: 50 ms more
        // than a burst ahead, so a waits that long ...
        t.charge(&mut a, 50_000, now);
        let wait = t.allowance(&a, now).unwrap_err();
        assert_eq!(wait, Duration::from_millis(50));
        // ... while b, on its own clock, may write (the global bucket is
        // 50 ms into its burst of 50).
        assert!(t.allowance(&b, now).is_ok());
        t.charge(&mut b, 50_000, now);
        // Together 100 KB at 1 MB/s: the global bucket now holds both back.
        drop(a);
        assert_eq!(t.share_rate(), 1_000_000, "a left: b has it all");
        assert!(t.allowance(&b, now + Duration::from_millis(40)).is_err());
        assert!(t.allowance(&b, now + Duration::from_millis(51)).is_ok());
    }
}
