//! Who may read and who may write: accounts, HTTP Basic, capability links.
//!
//! One entry point, [`Policy::decide`], takes what a request carries and
//! what it needs, and answers [`Verdict`]: allowed (and who, for the access
//! log), 401 (no valid credentials, with a delay to hold the answer), or 403
//! (valid credentials without the right). The steps:
//!
//! 1. Read what the request carries: an `Authorization: Basic` value
//!    ([`basic`]) and a `?token=` ([`token`]). Another scheme counts as
//!    nothing, and so does Basic on a server without accounts; malformed
//!    Basic counts as wrong credentials.
//! 2. If it carries credentials and its peer is inside a penalty window
//!    ([`throttle`]), 401 at once, nothing verified.
//! 3. Verify each credential carried: Basic through the [`cache`], else
//!    the account's stored password ([`password`]; an unknown user costs
//!    a verification too); the token against the path, its folders and
//!    the upload scope. Any wrong one: 401, counted as a failure (so is a
//!    bad token); all good: the peer is forgiven. Wrong credentials answer
//!    401 even where none are needed: a client that sends a wrong password
//!    should learn it.
//! 4. Allow if an account or the link grants the need here, or the need is
//!    open to anyone (reads unless `private`; writes with
//!    `anonymous_upload`). Otherwise 403 when valid credentials were
//!    shown, 401 when none were.
//!
//! Nothing here sleeps, logs or touches the network; [`link`] and the file
//! loaders are the only I/O. Never put a password, hash, `Authorization`
//! value or token into a log line or an error: the types here that hold
//! them print as `..`.

pub mod accounts;
pub mod basic;
pub mod cache;
pub mod link;
pub mod password;
pub mod throttle;
pub mod token;

use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime};

use accounts::Account;
use cache::Cache;
use throttle::Throttle;
use token::{Secret, TokenError};

/// The `WWW-Authenticate` value of every 401 (RFC 7617 §2, §2.1).
pub fn challenge() -> &'static str {
    "Basic realm=\"ranged\", charset=\"UTF-8\""
}

/// Someone can upload: an `rw` account, or anonymous uploads. The start
/// refuses `--upload` otherwise (links alone do not count: they are made
/// later, with the secret the first `ranged link` creates). A pure function
/// of the command line, so the refusal comes before anything is bound or
/// written (the state folder, the link secret).
pub fn can_write_somewhere(accounts: &[Account], anonymous_upload: bool) -> bool {
    anonymous_upload || accounts.iter().any(|a| a.write)
}

/// What a request needs: reading (GET, HEAD, listings) or writing (PUT,
/// POST, PATCH, DELETE, tus).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Read,
    Write,
}

/// One request, as far as access goes. Its `Debug` leaves out the
/// credentials.
#[derive(Clone, Copy)]
pub struct Ask<'a> {
    pub need: Need,
    /// The decoded path (`fs_path::decode`): `/incoming/a.txt`, `/incoming/`.
    pub path: &'a str,
    /// The `Authorization` field value, if any.
    pub authorization: Option<&'a str>,
    /// The `token` query parameter, if any.
    pub token: Option<&'a str>,
    /// A scope tried besides the path, e.g. `upload:<id>` for a tus upload.
    pub upload_scope: Option<&'a str>,
    pub peer: IpAddr,
    pub now: Instant,
    pub wall: SystemTime,
}

impl std::fmt::Debug for Ask<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ask")
            .field("need", &self.need)
            .field("path", &self.path)
            .field("authorization", &self.authorization.map(|_| ".."))
            .field("token", &self.token.map(|_| ".."))
            .field("upload_scope", &self.upload_scope)
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

/// Who was let in, for the access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    Anonymous,
    User(String),
    Link,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Go on. `burst_ended`: this peer had this many failures, some of
    /// them throttled, before these credentials worked; log one line (a
    /// guess that finally succeeded looks like this too).
    Allow { who: Who, burst_ended: Option<u32> },
    /// 401 with [`challenge`], answered after `delay` (never slept here).
    /// `burst_started`: this peer has just begun to be throttled; log one
    /// line (the reason alone goes into the access log).
    Unauthorized {
        delay: Duration,
        reason: &'static str,
        burst_started: bool,
    },
    /// 403.
    Forbidden { reason: &'static str },
}

/// The access rules of one server: fixed at start, shared by every worker.
#[derive(Debug)]
pub struct Policy {
    accounts: Vec<Account>,
    /// Reads need credentials too (`--private`).
    pub private: bool,
    /// Anyone may write (`--anonymous-upload`).
    pub anonymous_upload: bool,
    /// Links are accepted only when there is a secret.
    secret: Option<Secret>,
    cache: Cache,
    throttle: Throttle,
}

/// A credential that checked out.
enum Proof<'p> {
    User(&'p Account),
    Link(token::Rights),
}

impl Policy {
    /// # Errors
    ///
    /// A sentence when a user name appears twice (from `--auth` and
    /// `--auth-file` together: the file alone is checked when parsed), or
    /// when `/dev/urandom` cannot be read.
    pub fn new(accounts: Vec<Account>, secret: Option<Secret>) -> Result<Policy, String> {
        accounts::check_unique(&accounts)?;
        let cache = Cache::new().map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
        Ok(Policy {
            accounts,
            private: false,
            anonymous_upload: false,
            secret,
            cache,
            throttle: Throttle::new(),
        })
    }

    /// [`can_write_somewhere`] for this policy's accounts.
    pub fn can_write_somewhere(&self) -> bool {
        can_write_somewhere(&self.accounts, self.anonymous_upload)
    }

    /// Whether this request may go on; see the module doc for the steps.
    pub fn decide(&self, ask: &Ask) -> Verdict {
        // Without accounts, Basic credentials can be neither right nor
        // wrong: they count as nothing, like another scheme (a browser
        // still sending what another server on this port once asked for
        // must not be locked out of a public one).
        let basic = ask
            .authorization
            .filter(|_| !self.accounts.is_empty())
            .map(basic::parse);
        let carries = ask.token.is_some()
            || matches!(basic, Some(Ok(_)) | Some(Err(basic::Refusal::Malformed)));
        if carries && let Some(left) = self.throttle.blocked(ask.peer, ask.now) {
            return Verdict::Unauthorized {
                delay: left,
                reason: "too many failures from this address",
                burst_started: false,
            };
        }

        let mut proofs: Vec<Proof> = Vec::with_capacity(2);
        let mut failed: Option<&'static str> = None;
        match (ask.authorization, &basic) {
            (Some(value), Some(Ok(c))) => match self.check_password(value, c, ask.now) {
                Ok(account) => proofs.push(Proof::User(account)),
                Err(reason) => failed = Some(reason),
            },
            (_, Some(Err(basic::Refusal::Malformed))) => {
                failed = Some(basic::Refusal::Malformed.reason());
            }
            _ => {}
        }
        if let Some(t) = ask.token {
            match self.check_token(t, ask) {
                Ok(rights) => proofs.push(Proof::Link(rights)),
                Err(e) => failed = failed.or(Some(e.reason())),
            }
        }
        if let Some(reason) = failed {
            let f = self.throttle.failure(ask.peer, ask.now);
            return Verdict::Unauthorized {
                delay: f.delay,
                reason,
                burst_started: f.burst_started,
            };
        }
        let burst_ended = match proofs.is_empty() {
            true => None,
            false => self.throttle.success(ask.peer, ask.now),
        };
        let allow = |who| Verdict::Allow { who, burst_ended };

        for proof in &proofs {
            match proof {
                Proof::User(a) if a.allows(ask.need, ask.path) => {
                    return allow(Who::User(a.user.clone()));
                }
                Proof::Link(r) if grants(*r, ask.need) => return allow(Who::Link),
                _ => {}
            }
        }
        let open = match ask.need {
            Need::Read => !self.private,
            Need::Write => self.anonymous_upload,
        };
        match (open, proofs.first()) {
            (true, None) => allow(Who::Anonymous),
            (true, Some(Proof::User(a))) => allow(Who::User(a.user.clone())),
            (true, Some(Proof::Link(_))) => allow(Who::Link),
            (false, Some(_)) => Verdict::Forbidden {
                reason: forbidden_reason(&proofs, ask.need),
            },
            (false, None) => Verdict::Unauthorized {
                delay: Duration::ZERO,
                reason: match basic {
                    Some(Err(basic::Refusal::OtherScheme)) => basic::Refusal::OtherScheme.reason(),
                    _ => "credentials required",
                },
                burst_started: false,
            },
        }
    }

    /// The account these Basic credentials prove, or why not.
    fn check_password(
        &self,
        authorization: &str,
        c: &basic::Credentials,
        now: Instant,
    ) -> Result<&Account, &'static str> {
        let key = self.cache.key(authorization);
        if let Some(i) = self.cache.get(&key, now)
            && let Some(account) = self.accounts.get(i)
        {
            return Ok(account);
        }
        let Some((i, account)) = self
            .accounts
            .iter()
            .enumerate()
            .find(|(_, a)| a.user == c.user)
        else {
            // As slow as a wrong password, so that the time of a 401 does
            // not tell which user names exist: the first hashed password
            // pays the same crypt cost (with hashes of several kinds,
            // exactly so for the accounts sharing its kind).
            if let Some(a) = self.accounts.iter().find(|a| a.password.is_hash()) {
                a.password.verify(&c.password);
            }
            return Err("unknown user");
        };
        if !account.password.verify(&c.password) {
            return Err("wrong password");
        }
        self.cache.put(key, i, now);
        Ok(account)
    }

    fn check_token(&self, t: &str, ask: &Ask) -> Result<token::Rights, TokenError> {
        // Without a secret no link was ever made here: any token is foreign.
        let secret = self.secret.as_ref().ok_or(TokenError::NotValidHere)?;
        let path = (ask.path, ask.need == Need::Read);
        token::verify_any(secret, t, Some(path), ask.upload_scope, ask.wall)
    }
}

fn grants(r: token::Rights, need: Need) -> bool {
    match need {
        Need::Read => r.read,
        Need::Write => r.write,
    }
}

fn forbidden_reason(proofs: &[Proof], need: Need) -> &'static str {
    match (proofs.first(), need) {
        (Some(Proof::User(a)), Need::Write) if !a.write => "read-only account",
        (Some(Proof::User(_)), _) => "outside the account's folder",
        (_, Need::Write) => "link does not allow writing",
        (_, Need::Read) => "link does not allow reading",
    }
}

#[cfg(test)]
mod tests;
