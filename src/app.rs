//! The server's front door: every request passes here, in this order.
//!
//! 1. The server's own files under `/.ranged/` (the folder page's script and
//!    style): public, GET and HEAD, strong ETags.
//! 2. The target decoded once (400 for a hostile path, `serve`).
//! 3. CORS (`--cors`): the allowed origin's preflight, and the fields every
//!    answer to it carries.
//! 4. What the request needs — reading (GET, HEAD, listings) or writing
//!    (PUT, tus) — and whether what it carries grants it (`auth`): 401 with
//!    a challenge, held back after repeated failures without holding a
//!    thread; 403 for valid credentials without the right.
//! 5. Downloads and folder pages (`serve`), or uploads (`upload::http`).

use crate::auth::{self, Ask, Need, Policy, Verdict, Who, token};
use crate::fs_path::{self, query_param};
use crate::listing;
use crate::message::{Action, Body, Handler, Headers, Reply, Request};
use crate::serve::{self, FileServer, Page};
use crate::upload::http::{TokenFor, Uploader, Uploads};
use crate::upload::store::UploadId;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Fields a browser on another origin may read from tus answers (without
/// them, clients fail with "invalid or missing offset value").
const CORS_EXPOSE: &str = "Upload-Offset, Location, Upload-Length, Tus-Version, Tus-Resumable, Tus-Max-Size, Tus-Extension, Tus-Checksum-Algorithm, Upload-Metadata, Upload-Defer-Length, Upload-Expires, Repr-Digest, ETag";
const CORS_ALLOW_HEADERS: &str = "Authorization, Content-Type, Upload-Length, Upload-Offset, Tus-Resumable, Upload-Metadata, Upload-Defer-Length, Upload-Checksum, X-HTTP-Method-Override, X-Requested-With, Repr-Digest, If-Match, If-None-Match";
const METHODS_WITH_UPLOADS: &str = "GET, HEAD, PUT, POST, PATCH, DELETE, OPTIONS";

/// One of the server's own files.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    /// Strong, from the content: a new build's script is never mistaken
    /// for the old one.
    etag: String,
}

/// Everything a request can reach.
pub struct App {
    files: FileServer,
    policy: Policy,
    uploads: Option<Uploads>,
    /// Makes the token of an upload created through a link.
    token_for: Option<Arc<TokenFor>>,
    /// Some account exists, so a visitor may log in to upload.
    accounts: bool,
    cors: Vec<String>,
    assets: Vec<Asset>,
    link_user: Arc<str>,
}

impl App {
    pub fn new(
        files: FileServer,
        policy: Policy,
        uploads: Option<Uploads>,
        secret: Option<token::Secret>,
        accounts: bool,
        cors: Vec<String>,
    ) -> App {
        let token_for = secret.map(|secret| -> Arc<TokenFor> {
            Arc::new(move |id: &UploadId, expiry: u64| {
                let rights = token::Rights {
                    read: false,
                    write: true,
                };
                let until = SystemTime::UNIX_EPOCH + Duration::from_secs(expiry);
                Some(token::sign(&secret, &format!("upload:{id}"), rights, until))
            })
        });
        let assets = listing::ASSETS
            .iter()
            .map(|(path, content_type, body)| {
                let sum = Sha256::digest(body);
                let etag = format!("\"{}\"", crate::base64::encode_url(&sum[..12]));
                Asset {
                    path,
                    content_type,
                    body,
                    etag,
                }
            })
            .collect();
        App {
            files,
            policy,
            uploads,
            token_for,
            accounts,
            cors,
            assets,
            link_user: Arc::from("link"),
        }
    }
}

impl Handler for App {
    fn housekeeping(&self) -> Option<Duration> {
        crate::open_cache::expire()
    }

    fn handle(&self, req: &Request<'_>, h: &mut Headers) -> Action {
        let decoded = match serve::decode_target(req) {
            Ok(d) => d,
            Err(status) => return Reply::error(h, status).into(),
        };
        // Decided on the decoded path: `//.ranged/`, `/%2eranged/` and
        // absolute-form targets name the same thing, and none of them may
        // reach the state folder of the same name.
        if fs_path::is_reserved(&decoded) {
            return self.asset(req, h, &decoded).into();
        }
        let origin = self.cors_origin(req);
        if let Some(origin) = origin {
            h.add("Access-Control-Allow-Origin", origin);
            h.add("Vary", "Origin");
            h.add("Access-Control-Expose-Headers", CORS_EXPOSE);
        }
        let token = query_param(req.target, "token");
        let upload = query_param(req.target, "upload").and_then(UploadId::parse);
        // tus core: a client that cannot send PATCH sends POST with this
        // field, which "MUST be honoured".
        let method = match (req.method, req.header("x-http-method-override")) {
            ("POST", Some(m)) if self.uploads.is_some() => m,
            (m, _) => m,
        };
        match (method, upload) {
            // Without uploads the server is the download server of
            // docs/semantics.md: the path decides before the method (a
            // missing file is 404 for any method, §2), OPTIONS included.
            _ if self.uploads.is_none() => self.read(req, h, &decoded, token).into(),
            ("OPTIONS", _) => self.options(req, h, origin.is_some()).into(),
            ("GET", _) | ("HEAD", None) => self.read(req, h, &decoded, token).into(),
            ("PUT", None) | ("POST", None) => self.write(req, h, method, &decoded, token),
            ("HEAD" | "PATCH" | "DELETE", Some(id)) => self.upload(req, h, method, id, token),
            _ => self.not_allowed(h).into(),
        }
    }
}

impl App {
    /// GET and HEAD of files and folders (and `?login`).
    fn read(
        &self,
        req: &Request<'_>,
        h: &mut Headers,
        decoded: &str,
        token: Option<&str>,
    ) -> Reply {
        if query_param(req.target, "login").is_some() || req.target.ends_with("?login") {
            return self.login(req, h, decoded, token);
        }
        let user = match self.check(req, h, Need::Read, decoded, token, None) {
            Ok(u) => u,
            Err(refused) => return refused,
        };
        // Only a folder's page needs to know whether this visitor may upload.
        let upload = if decoded.ends_with('/') {
            self.page_upload(req, decoded, token)
        } else {
            listing::Upload::No
        };
        self.files
            .get(req, h, decoded, Page { upload, token })
            .by(user)
    }

    /// PUT of a file, or tus creation (POST to a folder).
    fn write(
        &self,
        req: &Request<'_>,
        h: &mut Headers,
        method: &str,
        decoded: &str,
        token: Option<&str>,
    ) -> Action {
        let Some(up) = &self.uploads else {
            return self.not_allowed(h).into();
        };
        if method == "POST" && !decoded.ends_with('/') {
            h.add("Allow", "GET, HEAD, PUT, OPTIONS");
            return Reply::error(h, 405).into();
        }
        let who = match self.check(req, h, Need::Write, decoded, token, None) {
            Ok(user) => self.uploader(user, token),
            Err(refused) => return refused.into(),
        };
        if method == "PUT" {
            up.put(req, h, decoded, &who)
        } else {
            up.create(req, h, decoded, &who, self.token_for.clone())
        }
    }

    /// HEAD, PATCH and DELETE of a tus upload, checked against the file it
    /// will become (or, for an upload made through a link, its own token).
    fn upload(
        &self,
        req: &Request<'_>,
        h: &mut Headers,
        method: &str,
        id: UploadId,
        token: Option<&str>,
    ) -> Action {
        let Some(up) = &self.uploads else {
            return self.not_allowed(h).into();
        };
        let Some(path) = up.upload_path(&id) else {
            h.add("Tus-Resumable", crate::upload::tus::TUS_VERSION);
            return Reply::error(h, 404).into();
        };
        let scope = format!("upload:{id}");
        let who = match self.check(req, h, Need::Write, &path, token, Some(&scope)) {
            Ok(user) => self.uploader(user, None),
            Err(refused) => return refused.into(),
        };
        match method {
            "HEAD" => up.head(req, h, id, &who),
            "PATCH" => up.patch(req, h, id, &who),
            _ => up.delete(req, h, id, &who),
        }
    }

    /// Whether the request's credentials grant `need` at `path`. `Ok`: the
    /// user for the log; `Err`: the refusal to send.
    fn check(
        &self,
        req: &Request<'_>,
        h: &mut Headers,
        need: Need,
        path: &str,
        token: Option<&str>,
        upload_scope: Option<&str>,
    ) -> Result<Option<Arc<str>>, Reply> {
        let authorization = req.header("authorization");
        // Nothing needed and nothing carried: the common download.
        let open = match need {
            Need::Read => !self.policy.private,
            Need::Write => self.policy.anonymous_upload,
        };
        if open && authorization.is_none() && token.is_none() {
            return Ok(None);
        }
        let ask = Ask {
            need,
            path,
            authorization,
            token,
            upload_scope,
            peer: req.peer,
            now: Instant::now(),
            wall: SystemTime::now(),
        };
        match self.policy.decide(&ask) {
            Verdict::Allow { who, burst_ended } => {
                if let Some(n) = burst_ended {
                    log::info!("{}: authenticated after {n} failures", req.peer);
                }
                Ok(match who {
                    Who::Anonymous => None,
                    Who::User(name) => Some(Arc::from(name)),
                    Who::Link => Some(Arc::clone(&self.link_user)),
                })
            }
            Verdict::Unauthorized {
                delay,
                reason,
                burst_started,
            } => {
                if burst_started {
                    log::warn!(
                        "{}: repeated authentication failures; answers to it are now held back",
                        req.peer
                    );
                }
                log::debug!("{}: 401 for {path}: {reason}", req.peer);
                h.add("WWW-Authenticate", auth::challenge());
                Err(Reply::error(h, 401).delayed(delay))
            }
            Verdict::Forbidden { reason } => {
                log::info!("{}: 403 for {path}: {reason}", req.peer);
                Err(Reply::error(h, 403))
            }
        }
    }

    fn uploader(&self, user: Option<Arc<str>>, token: Option<&str>) -> Uploader {
        let link = user
            .as_ref()
            .is_some_and(|u| Arc::ptr_eq(u, &self.link_user));
        Uploader {
            link_expiry: if link {
                token.and_then(token::expiry)
            } else {
                None
            },
            user,
        }
    }

    /// Whether a folder's page shows the upload control.
    fn page_upload(&self, req: &Request<'_>, folder: &str, token: Option<&str>) -> listing::Upload {
        if self.uploads.is_none() {
            return listing::Upload::No;
        }
        if self.policy.anonymous_upload {
            return listing::Upload::Yes;
        }
        let ask = Ask {
            need: Need::Write,
            path: folder,
            authorization: req.header("authorization"),
            token,
            upload_scope: None,
            peer: req.peer,
            now: Instant::now(),
            wall: SystemTime::now(),
        };
        match self.policy.decide(&ask) {
            Verdict::Allow { .. } => listing::Upload::Yes,
            Verdict::Unauthorized { .. } if self.accounts => listing::Upload::Login,
            _ => listing::Upload::No,
        }
    }

    /// `?login`: the page's "Log in to upload". 401 until the browser sends
    /// credentials that may write here, then back to the folder.
    fn login(
        &self,
        req: &Request<'_>,
        h: &mut Headers,
        folder: &str,
        token: Option<&str>,
    ) -> Reply {
        match self.check(req, h, Need::Write, folder, token, None) {
            Ok(user) if user.is_some() || self.policy.anonymous_upload => {
                let mut to = fs_path::encode_path(folder);
                if let Some(t) = token {
                    to.push_str("?token=");
                    to.push_str(t);
                }
                h.add("Location", &to);
                h.add("Content-Type", "text/plain; charset=utf-8");
                Reply::new(303, Body::Static("303 See Other\n")).by(user)
            }
            Ok(_) => {
                h.add("WWW-Authenticate", auth::challenge());
                Reply::error(h, 401)
            }
            Err(refused) => refused,
        }
    }

    /// OPTIONS: a CORS preflight, or what the server supports here.
    fn options(&self, req: &Request<'_>, h: &mut Headers, cors: bool) -> Reply {
        if cors && req.header("access-control-request-method").is_some() {
            // Fetch standard §"CORS-preflight fetch": 200 or 204 with the
            // methods and fields allowed; cached for a day.
            h.add("Access-Control-Allow-Methods", METHODS_WITH_UPLOADS);
            h.add("Access-Control-Allow-Headers", CORS_ALLOW_HEADERS);
            h.add("Access-Control-Max-Age", "86400");
            return Reply::new(204, Body::Empty);
        }
        match &self.uploads {
            Some(up) => up.options(h),
            None => self.not_allowed(h),
        }
    }

    fn not_allowed(&self, h: &mut Headers) -> Reply {
        let allow = if self.uploads.is_some() {
            METHODS_WITH_UPLOADS
        } else {
            "GET, HEAD"
        };
        h.add("Allow", allow);
        Reply::error(h, 405)
    }

    /// The page's script and style: fixed URLs, public, revalidated on each
    /// use (`no-cache` + a strong ETag) so an upgrade is never half-applied.
    fn asset(&self, req: &Request<'_>, h: &mut Headers, path: &str) -> Reply {
        let Some(a) = self.assets.iter().find(|a| a.path == path) else {
            return Reply::error(h, 404);
        };
        if req.method != "GET" && req.method != "HEAD" {
            h.add("Allow", "GET, HEAD");
            return Reply::error(h, 405);
        }
        h.add("ETag", &a.etag);
        h.add("Cache-Control", "no-cache");
        if req
            .header("if-none-match")
            .is_some_and(|v| crate::conditional::none_match(v, &a.etag))
        {
            return Reply::new(304, Body::Empty);
        }
        h.add("Content-Type", a.content_type);
        h.add("X-Content-Type-Options", "nosniff");
        Reply::new(200, Body::Static(std::str::from_utf8(a.body).unwrap_or("")))
    }

    /// The request's `Origin` when `--cors` allows it.
    fn cors_origin<'r>(&self, req: &Request<'r>) -> Option<&'r str> {
        let origin = req.header("origin")?;
        self.cors
            .iter()
            .any(|c| c == "*" || c.eq_ignore_ascii_case(origin))
            .then_some(origin)
    }
}
