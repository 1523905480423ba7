//! Slowing down password guessing from one peer, without holding a thread.
//!
//! The first [`FREE_FAILURES`] failures cost nothing (typos). Each further
//! failure opens a penalty window of [`FIRST_DELAY`], doubling up to
//! [`MAX_DELAY`]: 0.25 s, 0.5 s, 1 s, 2 s, 4 s, 5 s, 5 s… Inside the window,
//! credentials from that peer are not even verified: the request is refused
//! at once with the time left, which the engine holds the 401 for. So a
//! guesser gets one real verification per 5 s at best, and spends none of
//! our CPU meanwhile; a legitimate user behind the same NAT waits at most
//! 5 s per attempt. A success, or [`QUIET`] without failures, forgets the
//! peer.
//!
//! Peers are IPv4 addresses, or IPv6 /64 prefixes: one host commonly owns a
//! whole /64 (RFC 7421), and could otherwise rotate addresses freely. Time
//! is an input, so the rules are tested as a table. The table is a vector
//! scanned from end to end (1024 `u128` comparisons: 0.5 µs measured):
//! a `HashMap` would add 6 KiB to the static binary.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const FREE_FAILURES: u32 = 5;
pub const FIRST_DELAY: Duration = Duration::from_millis(250);
pub const MAX_DELAY: Duration = Duration::from_secs(5);
pub const QUIET: Duration = Duration::from_secs(60);
/// Peers remembered at once (about 40 bytes each); when full, the one
/// quiet the longest is forgotten.
pub const CAPACITY: usize = 1024;

#[derive(Debug, Clone, Copy)]
struct Peer {
    key: u128,
    failures: u32,
    last: Instant,
    /// End of the penalty window (`last` when there is none).
    until: Instant,
}

/// What a failure costs the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// How long to hold the 401 (zero for the free failures).
    pub delay: Duration,
    /// This failure is the first delayed one of a burst: log one line now.
    pub burst_started: bool,
}

#[derive(Debug, Default)]
pub struct Throttle {
    peers: Mutex<Vec<Peer>>,
}

/// IPv4 as its IPv4-mapped IPv6 address (so `::ffff:a.b.c.d` is the same
/// peer), any other IPv6 address as its /64.
fn key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().to_bits(),
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => v6.to_bits(),
        IpAddr::V6(v6) => v6.to_bits() & !u128::from(u64::MAX),
    }
}

fn delay_after(failures: u32) -> Duration {
    match failures.checked_sub(FREE_FAILURES + 1) {
        None => Duration::ZERO,
        // 0.25 s << 5 is already past the cap; the shift never overflows.
        Some(n) => (FIRST_DELAY * (1 << n.min(5))).min(MAX_DELAY),
    }
}

impl Throttle {
    pub fn new() -> Throttle {
        Throttle::default()
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Vec<Peer>> {
        self.peers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// While `peer` is inside its penalty window: the time left. Its
    /// credentials are then refused without being verified.
    pub fn blocked(&self, peer: IpAddr, now: Instant) -> Option<Duration> {
        let k = key(peer);
        let table = self.table();
        let left = table
            .iter()
            .find(|p| p.key == k)?
            .until
            .saturating_duration_since(now);
        (!left.is_zero()).then_some(left)
    }

    /// Records a failed verification from `peer`.
    pub fn failure(&self, peer: IpAddr, now: Instant) -> Failure {
        let k = key(peer);
        let mut table = self.table();
        let i = match table.iter().position(|p| p.key == k) {
            Some(i) => i,
            None => {
                if table.len() >= CAPACITY {
                    table.retain(|p| now.saturating_duration_since(p.last) < QUIET);
                }
                if table.len() >= CAPACITY
                    && let Some(stalest) = (0..table.len()).min_by_key(|&i| table[i].last)
                {
                    table.swap_remove(stalest);
                }
                table.push(Peer {
                    key: k,
                    failures: 0,
                    last: now,
                    until: now,
                });
                table.len() - 1
            }
        };
        let p = &mut table[i];
        if now.saturating_duration_since(p.last) >= QUIET {
            p.failures = 0;
        }
        p.failures = p.failures.saturating_add(1);
        p.last = now;
        let delay = delay_after(p.failures);
        p.until = now + delay;
        Failure {
            delay,
            burst_started: p.failures == FREE_FAILURES + 1,
        }
    }

    /// Records a success: the peer is forgotten. Returns how many failures
    /// it had when some of them were delayed (a burst ends: log it).
    pub fn success(&self, peer: IpAddr, now: Instant) -> Option<u32> {
        let k = key(peer);
        let mut table = self.table();
        let i = table.iter().position(|p| p.key == k)?;
        let p = table.swap_remove(i);
        let recent = now.saturating_duration_since(p.last) < QUIET;
        (recent && p.failures > FREE_FAILURES).then_some(p.failures)
    }

    pub fn len(&self) -> usize {
        self.table().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    /// One peer failing again and again, as a guesser would, each attempt
    /// made as soon as the previous window closed: (delay returned, burst
    /// started).
    fn escalation() {
        let t = Throttle::new();
        let peer: IpAddr = "192.0.2.7".parse().unwrap();
        let expected = [
            (0, false),
            (0, false),
            (0, false),
            (0, false),
            (0, false),
            (250, true),
            (500, false),
            (1000, false),
            (2000, false),
            (4000, false),
            (5000, false),
            (5000, false),
        ];
        let mut now = Instant::now();
        for (i, &(delay, started)) in expected.iter().enumerate() {
            assert_eq!(t.blocked(peer, now), None, "attempt {i}");
            let f = t.failure(peer, now);
            assert_eq!(
                (f.delay, f.burst_started),
                (ms(delay), started),
                "attempt {i}"
            );
            if delay > 0 {
                assert_eq!(t.blocked(peer, now), Some(ms(delay)));
                assert_eq!(
                    t.blocked(peer, now + ms(delay / 2)),
                    Some(ms(delay - delay / 2))
                );
            }
            now += ms(delay);
        }
        // Thousands more never go past the cap, nor overflow.
        for _ in 0..5000 {
            now += MAX_DELAY;
            assert_eq!(t.failure(peer, now).delay, MAX_DELAY);
        }
        // A success ends the burst, reports it, and forgets the peer.
        assert_eq!(t.success(peer, now), Some(5012));
        assert_eq!(t.blocked(peer, now), None);
        assert_eq!(t.failure(peer, now).delay, Duration::ZERO);
    }

    #[test]
    /// A quiet minute forgets; other peers are not affected; an IPv6 host
    /// cannot escape by changing addresses inside its /64.
    fn forgetting_and_peers() {
        let t = Throttle::new();
        let a: IpAddr = "2001:db8:1:2::10".parse().unwrap();
        let a2: IpAddr = "2001:db8:1:2:ffff::99".parse().unwrap();
        let b: IpAddr = "2001:db8:1:3::10".parse().unwrap();
        let now = Instant::now();
        for _ in 0..FREE_FAILURES {
            t.failure(a, now);
        }
        assert_eq!(t.failure(a2, now).delay, FIRST_DELAY, "same /64");
        assert_eq!(t.blocked(b, now), None, "another /64");
        assert_eq!(t.failure(b, now).delay, Duration::ZERO);
        let later = now + QUIET;
        assert_eq!(t.failure(a, later).delay, Duration::ZERO, "forgotten");
        assert_eq!(
            t.success(a, later),
            None,
            "a burst that was forgotten is not reported"
        );

        let v4: IpAddr = "198.51.100.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:198.51.100.1".parse().unwrap();
        for _ in 0..FREE_FAILURES {
            t.failure(v4, now);
        }
        assert_eq!(
            t.failure(mapped, now).delay,
            FIRST_DELAY,
            "v4-mapped is the v4 peer"
        );
        assert_eq!(t.success(v4, now), Some(FREE_FAILURES + 1), "a burst ends");
        for _ in 0..FREE_FAILURES {
            t.failure(v4, now);
        }
        assert_eq!(
            t.success(mapped, now),
            None,
            "free failures only: nothing to report"
        );
        assert_eq!(t.len(), 1, "only the other /64 remains");
    }

    #[test]
    /// Never more than CAPACITY peers; the stalest is forgotten first.
    fn bounded() {
        let t = Throttle::new();
        let t0 = Instant::now();
        let ip = |i: u32| IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        for i in 0..CAPACITY as u32 {
            t.failure(ip(i), t0 + ms(u64::from(i)));
        }
        for _ in 1..FREE_FAILURES {
            t.failure(ip(1), t0 + ms(2000));
        }
        t.failure(ip(99_999), t0 + ms(3000));
        assert_eq!(t.len(), CAPACITY);
        // ip(0) was the stalest; ip(1) kept its count.
        assert_eq!(t.failure(ip(1), t0 + ms(3000)).delay, FIRST_DELAY);
        for _ in 0..FREE_FAILURES {
            t.failure(ip(0), t0 + ms(3000));
        }
        assert_eq!(t.len(), CAPACITY);
        assert!(
            t.blocked(ip(0), t0 + ms(3000)).is_none(),
            "ip(0) started over"
        );
    }
}
