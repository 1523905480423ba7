//! `--user NAME`: finding an account in `/etc/passwd` and becoming it after
//! the port is bound.
//!
//! The file is read directly, not through `getpwnam(3)`: the static musl
//! binary has no NSS, so accounts that live only in LDAP, NIS or systemd's
//! dynamic users cannot be named; a numeric uid still can, if it has a line.
//! Routers and cameras keep every account in `/etc/passwd` anyway.

use std::io::Read;

/// The largest `/etc/passwd` read (a few hundred accounts take ~50 KiB).
const MAX_PASSWD: u64 = 4 << 20;

/// Finds `name_or_uid` in the text of an `/etc/passwd` and returns its
/// (uid, gid).
///
/// Lines are `name:password:uid:gid:gecos:home:shell` (passwd(5)). Comments,
/// blank lines, NIS `+`/`-` entries and lines without a numeric uid and gid
/// are skipped, as Go's `os/user` skips them. A name is looked for first;
/// an all-digit argument that names no one is a uid (chown(1)'s rule).
///
/// ```
/// use ranged::privileges::find_user;
/// let passwd = "root:x:0:0:root:/root:/bin/ash\nnobody:*:65534:65534:nobody:/var:/bin/false\n";
/// assert_eq!(find_user(passwd, "nobody"), Some((65534, 65534)));
/// assert_eq!(find_user(passwd, "0"), Some((0, 0)));
/// assert_eq!(find_user(passwd, "ftp"), None);
/// ```
pub fn find_user(passwd_text: &str, name_or_uid: &str) -> Option<(u32, u32)> {
    let entries = || passwd_text.lines().filter_map(entry);
    if let Some((_, uid, gid)) = entries().find(|&(name, _, _)| name == name_or_uid) {
        return Some((uid, gid));
    }
    let uid = number(name_or_uid)?;
    entries()
        .find(|&(_, u, _)| u == uid)
        .map(|(_, u, g)| (u, g))
}

/// One passwd(5) line as (name, uid, gid), or `None` for a line to skip.
fn entry(line: &str) -> Option<(&str, u32, u32)> {
    let mut fields = line.split(':');
    let name = fields.next()?;
    if name.is_empty() || name.starts_with(['#', '+', '-']) {
        return None;
    }
    let _password = fields.next()?;
    let uid = number(fields.next()?)?;
    let gid = number(fields.next()?)?;
    // gecos and home must be there; the shell may be empty or absent.
    fields.next()?;
    fields.next()?;
    Some((name, uid, gid))
}

/// A decimal id: digits only (no sign, no space), within u32.
fn number(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Looks `name` (or a numeric uid) up in `/etc/passwd`. `Err` is one
/// sentence for the user.
pub fn lookup(name: &str) -> Result<(u32, u32), String> {
    let mut text = String::new();
    std::fs::File::open("/etc/passwd")
        .and_then(|f| f.take(MAX_PASSWD).read_to_string(&mut text))
        .map_err(|e| format!("--user {name}: cannot read /etc/passwd: {e}"))?;
    find_user(&text, name).ok_or_else(|| {
        format!(
            "--user {name}: no such user in /etc/passwd (accounts from LDAP or NIS cannot be used)"
        )
    })
}

/// Becomes the user `name` for good: looks it up, refuses root, drops the
/// supplementary groups, the group and the user (`sys::drop_privileges`),
/// then checks that root is really gone. Call once, after binding the port
/// and before any thread starts (`setuid(2)` in a threaded process relies
/// on the C library to change every thread).
pub fn drop_to(name: &str) -> Result<(), String> {
    let (uid, gid) = lookup(name)?;
    if uid == 0 {
        return Err(format!(
            "--user {name}: that is root, which would keep every privilege; name an unprivileged account"
        ));
    }
    if !crate::sys::is_root() {
        return Err(format!(
            "--user {name}: only a server started as root can change its user"
        ));
    }
    crate::sys::drop_privileges(uid, gid)
        .map_err(|e| format!("--user {name}: cannot become uid {uid}, gid {gid}: {e}"))?;
    if crate::sys::is_root() {
        return Err(format!("--user {name}: still root after changing user"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "\
# /etc/passwd on a router
root:x:0:0:root:/root:/bin/ash
daemon:*:1:1:daemon:/var:/bin/false
ftp:*:55:55:ftp:/home/ftp:/bin/false
network:*:101:101:network:/var:/bin/false
nobody:*:65534:65534:nobody:/var:/bin/false

  indented:x:7:7::/:/bin/sh
+nisuser::::::
-blocked:x:8:8::/:
broken:x:notanumber:9::/:/bin/sh
short:x:10
negative:x:-5:5::/:/bin/sh
spaced:x: 11:11::/:/bin/sh
huge:x:4294967296:1::/:/bin/sh
noshell:x:12:13:No Shell:/home/noshell:
noshellfield:x:14:15:gecos:/home/x
1000:x:1001:1002::/home/numeric:/bin/sh
dup:x:20:20::/:/bin/sh
dup:x:21:21::/:/bin/sh
dupuid:x:1:99::/:/bin/sh
wide:x:4294967295:4294967295::/:/bin/sh
dos:x:30:31::/:/bin/sh\r
";

    #[test]
    fn lookups() {
        const CASES: &[(&str, Option<(u32, u32)>)] = &[
            ("root", Some((0, 0))),
            ("nobody", Some((65534, 65534))),
            ("ftp", Some((55, 55))),
            ("noshell", Some((12, 13))),
            ("noshellfield", Some((14, 15))),
            ("wide", Some((u32::MAX, u32::MAX))),
            // A uid: the first line that has it.
            ("101", Some((101, 101))),
            ("65534", Some((65534, 65534))),
            ("1", Some((1, 1))),
            // A name made of digits wins over the uid it spells.
            ("1000", Some((1001, 1002))),
            ("1001", Some((1001, 1002))),
            // The first of two lines with one name, as getpwnam(3) finds it.
            ("dup", Some((20, 20))),
            ("dos", Some((30, 31))),
            // Not there, or only on skipped lines.
            ("ftpx", None),
            ("Root", None),
            ("", None),
            ("indented", None),
            ("+nisuser", None),
            ("nisuser", None),
            ("blocked", None),
            ("-blocked", None),
            ("broken", None),
            ("short", None),
            ("negative", None),
            ("spaced", None),
            ("huge", None),
            ("# /etc/passwd on a router", None),
            ("4242", None),
            ("-5", None),
            ("+0", None),
            ("4294967296", None),
            ("root:x", None),
        ];
        for &(arg, want) in CASES {
            assert_eq!(find_user(PASSWD, arg), want, "{arg:?}");
        }
    }

    #[test]
    fn empty_and_garbage_files() {
        for text in ["", "\n\n", ":::::::", "\u{0}\u{ff}", "root"] {
            assert_eq!(find_user(text, "root"), None, "{text:?}");
            assert_eq!(find_user(text, "0"), None, "{text:?}");
        }
    }

    #[test]
    fn root_is_refused_before_anything_changes() {
        // Every Linux system has uid 0 in /etc/passwd; refusing it must not
        // depend on running as root or touch the process's credentials.
        let before = crate::sys::is_root();
        for name in ["root", "0"] {
            let e = drop_to(name).unwrap_err();
            assert!(e.contains("that is root"), "{e}");
        }
        assert_eq!(crate::sys::is_root(), before);
        let e = drop_to("no-such-user-ranged").unwrap_err();
        assert!(e.contains("no such user in /etc/passwd"), "{e}");
    }
}
