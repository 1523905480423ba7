//! Validators of a file: the strong `ETag` and the `Last-Modified` date, plus the
//! guarded HTTP-date formatting and parsing both need (RFC 9110 §8.8, §5.6.7).
//!
//! `httpdate` 1.0.3 panics when asked to format a time before the Unix epoch
//! (`expect("all times should be after the epoch")`) or at/after
//! 10000-01-01T00:00:00Z (`secs_since_epoch >= 253402300800`, see its
//! `date.rs`). A file's mtime is attacker-influenced (archives, `touch -d`), so
//! every date we format goes through [`http_date`], which checks that range
//! first.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The first second `httpdate` refuses to format: 10000-01-01T00:00:00Z.
/// IMF-fixdate has a four-digit year (RFC 9110 §5.6.7), so this is also the
/// limit of the format itself; 9999-12-31T23:59:59Z (one second less) is the
/// last representable instant.
const HTTP_DATE_END_SECS: u64 = 253_402_300_800;

/// A strong entity-tag (with its quotes) from the file's size, mtime (seconds and
/// nanoseconds, which may be negative seconds for dates before 1970), inode
/// and, where the file system records it, the inode's birth time.
///
/// Format: `"<len>-<mtime_ns>-<ino>[-<birth_ns>]"`, each field lowercase hex without
/// leading zeros, where `mtime_ns = mtime_sec * 10^9 + mtime_nsec` computed in
/// `i128` (cannot overflow for any `i64` inputs) and written as the hex of its
/// two's-complement `u128`, so a pre-1970 mtime gives a 32-digit tag field
/// instead of a minus sign that would read like a separator.
///
/// Strong, because If-Range and If-Match use strong comparison (RFC 9110
/// §8.8.3.2, §13.1.5): a weak tag would make every resume restart from zero.
/// Nanoseconds are included so that a file rewritten within the same second
/// with the same size still gets a new tag (§8.8.2.2: a one-second clock is
/// too coarse to be strong on its own). The birth time tells apart two files
/// that had the same inode number one after the other — ext4 gives a freed
/// number out again at once — when the second has the first's length and
/// mtime (`tar -x`, `cp -p` of a same-size file): without it such a
/// replacement would pass If-Range and splice a resume. Only `[0-9a-f-]`
/// appear between the quotes, so the tag is always a valid `opaque-tag`
/// (§8.8.3).
///
/// Written into a caller's buffer: the request path makes no String.
///
/// ```
/// let mut buf = [0u8; ranged::validators::ETAG_MAX];
/// assert_eq!(ranged::validators::etag_into(&mut buf, 31, 1, 5, 2, None), "\"1f-3b9aca05-2\"");
/// assert_eq!(ranged::validators::etag_into(&mut buf, 31, 1, 5, 2, Some(16)), "\"1f-3b9aca05-2-10\"");
/// ```
pub fn etag_into(
    buf: &mut [u8; ETAG_MAX],
    len: u64,
    mtime_sec: i64,
    mtime_nsec: i64,
    ino: u64,
    born_ns: Option<u128>,
) -> &str {
    let mtime_ns = i128::from(mtime_sec) * 1_000_000_000 + i128::from(mtime_nsec);
    // Two's complement on purpose: -1 s becomes ffff…c4653600, deterministic
    // and distinct from every non-negative mtime.
    let mtime_bits = mtime_ns as u128;
    // By hand rather than `write!`: this runs for every download, and the
    // formatter costs several times the digits. ETAG_MAX holds the longest.
    let mut n = 0;
    let mut put = |b: u8| {
        buf[n] = b;
        n += 1;
    };
    put(b'"');
    for (i, field) in [u128::from(len), mtime_bits, u128::from(ino)]
        .into_iter()
        .chain(born_ns)
        .enumerate()
    {
        if i > 0 {
            put(b'-');
        }
        let digits = (128 - field.leading_zeros()).div_ceil(4).max(1);
        for k in (0..digits).rev() {
            put(b"0123456789abcdef"[(field >> (4 * k)) as usize & 15]);
        }
    }
    put(b'"');
    std::str::from_utf8(&buf[..n]).unwrap_or("\"\"")
}

/// [`etag_into`] for a file's `fstat` (or `statx`): the birth time where
/// the file system records one (ext4, btrfs, xfs, tmpfs, vfat).
pub fn etag_of<'b>(buf: &'b mut [u8; ETAG_MAX], meta: &std::fs::Metadata) -> &'b str {
    use std::os::unix::fs::MetadataExt;
    let born = meta
        .created()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos());
    etag_into(
        buf,
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ino(),
        born,
    )
}

/// The longest tag [`etag_into`] makes: quotes, 16 + 32 + 16 + 32 hex digits,
/// three dashes.
pub const ETAG_MAX: usize = 2 + 16 + 1 + 32 + 1 + 16 + 1 + 32;

/// Last-Modified for an mtime: truncated to whole seconds, `None` outside the
/// range an IMF-fixdate can carry.
///
/// `None` before 1970-01-01T00:00:00Z (httpdate cannot format it) and at or
/// after 10000-01-01T00:00:00Z (four-digit year). The caller then sends no
/// Last-Modified, and date-based conditions are ignored (RFC 9110 §13.1.3,
/// §13.1.4: they only apply when the server has a modification date).
pub fn last_modified(mtime_sec: i64) -> Option<SystemTime> {
    let secs = u64::try_from(mtime_sec).ok()?;
    if secs >= HTTP_DATE_END_SECS {
        return None;
    }
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// IMF-fixdate for `t` as a value that formats itself (`Display`), so a
/// header can be written without an intermediate String; `None` instead of a
/// panic outside 1970..=9999. Sub-second parts are dropped, as IMF-fixdate
/// has whole seconds only.
pub fn http_date(t: SystemTime) -> Option<httpdate::HttpDate> {
    let since_epoch = t.duration_since(UNIX_EPOCH).ok()?;
    if since_epoch.as_secs() >= HTTP_DATE_END_SECS {
        return None;
    }
    Some(httpdate::HttpDate::from(t))
}

/// `t` as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110 §5.6.7)
/// written into `buf`; `None` outside 1970..=9999, like [`http_date`]. By
/// hand: Last-Modified goes out with every download, and formatting through
/// `httpdate` and `core::fmt` cost more than the rest of the answer's head.
pub fn imf_fixdate_into(buf: &mut [u8; 29], t: SystemTime) -> Option<&str> {
    let secs = t.duration_since(UNIX_EPOCH).ok()?.as_secs();
    if secs >= HTTP_DATE_END_SECS {
        return None;
    }
    let days = secs / 86_400;
    let of_day = secs % 86_400;
    let (year, month, day) = crate::logging::civil_from_days(days as i64);
    let (year, day) = (year as u64, u64::from(day));
    // 1970-01-01 was a Thursday.
    let weekday = &b"ThuFriSatSunMonTueWed"[(days % 7) as usize * 3..][..3];
    let month = &b"JanFebMarAprMayJunJulAugSepOctNovDec"[(month as usize - 1) * 3..][..3];
    let two = |v: u64| [b'0' + (v / 10 % 10) as u8, b'0' + (v % 10) as u8];
    buf[..3].copy_from_slice(weekday);
    buf[3..5].copy_from_slice(b", ");
    buf[5..7].copy_from_slice(&two(day));
    buf[7] = b' ';
    buf[8..11].copy_from_slice(month);
    buf[11] = b' ';
    buf[12..14].copy_from_slice(&two(year / 100));
    buf[14..16].copy_from_slice(&two(year % 100));
    buf[16] = b' ';
    buf[17..19].copy_from_slice(&two(of_day / 3600));
    buf[19] = b':';
    buf[20..22].copy_from_slice(&two(of_day / 60 % 60));
    buf[22] = b':';
    buf[23..25].copy_from_slice(&two(of_day % 60));
    buf[25..29].copy_from_slice(b" GMT");
    std::str::from_utf8(&buf[..]).ok()
}

/// Any of the three HTTP-date formats (RFC 9110 §5.6.7); `None` if invalid.
///
/// Recipients MUST accept IMF-fixdate, RFC 850 and asctime forms (§5.6.7);
/// `httpdate` parses all three and rejects dates outside 1970..=9999 and wrong
/// weekdays without panicking. Surrounding OWS (SP / HTAB, §5.6.3) is trimmed.
pub fn parse_http_date(s: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(s.trim_matches([' ', '\t'])).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt_http_date(t: SystemTime) -> Option<String> {
        http_date(t).map(|d| d.to_string())
    }

    fn etag(len: u64, mtime_sec: i64, mtime_nsec: i64, ino: u64) -> String {
        let mut buf = [0u8; ETAG_MAX];
        etag_into(&mut buf, len, mtime_sec, mtime_nsec, ino, None).to_owned()
    }

    const SECS_1960: i64 = -315_619_200; // 1960-01-01T00:00:00Z
    const LAST_SEC_9999: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    const FIRST_SEC_10000: i64 = 253_402_300_800; // 10000-01-01T00:00:00Z

    fn at(secs: i64) -> SystemTime {
        if secs >= 0 {
            UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
        } else {
            UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
        }
    }

    #[test]
    fn last_modified_and_format_edges() {
        // (mtime seconds, expected IMF-fixdate or None)
        const CASES: &[(i64, Option<&str>)] = &[
            (i64::MIN, None),
            (SECS_1960, None),
            (-1, None), // 1969-12-31T23:59:59Z: httpdate would panic
            (0, Some("Thu, 01 Jan 1970 00:00:00 GMT")),
            (784_111_777, Some("Sun, 06 Nov 1994 08:49:37 GMT")),
            (LAST_SEC_9999, Some("Fri, 31 Dec 9999 23:59:59 GMT")),
            (FIRST_SEC_10000, None), // httpdate: "date must be before year 9999"
            (i64::MAX, None),
        ];
        for &(secs, want) in CASES {
            let lm = last_modified(secs);
            assert_eq!(lm.is_some(), want.is_some(), "last_modified({secs})");
            if let Some(t) = lm {
                assert_eq!(t, at(secs), "last_modified({secs}) value");
            }
            // http_date must agree with last_modified and never panic,
            // including for times that last_modified already rejected.
            if secs > i64::MIN / 2 && secs < i64::MAX / 2 {
                assert_eq!(
                    fmt_http_date(at(secs)).as_deref(),
                    want,
                    "fmt_http_date({secs})"
                );
            }
        }
    }

    #[test]
    fn fmt_drops_sub_seconds_at_the_upper_edge() {
        let t = at(LAST_SEC_9999) + Duration::from_nanos(999_999_999);
        assert_eq!(
            fmt_http_date(t).as_deref(),
            Some("Fri, 31 Dec 9999 23:59:59 GMT")
        );
        let t = UNIX_EPOCH - Duration::from_nanos(1);
        assert_eq!(fmt_http_date(t), None);
    }

    #[test]
    fn parse_dates() {
        const CASES: &[(&str, Option<i64>)] = &[
            // The same instant in the three formats of RFC 9110 §5.6.7.
            ("Sun, 06 Nov 1994 08:49:37 GMT", Some(784_111_777)),
            ("Sunday, 06-Nov-94 08:49:37 GMT", Some(784_111_777)),
            ("Sun Nov  6 08:49:37 1994", Some(784_111_777)),
            // OWS around the field value.
            (" \tSun, 06 Nov 1994 08:49:37 GMT\t ", Some(784_111_777)),
            ("Thu, 01 Jan 1970 00:00:00 GMT", Some(0)),
            ("Fri, 31 Dec 9999 23:59:59 GMT", Some(LAST_SEC_9999)),
            // Out of range or malformed: None, never a panic.
            ("Fri, 01 Jan 1960 00:00:00 GMT", None),
            ("Wed, 31 Dec 1969 23:59:59 GMT", None),
            ("Sat, 01 Jan 10000 00:00:00 GMT", None),
            ("Mon, 06 Nov 1994 08:49:37 GMT", None), // wrong weekday
            ("Sun, 06 Nov 1994 08:49:37 UTC", None),
            ("Sun, 06 Nov 1994 24:00:00 GMT", None),
            ("Sun, 31 Feb 1994 08:49:37 GMT", None),
            ("1994-11-06T08:49:37Z", None),
            ("784111777", None),
            ("", None),
            (
                "Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT",
                None,
            ),
            ("Sün, 06 Nov 1994 08:49:37 GMT", None),
            ("Wednesday, 06-Nov-9", None),
        ];
        for &(s, want) in CASES {
            assert_eq!(parse_http_date(s), want.map(at), "parse_http_date({s:?})");
        }
    }

    /// The hand-written IMF-fixdate equals httpdate's over every edge and a
    /// spread of instants in 1970..=9999, and refuses what httpdate would.
    #[test]
    fn imf_fixdate_matches_httpdate() {
        let mut rng = crate::testing::Xorshift::new(42);
        let edges = [
            0,
            1,
            59,
            86_399,
            86_400,
            951_782_400,
            951_868_800,
            1_700_000_000,
            LAST_SEC_9999,
        ];
        let spread = (0..5000).map(|_| rng.next_u64() % (LAST_SEC_9999 as u64 + 1));
        for secs in edges.iter().map(|&s| s as u64).chain(spread) {
            let t =
                UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_nanos(secs % 1_000_000_000);
            let mut buf = [0u8; 29];
            assert_eq!(
                imf_fixdate_into(&mut buf, t).map(str::to_owned),
                fmt_http_date(t),
                "{secs}"
            );
        }
        let mut buf = [0u8; 29];
        assert_eq!(imf_fixdate_into(&mut buf, at(FIRST_SEC_10000)), None);
        assert_eq!(
            imf_fixdate_into(&mut buf, UNIX_EPOCH - Duration::from_nanos(1)),
            None
        );
    }

    #[test]
    fn format_then_parse_round_trips() {
        for secs in [0, 1, 951_782_400, 1_700_000_000, LAST_SEC_9999] {
            let text = fmt_http_date(at(secs)).expect("in range");
            assert_eq!(parse_http_date(&text), Some(at(secs)), "{text}");
        }
    }

    #[test]
    fn etag_format_and_sensitivity() {
        // (len, sec, nsec, ino, expected)
        const CASES: &[(u64, i64, i64, u64, &str)] = &[
            (0, 0, 0, 0, "\"0-0-0\""),
            (31, 1, 5, 2, "\"1f-3b9aca05-2\""),
            (
                u64::MAX,
                0,
                0,
                u64::MAX,
                "\"ffffffffffffffff-0-ffffffffffffffff\"",
            ),
            // -1 s before the epoch: two's complement of -10^9 as u128.
            (1, -1, 0, 1, "\"1-ffffffffffffffffffffffffc4653600-1\""),
            (
                1,
                -1,
                999_999_999,
                1,
                "\"1-ffffffffffffffffffffffffffffffff-1\"",
            ),
        ];
        for &(len, sec, nsec, ino, want) in CASES {
            assert_eq!(etag(len, sec, nsec, ino), want);
        }

        let base = etag(1000, 1_700_000_000, 123_456_789, 42);
        assert_eq!(
            base,
            etag(1000, 1_700_000_000, 123_456_789, 42),
            "deterministic"
        );
        assert_ne!(
            base,
            etag(1000, 1_700_000_000, 123_456_790, 42),
            "nanoseconds only"
        );
        assert_ne!(base, etag(1001, 1_700_000_000, 123_456_789, 42), "length");
        assert_ne!(base, etag(1000, 1_700_000_001, 123_456_789, 42), "seconds");
        assert_ne!(base, etag(1000, 1_700_000_000, 123_456_789, 43), "inode");
        // Birth time: a later file under the same inode number differs.
        let mut a = [0u8; ETAG_MAX];
        let mut b = [0u8; ETAG_MAX];
        let first = etag_into(
            &mut a,
            1000,
            1_700_000_000,
            0,
            42,
            Some(1_700_000_000_000_000_000),
        );
        let again = etag_into(
            &mut b,
            1000,
            1_700_000_000,
            0,
            42,
            Some(1_700_000_000_000_000_001),
        );
        assert_ne!(first, again, "birth time");
        let mut longest = [0u8; ETAG_MAX];
        let t = etag_into(
            &mut longest,
            u64::MAX,
            -1,
            999_999_999,
            u64::MAX,
            Some(u128::MAX),
        );
        assert_eq!(t.len(), ETAG_MAX, "ETAG_MAX holds the longest tag: {t}");
        assert_ne!(etag(1, -1, 0, 1), etag(1, 0, 0, 1), "pre-1970 vs epoch");
    }

    #[test]
    fn etag_never_panics_and_stays_a_valid_opaque_tag() {
        let extremes = [i64::MIN, -1, 0, 1, i64::MAX];
        for &sec in &extremes {
            for &nsec in &extremes {
                let tag = etag(u64::MAX, sec, nsec, u64::MAX);
                let inner = &tag[1..tag.len() - 1];
                assert!(tag.starts_with('"') && tag.ends_with('"'), "{tag}");
                assert!(
                    inner
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'-'),
                    "{tag}"
                );
            }
        }
    }
}
