//! `multipart/byteranges` bodies (RFC 9110 §14.6): the boundary, the per-part
//! headers, and the exact layout of the body as segments. Pure apart from the
//! clock and a counter read by [`boundary`].
//!
//! The body is planned as a list of [`Segment`]s (literal bytes and file
//! slices) before anything is sent, so its `Content-Length` is known exactly
//! (`message::Body::len`) and the file is read only while streaming.

use std::fmt::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::message::Segment;
use crate::range::ByteRange;

/// A boundary for one response: 32 lowercase hex digits.
///
/// RFC 2046 §5.1.1 allows 1–70 `bchars` and requires that the boundary not
/// occur in the encapsulated data. We never scan the file; instead the
/// boundary is 128 bits nobody can choose or easily predict: the clock in
/// nanoseconds, the address of a stack variable (ASLR) and a process-wide
/// counter, mixed through splitmix64. The low half is a bijection of the
/// counter under a per-process key, so two calls in one process never return
/// the same boundary.
pub fn boundary() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static KEY: OnceLock<u64> = OnceLock::new();

    let marker = 0u8;
    let addr = (&raw const marker).addr() as u64;
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| {
        d.as_secs().wrapping_mul(1_000_000_000) ^ u64::from(d.subsec_nanos())
    });
    let key = *KEY.get_or_init(|| splitmix64(nanos ^ addr.rotate_left(32)));
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);

    let hi = splitmix64(nanos ^ addr.rotate_left(17) ^ key.rotate_left(29));
    let lo = splitmix64(key ^ count);
    format!("{hi:016x}{lo:016x}")
}

/// splitmix64's finaliser (Steele, Lea, Flood 2014): a bijection on u64 that
/// spreads every input bit over the output.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The body of a multipart/byteranges response, as literal and file segments.
///
/// RFC 9110 §14.6 with RFC 2046 §5.1.1: for each range, in the given
/// (request) order,
///
/// ```text
/// --B CRLF
/// Content-Type: T CRLF
/// Content-Range: bytes a-b/size CRLF
/// CRLF
/// <the bytes a..=b>
/// ```
///
/// then `CRLF --B-- CRLF`. The CRLF after a part's data belongs to the next
/// delimiter (RFC 2046: `delimiter := CRLF dash-boundary`), so each part but
/// the first starts with it. Adjacent literals are merged, giving exactly
/// `2 * ranges.len() + 1` segments. The Content-Type line is left out when
/// `content_type` is empty (a 200 would not have carried one, §14.6).
///
/// Callers use this for two or more ranges (a single range MUST NOT be
/// multipart, §14.6); with none the body is just the close delimiter.
/// `ranges` must satisfy the [`ByteRange`] invariants for `size`.
pub fn parts(ranges: &[ByteRange], size: u64, content_type: &str, boundary: &str) -> Vec<Segment> {
    let mut segments = Vec::with_capacity(2 * ranges.len() + 1);
    let mut head = String::new();
    for (i, r) in ranges.iter().enumerate() {
        head.clear();
        if i > 0 {
            head.push_str("\r\n");
        }
        head.push_str("--");
        head.push_str(boundary);
        head.push_str("\r\n");
        if !content_type.is_empty() {
            head.push_str("Content-Type: ");
            head.push_str(content_type);
            head.push_str("\r\n");
        }
        // Writing into a String cannot fail.
        let _ = write!(
            head,
            "Content-Range: bytes {}-{}/{size}\r\n\r\n",
            r.start,
            r.last()
        );
        segments.push(Segment::Bytes(head.as_bytes().to_vec()));
        segments.push(Segment::Slice {
            start: r.start,
            len: r.len,
        });
    }
    head.clear();
    if !ranges.is_empty() {
        head.push_str("\r\n");
    }
    head.push_str("--");
    head.push_str(boundary);
    head.push_str("--\r\n");
    segments.push(Segment::Bytes(head.into_bytes()));
    segments
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The full body the engine would send: literals as they are, slices
    /// copied out of `file`.
    fn materialise(segments: &[Segment], file: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        for s in segments {
            match s {
                Segment::Bytes(b) => body.extend_from_slice(b),
                Segment::Slice { start, len } => {
                    let start = usize::try_from(*start).expect("test file fits memory");
                    let len = usize::try_from(*len).expect("test file fits memory");
                    body.extend_from_slice(&file[start..start + len]);
                }
            }
        }
        body
    }

    fn segments_len(segments: &[Segment]) -> u64 {
        segments
            .iter()
            .map(|s| match s {
                Segment::Bytes(b) => b.len() as u64,
                Segment::Slice { len, .. } => *len,
            })
            .sum()
    }

    #[test]
    fn two_parts_exact_bytes() {
        let file = b"0123456789abcdef";
        let ranges = [
            ByteRange { start: 10, len: 2 },
            ByteRange { start: 0, len: 3 },
        ];
        let segs = parts(&ranges, 16, "text/plain", "B0UND");
        assert_eq!(segs.len(), 5);
        let body = materialise(&segs, file);
        let want = "--B0UND\r\n\
                    Content-Type: text/plain\r\n\
                    Content-Range: bytes 10-11/16\r\n\
                    \r\n\
                    ab\r\n\
                    --B0UND\r\n\
                    Content-Type: text/plain\r\n\
                    Content-Range: bytes 0-2/16\r\n\
                    \r\n\
                    012\r\n\
                    --B0UND--\r\n";
        assert_eq!(String::from_utf8_lossy(&body), want);
        assert_eq!(segments_len(&segs), want.len() as u64);
    }

    #[test]
    fn no_content_type_line_when_empty() {
        let ranges = [
            ByteRange { start: 0, len: 1 },
            ByteRange { start: 2, len: 1 },
        ];
        let body = materialise(&parts(&ranges, 3, "", "b"), b"xyz");
        let want = "--b\r\nContent-Range: bytes 0-0/3\r\n\r\nx\r\n\
                    --b\r\nContent-Range: bytes 2-2/3\r\n\r\nz\r\n--b--\r\n";
        assert_eq!(String::from_utf8_lossy(&body), want);
    }

    /// Big offsets are written in full; nothing is computed in 32 bits.
    #[test]
    fn large_offsets() {
        let ranges = [
            ByteRange {
                start: (1 << 32) - 1,
                len: 2,
            },
            ByteRange {
                start: u64::MAX - 2,
                len: 2,
            },
        ];
        let segs = parts(&ranges, u64::MAX, "application/octet-stream", "b");
        let Segment::Bytes(second) = &segs[2] else {
            panic!("{segs:?}")
        };
        let second = String::from_utf8_lossy(second);
        assert!(second.ends_with(
            "Content-Range: bytes 18446744073709551613-18446744073709551614/18446744073709551615\r\n\r\n"
        ));
        assert_eq!(
            segs[1],
            Segment::Slice {
                start: 4_294_967_295,
                len: 2
            }
        );
    }

    /// For random range sets the planned length is the materialised length,
    /// there are 2n+1 segments alternating literal/slice, and each slice is
    /// the range asked for.
    #[test]
    fn length_matches_materialised_body() {
        let file: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let size = file.len() as u64;
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for _ in 0..2000 {
            let n = next() % 8;
            let ranges: Vec<ByteRange> = (0..n)
                .map(|_| {
                    let start = next() % size;
                    let len = 1 + next() % (size - start);
                    ByteRange { start, len }
                })
                .collect();
            let b = boundary();
            let segs = parts(&ranges, size, "video/mp4", &b);
            assert_eq!(segs.len(), 2 * ranges.len() + 1);
            for (i, s) in segs.iter().enumerate() {
                match (i % 2, s) {
                    (0, Segment::Bytes(_)) => {}
                    (1, Segment::Slice { start, len }) => {
                        let r = ranges[i / 2];
                        assert_eq!((*start, *len), (r.start, r.len));
                    }
                    _ => panic!("segment {i} out of place: {segs:?}"),
                }
            }
            let body = materialise(&segs, &file);
            assert_eq!(segments_len(&segs), body.len() as u64);
            assert!(body.ends_with(format!("--{b}--\r\n").as_bytes()));
        }
    }

    #[test]
    fn boundary_is_valid_and_fresh() {
        // bchars (RFC 2046 §5.1.1), without the space that may not end one.
        const BCHARS: &str = "0123456789abcdefghijklmnopqrstuvwxyz\
                              ABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=?";
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let b = boundary();
            assert!((1..=70).contains(&b.len()), "{b:?}");
            assert!(b.chars().all(|c| BCHARS.contains(c)), "{b:?}");
            assert!(seen.insert(b.clone()), "repeated boundary {b:?}");
        }
        assert_ne!(boundary(), boundary());
    }
}
