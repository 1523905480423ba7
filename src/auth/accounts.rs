//! Accounts from `--auth USER:PASS[:RIGHTS]` and `--auth-file FILE` (one
//! account a line, same syntax, `#` comments and blank lines ignored).
//!
//! RIGHTS is `ro` or `rw`, optionally scoped to a folder: `rw@/incoming`,
//! `ro@/photos/`. The line is read from the right: a third field is taken as
//! rights only when it is valid RIGHTS, so a password may contain `:` and a
//! crypt hash (which contains `$`, never `:`) needs no quoting. USER follows
//! RFC 7617 §2: no `:`, and here no control characters, 1 to 64 characters.
//! `htpasswd -nbB USER PASS` prints a line this file accepts (rights `ro`).
//!
//! Errors are one sentence naming the line and what is wrong; none repeats
//! a password or a hash.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::Need;
use super::password::{self, Password};

/// Longest user name, in characters.
pub const MAX_USER: usize = 64;

/// One account: who, how it proves it, what it may do where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub user: String,
    pub password: Password,
    /// `rw`: may upload; `ro`: may only read (which matters with `--private`).
    pub write: bool,
    /// Decoded path prefix ending in `/`: `/` for everything.
    pub scope: String,
}

impl Account {
    /// Whether this account may do `need` at the decoded `path`, as far as
    /// rights and scope go (the password is checked elsewhere).
    ///
    /// A folder scope `/photos/` covers `/photos/…`, and for reading also
    /// `/photos` itself, which the server redirects to `/photos/`. Writing to
    /// `/photos` would make a file *beside* the folder, outside the scope.
    pub fn allows(&self, need: Need, path: &str) -> bool {
        if need == Need::Write && !self.write {
            return false;
        }
        path.starts_with(&self.scope)
            || (need == Need::Read && self.scope.strip_suffix('/') == Some(path))
    }
}

/// A user name defined twice (by `--auth` and `--auth-file` together: the
/// file alone is checked when parsed) is refused — checked at start, before
/// anything is bound or written.
pub fn check_unique(accounts: &[Account]) -> Result<(), String> {
    for (i, a) in accounts.iter().enumerate() {
        if accounts[..i].iter().any(|b| b.user == a.user) {
            return Err(format!("user `{}` is defined twice", a.user));
        }
    }
    Ok(())
}

/// Parses one `USER:PASS[:RIGHTS]`; the error is a sentence without the
/// line number (the caller adds where it came from).
///
/// ```
/// use ranged::auth::accounts::parse_spec;
/// let a = parse_spec("cam:pa:ss:rw@/incoming").unwrap();
/// assert_eq!((a.user.as_str(), a.write, a.scope.as_str()), ("cam", true, "/incoming/"));
/// assert!(a.password.verify("pa:ss"));
/// assert!(parse_spec("nobody").is_err());
/// ```
pub fn parse_spec(spec: &str) -> Result<Account, String> {
    // Rights only when two `:` are left of them: `alice:ro` is the password `ro`.
    let (credentials, rights) = match spec.rsplit_once(':') {
        Some((head, last)) if head.contains(':') && looks_like_rights(last) => {
            (head, parse_rights(last)?)
        }
        _ => (spec, (false, "/".to_owned())),
    };
    let Some((user, pass)) = credentials.split_once(':') else {
        return Err("expected USER:PASSWORD[:RIGHTS], found no `:`".to_owned());
    };
    check_user(user)?;
    let password = password::parse(pass).map_err(str::to_owned)?;
    let (write, scope) = rights;
    Ok(Account {
        user: user.to_owned(),
        password,
        write,
        scope,
    })
}

fn looks_like_rights(field: &str) -> bool {
    matches!(field.get(..2), Some("ro" | "rw"))
        && matches!(field.as_bytes().get(2), None | Some(b'@'))
}

/// `ro`, `rw`, `ro@/scope`, `rw@/scope` → (write, scope ending in `/`).
fn parse_rights(field: &str) -> Result<(bool, String), String> {
    let write = field.starts_with("rw");
    let scope = match field.get(3..) {
        None => return Ok((write, "/".to_owned())),
        Some(scope) => scope,
    };
    let which = if write { "rw@" } else { "ro@" };
    let Some(inner) = scope.strip_prefix('/') else {
        return Err(format!("the scope after `{which}` must start with `/`"));
    };
    let body = inner.strip_suffix('/').unwrap_or(inner);
    let bad_segment = |s: &str| s.is_empty() || s == "." || s == "..";
    if !inner.is_empty() && body.split('/').any(bad_segment) {
        return Err(format!(
            "the scope after `{which}` has an empty, `.` or `..` segment"
        ));
    }
    if scope.chars().any(|c| c.is_control() || c == '\\') {
        return Err(format!(
            "the scope after `{which}` contains a control character or `\\`"
        ));
    }
    let mut scope = scope.to_owned();
    if !scope.ends_with('/') {
        scope.push('/');
    }
    Ok((write, scope))
}

fn check_user(user: &str) -> Result<(), String> {
    if user.is_empty() {
        return Err("the user name is empty".to_owned());
    }
    if user.chars().count() > MAX_USER {
        return Err(format!(
            "the user name is longer than {MAX_USER} characters"
        ));
    }
    if user.chars().any(char::is_control) {
        return Err("the user name contains a control character".to_owned());
    }
    Ok(())
}

/// Parses the text of an auth file. Lines are trimmed of surrounding
/// whitespace (so `rw ` with a stray space is still rights, and CRLF files
/// work); a password cannot begin or end with a space in a file.
pub fn parse_file(text: &str) -> Result<Vec<Account>, String> {
    let mut accounts: Vec<(usize, Account)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let account = parse_spec(line).map_err(|e| format!("line {n}: {e}"))?;
        if let Some((first, _)) = accounts.iter().find(|(_, a)| a.user == account.user) {
            return Err(format!(
                "line {n}: user `{}` is already defined on line {first}",
                account.user
            ));
        }
        accounts.push((n, account));
    }
    Ok(accounts.into_iter().map(|(_, a)| a).collect())
}

/// Reads and parses an auth file. Besides the accounts, returns a warning
/// to log when the file is readable by its group or by everyone: it holds
/// passwords or hashes that can be attacked offline.
pub fn load_file(path: &Path) -> Result<(Vec<Account>, Option<String>), String> {
    let shown = path.display();
    let text = fs::read(path).map_err(|e| format!("cannot read auth file {shown}: {e}"))?;
    let text =
        String::from_utf8(text).map_err(|_| format!("auth file {shown} is not UTF-8 text"))?;
    let accounts = parse_file(&text).map_err(|e| format!("auth file {shown}, {e}"))?;
    let mode = fs::metadata(path)
        .map(|m| m.permissions().mode())
        .unwrap_or(0);
    let warning = (mode & 0o044 != 0)
        .then(|| format!("auth file {shown} is readable by other users; chmod 600 it"));
    Ok((accounts, warning))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (spec, user, password that must verify, write, scope)
    const ACCEPTED: &[(&str, &str, &str, bool, &str)] = &[
        ("alice:secret", "alice", "secret", false, "/"),
        ("alice:secret:ro", "alice", "secret", false, "/"),
        ("alice:secret:rw", "alice", "secret", true, "/"),
        ("cam:pw:rw@/incoming", "cam", "pw", true, "/incoming/"),
        ("cam:pw:rw@/incoming/", "cam", "pw", true, "/incoming/"),
        (
            "viewer:pw:ro@/photos/2024",
            "viewer",
            "pw",
            false,
            "/photos/2024/",
        ),
        ("root:pw:rw@/", "root", "pw", true, "/"),
        // `:` inside the password: only a valid final RIGHTS is split off
        ("bob:a:b:c", "bob", "a:b:c", false, "/"),
        ("bob:a:b:rw", "bob", "a:b", true, "/"),
        ("bob:pw:rwx", "bob", "pw:rwx", false, "/"),
        ("bob:pw:ro:", "bob", "pw:ro:", false, "/"),
        // two fields are always USER:PASS, even when PASS reads like rights
        ("bob:rw", "bob", "rw", false, "/"),
        ("bob:ro@/x", "bob", "ro@/x", false, "/"),
        // Unicode names and passwords, a name with a space
        ("zoë:pässwörd", "zoë", "pässwörd", false, "/"),
        ("Jane Doe:pw:ro", "Jane Doe", "pw", false, "/"),
        (
            "ünïcode:pw:rw@/dossier partagé",
            "ünïcode",
            "pw",
            true,
            "/dossier partagé/",
        ),
        // a crypt hash with rights after it (`openssl passwd -5 -salt abc pw`)
        (
            "h:$5$abc$/LKlXd6vuvdFX3oWbf2vGk3DgflzzsvOtMZsiOxqqY5:rw@/in",
            "h",
            "pw",
            true,
            "/in/",
        ),
    ];

    #[test]
    fn accepted_specs() {
        for &(spec, user, pw, write, scope) in ACCEPTED {
            let a = parse_spec(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
            assert_eq!(a.user, user, "{spec}");
            assert!(a.password.verify(pw), "{spec}: password");
            assert_eq!((a.write, a.scope.as_str()), (write, scope), "{spec}");
        }
        let name = "n".repeat(MAX_USER);
        assert!(parse_spec(&format!("{name}:pw")).is_ok());
    }

    /// (spec, what the error must say); no error may contain the password.
    const REFUSED: &[(&str, &str)] = &[
        ("", "no `:`"),
        ("justapassword", "no `:`"),
        (":pw", "user name is empty"),
        ("bob:", "password is empty"),
        ("bob::rw", "password is empty"),
        ("bo\tb:pw", "control character"),
        ("bob:pw:rw@incoming", "must start with `/`"),
        ("bob:pw:ro@", "must start with `/`"),
        ("bob:pw:rw@/a//b", "empty, `.` or `..`"),
        ("bob:pw:rw@//", "empty, `.` or `..`"),
        ("bob:pw:rw@/a/../b", "empty, `.` or `..`"),
        ("bob:pw:rw@/..", "empty, `.` or `..`"),
        ("bob:pw:rw@/./a", "empty, `.` or `..`"),
        ("bob:pw:rw@/a\\b", "control character or `\\`"),
        (
            "bob:$1$abc$Kb85XxsXB.VXinPhbS4431:rw",
            "not a supported hash",
        ),
        ("bob:$6$trunc:rw", "malformed"),
    ];

    #[test]
    fn refused_specs() {
        for &(spec, says) in REFUSED {
            let err = parse_spec(spec).expect_err(spec);
            assert!(err.contains(says), "{spec}: {err}");
            assert!(
                !err.contains("pw") && !err.contains("Kb85"),
                "{spec}: {err}"
            );
        }
        let name = "n".repeat(MAX_USER + 1);
        assert!(
            parse_spec(&format!("{name}:pw"))
                .unwrap_err()
                .contains("64")
        );
    }

    #[test]
    /// Scopes limit both reading and writing; `ro` never writes.
    fn rights_and_scopes() {
        let cam = parse_spec("cam:pw:rw@/incoming").unwrap();
        let viewer = parse_spec("v:pw:ro@/photos/").unwrap();
        let admin = parse_spec("a:pw:rw").unwrap();
        let rows: &[(&Account, Need, &str, bool)] = &[
            (&cam, Need::Write, "/incoming/a.jpg", true),
            (&cam, Need::Write, "/incoming/", true),
            (&cam, Need::Write, "/incoming/deep/er/a.jpg", true),
            (&cam, Need::Write, "/incoming", false),
            (&cam, Need::Write, "/incomingx/a.jpg", false),
            (&cam, Need::Write, "/a.jpg", false),
            (&cam, Need::Read, "/incoming", true),
            (&cam, Need::Read, "/incoming/a.jpg", true),
            (&cam, Need::Read, "/other/a.jpg", false),
            (&viewer, Need::Read, "/photos/cat.jpg", true),
            (&viewer, Need::Write, "/photos/cat.jpg", false),
            (&viewer, Need::Read, "/photos2/cat.jpg", false),
            (&admin, Need::Write, "/anything/at/all", true),
            (&admin, Need::Read, "/", true),
        ];
        for &(account, need, path, allowed) in rows {
            assert_eq!(
                account.allows(need, path),
                allowed,
                "{} {need:?} {path}",
                account.user
            );
        }
    }

    #[test]
    /// Files: comments, blank lines, CRLF and stray spaces are fine; errors
    /// name the line; a user defined twice is an error.
    fn files() {
        let text =
            "# accounts\r\n\r\nalice:one:rw\r\n   # indented comment\n  bob:two:ro@/pub  \n\t\n";
        let accounts = parse_file(text).unwrap();
        assert_eq!(accounts.len(), 2);
        assert!(accounts[0].write && accounts[0].password.verify("one"));
        assert_eq!(
            (accounts[1].user.as_str(), accounts[1].scope.as_str()),
            ("bob", "/pub/")
        );

        let err = parse_file("# x\nalice:one\n\nbroken-line-secret\n").unwrap_err();
        assert_eq!(err, "line 4: expected USER:PASSWORD[:RIGHTS], found no `:`");
        let err = parse_file("alice:one\nbob:two\nalice:three:rw\n").unwrap_err();
        assert_eq!(err, "line 3: user `alice` is already defined on line 1");
        assert_eq!(parse_file("# only comments\n\n").unwrap(), Vec::new());
    }

    #[test]
    /// A file others can read loads, with a warning naming it; 0600 loads
    /// without one; a missing file is an error naming it.
    fn load_file_permissions() {
        let tmp = crate::testing::TempDir::new();
        let dir = tmp.path();
        let path = dir.join("users");
        fs::write(&path, "alice:one:rw\n").unwrap();
        for (mode, warns) in [
            (0o644, true),
            (0o640, true),
            (0o604, true),
            (0o600, false),
            (0o400, false),
        ] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            let (accounts, warning) = load_file(&path).unwrap();
            assert_eq!(accounts.len(), 1);
            assert_eq!(warning.is_some(), warns, "{mode:o}");
            if let Some(w) = warning {
                assert!(w.contains("users") && w.contains("chmod 600"), "{w}");
            }
        }
        fs::write(&path, "alice:one:rw\nbob:$6$x:rw\n").unwrap();
        let err = load_file(&path).unwrap_err();
        assert!(
            err.contains("users, line 2:") && err.contains("malformed"),
            "{err}"
        );
        let err = load_file(&dir.join("absent")).unwrap_err();
        assert!(
            err.contains("cannot read auth file") && err.contains("absent"),
            "{err}"
        );
    }
}
