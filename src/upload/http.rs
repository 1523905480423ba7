//! The HTTP side of uploads: PUT (a whole file, replaced atomically) and tus
//! 1.0.0 (creation, creation-with-upload, creation-defer-length, termination,
//! expiration, checksum). Each request is decided on the worker from its
//! head and the store's in-memory index — refusals go out before any body
//! is read — and its disk work (creating, appending, `fsync`, publishing)
//! happens in a sink on a body thread.
//!
//! Upload URLs are the target folder with a query: `POST /incoming/` creates
//! `Location: /incoming/?upload=<id>` — an absolute path, as tus clients
//! resolve it against the creation URL, and never a name a real file could
//! have. Uploads created through a capability link get a token of their own
//! in that URL, good for that one upload only.

use super::store::{
    BeginError, CreateError, Info, NewUpload, PublishError, Published, Staged, Store, Target,
    UploadId, WriteError, Writer,
};
use super::tus::{self, Algo, ChunkHasher, Refusal};
use crate::digest::{self, Digests};
use crate::fs_path::{self, Root};
use crate::message::{Abort, Action, Body, BodyLength, BodySink, Headers, Receive, Reply, Request};
use std::fmt::Write as _;
use std::ops::ControlFlow;
use std::sync::Arc;

/// What uploads need from the rest of the server.
pub struct Uploads {
    pub store: Arc<Store>,
    pub root: Arc<Root>,
    pub follow_symlinks: bool,
    pub dotfiles: bool,
    pub max_size: Option<u64>,
    pub digests: Option<Arc<Digests>>,
}

/// Who is uploading, as the caller's access decision found.
#[derive(Clone, Default)]
pub struct Uploader {
    /// The account, for the log and the upload's owner.
    pub user: Option<Arc<str>>,
    /// Set when a capability link allowed it: the link's expiry (unix
    /// seconds), which the upload inherits, and the upload's own token
    /// for its URL is made by `token_for`.
    pub link_expiry: Option<u64>,
}

/// Makes the token an upload created through a link carries in its URL.
pub type TokenFor = dyn Fn(&UploadId, u64) -> Option<String> + Send + Sync;

impl Uploads {
    /// `OPTIONS`: what the tus server supports (tus 1.0.0 §"OPTIONS").
    pub fn options(&self, h: &mut Headers) -> Reply {
        tus_fields(h);
        h.add("Tus-Version", tus::TUS_VERSION);
        h.add("Tus-Extension", tus::TUS_EXTENSIONS);
        h.add("Tus-Checksum-Algorithm", tus::CHECKSUM_ALGORITHMS);
        if let Some(max) = self.max_size {
            h.add_fmt("Tus-Max-Size", format_args!("{max}"));
        }
        h.add("Allow", "GET, HEAD, PUT, POST, PATCH, DELETE, OPTIONS");
        Reply::new(204, Body::Empty)
    }

    /// `PUT /path/name`: the body replaces (or creates) the file atomically.
    pub fn put(&self, req: &Request<'_>, h: &mut Headers, decoded: &str, who: &Uploader) -> Action {
        // RFC 9110 §14.5: a partial PUT must never replace the whole file.
        if req.header("content-range").is_some() {
            return refuse(
                h,
                false,
                400,
                "Content-Range on PUT: partial PUT is not supported",
            );
        }
        let Some((dir, name)) = split_name(decoded) else {
            return refuse(h, false, 409, "PUT needs a file name, not a folder");
        };
        if let Err(r) = self.check_segments(decoded) {
            return refuse(h, false, r.status, r.reason);
        }
        let len = match req.body {
            BodyLength::None => Some(0),
            BodyLength::Known(n) => Some(n),
            BodyLength::Chunked => None,
        };
        if let (Some(len), Some(max)) = (len, self.max_size)
            && len > max
        {
            return refuse(h, false, 413, "the upload is larger than --max-upload-size");
        }
        let expected = match req.header("repr-digest").map(tus::parse_repr_digest) {
            Some(Err(r)) => return refuse(h, false, r.status, r.reason),
            Some(Ok(d)) => d,
            None => None,
        };
        let sink = PutSink {
            up: self.context(),
            dir: dir.to_owned(),
            name: name.to_owned(),
            decoded: decoded.to_owned(),
            len,
            expected,
            if_match: req.header("if-match").map(str::to_owned),
            if_none_match_any: req.header("if-none-match").is_some_and(|v| v.trim() == "*"),
            staged: None,
            target: None,
            failure: None,
            user: who.user.clone(),
        };
        Action::Receive(Receive {
            sink: Box::new(sink),
            max: self.max_size.unwrap_or(u64::MAX),
        })
    }

    /// `POST /folder/`: creates an upload whose finished bytes become
    /// `/folder/<filename>`; with a body, also its first bytes.
    pub fn create(
        &self,
        req: &Request<'_>,
        h: &mut Headers,
        folder: &str,
        who: &Uploader,
        token_for: Option<Arc<TokenFor>>,
    ) -> Action {
        if let Err(r) = tus::check_version(req.header("tus-resumable")) {
            return version_refused(h, r);
        }
        // The creation URL names the destination folder: it must exist
        // (one open beneath the root, as a GET of it would do).
        if !fs_path::open(&self.root, folder, self.follow_symlinks).is_ok_and(|o| o.meta.is_dir()) {
            return refuse(h, true, 404, "no such folder to upload into");
        }
        let length = match tus::creation_length(
            req.header("upload-length"),
            req.header("upload-defer-length"),
            self.max_size,
        ) {
            Ok(l) => l,
            Err(r) => return refuse(h, true, r.status, r.reason),
        };
        let raw_metadata = req.header("upload-metadata").unwrap_or("");
        let metadata = match tus::parse_metadata(raw_metadata) {
            Ok(m) => m,
            Err(r) => return refuse(h, true, r.status, r.reason),
        };
        let name = match tus::file_name(&metadata) {
            Ok(n) => n.to_owned(),
            Err(r) => return refuse(h, true, r.status, r.reason),
        };
        if let Err(r) = self.check_segments(&format!("{folder}{name}")) {
            return refuse(h, true, r.status, r.reason);
        }
        let sha256 = match tus::expected_sha256(req.header("repr-digest"), &metadata) {
            Ok(d) => d,
            Err(r) => return refuse(h, true, r.status, r.reason),
        };
        // creation-with-upload: a body of the right type is the first chunk.
        let first = match req.body {
            BodyLength::None => None,
            _ => {
                if let Err(r) = tus::check_content_type(req.header("content-type")) {
                    return refuse(h, true, r.status, r.reason);
                }
                match chunk_checksum(req) {
                    Ok(c) => Some(c),
                    Err(r) => return refuse(h, true, r.status, r.reason),
                }
            }
        };
        let length = match length {
            tus::Length::Known(n) => Some(n),
            tus::Length::Deferred => None,
        };
        // An empty file is complete at its creation, and tus-js-client and
        // tuspy send nothing after the POST for it: it is published now, as
        // a first chunk of no bytes would be.
        let first = first.or((length == Some(0)).then_some(None));
        let max = self.body_max(length, 0);
        if let BodyLength::Known(n) = req.body
            && n > max
        {
            return refuse(h, true, 413, "the body goes past Upload-Length");
        }
        let sink = CreateSink {
            up: self.context(),
            new: Some(NewUpload {
                target: folder.to_owned(),
                name,
                length,
                metadata: raw_metadata.to_owned(),
                owner: who
                    .user
                    .as_deref()
                    .unwrap_or(if who.link_expiry.is_some() {
                        "link"
                    } else {
                        "-"
                    })
                    .to_owned(),
                sha256,
                deadline: who.link_expiry,
            }),
            first,
            append: None,
            created: None,
            link_expiry: who.link_expiry,
            token_for,
            failure: None,
            user: who.user.clone(),
        };
        receive(h, Box::new(sink), max)
    }

    /// Publishes an upload that was complete when the server stopped but
    /// not yet in its folder (found by the store's recovery).
    pub fn publish_recovered(&self, id: &UploadId) {
        let Some(info) = self.store.info(id) else {
            return;
        };
        let Some(length) = info.length else {
            return;
        };
        let outcome = self
            .store
            .begin(id, length)
            .map_err(begin_failure)
            .and_then(|w| publish(&self.context(), w, &mut Headers::default()));
        if let Err(Failure(status, why)) = outcome {
            log::warn!(
                "upload {id} ({}{}) complete but not published: {status} {why}",
                info.target,
                info.name
            );
        }
    }

    /// The upload a request names, with the path its rights are checked
    /// against (the file it will become).
    pub fn upload_path(&self, id: &UploadId) -> Option<String> {
        self.store
            .info(id)
            .map(|i| format!("{}{}", i.target, i.name))
    }

    /// `PATCH` (or `POST` with `X-HTTP-Method-Override: PATCH`): appends.
    pub fn patch(
        &self,
        req: &Request<'_>,
        h: &mut Headers,
        id: UploadId,
        who: &Uploader,
    ) -> Action {
        if let Err(r) = tus::check_version(req.header("tus-resumable")) {
            return version_refused(h, r);
        }
        if let Err(r) = tus::check_content_type(req.header("content-type")) {
            return refuse(h, true, r.status, r.reason);
        }
        let offset = match tus::parse_offset(req.header("upload-offset")) {
            Ok(o) => o,
            Err(r) => return refuse(h, true, r.status, r.reason),
        };
        let Some(info) = self.store.info(&id) else {
            return refuse(
                h,
                true,
                404,
                "no such upload (finished long ago, expired or cancelled)",
            );
        };
        // Checked here too, so that a refusal goes out before the body.
        if !info.finished && info.offset != offset && !info.writing {
            h.add_fmt("Upload-Offset", format_args!("{}", info.offset));
            return refuse(h, true, 409, "Upload-Offset is not the upload's offset");
        }
        let new_length = match req.header("upload-length") {
            Some(v) if info.length.is_none() => match tus::parse_length(v, self.max_size) {
                Ok(n) => Some(n),
                Err(r) => return refuse(h, true, r.status, r.reason),
            },
            _ => None,
        };
        let checksum = match chunk_checksum(req) {
            Ok(c) => c,
            Err(r) => return refuse(h, true, r.status, r.reason),
        };
        let max = self.body_max(new_length.or(info.length), offset);
        if let BodyLength::Known(n) = req.body
            && n > max
        {
            return refuse(h, true, 413, "the body goes past Upload-Length");
        }
        let sink = PatchSink {
            up: self.context(),
            id,
            offset,
            new_length,
            checksum,
            append: None,
            failure: None,
            user: who.user.clone(),
        };
        receive(h, Box::new(sink), max)
    }

    /// `HEAD` of an upload: its offset, after ending any stale PATCH (so the
    /// offset is the one a new PATCH must send).
    ///
    /// With no PATCH open and nothing to publish, the answer comes from
    /// memory at once: a client asking where to resume never waits for a
    /// body thread behind other clients' long uploads.
    pub fn head(&self, req: &Request<'_>, h: &mut Headers, id: UploadId, who: &Uploader) -> Action {
        if let Err(r) = tus::check_version(req.header("tus-resumable")) {
            return version_refused(h, r);
        }
        let Some(info) = self.store.info(&id) else {
            return refuse(h, true, 404, "no such upload");
        };
        let unpublished = !info.finished && info.length == Some(info.offset);
        if !info.writing && !unpublished {
            return head_reply(h, &info).by(who.user.clone()).into();
        }
        let sink = HeadSink {
            up: self.context(),
            id,
            failure: None,
            user: who.user.clone(),
        };
        receive(h, Box::new(sink), 0)
    }

    /// `DELETE` of an upload (tus termination): its bytes are removed.
    pub fn delete(
        &self,
        req: &Request<'_>,
        h: &mut Headers,
        id: UploadId,
        who: &Uploader,
    ) -> Action {
        if let Err(r) = tus::check_version(req.header("tus-resumable")) {
            return version_refused(h, r);
        }
        if self.store.info(&id).is_none() {
            return refuse(h, true, 404, "no such upload");
        }
        let sink = DeleteSink {
            store: Arc::clone(&self.store),
            id,
            result: None,
            user: who.user.clone(),
        };
        receive(h, Box::new(sink), 0)
    }

    /// Most body bytes a request may carry: what is left of a known length,
    /// else the size cap.
    fn body_max(&self, length: Option<u64>, offset: u64) -> u64 {
        match length {
            Some(n) => n.saturating_sub(offset),
            None => self.max_size.unwrap_or(u64::MAX).saturating_sub(offset),
        }
    }

    /// Every folder and the name of an upload's destination pass the
    /// download rules: no hidden segment (it could never be downloaded,
    /// and `/.ranged` is the server's own), each a plain name.
    fn check_segments(&self, decoded: &str) -> Result<(), Refusal> {
        if !self.dotfiles && fs_path::has_dotfile(decoded) {
            return Err(Refusal {
                status: 400,
                reason: "names starting with a dot are hidden and cannot be uploaded",
            });
        }
        if decoded.split('/').any(|s| s == "." || s == "..") {
            return Err(Refusal {
                status: 400,
                reason: "the path holds a . or .. segment",
            });
        }
        Ok(())
    }

    fn context(&self) -> Context {
        Context {
            store: Arc::clone(&self.store),
            root: Arc::clone(&self.root),
            follow_symlinks: self.follow_symlinks,
            max_size: self.max_size,
            digests: self.digests.clone(),
        }
    }
}

/// What a sink needs of `Uploads`, owned (sinks outlive the request).
struct Context {
    store: Arc<Store>,
    root: Arc<Root>,
    follow_symlinks: bool,
    max_size: Option<u64>,
    digests: Option<Arc<Digests>>,
}

impl Context {
    /// Opens the destination folder of an upload (tus: it must still exist).
    fn target(
        &self,
        dir: &str,
        name: &str,
        create: bool,
        no_clobber: bool,
    ) -> Result<Target, Failure> {
        match fs_path::open_dir(&self.root, dir, self.follow_symlinks, create) {
            Ok(dir) => Ok(Target {
                dir,
                name: name.to_owned(),
                no_clobber,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(Failure(409, "a folder on the way is a file"))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(Failure(409, "the destination folder does not exist"))
            }
            Err(e) => {
                log::warn!("upload into {dir}: {e}");
                Err(Failure(500, "the destination folder cannot be opened"))
            }
        }
    }

    /// After publishing: the new file's validators and digest for the
    /// answer, and the digest kept so that downloads carry it at once —
    /// only if the name still holds the version published: another upload
    /// may have replaced it already, and must not be given this digest.
    fn published(&self, h: &mut Headers, decoded: &str, p: &Published) {
        let Ok(o) = fs_path::open(&self.root, decoded, self.follow_symlinks) else {
            return;
        };
        if digest::Version::of(&o.meta) != p.version {
            return;
        }
        if let Some(d) = &self.digests {
            d.remember(&o.file, &o.meta, p.sha256);
        }
        let mut buf = [0u8; crate::validators::ETAG_MAX];
        let etag = crate::validators::etag_of(&mut buf, &o.meta);
        h.add("ETag", etag);
        h.add("Repr-Digest", &digest::repr_digest_value(&p.sha256));
    }
}

/// A refusal a sink found: the status and a reason for the answer's body.
#[derive(Debug, Clone, Copy)]
struct Failure(u16, &'static str);

/// Appending to a tus upload: the writer and the checksum of this request.
struct Append {
    writer: Writer,
    checksum: Option<(ChunkHasher, Vec<u8>)>,
}

impl Append {
    /// Opens the upload for this request. `Ok(None)`: it is already
    /// published and the client asks to continue at its end — its last
    /// answer was lost, so it is told again rather than failed.
    fn start(
        store: &Arc<Store>,
        id: &UploadId,
        offset: u64,
        new_length: Option<u64>,
        checksum: Option<(Algo, Vec<u8>)>,
    ) -> Result<Option<Append>, Failure> {
        let mut writer = match store.begin(id, offset) {
            Ok(w) => w,
            Err(BeginError::Finished { length }) if length == offset => return Ok(None),
            Err(e) => return Err(begin_failure(e)),
        };
        if let Some(n) = new_length
            && writer.length().is_none()
        {
            writer
                .set_length(n)
                .map_err(|_| Failure(400, "Upload-Length is below the bytes already received"))?;
        }
        // A chunk whose checksum is still unknown must not become durable
        // before it is checked (tus checksum: "the chunk is discarded").
        if checksum.is_some() {
            writer.set_keep_partial(false);
        }
        Ok(Some(Append {
            writer,
            checksum: checksum.map(|(algo, want)| (ChunkHasher::new(algo), want)),
        }))
    }

    fn write(&mut self, data: &[u8]) -> Result<(), Failure> {
        if let Some((hasher, _)) = &mut self.checksum {
            hasher.update(data);
        }
        self.writer.write(data).map_err(write_failure)?;
        if self.checksum.is_none() && self.writer.should_commit() {
            self.writer.commit().map_err(write_failure)?;
        }
        Ok(())
    }

    /// Ends the request: checks the checksum, commits. The committed offset.
    fn finish(&mut self) -> Result<u64, Failure> {
        if let Some((hasher, want)) = self.checksum.take()
            && !hasher.matches(&want)
        {
            let _ = self.writer.rollback();
            return Err(Failure(
                tus::CHECKSUM_MISMATCH,
                "Upload-Checksum does not match the body",
            ));
        }
        self.writer.set_keep_partial(true);
        self.writer.commit().map_err(write_failure)
    }
}

/// Publishes a finished tus upload into its folder.
fn publish(up: &Context, writer: Writer, h: &mut Headers) -> Result<(), Failure> {
    let info = up
        .store
        .info(&writer.id())
        .ok_or(Failure(404, "the upload is gone"))?;
    let target = up.target(&info.target, &info.name, false, false)?;
    match writer.publish(&target) {
        Ok(p) => {
            log::info!(
                "published {}{} ({} bytes, upload {})",
                info.target,
                info.name,
                p.len,
                info.id
            );
            up.published(h, &format!("{}{}", info.target, info.name), &p);
            Ok(())
        }
        Err(e) => Err(publish_failure(e, &info.name)),
    }
}

/// A request that ended early after every byte of its upload arrived (a
/// chunked body cut, or too slow, before its last chunk): the upload is
/// published now. Left for the client's next HEAD,
/// it would wait for a client that may never come back, and expire with
/// every byte. Not when the request itself was wrong (past the length,
/// broken framing): that client is told so and decides.
fn publish_if_complete(up: &Context, append: Option<Append>, failure: Option<Failure>, why: Abort) {
    let Some(mut append) = append else {
        return;
    };
    let complete = append.writer.length() == Some(append.writer.offset());
    let cut = matches!(why, Abort::ClientGone | Abort::TooSlow | Abort::Shutdown);
    if failure.is_some() || !complete || !cut {
        return;
    }
    // A pending checksum is checked here: the whole chunk arrived.
    let outcome = append
        .finish()
        .and_then(|_| publish(up, append.writer, &mut Headers::default()));
    if let Err(Failure(status, reason)) = outcome {
        log::warn!("a complete upload was not published: {status} {reason}");
    }
}

/// A tus answer that carries the upload's offset and expiry.
fn progress_reply(
    up: &Context,
    h: &mut Headers,
    id: &UploadId,
    status: u16,
    location: Option<&str>,
) -> Reply {
    tus_fields(h);
    if let Some(l) = location {
        h.add("Location", l);
    }
    if let Some(info) = up.store.info(id) {
        h.add_fmt("Upload-Offset", format_args!("{}", info.offset));
        if !info.finished
            && let Some(date) = tus::upload_expires(info.expires_at)
        {
            h.add_fmt("Upload-Expires", format_args!("{date}"));
        }
    }
    Reply::new(status, Body::Empty)
}

struct CreateSink {
    up: Context,
    new: Option<NewUpload>,
    /// With a body (creation-with-upload): its checksum, if any.
    first: Option<Option<(Algo, Vec<u8>)>>,
    append: Option<Append>,
    /// The created upload and its URL.
    created: Option<(UploadId, String)>,
    link_expiry: Option<u64>,
    token_for: Option<Arc<TokenFor>>,
    failure: Option<Failure>,
    user: Option<Arc<str>>,
}

impl BodySink for CreateSink {
    fn begin(&mut self, h: &mut Headers) -> Result<(), Reply> {
        let new = self.new.take().expect("begun once");
        // The folder was checked by `create`; publishing opens it again and
        // answers 409 should it have gone meanwhile.
        let folder = new.target.clone();
        let info = match self.up.store.create(new) {
            Ok(i) => i,
            Err(e) => return Err(fail(h, true, create_failure(e)).by(self.user.clone())),
        };
        let mut location = format!("{}?upload={}", fs_path::encode_path(&folder), info.id);
        if let (Some(expiry), Some(token_for)) = (self.link_expiry, &self.token_for)
            && let Some(token) = token_for(&info.id, expiry)
        {
            let _ = write!(location, "&token={token}");
        }
        log::info!("upload {} created for {folder}{}", info.id, info.name);
        self.created = Some((info.id, location));
        if let Some(checksum) = self.first.take() {
            match Append::start(&self.up.store, &info.id, 0, None, checksum) {
                Ok(a) => self.append = a,
                Err(f) => self.failure = Some(f),
            }
        }
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> ControlFlow<()> {
        append_write(&mut self.append, &mut self.failure, data)
    }

    fn finish(mut self: Box<Self>, h: &mut Headers) -> Reply {
        let Some((id, location)) = self.created.take() else {
            return fail(h, true, Failure(500, "the upload was not created"));
        };
        // The upload exists even if its first chunk failed: the client
        // resumes at the offset it is told.
        if let Some(f) = self.failure {
            h.add("Location", &location);
            return fail(h, true, f).by(self.user.clone());
        }
        if let Some(mut append) = self.append.take() {
            if let Err(f) = append.finish() {
                h.add("Location", &location);
                return fail(h, true, f).by(self.user.clone());
            }
            if append.writer.length() == Some(append.writer.offset())
                && let Err(f) = publish(&self.up, append.writer, h)
            {
                h.add("Location", &location);
                return fail(h, true, f).by(self.user.clone());
            }
        }
        progress_reply(&self.up, h, &id, 201, Some(&location)).by(self.user.clone())
    }

    fn abort(mut self: Box<Self>, why: Abort) {
        // A first chunk cut short keeps what arrived (the writer commits on
        // drop), as any PATCH does.
        log::debug!("upload creation ended early: {why}");
        publish_if_complete(&self.up, self.append.take(), self.failure, why);
    }
}

struct PatchSink {
    up: Context,
    id: UploadId,
    offset: u64,
    new_length: Option<u64>,
    checksum: Option<(Algo, Vec<u8>)>,
    append: Option<Append>,
    failure: Option<Failure>,
    user: Option<Arc<str>>,
}

impl BodySink for PatchSink {
    fn begin(&mut self, h: &mut Headers) -> Result<(), Reply> {
        match Append::start(
            &self.up.store,
            &self.id,
            self.offset,
            self.new_length,
            self.checksum.take(),
        ) {
            Ok(Some(a)) => {
                self.append = Some(a);
                Ok(())
            }
            Ok(None) => Err(progress_reply(&self.up, h, &self.id, 204, None).by(self.user.clone())),
            Err(f) => {
                if f.0 == 409
                    && let Some(info) = self.up.store.info(&self.id)
                {
                    h.add_fmt("Upload-Offset", format_args!("{}", info.offset));
                }
                Err(fail(h, true, f).by(self.user.clone()))
            }
        }
    }

    fn write(&mut self, data: &[u8]) -> ControlFlow<()> {
        append_write(&mut self.append, &mut self.failure, data)
    }

    fn finish(mut self: Box<Self>, h: &mut Headers) -> Reply {
        let Some(mut append) = self.append.take() else {
            return fail(h, true, Failure(500, "the upload was not opened")).by(self.user.clone());
        };
        if let Some(f) = self.failure {
            // Keep what was durably written before the failure.
            if f.0 != 413 {
                let _ = append.finish();
            } else {
                let _ = append.writer.rollback();
            }
            drop(append);
            return fail(h, true, f).by(self.user.clone());
        }
        if let Err(f) = append.finish() {
            drop(append);
            return fail(h, true, f).by(self.user.clone());
        }
        if append.writer.length() == Some(append.writer.offset())
            && let Err(f) = publish(&self.up, append.writer, h)
        {
            return fail(h, true, f).by(self.user.clone());
        }
        progress_reply(&self.up, h, &self.id, 204, None).by(self.user.clone())
    }

    fn abort(mut self: Box<Self>, why: Abort) {
        // Dropping the writer commits what arrived (unless a checksum was
        // pending): resuming is the point.
        log::info!(
            "upload {}: request ended early ({why}); what arrived is kept",
            self.id
        );
        publish_if_complete(&self.up, self.append.take(), self.failure, why);
    }
}

struct HeadSink {
    up: Context,
    id: UploadId,
    failure: Option<Failure>,
    user: Option<Arc<str>>,
}

impl BodySink for HeadSink {
    fn begin(&mut self, _h: &mut Headers) -> Result<(), Reply> {
        match self.up.store.settle(&self.id) {
            Ok(()) | Err(BeginError::Finished { .. }) => {}
            Err(e) => self.failure = Some(begin_failure(e)),
        }
        // Complete but never published (the server stopped in between):
        // publish now, so the client's "done" becomes true.
        if self.failure.is_none()
            && let Some(info) = self.up.store.info(&self.id)
            && !info.finished
            && info.length == Some(info.offset)
            && let Ok(writer) = self.up.store.begin(&self.id, info.offset)
        {
            let mut scratch = Headers::default();
            if let Err(f) = publish(&self.up, writer, &mut scratch) {
                self.failure = Some(f);
            }
        }
        Ok(())
    }

    fn write(&mut self, _data: &[u8]) -> ControlFlow<()> {
        ControlFlow::Break(())
    }

    fn finish(self: Box<Self>, h: &mut Headers) -> Reply {
        if let Some(f) = self.failure {
            return fail(h, true, f).by(self.user.clone());
        }
        let Some(info) = self.up.store.info(&self.id) else {
            return fail(h, true, Failure(404, "no such upload")).by(self.user.clone());
        };
        head_reply(h, &info).by(self.user.clone())
    }

    fn abort(self: Box<Self>, _why: Abort) {}
}

/// The answer to a HEAD of an upload (tus 1.0.0 §"HEAD"): its offset
/// always, its length or that it is deferred (tus-js-client will not resume
/// without one of them), its metadata, never cached.
fn head_reply(h: &mut Headers, info: &Info) -> Reply {
    tus_fields(h);
    h.add("Cache-Control", "no-store");
    h.add_fmt("Upload-Offset", format_args!("{}", info.offset));
    match info.length {
        Some(n) => h.add_fmt("Upload-Length", format_args!("{n}")),
        None => h.add("Upload-Defer-Length", "1"),
    }
    if !info.metadata.is_empty() {
        h.add("Upload-Metadata", &info.metadata);
    }
    if !info.finished
        && let Some(date) = tus::upload_expires(info.expires_at)
    {
        h.add_fmt("Upload-Expires", format_args!("{date}"));
    }
    Reply::new(200, Body::Empty)
}

struct DeleteSink {
    store: Arc<Store>,
    id: UploadId,
    result: Option<Result<(), Failure>>,
    user: Option<Arc<str>>,
}

impl BodySink for DeleteSink {
    fn begin(&mut self, _h: &mut Headers) -> Result<(), Reply> {
        self.result = Some(self.store.terminate(&self.id).map_err(begin_failure));
        if matches!(self.result, Some(Ok(()))) {
            log::info!("upload {} cancelled by the client", self.id);
        }
        Ok(())
    }

    fn write(&mut self, _data: &[u8]) -> ControlFlow<()> {
        ControlFlow::Break(())
    }

    fn finish(self: Box<Self>, h: &mut Headers) -> Reply {
        match self.result {
            Some(Ok(())) => {
                tus_fields(h);
                Reply::new(204, Body::Empty).by(self.user.clone())
            }
            Some(Err(f)) => fail(h, true, f).by(self.user.clone()),
            None => fail(h, true, Failure(500, "the upload was not cancelled")),
        }
    }

    fn abort(self: Box<Self>, _why: Abort) {}
}

struct PutSink {
    up: Context,
    dir: String,
    name: String,
    decoded: String,
    len: Option<u64>,
    expected: Option<[u8; 32]>,
    if_match: Option<String>,
    if_none_match_any: bool,
    staged: Option<Staged>,
    target: Option<Target>,
    failure: Option<Failure>,
    user: Option<Arc<str>>,
}

impl PutSink {
    /// `If-Match` / `If-None-Match: *` against the file as it is now (RFC
    /// 9110 §13.1.1, §13.1.2): optimistic concurrency for writers.
    fn preconditions(&self) -> Result<(), Failure> {
        let current = fs_path::open(&self.up.root, &self.decoded, self.up.follow_symlinks).ok();
        if current.as_ref().is_some_and(|o| o.meta.is_dir()) {
            return Err(Failure(409, "a folder of that name exists"));
        }
        let current = current.filter(|o| o.meta.is_file());
        if let Some(list) = &self.if_match {
            let ok = current.as_ref().is_some_and(|o| {
                let mut buf = [0u8; crate::validators::ETAG_MAX];
                crate::conditional::if_match(list, crate::validators::etag_of(&mut buf, &o.meta))
            });
            if !ok {
                return Err(Failure(412, "If-Match does not match the file as it is"));
            }
        }
        if self.if_none_match_any && current.is_some() {
            return Err(Failure(412, "If-None-Match: * and the file exists"));
        }
        Ok(())
    }
}

impl BodySink for PutSink {
    fn begin(&mut self, h: &mut Headers) -> Result<(), Reply> {
        let prepared = self.preconditions().and_then(|()| {
            let target = self
                .up
                .target(&self.dir, &self.name, true, self.if_none_match_any)?;
            let staged = self
                .up
                .store
                .stage(self.len, self.expected)
                .map_err(create_failure)?;
            Ok((target, staged))
        });
        match prepared {
            Ok((target, staged)) => {
                self.target = Some(target);
                self.staged = Some(staged);
                Ok(())
            }
            Err(f) => Err(fail(h, false, f).by(self.user.clone())),
        }
    }

    fn write(&mut self, data: &[u8]) -> ControlFlow<()> {
        let Some(staged) = &mut self.staged else {
            return ControlFlow::Break(());
        };
        if let Some(max) = self.up.max_size
            && staged.len() + data.len() as u64 > max
        {
            self.failure = Some(Failure(413, "the upload is larger than --max-upload-size"));
            return ControlFlow::Break(());
        }
        match staged.write(data) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                self.failure = Some(write_failure(e));
                ControlFlow::Break(())
            }
        }
    }

    fn finish(mut self: Box<Self>, h: &mut Headers) -> Reply {
        if let Some(f) = self.failure {
            return fail(h, false, f).by(self.user.clone());
        }
        let (Some(staged), Some(target)) = (self.staged.take(), self.target.take()) else {
            return fail(h, false, Failure(500, "nothing was staged"));
        };
        // Again now that the body is in: another writer may have replaced
        // the file while it streamed, and If-Match promises not to overwrite
        // that (a lost update). What remains is the window of one rename.
        // (`If-None-Match: *` needs no second look: it publishes with a
        // link that fails if the name exists.)
        if self.if_match.is_some()
            && let Err(f) = self.preconditions()
        {
            return fail(h, false, f).by(self.user.clone());
        }
        match staged.publish(&target) {
            Ok(p) => {
                log::info!("published {} ({} bytes, PUT)", self.decoded, p.len);
                self.up.published(h, &self.decoded, &p);
                let status = if p.replaced { 204 } else { 201 };
                Reply::new(status, Body::Empty).by(self.user.clone())
            }
            // 460 is tus's; a plain PUT whose body is not what its
            // Repr-Digest announced is a bad request (nothing published).
            Err(PublishError::DigestMismatch) => fail(
                h,
                false,
                Failure(
                    400,
                    "the body's SHA-256 is not the one in Repr-Digest; nothing was published",
                ),
            )
            .by(self.user.clone()),
            Err(e) => fail(h, false, publish_failure(e, &self.name)).by(self.user.clone()),
        }
    }

    fn abort(self: Box<Self>, why: Abort) {
        // Dropping the staged file removes it: a cut-short PUT publishes
        // nothing.
        log::info!(
            "PUT {} ended early ({why}); nothing published",
            self.decoded
        );
    }
}

/// Feeds a body to an append, remembering the first failure.
fn append_write(
    append: &mut Option<Append>,
    failure: &mut Option<Failure>,
    data: &[u8],
) -> ControlFlow<()> {
    let Some(a) = append else {
        return ControlFlow::Break(());
    };
    match a.write(data) {
        Ok(()) => ControlFlow::Continue(()),
        Err(f) => {
            *failure = Some(f);
            ControlFlow::Break(())
        }
    }
}

fn begin_failure(e: BeginError) -> Failure {
    match e {
        BeginError::NotFound => Failure(404, "no such upload"),
        BeginError::Gone => Failure(410, "the upload expired"),
        BeginError::Finished { .. } => Failure(409, "the upload is already complete"),
        BeginError::OffsetMismatch { .. } => {
            Failure(409, "Upload-Offset is not the upload's offset")
        }
        BeginError::Busy => Failure(423, "another request still holds the upload; try again"),
        BeginError::TooManyActive => Failure(503, "too many uploads at once; try again"),
        BeginError::Io(e) => {
            log::warn!("upload: {e}");
            Failure(500, "the upload could not be opened")
        }
    }
}

fn create_failure(e: CreateError) -> Failure {
    match e {
        CreateError::TooMany => Failure(503, "too many uploads at once; try again"),
        CreateError::NoSpace => Failure(507, "not enough free space for this upload"),
        CreateError::Io(e) => {
            log::warn!("upload: {e}");
            Failure(500, "the upload could not be created")
        }
    }
}

fn write_failure(e: WriteError) -> Failure {
    match e {
        WriteError::PastLength => Failure(413, "the body goes past Upload-Length"),
        WriteError::Length => Failure(400, "Upload-Length conflicts with the upload"),
        WriteError::NoSpace => Failure(507, "the disk is full"),
        WriteError::Cancelled => Failure(409, "a newer request took the upload over"),
        WriteError::Io(e) => {
            log::warn!("upload: {e}");
            Failure(500, "the upload could not be written")
        }
    }
}

fn publish_failure(e: PublishError, name: &str) -> Failure {
    match e {
        PublishError::Incomplete => Failure(409, "the upload is not complete"),
        PublishError::DigestMismatch => Failure(
            tus::CHECKSUM_MISMATCH,
            "the upload's SHA-256 is not the one announced; nothing was published",
        ),
        PublishError::Exists => Failure(412, "If-None-Match: * and the file exists"),
        PublishError::IsDirectory => Failure(409, "a folder of that name exists"),
        PublishError::Cancelled => Failure(409, "a newer request took the upload over"),
        PublishError::NoSpace => Failure(507, "the disk is full"),
        PublishError::Io(e) => {
            log::warn!("publishing {name}: {e}");
            Failure(500, "the file could not be published")
        }
    }
}

/// `Tus-Resumable` on every tus answer (tus 1.0.0 §"Tus-Resumable"), once.
fn tus_fields(h: &mut Headers) {
    if !h
        .as_str()
        .split("\r\n")
        .any(|l| l.starts_with("Tus-Resumable:"))
    {
        h.add("Tus-Resumable", tus::TUS_VERSION);
    }
}

/// A tus request whose body goes to a sink: the field is set now, so that
/// the answers the engine gives on its own (a chunked body past the length,
/// broken framing, a body too slow) carry it too.
fn receive(h: &mut Headers, sink: Box<dyn BodySink>, max: u64) -> Action {
    tus_fields(h);
    Action::Receive(Receive { sink, max })
}

/// 412 for another protocol version, with the one we speak.
fn version_refused(h: &mut Headers, r: Refusal) -> Action {
    h.add("Tus-Version", tus::TUS_VERSION);
    refuse(h, true, r.status, r.reason)
}

/// A refusal with a one-line reason in its body.
fn refuse(h: &mut Headers, tus: bool, status: u16, reason: &'static str) -> Action {
    fail(h, tus, Failure(status, reason)).into()
}

fn fail(h: &mut Headers, tus: bool, f: Failure) -> Reply {
    if tus {
        tus_fields(h);
    }
    h.add("Content-Type", "text/plain; charset=utf-8");
    let body = format!("{} {}: {}\n", f.0, crate::message::reason(f.0), f.1);
    Reply::new(f.0, Body::Bytes(body.into_bytes()))
}

/// `Upload-Checksum` of a request, if any.
fn chunk_checksum(req: &Request<'_>) -> Result<Option<(Algo, Vec<u8>)>, Refusal> {
    req.header("upload-checksum")
        .map(tus::parse_checksum)
        .transpose()
}

/// `/a/b/name` → (`/a/b/`, `name`); `None` for a folder path.
fn split_name(decoded: &str) -> Option<(&str, &str)> {
    let i = decoded.rfind('/')?;
    let (dir, name) = decoded.split_at(i + 1);
    (!name.is_empty()).then_some((dir, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tus_resumable_once_however_often_added() {
        let mut h = Headers::default();
        h.add("Vary", "Origin");
        tus_fields(&mut h);
        tus_fields(&mut h);
        assert_eq!(h.as_str(), "Vary: Origin\r\nTus-Resumable: 1.0.0\r\n");
    }

    #[test]
    fn names_split_from_their_folder() {
        let cases = [
            ("/a.txt", Some(("/", "a.txt"))),
            ("/in/b/c.iso", Some(("/in/b/", "c.iso"))),
            ("/in/", None),
            ("/", None),
        ];
        for (path, want) in cases {
            assert_eq!(split_name(path), want, "{path}");
        }
    }
}
