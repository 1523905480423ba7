//! What a request says about SHA-256 in `Want-Repr-Digest` (RFC 9530 §4) and
//! in the legacy `Want-Digest` (RFC 3230 §4.3.1). Pure: field values in, a
//! three-state answer out. A field that does not parse is as if it were
//! absent: digests are an extra, never a reason for an error status.

/// What one request field says about SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Absent, malformed, or SHA-256 not named.
    Unsaid,
    /// SHA-256 named with a preference above zero.
    Asked,
    /// SHA-256 named as not acceptable (`sha-256=0`, `SHA-256;q=0`).
    Refused,
}

/// What a request's two digest-preference fields say, read together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wants {
    /// `Want-Repr-Digest` (RFC 9530 §4).
    pub repr: Want,
    /// `Want-Digest` (RFC 3230 §4.3.1).
    pub legacy: Want,
}

impl Wants {
    /// Neither field sent.
    pub const NONE: Wants = Wants {
        repr: Want::Unsaid,
        legacy: Want::Unsaid,
    };

    /// Reads every line of both fields (`Request::all`), without allocating.
    ///
    /// Several `Want-Repr-Digest` lines form one Dictionary (RFC 9651 §4.2:
    /// combined with commas), so one malformed line spoils the field and a
    /// later member overrides an earlier one. Several `Want-Digest` lines are
    /// one list; SHA-256 is refused if any element refuses it.
    pub fn parse<'a>(
        repr_lines: impl IntoIterator<Item = &'a str>,
        legacy_lines: impl IntoIterator<Item = &'a str>,
    ) -> Wants {
        let mut repr = Want::Unsaid;
        for line in repr_lines {
            match repr_sha256(line) {
                Ok(Some(w)) => repr = w,
                Ok(None) => {}
                Err(Malformed) => {
                    repr = Want::Unsaid;
                    break;
                }
            }
        }
        let legacy = legacy_lines
            .into_iter()
            .map(want_digest)
            .fold(Want::Unsaid, strongest);
        Wants { repr, legacy }
    }

    /// `Repr-Digest` goes out unless the client called SHA-256 not acceptable:
    /// RFC 9530 §3 lets a server send it unsolicited, and it is the digest
    /// clients such as a resuming downloader can check at any time.
    pub fn send_repr_digest(&self) -> bool {
        self.repr != Want::Refused
    }

    /// The legacy `Digest` goes out only when `Want-Digest` asks for SHA-256
    /// (RFC 3230 §4.2.1; aria2c asks, and then verifies it).
    pub fn send_digest(&self) -> bool {
        self.legacy == Want::Asked
    }

    /// Whether the client asked for SHA-256 in either field: what makes an
    /// unknown digest worth computing in `on-demand` mode.
    pub fn asks(&self) -> bool {
        self.repr == Want::Asked || self.legacy == Want::Asked
    }
}

/// A refusal anywhere wins over a request, a request over silence.
fn strongest(a: Want, b: Want) -> Want {
    match (a, b) {
        (Want::Refused, _) | (_, Want::Refused) => Want::Refused,
        (Want::Asked, _) | (_, Want::Asked) => Want::Asked,
        _ => Want::Unsaid,
    }
}

/// `Want-Repr-Digest` (one field line): an RFC 9651 Dictionary whose members
/// map algorithm keys to Integers 0..=10 (RFC 9530 §4). `sha-256=0` means not
/// acceptable, `1..=10` a preference.
///
/// The whole Dictionary is parsed by RFC 9651 §4.2.2, so that `sha-256=5`
/// inside a string of another member is not mistaken for ours, and a line
/// that fails anywhere is ignored as a whole (§4.2: "fail parsing"). Keys are
/// lowercase by the grammar: `SHA-256=5` is malformed. The last `sha-256`
/// member wins (§4.2.2). A `sha-256` member that is not an Integer in 0..=10
/// is ignored.
pub fn want_repr_digest(value: &str) -> Want {
    repr_sha256(value).ok().flatten().unwrap_or(Want::Unsaid)
}

/// `Want-Digest` (one field line), RFC 3230 §4.3.1:
///
/// ```text
/// Want-Digest = "Want-Digest" ":" #(instance-digest-want)
/// instance-digest-want = digest-algorithm [ ";" "q" "=" qvalue ]
/// ```
///
/// Algorithm names are case-insensitive (§4.1.1); `SHA-256` is registered by
/// RFC 5843. `qvalue` is RFC 9110 §12.4.2's `0[.000]`/`1[.000]`; `q=0` excludes.
/// Each list element stands alone: a malformed element (`SHA-256;q=2`,
/// `SHA-256;x=1`) counts as not naming anything, the others still count.
/// Whitespace is allowed around `,`, `;` and `=` (RFC 2616's implied LWS,
/// which RFC 3230 uses).
pub fn want_digest(value: &str) -> Want {
    value
        .split(',')
        .map(|element| {
            let mut parts = element.split(';');
            let name = parts.next().unwrap_or("").trim_matches(is_ows);
            if !name.eq_ignore_ascii_case("SHA-256") {
                return Want::Unsaid;
            }
            let mut q = Some(true);
            for param in parts {
                q = match param.split_once('=') {
                    Some((k, v)) if k.trim_matches(is_ows).eq_ignore_ascii_case("q") => {
                        q.and(qvalue_nonzero(v.trim_matches(is_ows)))
                    }
                    _ => None,
                };
            }
            match q {
                Some(true) => Want::Asked,
                Some(false) => Want::Refused,
                None => Want::Unsaid,
            }
        })
        .fold(Want::Unsaid, strongest)
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )` (RFC 9110
/// §12.4.2): `Some(q > 0)`, `None` if malformed.
fn qvalue_nonzero(s: &str) -> Option<bool> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match int {
        "0" => Some(frac.bytes().any(|b| b != b'0')),
        "1" if frac.bytes().all(|b| b == b'0') => Some(true),
        _ => None,
    }
}

fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// The line does not parse as a Structured Field Dictionary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Malformed;

/// What the Dictionary in `value` says about `sha-256`: `Ok(None)` when the
/// member is absent or not an Integer in 0..=10.
fn repr_sha256(value: &str) -> Result<Option<Want>, Malformed> {
    let mut p = Parser {
        s: value.as_bytes(),
        i: 0,
    };
    p.skip_sp();
    let mut found = None;
    // RFC 9651 §4.2.2, Parsing a Dictionary.
    while p.i < p.s.len() {
        let key = p.key()?;
        let member = if p.eat(b'=') {
            p.item_or_inner_list()?
        } else {
            // A bare key is the Boolean true, with parameters.
            p.parameters()?;
            Bare::Other
        };
        if key == b"sha-256" {
            found = match member {
                Bare::Integer(0) => Some(Want::Refused),
                Bare::Integer(1..=10) => Some(Want::Asked),
                _ => None,
            };
        }
        p.skip_ows();
        if p.i == p.s.len() {
            break;
        }
        if !p.eat(b',') {
            return Err(Malformed);
        }
        p.skip_ows();
        if p.i == p.s.len() {
            return Err(Malformed); // trailing comma
        }
    }
    Ok(found)
}

/// A member value, as far as this field cares.
enum Bare {
    Integer(i64),
    Other,
}

/// A cursor over one field line; every method consumes what it accepts and
/// fails with [`Malformed`] as RFC 9651 §4.2 says.
struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn skip_sp(&mut self) {
        while self.eat(b' ') {}
    }

    fn skip_ows(&mut self) {
        while self.eat(b' ') || self.eat(b'\t') {}
    }

    /// `key = ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" )`
    fn key(&mut self) -> Result<&'a [u8], Malformed> {
        let start = self.i;
        match self.peek() {
            Some(b'a'..=b'z' | b'*') => self.i += 1,
            _ => return Err(Malformed),
        }
        while let Some(b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b'*') = self.peek() {
            self.i += 1;
        }
        Ok(&self.s[start..self.i])
    }

    fn item_or_inner_list(&mut self) -> Result<Bare, Malformed> {
        if self.eat(b'(') {
            // §4.2.1.2, Parsing an Inner List.
            loop {
                self.skip_sp();
                if self.eat(b')') {
                    self.parameters()?;
                    return Ok(Bare::Other);
                }
                self.bare_item()?;
                self.parameters()?;
                if !matches!(self.peek(), Some(b' ' | b')')) {
                    return Err(Malformed);
                }
            }
        }
        let bare = self.bare_item()?;
        self.parameters()?;
        Ok(bare)
    }

    /// §4.2.3.2, Parsing Parameters: `*( ";" *SP key [ "=" bare-item ] )`.
    fn parameters(&mut self) -> Result<(), Malformed> {
        while self.eat(b';') {
            self.skip_sp();
            self.key()?;
            if self.eat(b'=') {
                self.bare_item()?;
            }
        }
        Ok(())
    }

    /// §4.2.3.1, Parsing a Bare Item.
    fn bare_item(&mut self) -> Result<Bare, Malformed> {
        match self.peek() {
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'"') => self.string().map(|_| Bare::Other),
            Some(b'A'..=b'Z' | b'a'..=b'z' | b'*') => {
                self.i += 1;
                while let Some(b) = self.peek() {
                    if !(crate::message::is_tchar(b) || b == b':' || b == b'/') {
                        break;
                    }
                    self.i += 1;
                }
                Ok(Bare::Other)
            }
            Some(b':') => {
                self.i += 1;
                while let Some(b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' | b'=') =
                    self.peek()
                {
                    self.i += 1;
                }
                if self.eat(b':') {
                    Ok(Bare::Other)
                } else {
                    Err(Malformed)
                }
            }
            Some(b'?') => {
                self.i += 1;
                if self.eat(b'0') || self.eat(b'1') {
                    Ok(Bare::Other)
                } else {
                    Err(Malformed)
                }
            }
            Some(b'@') => {
                self.i += 1;
                match self.number()? {
                    Bare::Integer(_) => Ok(Bare::Other),
                    Bare::Other => Err(Malformed), // a Date is an Integer
                }
            }
            Some(b'%') => {
                self.i += 1;
                self.display_string().map(|_| Bare::Other)
            }
            _ => Err(Malformed),
        }
    }

    /// §4.2.4, Parsing an Integer or Decimal: at most 15 integer digits, or
    /// 12 before and 1..=3 after a `.`. A Decimal is [`Bare::Other`].
    fn number(&mut self) -> Result<Bare, Malformed> {
        let negative = self.eat(b'-');
        let mut value: i64 = 0;
        let mut digits = 0;
        while let Some(b @ b'0'..=b'9') = self.peek() {
            self.i += 1;
            digits += 1;
            if digits > 15 {
                return Err(Malformed);
            }
            // 15 digits stay far below i64::MAX.
            value = value * 10 + i64::from(b - b'0');
        }
        if digits == 0 {
            return Err(Malformed);
        }
        if !self.eat(b'.') {
            return Ok(Bare::Integer(if negative { -value } else { value }));
        }
        if digits > 12 {
            return Err(Malformed);
        }
        let mut frac = 0;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
            frac += 1;
        }
        if !(1..=3).contains(&frac) {
            return Err(Malformed);
        }
        Ok(Bare::Other)
    }

    /// §4.2.5, Parsing a String: printable ASCII, `\"` and `\\` the only escapes.
    fn string(&mut self) -> Result<(), Malformed> {
        self.i += 1;
        loop {
            match self.peek() {
                Some(b'\\') => {
                    self.i += 1;
                    if !(self.eat(b'"') || self.eat(b'\\')) {
                        return Err(Malformed);
                    }
                }
                Some(b'"') => {
                    self.i += 1;
                    return Ok(());
                }
                Some(0x20..=0x7e) => self.i += 1,
                _ => return Err(Malformed),
            }
        }
    }

    /// §4.2.10, Parsing a Display String (after the `%`): `"`, printable
    /// ASCII with `%xx` lowercase-hex escapes, `"`. The decoded bytes are not
    /// checked for UTF-8: nothing here reads them.
    fn display_string(&mut self) -> Result<(), Malformed> {
        if !self.eat(b'"') {
            return Err(Malformed);
        }
        loop {
            match self.peek() {
                Some(b'%') => {
                    self.i += 1;
                    for _ in 0..2 {
                        match self.peek() {
                            Some(b'0'..=b'9' | b'a'..=b'f') => self.i += 1,
                            _ => return Err(Malformed),
                        }
                    }
                }
                Some(b'"') => {
                    self.i += 1;
                    return Ok(());
                }
                Some(0x20..=0x7e) => self.i += 1,
                _ => return Err(Malformed),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Want::{Asked, Refused, Unsaid};

    /// `Want-Repr-Digest` values and what they say about SHA-256.
    const REPR: &[(&str, Want)] = &[
        // RFC 9530 §4 and Appendix C examples.
        ("sha-256=1", Asked),
        ("sha-256=10", Asked),
        ("sha-512=3, sha-256=10, unixsum=0", Asked),
        ("sha-256=0", Refused),
        ("sha-512=3", Unsaid),
        ("", Unsaid),
        ("   sha-256=5", Asked), // leading SP is discarded (RFC 9651 §4.2)
        ("sha-256=5 ,\tsha-512=1", Asked),
        ("sha-256=5;x=?1;y", Asked), // parameters are allowed and ignored
        ("sha-256=5, sha-256=0", Refused), // the last member wins
        ("sha-256=0, sha-256=3", Asked),
        // A member that is not an Integer in 0..=10 is ignored.
        ("sha-256=11", Unsaid),
        ("sha-256=-1", Unsaid),
        ("sha-256", Unsaid),
        ("sha-256=?1", Unsaid),
        ("sha-256=1.0", Unsaid),
        ("sha-256=(1 2)", Unsaid),
        ("sha-256=\"5\"", Unsaid),
        ("sha-256=5, sha-256=x", Unsaid),
        // Other members of every type are parsed past, not searched.
        ("sha-512=\"a, sha-256=0\", sha-256=3", Asked),
        (
            "md5=:AQID:, x=?0, d=@1700000000, s=%\"caf%c3%a9\", l=(a \"b\" 1.5);p, sha-256=2",
            Asked,
        ),
        ("a=-12.345, b=*tok/en:x, sha-256=4", Asked),
        ("sha-512=\"sha-256=5\"", Unsaid),
        // Malformed anywhere: the whole line is ignored (RFC 9651 §4.2).
        ("SHA-256=5", Unsaid),
        ("sha-256=5,", Unsaid),
        ("sha-256=5, ", Unsaid),
        (",sha-256=5", Unsaid),
        ("sha-256 =5", Unsaid),
        ("sha-256= 5", Unsaid),
        ("sha-256=5 x=1", Unsaid),
        ("sha-256=5, x=\"open", Unsaid),
        ("sha-256=5, x=\"bad\\n\"", Unsaid),
        ("sha-256=5, x=:AQID", Unsaid),
        ("sha-256=5, x=(a b", Unsaid),
        ("sha-256=5, x=(a b)c", Unsaid),
        ("sha-256=5, x=?2", Unsaid),
        ("sha-256=5, x=@1.5", Unsaid),
        ("sha-256=5, x=%\"%C3\"", Unsaid), // escapes are lowercase hex
        ("sha-256=5, x=1.2345", Unsaid),
        ("sha-256=5, x=1234567890123.0", Unsaid),
        ("sha-256=0000000000000005", Unsaid), // 16 digits
        ("sha-256=5, x=é", Unsaid),
        ("sha-256=5;", Unsaid),
        ("sha-256=5\t", Asked), // OWS after a member is discarded (§4.2.2)
        ("sha-256=000000000000005", Asked), // 15 digits are fine
    ];

    #[test]
    fn want_repr_digest_table() {
        let mut failed = 0;
        for (value, want) in REPR {
            let got = want_repr_digest(value);
            if got != *want {
                eprintln!("want_repr_digest({value:?}) = {got:?}, want {want:?}");
                failed += 1;
            }
        }
        assert_eq!(failed, 0, "{failed} of {} rows failed", REPR.len());
    }

    /// `Want-Digest` values and what they say about SHA-256.
    const LEGACY: &[(&str, Want)] = &[
        // What aria2c 1.37 sends.
        ("SHA-512;q=1, SHA-256;q=1, SHA;q=0.1", Asked),
        ("SHA-256", Asked),
        ("sha-256", Asked),
        ("Sha-256;Q=0.5", Asked),
        ("MD5, SHA-256 ; q = 0.001", Asked),
        ("SHA-256;q=1.000", Asked),
        (",, SHA-256 ,,", Asked),
        ("SHA-256;q=0", Refused),
        ("SHA-256;q=0.000", Refused),
        ("SHA-256;q=0, SHA-256;q=1", Refused), // a refusal anywhere wins
        ("SHA;q=0.1", Unsaid),
        ("SHA-512", Unsaid),
        ("", Unsaid),
        ("SHA-2560", Unsaid),
        ("SHA256", Unsaid),
        // A malformed element names nothing; the others still count.
        ("SHA-256;q=2", Unsaid),
        ("SHA-256;q=1.5", Unsaid),
        ("SHA-256;q=1.0001", Unsaid),
        ("SHA-256;q=0.0001", Unsaid),
        ("SHA-256;q=", Unsaid),
        ("SHA-256;q", Unsaid),
        ("SHA-256;q=-1", Unsaid),
        ("SHA-256;x=1", Unsaid),
        ("SHA-256;q=0;x=1", Unsaid),
        ("SHA-256 5", Unsaid),
        ("SHA-256;q=x, MD5", Unsaid),
        ("SHA-256;q=2, SHA-256", Asked),
        ("SHA-256;q=é", Unsaid),
    ];

    #[test]
    fn want_digest_table() {
        let mut failed = 0;
        for (value, want) in LEGACY {
            let got = want_digest(value);
            if got != *want {
                eprintln!("want_digest({value:?}) = {got:?}, want {want:?}");
                failed += 1;
            }
        }
        assert_eq!(failed, 0, "{failed} of {} rows failed", LEGACY.len());
    }

    /// What we send is a Dictionary we would parse ourselves (RFC 9530 §3:
    /// the member is a Byte Sequence, not a preference).
    #[test]
    fn our_repr_digest_value_is_a_dictionary() {
        let value = crate::digest::repr_digest_value(&[0xfb; 32]);
        assert_eq!(repr_sha256(&value), Ok(None));
        assert_eq!(repr_sha256("sha-256=:+/+/:x"), Err(Malformed));
    }

    /// Several field lines, and the three decisions drawn from both fields.
    #[test]
    fn wants_from_field_lines() {
        let w = Wants::parse([], ["SHA-512;q=1, SHA-256;q=1, SHA;q=0.1"]);
        assert_eq!(
            w,
            Wants {
                repr: Unsaid,
                legacy: Asked
            }
        );
        assert!(w.send_repr_digest() && w.send_digest() && w.asks());

        // No field at all: Repr-Digest unsolicited, no Digest, nothing asked.
        let w = Wants::parse([], []);
        assert_eq!(w, Wants::NONE);
        assert!(w.send_repr_digest() && !w.send_digest() && !w.asks());

        let w = Wants::parse(["sha-256=0"], ["SHA-256"]);
        assert!(!w.send_repr_digest() && w.send_digest() && w.asks());

        // Dictionary lines combine; a later member overrides an earlier one.
        let w = Wants::parse(["sha-256=3", "sha-512=1, sha-256=0"], []);
        assert_eq!(w.repr, Refused);
        let w = Wants::parse(["sha-256=0", "sha-512=1"], []);
        assert_eq!(w.repr, Refused);
        // One malformed line spoils the combined Dictionary.
        let w = Wants::parse(["sha-256=3", "SHA-512=1"], []);
        assert_eq!(w.repr, Unsaid);
        assert!(!w.asks());

        // List lines combine; a refusal on any line wins.
        let w = Wants::parse([], ["SHA-256", "SHA-256;q=0"]);
        assert_eq!(w.legacy, Refused);
        assert!(!w.send_digest());
        let w = Wants::parse([], ["MD5", "sha-256;q=0.5"]);
        assert!(w.send_digest());
    }
}
