//! Conditional requests (RFC 9110 §13): evaluates If-Match, If-Unmodified-Since,
//! If-None-Match, If-Modified-Since and If-Range in the §13.2.2 order. Pure.
//!
//! Built like Go's `checkPreconditions` (`net/http/fs.go`): one small function
//! per header field returning a three-state [`Cond`] (true / false / absent or
//! ignored), and [`evaluate`] applying them in RFC order. Only GET and HEAD on
//! an existing file reach this module (§13.2.1: preconditions are ignored when
//! the response would not be 2xx/412), so `*` always matches and a false
//! If-None-Match always means 304.

use std::time::{Duration, SystemTime};

use crate::message::trim_ows;
use crate::validators::parse_http_date;

/// The conditional header fields of a GET or HEAD request, as sent.
#[derive(Debug, Default, Clone, Copy)]
pub struct Conditions<'a> {
    pub if_match: Option<&'a str>,
    pub if_none_match: Option<&'a str>,
    pub if_modified_since: Option<&'a str>,
    pub if_unmodified_since: Option<&'a str>,
    pub if_range: Option<&'a str>,
}

/// The validators of the representation about to be sent.
#[derive(Debug, Clone, Copy)]
pub struct Validators<'a> {
    /// A strong entity-tag including its quotes, e.g. `"1f-5e0c9d2a3b1c0"`.
    pub etag: &'a str,
    /// Last-Modified truncated to whole seconds; `None` when the file's mtime
    /// cannot be written as an HTTP-date (before 1970, after 9999).
    pub last_modified: Option<SystemTime>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go on; honour the Range header only if `use_range`.
    Proceed { use_range: bool },
    /// 304 Not Modified.
    NotModified,
    /// 412 Precondition Failed.
    PreconditionFailed,
}

/// The result of one precondition, as in Go's `condResult`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cond {
    /// The field is absent, or must be ignored (invalid date, no Last-Modified).
    Ignored,
    True,
    False,
}

impl Cond {
    fn from_bool(b: bool) -> Cond {
        if b { Cond::True } else { Cond::False }
    }
}

/// Decides 412 / 304 / proceed, and whether a Range may be used.
///
/// The steps of RFC 9110 §13.2.2, in order:
///
/// 1. If-Match present: false ⇒ 412.
/// 2. Otherwise If-Unmodified-Since (ignored if the date is invalid or there is
///    no Last-Modified): false ⇒ 412.
/// 3. If-None-Match present: false ⇒ 304 (GET/HEAD only reach here).
/// 4. Otherwise If-Modified-Since (ignored if invalid or no Last-Modified):
///    false ⇒ 304.
/// 5. If-Range (the caller only looks at `use_range` when Range is present):
///    false ⇒ ignore Range and send the full 200.
///
/// A field ignored in step 2 or 4 because the stronger field of its pair is
/// present is §13.1.4 / §13.1.3 ("MUST ignore ... if the request contains an
/// If-Match / If-None-Match header field").
pub fn evaluate(c: &Conditions<'_>, v: &Validators<'_>, now: SystemTime) -> Decision {
    // Steps 1 and 2.
    let mut cond = check_if_match(c.if_match, v.etag);
    if cond == Cond::Ignored {
        cond = check_if_unmodified_since(c.if_unmodified_since, v.last_modified);
    }
    if cond == Cond::False {
        return Decision::PreconditionFailed;
    }

    // Steps 3 and 4.
    let mut cond = check_if_none_match(c.if_none_match, v.etag);
    if cond == Cond::Ignored {
        cond = check_if_modified_since(c.if_modified_since, v.last_modified);
    }
    if cond == Cond::False {
        return Decision::NotModified;
    }

    // Step 5.
    let use_range = check_if_range(c.if_range, v, now) != Cond::False;
    Decision::Proceed { use_range }
}

/// If-Match (§13.1.1): true if `*` or any listed tag matches ours under
/// strong comparison.
fn check_if_match(field: Option<&str>, etag: &str) -> Cond {
    match field {
        None => Cond::Ignored,
        Some(f) => Cond::from_bool(list_matches(f, etag, strong_eq)),
    }
}

/// If-Unmodified-Since (§13.1.4): true if Last-Modified <= date. Callers only
/// ask when If-Match is absent.
fn check_if_unmodified_since(field: Option<&str>, last_modified: Option<SystemTime>) -> Cond {
    // An invalid date MUST be ignored (§13.1.4); so is a file whose mtime has no
    // HTTP-date (pre-1970): without a Last-Modified there is nothing to compare.
    let (Some(date), Some(lm)) = (field.and_then(parse_http_date), last_modified) else {
        return Cond::Ignored;
    };
    Cond::from_bool(lm <= date)
}

/// If-None-Match (§13.1.2): false if `*` or any listed tag matches ours under
/// weak comparison.
fn check_if_none_match(field: Option<&str>, etag: &str) -> Cond {
    match field {
        None => Cond::Ignored,
        Some(f) => Cond::from_bool(!list_matches(f, etag, weak_eq)),
    }
}

/// If-Modified-Since (§13.1.3): false if Last-Modified <= date ("earlier or
/// equal", so a date later than Last-Modified also gives 304, §6 row 19).
/// Callers only ask when If-None-Match is absent.
fn check_if_modified_since(field: Option<&str>, last_modified: Option<SystemTime>) -> Cond {
    let (Some(date), Some(lm)) = (field.and_then(parse_http_date), last_modified) else {
        return Cond::Ignored;
    };
    Cond::from_bool(lm > date)
}

/// If-Range (§13.1.5): true if the entity-tag matches ours under strong
/// comparison, or the date exactly equals a Last-Modified that is a strong
/// validator.
///
/// Anything unparseable is false: ignoring Range and sending the full 200 is
/// always safe, whereas a wrong 206 splices two versions of the file.
fn check_if_range(field: Option<&str>, v: &Validators<'_>, now: SystemTime) -> Cond {
    let Some(field) = field else {
        return Cond::Ignored;
    };
    let field = trim_ows(field);
    // `"x"` or `W/"x"`: an entity-tag; anything else must be an HTTP-date.
    if field.starts_with('"') || field.starts_with("W/\"") {
        let matched = match scan_etag(field) {
            Some((tag, "")) => strong_eq(tag, v.etag),
            _ => false, // `"x" junk`, unterminated quote
        };
        return Cond::from_bool(matched);
    }
    let (Some(date), Some(lm)) = (parse_http_date(field), v.last_modified) else {
        return Cond::False;
    };
    // §8.8.2.2: a Last-Modified in the current second may hide a second change
    // in the same second, so it is only a weak validator and cannot satisfy
    // If-Range. `now < lm` (mtime in the future) also fails here.
    let strong = now
        .duration_since(lm)
        .is_ok_and(|age| age >= Duration::from_secs(1));
    Cond::from_bool(lm == date && strong)
}

/// An entity-tag (§8.8.3) as it appears in a field: `opaque` keeps its quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EntityTag<'a> {
    weak: bool,
    opaque: &'a str,
}

/// Strong comparison (§8.8.3.2): both tags strong and the opaque-tags equal.
fn strong_eq(a: EntityTag<'_>, ours: &str) -> bool {
    match scan_etag(ours) {
        Some((b, "")) => !a.weak && !b.weak && a.opaque == b.opaque,
        _ => false,
    }
}

/// Weak comparison (§8.8.3.2): the opaque-tags equal, `W/` ignored.
fn weak_eq(a: EntityTag<'_>, ours: &str) -> bool {
    match scan_etag(ours) {
        Some((b, "")) => a.opaque == b.opaque,
        _ => false,
    }
}

/// Whether `field` (`"*"` or `#entity-tag`) matches our tag under `eq`.
///
/// `*` matches, because only existing files reach this module. A field with
/// any unparseable member matches nothing at all (e.g. `"a", b` or `*, "a"`):
/// for If-Match that is 412 and for If-None-Match a full 200, the answers that
/// can never hand out the wrong bytes. Empty list elements are skipped
/// (§5.6.1.2), so `, "a" ,,` is the list `"a"`, and an empty field is an empty
/// list that matches nothing.
fn list_matches(field: &str, ours: &str, eq: fn(EntityTag<'_>, &str) -> bool) -> bool {
    if trim_ows(field) == "*" {
        return true;
    }
    let mut rest = field;
    let mut matched = false;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return matched;
        }
        let Some((tag, after)) = scan_etag(rest) else {
            return false;
        };
        matched |= eq(tag, ours);
        // After a tag only OWS then `,` or the end may follow: `"a""b"` and
        // `"a" x` are malformed.
        let after = trim_ows(after);
        if !(after.is_empty() || after.starts_with(',')) {
            return false;
        }
        rest = after;
    }
}

/// `If-Match` (§13.1.1) against the tag of an existing file: strong
/// comparison, `*` matches. For writers (a PUT's precondition).
pub fn if_match(field: &str, ours: &str) -> bool {
    list_matches(field, ours, strong_eq)
}

/// Whether `If-None-Match` (§13.1.2) names our tag: weak comparison, `*`
/// matches — a GET then answers 304. For answers that are not files (the
/// page's assets).
pub fn none_match(field: &str, ours: &str) -> bool {
    list_matches(field, ours, weak_eq)
}

/// Reads one entity-tag at the start of `s` (no leading OWS), returning it and
/// the remaining text. `W/` is case-sensitive (§8.8.3: `%s"W/"`), and the
/// opaque-tag is `DQUOTE *etagc DQUOTE` with etagc = %x21 / %x23-7E / obs-text.
fn scan_etag(s: &str) -> Option<(EntityTag<'_>, &str)> {
    let (weak, quoted) = match s.strip_prefix("W/") {
        Some(q) => (true, q),
        None => (false, s),
    };
    let body = quoted.strip_prefix('"')?;
    let end = body.bytes().position(|b| b == b'"')?;
    let etagc = |b: u8| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80;
    if !body.as_bytes()[..end].iter().all(|&b| etagc(b)) {
        return None;
    }
    // `end` indexes an ASCII quote, so both splits fall on char boundaries.
    let opaque = quoted.get(..end + 2)?;
    let rest = quoted.get(end + 2..)?;
    Some((EntityTag { weak, opaque }, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    const ETAG: &str = "\"1f-3b9aca05-2\"";
    /// Last-Modified of the test file: Sun, 06 Nov 1994 08:49:37 GMT.
    const LM: u64 = 784_111_777;
    const LM_IMF: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
    const LM_850: &str = "Sunday, 06-Nov-94 08:49:37 GMT";
    const LM_ASC: &str = "Sun Nov  6 08:49:37 1994";
    const BEFORE: &str = "Sun, 06 Nov 1994 08:49:36 GMT"; // LM - 1 s
    const AFTER: &str = "Sun, 06 Nov 1994 08:49:38 GMT"; // LM + 1 s

    /// Where the file's mtime sits relative to the response's Date.
    #[derive(Clone, Copy)]
    enum File {
        /// LM is an hour older than now.
        Old,
        /// LM is exactly one second older than now.
        OneSecondOld,
        /// now is LM + 0.999 s: same second.
        SameSecond,
        /// Pre-1970 mtime: no Last-Modified at all.
        NoDate,
    }

    const PROCEED: Decision = Decision::Proceed { use_range: true };
    const FULL: Decision = Decision::Proceed { use_range: false };
    const NOT_MODIFIED: Decision = Decision::NotModified;
    const FAILED: Decision = Decision::PreconditionFailed;

    struct Case {
        name: &'static str,
        file: File,
        im: Option<&'static str>,
        inm: Option<&'static str>,
        ims: Option<&'static str>,
        ius: Option<&'static str>,
        ir: Option<&'static str>,
        want: Decision,
    }

    const NONE: Case = Case {
        name: "",
        file: File::Old,
        im: None,
        inm: None,
        ims: None,
        ius: None,
        ir: None,
        want: PROCEED,
    };

    #[rustfmt::skip]
    const CASES: &[Case] = &[
        Case { name: "no conditions", ..NONE },

        // If-Match: strong comparison, lists, `*`, W/.
        Case { name: "IM exact", im: Some(ETAG), ..NONE },
        Case { name: "IM other", im: Some("\"nope\""), want: FAILED, ..NONE },
        Case { name: "IM star", im: Some("*"), ..NONE },
        Case { name: "IM star with OWS", im: Some(" * "), ..NONE },
        Case { name: "IM weak never matches", im: Some("W/\"1f-3b9aca05-2\""), want: FAILED, ..NONE },
        Case { name: "IM lowercase w/ is not weak syntax", im: Some("w/\"1f-3b9aca05-2\""), want: FAILED, ..NONE },
        Case { name: "IM list with spaces", im: Some(" \"a\" ,\t\"1f-3b9aca05-2\" , \"b\" "), ..NONE },
        Case { name: "IM list, weak then strong", im: Some("W/\"1f-3b9aca05-2\", \"1f-3b9aca05-2\""), ..NONE },
        Case { name: "IM list no match", im: Some("\"a\", \"b\""), want: FAILED, ..NONE },
        Case { name: "IM list empty elements", im: Some(",, \"1f-3b9aca05-2\",,"), ..NONE },
        Case { name: "IM unparseable member", im: Some("\"1f-3b9aca05-2\", garbage"), want: FAILED, ..NONE },
        Case { name: "IM unquoted tag", im: Some("1f-3b9aca05-2"), want: FAILED, ..NONE },
        Case { name: "IM unterminated quote", im: Some("\"1f-3b9aca05-2"), want: FAILED, ..NONE },
        Case { name: "IM tags not separated", im: Some("\"1f-3b9aca05-2\"\"a\""), want: FAILED, ..NONE },
        Case { name: "IM star inside list", im: Some("*, \"a\""), want: FAILED, ..NONE },
        Case { name: "IM empty field is an empty list", im: Some(""), want: FAILED, ..NONE },
        Case { name: "IM false beats everything", im: Some("\"a\""), inm: Some("\"b\""), ius: Some(AFTER), ir: Some(ETAG), want: FAILED, ..NONE },

        // If-Unmodified-Since (only without If-Match).
        Case { name: "IUS equal", ius: Some(LM_IMF), ..NONE },
        Case { name: "IUS later", ius: Some(AFTER), ..NONE },
        Case { name: "IUS earlier -> 412", ius: Some(BEFORE), want: FAILED, ..NONE },
        Case { name: "IUS RFC 850 earlier", ius: Some("Sunday, 06-Nov-94 08:49:36 GMT"), want: FAILED, ..NONE },
        Case { name: "row 16: IM matches, IUS false ignored", im: Some(ETAG), ius: Some(BEFORE), ..NONE },
        Case { name: "IM star, IUS false ignored", im: Some("*"), ius: Some(BEFORE), ..NONE },
        Case { name: "row 17: invalid IUS ignored", ius: Some("yesterday"), ..NONE },
        Case { name: "IUS pre-1970 date is invalid, ignored", ius: Some("Thu, 01 Jan 1960 00:00:00 GMT"), ..NONE },
        Case { name: "IUS on pre-1970 file ignored", file: File::NoDate, ius: Some(BEFORE), ..NONE },

        // If-None-Match: weak comparison.
        Case { name: "INM exact -> 304", inm: Some(ETAG), want: NOT_MODIFIED, ..NONE },
        Case { name: "INM weak matches weakly -> 304", inm: Some("W/\"1f-3b9aca05-2\""), want: NOT_MODIFIED, ..NONE },
        Case { name: "INM other", inm: Some("\"nope\""), ..NONE },
        Case { name: "INM weak other", inm: Some("W/\"nope\""), ..NONE },
        Case { name: "INM star -> 304", inm: Some("*"), want: NOT_MODIFIED, ..NONE },
        Case { name: "INM list with spaces -> 304", inm: Some("\"a\" , W/\"1f-3b9aca05-2\"\t"), want: NOT_MODIFIED, ..NONE },
        Case { name: "INM list no match", inm: Some("\"a\",\"b\""), ..NONE },
        Case { name: "INM unparseable member: no match", inm: Some("\"1f-3b9aca05-2\", garbage"), ..NONE },
        Case { name: "INM unquoted: no match", inm: Some("1f-3b9aca05-2"), ..NONE },
        Case { name: "INM bad byte in tag: no match", inm: Some("\"1f 3b\""), ..NONE },
        Case { name: "INM match with IM match -> 304", im: Some(ETAG), inm: Some(ETAG), want: NOT_MODIFIED, ..NONE },
        Case { name: "INM miss, IR match -> 206", inm: Some("\"a\""), ir: Some(ETAG), ..NONE },

        // If-Modified-Since (only without If-None-Match).
        Case { name: "IMS equal -> 304", ims: Some(LM_IMF), want: NOT_MODIFIED, ..NONE },
        Case { name: "IMS asctime equal -> 304", ims: Some(LM_ASC), want: NOT_MODIFIED, ..NONE },
        Case { name: "row 19: IMS later -> 304", ims: Some(AFTER), want: NOT_MODIFIED, ..NONE },
        Case { name: "IMS earlier -> 200", ims: Some(BEFORE), ..NONE },
        Case { name: "IMS invalid ignored", ims: Some("Sun, 06 Nov 1994"), ..NONE },
        Case { name: "IMS on pre-1970 file ignored", file: File::NoDate, ims: Some(AFTER), ..NONE },
        Case { name: "row 18: INM hit, IMS older ignored -> 304", inm: Some(ETAG), ims: Some(BEFORE), want: NOT_MODIFIED, ..NONE },
        Case { name: "INM miss, IMS equal ignored -> 200", inm: Some("\"a\""), ims: Some(LM_IMF), ..NONE },
        Case { name: "412 before 304", ius: Some(BEFORE), ims: Some(LM_IMF), want: FAILED, ..NONE },

        // If-Range with an entity-tag: strong comparison only.
        Case { name: "IR etag match", ir: Some(ETAG), ..NONE },
        Case { name: "IR etag with OWS", ir: Some(" \"1f-3b9aca05-2\"\t"), ..NONE },
        Case { name: "IR etag mismatch", ir: Some("\"old\""), want: FULL, ..NONE },
        Case { name: "IR weak etag never", ir: Some("W/\"1f-3b9aca05-2\""), want: FULL, ..NONE },
        Case { name: "IR etag list is not allowed", ir: Some("\"1f-3b9aca05-2\", \"a\""), want: FULL, ..NONE },
        Case { name: "IR etag trailing junk", ir: Some("\"1f-3b9aca05-2\" x"), want: FULL, ..NONE },
        Case { name: "IR star is not a tag", ir: Some("*"), want: FULL, ..NONE },
        Case { name: "IR etag on pre-1970 file still works", file: File::NoDate, ir: Some(ETAG), ..NONE },

        // If-Range with a date: exact match, strong Last-Modified only.
        Case { name: "IR date IMF exact", ir: Some(LM_IMF), ..NONE },
        Case { name: "row 12: IR date RFC 850 exact", ir: Some(LM_850), ..NONE },
        Case { name: "row 12: IR date asctime exact", ir: Some(LM_ASC), ..NONE },
        Case { name: "IR date later is not exact", ir: Some(AFTER), want: FULL, ..NONE },
        Case { name: "IR date earlier", ir: Some(BEFORE), want: FULL, ..NONE },
        Case { name: "IR date invalid", ir: Some("Sun, 06 Nov 1994 8:49:37 GMT"), want: FULL, ..NONE },
        Case { name: "IR empty", ir: Some(""), want: FULL, ..NONE },
        Case { name: "IR date, LM one second older than now", file: File::OneSecondOld, ir: Some(LM_IMF), ..NONE },
        Case { name: "row 13: IR date, LM in the current second", file: File::SameSecond, ir: Some(LM_IMF), want: FULL, ..NONE },
        Case { name: "IR date on pre-1970 file", file: File::NoDate, ir: Some("Thu, 01 Jan 1970 00:00:00 GMT"), want: FULL, ..NONE },
        Case { name: "IR with passing IMS earlier", ims: Some(BEFORE), ir: Some("\"old\""), want: FULL, ..NONE },
    ];

    fn now_for(file: File) -> SystemTime {
        let lm = UNIX_EPOCH + Duration::from_secs(LM);
        match file {
            File::Old | File::NoDate => lm + Duration::from_secs(3600),
            File::OneSecondOld => lm + Duration::from_secs(1),
            File::SameSecond => lm + Duration::from_millis(999),
        }
    }

    #[test]
    fn table() {
        for case in CASES {
            let c = Conditions {
                if_match: case.im,
                if_none_match: case.inm,
                if_modified_since: case.ims,
                if_unmodified_since: case.ius,
                if_range: case.ir,
            };
            let last_modified = match case.file {
                File::NoDate => None,
                _ => Some(UNIX_EPOCH + Duration::from_secs(LM)),
            };
            let v = Validators {
                etag: ETAG,
                last_modified,
            };
            assert_eq!(
                evaluate(&c, &v, now_for(case.file)),
                case.want,
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn if_range_when_the_clock_is_behind_the_file() {
        // mtime in the future (clock skew): LM is not yet a strong validator.
        let lm = UNIX_EPOCH + Duration::from_secs(LM);
        let v = Validators {
            etag: ETAG,
            last_modified: Some(lm),
        };
        let c = Conditions {
            if_range: Some(LM_IMF),
            ..Conditions::default()
        };
        assert_eq!(evaluate(&c, &v, lm - Duration::from_secs(5)), FULL);
    }

    #[test]
    fn scan_etag_cases() {
        /// (input, Some((weak, opaque, rest)) or None when not an entity-tag)
        type Row = (&'static str, Option<(bool, &'static str, &'static str)>);
        const CASES: &[Row] = &[
            ("\"x\"", Some((false, "\"x\"", ""))),
            ("W/\"x\", y", Some((true, "\"x\"", ", y"))),
            ("\"\"", Some((false, "\"\"", ""))),
            ("\"é\"", Some((false, "\"é\"", ""))), // obs-text
            ("W/x", None),
            ("w/\"x\"", None),
            ("\"x", None),
            ("\"a b\"", None),
            ("\"a\tb\"", None),
            ("", None),
        ];
        for &(s, want) in CASES {
            let got = scan_etag(s).map(|(t, rest)| (t.weak, t.opaque, rest));
            assert_eq!(got, want, "scan_etag({s:?})");
        }
    }

    /// A xorshift fuzz: arbitrary bytes in every field never panic.
    #[test]
    fn arbitrary_fields_never_panic() {
        const ALPHABET: &[u8] = b"W/\" ,*\t\x21aZ9-:GMTSun";
        let mut rng = crate::testing::Xorshift::new(0x9e37_79b9_7f4a_7c15);
        let mut next = move || rng.next_u64();
        let lm = Some(UNIX_EPOCH + Duration::from_secs(LM));
        for _ in 0..5000 {
            let len = (next() % 24) as usize;
            let s: String = (0..len)
                .map(|_| char::from(ALPHABET[(next() % ALPHABET.len() as u64) as usize]))
                .collect();
            let c = Conditions {
                if_match: Some(&s),
                if_none_match: Some(&s),
                if_modified_since: Some(&s),
                if_unmodified_since: Some(&s),
                if_range: Some(&s),
            };
            let v = Validators {
                etag: ETAG,
                last_modified: lm,
            };
            let _ = evaluate(&c, &v, now_for(File::Old));
            let _ = evaluate(
                &Conditions {
                    if_match: None,
                    ..c
                },
                &v,
                now_for(File::Old),
            );
        }
    }
}
