//! The access decision as one table: every kind of credential against
//! every kind of need, under the three policies a server can run with.

use super::token::{self, Rights, Secret};
use super::*;
use std::time::UNIX_EPOCH;

const ACCOUNTS: &[&str] = &[
    "admin:adminpw:rw",
    "viewer:viewpw",
    "cam:campw:rw@/incoming",
    "scoped:pw2:ro@/photos/",
    // `openssl passwd -6 -salt saltsaltsalt pw`
    "hashed:$6$saltsaltsalt$8Rl8SaMtA6lI/8fUYIU6MgNuNmR.yspkchAY1VV2x7qmA5rvOoKx72usRd2qb6YfWv/SPjcHURfWLAS4ukU2L/:rw",
];

const SECRET: [u8; 32] = [7; 32];
const NOW: u64 = 1_700_000_000;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Public,
    Private,
    AnonymousUpload,
    /// Public, and no link secret exists.
    NoSecret,
    /// Public, with a link secret and no account at all.
    NoAccounts,
}

/// The token a row sends.
#[derive(Debug, Clone, Copy)]
enum Tok {
    None,
    /// Signed with the server's secret: (scope, read, write, seconds left).
    Signed(&'static str, bool, bool, i64),
    /// Signed for the scope (read and write), then one bit of its MAC flipped.
    Tampered(&'static str),
    Raw(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Anonymous,
    User(&'static str),
    Link,
    /// 401 with this reason.
    U(&'static str),
    /// 403 with this reason.
    F(&'static str),
}
use Expect::*;

const R: Need = Need::Read;
const W: Need = Need::Write;

const NO_CREDS: &str = "credentials required";
const WRONG_PW: &str = "wrong password";
const BAD_LINK: &str = "link token not valid for this path";

/// (policy, need, path, user:password for Basic (or a raw header when it
/// does not contain ':'), token, upload scope, expected)
#[rustfmt::skip]
#[allow(clippy::type_complexity)]
const CASES: &[(Mode, Need, &str, Option<&str>, Tok, Option<&str>, Expect)] = &[
    // no header
    (Mode::Public, R, "/a.txt", None, Tok::None, None, Anonymous),
    (Mode::Public, R, "/", None, Tok::None, None, Anonymous),
    (Mode::Public, W, "/a.txt", None, Tok::None, None, U(NO_CREDS)),
    (Mode::Private, R, "/a.txt", None, Tok::None, None, U(NO_CREDS)),
    // wrong scheme: ignored where nothing is needed, named where something is
    (Mode::Public, R, "/a.txt", Some("Bearer abc.def"), Tok::None, None, Anonymous),
    (Mode::Public, W, "/a.txt", Some("Bearer abc.def"), Tok::None, None, U("Authorization scheme is not Basic")),
    (Mode::Private, R, "/a.txt", Some("Digest username=\"x\""), Tok::None, None, U("Authorization scheme is not Basic")),
    // malformed base64: wrong credentials, even on a public file
    (Mode::Public, W, "/a.txt", Some("Basic !!!!"), Tok::None, None, U("malformed Basic credentials")),
    (Mode::Public, R, "/a.txt", Some("Basic !!!!"), Tok::None, None, U("malformed Basic credentials")),
    (Mode::Public, W, "/a.txt", Some("Basic dXNlcg=="), Tok::None, None, U("malformed Basic credentials")),
    // wrong password, unknown user
    (Mode::Public, W, "/a.txt", Some("admin:adminPW"), Tok::None, None, U(WRONG_PW)),
    (Mode::Public, R, "/a.txt", Some("admin:adminPW"), Tok::None, None, U(WRONG_PW)),
    (Mode::Public, W, "/a.txt", Some("admin:"), Tok::None, None, U(WRONG_PW)),
    (Mode::Public, W, "/a.txt", Some("mallory:adminpw"), Tok::None, None, U("unknown user")),
    (Mode::Public, W, "/a.txt", Some("Admin:adminpw"), Tok::None, None, U("unknown user")),
    (Mode::Public, W, "/a.txt", Some(":adminpw"), Tok::None, None, U("unknown user")),
    // read-only accounts
    (Mode::Public, W, "/a.txt", Some("viewer:viewpw"), Tok::None, None, F("read-only account")),
    (Mode::Public, R, "/a.txt", Some("viewer:viewpw"), Tok::None, None, User("viewer")),
    (Mode::Private, R, "/a.txt", Some("viewer:viewpw"), Tok::None, None, User("viewer")),
    // read-write, everywhere and within a folder
    (Mode::Public, W, "/a.txt", Some("admin:adminpw"), Tok::None, None, User("admin")),
    (Mode::Public, W, "/deep/er/a.txt", Some("admin:adminpw"), Tok::None, None, User("admin")),
    (Mode::Public, W, "/incoming/x.jpg", Some("cam:campw"), Tok::None, None, User("cam")),
    (Mode::Public, W, "/incoming/", Some("cam:campw"), Tok::None, None, User("cam")),
    (Mode::Public, W, "/other/x.jpg", Some("cam:campw"), Tok::None, None, F("outside the account's folder")),
    (Mode::Public, W, "/incoming", Some("cam:campw"), Tok::None, None, F("outside the account's folder")),
    (Mode::Public, W, "/incomingx/x.jpg", Some("cam:campw"), Tok::None, None, F("outside the account's folder")),
    // public files read with valid credentials name the user
    (Mode::Public, R, "/other/x.jpg", Some("cam:campw"), Tok::None, None, User("cam")),
    // private reads and scopes
    (Mode::Private, R, "/a.txt", Some("admin:adminpw"), Tok::None, None, User("admin")),
    (Mode::Private, R, "/a.txt", Some("cam:campw"), Tok::None, None, F("outside the account's folder")),
    (Mode::Private, R, "/incoming/x.jpg", Some("cam:campw"), Tok::None, None, User("cam")),
    (Mode::Private, R, "/photos/cat.jpg", Some("scoped:pw2"), Tok::None, None, User("scoped")),
    (Mode::Private, R, "/photos", Some("scoped:pw2"), Tok::None, None, User("scoped")),
    (Mode::Private, R, "/photos2/cat.jpg", Some("scoped:pw2"), Tok::None, None, F("outside the account's folder")),
    (Mode::Private, W, "/photos/cat.jpg", Some("scoped:pw2"), Tok::None, None, F("read-only account")),
    // a crypt hash
    (Mode::Public, W, "/x", Some("hashed:pw"), Tok::None, None, User("hashed")),
    (Mode::Public, W, "/x", Some("hashed:pW"), Tok::None, None, U(WRONG_PW)),
    // links: read, expired, tampered, wrong path, missing rights
    (Mode::Private, R, "/photos/cat.jpg", None, Tok::Signed("/photos/", true, false, 60), None, Link),
    (Mode::Private, R, "/photos/", None, Tok::Signed("/photos/", true, false, 60), None, Link),
    (Mode::Private, R, "/photos", None, Tok::Signed("/photos/", true, false, 60), None, Link),
    (Mode::Private, R, "/photos/cat.jpg", None, Tok::Signed("/photos/", true, false, 0), None, U("expired link token")),
    (Mode::Private, R, "/photos/cat.jpg", None, Tok::Signed("/photos/", true, false, -3600), None, U("expired link token")),
    (Mode::Private, R, "/photos/cat.jpg", None, Tok::Tampered("/photos/"), None, U(BAD_LINK)),
    (Mode::Private, R, "/docs/cat.jpg", None, Tok::Signed("/photos/", true, false, 60), None, U(BAD_LINK)),
    (Mode::Private, R, "/", None, Tok::Signed("/photos/", true, false, 60), None, U(BAD_LINK)),
    (Mode::Public, R, "/docs/cat.jpg", None, Tok::Signed("/photos/", true, false, 60), None, U(BAD_LINK)),
    (Mode::Public, W, "/photos/new.jpg", None, Tok::Signed("/photos/", true, false, 60), None, F("link does not allow writing")),
    (Mode::Private, R, "/incoming/x.jpg", None, Tok::Signed("/incoming/", false, true, 60), None, F("link does not allow reading")),
    (Mode::Private, R, "/incoming/", None, Tok::Signed("/incoming/", false, true, 60), None, F("link does not allow reading")),
    (Mode::Public, W, "/incoming/x.jpg", None, Tok::Signed("/incoming/", false, true, 60), None, Link),
    (Mode::Public, W, "/incoming/x.jpg", None, Tok::Signed("/incoming/x.jpg", false, true, 60), None, Link),
    (Mode::Public, W, "/incoming/y.jpg", None, Tok::Signed("/incoming/x.jpg", false, true, 60), None, U(BAD_LINK)),
    // a public file read with a drop link for it: allowed, and named
    (Mode::Public, R, "/incoming/x.jpg", None, Tok::Signed("/incoming/", false, true, 60), None, Link),
    (Mode::Private, W, "/shared/a.txt", None, Tok::Signed("/shared/", true, true, 60), None, Link),
    (Mode::Private, R, "/shared/a.txt", None, Tok::Signed("/shared/", true, true, 60), None, Link),
    (Mode::Private, R, "/a.txt", None, Tok::Signed("/", true, false, 60), None, Link),
    (Mode::Private, R, "/a.txt", None, Tok::Raw("not-a-token"), None, U("malformed link token")),
    (Mode::Private, R, "/a.txt", None, Tok::Raw(""), None, U("malformed link token")),
    (Mode::NoSecret, R, "/a.txt", None, Tok::Signed("/", true, false, 60), None, U(BAD_LINK)),
    // no accounts: Basic can be neither right nor wrong, so counts as nothing
    (Mode::NoAccounts, R, "/a.txt", Some("admin:adminpw"), Tok::None, None, Anonymous),
    (Mode::NoAccounts, R, "/a.txt", Some("admin:nope"), Tok::None, None, Anonymous),
    (Mode::NoAccounts, R, "/a.txt", Some("Basic !!!!"), Tok::None, None, Anonymous),
    (Mode::NoAccounts, W, "/a.txt", Some("admin:adminpw"), Tok::None, None, U(NO_CREDS)),
    (Mode::NoAccounts, W, "/incoming/x.jpg", Some("admin:nope"), Tok::Signed("/incoming/", false, true, 60), None, Link),
    (Mode::NoAccounts, R, "/a.txt", Some("admin:nope"), Tok::Tampered("/"), None, U(BAD_LINK)),
    // per-upload scopes, tried besides the path
    (Mode::Public, W, "/files/abc", None, Tok::Signed("upload:abc", false, true, 60), Some("upload:abc"), Link),
    (Mode::Public, W, "/files/abc", None, Tok::Signed("upload:abc", false, true, 60), Some("upload:abd"), U(BAD_LINK)),
    (Mode::Public, W, "/files/abc", None, Tok::Signed("upload:abc", false, true, 60), None, U(BAD_LINK)),
    (Mode::Public, W, "/files/abc", None, Tok::Signed("/files/", false, true, 60), Some("upload:zzz"), Link),
    (Mode::Public, W, "/files/abc", None, Tok::Signed("upload:abc", false, true, -1), Some("upload:abc"), U("expired link token")),
    // anonymous uploads
    (Mode::AnonymousUpload, W, "/a.txt", None, Tok::None, None, Anonymous),
    (Mode::AnonymousUpload, W, "/a.txt", Some("viewer:viewpw"), Tok::None, None, User("viewer")),
    (Mode::AnonymousUpload, W, "/a.txt", Some("viewer:wrong"), Tok::None, None, U(WRONG_PW)),
    (Mode::AnonymousUpload, W, "/a.txt", Some("Bearer x"), Tok::None, None, Anonymous),
    // an account and a link together: either may grant, any wrong one refuses
    (Mode::Public, W, "/incoming/x.jpg", Some("viewer:viewpw"), Tok::Signed("/incoming/", false, true, 60), None, Link),
    (Mode::Public, W, "/incoming/x.jpg", Some("admin:adminpw"), Tok::Signed("/incoming/", false, true, 60), None, User("admin")),
    (Mode::Public, W, "/incoming/x.jpg", Some("admin:adminpw"), Tok::Tampered("/incoming/"), None, U(BAD_LINK)),
    (Mode::Public, W, "/incoming/x.jpg", Some("admin:nope"), Tok::Signed("/incoming/", false, true, 60), None, U(WRONG_PW)),
    (Mode::Private, R, "/a.txt", Some("viewer:viewpw"), Tok::Signed("/incoming/", false, true, 60), None, U(BAD_LINK)),
];

fn policy(mode: Mode) -> Policy {
    let accounts = match mode {
        Mode::NoAccounts => Vec::new(),
        _ => ACCOUNTS
            .iter()
            .map(|s| accounts::parse_spec(s).unwrap())
            .collect(),
    };
    let secret = (mode != Mode::NoSecret).then(|| Secret::from_bytes(SECRET));
    let mut p = Policy::new(accounts, secret).unwrap();
    p.private = mode == Mode::Private;
    p.anonymous_upload = mode == Mode::AnonymousUpload;
    p
}

fn wall() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

fn header(creds: &str) -> String {
    if creds.contains(':') {
        format!("Basic {}", crate::base64::encode(creds.as_bytes()))
    } else {
        creds.to_owned()
    }
}

fn token_for(tok: Tok) -> Option<String> {
    let secret = Secret::from_bytes(SECRET);
    let sign = |scope, read, write, left: i64| {
        let expires = UNIX_EPOCH + Duration::from_secs(NOW.checked_add_signed(left).unwrap());
        token::sign(&secret, scope, Rights { read, write }, expires)
    };
    match tok {
        Tok::None => None,
        Tok::Signed(scope, read, write, left) => Some(sign(scope, read, write, left)),
        Tok::Tampered(scope) => {
            let mut raw = crate::base64::decode_url(&sign(scope, true, true, 60)).unwrap();
            raw[10] ^= 1;
            Some(crate::base64::encode_url(&raw))
        }
        Tok::Raw(s) => Some(s.to_owned()),
    }
}

#[test]
fn decisions() {
    for (i, &(mode, need, path, creds, tok, upload_scope, expect)) in CASES.iter().enumerate() {
        // A fresh policy per row: no cache or throttle state carries over.
        let p = policy(mode);
        let authorization = creds.map(header);
        let token = token_for(tok);
        let ask = Ask {
            need,
            path,
            authorization: authorization.as_deref(),
            token: token.as_deref(),
            upload_scope,
            peer: "192.0.2.1".parse().unwrap(),
            now: Instant::now(),
            wall: wall(),
        };
        let got = match p.decide(&ask) {
            Verdict::Allow { who, burst_ended } => {
                assert_eq!(burst_ended, None, "row {i}");
                match who {
                    Who::Anonymous => Anonymous,
                    Who::User(u) => User(
                        ACCOUNTS
                            .iter()
                            .map(|a| &a[..a.find(':').unwrap()])
                            .find(|n| *n == u)
                            .unwrap(),
                    ),
                    Who::Link => Link,
                }
            }
            Verdict::Unauthorized {
                delay,
                reason,
                burst_started,
            } => {
                assert_eq!(
                    (delay, burst_started),
                    (Duration::ZERO, false),
                    "row {i}: first failure is free"
                );
                U(reason)
            }
            Verdict::Forbidden { reason } => F(reason),
        };
        assert_eq!(
            got, expect,
            "row {i}: {mode:?} {need:?} {path} {creds:?} {tok:?} {upload_scope:?}"
        );
    }
}

#[test]
/// A guesser is slowed down and then refused unverified; a correct
/// password inside the window is refused too (else guessing would go on at
/// full speed), and works once the window is over.
fn throttled_guessing() {
    let p = policy(Mode::Public);
    let peer: IpAddr = "198.51.100.9".parse().unwrap();
    let other: IpAddr = "198.51.100.10".parse().unwrap();
    let t0 = Instant::now();
    let wrong = header("admin:guess");
    let right = header("admin:adminpw");
    let decide = |auth: &str, peer: IpAddr, now: Instant, need: Need| {
        p.decide(&Ask {
            need,
            path: "/a.txt",
            authorization: (!auth.is_empty()).then_some(auth),
            token: None,
            upload_scope: None,
            peer,
            now,
            wall: wall(),
        })
    };
    let unauthorized = |delay: u64, reason, burst_started| Verdict::Unauthorized {
        delay: Duration::from_millis(delay),
        reason,
        burst_started,
    };
    for _ in 0..throttle::FREE_FAILURES {
        assert_eq!(
            decide(&wrong, peer, t0, W),
            unauthorized(0, WRONG_PW, false)
        );
    }
    assert_eq!(
        decide(&wrong, peer, t0, W),
        unauthorized(250, WRONG_PW, true)
    );
    let t1 = t0 + Duration::from_millis(100);
    let blocked = "too many failures from this address";
    assert_eq!(
        decide(&right, peer, t1, W),
        unauthorized(150, blocked, false)
    );
    assert_eq!(
        decide(&wrong, peer, t1, R),
        unauthorized(150, blocked, false)
    );
    // The window is not lengthened by refusals it did not verify.
    let t2 = t0 + Duration::from_millis(250);
    assert_eq!(
        decide(&wrong, peer, t2, W),
        unauthorized(500, WRONG_PW, false)
    );
    // Without credentials, public files stay readable; other peers are unaffected.
    let t3 = t2 + Duration::from_millis(1);
    let anonymous = Verdict::Allow {
        who: Who::Anonymous,
        burst_ended: None,
    };
    assert_eq!(decide("", peer, t3, R), anonymous);
    assert_eq!(decide("", peer, t3, W), unauthorized(0, NO_CREDS, false));
    let admin = |burst_ended| Verdict::Allow {
        who: Who::User("admin".into()),
        burst_ended,
    };
    assert_eq!(decide(&right, other, t3, W), admin(None));
    // After the window, the right password works, the end of the burst is
    // reported (7 failures), and the slate is clean.
    let t4 = t2 + Duration::from_millis(500);
    assert_eq!(decide(&right, peer, t4, W), admin(Some(7)));
    assert_eq!(decide(&right, peer, t4, W), admin(None));
    assert_eq!(
        decide(&wrong, peer, t4, W),
        unauthorized(0, WRONG_PW, false)
    );
}

#[test]
/// Bad tokens are failures for the throttle just like bad passwords.
fn throttled_tokens() {
    let p = policy(Mode::Private);
    let peer: IpAddr = "203.0.113.5".parse().unwrap();
    let now = Instant::now();
    let bad = token_for(Tok::Signed("/other/", true, false, 60)).unwrap();
    let mut last = None;
    for _ in 0..=throttle::FREE_FAILURES {
        last = Some(p.decide(&Ask {
            need: R,
            path: "/a.txt",
            authorization: None,
            token: Some(&bad),
            upload_scope: None,
            peer,
            now,
            wall: wall(),
        }));
    }
    assert_eq!(
        last,
        Some(Verdict::Unauthorized {
            delay: throttle::FIRST_DELAY,
            reason: BAD_LINK,
            burst_started: true
        })
    );
}

#[test]
/// Only successes are cached, under a digest of the header, and a cached
/// success still names its user.
fn cache_holds_successes_only() {
    let p = policy(Mode::Public);
    let peer: IpAddr = "192.0.2.2".parse().unwrap();
    let now = Instant::now();
    let run = |creds: &str| {
        let h = header(creds);
        p.decide(&Ask {
            need: W,
            path: "/x",
            authorization: Some(&h),
            token: None,
            upload_scope: None,
            peer,
            now,
            wall: wall(),
        })
    };
    assert!(matches!(run("hashed:nope"), Verdict::Unauthorized { .. }));
    assert!(matches!(run("nobody:nope"), Verdict::Unauthorized { .. }));
    assert!(p.cache.is_empty());
    for _ in 0..3 {
        let hashed = Verdict::Allow {
            who: Who::User("hashed".into()),
            burst_ended: None,
        };
        assert_eq!(run("hashed:pw"), hashed);
    }
    assert_eq!(p.cache.len(), 1);
    assert_eq!(
        run("viewer:viewpw"),
        Verdict::Forbidden {
            reason: "read-only account"
        }
    );
    assert_eq!(
        p.cache.len(),
        2,
        "valid credentials without the right are still valid"
    );
}

#[test]
fn start_up_checks() {
    let accounts = |specs: &[&str]| {
        specs
            .iter()
            .map(|s| accounts::parse_spec(s).unwrap())
            .collect::<Vec<_>>()
    };
    let p = Policy::new(accounts(&[]), None).unwrap();
    assert!(!p.can_write_somewhere());
    let p = Policy::new(accounts(&["v:pw", "w:pw:ro@/x"]), None).unwrap();
    assert!(!p.can_write_somewhere());
    let mut p = Policy::new(accounts(&["v:pw"]), None).unwrap();
    p.anonymous_upload = true;
    assert!(p.can_write_somewhere());
    let p = Policy::new(accounts(&["v:pw", "cam:pw:rw@/in"]), None).unwrap();
    assert!(p.can_write_somewhere());
    assert!(!can_write_somewhere(&accounts(&["v:pw"]), false));
    assert!(can_write_somewhere(&accounts(&["v:pw"]), true));
    assert!(can_write_somewhere(&accounts(&["cam:pw:rw@/in"]), false));
    let err = Policy::new(accounts(&["v:pw", "v:other:rw"]), None).unwrap_err();
    assert_eq!(err, "user `v` is defined twice");
    assert_eq!(challenge(), "Basic realm=\"ranged\", charset=\"UTF-8\"");
}

#[test]
/// Nothing a log line could print of a policy shows a password or key.
fn debug_output_hides_secrets() {
    let shown = format!("{:?}", policy(Mode::Public));
    for secret in ["adminpw", "viewpw", "campw", "8Rl8SaMtA6lI", "7, 7, 7"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("admin") && shown.contains("Secret(..)"));
    let h = header("admin:adminpw");
    let ask = Ask {
        need: R,
        path: "/a",
        authorization: Some(&h),
        token: Some("TOKENTOKEN"),
        upload_scope: None,
        peer: "192.0.2.3".parse().unwrap(),
        now: Instant::now(),
        wall: wall(),
    };
    let shown = format!("{ask:?}");
    assert!(
        !shown.contains(&h[6..]) && !shown.contains("TOKENTOKEN"),
        "{shown}"
    );
    assert!(
        shown.contains("/a") && shown.contains("192.0.2.3"),
        "{shown}"
    );
}
