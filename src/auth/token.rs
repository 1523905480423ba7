//! Capability links: `…/path?token=T`, where T says "read and/or write here
//! until then", signed with HMAC-SHA-256 (RFC 2104) under a server secret.
//! Stateless on the server: nothing is stored per link; deleting the secret
//! file revokes every link at once.
//!
//! A token is 22 bytes, 30 characters of URL-safe base64 (RFC 4648 §5):
//!
//! ```text
//! version (1) | rights (1: bit 0 read, bit 1 write) | expires (4, Unix seconds, BE) | MAC (16)
//! MAC = HMAC-SHA-256(secret, "ranged link\0" | version | rights | expires | scope)[..16]
//! ```
//!
//! The scope (a decoded path, or a name such as `upload:<id>`) is not in
//! the token: the request supplies it. [`verify`] tries the request path
//! and each folder above it (`/a/b/c.txt`, `/a/b/`, `/a/`, `/`), so a link
//! to a folder works for everything below it. Feeding the path into one MAC
//! state and finishing a copy at each `/` keeps that linear in the path's
//! length: at most depth + 2 MAC finalisations. A 128-bit MAC is NIST SP
//! 800-107's minimum for truncated HMAC and far beyond online guessing.
//!
//! A MAC that matches no candidate is [`TokenError::NotValidHere`], whether
//! the token was altered or belongs to another path: telling these apart
//! would need the scope in the token.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = hmac::Hmac<Sha256>;

const VERSION: u8 = 1;
const LABEL: &[u8] = b"ranged link\0";
const MAC_LEN: usize = 16;
const TOKEN_LEN: usize = 2 + 4 + MAC_LEN;
/// 22 bytes in unpadded base64.
const TOKEN_CHARS: usize = (TOKEN_LEN * 4).div_ceil(3);
const READ: u8 = 1;
const WRITE: u8 = 2;

/// What a link allows. A "drop link" is `write` only: a camera may upload
/// through it, but not list or download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rights {
    pub read: bool,
    pub write: bool,
}

impl Rights {
    fn bits(self) -> u8 {
        (u8::from(self.read) * READ) | (u8::from(self.write) * WRITE)
    }
}

/// Why a token gives no access; every one answers 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not a token of this version: wrong length, alphabet or fields.
    Malformed,
    /// Well-formed and past its expiry (checked before the MAC).
    Expired,
    /// The MAC matches no candidate scope: altered, or another path's.
    NotValidHere,
}

impl TokenError {
    pub fn reason(self) -> &'static str {
        match self {
            TokenError::Malformed => "malformed link token",
            TokenError::Expired => "expired link token",
            TokenError::NotValidHere => "link token not valid for this path",
        }
    }
}

/// The 32-byte key of every link, kept in `<state dir>/secret`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret([u8; 32]);

/// Never prints the key.
impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    pub const FILE: &'static str = "secret";

    pub fn from_bytes(bytes: [u8; 32]) -> Secret {
        Secret(bytes)
    }

    /// Reads `dir/secret`; `Ok(None)` when there is none yet (no link was
    /// ever made, so no token can be valid).
    ///
    /// # Errors
    ///
    /// When the file cannot be read, or is not exactly 32 bytes.
    pub fn load(dir: &Path) -> io::Result<Option<Secret>> {
        let path = dir.join(Self::FILE);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let key = <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} is {} bytes, not 32; delete it to make a new one (every link made so far stops working)",
                    path.display(),
                    bytes.len()
                ),
            )
        })?;
        Ok(Some(Secret(key)))
    }

    /// Reads `dir/secret`, or makes it: 32 bytes from the kernel, mode 0600,
    /// written whole to a private temporary file, `fsync`ed, then linked to
    /// its name — which fails if another start made it first (then that one
    /// is read). A crash at any point leaves either no secret or a whole
    /// one, never an empty file that would stop the next start. `dir` is
    /// created (mode 0700) if missing, and the new entries are `fsync`ed.
    pub fn load_or_create(dir: &Path) -> io::Result<Secret> {
        if let Some(secret) = Self::load(dir)? {
            return Ok(secret);
        }
        let made_dir = !dir.is_dir();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let path = dir.join(Self::FILE);
        let tmp = dir.join(format!("{}.{}.tmp", Self::FILE, std::process::id()));
        let key = crate::random::bytes::<32>()?;
        // One left by a crashed process with our pid (no live one has it).
        let _ = fs::remove_file(&tmp);
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut file| {
                file.write_all(&key)?;
                file.sync_all()
            })
            .and_then(|()| fs::hard_link(&tmp, &path));
        let _ = fs::remove_file(&tmp);
        match written {
            Ok(()) => {
                fs::File::open(dir)?.sync_all()?;
                if made_dir {
                    crate::fs_path::sync_parent(dir)?;
                }
                Ok(Secret(key))
            }
            // Another process made it between our read and our link.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Self::load(dir)?
                .ok_or_else(|| io::Error::other(format!("{} vanished", path.display()))),
            Err(e) => Err(e),
        }
    }

    /// The MAC state after the fixed-length fields, ready for the scope.
    fn mac(&self, rights: u8, expires: u32) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(LABEL);
        mac.update(&[VERSION, rights]);
        mac.update(&expires.to_be_bytes());
        mac
    }
}

/// Unix seconds as the token stores them: before 1970 is 0, after 2106 is
/// `u32::MAX` (which `link` refuses to write).
pub fn unix_seconds(t: SystemTime) -> u32 {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    u32::try_from(secs).unwrap_or(u32::MAX)
}

/// A token granting `rights` on `scope` until `expires`.
///
/// ```
/// use ranged::auth::token::{sign, verify, Rights, Secret};
/// use std::time::{Duration, SystemTime};
/// let secret = Secret::from_bytes([7; 32]);
/// let now = SystemTime::now();
/// let t = sign(&secret, "/photos/", Rights { read: true, write: false }, now + Duration::from_secs(60));
/// assert_eq!(t.len(), 30);
/// assert!(verify(&secret, &t, "/photos/cat.jpg", false, now).is_ok());
/// assert!(verify(&secret, &t, "/private/cat.jpg", false, now).is_err());
/// ```
pub fn sign(secret: &Secret, scope: &str, rights: Rights, expires: SystemTime) -> String {
    let (bits, expires) = (rights.bits(), unix_seconds(expires));
    let mut mac = secret.mac(bits, expires);
    mac.update(scope.as_bytes());
    let tag = mac.finalize().into_bytes();
    let mut token = [0u8; TOKEN_LEN];
    token[0] = VERSION;
    token[1] = bits;
    token[2..6].copy_from_slice(&expires.to_be_bytes());
    token[6..].copy_from_slice(&tag[..MAC_LEN]);
    crate::base64::encode_url(&token)
}

/// A decoded, unexpired token, ready to be checked against scopes.
/// The expiry (unix seconds) a well-formed token carries, unverified: for a
/// token the policy has already accepted (an upload made through a link
/// ends when the link does).
pub fn expiry(token: &str) -> Option<u64> {
    let bytes = crate::base64::decode_url(token)?;
    let [VERSION, _, e0, e1, e2, e3, ..] = bytes.as_slice() else {
        return None;
    };
    Some(u64::from(u32::from_be_bytes([*e0, *e1, *e2, *e3])))
}

struct Opened {
    rights: Rights,
    state: HmacSha256,
    tag: [u8; MAC_LEN],
}

fn open(secret: &Secret, token: &str, now: SystemTime) -> Result<Opened, TokenError> {
    if token.len() != TOKEN_CHARS {
        return Err(TokenError::Malformed);
    }
    let bytes = crate::base64::decode_url(token).ok_or(TokenError::Malformed)?;
    let Ok([version, bits, e0, e1, e2, e3, tag @ ..]) = <[u8; TOKEN_LEN]>::try_from(bytes) else {
        return Err(TokenError::Malformed);
    };
    if version != VERSION || !matches!(bits, READ | WRITE | 3) {
        return Err(TokenError::Malformed);
    }
    let expires = u32::from_be_bytes([e0, e1, e2, e3]);
    if unix_seconds(now) >= expires {
        return Err(TokenError::Expired);
    }
    Ok(Opened {
        rights: Rights {
            read: bits & READ != 0,
            write: bits & WRITE != 0,
        },
        state: secret.mac(bits, expires),
        tag,
    })
}

impl Opened {
    fn matches(&self, mac: &HmacSha256) -> bool {
        mac.clone().verify_truncated_left(&self.tag).is_ok()
    }

    /// `path` and every folder above it; with `folder_too`, also `path/`
    /// (a read of `/photos` with a link to `/photos/`, before the redirect).
    fn matches_path(&self, path: &str, folder_too: bool) -> bool {
        let mut mac = self.state.clone();
        let mut fed = 0;
        for (slash, _) in path.match_indices('/') {
            mac.update(&path.as_bytes()[fed..=slash]);
            fed = slash + 1;
            if self.matches(&mac) {
                return true;
            }
        }
        if fed == path.len() {
            return false;
        }
        mac.update(&path.as_bytes()[fed..]);
        if self.matches(&mac) {
            return true;
        }
        folder_too && {
            mac.update(b"/");
            self.matches(&mac)
        }
    }
}

/// Checks a token against the decoded request `path` and its folders (see
/// the module doc). `folder_too` adds `path/` (pass it for reads).
///
/// # Errors
///
/// [`TokenError`]: malformed, expired, or matching none of them.
pub fn verify(
    secret: &Secret,
    token: &str,
    path: &str,
    folder_too: bool,
    now: SystemTime,
) -> Result<Rights, TokenError> {
    verify_any(secret, token, Some((path, folder_too)), None, now)
}

/// Checks a token against one scope string, such as `upload:<id>`.
///
/// # Errors
///
/// As [`verify`].
pub fn verify_scope(
    secret: &Secret,
    token: &str,
    scope: &str,
    now: SystemTime,
) -> Result<Rights, TokenError> {
    verify_any(secret, token, None, Some(scope), now)
}

/// [`verify`] for the path (if any) and [`verify_scope`] for `scope` (if
/// any) with one decoding: what the request path decides.
pub(crate) fn verify_any(
    secret: &Secret,
    token: &str,
    path: Option<(&str, bool)>,
    scope: Option<&str>,
    now: SystemTime,
) -> Result<Rights, TokenError> {
    let opened = open(secret, token, now)?;
    let on_path = path.is_some_and(|(p, folder_too)| opened.matches_path(p, folder_too));
    let on_scope = || {
        scope.is_some_and(|s| {
            let mut mac = opened.state.clone();
            mac.update(s.as_bytes());
            opened.matches(&mac)
        })
    };
    if on_path || on_scope() {
        Ok(opened.rights)
    } else {
        Err(TokenError::NotValidHere)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const RO: Rights = Rights {
        read: true,
        write: false,
    };
    const WO: Rights = Rights {
        read: false,
        write: true,
    };
    const RW: Rights = Rights {
        read: true,
        write: true,
    };

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    /// Where a link made for a scope works: (scope, request path, read?, ok).
    fn scopes_and_paths() {
        let secret = Secret::from_bytes([1; 32]);
        let rows: &[(&str, &str, bool, bool)] = &[
            ("/photos/", "/photos/", true, true),
            ("/photos/", "/photos/cat.jpg", true, true),
            ("/photos/", "/photos/2024/06/cat.jpg", true, true),
            ("/photos/", "/photos", true, true),
            ("/photos/", "/photos", false, false),
            ("/photos/", "/photosx/cat.jpg", true, false),
            ("/photos/", "/", true, false),
            ("/photos/", "/other/photos/cat.jpg", true, false),
            ("/", "/anything/at/all.txt", true, true),
            ("/a/b/c.txt", "/a/b/c.txt", true, true),
            ("/a/b/c.txt", "/a/b/c.txt/", true, false),
            ("/a/b/c.txt", "/a/b/c.txtx", true, false),
            ("/a/b/c.txt", "/a/b/", true, false),
            ("/a/b/c.txt", "/a/b/d.txt", true, false),
            ("/dossier partagé/", "/dossier partagé/ü.txt", false, true),
            ("upload:abc", "/upload:abc", true, false),
        ];
        let now = at(1_000_000);
        for &(scope, path, folder_too, ok) in rows {
            let t = sign(&secret, scope, RO, at(2_000_000));
            let got = verify(&secret, &t, path, folder_too, now);
            let want = if ok {
                Ok(RO)
            } else {
                Err(TokenError::NotValidHere)
            };
            assert_eq!(got, want, "{scope} on {path}");
        }
    }

    #[test]
    /// Rights come back as signed; expiry, another secret, any altered
    /// character or field, and garbage are refused.
    fn refusals() {
        let secret = Secret::from_bytes([2; 32]);
        let now = at(1_000_000);
        for rights in [RO, WO, RW] {
            let t = sign(&secret, "/in/", rights, at(1_000_001));
            assert_eq!(verify(&secret, &t, "/in/x", false, now), Ok(rights));
            assert_eq!(
                verify(&secret, &t, "/in/x", false, at(1_000_001)),
                Err(TokenError::Expired)
            );
            assert_eq!(
                verify(&secret, &t, "/in/x", false, at(5_000_000)),
                Err(TokenError::Expired)
            );
            let other = Secret::from_bytes([3; 32]);
            assert_eq!(
                verify(&other, &t, "/in/x", false, now),
                Err(TokenError::NotValidHere)
            );
        }
        let t = sign(&secret, "/in/", RO, at(2_000_000));
        // Change each character to another of the alphabet: never valid.
        for i in 0..t.len() {
            let mut bytes = t.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(bytes).unwrap();
            assert!(
                verify(&secret, &altered, "/in/x", false, now).is_err(),
                "{i}"
            );
        }
        // Raising the rights or the expiry in the token breaks the MAC.
        let mut raw = crate::base64::decode_url(&t).unwrap();
        raw[1] = READ | WRITE;
        let raised = crate::base64::encode_url(&raw);
        assert_eq!(
            verify(&secret, &raised, "/in/x", false, now),
            Err(TokenError::NotValidHere)
        );
        raw[1] = READ;
        raw[2] = 0xff;
        let later = crate::base64::encode_url(&raw);
        assert_eq!(
            verify(&secret, &later, "/in/x", false, now),
            Err(TokenError::NotValidHere)
        );
        raw[2] = 0;
        for bad in [0u8, 4, 7, 255] {
            raw[1] = bad;
            let t = crate::base64::encode_url(&raw);
            assert_eq!(
                verify(&secret, &t, "/in/x", false, now),
                Err(TokenError::Malformed)
            );
        }
        raw[1] = READ;
        raw[0] = 2;
        let v2 = crate::base64::encode_url(&raw);
        assert_eq!(
            verify(&secret, &v2, "/in/x", false, now),
            Err(TokenError::Malformed)
        );
        for garbage in [
            "",
            "x",
            "€",
            &t[..29],
            &format!("{t}A"),
            &t.replace('A', "+"),
            "ÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄ",
        ] {
            assert_eq!(
                verify(&secret, garbage, "/in/x", false, now),
                Err(TokenError::Malformed),
                "{garbage}"
            );
        }
    }

    #[test]
    /// Per-upload tokens: a scope that is not a path works only as itself.
    fn named_scopes() {
        let secret = Secret::from_bytes([4; 32]);
        let now = at(10);
        let t = sign(&secret, "upload:abc", WO, at(20));
        assert_eq!(verify_scope(&secret, &t, "upload:abc", now), Ok(WO));
        assert_eq!(
            verify_scope(&secret, &t, "upload:abd", now),
            Err(TokenError::NotValidHere)
        );
        assert_eq!(
            verify_scope(&secret, &t, "upload:ab", now),
            Err(TokenError::NotValidHere)
        );
        assert_eq!(
            verify(&secret, &t, "/upload:abc", true, now),
            Err(TokenError::NotValidHere)
        );
        assert_eq!(
            verify_any(
                &secret,
                &t,
                Some(("/files/abc", false)),
                Some("upload:abc"),
                now
            ),
            Ok(WO)
        );
        let p = sign(&secret, "/files/", WO, at(20));
        assert_eq!(
            verify_any(
                &secret,
                &p,
                Some(("/files/abc", false)),
                Some("upload:zzz"),
                now
            ),
            Ok(WO)
        );
        assert_eq!(verify_scope(&secret, &p, "/files/", now), Ok(WO));
    }

    #[test]
    /// A token is short enough for a QR code and a URL, and URL-safe.
    fn shape() {
        let t = sign(
            &Secret::from_bytes([5; 32]),
            "/",
            RW,
            at(u64::from(u32::MAX)),
        );
        assert_eq!(t.len(), 30);
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{t}"
        );
    }

    #[test]
    /// The secret is made once, 0600 in a 0700 folder, and read back the same.
    fn secret_file() {
        use std::os::unix::fs::PermissionsExt;
        let base = crate::testing::TempDir::new();
        let dir = base.path().join("state");
        assert_eq!(Secret::load(&dir).unwrap(), None);
        let made = Secret::load_or_create(&dir).unwrap();
        let again = Secret::load_or_create(&dir).unwrap();
        assert_eq!(made, again);
        assert_eq!(Secret::load(&dir).unwrap(), Some(made.clone()));
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join("secret")), 0o600);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(format!("{made:?}"), "Secret(..)");

        // A crash before the link leaves a temporary file, never a short
        // secret; the next start makes one as if nothing happened.
        fs::remove_file(dir.join("secret")).unwrap();
        let stale = dir.join(format!("secret.{}.tmp", std::process::id()));
        fs::write(&stale, b"").unwrap();
        let remade = Secret::load_or_create(&dir).unwrap();
        assert_ne!(remade, made);
        assert!(!stale.exists());
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);

        fs::write(dir.join("secret"), b"short").unwrap();
        let err = Secret::load(&dir).unwrap_err();
        assert!(err.to_string().contains("5 bytes, not 32"), "{err}");
        assert!(Secret::load_or_create(&dir).is_err());
    }
}
