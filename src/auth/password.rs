//! Stored passwords: plain text, SHA-crypt (`$6$`, `$5$`: `/etc/shadow`,
//! `openssl passwd -6`/`-5`, `mkpasswd -m sha-512`) and bcrypt (`$2y$`,
//! `$2b$`, `$2a$`: `htpasswd -B`). [`parse`] checks the stored form once at
//! start; [`Password::verify`] checks what a client sent, in constant time.
//!
//! A field that starts with `$` is always a hash: an unknown or malformed one
//! (`$1$` MD5-crypt, `$apr1$`, `$y$` yescrypt, a truncated paste) is refused
//! at start and never compared as plain text, so a mistake cannot turn a hash
//! into a password anyone who can read the file may type.
//!
//! Measured on the 2-core x86_64 build machine (shared; two runs of 7,
//! medians within 5 % of each other), release build; ARM boards are several
//! times slower:
//!
//! | stored form                              | one verification |
//! |------------------------------------------|------------------|
//! | plain                                    | 0.3 µs           |
//! | `$5$`, 5000 rounds (default)             | 0.55 ms          |
//! | `$6$`, 5000 rounds (default)             | 1.1 ms           |
//! | `$6$`, 5000 rounds, 256-byte password    | 4.9 ms           |
//! | `$2y$`, cost 5 (`htpasswd -B` default)   | 1.9 ms           |
//! | `$2y$`, cost 10                          | 56 ms            |
//!
//! which is why verified credentials are cached (`cache.rs`: a whole
//! decision on a cache hit takes 0.4 µs) and failures throttled
//! (`throttle.rs`).

use std::io::{self, BufRead, Read, Write};

use hmac::{KeyInit, Mac};
use sha_crypt::{PasswordHasher, PasswordVerifier, ShaCrypt};
use sha2::Sha256;

type HmacSha256 = hmac::Hmac<Sha256>;

/// Longer passwords are refused at start and never verified. SHA-crypt
/// hashes the password once per byte of itself and three times per round,
/// so its cost grows with the square of the length: 256 bytes costs 4.4
/// times a short password (table above); 8 KiB (a whole header) would
/// cost hundreds of milliseconds a guess. bcrypt reads only the first 72
/// bytes anyway.
pub const MAX_PASSWORD: usize = 256;

/// SHA-crypt `rounds=` and bcrypt cost above these are refused: every login
/// would take seconds on the boards ranged runs on (`$6$` at 1 000 000
/// rounds: 0.24 s here; bcrypt cost 17, `htpasswd`'s own maximum: 7 s here).
const MAX_ROUNDS: u32 = 1_000_000;
const MAX_BCRYPT_COST: u32 = 17;

/// Key of the digest under which plain passwords are kept: comparing two
/// fixed-size MACs with the `hmac` crate's constant-time check means neither
/// the length nor a common prefix of the password shows in the timing.
const PLAIN_KEY: &[u8] = b"ranged plain password";

/// A stored password, checked at start.
#[derive(Clone, PartialEq, Eq)]
pub enum Password {
    /// HMAC-SHA-256 of the plain text under [`PLAIN_KEY`].
    Plain([u8; 32]),
    /// `$5$…` or `$6$…`, as written.
    ShaCrypt(String),
    /// `$2y$…`, `$2b$…` or `$2a$…`, as written.
    Bcrypt(String),
}

/// Never prints the password or its hash (it goes into `Account`'s Debug).
impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Password::Plain(_) => "Plain(..)",
            Password::ShaCrypt(_) => "ShaCrypt(..)",
            Password::Bcrypt(_) => "Bcrypt(..)",
        })
    }
}

/// Reads the password field of an account. The error is one sentence that
/// never repeats the field.
///
/// ```
/// use ranged::auth::password::{parse, Password};
/// assert!(matches!(parse("secret"), Ok(Password::Plain(_))));
/// assert!(parse("$1$salt$hash").is_err());
/// ```
pub fn parse(field: &str) -> Result<Password, &'static str> {
    if field.is_empty() {
        return Err("the password is empty");
    }
    if !field.starts_with('$') {
        if field.len() > MAX_PASSWORD {
            return Err("the password is longer than 256 bytes");
        }
        return Ok(Password::Plain(plain_tag(field.as_bytes())));
    }
    if field.starts_with("$6$") || field.starts_with("$5$") {
        check_sha_crypt(field)?;
        return Ok(Password::ShaCrypt(field.to_owned()));
    }
    match field.get(..4) {
        Some("$2y$" | "$2b$" | "$2a$") => {
            check_bcrypt(field)?;
            Ok(Password::Bcrypt(field.to_owned()))
        }
        _ => Err(
            "the password starts with `$` but is not a supported hash ($6$, $5$, $2y$, $2b$ or \
             $2a$: make one with `ranged hash-password`, `openssl passwd -6` or `htpasswd -nB`)",
        ),
    }
}

/// `$5$[rounds=N$]salt$hash` / `$6$…`, the layout `sha-crypt` verifies,
/// checked here so that a bad paste is an error at start and not a login
/// that never succeeds.
fn check_sha_crypt(field: &str) -> Result<(), &'static str> {
    const BAD: &str = "the password looks like a SHA-crypt hash but is malformed";
    let (hash_len, rest) = match field.split_at_checked(3) {
        Some(("$6$", rest)) => (86, rest),
        Some((_, rest)) => (43, rest),
        None => return Err(BAD),
    };
    let mut fields: Vec<&str> = rest.split('$').collect();
    if let Some(rounds) = fields.first().and_then(|f| f.strip_prefix("rounds=")) {
        // glibc clamps rounds to 1000..=999999999 and writes the clamped
        // value, so anything outside that range was not made by a real tool.
        match rounds.parse::<u32>() {
            Ok(n) if (1000..=MAX_ROUNDS).contains(&n) => {}
            Ok(n) if (1000..=999_999_999).contains(&n) => {
                return Err(
                    "the hash has more than 1000000 rounds: every login would take seconds",
                );
            }
            _ => return Err(BAD),
        }
        fields.remove(0);
    }
    let [salt, hash] = fields[..] else {
        return Err(BAD);
    };
    let crypt64 = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/')
    };
    if salt.is_empty() || !crypt64(salt) || hash.len() != hash_len || !crypt64(hash) {
        return Err(BAD);
    }
    sha_crypt::PasswordHashRef::new(field).map_err(|_| BAD)?;
    Ok(())
}

/// `$2y$NN$` + 22 characters of salt + 31 of hash, bcrypt's own base64.
fn check_bcrypt(field: &str) -> Result<(), &'static str> {
    const BAD: &str = "the password looks like a bcrypt hash but is malformed";
    let b = field.as_bytes();
    if b.len() != 60 || b[6] != b'$' {
        return Err(BAD);
    }
    let cost: u32 = field.get(4..6).and_then(|c| c.parse().ok()).ok_or(BAD)?;
    if !(4..=31).contains(&cost) {
        return Err(BAD);
    }
    if cost > MAX_BCRYPT_COST {
        return Err("the bcrypt cost is above 17: every login would take seconds");
    }
    if !b[7..]
        .iter()
        .all(|&c| c.is_ascii_alphanumeric() || c == b'.' || c == b'/')
    {
        return Err(BAD);
    }
    Ok(())
}

fn plain_tag(password: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(PLAIN_KEY).expect("HMAC takes keys of any length");
    mac.update(password);
    mac.finalize().into_bytes().into()
}

impl Password {
    /// A crypt hash, whose verification costs what the table above says
    /// (plain text costs nothing).
    pub fn is_hash(&self) -> bool {
        !matches!(self, Password::Plain(_))
    }

    /// Whether `candidate` is this password. Constant time in the password
    /// for plain text; the hashes compare their outputs in constant time.
    /// A candidate longer than [`MAX_PASSWORD`] is refused without hashing.
    pub fn verify(&self, candidate: &str) -> bool {
        let candidate = candidate.as_bytes();
        if candidate.len() > MAX_PASSWORD {
            return false;
        }
        match self {
            Password::Plain(tag) => {
                let mut mac =
                    HmacSha256::new_from_slice(PLAIN_KEY).expect("HMAC takes keys of any length");
                mac.update(candidate);
                mac.verify_slice(tag).is_ok()
            }
            Password::ShaCrypt(hash) => ShaCrypt::default()
                .verify_password(candidate, hash.as_str())
                .is_ok(),
            Password::Bcrypt(hash) => bcrypt::verify(candidate, hash).unwrap_or(false),
        }
    }
}

/// A `$6$` hash of `password` with a 16-character random salt (12 bytes from
/// the kernel) and the default 5000 rounds, as `openssl passwd -6` makes.
///
/// # Errors
///
/// When `/dev/urandom` cannot be read, or the password is refused by
/// [`parse`]'s rules (empty, longer than [`MAX_PASSWORD`]).
pub fn hash_password(password: &str) -> io::Result<String> {
    if password.is_empty() || password.len() > MAX_PASSWORD {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the password must be 1 to 256 bytes long",
        ));
    }
    let salt = crate::random::bytes::<12>()?;
    let hash = ShaCrypt::SHA512
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map_err(|_| io::Error::other("SHA-crypt refused the password"))?;
    Ok(hash.as_str().to_owned())
}

/// `ranged hash-password`: reads one line (the password, without its line
/// end) from `stdin`, prints its `$6$` hash on `stdout`. The password never
/// goes through argv, which every local user can read in `/proc`.
/// Returns the exit code: 0, 1 (I/O), 2 (empty or too long).
pub fn hash_password_command(stdin: impl Read, mut stdout: impl Write) -> i32 {
    let mut line = String::new();
    let limit = (MAX_PASSWORD + 3) as u64;
    if let Err(e) = io::BufReader::new(stdin.take(limit)).read_line(&mut line) {
        eprintln!("ranged: cannot read the password from stdin: {e}");
        return 1;
    }
    let password = line
        .strip_suffix('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .unwrap_or(&line);
    if password.is_empty() {
        eprintln!("ranged: the password is empty; type it on stdin, then Enter");
        return 2;
    }
    if password.len() > MAX_PASSWORD {
        eprintln!("ranged: the password is longer than 256 bytes");
        return 2;
    }
    match hash_password(password).and_then(|h| writeln!(stdout, "{h}")) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("ranged: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made by the tools named in each row (their output pasted as is), and
    /// the password each was made from.
    const VECTORS: &[(&str, &str, &str)] = &[
        (
            "openssl passwd -6 -salt saltsaltsalt pw",
            "$6$saltsaltsalt$8Rl8SaMtA6lI/8fUYIU6MgNuNmR.yspkchAY1VV2x7qmA5rvOoKx72usRd2qb6YfWv/SPjcHURfWLAS4ukU2L/",
            "pw",
        ),
        (
            "openssl passwd -5 -salt abc pw",
            "$5$abc$/LKlXd6vuvdFX3oWbf2vGk3DgflzzsvOtMZsiOxqqY5",
            "pw",
        ),
        (
            "mkpasswd -m sha-512 pw",
            "$6$iamczxsnDvqfsiT/$9S6TJWTo90/JjnHcvgpivcEr5CK0eQDmCzIqn8Bu2SRjWcto4.X9PcSQT.gSR.HQOBHTN8CM/GCYu1N4xMvXu.",
            "pw",
        ),
        (
            "mkpasswd -m sha-256 -R 10000 pw",
            "$5$rounds=10000$GVl3dBwLuEQBa87U$GfNtkiDXbiDlsPVQqRassHMRX8A2EXYxOF/NahT/kJ.",
            "pw",
        ),
        (
            "htpasswd -nbB u pw (cost 5)",
            "$2y$05$NmS5W.Zx2St4CG04wVRXw.I5IZgmmO0YD3KfxbZ2IuRrTvgJl1.5S",
            "pw",
        ),
        (
            "mkpasswd -m bcrypt pw",
            "$2b$05$1UtKrcxFTCPNX8beUVBVJ.O/Lwm0ER6AHxOSBGfUvdhK/yTYsnhTO",
            "pw",
        ),
        (
            "mkpasswd -m bcrypt-a 'pässwörd with spaces'",
            "$2a$05$TMvkJ7wJ3spr/KO9em7WJu2P2/3JJf3drDM98k3WUOKnOd29T7wze",
            "pässwörd with spaces",
        ),
        (
            "openssl passwd -6 -salt 0123456789abcdef 'a:b:c$'",
            "$6$0123456789abcdef$jmCl5WiWqGTgStCszsQF4AHqUQZW36mNJbRxs0HSxNVQzAwfF844iN/mKXmB/HX2QurilmKcUJriXtWsiVB210",
            "a:b:c$",
        ),
    ];

    #[test]
    /// Hashes made by openssl, mkpasswd and htpasswd log in with their
    /// password, and only with it.
    fn tool_vectors() {
        for &(tool, hash, pw) in VECTORS {
            let stored = parse(hash).unwrap_or_else(|e| panic!("{tool}: {e}"));
            assert!(stored.verify(pw), "{tool}: right password refused");
            assert!(!stored.verify("pW"), "{tool}: wrong password accepted");
            assert!(!stored.verify(""), "{tool}: empty password accepted");
        }
    }

    /// Stored fields refused at start: (field, what the error must say).
    const REFUSED: &[(&str, &str)] = &[
        ("", "empty"),
        // openssl passwd -1, openssl passwd -apr1 (htpasswd's default),
        // mkpasswd's default (yescrypt)
        ("$1$abc$Kb85XxsXB.VXinPhbS4431", "not a supported hash"),
        ("$apr1$abc$NKxAkoTtUloZMd1uGIvNG0", "not a supported hash"),
        (
            "$y$j9T$1THpUSDyes8YHzsmvc86J0$2Fig2APICEBD.2uMGuvw5v8FR5a2ZJyHGAaDGPXhe03",
            "not a supported hash",
        ),
        (
            "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
            "not a supported hash",
        ),
        ("$", "not a supported hash"),
        ("$ecret", "not a supported hash"),
        // truncated pastes
        ("$6$saltsaltsalt$8Rl8SaMtA6lI", "malformed"),
        ("$6$saltsaltsalt", "malformed"),
        ("$6$", "malformed"),
        (
            "$5$abc$/LKlXd6vuvdFX3oWbf2vGk3DgflzzsvOtMZsiOxqqY",
            "malformed",
        ),
        (
            "$2y$05$NmS5W.Zx2St4CG04wVRXw.I5IZgmmO0YD3KfxbZ2IuRrTvgJl1.5",
            "malformed",
        ),
        // rounds glibc would never write, and rounds that cost seconds
        (
            "$5$rounds=999$GVl3dBwLuEQBa87U$GfNtkiDXbiDlsPVQqRassHMRX8A2EXYxOF/NahT/kJ.",
            "malformed",
        ),
        (
            "$5$rounds=x$GVl3dBwLuEQBa87U$GfNtkiDXbiDlsPVQqRassHMRX8A2EXYxOF/NahT/kJ.",
            "malformed",
        ),
        (
            "$5$rounds=5000000$GVl3dBwLuEQBa87U$GfNtkiDXbiDlsPVQqRassHMRX8A2EXYxOF/NahT/kJ.",
            "1000000 rounds",
        ),
        (
            "$2y$18$NmS5W.Zx2St4CG04wVRXw.I5IZgmmO0YD3KfxbZ2IuRrTvgJl1.5S",
            "above 17",
        ),
        (
            "$2y$03$NmS5W.Zx2St4CG04wVRXw.I5IZgmmO0YD3KfxbZ2IuRrTvgJl1.5S",
            "malformed",
        ),
        (
            "$2y$1x$NmS5W.Zx2St4CG04wVRXw.I5IZgmmO0YD3KfxbZ2IuRrTvgJl1.5S",
            "malformed",
        ),
        (
            "$2y$05$NmS5W.Zx2St4CG04wVRXw.I5IZgmmO0YD3KfxbZ2IuRrTvgJl1.5€",
            "malformed",
        ),
        // `$2x$` is the buggy pre-2011 variant: never written by htpasswd
        (
            "$2x$05$NmS5W.Zx2St4CG04wVRXw.I5IZgmmO0YD3KfxbZ2IuRrTvgJl1.5S",
            "not a supported hash",
        ),
    ];

    #[test]
    /// A bad stored field stops the start with a sentence saying why, which
    /// never contains the field; nothing starting with `$` becomes plain text.
    fn refused_fields() {
        for &(field, says) in REFUSED {
            let err = parse(field).expect_err(field);
            assert!(err.contains(says), "{field}: {err}");
            if field.len() > 4 {
                assert!(!err.contains(&field[4..]), "{field}: error echoes it");
            }
        }
        let long = "x".repeat(MAX_PASSWORD + 1);
        assert!(parse(&long).unwrap_err().contains("256"));
        assert!(parse(&long[1..]).is_ok());
    }

    #[test]
    /// Plain passwords: exact bytes, no prefix or case slack, no length
    /// beyond the limit.
    fn plain_passwords() {
        let stored = parse("sécret").unwrap();
        assert!(stored.verify("sécret"));
        for wrong in ["secret", "sécre", "sécrett", "SÉCRET", "", " sécret"] {
            assert!(!stored.verify(wrong), "{wrong}");
        }
        let long = "y".repeat(MAX_PASSWORD);
        assert!(parse(&long).unwrap().verify(&long));
        let longer = "y".repeat(MAX_PASSWORD + 1);
        assert!(!parse(&long).unwrap().verify(&longer));
    }

    #[test]
    /// `ranged hash-password` prints a `$6$` hash that verifies, with a fresh
    /// 16-character salt each time; an empty line is refused.
    fn hash_password_command_output() {
        let mut out = Vec::new();
        assert_eq!(hash_password_command(&b"hunter2\r\n"[..], &mut out), 0);
        let first = String::from_utf8(out).unwrap();
        let hash = first.trim_end();
        assert!(first.ends_with('\n') && hash.starts_with("$6$"), "{first}");
        let salt = hash
            .split('$')
            .find(|f| !f.is_empty() && *f != "6" && !f.starts_with("rounds="));
        assert_eq!(salt.map(str::len), Some(16), "{hash}");
        let stored = parse(hash).unwrap();
        assert!(stored.verify("hunter2") && !stored.verify("hunter2\r"));

        let mut again = Vec::new();
        assert_eq!(hash_password_command(&b"hunter2"[..], &mut again), 0);
        assert_ne!(first.as_bytes(), &again[..], "same salt twice");

        for empty in [&b""[..], b"\n", b"\r\n"] {
            let mut out = Vec::new();
            assert_eq!(hash_password_command(empty, &mut out), 2);
            assert!(out.is_empty());
        }
        let mut out = Vec::new();
        let long = format!("{}\n", "z".repeat(MAX_PASSWORD + 1));
        assert_eq!(hash_password_command(long.as_bytes(), &mut out), 2);
    }

    /// Runs `program args`, feeding nothing, and returns its stdout; panics
    /// (fails the test) when the tool is missing: CI installs `openssl`,
    /// `apache2-utils` (htpasswd) and `whois` (mkpasswd).
    fn run(program: &str, args: &[&str]) -> String {
        let out = std::process::Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!("{program} is needed for this test (apt-get install openssl apache2-utils whois): {e}")
            });
        assert!(out.status.success(), "{program} {args:?} failed");
        String::from_utf8(out.stdout).unwrap().trim_end().to_owned()
    }

    #[test]
    /// Fresh hashes from the real tools, with random salts, verify.
    fn fresh_tool_hashes() {
        let pw = "tool test: ü $x";
        let made = [
            run("openssl", &["passwd", "-6", pw]),
            run("openssl", &["passwd", "-5", pw]),
            run("openssl", &["passwd", "-6", "-salt", "ab./AB09", pw]),
            run("mkpasswd", &["-m", "sha-512", pw]),
            run("mkpasswd", &["-m", "sha-256", "-R", "2000", pw]),
            run("mkpasswd", &["-m", "bcrypt", pw]),
            run("htpasswd", &["-nbB", "-C", "4", "u", pw])
                .trim_start_matches("u:")
                .to_owned(),
        ];
        for hash in &made {
            let stored = parse(hash).unwrap_or_else(|e| panic!("{hash}: {e}"));
            assert!(stored.verify(pw), "{hash}");
            assert!(!stored.verify("tool test: u $x"), "{hash}");
        }
        // And ours verifies with the system's crypt through openssl's
        // reading of the salt: same password, same salt, same hash.
        let ours = hash_password(pw).unwrap();
        let salt = ours.rsplit('$').nth(1).unwrap();
        assert_eq!(
            run("openssl", &["passwd", "-6", "-salt", salt, pw]),
            ours.replace("rounds=5000$", "")
        );
    }
}
