//! Content types from file extensions: a built-in table of what people download
//! and stream.
//!
//! Like darkhttpd's built-in list, a fixed table and no `/etc/mime.types`: the
//! answer never depends on the host. The 206 response and every part of a
//! multipart/byteranges body carry this same type (RFC 9110 §15.3.7).
//!
//! Charset: `text/*` types get `; charset=utf-8`, because without it text/*
//! leaves the browser guessing (RFC 7231 dropped the ISO-8859-1 default of
//! RFC 2616 §3.7.1) and UTF-8 is what text files written today contain.
//! `application/json` stays without one: RFC 8259 §11 defines no charset
//! parameter for it (JSON is UTF-8 by §8.1), so adding one is meaningless. The
//! XML types (`application/xml`, `image/svg+xml`) carry their encoding in the
//! document itself (RFC 7303), where a wrong outer charset would override
//! a correct inner declaration.
//!
//! Where a type is not obvious, the row cites its registration (IANA media
//! types) or, for unregistered ones, what nginx's `mime.types` and Debian's
//! `/etc/mime.types` (Apache's list plus IANA's) send.
//!
//! The operator can add or replace types with `--mime EXT=TYPE`
//! ([`Overrides`], [`content_type_with`]), consulted before the table.

/// What a file with no recognised extension is: opaque bytes. Sending it
/// explicitly (rather than no Content-Type, RFC 9110 §8.3) stops browsers from
/// sniffing and rendering a download; they offer to save it instead.
const OCTET_STREAM: &str = "application/octet-stream";

/// Extension (without the dot, lower-case) → media type. Looked up with
/// `eq_ignore_ascii_case`, so `FILE.PDF` works without allocating.
const TYPES: &[(&str, &str)] = &[
    // Text and web.
    ("html", "text/html; charset=utf-8"),
    ("htm", "text/html; charset=utf-8"),
    ("css", "text/css; charset=utf-8"),
    // RFC 9239: text/javascript is the one registered type for JavaScript.
    ("js", "text/javascript; charset=utf-8"),
    ("mjs", "text/javascript; charset=utf-8"),
    ("json", "application/json"),
    ("txt", "text/plain; charset=utf-8"),
    ("log", "text/plain; charset=utf-8"),
    ("csv", "text/csv; charset=utf-8"),     // RFC 4180
    ("md", "text/markdown; charset=utf-8"), // RFC 7763: charset is required
    // WebVTT subtitles (IANA text/vtt, W3C WebVTT §6.1: always UTF-8, so
    // the charset, if given, must be utf-8).
    ("vtt", "text/vtt; charset=utf-8"),
    // SubRip subtitles: no registered type; freedesktop.org's
    // shared-mime-info name, which players and file managers know.
    // (Debian's mime.types says text/plain, nginx has no row.)
    ("srt", "application/x-subrip"),
    ("xml", "application/xml"), // RFC 7303
    ("wasm", "application/wasm"),
    // Images.
    ("svg", "image/svg+xml"),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("gif", "image/gif"),
    ("webp", "image/webp"),
    ("ico", "image/vnd.microsoft.icon"), // the IANA name; browsers also take it
    ("avif", "image/avif"),
    // HEIF stills from phones and cameras (IANA, ISO/IEC 23008-12).
    ("heic", "image/heic"),
    ("heif", "image/heif"),
    ("bmp", "image/bmp"),
    // Video.
    ("mp4", "video/mp4"),
    ("m4v", "video/mp4"),
    ("webm", "video/webm"),
    ("mkv", "video/x-matroska"),
    ("mov", "video/quicktime"),
    ("avi", "video/x-msvideo"),
    ("ogv", "video/ogg"), // RFC 5334
    // Streaming. HLS playlists (RFC 8216 §4; nginx and IANA agree) and their
    // MPEG-2 transport stream segments (nginx `video/mp2t ts`; a TypeScript
    // source is served as video too, as nginx does); DASH manifests (IANA
    // application/dash+xml, ISO/IEC 23009-1) and their fMP4 segments (IANA
    // video/iso.segment).
    ("m3u8", "application/vnd.apple.mpegurl"),
    ("ts", "video/mp2t"),
    ("mpd", "application/dash+xml"),
    ("m4s", "video/iso.segment"),
    // Audio.
    ("mp3", "audio/mpeg"),
    ("m4a", "audio/mp4"), // RFC 4337; Debian's mime.types (nginx: audio/x-m4a)
    ("aac", "audio/aac"),
    ("ogg", "audio/ogg"), // RFC 5334: .ogg is Vorbis audio
    ("oga", "audio/ogg"),
    // RFC 7845 §9: an .opus file is Opus in Ogg, and audio/ogg is its
    // recommended type (audio/opus, RFC 7587, names the RTP payload); Debian's
    // mime.types agrees.
    ("opus", "audio/ogg"),
    ("flac", "audio/flac"),
    ("wav", "audio/wav"),
    // Documents and archives.
    ("pdf", "application/pdf"),
    ("epub", "application/epub+zip"), // IANA; Debian's mime.types
    ("zip", "application/zip"),
    // RFC 6713. `.tar.gz` reaches this row through its last extension: the
    // bytes on the wire are gzip, so this is the honest type (never send
    // Content-Encoding: gzip for it, or clients would unpack it).
    ("gz", "application/gzip"),
    ("tgz", "application/gzip"),
    ("tar", "application/x-tar"),
    ("xz", "application/x-xz"),
    ("zst", "application/zstd"), // RFC 8878
    ("bz2", "application/x-bzip2"),
    ("7z", "application/x-7z-compressed"),
    ("rar", "application/vnd.rar"),
    // Images of disks and firmware, and packages: mostly downloaded, resumed
    // over flaky links, and never rendered.
    ("iso", "application/x-iso9660-image"),
    ("img", OCTET_STREAM),
    ("bin", OCTET_STREAM),
    ("deb", "application/vnd.debian.binary-package"),
    ("rpm", "application/x-rpm"),
    ("apk", "application/vnd.android.package-archive"),
    ("ipk", OCTET_STREAM), // opkg packages: no registered type
    // Fonts (RFC 8081).
    ("woff", "font/woff"),
    ("woff2", "font/woff2"),
    ("ttf", "font/ttf"),
    ("otf", "font/otf"),
];

/// The `Content-Type` for a file name.
///
/// Uses the text after the last `.` of the last path segment,
/// case-insensitively; a name without one, or whose only dot is the leading
/// dot of a dotfile (`.bashrc`), is `application/octet-stream`.
///
/// ```
/// use ranged::mime::content_type;
/// assert_eq!(content_type("Video.MP4"), "video/mp4");
/// assert_eq!(content_type("archive.tar.gz"), "application/gzip");
/// assert_eq!(content_type(".bashrc"), "application/octet-stream");
/// ```
pub fn content_type(name: &str) -> &'static str {
    extension(name).map_or(OCTET_STREAM, built_in)
}

/// [`content_type`], with the operator's `--mime` overrides consulted first.
///
/// ```
/// use ranged::mime::{content_type_with, Overrides};
/// let mut o = Overrides::default();
/// o.add("ts=text/plain; charset=utf-8").unwrap();
/// o.add("raw=image/x-canon-cr2").unwrap();
/// assert_eq!(content_type_with("app.TS", &o), "text/plain; charset=utf-8");
/// assert_eq!(content_type_with("IMG_0001.raw", &o), "image/x-canon-cr2");
/// assert_eq!(content_type_with("clip.mp4", &o), "video/mp4");
/// ```
pub fn content_type_with<'a>(name: &str, overrides: &'a Overrides) -> &'a str {
    match extension(name) {
        Some(ext) => overrides.get(ext).unwrap_or_else(|| built_in(ext)),
        None => OCTET_STREAM,
    }
}

/// The text after the last `.` of the last path segment; `None` for a
/// dotfile without another dot (`.bashrc`) or a name without a dot.
fn extension(name: &str) -> Option<&str> {
    let base = name.rsplit('/').next().unwrap_or(name);
    match base.rsplit_once('.') {
        // An empty stem: `.bashrc` is a hidden file with no extension.
        Some((stem, ext)) if !stem.is_empty() => Some(ext),
        _ => None,
    }
}

fn built_in(ext: &str) -> &'static str {
    TYPES
        .iter()
        .find(|(e, _)| e.eq_ignore_ascii_case(ext))
        .map_or(OCTET_STREAM, |&(_, ty)| ty)
}

/// The operator's `--mime EXT=TYPE` choices: at most [`Overrides::MAX`],
/// each validated by [`parse_override`]. A later choice for the same
/// extension replaces an earlier one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// (lower-case extension, media type); few enough to search in order.
    entries: Vec<(String, String)>,
}

impl Overrides {
    /// How many extensions can be overridden (the table is searched in
    /// order on every response, and a command line has no business being
    /// longer).
    pub const MAX: usize = 64;

    /// Parses `EXT=TYPE` with [`parse_override`] and records it. `Err` is
    /// one sentence for the command line.
    pub fn add(&mut self, spec: &str) -> Result<(), String> {
        let (ext, ty) = parse_override(spec)?;
        if let Some(entry) = self.entries.iter_mut().find(|(e, _)| *e == ext) {
            entry.1 = ty;
        } else if self.entries.len() >= Self::MAX {
            return Err(format!(
                "--mime: at most {} extensions can be given",
                Self::MAX
            ));
        } else {
            self.entries.push((ext, ty));
        }
        Ok(())
    }

    /// The type chosen for an extension (any case), if one was.
    pub fn get(&self, ext: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(e, _)| e.eq_ignore_ascii_case(ext))
            .map(|(_, ty)| ty.as_str())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Parses a `--mime` argument, `EXT=TYPE`, into (lower-case extension,
/// media type), or one sentence saying what is wrong.
///
/// - EXT: 1 to 16 ASCII letters and digits, matched case-insensitively
///   against a file name's last extension; a leading dot is allowed
///   (`.m3u8=…`).
/// - TYPE: `type/subtype`, each a restricted name of RFC 6838 §4.2 (letters
///   and digits first, then also `!#$&-^_.+`, at most 127), optionally
///   followed by `; charset=VALUE` (a token, RFC 9110 §5.6.2). The result is
///   normalised to lower case with one space after the `;`, so that it is
///   always a valid `Content-Type` value (no CR, LF or quote can get in).
///
/// ```
/// use ranged::mime::parse_override;
/// assert_eq!(
///     parse_override(".M3U8=Application/VND.Apple.MpegURL"),
///     Ok(("m3u8".into(), "application/vnd.apple.mpegurl".into()))
/// );
/// assert_eq!(
///     parse_override("nfo=text/plain;charset=CP437"),
///     Ok(("nfo".into(), "text/plain; charset=CP437".into()))
/// );
/// assert!(parse_override("nfo=text/plain\r\nSet-Cookie: x").is_err());
/// ```
pub fn parse_override(spec: &str) -> Result<(String, String), String> {
    let Some((ext, ty)) = spec.split_once('=') else {
        return Err(format!(
            "--mime: '{spec}' is not EXT=TYPE, e.g. m3u8=application/vnd.apple.mpegurl"
        ));
    };
    let ext = ext.strip_prefix('.').unwrap_or(ext);
    if !(1..=16).contains(&ext.len()) || !ext.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format!(
            "--mime: '{ext}' is not a file extension of 1 to 16 letters and digits"
        ));
    }
    let bad_type = || {
        format!("--mime: '{ty}' is not a media type like video/mp2t or text/plain; charset=utf-8")
    };
    let (essence, param) = match ty.split_once(';') {
        Some((e, p)) => (e, Some(p.trim_matches([' ', '\t']))),
        None => (ty, None),
    };
    let (major, minor) = essence
        .trim_end_matches([' ', '\t'])
        .split_once('/')
        .ok_or_else(bad_type)?;
    if !restricted_name(major) || !restricted_name(minor) {
        return Err(bad_type());
    }
    let mut out = format!(
        "{}/{}",
        major.to_ascii_lowercase(),
        minor.to_ascii_lowercase()
    );
    if let Some(p) = param {
        let value = match p.split_once('=') {
            Some((name, value)) if name.eq_ignore_ascii_case("charset") => value,
            _ => {
                return Err(format!(
                    "--mime: '{ty}': the only parameter allowed is charset=VALUE"
                ));
            }
        };
        if value.is_empty() || value.len() > 40 || !value.bytes().all(crate::message::is_tchar) {
            return Err(bad_type());
        }
        out.push_str("; charset=");
        out.push_str(value);
    }
    Ok((ext.to_ascii_lowercase(), out))
}

/// RFC 6838 §4.2 `restricted-name`: 1 to 127 characters, a letter or digit
/// first, then letters, digits and `!#$&-^_.+`.
fn restricted_name(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=127).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        const CASES: &[(&str, &str)] = &[
            ("index.html", "text/html; charset=utf-8"),
            ("INDEX.HTM", "text/html; charset=utf-8"),
            ("app.js", "text/javascript; charset=utf-8"),
            ("mod.MJS", "text/javascript; charset=utf-8"),
            ("data.json", "application/json"),
            ("README.md", "text/markdown; charset=utf-8"),
            ("notes.Txt", "text/plain; charset=utf-8"),
            ("logo.svg", "image/svg+xml"),
            ("Photo.JPG", "image/jpeg"),
            ("movie.mkv", "video/x-matroska"),
            ("song.opus", "audio/ogg"),
            ("voice.M4A", "audio/mp4"),
            ("cam/live/index.m3u8", "application/vnd.apple.mpegurl"),
            ("cam/live/seg00042.ts", "video/mp2t"),
            ("dash/manifest.MPD", "application/dash+xml"),
            ("dash/chunk-1-00001.m4s", "video/iso.segment"),
            ("film.en.vtt", "text/vtt; charset=utf-8"),
            ("film.en.srt", "application/x-subrip"),
            ("IMG_1234.HEIC", "image/heic"),
            ("photo.avif", "image/avif"),
            ("book.epub", "application/epub+zip"),
            ("archive.tar.gz", "application/gzip"),
            ("archive.TGZ", "application/gzip"),
            ("rootfs.tar.zst", "application/zstd"),
            ("debian-12.iso", "application/x-iso9660-image"),
            ("openwrt-sysupgrade.bin", OCTET_STREAM),
            ("font.woff2", "font/woff2"),
            ("dir/sub/clip.webm", "video/webm"),
            // No extension, dotfiles, odd dots.
            ("noext", OCTET_STREAM),
            (".bashrc", OCTET_STREAM),
            (".config.json", "application/json"),
            ("dir.d/noext", OCTET_STREAM),
            ("trailing.", OCTET_STREAM),
            ("", OCTET_STREAM),
            (".", OCTET_STREAM),
            ("..", OCTET_STREAM),
            ("file.unknownext", OCTET_STREAM),
            ("file.h\u{e9}ml", OCTET_STREAM),
            ("dir/", OCTET_STREAM),
        ];
        for &(name, want) in CASES {
            assert_eq!(content_type(name), want, "content_type({name:?})");
        }
    }

    #[test]
    fn overrides_come_first() {
        let mut o = Overrides::default();
        for spec in [
            "ts=text/plain; charset=utf-8",
            ".RAW=image/x-canon-cr2",
            "m3u8=audio/mpegurl",
            "m3u8=application/x-mpegurl",
        ] {
            o.add(spec).unwrap();
        }
        assert_eq!(o.len(), 3, "a repeated extension replaces, not adds");
        const CASES: &[(&str, &str)] = &[
            ("src/app.ts", "text/plain; charset=utf-8"),
            ("src/app.TS", "text/plain; charset=utf-8"),
            ("IMG_0001.raw", "image/x-canon-cr2"),
            ("live.m3u8", "application/x-mpegurl"),
            ("clip.mp4", "video/mp4"),
            ("noext", OCTET_STREAM),
            (".ts", OCTET_STREAM),
            ("archive.ts.gz", "application/gzip"),
        ];
        for &(name, want) in CASES {
            assert_eq!(content_type_with(name, &o), want, "{name}");
        }
        assert_eq!(
            content_type_with("a.ts", &Overrides::default()),
            "video/mp2t"
        );
    }

    #[test]
    fn override_specs() {
        const GOOD: &[(&str, &str, &str)] = &[
            (
                "m3u8=application/vnd.apple.mpegurl",
                "m3u8",
                "application/vnd.apple.mpegurl",
            ),
            (".Jpg=IMAGE/JPEG", "jpg", "image/jpeg"),
            (
                "nfo=text/plain;charset=CP437",
                "nfo",
                "text/plain; charset=CP437",
            ),
            (
                "nfo=text/plain ; CharSet=utf-8",
                "nfo",
                "text/plain; charset=utf-8",
            ),
            (
                "x=application/vnd.ms-excel.sheet.macroEnabled.12",
                "x",
                "application/vnd.ms-excel.sheet.macroenabled.12",
            ),
            ("a1b2c3d4e5f6g7h8=a/b", "a1b2c3d4e5f6g7h8", "a/b"),
            ("svgz=image/svg+xml", "svgz", "image/svg+xml"),
        ];
        for &(spec, ext, ty) in GOOD {
            assert_eq!(parse_override(spec), Ok((ext.into(), ty.into())), "{spec}");
        }
        const BAD: &[(&str, &str)] = &[
            ("m3u8", "is not EXT=TYPE"),
            ("=text/plain", "not a file extension"),
            (".=text/plain", "not a file extension"),
            ("a1b2c3d4e5f6g7h8i=a/b", "not a file extension"),
            ("tar.gz=application/gzip", "not a file extension"),
            ("d\u{e9}j=text/plain", "not a file extension"),
            ("x=", "not a media type"),
            ("x=text", "not a media type"),
            ("x=text/", "not a media type"),
            ("x=/plain", "not a media type"),
            ("x=text/plain/x", "not a media type"),
            ("x=text /plain", "not a media type"),
            ("x=.text/plain", "not a media type"),
            ("x=text/plain\r\nSet-Cookie: a=b", "not a media type"),
            ("x=text/plain; charset=\"utf-8\"", "not a media type"),
            ("x=text/plain; charset=", "not a media type"),
            ("x=text/plain; charset=a b", "not a media type"),
            ("x=text/plain;", "only parameter allowed is charset"),
            ("x=text/plain; q=1", "only parameter allowed is charset"),
            ("x=text/plain; charset=utf-8; q=1", "not a media type"),
        ];
        for &(spec, says) in BAD {
            match parse_override(spec) {
                Err(e) => assert!(e.starts_with("--mime: ") && e.contains(says), "{spec}: {e}"),
                Ok(v) => panic!("{spec} accepted as {v:?}"),
            }
        }
        let long = format!("x=a/{}", "b".repeat(128));
        assert!(parse_override(&long).is_err());
        assert!(parse_override(&format!("x=a/{}", "b".repeat(127))).is_ok());
    }

    #[test]
    fn overrides_are_bounded() {
        let mut o = Overrides::default();
        for i in 0..Overrides::MAX {
            o.add(&format!("e{i}=application/x-e{i}")).unwrap();
        }
        let e = o.add("one=application/x-more").unwrap_err();
        assert!(e.contains("at most 64"), "{e}");
        // Replacing one already there still works at the limit.
        o.add("e0=text/plain").unwrap();
        assert_eq!(o.len(), Overrides::MAX);
        assert_eq!(content_type_with("f.E0", &o), "text/plain");
    }

    #[test]
    fn table_is_lower_case_unique_and_text_has_charset() {
        for (i, &(ext, ty)) in TYPES.iter().enumerate() {
            assert_eq!(ext, ext.to_ascii_lowercase(), "{ext}");
            assert!(!ext.contains('.'), "{ext}");
            assert!(TYPES[..i].iter().all(|&(e, _)| e != ext), "duplicate {ext}");
            if ty.starts_with("text/") {
                assert!(ty.ends_with("; charset=utf-8"), "{ext}: {ty}");
            }
        }
    }
}
