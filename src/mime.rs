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
    ("xml", "application/xml"),             // RFC 7303
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
    ("bmp", "image/bmp"),
    // Video.
    ("mp4", "video/mp4"),
    ("m4v", "video/mp4"),
    ("webm", "video/webm"),
    ("mkv", "video/x-matroska"),
    ("mov", "video/quicktime"),
    ("avi", "video/x-msvideo"),
    ("ogv", "video/ogg"), // RFC 5334
    // Audio.
    ("mp3", "audio/mpeg"),
    ("m4a", "audio/mp4"),
    ("aac", "audio/aac"),
    ("ogg", "audio/ogg"), // RFC 5334: .ogg is Vorbis audio
    ("oga", "audio/ogg"),
    ("opus", "audio/ogg"), // RFC 7845: Opus in an Ogg container
    ("flac", "audio/flac"),
    ("wav", "audio/wav"),
    // Documents and archives.
    ("pdf", "application/pdf"),
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
    let base = name.rsplit('/').next().unwrap_or(name);
    let ext = match base.rsplit_once('.') {
        // An empty stem: `.bashrc` is a hidden file with no extension.
        Some((stem, ext)) if !stem.is_empty() => ext,
        _ => return OCTET_STREAM,
    };
    TYPES
        .iter()
        .find(|(e, _)| e.eq_ignore_ascii_case(ext))
        .map_or(OCTET_STREAM, |&(_, ty)| ty)
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
