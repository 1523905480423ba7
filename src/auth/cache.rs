//! Verified credentials, remembered for a few minutes so that a client
//! pays the crypt cost once, not on every request (a `$6$` verification is
//! 1.1 ms here and several times that on ARM boards; a whole decision on a
//! hit takes 0.4 µs, and a miss scanning all 256 entries 0.13 µs).
//!
//! The key is the SHA-256 of a per-process random salt and the whole
//! `Authorization` value, never the value itself: a memory dump shows no
//! password, and without the salt its digests cannot be attacked with a
//! dictionary faster than the stored crypt hashes. Only successes are kept,
//! so a wrong guess is always verified (and throttled). Bounded: when full,
//! expired entries go first, then the oldest. A plain vector scanned from
//! end to end: 256 comparisons of 32 bytes take well under a microsecond,
//! and a `HashMap` would add 6 KiB to the static binary.

use std::io;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// More clients than this with distinct credentials at once: the oldest
/// pays the crypt cost again. 256 × ~80 bytes is 20 KiB at most.
pub const CAPACITY: usize = 256;

/// How long a verified credential is trusted without verifying again.
pub const TTL: Duration = Duration::from_secs(300);

pub type Key = [u8; 32];

#[derive(Debug, Clone, Copy)]
struct Entry {
    key: Key,
    account: usize,
    stored: Instant,
}

/// Authorization digest → index of the account it proved.
pub struct Cache {
    salt: [u8; 32],
    entries: Mutex<Vec<Entry>>,
}

/// Shows the size only: neither the salt nor the digests.
impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cache {{ entries: {} }}", self.len())
    }
}

impl Cache {
    /// # Errors
    ///
    /// When `/dev/urandom` cannot be read for the salt.
    pub fn new() -> io::Result<Cache> {
        Ok(Cache {
            salt: crate::random::bytes()?,
            entries: Mutex::new(Vec::new()),
        })
    }

    /// The key for an `Authorization` field value.
    pub fn key(&self, authorization: &str) -> Key {
        let mut digest = Sha256::new();
        digest.update(self.salt);
        digest.update(authorization.as_bytes());
        digest.finalize().into()
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        // Nothing a panic could interrupt leaves the table inconsistent.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The account these credentials proved less than [`TTL`] ago.
    pub fn get(&self, key: &Key, now: Instant) -> Option<usize> {
        let mut table = self.table();
        let i = table.iter().position(|e| e.key == *key)?;
        if now.saturating_duration_since(table[i].stored) < TTL {
            Some(table[i].account)
        } else {
            table.swap_remove(i);
            None
        }
    }

    /// Remembers a successful verification.
    pub fn put(&self, key: Key, account: usize, now: Instant) {
        let mut table = self.table();
        table.retain(|e| e.key != key);
        if table.len() >= CAPACITY {
            table.retain(|e| now.saturating_duration_since(e.stored) < TTL);
        }
        if table.len() >= CAPACITY
            && let Some(oldest) = (0..table.len()).min_by_key(|&i| table[i].stored)
        {
            table.swap_remove(oldest);
        }
        table.push(Entry {
            key,
            account,
            stored: now,
        });
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

    #[test]
    /// A hit within the TTL, a miss after it; different spellings of the
    /// same credentials are different keys.
    fn hits_and_expiry() {
        let cache = Cache::new().unwrap();
        let t0 = Instant::now();
        let key = cache.key("Basic dXNlcjpwYXNz");
        assert_eq!(cache.get(&key, t0), None);
        cache.put(key, 3, t0);
        assert_eq!(
            cache.get(&key, t0 + TTL - Duration::from_millis(1)),
            Some(3)
        );
        assert_eq!(cache.get(&cache.key("basic dXNlcjpwYXNz"), t0), None);
        let other = Cache::new().unwrap();
        assert_ne!(other.key("Basic dXNlcjpwYXNz"), key, "salted per process");
        assert_eq!(cache.get(&key, t0 + TTL), None);
        assert!(cache.is_empty(), "an expired entry is dropped when seen");
    }

    #[test]
    /// Never more than CAPACITY entries; the oldest goes first, expired
    /// ones before it.
    fn bounded() {
        let cache = Cache::new().unwrap();
        let t0 = Instant::now();
        let key = |i: usize| cache.key(&format!("Basic {i}"));
        for i in 0..CAPACITY {
            cache.put(key(i), i, t0 + Duration::from_millis(i as u64));
        }
        let later = t0 + Duration::from_secs(1);
        cache.put(key(CAPACITY), CAPACITY, later);
        assert_eq!(cache.len(), CAPACITY);
        assert_eq!(cache.get(&key(0), later), None, "oldest evicted");
        assert_eq!(cache.get(&key(1), later), Some(1));
        assert_eq!(cache.get(&key(CAPACITY), later), Some(CAPACITY));
        // Refreshing a present key evicts nothing.
        cache.put(key(1), 1, later);
        assert_eq!(cache.len(), CAPACITY);
        // Past the TTL, one insertion clears every expired entry.
        let much_later = later + TTL;
        cache.put(key(9999), 9999, much_later);
        assert_eq!(cache.len(), 1);
    }
}
