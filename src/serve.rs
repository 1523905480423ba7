//! The file-serving pipeline: the only part of the core that touches the file
//! system. Every decision is made before a byte is sent, in this order
//! (docs/semantics.md §2, RFC 9110 §13.2.2):
//!
//! 1. [`decode_target`]: decode the target once, refuse hostile paths (400);
//!    then dotfiles (404).
//! 2. `open`: open the file under the root, refuse anything outside it (404),
//!    and `fstat` the handle — the validators come from the
//!    handle the body will be read from, never from an earlier `stat` (§7).
//! 3. Directories: `/dir` → 301 `/dir/`; `/dir/` → `index.html`, a listing
//!    (HTML or JSON), or 404.
//! 4. Method: GET and HEAD only, else 405 with `Allow`.
//! 5. A version-pinned link (`?v=<etag>`) whose version is gone → 412.
//! 6. `conditional::evaluate` → 412, 304, or whether to honour Range.
//! 7. `range::evaluate` → 200, 206 (one part or multipart/byteranges) or 416,
//!    with the file's digest when it is known for this very version.
//!
//! The engine then streams the planned body with seek + `Read::take`.

use crate::conditional::{self, Conditions, Decision, Validators};
use crate::digest::{self, Digests, Wants};
use crate::fs_path::query_param;
use crate::message::{Body, Headers, Reply, Request};
use crate::range::{self, Outcome};
use crate::{fs_path, listing, mime, multipart, open_cache, validators};
use std::borrow::Cow;
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

/// Entries shown in one listing at most, so a huge directory cannot make one
/// request allocate without bound.
const MAX_LISTING: usize = 10_000;

/// What the operator chose on the command line.
pub struct Options {
    /// The served folder (its canonical path and a descriptor of it).
    pub root: Arc<fs_path::Root>,
    pub follow_symlinks: bool,
    pub dotfiles: bool,
    pub listing: bool,
    /// `--mime EXT=TYPE` overrides of the content-type table.
    pub mime: mime::Overrides,
    /// Known digests of files; `None` with `--digests off`.
    pub digests: Option<Arc<Digests>>,
}

/// Serves the files under `Options::root`.
pub struct FileServer {
    opts: Options,
}

impl FileServer {
    pub fn new(opts: Options) -> Self {
        FileServer { opts }
    }
}

/// What a folder page shows to this visitor (decided by the caller, who
/// knows the visitor's rights).
#[derive(Clone, Copy)]
pub struct Page<'a> {
    pub upload: listing::Upload,
    /// A capability-link token the page's links and uploads carry along.
    pub token: Option<&'a str>,
}

impl FileServer {
    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// Answers a GET or HEAD (or refuses another method) for a file or
    /// folder; `decoded` is the target as [`decode_target`] returned it.
    pub fn get(&self, req: &Request<'_>, h: &mut Headers, decoded: &str, page: Page<'_>) -> Reply {
        if !self.opts.dotfiles && fs_path::has_dotfile(decoded) {
            return error(h, 404);
        }
        let (file, meta) = match self.open(decoded) {
            Ok(o) => o,
            Err(status) => return error(h, status),
        };
        if meta.is_dir() {
            return self.directory(req, h, decoded, page);
        }
        if !meta.is_file() {
            // Devices, sockets and FIFOs are not downloads.
            return error(h, 404);
        }
        self.serve_file(req, h, file, &meta, decoded)
    }

    /// Step 2: the handle and its validators — a kept handle whose file is
    /// unchanged (`open_cache`: one `statx`), else open under the root and
    /// `fstat` the new handle.
    fn open(&self, decoded: &str) -> Result<(Arc<File>, Metadata), u16> {
        if let Some(hit) = open_cache::lookup(&self.opts.root, decoded) {
            return Ok(hit);
        }
        let o =
            fs_path::open(&self.opts.root, decoded, self.opts.follow_symlinks).map_err(|e| {
                if e.kind() == io::ErrorKind::NotFound {
                    log::debug!("{decoded}: not found or outside the root");
                } else {
                    log::warn!("{decoded}: {e}");
                }
                status_for(&e)
            })?;
        let file = Arc::new(o.file);
        open_cache::keep(&self.opts.root, decoded, &file, &o.meta);
        Ok((file, o.meta))
    }

    /// Step 3: a directory answers with a redirect, its index, a listing or 404.
    fn directory(
        &self,
        req: &Request<'_>,
        h: &mut Headers,
        decoded: &str,
        page: Page<'_>,
    ) -> Reply {
        if !decoded.ends_with('/') {
            // Relative links in a listing or an index page need the slash.
            // A link's token goes along: without it, a private folder
            // reached through its link would answer 401 after the redirect.
            let (q, token) = page.token.map_or(("", ""), |t| ("?token=", t));
            h.add_fmt(
                "Location",
                format_args!("{}/{q}{token}", fs_path::encode_path(decoded)),
            );
            h.add("Content-Type", "text/plain; charset=utf-8");
            return Reply::new(301, Body::Static("301 Moved Permanently\n"));
        }
        let index = format!("{decoded}index.html");
        if let Ok((file, meta)) = self.open(&index)
            && meta.is_file()
        {
            return self.serve_file(req, h, file, &meta, &index);
        }
        if !self.opts.listing {
            return error(h, 404);
        }
        if !is_get_or_head(req.method) {
            return method_not_allowed(h);
        }
        let Some(path) = fs_path::join(&self.opts.root, decoded) else {
            return error(h, 404);
        };
        let query = req.target.split_once('?').map(|(_, q)| q);
        let view = listing::View {
            path: decoded,
            sort: listing::parse_sort(query),
            upload: page.upload,
            token: page.token,
        };
        let json = query_param(req.target, "format") == Some("json")
            || req
                .header("accept")
                .is_some_and(|a| a.contains("application/json"));
        match self.list(&path, json) {
            Ok(mut entries) if json => {
                let body = listing::render_json(&view, &mut entries);
                h.add("Content-Type", "application/json");
                h.add("Cache-Control", "no-cache");
                Reply::new(200, Body::Bytes(body.into_bytes()))
            }
            Ok(mut entries) => {
                let html = listing::render(&view, &mut entries);
                h.add("Content-Type", "text/html; charset=utf-8");
                h.add("Cache-Control", "no-cache");
                // The page's own script and style only (its assets live
                // under /.ranged/); no inline code, no other origin.
                h.add(
                    "Content-Security-Policy",
                    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
                );
                h.add("X-Content-Type-Options", "nosniff");
                Reply::new(200, Body::Bytes(html.into_bytes()))
            }
            Err(e) => {
                log::warn!("listing {}: {e}", path.display());
                error(h, status_for(&e))
            }
        }
    }

    /// The entries of a folder; `digests`: also each file's digest when
    /// known (one open and one `fgetxattr` per file — the JSON listing's).
    fn list(&self, dir: &Path, digests: bool) -> io::Result<Vec<listing::Entry>> {
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            if entries.len() == MAX_LISTING {
                log::warn!("listing {} cut at {MAX_LISTING} entries", dir.display());
                break;
            }
            let Ok(entry) = entry else { continue };
            let Ok(name) = entry.file_name().into_string() else {
                continue; // not UTF-8: it could not be requested anyway
            };
            if !self.opts.dotfiles && name.starts_with('.') {
                continue;
            }
            // Follows symlinks, as a request for the name would; a link that
            // leads outside the root or nowhere is left out of the listing.
            let path = entry.path();
            if !self.opts.follow_symlinks
                && entry.file_type().is_ok_and(|t| t.is_symlink())
                && !std::fs::canonicalize(&path).is_ok_and(|p| p.starts_with(self.opts.root.path()))
            {
                continue;
            }
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if self.opts.root.is_fence(&meta) {
                continue; // the state folder, under whatever name
            }
            let etag = meta.is_file().then(|| {
                let mut buf = [0u8; validators::ETAG_MAX];
                validators::etag_of(&mut buf, &meta).to_owned()
            });
            let digest = match &self.opts.digests {
                Some(d) if digests && meta.is_file() => fs_path::open_plain(&path)
                    .ok()
                    .and_then(|f| Some((f.metadata().ok()?, f)))
                    .and_then(|(m, f)| d.known(&f, &m))
                    .map(|sha| crate::base64::encode(&sha)),
                _ => None,
            };
            entries.push(listing::Entry {
                name,
                is_dir: meta.is_dir(),
                size: meta.len(),
                mtime: meta.modified().ok(),
                etag,
                digest,
            });
        }
        Ok(entries)
    }
}

impl FileServer {
    /// Steps 4–7 for a regular file whose handle and `fstat` we hold.
    fn serve_file(
        &self,
        req: &Request<'_>,
        h: &mut Headers,
        file: Arc<File>,
        meta: &Metadata,
        decoded: &str,
    ) -> Reply {
        if !is_get_or_head(req.method) {
            return method_not_allowed(h);
        }
        let size = meta.len();
        let mut etag_buf = [0u8; validators::ETAG_MAX];
        let etag = validators::etag_of(&mut etag_buf, meta);
        let last_modified = validators::last_modified(meta.mtime());
        // A version-pinned link (`?v=<etag>`) is answered only while the file is
        // that version; afterwards no client can splice, If-Range or not.
        if let Some(pinned) = query_param(req.target, "v").filter(|v| is_pin(v))
            && pinned != etag.trim_matches('"')
        {
            return version_gone(req, h);
        }
        let v = Validators {
            etag,
            last_modified,
        };
        let if_match = list_field(req, "if-match");
        let if_none_match = list_field(req, "if-none-match");
        let c = Conditions {
            if_match: if_match.as_deref(),
            if_none_match: if_none_match.as_deref(),
            if_modified_since: single_field(req, "if-modified-since"),
            if_unmodified_since: single_field(req, "if-unmodified-since"),
            if_range: single_field(req, "if-range"),
        };
        let use_range = match conditional::evaluate(&c, &v, req.now) {
            Decision::PreconditionFailed => return error(h, 412),
            Decision::NotModified => {
                // RFC 9110 §15.4.5: the fields a 200 would carry that describe the
                // cache entry; no Content-Type, no body.
                add_validators(h, etag, last_modified);
                return Reply::new(304, Body::Empty);
            }
            Decision::Proceed { use_range } => use_range,
        };
        // Range is defined for GET (RFC 9110 §14.2); HEAD mirrors GET (§9.3.2).
        // A Range sent on several lines is not a valid single field: ignore it.
        let outcome = match single_field(req, "range") {
            Some(value) if use_range => range::evaluate(value, size),
            _ => Outcome::Ignore,
        };
        let content_type = mime::content_type_with(decoded, &self.opts.mime);
        if !matches!(outcome, Outcome::Unsatisfiable) {
            self.add_digest(req, h, &file, meta, decoded);
        }
        match outcome {
            Outcome::Ignore => {
                full_headers(h, content_type, etag, last_modified);
                Reply::new(
                    200,
                    Body::File {
                        file,
                        start: 0,
                        len: size,
                    },
                )
            }
            Outcome::Unsatisfiable => {
                // RFC 9110 §15.5.17: say how long the representation is.
                h.add_fmt("Content-Range", format_args!("bytes */{size}"));
                error(h, 416)
            }
            Outcome::Partial(ranges) if ranges.len() == 1 => {
                let r = ranges[0];
                full_headers(h, content_type, etag, last_modified);
                h.add_fmt(
                    "Content-Range",
                    format_args!("bytes {}-{}/{size}", r.start, r.last()),
                );
                Reply::new(
                    206,
                    Body::File {
                        file,
                        start: r.start,
                        len: r.len,
                    },
                )
            }
            Outcome::Partial(ranges) => {
                // RFC 9110 §14.6: no top-level Content-Range; each part has its own.
                let boundary = multipart::boundary();
                let parts = multipart::parts(&ranges, size, content_type, &boundary);
                h.add_fmt(
                    "Content-Type",
                    format_args!("multipart/byteranges; boundary={boundary}"),
                );
                h.add("Accept-Ranges", "bytes");
                add_validators(h, etag, last_modified);
                Reply::new(206, Body::Parts { file, parts })
            }
        }
    }

    /// Step 7's digest: the digest of this very version of the file, when known
    /// (RFC 9530 §3 `Repr-Digest`; the RFC 3230 `Digest` when `Want-Digest`
    /// asks for SHA-256, as aria2c does). The same on 200, every 206 and HEAD:
    /// it is the whole file's. Never computed here — at most queued for the
    /// background hasher.
    fn add_digest(
        &self,
        req: &Request<'_>,
        h: &mut Headers,
        file: &File,
        meta: &Metadata,
        decoded: &str,
    ) {
        let Some(digests) = &self.opts.digests else {
            return;
        };
        let wants = Wants::parse(req.all("want-repr-digest"), req.all("want-digest"));
        let path = || fs_path::join(&self.opts.root, decoded);
        if let Some(d) = digests.for_response(file, meta, path, wants) {
            if wants.send_repr_digest() {
                h.add("Repr-Digest", &digest::repr_digest_value(&d));
            }
            if wants.send_digest() {
                h.add("Digest", &digest::legacy_digest_value(&d));
            }
        }
    }
}

/// The fields every 200 and single-part 206 carry (RFC 9110 §15.3.7).
fn full_headers(
    h: &mut Headers,
    content_type: &str,
    etag: &str,
    lm: Option<std::time::SystemTime>,
) {
    h.add("Content-Type", content_type);
    h.add("Accept-Ranges", "bytes");
    add_validators(h, etag, lm);
}

fn add_validators(h: &mut Headers, etag: &str, lm: Option<std::time::SystemTime>) {
    h.add("ETag", etag);
    // Out of the IMF-fixdate range (before 1970, after 9999): no header rather
    // than a wrong date or a panic.
    let mut buf = [0u8; 29];
    if let Some(date) = lm.and_then(|t| validators::imf_fixdate_into(&mut buf, t)) {
        h.add("Last-Modified", date);
    }
}

/// A file-system error as a status with no detail: the detail is logged, the
/// client learns only "forbidden" or "not found".
fn status_for(e: &io::Error) -> u16 {
    match e.kind() {
        io::ErrorKind::PermissionDenied => 403,
        _ => 404,
    }
}

/// Step 1: the request target decoded once (docs/semantics.md §4), or a
/// 400 whose reason goes to the log with the client's address.
pub fn decode_target(req: &Request<'_>) -> Result<String, u16> {
    fs_path::decode(origin_form(req.target)).map_err(|e| {
        let mut target = String::new();
        crate::logging::push_url(&mut target, req.target.as_bytes());
        log::warn!("{}: refused with 400, {e}: \"{target}\"", req.peer);
        400u16
    })
}

/// Accepts absolute-form targets (RFC 9112 §3.2.2: a server MUST accept them)
/// by dropping the scheme and authority.
fn origin_form(target: &str) -> &str {
    for scheme in ["http://", "https://"] {
        // Compare bytes: the target may hold UTF-8, and slicing a str inside a
        // character would panic (a client-triggered 500).
        let prefix = target.as_bytes().get(..scheme.len());
        if target.len() > scheme.len()
            && prefix.is_some_and(|p| p.eq_ignore_ascii_case(scheme.as_bytes()))
        {
            let rest = &target[scheme.len()..];
            return rest.find('/').map_or("/", |i| &rest[i..]);
        }
    }
    target
}

/// Whether a `v` query value is a version pin: the inside of one of our
/// ETags, three or four dash-separated lowercase hex fields
/// (`f4240-18eb…-990141-18eb…`).
/// Anything else — `?v=1`, a cache-buster many pages add — is just part of
/// a query, which never names a different file (docs/semantics.md §4).
fn is_pin(v: &str) -> bool {
    let fields: Vec<&str> = v.split('-').collect();
    (3..=4).contains(&fields.len())
        && fields.iter().all(|f| {
            (1..=32).contains(&f.len()) && f.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
}

/// The answer to a pinned link whose version is gone: 412, whose body is
/// never mistaken for the rest of the file. A resuming client must stop
/// with an error and leave its partial file alone: curl treats an answer of
/// exactly the resume offset's length as "already complete", so the body
/// length steers clear of the Range's first byte.
fn version_gone(req: &Request<'_>, h: &mut Headers) -> Reply {
    const BODY: &str =
        "412 Precondition Failed: this link names a version of the file that has changed\n";
    const LONGER: &str = "412 Precondition Failed: this link names a version of the file that has changed (it was replaced)\n";
    let offset = single_field(req, "range")
        .and_then(|r| r.trim().strip_prefix("bytes="))
        .and_then(|r| r.split('-').next())
        .and_then(|n| n.trim().parse::<usize>().ok());
    h.add("Content-Type", "text/plain; charset=utf-8");
    h.add("Cache-Control", "no-store");
    let body = if offset == Some(BODY.len()) {
        LONGER
    } else {
        BODY
    };
    Reply::new(412, Body::Static(body))
}

fn is_get_or_head(method: &str) -> bool {
    method == "GET" || method == "HEAD"
}

fn method_not_allowed(h: &mut Headers) -> Reply {
    h.add("Allow", "GET, HEAD");
    error(h, 405)
}

fn error(h: &mut Headers, status: u16) -> Reply {
    Reply::error(h, status)
}

/// A singleton field; sent on several lines it is invalid and ignored.
fn single_field<'a>(req: &Request<'a>, name: &str) -> Option<&'a str> {
    if req.header_count(name) > 1 {
        return None;
    }
    req.header(name)
}

/// A list-valued field, its lines joined as RFC 9110 §5.3 allows.
fn list_field<'a>(req: &Request<'a>, name: &str) -> Option<Cow<'a, str>> {
    match req.header_count(name) {
        0 => None,
        1 => req.header(name).map(Cow::Borrowed),
        _ => Some(Cow::Owned(req.all(name).collect::<Vec<_>>().join(", "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_form_targets_become_origin_form() {
        let cases = [
            ("/a/b?x", "/a/b?x"),
            ("http://host/a", "/a"),
            ("HTTP://host:8080/a%20b", "/a%20b"),
            ("https://host", "/"),
            ("http://", "http://"),
            ("*", "*"),
            // Multi-byte characters across the scheme-length boundary.
            ("/aaaaaé", "/aaaaaé"),
            ("/aaaaaaé", "/aaaaaaé"),
            ("/日本語", "/日本語"),
        ];
        for (input, want) in cases {
            assert_eq!(origin_form(input), want, "{input}");
        }
    }

    #[test]
    fn only_etag_shaped_values_pin() {
        for (v, pin) in [
            ("f4240-18ebedd3bd709183-990141", true),
            ("0-0-0", true),
            ("1", false),
            ("v2", false),
            ("abc-def", false),
            ("a-b-c-d", true),
            ("a-b-c-d-e", false),
            ("F4240-1-1", false),
            ("1--1", false),
            ("", false),
        ] {
            assert_eq!(is_pin(v), pin, "{v}");
        }
    }

    /// A folder of more than `MAX_LISTING` entries is listed up to the cap:
    /// one page never stats (and, for JSON, opens) an unbounded number of
    /// files.
    #[test]
    fn listings_stop_at_the_cap() {
        let dir = crate::testing::TempDir::new();
        for i in 0..=MAX_LISTING {
            std::fs::File::create(dir.path().join(format!("f{i}"))).unwrap();
        }
        let root = fs_path::Root::new(std::fs::canonicalize(dir.path()).unwrap()).unwrap();
        let server = FileServer::new(Options {
            root: Arc::new(root),
            follow_symlinks: false,
            dotfiles: false,
            listing: true,
            mime: mime::Overrides::default(),
            digests: None,
        });
        let entries = server.list(dir.path(), false).unwrap();
        assert_eq!(entries.len(), MAX_LISTING);
    }

    #[test]
    fn io_errors_never_become_5xx() {
        use io::ErrorKind::*;
        for (kind, want) in [
            (PermissionDenied, 403),
            (NotFound, 404),
            (Other, 404),
            (InvalidInput, 404),
        ] {
            assert_eq!(status_for(&io::Error::from(kind)), want, "{kind:?}");
        }
    }
}
