//! The `Range` request header: syntax (`parse`, RFC 9110 §14.1) and satisfiability
//! plus abuse limits (`resolve`, §14.2, §15.3.7, §17.15). Pure: text and a length in,
//! plain values out.
//!
//! The two steps are separate so that each has its own small table of cases:
//!
//! 1. [`parse`] checks the grammar only. Anything that is not a `bytes` range
//!    set (unknown unit, stray whitespace, `+5`, hex, `5-1`, more than
//!    [`MAX_RANGES`] specs) is [`Malformed`], and the caller ignores the
//!    header (200), as Apache does and as our semantics doc §1 decides.
//! 2. [`resolve`] applies the specs to the representation's size: it drops
//!    unsatisfiable specs (§15.3.7.2), answers 416 when none is left (§14.2),
//!    and ignores abusive sets (§17.15): see [`resolve`] for the exact rules.
//!
//! Numbers that do not fit a `u64` saturate at `u64::MAX` (§14.1.2 "MUST
//! anticipate potentially large decimal numerals"): a huge last-pos or suffix
//! length then means "to the end", a huge first-pos is unsatisfiable.

use crate::message::trim_ows;

/// More ranges than this in one header: the header is ignored (200).
/// Apache's `MaxRanges` defaults to 200; 100 is already far more than any
/// download client sends.
pub const MAX_RANGES: usize = 100;

/// More ranges than this sharing bytes with another range of the same set:
/// the header is ignored (200). See [`resolve`].
pub const MAX_OVERLAPPING: usize = 2;

/// One `range-spec` exactly as written, numbers saturated at `u64::MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spec {
    /// `first-last`
    Bounded { first: u64, last: u64 },
    /// `first-`
    From { first: u64 },
    /// `-len`
    Suffix { len: u64 },
}

/// The header is not a `bytes` range set we understand; it is to be ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a bytes range set (RFC 9110 §14.1.1)")
    }
}

impl std::error::Error for Malformed {}

/// A satisfiable range resolved against a length: `len >= 1`,
/// `start + len <= size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub len: u64,
}

impl ByteRange {
    /// The inclusive last byte position, as `Content-Range` writes it.
    pub fn last(&self) -> u64 {
        self.start + self.len - 1
    }
}

/// What to do with a Range header for a representation of a given size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Serve the whole representation (200).
    Ignore,
    /// 416 with `Content-Range: bytes */size`.
    Unsatisfiable,
    /// 206: one part, or multipart/byteranges in this (request) order.
    Partial(Vec<ByteRange>),
}

/// Parses a Range field value (RFC 9110 §14.1.1):
///
/// ```text
/// ranges-specifier = range-unit "=" range-set
/// range-set        = 1#range-spec
/// range-spec       = int-range / suffix-range / other-range
/// int-range        = first-pos "-" [ last-pos ]
/// suffix-range     = "-" suffix-length
/// ```
///
/// * The unit is compared case-insensitively (§14.1: "range unit names are
///   case-insensitive"); any unit but `bytes` is [`Malformed`] (§14.2: a
///   server MUST ignore a Range with a unit it does not understand).
/// * OWS (SP / HTAB only, §5.6.3) is accepted at both ends of the field value
///   (§5.5) and around commas, and empty list elements are skipped (§5.6.1.2:
///   `0-1,,3-4`, `,0-4`, `0-4,`). Whitespace anywhere else (`bytes = 0-4`,
///   `bytes=0 - 4`, `bytes= 0-4`) is [`Malformed`]; so is a set without a
///   single spec (`bytes=`, `bytes=,`).
/// * Numbers are `1*DIGIT`, leading zeros allowed, and saturate at `u64::MAX`
///   instead of failing (§14.1.2). `+5`, `0x10` and `1e3` are not `1*DIGIT`.
/// * `first-last` with `last < first` is [`Malformed`] (§14.1.1 "invalid").
/// * More than [`MAX_RANGES`] specs is [`Malformed`]; parsing stops at the
///   first spec over the limit, so the result never holds more.
///
/// # Errors
///
/// [`Malformed`] for anything that is not such a `bytes` range set; the
/// caller then ignores the header and answers 200.
///
/// # Examples
///
/// ```
/// use ranged::range::{parse, Spec};
/// assert_eq!(parse("Bytes=0-4, -3"), Ok(vec![
///     Spec::Bounded { first: 0, last: 4 },
///     Spec::Suffix { len: 3 },
/// ]));
/// assert!(parse("items=0-4").is_err());
/// ```
pub fn parse(value: &str) -> Result<Vec<Spec>, Malformed> {
    let value = trim_ows(value);
    let (unit, set) = value.split_once('=').ok_or(Malformed)?;
    if !unit.eq_ignore_ascii_case("bytes") {
        return Err(Malformed);
    }
    let mut specs = Vec::new();
    for (i, element) in set.split(',').enumerate() {
        // `#rule` (§5.6.1): `[ element ] *( OWS "," OWS [ element ] )`. OWS may
        // follow a comma and precede one; the very end was trimmed above.
        // `bytes= 0-4` :: space neither at an end nor next to a comma -> invalid.
        let element = element.trim_end_matches(is_ows);
        let element = if i == 0 {
            element
        } else {
            element.trim_start_matches(is_ows)
        };
        if element.is_empty() {
            continue;
        }
        if specs.len() == MAX_RANGES {
            return Err(Malformed);
        }
        specs.push(parse_spec(element)?);
    }
    if specs.is_empty() {
        return Err(Malformed);
    }
    Ok(specs)
}

/// One `range-spec` with no surrounding whitespace.
fn parse_spec(s: &str) -> Result<Spec, Malformed> {
    let (first, last) = s.split_once('-').ok_or(Malformed)?;
    if first.is_empty() {
        // `-500` :: the last 500 bytes
        return Ok(Spec::Suffix { len: digits(last)? });
    }
    let first = digits(first)?;
    if last.is_empty() {
        // `500-` :: from byte 500 to the end
        return Ok(Spec::From { first });
    }
    let last = digits(last)?;
    if last < first {
        return Err(Malformed);
    }
    Ok(Spec::Bounded { first, last })
}

/// `1*DIGIT` as a u64, saturating at `u64::MAX`. Hand-written because
/// `str::parse::<u64>` accepts a leading `+` and fails on overflow. One pass,
/// no allocation, so a megabyte of digits costs a megabyte of comparisons.
fn digits(s: &str) -> Result<u64, Malformed> {
    if s.is_empty() {
        return Err(Malformed);
    }
    s.bytes().try_fold(0u64, |n, b| {
        if b.is_ascii_digit() {
            Ok(n.saturating_mul(10).saturating_add(u64::from(b - b'0')))
        } else {
            Err(Malformed)
        }
    })
}

/// OWS = *( SP / HTAB ) (RFC 9110 §5.6.3); not `char::is_whitespace`, which
/// would also accept VT, FF and Unicode spaces.
fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Applies parsed specs to a representation of `size` bytes.
///
/// In this order:
///
/// 1. `size == 0` → [`Outcome::Ignore`]: no `Content-Range` can describe zero
///    bytes, and §14.2 lets us ignore Range (semantics doc §1, Go issue 54794).
/// 2. No specs or more than [`MAX_RANGES`] → [`Outcome::Ignore`] (§17.15).
/// 3. Each spec is resolved (§14.1.2): `first-last` and `first-` are
///    satisfiable iff `first < size`, `last` being clamped to `size - 1`;
///    `-len` is satisfiable iff `len > 0` and then means the last
///    `min(len, size)` bytes. Unsatisfiable specs are dropped (§15.3.7.2);
///    if none is left → [`Outcome::Unsatisfiable`] (416, §14.2).
/// 4. With two or more satisfiable ranges, the set is ignored
///    ([`Outcome::Ignore`], §17.15) when
///    * the sum of their lengths exceeds `size` (the Go and nginx rule:
///      `0-,1-` or `0-10001,0-0` on 10 000 bytes), or
///    * more than [`MAX_OVERLAPPING`] ranges *overlap*, a range overlapping
///      when it shares at least one byte with another range of the set
///      (adjacent ranges such as `0-4,5-9` share none). `0-9,5-14` is served;
///      `0-9,5-14,8-20` and `0-9,5-14,100-109,105-114` are ignored.
///
/// Otherwise [`Outcome::Partial`] with the ranges in request order, not
/// coalesced (§15.3.7.2 SHOULD keep the order). No arithmetic here can
/// overflow, even for `size == u64::MAX`.
pub fn resolve(specs: &[Spec], size: u64) -> Outcome {
    if size == 0 || specs.is_empty() || specs.len() > MAX_RANGES {
        return Outcome::Ignore;
    }
    let mut ranges = Vec::with_capacity(specs.len());
    for spec in specs {
        match satisfiable(*spec, size) {
            Ok(Some(r)) => ranges.push(r),
            Ok(None) => {}
            // Only a hand-built `Bounded` with last < first gets here; `parse`
            // never makes one. Treat it like the syntax error it is.
            Err(Malformed) => return Outcome::Ignore,
        }
    }
    if ranges.is_empty() {
        return Outcome::Unsatisfiable;
    }
    if ranges.len() > 1 && (total_exceeds(&ranges, size) || overlapping(&ranges) > MAX_OVERLAPPING)
    {
        return Outcome::Ignore;
    }
    Outcome::Partial(ranges)
}

/// One spec against `size > 0`: `Ok(None)` when it is unsatisfiable.
fn satisfiable(spec: Spec, size: u64) -> Result<Option<ByteRange>, Malformed> {
    debug_assert!(size > 0);
    let r = match spec {
        Spec::Bounded { first, last } => {
            if last < first {
                return Err(Malformed);
            }
            if first >= size {
                None
            } else {
                // `0-99999` on 10 bytes :: bytes 0-9; a saturated last-pos
                // lands here too and means "to the end".
                let last = last.min(size - 1);
                Some(ByteRange {
                    start: first,
                    len: last - first + 1,
                })
            }
        }
        Spec::From { first } => (first < size).then(|| ByteRange {
            start: first,
            len: size - first,
        }),
        // `-0` :: only a non-zero suffix is satisfiable (§14.1.2).
        Spec::Suffix { len: 0 } => None,
        Spec::Suffix { len } => {
            let len = len.min(size);
            Some(ByteRange {
                start: size - len,
                len,
            })
        }
    };
    Ok(r)
}

/// Whether the lengths add up to more than `size`. Every length is at most
/// `size`, and at most `MAX_RANGES` of them, so the sum fits a u128.
fn total_exceeds(ranges: &[ByteRange], size: u64) -> bool {
    let total: u128 = ranges.iter().map(|r| u128::from(r.len)).sum();
    total > u128::from(size)
}

/// How many ranges share at least one byte with another range of the set.
///
/// Sorted by start, the ranges form runs in which each one begins before the
/// furthest end seen so far in its run; every range of a run of two or more
/// overlaps some other range of it, and no range overlaps one of another run.
fn overlapping(ranges: &[ByteRange]) -> usize {
    let mut sorted: Vec<(u64, u64)> = ranges.iter().map(|r| (r.start, r.start + r.len)).collect();
    sorted.sort_unstable();
    let mut count = 0;
    let mut run_len = 0;
    let mut run_end = 0;
    for (start, end) in sorted {
        if run_len > 0 && start < run_end {
            run_len += 1;
            run_end = run_end.max(end);
        } else {
            if run_len > 1 {
                count += run_len;
            }
            run_len = 1;
            run_end = end;
        }
    }
    if run_len > 1 {
        count += run_len;
    }
    count
}

/// `parse` then `resolve`; anything malformed is ignored.
pub fn evaluate(value: &str, size: u64) -> Outcome {
    match parse(value) {
        Ok(specs) => resolve(&specs, size),
        Err(Malformed) => Outcome::Ignore,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The expected outcome of a row, with ranges as `Content-Range` writes
    /// them: inclusive `(first, last)`.
    #[derive(Debug)]
    enum Want {
        Ignore,
        Unsat,
        Partial(&'static [(u64, u64)]),
    }
    use Want::{Ignore, Partial, Unsat};

    const MAX: u64 = u64::MAX;
    const GIB5: u64 = 5 << 30;
    const P31: u64 = 1 << 31;
    const P32: u64 = 1 << 32;

    macro_rules! times10 {
        ($s:expr) => {
            concat!($s, $s, $s, $s, $s, $s, $s, $s, $s, $s)
        };
    }

    /// `evaluate(header, size)`: the semantics doc §1 and §6 as rows.
    const CASES: &[(&str, u64, Want)] = &[
        // Plain forms (§14.1.2).
        ("bytes=0-4", 10, Partial(&[(0, 4)])),
        ("bytes=5-", 10, Partial(&[(5, 9)])),
        ("bytes=-3", 10, Partial(&[(7, 9)])),
        ("bytes=0-0", 1, Partial(&[(0, 0)])),
        ("bytes=9-9", 10, Partial(&[(9, 9)])),
        ("bytes=0-99", 10, Partial(&[(0, 9)])), // last-pos clamped
        ("bytes=-99", 10, Partial(&[(0, 9)])),  // suffix longer than the file
        ("bytes=0-", 10, Partial(&[(0, 9)])),
        // Invalid syntax → ignore → 200 (§1 row 1, §6 #3).
        ("bytes=abc", 10, Ignore),
        ("alpha", 10, Ignore),
        ("bytes=5-1", 10, Ignore),
        ("bytes=--6", 10, Ignore),
        ("bytes 0-4", 10, Ignore),
        ("bytes=10", 10, Ignore),
        ("bytes=-", 10, Ignore),
        ("bytes=5-5-5", 10, Ignore),
        ("bytes=0-4;x", 10, Ignore),
        ("bytes=Ran-dom, garbage", 10, Ignore),
        ("bytes=", 10, Ignore),
        ("bytes=,", 10, Ignore),
        ("bytes=, ,\t,", 10, Ignore),
        ("=0-4", 10, Ignore),
        ("", 10, Ignore),
        ("bytes=0-1,abc", 10, Ignore), // one bad spec spoils the set
        ("bytes=０-4", 10, Ignore),    // fullwidth digit is not DIGIT
        // Unknown unit → 200 (§14.2 MUST; §6 #1).
        ("items=0-4", 10, Ignore),
        ("none", 10, Ignore),
        ("bytesx=0-4", 10, Ignore),
        // Unit name is case-insensitive (§14.1; §6 #2).
        ("Bytes=0-4", 10, Partial(&[(0, 4)])),
        ("BYTES=0-4", 10, Partial(&[(0, 4)])),
        ("bYtEs=-2", 10, Partial(&[(8, 9)])),
        // OWS at the ends of the field and around commas (§5.5, §5.6.1.2; §6 #20).
        (" bytes=0-4 ", 10, Partial(&[(0, 4)])),
        ("bytes=0-4\t", 10, Partial(&[(0, 4)])), // trailing HTAB
        ("\tbytes=0-4", 10, Partial(&[(0, 4)])),
        ("bytes=0-1 , 3-4", 10, Partial(&[(0, 1), (3, 4)])),
        ("bytes=0-1,\t3-4", 10, Partial(&[(0, 1), (3, 4)])),
        ("bytes=0-1\t,3-4 \t", 10, Partial(&[(0, 1), (3, 4)])),
        // Whitespace anywhere else is invalid.
        ("bytes = 0-4", 10, Ignore),
        ("bytes =0-4", 10, Ignore),
        ("bytes= 0-4", 10, Ignore), // not next to a comma
        ("bytes=0 - 4", 10, Ignore),
        ("bytes=0- 4", 10, Ignore),
        ("bytes=0 -4", 10, Ignore),
        ("bytes=- 4", 10, Ignore),
        ("bytes=0-4\x0b", 10, Ignore),   // VT is not OWS
        ("bytes=0-4\u{a0}", 10, Ignore), // nor is NBSP
        // Empty list elements are ignored (§5.6.1.2; §6 #20).
        ("bytes=0-1,,3-4", 10, Partial(&[(0, 1), (3, 4)])),
        ("bytes=,0-4", 10, Partial(&[(0, 4)])),
        ("bytes=0-4,", 10, Partial(&[(0, 4)])),
        ("bytes= ,0-4", 10, Partial(&[(0, 4)])), // `[ element ] OWS ","`
        ("bytes=, , 0-4 ,,", 10, Partial(&[(0, 4)])),
        // Only 1*DIGIT: no sign, no hex, no exponent, no negative first-pos (§1).
        ("bytes=+5-", 10, Ignore),
        ("bytes=0-+5", 10, Ignore),
        ("bytes=-+5", 10, Ignore),
        ("bytes=+0-4", 10, Ignore),
        ("bytes=0x10-0x20", 100, Ignore),
        ("bytes=0x01-0x02", 100, Ignore),
        ("bytes=0-0x10", 100, Ignore),
        ("bytes=1e3-", 10_000, Ignore),
        ("bytes=0-1e3", 10_000, Ignore),
        ("bytes=-1-5", 10, Ignore),
        ("bytes=-1", 10, Partial(&[(9, 9)])), // a suffix, not a negative number
        ("bytes=1.5-2", 10, Ignore),
        // Leading zeros are valid 1*DIGIT.
        ("bytes=0003-00005", 10, Partial(&[(3, 5)])),
        ("bytes=-007", 10, Partial(&[(3, 9)])),
        ("bytes=000-", 10, Partial(&[(0, 9)])),
        // Numbers beyond u64 (§14.1.2 MUST not break; §1, §6 #7): a huge
        // last-pos or suffix means "to the end", a huge first-pos is
        // unsatisfiable.
        ("bytes=123456789012345678901234567890-", 10, Unsat),
        (
            "bytes=123456789012345678901234567890-123456789012345678901234567891",
            10,
            Unsat,
        ),
        (
            "bytes=5-123456789012345678901234567890",
            10,
            Partial(&[(5, 9)]),
        ),
        (
            "bytes=-123456789012345678901234567890",
            10,
            Partial(&[(0, 9)]),
        ),
        ("bytes=0-18446744073709551615", 10, Partial(&[(0, 9)])), // u64::MAX
        ("bytes=0-18446744073709551616", 10, Partial(&[(0, 9)])), // u64::MAX + 1
        ("bytes=18446744073709551616-", 10, Unsat),
        ("bytes=9223372036854775808-", 10, Unsat), // 2^63
        (
            "bytes=0-4,123456789012345678901234567890-",
            10,
            Partial(&[(0, 4)]),
        ),
        // Sizes at the top of u64: nothing overflows.
        ("bytes=0-", MAX, Partial(&[(0, MAX - 1)])),
        ("bytes=-18446744073709551615", MAX, Partial(&[(0, MAX - 1)])),
        (
            "bytes=-123456789012345678901234567890",
            MAX,
            Partial(&[(0, MAX - 1)]),
        ),
        (
            "bytes=18446744073709551614-",
            MAX,
            Partial(&[(MAX - 1, MAX - 1)]),
        ),
        ("bytes=18446744073709551615-", MAX, Unsat),
        ("bytes=-1", MAX, Partial(&[(MAX - 1, MAX - 1)])),
        ("bytes=0-0,-1", MAX, Partial(&[(0, 0), (MAX - 1, MAX - 1)])),
        // `-0`: only a non-zero suffix is satisfiable (§14.1.2; §1, §6 #4).
        ("bytes=-0", 10, Unsat),
        ("bytes=-000", 10, Unsat),
        ("bytes=-0,0-4", 10, Partial(&[(0, 4)])),
        // Zero-length file: always ignored, never 206 or 416 (§1; §6 #5, #6).
        ("bytes=0-", 0, Ignore),
        ("bytes=-5", 0, Ignore),
        ("bytes=-0", 0, Ignore),
        ("bytes=0-0", 0, Ignore),
        ("bytes=abc", 0, Ignore),
        // All unsatisfiable → 416 (§14.2, §15.5.17).
        ("bytes=10-", 10, Unsat),
        ("bytes=10-20", 10, Unsat),
        ("bytes=10-20,30-,-0", 10, Unsat),
        // Some unsatisfiable among several: dropped, the rest served (§15.3.7.2).
        ("bytes=0-4,100-200,-0,5-9", 100, Partial(&[(0, 4), (5, 9)])),
        ("bytes=10-20,200-300", 100, Partial(&[(10, 20)])),
        // Several ranges: request order, no coalescing (§15.3.7.2; §6 #10).
        ("bytes=50-59,0-9", 100, Partial(&[(50, 59), (0, 9)])),
        ("bytes=0-4,5-9", 10, Partial(&[(0, 4), (5, 9)])), // adjacent, Σ = size
        ("bytes=0-4,0-4", 10, Partial(&[(0, 4), (0, 4)])), // 2 overlapping
        // More than MAX_RANGES ranges → 200 (§17.15; §6 #11).
        (
            concat!("bytes=", times10!(times10!("0-0,")), "0-0"),
            1000,
            Ignore,
        ),
        // Σ lengths > size → 200 (Go/nginx rule; §6 #8, #9).
        ("bytes=0-10001,0-0", 10_000, Ignore),
        ("bytes=0-,1-", 10, Ignore),
        ("bytes=0-,5-9", 10, Ignore),
        ("bytes=0-5,4-9", 10, Ignore),
        ("bytes=-6,-5", 10, Ignore),
        ("bytes=0-,999-", 10, Partial(&[(0, 9)])), // one satisfiable left: no Σ rule
        // More than 2 overlapping ranges → 200 (§17.15, Apache MaxRangeOverlaps).
        ("bytes=0-9,5-14", 1000, Partial(&[(0, 9), (5, 14)])),
        ("bytes=0-9,5-14,8-20", 1000, Ignore),
        ("bytes=0-9,0-9,0-9", 1000, Ignore),
        ("bytes=0-99,10-19,50-59", 1000, Ignore),
        ("bytes=0-9,5-14,100-109,105-114", 1000, Ignore),
        (
            "bytes=0-4,5-9,10-14",
            1000,
            Partial(&[(0, 4), (5, 9), (10, 14)]),
        ),
        (
            "bytes=20-29,0-9,5-14",
            1000,
            Partial(&[(20, 29), (0, 9), (5, 14)]),
        ),
        // Sparse 5 GiB file: either side of 2^31 and 2^32 (darkhttpd's
        // TestLargeFile2G/4G).
        (
            "bytes=2147483647-2147483648",
            GIB5,
            Partial(&[(P31 - 1, P31)]),
        ),
        (
            "bytes=4294967295-4294967296",
            GIB5,
            Partial(&[(P32 - 1, P32)]),
        ),
        ("bytes=4294967296-", GIB5, Partial(&[(P32, GIB5 - 1)])),
        ("bytes=2147483648-", GIB5, Partial(&[(P31, GIB5 - 1)])),
        (
            "bytes=-2147483649",
            GIB5,
            Partial(&[(GIB5 - P31 - 1, GIB5 - 1)]),
        ),
        (
            "bytes=-4294967297",
            GIB5,
            Partial(&[(GIB5 - P32 - 1, GIB5 - 1)]),
        ),
        ("bytes=5368709119-", GIB5, Partial(&[(GIB5 - 1, GIB5 - 1)])),
        ("bytes=5368709120-", GIB5, Unsat),
        ("bytes=0-5368709120", GIB5, Partial(&[(0, GIB5 - 1)])),
        (
            "bytes=2147483647-2147483648,4294967295-4294967296",
            GIB5,
            Partial(&[(P31 - 1, P31), (P32 - 1, P32)]),
        ),
        // Wraps to 4 GiB + 1 if anything is computed in 32 bits.
        ("bytes=0-4294967296", GIB5, Partial(&[(0, P32)])),
    ];

    fn want(w: &Want) -> Outcome {
        match w {
            Ignore => Outcome::Ignore,
            Unsat => Outcome::Unsatisfiable,
            Partial(rs) => Outcome::Partial(
                rs.iter()
                    .map(|&(first, last)| ByteRange {
                        start: first,
                        len: last - first + 1,
                    })
                    .collect(),
            ),
        }
    }

    #[test]
    fn evaluate_table() {
        let mut failed = 0;
        for (header, size, w) in CASES {
            let got = evaluate(header, *size);
            if got != want(w) {
                eprintln!("evaluate({header:?}, {size}) = {got:?}, want {w:?}");
                failed += 1;
            }
        }
        assert_eq!(failed, 0, "{failed} of {} rows failed", CASES.len());
    }

    use Spec::{Bounded, From, Suffix};

    /// `parse(header)`: `None` means `Malformed`.
    const PARSE: &[(&str, Option<&[Spec]>)] = &[
        ("bytes=0-4", Some(&[Bounded { first: 0, last: 4 }])),
        ("bytes=4-4", Some(&[Bounded { first: 4, last: 4 }])),
        ("bytes=5-", Some(&[From { first: 5 }])),
        ("bytes=-5", Some(&[Suffix { len: 5 }])),
        ("bytes=-0", Some(&[Suffix { len: 0 }])), // syntax fine; resolve says 416
        ("BYTES=0003-00005", Some(&[Bounded { first: 3, last: 5 }])),
        (
            "bytes=0-0, -1 ,5-",
            Some(&[
                Bounded { first: 0, last: 0 },
                Suffix { len: 1 },
                From { first: 5 },
            ]),
        ),
        // Order and duplicates are kept as written.
        (
            "bytes=9-9,0-0,9-9",
            Some(&[
                Bounded { first: 9, last: 9 },
                Bounded { first: 0, last: 0 },
                Bounded { first: 9, last: 9 },
            ]),
        ),
        // Saturation at u64::MAX (§14.1.2).
        (
            "bytes=18446744073709551615-",
            Some(&[From { first: u64::MAX }]),
        ),
        (
            "bytes=18446744073709551616-",
            Some(&[From { first: u64::MAX }]),
        ),
        (
            "bytes=18446744073709551614-",
            Some(&[From {
                first: u64::MAX - 1,
            }]),
        ),
        (
            "bytes=0-123456789012345678901234567890",
            Some(&[Bounded {
                first: 0,
                last: u64::MAX,
            }]),
        ),
        (
            "bytes=-123456789012345678901234567890",
            Some(&[Suffix { len: u64::MAX }]),
        ),
        // Both saturate to the same value: not detectably last < first.
        (
            "bytes=123456789012345678901234567891-123456789012345678901234567890",
            Some(&[Bounded {
                first: u64::MAX,
                last: u64::MAX,
            }]),
        ),
        ("bytes=5-4", None),
        ("bytes=18446744073709551615-18446744073709551614", None),
        ("bytes=+5-", None),
        ("bytes=0x10-", None),
        ("bytes=1e3-", None),
        ("bytes=-1-5", None),
        ("bytes=--6", None),
        ("bytes=5", None),
        ("bytes=-", None),
        ("bytes=abc", None),
        ("bytes=", None),
        ("bytes=,", None),
        ("bytes = 0-4", None),
        ("bytes=0 - 4", None),
        ("items=0-4", None),
        ("bytes", None),
    ];

    #[test]
    fn parse_table() {
        for (header, w) in PARSE {
            let got = parse(header);
            let w = w.map(<[Spec]>::to_vec).ok_or(Malformed);
            assert_eq!(got, w, "parse({header:?})");
        }
    }

    /// Exactly MAX_RANGES disjoint ranges are served; one more and the header
    /// is ignored, and `parse` stops right there.
    #[test]
    fn range_count_limit() {
        let set = |n: u64| {
            let specs: Vec<String> = (0..n).map(|i| format!("{}-{}", 2 * i, 2 * i)).collect();
            format!("bytes={}", specs.join(","))
        };
        let max = MAX_RANGES as u64;
        match evaluate(&set(max), 10_000) {
            Outcome::Partial(rs) => assert_eq!(rs.len(), MAX_RANGES),
            other => panic!("{other:?}"),
        }
        assert_eq!(parse(&set(max + 1)), Err(Malformed));
        assert_eq!(evaluate(&set(max + 1), 10_000), Outcome::Ignore);
        // Garbage after the limit does not matter: parsing already stopped.
        assert_eq!(parse(&format!("{},x", set(max + 1))), Err(Malformed));
        // resolve enforces the limit on its own too.
        let specs: Vec<Spec> = (0..=max).map(|i| Spec::From { first: 2 * i }).collect();
        assert_eq!(resolve(&specs, 10_000), Outcome::Ignore);
        // Empty list elements do not count.
        let commas = format!("bytes={}0-0", ",".repeat(10 * MAX_RANGES));
        assert_eq!(
            parse(&commas),
            Ok(vec![Spec::Bounded { first: 0, last: 0 }])
        );
    }

    /// A megabyte of digits saturates in one pass instead of failing.
    #[test]
    fn long_numbers_saturate() {
        let nines = "9".repeat(1 << 20);
        assert_eq!(
            parse(&format!("bytes=0-{nines}")),
            Ok(vec![Spec::Bounded {
                first: 0,
                last: u64::MAX
            }])
        );
        assert_eq!(
            evaluate(&format!("bytes={nines}-"), 10),
            Outcome::Unsatisfiable
        );
        assert_eq!(
            evaluate(&format!("bytes=-{nines}"), 10),
            Outcome::Partial(vec![ByteRange { start: 0, len: 10 }])
        );
    }

    #[test]
    fn resolve_rejects_inverted_bounded() {
        let specs = [Spec::Bounded { first: 5, last: 1 }];
        assert_eq!(resolve(&specs, 10), Outcome::Ignore);
        assert_eq!(resolve(&[], 10), Outcome::Ignore);
    }

    use crate::testing::Xorshift;

    /// A random number as text: small, near the interesting sizes, or far
    /// beyond u64, sometimes with leading zeros.
    fn number(rng: &mut Xorshift) -> String {
        let r = rng.next_u64();
        let n = match r % 6 {
            0 | 1 => (r >> 8) % 12,
            2 => (r >> 8) % 120,
            3 => (1u64 << 32).wrapping_add((r >> 8) % 5).wrapping_sub(2),
            4 => u64::MAX - (r >> 8) % 3,
            _ => return "123456789012345678901234567890".to_owned(),
        };
        if r & (1 << 7) == 0 {
            format!("00{n}")
        } else {
            n.to_string()
        }
    }

    /// Random Range headers: no panic, and every Partial keeps the
    /// `ByteRange` invariants and the abuse limits.
    ///
    /// Half the inputs are short strings over the Range alphabet (mostly
    /// malformed); the other half are well-formed sets of 1–4 random specs,
    /// one in eight with a random character overwritten, so that `resolve`
    /// sees many valid sets.
    #[test]
    fn random_headers_keep_invariants() {
        const ALPHABET: &[u8] = b"bytes=-,019 \t+x";
        const SEPARATORS: &[&str] = &[",", ", ", " ,\t", ",,"];
        const SIZES: &[u64] = &[0, 1, 2, 10, 100, 1 << 32, u64::MAX - 1, u64::MAX];
        let mut rng = Xorshift::new(0x9e37_79b9_7f4a_7c15);
        let (mut partials, mut multi) = (0, 0);
        for _ in 0..20_000 {
            let r = rng.next_u64();
            let mut s = String::new();
            if r & 1 == 0 {
                if r & 2 == 0 {
                    s.push_str("bytes=");
                }
                for _ in 0..(r >> 2) % 16 {
                    let i = (rng.next_u64() % ALPHABET.len() as u64) as usize;
                    s.push(char::from(ALPHABET[i]));
                }
            } else {
                let mut bytes = b"bytes=".to_vec();
                for k in 0..1 + (r >> 2) % 4 {
                    if k > 0 {
                        let sep = SEPARATORS[(rng.next_u64() % 4) as usize];
                        bytes.extend_from_slice(sep.as_bytes());
                    }
                    let spec = match rng.next_u64() % 3 {
                        0 => format!("{}-{}", number(&mut rng), number(&mut rng)),
                        1 => format!("{}-", number(&mut rng)),
                        _ => format!("-{}", number(&mut rng)),
                    };
                    bytes.extend_from_slice(spec.as_bytes());
                }
                if (r >> 4).is_multiple_of(8) {
                    let at = (rng.next_u64() % bytes.len() as u64) as usize;
                    bytes[at] = ALPHABET[(rng.next_u64() % ALPHABET.len() as u64) as usize];
                }
                s = String::from_utf8_lossy(&bytes).into_owned();
            }
            let size = SIZES[(r >> 8) as usize % SIZES.len()];
            if let Ok(specs) = parse(&s) {
                assert!(!specs.is_empty() && specs.len() <= MAX_RANGES, "{s:?}");
            }
            match evaluate(&s, size) {
                Outcome::Partial(rs) => {
                    partials += 1;
                    assert!(!rs.is_empty(), "{s:?}");
                    let mut total: u128 = 0;
                    for r in &rs {
                        assert!(r.len >= 1, "{s:?} {size}: {r:?}");
                        let end = r.start.checked_add(r.len);
                        assert!(end.is_some_and(|e| e <= size), "{s:?} {size}: {r:?}");
                        assert_eq!(r.last() - r.start + 1, r.len);
                        total += u128::from(r.len);
                    }
                    if rs.len() > 1 {
                        multi += 1;
                        assert!(total <= u128::from(size), "{s:?} {size}: {rs:?}");
                        assert!(overlapping(&rs) <= MAX_OVERLAPPING, "{s:?}: {rs:?}");
                    }
                }
                Outcome::Unsatisfiable => assert!(size > 0, "{s:?}"),
                Outcome::Ignore => {}
            }
        }
        // The loop is only worth something if it reaches the interesting branches.
        assert!(
            partials > 2000 && multi > 200,
            "{partials} partial, {multi} multi"
        );
    }

    #[test]
    fn overlap_count() {
        let r = |start, len| ByteRange { start, len };
        assert_eq!(overlapping(&[r(0, 5), r(5, 5)]), 0);
        assert_eq!(overlapping(&[r(0, 10), r(5, 10)]), 2);
        assert_eq!(overlapping(&[r(0, 10), r(5, 10), r(8, 13)]), 3);
        // A long range covering two that do not touch each other.
        assert_eq!(overlapping(&[r(10, 1), r(0, 100), r(50, 1)]), 3);
        assert_eq!(
            overlapping(&[r(0, 10), r(5, 10), r(100, 10), r(105, 10)]),
            4
        );
        assert_eq!(overlapping(&[r(0, 10), r(5, 10), r(100, 10)]), 2);
    }
}
