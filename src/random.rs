//! Unpredictable bytes from the kernel, for what must not be guessed: upload
//! ids, the capability-link secret, password salts, multipart boundaries.

use std::io::{self, Read};

/// Fills `buf` from `/dev/urandom` (never blocks after boot, and is what
/// `getrandom(2)` reads; a file keeps this free of `unsafe`).
pub fn fill(buf: &mut [u8]) -> io::Result<()> {
    std::fs::File::open("/dev/urandom")?.read_exact(buf)
}

/// `N` random bytes.
pub fn bytes<const N: usize>() -> io::Result<[u8; N]> {
    let mut b = [0u8; N];
    fill(&mut b)?;
    Ok(b)
}

#[cfg(test)]
mod tests {
    #[test]
    /// 128 random bits twice alike would mean the generator is broken.
    fn two_draws_differ() {
        let a = super::bytes::<16>().unwrap();
        let b = super::bytes::<16>().unwrap();
        assert_ne!(a, b);
    }
}
