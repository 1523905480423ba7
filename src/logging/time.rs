//! Calendar dates without a date library: one conversion from `SystemTime` to
//! UTC fields, shared by the log timestamps (RFC 3339), the access line
//! (`[27/Nov/2026:14:20:05 +0000]`) and the folder listing.

use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// A moment as UTC calendar fields, proleptic Gregorian, rounded down to the
/// millisecond (so 0.5 ms before 1970 is `1969-12-31 23:59:59.999`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// Any year a `SystemTime` can hold (±292 billion on Linux), not just
    /// 0..=9999: a file's mtime is whatever its owner set.
    pub year: i64,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub min: u8,
    pub sec: u8,
    pub millis: u16,
}

/// The UTC calendar fields of `t`. Never panics, for every `SystemTime`.
///
/// ```
/// use ranged::logging::civil;
/// use std::time::{Duration, UNIX_EPOCH};
/// let c = civil(UNIX_EPOCH + Duration::from_millis(1_795_789_205_123));
/// assert_eq!((c.year, c.month, c.day, c.hour, c.min, c.sec, c.millis), (2026, 11, 27, 14, 20, 5, 123));
/// ```
pub fn civil(t: SystemTime) -> Civil {
    // Milliseconds since the epoch, floored. i128: a Linux SystemTime spans
    // ±2^63 s, which in nanoseconds is far beyond i64.
    let ms: i128 = match t.duration_since(UNIX_EPOCH) {
        Ok(after) => (after.as_nanos() / 1_000_000) as i128,
        Err(before) => (-(before.duration().as_nanos() as i128)).div_euclid(1_000_000),
    };
    // |days| ≤ 2^63 / 86 400: far inside i64.
    let days = ms.div_euclid(86_400_000) as i64;
    let ms_of_day = ms.rem_euclid(86_400_000) as u32;
    let (year, month, day) = civil_from_days(days);
    let secs = ms_of_day / 1000;
    Civil {
        year,
        month,
        day,
        hour: (secs / 3600) as u8,
        min: (secs / 60 % 60) as u8,
        sec: (secs % 60) as u8,
        millis: (ms_of_day % 1000) as u16,
    }
}

/// Proleptic Gregorian (year, month, day) of a day count since 1970-01-01,
/// after Howard Hinnant's `civil_from_days`
/// (<https://howardhinnant.github.io/date_algorithms.html>). Exact for every
/// day a `SystemTime` can name (|days| < 2^47, so nothing here overflows
/// i64). The one calendar of the crate: logs, listings and HTTP dates.
pub fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468; // shift the epoch to 0000-03-01
    let era = z.div_euclid(146_097); // 400-year eras
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365], from March 1
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month as u8, day as u8)
}

/// Appends `t` as an RFC 3339 UTC timestamp with milliseconds,
/// `2026-11-27T14:20:05.123Z` (RFC 3339 §5.6; years outside 0..=9999 are
/// written in full, which §5.6 cannot express anyway).
pub fn push_rfc3339(out: &mut String, t: SystemTime) {
    let c = civil(t);
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        c.year, c.month, c.day, c.hour, c.min, c.sec, c.millis
    );
}

/// Appends `t` as the Common Log Format time, `27/Nov/2026:14:20:05 +0000`
/// (Apache's `%t` without the brackets; always UTC, so the zone is `+0000`).
pub fn push_clf(out: &mut String, t: SystemTime) {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let c = civil(t);
    let month = MONTHS[usize::from(c.month.clamp(1, 12) - 1)];
    let _ = write!(
        out,
        "{:02}/{month}/{:04}:{:02}:{:02}:{:02} +0000",
        c.day, c.year, c.hour, c.min, c.sec
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Milliseconds from the epoch, negative before it.
    fn at_ms(ms: i64) -> SystemTime {
        let d = Duration::from_millis(ms.unsigned_abs());
        if ms >= 0 {
            UNIX_EPOCH + d
        } else {
            UNIX_EPOCH - d
        }
    }

    #[test]
    fn formats() {
        const CASES: &[(i64, &str, &str)] = &[
            (0, "1970-01-01T00:00:00.000Z", "01/Jan/1970:00:00:00 +0000"),
            (
                1_795_789_205_123,
                "2026-11-27T14:20:05.123Z",
                "27/Nov/2026:14:20:05 +0000",
            ),
            (
                951_782_400_000,
                "2000-02-29T00:00:00.000Z",
                "29/Feb/2000:00:00:00 +0000",
            ),
            (
                951_868_799_999,
                "2000-02-29T23:59:59.999Z",
                "29/Feb/2000:23:59:59 +0000",
            ),
            // 1900 is not a leap year: February 28 is followed by March 1.
            (
                -2_203_891_200_000,
                "1900-03-01T00:00:00.000Z",
                "01/Mar/1900:00:00:00 +0000",
            ),
            (-1, "1969-12-31T23:59:59.999Z", "31/Dec/1969:23:59:59 +0000"),
            (
                -1_000,
                "1969-12-31T23:59:59.000Z",
                "31/Dec/1969:23:59:59 +0000",
            ),
            (
                -62_135_596_800_000,
                "0001-01-01T00:00:00.000Z",
                "01/Jan/0001:00:00:00 +0000",
            ),
            (
                253_402_300_800_000,
                "10000-01-01T00:00:00.000Z",
                "01/Jan/10000:00:00:00 +0000",
            ),
            (
                4_102_444_799_999,
                "2099-12-31T23:59:59.999Z",
                "31/Dec/2099:23:59:59 +0000",
            ),
        ];
        for &(ms, rfc, clf) in CASES {
            let (mut a, mut b) = (String::new(), String::new());
            push_rfc3339(&mut a, at_ms(ms));
            push_clf(&mut b, at_ms(ms));
            assert_eq!((a.as_str(), b.as_str()), (rfc, clf), "{ms} ms");
        }
    }

    #[test]
    fn sub_millisecond_times_round_down() {
        // Half a millisecond before the epoch still belongs to 1969.
        let c = civil(UNIX_EPOCH - Duration::from_micros(500));
        assert_eq!((c.year, c.sec, c.millis), (1969, 59, 999));
        let c = civil(UNIX_EPOCH + Duration::from_micros(1_999));
        assert_eq!((c.year, c.sec, c.millis), (1970, 0, 1));
    }

    #[test]
    fn every_day_from_1900_to_2100_follows_the_calendar() {
        let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let (mut y, mut m, mut d) = (1900i64, 1u8, 1u8);
        // 1900-01-01 is 25 567 days before the epoch.
        for days in -25_567i64..47_482 {
            let last = days * 86_400_000 + 86_399_999;
            for ms in [days * 86_400_000, last] {
                let c = civil(at_ms(ms));
                assert_eq!((c.year, c.month, c.day), (y, m, d), "day {days}");
            }
            let c = civil(at_ms(last));
            assert_eq!((c.hour, c.min, c.sec, c.millis), (23, 59, 59, 999));
            let len = match m {
                2 if leap(y) => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            d += 1;
            if d > len {
                (m, d) = (m + 1, 1);
                if m > 12 {
                    (y, m) = (y + 1, 1);
                }
            }
        }
        assert_eq!((y, m, d), (2100, 1, 1));
    }

    #[test]
    fn the_ends_of_system_time_do_not_panic() {
        // The largest Linux time_t: Sunday 4 December 292 277 026 596.
        let max = UNIX_EPOCH + Duration::new(i64::MAX as u64, 999_999_999);
        let c = civil(max);
        assert_eq!(
            (c.year, c.month, c.day, c.hour, c.min, c.sec, c.millis),
            (292_277_026_596, 12, 4, 15, 30, 7, 999)
        );
        let min = UNIX_EPOCH - Duration::from_secs(1 << 63);
        let c = civil(min);
        assert!(c.year < -292_277_000_000, "{c:?}");
        assert_eq!((c.hour, c.min, c.sec, c.millis), (8, 29, 52, 0));
        let mut s = String::new();
        push_rfc3339(&mut s, min);
        push_clf(&mut s, max);
        assert!(s.is_ascii());
    }
}
