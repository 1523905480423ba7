//! `ranged link`: prints a capability link for a path, made with the
//! server's secret (created on first use). The token is the only secret in
//! the URL; anyone holding the URL has the rights it names until it expires.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::token::{self, Rights, Secret};

pub const USAGE: &str = "\
Usage: ranged link [--read] [--write] [--pin] [--expires DURATION] [--url BASE]
                   [--state-dir PATH | --dir DIR] PATH

Prints a URL that grants access to PATH (a file, or a folder and all below
it) without an account, until it expires.

Options:
      --read              the link may download and list [default]
      --write             the link may upload; alone, a write-only \"drop link\"
      --pin               for a file: only this version of it (the link fails
                          once the file changes, so no resume can splice)
      --expires DURATION  90s, 30m, 24h or 7d [default: 24h]
      --url BASE          how clients reach the server [default: http://localhost:8080]
      --dir DIR           the folder the server serves [default: .]
      --state-dir PATH    where the link secret is kept [default: DIR/.ranged]
  -h, --help              print this help

Deleting STATE-DIR/secret revokes every link made so far.
";

/// What the arguments ask for.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    rights: Rights,
    expires: Duration,
    base: String,
    dir: PathBuf,
    state_dir: PathBuf,
    path: String,
    pin: bool,
}

/// `90s`, `30m`, `24h`, `7d`: a whole number, at least 1, and a unit.
fn duration(v: &str) -> Option<Duration> {
    let unit = match v.as_bytes().last()? {
        b's' => 1,
        b'm' => 60,
        b'h' => 3600,
        b'd' => 86_400,
        _ => return None,
    };
    let digits = &v[..v.len() - 1];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    (n > 0).then_some(Duration::from_secs(n.checked_mul(unit)?))
}

/// A decoded path as a link scope: starts with `/`, no empty, `.` or `..`
/// segment, no control character or `\` (the forms `fs_path::decode` never
/// produces, so no request could match them).
fn check_path(path: &str) -> Result<(), String> {
    let Some(inner) = path.strip_prefix('/') else {
        return Err(format!("PATH '{path}' must start with '/'"));
    };
    let body = inner.strip_suffix('/').unwrap_or(inner);
    let bad = |s: &str| s.is_empty() || s == "." || s == "..";
    if (!inner.is_empty() && body.split('/').any(bad))
        || path.chars().any(|c| c.is_control() || c == '\\')
    {
        return Err(
            "PATH must be a clean path: no '//', '.', '..', '\\' or control characters".to_owned(),
        );
    }
    Ok(())
}

fn parse<I: IntoIterator<Item = OsString>>(args: I) -> Result<Option<Request>, String> {
    let (mut read, mut write, mut pin) = (false, false, false);
    let mut expires = Duration::from_secs(24 * 3600);
    let mut base = "http://localhost:8080".to_owned();
    let (mut dir, mut state_dir, mut path) = (None, None, None);
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let arg = arg
            .into_string()
            .map_err(|_| "arguments must be UTF-8".to_owned())?;
        if !arg.starts_with("--") && arg != "-h" {
            if path.replace(arg).is_some() {
                return Err("only one PATH per link".to_owned());
            }
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (arg, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next().and_then(|v| v.into_string().ok()))
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(None),
            "--read" => read = true,
            "--write" => write = true,
            "--pin" => pin = true,
            "--expires" => {
                let v = value()?;
                expires = duration(&v).ok_or_else(|| {
                    format!("--expires: '{v}' is not a duration like 90s, 30m, 24h or 7d")
                })?;
            }
            "--url" => {
                let v = value()?;
                if !(v.starts_with("http://") || v.starts_with("https://")) {
                    return Err(format!("--url: '{v}' must start with http:// or https://"));
                }
                base = v.trim_end_matches('/').to_owned();
            }
            "--dir" => dir = Some(PathBuf::from(value()?)),
            "--state-dir" => state_dir = Some(PathBuf::from(value()?)),
            _ => return Err(format!("unknown option '{name}'")),
        }
        if inline.is_some() && matches!(name.as_str(), "--read" | "--write" | "--pin") {
            return Err(format!("{name} takes no value"));
        }
    }
    let path = path.ok_or("PATH is missing (e.g. /photos/ or /incoming/)")?;
    check_path(&path)?;
    let dir = dir.unwrap_or_else(|| PathBuf::from("."));
    let state_dir = state_dir.unwrap_or_else(|| default_state_dir(&dir));
    Ok(Some(Request {
        rights: Rights {
            read: read || !write,
            write,
        },
        expires,
        base,
        dir,
        state_dir,
        path,
        pin,
    }))
}

/// The URL and the sentence saying what it grants.
fn make(req: &Request, secret: &Secret, now: SystemTime) -> Result<(String, String), String> {
    let until = now + req.expires;
    if u64::from(token::unix_seconds(until)) >= u64::from(u32::MAX) {
        return Err("--expires: links cannot outlive the year 2106".to_owned());
    }
    let mut scope = req.path.clone();
    // `/photos` naming a folder: the link covers what is inside it.
    if !scope.ends_with('/') && req.dir.join(&scope[1..]).is_dir() {
        scope.push('/');
    }
    let t = token::sign(secret, &scope, req.rights, until);
    let mut url = format!(
        "{}{}?token={t}",
        req.base,
        crate::fs_path::encode_path(&scope)
    );
    if req.pin {
        // The version pin is the inside of the file's ETag as the server
        // computes it (docs/semantics.md §1: size, mtime in ns, inode).
        let file = req.dir.join(&scope[1..]);
        let meta = std::fs::metadata(&file)
            .ok()
            .filter(|m| m.is_file())
            .ok_or_else(|| format!("--pin: {} is not a file", file.display()))?;
        let mut buf = [0u8; crate::validators::ETAG_MAX];
        let etag = crate::validators::etag_of(&mut buf, &meta);
        url.push_str("&v=");
        url.push_str(etag.trim_matches('"'));
    }
    let what = match (req.rights.read, req.rights.write) {
        (true, true) => "read and write access",
        (false, true) => "upload-only access (no listing or download)",
        _ => "read access",
    };
    let where_ = if scope.ends_with('/') {
        format!("{scope} and everything below it")
    } else {
        scope
    };
    let date = httpdate::fmt_http_date(until).replace(" GMT", " UTC");
    Ok((url, format!("grants {what} to {where_} until {date}")))
}

/// `ranged link …`: prints the URL on stdout and what it grants on stderr.
/// Returns the exit code: 0, 1 (the secret cannot be read or made), 2 (bad
/// arguments).
pub fn link_command<I: IntoIterator<Item = OsString>>(args: I) -> i32 {
    let req = match parse(args) {
        Ok(Some(req)) => req,
        Ok(None) => {
            print!("{USAGE}");
            return 0;
        }
        Err(e) => {
            eprintln!("ranged link: {e}\nTry 'ranged link --help' for more information.");
            return 2;
        }
    };
    let secret = match Secret::load_or_create(&req.state_dir) {
        Ok(s) => s,
        Err(e) => {
            let shown = req.state_dir.join(Secret::FILE);
            eprintln!(
                "ranged link: cannot read or create {}: {e}",
                shown.display()
            );
            return 1;
        }
    };
    match make(&req, &secret, SystemTime::now()) {
        Ok((url, grant)) => {
            println!("{url}");
            eprintln!("{grant}");
            0
        }
        Err(e) => {
            eprintln!("ranged link: {e}");
            2
        }
    }
}

/// The state folder a server serving `dir` reads the secret from, when not
/// given: `DIR/.ranged`.
pub fn default_state_dir(dir: &Path) -> PathBuf {
    dir.join(crate::fs_path::RESERVED)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn args(s: &str) -> Vec<OsString> {
        s.split_whitespace().map(OsString::from).collect()
    }

    /// `--pin` adds the file's version as the server names it: the link
    /// answers only while the file is unchanged.
    #[test]
    fn pinned_links_name_the_version() {
        let dir = crate::testing::TempDir::new();
        let f = dir.write("fw.bin", b"firmware");
        let root = dir.path().to_str().unwrap();
        let req = parse(args(&format!("--pin --dir {root} /fw.bin")))
            .unwrap()
            .unwrap();
        let secret = Secret::from_bytes([3; 32]);
        let (url, _) = make(&req, &secret, SystemTime::now()).unwrap();
        let m = std::fs::metadata(&f).unwrap();
        let mut buf = [0u8; crate::validators::ETAG_MAX];
        let etag = crate::validators::etag_of(&mut buf, &m);
        assert!(
            url.starts_with("http://localhost:8080/fw.bin?token="),
            "{url}"
        );
        assert!(
            url.ends_with(&format!("&v={}", etag.trim_matches('"'))),
            "{url}"
        );
        let folder = parse(args(&format!("--pin --dir {root} /")))
            .unwrap()
            .unwrap();
        assert!(
            make(&folder, &secret, SystemTime::now()).is_err(),
            "a folder has no version"
        );
    }

    #[test]
    fn durations() {
        let rows: &[(&str, Option<u64>)] = &[
            ("90s", Some(90)),
            ("30m", Some(1800)),
            ("24h", Some(86_400)),
            ("7d", Some(604_800)),
            ("007d", Some(604_800)),
            ("0s", None),
            ("90", None),
            ("s", None),
            ("1w", None),
            ("-5m", None),
            ("+5m", None),
            ("1.5h", None),
            ("5 m", None),
            ("99999999999999999999d", None),
            ("213503982334602d", None),
            ("", None),
            ("€", None),
        ];
        for &(v, secs) in rows {
            assert_eq!(duration(v), secs.map(Duration::from_secs), "{v}");
        }
    }

    #[test]
    /// Flags to rights and defaults: read by default, `--write` alone is a
    /// drop link, both is read and write.
    fn arguments() {
        let r = parse(args("/photos/")).unwrap().unwrap();
        assert_eq!(
            r.rights,
            Rights {
                read: true,
                write: false
            }
        );
        assert_eq!(
            (r.expires, r.base.as_str()),
            (Duration::from_secs(86_400), "http://localhost:8080")
        );
        assert_eq!(r.state_dir, PathBuf::from("./.ranged"));
        let w = parse(args("--write --expires 7d /incoming/"))
            .unwrap()
            .unwrap();
        assert_eq!(
            w.rights,
            Rights {
                read: false,
                write: true
            }
        );
        assert_eq!(w.expires, Duration::from_secs(604_800));
        let rw = parse(args(
            "--read --write --url=https://nas.lan:8443/ --dir /srv /x",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            rw.rights,
            Rights {
                read: true,
                write: true
            }
        );
        assert_eq!(rw.base, "https://nas.lan:8443");
        assert_eq!(rw.state_dir, PathBuf::from("/srv/.ranged"));
        let s = parse(args("--dir /srv --state-dir /var/lib/ranged /x"))
            .unwrap()
            .unwrap();
        assert_eq!(s.state_dir, PathBuf::from("/var/lib/ranged"));
        assert_eq!(parse(args("--help")).unwrap(), None);

        for (bad, says) in [
            ("", "PATH is missing"),
            ("/a /b", "only one PATH"),
            ("photos", "must start with '/'"),
            ("/a/../b", "clean path"),
            ("//a", "clean path"),
            ("//", "clean path"),
            ("/a//", "clean path"),
            ("/a/./b", "clean path"),
            ("--expires 1y /a", "not a duration"),
            ("--expires", "needs a value"),
            ("--url ftp://x /a", "http://"),
            ("--read=yes /a", "takes no value"),
            ("--everything /a", "unknown option"),
        ] {
            let err = parse(args(bad)).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    /// The printed URL carries the percent-encoded path and a token that
    /// verifies for it; a folder named without its slash gets one.
    fn made_links() {
        let tmp = crate::testing::TempDir::new();
        let base = tmp.path();
        std::fs::create_dir_all(base.join("photos d'été")).unwrap();
        let secret = Secret::from_bytes([9; 32]);
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let dir = base.to_str().unwrap();

        let argv = ["--dir", dir, "--url", "http://cam:8080/", "/photos d'été"];
        let req = parse(argv.map(OsString::from)).unwrap().unwrap();
        let (url, grant) = make(&req, &secret, now).unwrap();
        let prefix = "http://cam:8080/photos%20d%27%C3%A9t%C3%A9/?token=";
        assert!(url.starts_with(prefix), "{url}");
        let t = &url[prefix.len()..];
        let rights = token::verify(&secret, t, "/photos d'été/x.jpg", false, now).unwrap();
        assert_eq!(
            rights,
            Rights {
                read: true,
                write: false
            }
        );
        assert_eq!(
            grant,
            "grants read access to /photos d'été/ and everything below it until Wed, 15 Nov 2023 22:13:20 UTC"
        );

        let drop = parse(args(&format!(
            "--write --expires 90s --dir {dir} /incoming/cam1.jpg"
        )))
        .unwrap()
        .unwrap();
        let (url, grant) = make(&drop, &secret, now).unwrap();
        let t = url.split_once("?token=").unwrap().1;
        assert!(
            url.starts_with("http://localhost:8080/incoming/cam1.jpg?token="),
            "{url}"
        );
        assert!(
            token::verify(
                &secret,
                t,
                "/incoming/cam1.jpg",
                false,
                now + Duration::from_secs(89)
            )
            .is_ok()
        );
        assert!(
            token::verify(
                &secret,
                t,
                "/incoming/cam1.jpg",
                false,
                now + Duration::from_secs(90)
            )
            .is_err()
        );
        assert!(token::verify(&secret, t, "/incoming/cam2.jpg", false, now).is_err());
        assert!(
            grant.starts_with(
                "grants upload-only access (no listing or download) to /incoming/cam1.jpg until"
            ),
            "{grant}"
        );

        let far = parse(args("--expires 50000d /a")).unwrap().unwrap();
        assert!(make(&far, &secret, now).unwrap_err().contains("2106"));
    }

    #[test]
    /// The whole command: URL on success with a secret file created on
    /// first use and reused after; exit 2 on bad arguments.
    fn command() {
        let tmp = crate::testing::TempDir::new();
        let base = tmp.path();
        let dir = base.to_str().unwrap();
        assert_eq!(link_command(args(&format!("--dir {dir} /"))), 0);
        let secret = Secret::load(&default_state_dir(base)).unwrap();
        assert!(secret.is_some(), "secret made on first use");
        assert_eq!(link_command(args(&format!("--dir {dir} --write /in/"))), 0);
        assert_eq!(
            Secret::load(&default_state_dir(base)).unwrap(),
            secret,
            "secret reused"
        );
        assert_eq!(link_command(args(&format!("--dir {dir} nope"))), 2);
        let blocked = base.join("file");
        std::fs::write(&blocked, b"").unwrap();
        let state = blocked.join("state");
        assert_eq!(
            link_command(args(&format!("--state-dir {} /", state.display()))),
            1
        );
    }
}
