//! The `Authorization: Basic` field value (RFC 7617 §2, RFC 9110 §11.4):
//!
//! ```text
//! credentials = auth-scheme 1*SP token68
//! ```
//!
//! The scheme is case-insensitive (RFC 9110 §11.1); more than one space is
//! accepted (a lenient reading of `1*SP`). The token68 must be strict
//! base64 (one value, one spelling) of UTF-8 `user-id ":" password`, split at
//! the first `:` (§2: a user-id containing a colon cannot be expressed).
//! We announce `charset="UTF-8"` (§2.1), so bytes that are not UTF-8 are
//! refused rather than guessed at.

/// Why a field value gives no credentials; all of them answer 401, the
/// reason goes to the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Another scheme (`Bearer`, `Digest`, …).
    OtherScheme,
    /// `Basic` with a missing, non-base64, non-UTF-8 or colon-less token.
    Malformed,
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::OtherScheme => "Authorization scheme is not Basic",
            Refusal::Malformed => "malformed Basic credentials",
        }
    }
}

/// The user-id and password a client sent.
#[derive(PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

/// Never prints the password.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials {{ user: {:?}, .. }}", self.user)
    }
}

/// Parses an `Authorization` field value.
///
/// ```
/// use ranged::auth::basic::{parse, Refusal};
/// let c = parse("Basic dXNlcjpwYXNz").unwrap();
/// assert_eq!((c.user.as_str(), c.password.as_str()), ("user", "pass"));
/// assert_eq!(parse("Bearer abc"), Err(Refusal::OtherScheme));
/// ```
pub fn parse(value: &str) -> Result<Credentials, Refusal> {
    let value = value.trim_matches([' ', '\t']);
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(Refusal::OtherScheme);
    }
    let token = token.trim_start_matches(' ');
    let bytes = crate::base64::decode(token).ok_or(Refusal::Malformed)?;
    let text = String::from_utf8(bytes).map_err(|_| Refusal::Malformed)?;
    let (user, password) = text.split_once(':').ok_or(Refusal::Malformed)?;
    Ok(Credentials {
        user: user.to_owned(),
        password: password.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (field value, Ok((user, password)) or the refusal)
    #[allow(clippy::type_complexity)]
    const CASES: &[(&str, Result<(&str, &str), Refusal>)] = &[
        ("Basic dXNlcjpwYXNz", Ok(("user", "pass"))),
        ("basic dXNlcjpwYXNz", Ok(("user", "pass"))),
        ("BASIC dXNlcjpwYXNz", Ok(("user", "pass"))),
        ("Basic   dXNlcjpwYXNz", Ok(("user", "pass"))),
        ("  Basic dXNlcjpwYXNz \t", Ok(("user", "pass"))),
        // RFC 7617 §2 example: Aladdin / open sesame
        (
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
            Ok(("Aladdin", "open sesame")),
        ),
        // split at the first colon: the password keeps the rest
        ("Basic dTpwOnc6eA==", Ok(("u", "p:w:x"))),
        // empty user-id and empty password are well-formed (and match no account)
        ("Basic OnB3", Ok(("", "pw"))),
        ("Basic dXNlcjo=", Ok(("user", ""))),
        // RFC 7617 §2.1 example: "test" / "123£" in UTF-8
        ("Basic dGVzdDoxMjPCow==", Ok(("test", "123£"))),
        ("Bearer dXNlcjpwYXNz", Err(Refusal::OtherScheme)),
        ("Digest username=\"u\"", Err(Refusal::OtherScheme)),
        ("Basicx dXNlcjpwYXNz", Err(Refusal::OtherScheme)),
        ("", Err(Refusal::OtherScheme)),
        ("Basic", Err(Refusal::Malformed)),
        ("Basic ", Err(Refusal::Malformed)),
        // no colon
        ("Basic dXNlcg==", Err(Refusal::Malformed)),
        // not base64 / not strict base64
        ("Basic user:pass", Err(Refusal::Malformed)),
        ("Basic dXNlcjpwYXNz=", Err(Refusal::Malformed)),
        ("Basic dXNlcjo", Err(Refusal::Malformed)),
        ("Basic dXNlcjpwYXN", Err(Refusal::Malformed)),
        ("Basic dXNlcjpwYXNz dXNlcjpwYXNz", Err(Refusal::Malformed)),
        ("Basic\tdXNlcjpwYXNz", Err(Refusal::OtherScheme)),
        // "test:123" then 0xA3 alone: Latin-1 £, not UTF-8
        ("Basic dGVzdDoxMjOj", Err(Refusal::Malformed)),
    ];

    #[test]
    fn cases() {
        for &(value, expected) in CASES {
            let got = parse(value);
            let got = got.as_ref().map(|c| (c.user.as_str(), c.password.as_str()));
            assert_eq!(got.map_err(|e| *e), expected, "{value:?}");
        }
    }

    #[test]
    /// What ends up in a log line never shows the password.
    fn debug_hides_password() {
        let c = parse("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==").unwrap();
        let shown = format!("{c:?}");
        assert!(
            shown.contains("Aladdin") && !shown.contains("sesame"),
            "{shown}"
        );
    }
}
