//! The tus 1.0.0 resumable-upload protocol (`tus/tus-resumable-upload-protocol`,
//! protocol.md): its header grammar and refusals. Pure: header text in, plain
//! values or a [`Refusal`] (status + one-line reason) out.
//!
//! What a handler does with each request, and which function here decides:
//!
//! 1. Every request but OPTIONS: [`check_version`] (412 + `Tus-Version`).
//! 2. POST (creation): [`creation_length`] (exactly one of `Upload-Length` /
//!    `Upload-Defer-Length: 1`, 400, or 413 over the maximum size),
//!    [`parse_metadata`] and [`file_name`] (400), [`expected_sha256`] for a
//!    whole-file digest to check before publishing (400 when malformed).
//! 3. PATCH: [`check_content_type`] (415), [`parse_offset`] (400), and
//!    [`parse_length`] for a deferred length; [`parse_checksum`] (400) and a
//!    [`ChunkHasher`] over the body, whose mismatch is [`CHECKSUM_MISMATCH`].
//! 4. Responses: [`TUS_VERSION`], [`TUS_EXTENSIONS`], [`CHECKSUM_ALGORITHMS`],
//!    and [`upload_expires`] for `Upload-Expires`.

use crate::message::trim_ows;
use sha2::Digest;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `Tus-Resumable` / `Tus-Version`: the one protocol version spoken.
pub const TUS_VERSION: &str = "1.0.0";

/// `Tus-Extension` (protocol.md "Protocol Extensions"). Concatenation is not
/// offered.
pub const TUS_EXTENSIONS: &str =
    "creation,creation-with-upload,creation-defer-length,termination,expiration,checksum";

/// `Tus-Checksum-Algorithm` (checksum extension). `sha1` is the algorithm the
/// extension requires every server to support; tuspy sends only it.
pub const CHECKSUM_ALGORITHMS: &str = "sha1,sha256";

/// The only body type a PATCH (and a creation-with-upload POST) may carry.
pub const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";

/// "460 Checksum Mismatch" (checksum extension): the chunk is discarded.
pub const CHECKSUM_MISMATCH: u16 = 460;

/// The longest `Upload-Metadata` accepted. Browsers send a handful of short
/// pairs (`filename`, `filetype`, Uppy's `name`, `type`, `relativePath`); the
/// raw value is kept with the upload and echoed on HEAD, so it is bounded.
pub const MAX_METADATA_LEN: usize = 4096;

/// The most `Upload-Metadata` pairs accepted.
pub const MAX_METADATA_PAIRS: usize = 32;

/// The longest file name accepted, in bytes: `NAME_MAX` of Linux file systems.
pub const MAX_NAME_LEN: usize = 255;

/// A request refused: the status to answer and a one-line reason for the body
/// (and the log). Reasons never echo client text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: &'static str,
}

const fn bad(reason: &'static str) -> Refusal {
    Refusal {
        status: 400,
        reason,
    }
}

/// Checks `Tus-Resumable` on every request but OPTIONS (protocol.md
/// "Tus-Resumable": "If the Client's version is not supported by the Server,
/// it MUST respond with the 412 Precondition Failed status and MUST include
/// the Tus-Version header"). A missing header is refused the same way, as
/// tusd does: the request is not a tus request we can interpret.
pub fn check_version(value: Option<&str>) -> Result<(), Refusal> {
    match value.map(trim_ows) {
        Some(TUS_VERSION) => Ok(()),
        _ => Err(Refusal {
            status: 412,
            reason: "unsupported tus version: this server speaks Tus-Resumable 1.0.0",
        }),
    }
}

/// `1*DIGIT` as a `u64`: no sign, no spaces inside, no hex, `None` on
/// overflow (protocol.md: `Upload-Offset` and `Upload-Length` "MUST be a
/// non-negative integer"; a number beyond `u64` cannot be a real size and
/// must not wrap into one). Surrounding OWS is trimmed.
pub fn parse_number(value: &str) -> Option<u64> {
    let digits = trim_ows(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.bytes().try_fold(0u64, |n, b| {
        n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// `Upload-Offset` of a PATCH: required (protocol.md "PATCH": "The Request
/// MUST include a Upload-Offset header"), `1*DIGIT`, else 400.
pub fn parse_offset(value: Option<&str>) -> Result<u64, Refusal> {
    let value = value.ok_or(bad("missing Upload-Offset"))?;
    parse_number(value).ok_or(bad("malformed Upload-Offset"))
}

/// `Upload-Length`: `1*DIGIT`, else 400; above `max_size` 413 (protocol.md
/// "Tus-Max-Size": the server "MUST respond with the 413 Request Entity Too
/// Large status" for a larger upload).
pub fn parse_length(value: &str, max_size: Option<u64>) -> Result<u64, Refusal> {
    let n = parse_number(value).ok_or(bad("malformed Upload-Length"))?;
    match max_size {
        Some(max) if n > max => Err(Refusal {
            status: 413,
            reason: "Upload-Length is larger than the maximum upload size",
        }),
        _ => Ok(n),
    }
}

/// The size of an upload as declared at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    Known(u64),
    /// `Upload-Defer-Length: 1`: a later PATCH carries `Upload-Length`.
    Deferred,
}

/// The length of a creation request from its `Upload-Length` and
/// `Upload-Defer-Length` headers (protocol.md "POST": "The Client MUST send
/// the Upload-Length header *or* the Upload-Defer-Length header, or the
/// Server MUST respond with 400"; creation-defer-length: the value "MUST be
/// 1"). Both, neither, or any other defer value: 400.
pub fn creation_length(
    upload_length: Option<&str>,
    defer_length: Option<&str>,
    max_size: Option<u64>,
) -> Result<Length, Refusal> {
    match (upload_length, defer_length) {
        (Some(len), None) => parse_length(len, max_size).map(Length::Known),
        (None, Some(defer)) if trim_ows(defer) == "1" => Ok(Length::Deferred),
        (None, Some(_)) => Err(bad("Upload-Defer-Length must be 1")),
        (Some(_), Some(_)) => Err(bad(
            "send either Upload-Length or Upload-Defer-Length, not both",
        )),
        (None, None) => Err(bad("missing Upload-Length (or Upload-Defer-Length: 1)")),
    }
}

/// PATCH bodies must be `application/offset+octet-stream` (protocol.md
/// "PATCH": "MUST use Content-Type: application/offset+octet-stream,
/// otherwise the server SHOULD return a 415"). The media type is compared
/// case-insensitively (RFC 9110 §8.3.1); parameters are ignored.
pub fn check_content_type(value: Option<&str>) -> Result<(), Refusal> {
    let media = value.map(|v| trim_ows(v.split(';').next().unwrap_or("")));
    match media {
        Some(m) if m.eq_ignore_ascii_case(OFFSET_OCTET_STREAM) => Ok(()),
        _ => Err(Refusal {
            status: 415,
            reason: "a tus PATCH body must be application/offset+octet-stream",
        }),
    }
}

/// Decoded `Upload-Metadata`: keys in the order sent, values as bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    pairs: Vec<(String, Vec<u8>)>,
}

impl Metadata {
    /// The decoded value of `key` (case-sensitive, as tus keys are).
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }
}

/// Parses `Upload-Metadata` (protocol.md "Upload-Metadata"):
///
/// * "one or more comma-separated key-value pairs"; "the key and value MUST be
///   separated by a space"; "the key MUST NOT contain spaces and commas and
///   MUST NOT be empty"; "the key SHOULD be ASCII encoded and the value MUST
///   be Base64 encoded"; "all keys MUST be unique"; "the value MAY be empty.
///   In these cases, the space ... MAY be left out".
/// * Keys here are visible ASCII (`!`..`~`) without `,`: a key is echoed on
///   HEAD, so control characters never reach a response.
/// * Values are strict base64 ([`crate::base64::decode`], padding required).
/// * An empty (or all-whitespace) header means no metadata: tuspy always
///   sends the header, empty when the caller gave none.
/// * OWS around elements and empty list elements are tolerated (RFC 9110
///   §5.6.1), as in `filename YQ==, filetype dA==`.
/// * At most [`MAX_METADATA_LEN`] bytes and [`MAX_METADATA_PAIRS`] pairs.
///
/// Anything else: 400.
pub fn parse_metadata(value: &str) -> Result<Metadata, Refusal> {
    if value.len() > MAX_METADATA_LEN {
        return Err(bad("Upload-Metadata is too long"));
    }
    let mut pairs: Vec<(String, Vec<u8>)> = Vec::new();
    for element in value.split(',') {
        let element = trim_ows(element);
        if element.is_empty() {
            continue;
        }
        let (key, encoded) = element.split_once(' ').unwrap_or((element, ""));
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
            return Err(bad("malformed Upload-Metadata key"));
        }
        let value =
            crate::base64::decode(encoded).ok_or(bad("Upload-Metadata value is not base64"))?;
        if pairs.iter().any(|(k, _)| k == key) {
            return Err(bad("duplicate Upload-Metadata key"));
        }
        if pairs.len() == MAX_METADATA_PAIRS {
            return Err(bad("too many Upload-Metadata pairs"));
        }
        pairs.push((key.to_owned(), value));
    }
    Ok(Metadata { pairs })
}

/// The name to publish an upload under: the metadata value of `filename`, or
/// of `name` when `filename` is absent (Uppy sends `name`), checked by
/// [`check_file_name`]. Neither key: 400.
pub fn file_name(meta: &Metadata) -> Result<&str, Refusal> {
    let raw = meta
        .get("filename")
        .or_else(|| meta.get("name"))
        .ok_or(bad("missing file name: send Upload-Metadata filename"))?;
    check_file_name(raw)
}

/// The file-name rule for uploads. A name is refused (400) when it is:
///
/// * empty, or longer than [`MAX_NAME_LEN`] bytes;
/// * not UTF-8;
/// * containing `/`, `\`, NUL or any control character (Unicode `Cc`: C0,
///   DEL, C1) — a name is one path segment, and shows up in listings and logs;
/// * exactly `.` or `..`, or starting with `.` — hidden files are never
///   served, so a dotfile upload could never be downloaded.
///
/// Dots elsewhere are fine: `a..b.txt` and `archive.tar.gz` are ordinary names.
pub fn check_file_name(raw: &[u8]) -> Result<&str, Refusal> {
    if raw.is_empty() {
        return Err(bad("empty file name"));
    }
    if raw.len() > MAX_NAME_LEN {
        return Err(bad("file name longer than 255 bytes"));
    }
    let name = std::str::from_utf8(raw).map_err(|_| bad("file name is not UTF-8"))?;
    if name
        .chars()
        .any(|c| c == '/' || c == '\\' || c.is_control())
    {
        return Err(bad(
            "file name contains a slash, backslash or control character",
        ));
    }
    if name.starts_with('.') {
        return Err(bad(
            "file name starts with a dot (hidden files are not served)",
        ));
    }
    Ok(name)
}

/// A checksum algorithm of the tus checksum extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algo {
    Sha1,
    Sha256,
}

impl Algo {
    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Algo::Sha1 => 20,
            Algo::Sha256 => 32,
        }
    }

    /// The name as in `Tus-Checksum-Algorithm`.
    pub fn name(self) -> &'static str {
        match self {
            Algo::Sha1 => "sha1",
            Algo::Sha256 => "sha256",
        }
    }

    fn from_name(name: &str) -> Option<Algo> {
        if name.eq_ignore_ascii_case("sha1") {
            Some(Algo::Sha1)
        } else if name.eq_ignore_ascii_case("sha256") {
            Some(Algo::Sha256)
        } else {
            None
        }
    }
}

/// Parses `Upload-Checksum: <algorithm> <base64 digest>` (checksum extension:
/// "the name of the used checksum algorithm and the Base64 encoded checksum
/// separated by a space"). An algorithm other than [`CHECKSUM_ALGORITHMS`]:
/// 400 ("400 Bad Request if the algorithm is not supported"); a digest that
/// is not strict base64 or has the wrong length for the algorithm: 400.
/// Algorithm names are compared case-insensitively.
pub fn parse_checksum(value: &str) -> Result<(Algo, Vec<u8>), Refusal> {
    let (name, encoded) = trim_ows(value)
        .split_once(' ')
        .ok_or(bad("malformed Upload-Checksum"))?;
    let algo = Algo::from_name(name).ok_or(bad("unsupported Upload-Checksum algorithm"))?;
    match crate::base64::decode(encoded) {
        Some(digest) if digest.len() == algo.digest_len() => Ok((algo, digest)),
        _ => Err(bad("malformed Upload-Checksum digest")),
    }
}

/// Hashes one request's body for `Upload-Checksum`.
#[derive(Clone)]
pub enum ChunkHasher {
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl ChunkHasher {
    pub fn new(algo: Algo) -> ChunkHasher {
        match algo {
            Algo::Sha1 => ChunkHasher::Sha1(sha1::Sha1::new()),
            Algo::Sha256 => ChunkHasher::Sha256(sha2::Sha256::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            ChunkHasher::Sha1(h) => h.update(data),
            ChunkHasher::Sha256(h) => h.update(data),
        }
    }

    /// Whether the bytes hashed so far have the digest `expected`.
    pub fn matches(self, expected: &[u8]) -> bool {
        match self {
            ChunkHasher::Sha1(h) => h.finalize().as_slice() == expected,
            ChunkHasher::Sha256(h) => h.finalize().as_slice() == expected,
        }
    }
}

/// The SHA-256 of the whole file from a `Repr-Digest` field (RFC 9530 §3),
/// a Structured-Field dictionary (RFC 9651 §3.2) such as
/// `sha-256=:<base64>:, sha-512=:<base64>:`.
///
/// Parsed just enough: members are split at commas outside quoted strings;
/// each key must be an SF key (`lcalpha / "*"` then `lcalpha / DIGIT / "_" /
/// "-" / "." / "*"`); a `sha-256` member must be a byte sequence `:…:`
/// holding exactly 32 bytes, optionally followed by parameters (ignored).
/// Missing `=` padding is accepted (RFC 9651 §4.2.7: parsers "SHOULD NOT
/// fail when '=' padding is not present"). Other algorithms are skipped;
/// with several `sha-256` members the last wins (§4.2.2). `Ok(None)`: no
/// SHA-256 to check. Anything malformed: 400.
pub fn parse_repr_digest(value: &str) -> Result<Option<[u8; 32]>, Refusal> {
    const MALFORMED: Refusal = bad("malformed Repr-Digest");
    let mut found = None;
    for member in split_outside_quotes(value)? {
        let member = trim_ows(member);
        let key_end = member.find(['=', ';']).unwrap_or(member.len());
        let (key, rest) = member.split_at(key_end);
        if !is_sf_key(key) {
            return Err(MALFORMED);
        }
        if key != "sha-256" {
            continue;
        }
        let item = rest.strip_prefix("=:").ok_or(MALFORMED)?;
        let (encoded, params) = item.split_once(':').ok_or(MALFORMED)?;
        if !(params.is_empty() || params.starts_with(';')) {
            return Err(MALFORMED);
        }
        found = Some(decode_padding_optional(encoded).ok_or(MALFORMED)?);
    }
    match found {
        None => Ok(None),
        Some(bytes) => bytes.try_into().map(Some).map_err(|_| MALFORMED),
    }
}

/// The expected SHA-256 carried in the tus metadata key `checksum`, as
/// `sha256 <base64>` (RFC 4648, `=` padding optional) or `sha256 <hex>` (64
/// hex digits, either case). A value naming another algorithm is
/// not ours to check and is ignored (`Ok(None)`: applications use this key
/// for their own formats); a `sha256` value that is neither form: 400.
pub fn metadata_checksum(meta: &Metadata) -> Result<Option<[u8; 32]>, Refusal> {
    const MALFORMED: Refusal = bad("malformed sha256 in Upload-Metadata checksum");
    let Some(raw) = meta.get("checksum") else {
        return Ok(None);
    };
    let text = std::str::from_utf8(raw).map_err(|_| MALFORMED)?;
    let Some((algo, digest)) = trim_ows(text).split_once(' ') else {
        return Ok(None);
    };
    if !algo.eq_ignore_ascii_case("sha256") {
        return Ok(None);
    }
    let digest = trim_ows(digest);
    let bytes = if digest.len() == 64 {
        crate::hex::decode(digest).and_then(|b| b.try_into().ok())
    } else {
        decode_sha256_base64(digest)
    };
    bytes.map(Some).ok_or(MALFORMED)
}

/// The whole-file SHA-256 a creation asks to verify before publishing: from
/// `Repr-Digest` and/or the metadata `checksum`. Two different values: 400.
pub fn expected_sha256(
    repr_digest: Option<&str>,
    meta: &Metadata,
) -> Result<Option<[u8; 32]>, Refusal> {
    let from_header = match repr_digest {
        Some(v) => parse_repr_digest(v)?,
        None => None,
    };
    let from_meta = metadata_checksum(meta)?;
    match (from_header, from_meta) {
        (Some(a), Some(b)) if a != b => Err(bad("Repr-Digest and the checksum metadata disagree")),
        (a, b) => Ok(a.or(b)),
    }
}

/// `Upload-Expires` for an expiry at `unix_secs` (expiration extension: "in
/// the format defined by RFC 9110", i.e. IMF-fixdate). `None` when the
/// instant cannot be written as one (see [`crate::validators::http_date`]);
/// the header is then left out.
pub fn upload_expires(unix_secs: u64) -> Option<httpdate::HttpDate> {
    crate::validators::http_date(UNIX_EPOCH.checked_add(Duration::from_secs(unix_secs))?)
}

/// Seconds since the Unix epoch of `t`, 0 before it.
pub fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// RFC 9651 §3.1.2 `key`.
fn is_sf_key(key: &str) -> bool {
    let mut bytes = key.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'*'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b'*'))
}

/// Splits a dictionary at commas that are not inside an sf-string; an
/// unterminated string is malformed. Empty members are malformed too (RFC
/// 9651 §4.2.2: a trailing comma fails), except an empty field, which is an
/// empty dictionary.
fn split_outside_quotes(value: &str) -> Result<Vec<&str>, Refusal> {
    const MALFORMED: Refusal = bad("malformed Repr-Digest");
    if trim_ows(value).is_empty() {
        return Ok(Vec::new());
    }
    let mut members = Vec::new();
    let (mut start, mut in_string, mut escaped) = (0, false, false);
    for (i, b) in value.bytes().enumerate() {
        match (in_string, escaped, b) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (_, false, b'"') => in_string = !in_string,
            (false, _, b',') => {
                members.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if members.len() > MAX_METADATA_PAIRS {
            return Err(MALFORMED);
        }
    }
    if in_string {
        return Err(MALFORMED);
    }
    members.push(&value[start..]);
    if members.iter().any(|m| trim_ows(m).is_empty()) {
        return Err(MALFORMED);
    }
    Ok(members)
}

/// Standard base64 with its `=` padding optional.
fn decode_padding_optional(encoded: &str) -> Option<Vec<u8>> {
    match encoded.len() % 4 {
        0 => crate::base64::decode(encoded),
        2 => crate::base64::decode(&format!("{encoded}==")),
        3 => crate::base64::decode(&format!("{encoded}=")),
        _ => None,
    }
}

fn decode_sha256_base64(encoded: &str) -> Option<[u8; 32]> {
    decode_padding_optional(encoded)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SHA-256 of "abc" (FIPS 180-2 appendix B.1).
    const ABC_SHA256_B64: &str = "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=";
    const ABC_SHA256_HEX: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    /// SHA-1 of "abc" (FIPS 180-2 appendix A.1).
    const ABC_SHA1_B64: &str = "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=";

    fn abc_sha256() -> [u8; 32] {
        crate::hex::decode(ABC_SHA256_HEX)
            .unwrap()
            .try_into()
            .unwrap()
    }

    #[test]
    fn version() {
        const CASES: &[(Option<&str>, bool)] = &[
            (Some("1.0.0"), true),
            (Some(" 1.0.0 "), true),
            (Some("0.2.2"), false),
            (Some("1.0"), false),
            (Some("1.0.0,0.2.2"), false),
            (Some(""), false),
            (None, false),
        ];
        for &(value, ok) in CASES {
            let got = check_version(value);
            assert_eq!(got.is_ok(), ok, "{value:?}");
            if let Err(r) = got {
                assert_eq!(r.status, 412, "{value:?}");
            }
        }
    }

    #[test]
    fn numbers() {
        const CASES: &[(&str, Option<u64>)] = &[
            ("0", Some(0)),
            ("000", Some(0)),
            ("1234", Some(1234)),
            (" 7\t", Some(7)),
            ("18446744073709551615", Some(u64::MAX)),
            ("18446744073709551616", None), // overflow, not a wrap to 0
            ("99999999999999999999999", None),
            ("", None),
            ("-1", None),
            ("+1", None),
            ("1 2", None),
            ("0x10", None),
            ("1e3", None),
            ("١٢", None), // Arabic-Indic digits are not DIGIT
        ];
        for &(text, want) in CASES {
            assert_eq!(parse_number(text), want, "{text:?}");
        }
        assert_eq!(parse_offset(Some("42")), Ok(42));
        assert_eq!(parse_offset(None).map_err(|r| r.status), Err(400));
        assert_eq!(parse_offset(Some("-3")).map_err(|r| r.status), Err(400));
    }

    #[test]
    fn creation_lengths() {
        use Length::*;
        // (Upload-Length, Upload-Defer-Length, max size, Ok(length) or Err(status))
        type Case = (
            Option<&'static str>,
            Option<&'static str>,
            Option<u64>,
            Result<Length, u16>,
        );
        const CASES: &[Case] = &[
            (Some("100"), None, None, Ok(Known(100))),
            (Some("0"), None, None, Ok(Known(0))),
            (Some("100"), None, Some(100), Ok(Known(100))),
            (Some("101"), None, Some(100), Err(413)),
            (None, Some("1"), None, Ok(Deferred)),
            (None, Some("1"), Some(5), Ok(Deferred)),
            (None, Some("0"), None, Err(400)),
            (None, Some("true"), None, Err(400)),
            (Some("100"), Some("1"), None, Err(400)),
            (None, None, None, Err(400)),
            (Some("-5"), None, None, Err(400)),
            (Some(""), None, None, Err(400)),
            (Some("18446744073709551616"), None, None, Err(400)),
        ];
        for &(len, defer, max, want) in CASES {
            let got = creation_length(len, defer, max).map_err(|r| r.status);
            assert_eq!(got, want, "{len:?} {defer:?} {max:?}");
        }
    }

    #[test]
    fn content_types() {
        const CASES: &[(Option<&str>, bool)] = &[
            (Some("application/offset+octet-stream"), true),
            (Some("Application/Offset+Octet-Stream"), true),
            (Some("application/offset+octet-stream; charset=x"), true),
            (Some("application/octet-stream"), false),
            (Some("application/x-www-form-urlencoded"), false), // curl --data-binary
            (Some(""), false),
            (None, false),
        ];
        for &(ct, ok) in CASES {
            let got = check_content_type(ct).map_err(|r| r.status);
            assert_eq!(got, if ok { Ok(()) } else { Err(415) }, "{ct:?}");
        }
    }

    #[test]
    fn metadata() {
        // (header, Ok(pairs as (key, value)) or Err(())) — all errors are 400.
        type Pairs = &'static [(&'static str, &'static [u8])];
        const CASES: &[(&str, Result<Pairs, ()>)] = &[
            ("", Ok(&[])),
            ("  ", Ok(&[])), // tuspy with no metadata
            (
                "filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==",
                Ok(&[("filename", b"world_domination_plan.pdf")]),
            ),
            (
                "filename YS50eHQ=,filetype dGV4dC9wbGFpbg==",
                Ok(&[("filename", b"a.txt"), ("filetype", b"text/plain")]),
            ),
            (
                "filename YS50eHQ=, is_confidential",
                Ok(&[("filename", b"a.txt"), ("is_confidential", b"")]),
            ),
            ("is_confidential", Ok(&[("is_confidential", b"")])),
            ("flag ", Ok(&[("flag", b"")])), // trailing space trimmed
            ("a YQ==,,b Yg==", Ok(&[("a", b"a"), ("b", b"b")])), // empty element skipped
            ("filename YS50eHQ", Err(())),   // padding required
            ("filename YS50eHQ=!", Err(())),
            ("filename  YS50eHQ=", Err(())), // two spaces: the value starts with one
            ("filename YS50 eHQ=", Err(())),
            ("a YQ==,a Yg==", Err(())),      // keys unique
            (" YQ==", Ok(&[("YQ==", b"")])), // leading OWS trimmed: a key alone
            ("k\u{7f} YQ==", Err(())),
            ("ké YQ==", Err(())),
            ("k\tx YQ==", Err(())),
        ];
        for (header, want) in CASES {
            let got = parse_metadata(header);
            match (got, want) {
                (Ok(meta), Ok(pairs)) => {
                    let got: Vec<(&str, &[u8])> = meta.iter().collect();
                    assert_eq!(&got[..], *pairs, "{header:?}");
                }
                (Err(r), Err(())) => assert_eq!(r.status, 400, "{header:?}"),
                (got, want) => panic!("{header:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn metadata_bounds() {
        let pairs: Vec<String> = (0..MAX_METADATA_PAIRS).map(|i| format!("k{i}")).collect();
        assert_eq!(
            parse_metadata(&pairs.join(",")).unwrap().len(),
            MAX_METADATA_PAIRS
        );
        let one_more = format!("{},extra", pairs.join(","));
        assert_eq!(parse_metadata(&one_more).map_err(|r| r.status), Err(400));
        let long = format!("k {}", "A".repeat(MAX_METADATA_LEN));
        assert_eq!(parse_metadata(&long).map_err(|r| r.status), Err(400));
    }

    #[test]
    fn file_names() {
        const CASES: &[(&[u8], bool)] = &[
            (b"a.txt", true),
            (b"a..b.txt", true),
            (b"archive.tar.gz", true),
            (b"no extension", true),
            ("Grüße, 日本.txt".as_bytes(), true),
            (b"x.", true),
            (b"", false),
            (b".", false),
            (b"..", false),
            (b".hidden", false),
            (b"...", false),
            (b"a/b", false),
            (b"../etc/passwd", false),
            (b"a\\b", false),
            (b"a\0b", false),
            (b"a\nb", false),
            (b"a\rb", false),
            (b"tab\there", false),
            (b"del\x7f", false),
            ("c1\u{85}".as_bytes(), false),
            (b"\xff\xfe", false), // not UTF-8
        ];
        for &(raw, ok) in CASES {
            let got = check_file_name(raw);
            assert_eq!(got.is_ok(), ok, "{:?}", String::from_utf8_lossy(raw));
            if let Ok(name) = got {
                assert_eq!(name.as_bytes(), raw);
            }
        }
        assert!(check_file_name("é".repeat(127).as_bytes()).is_ok()); // 254 bytes
        assert!(check_file_name(&[b'a'; 255]).is_ok());
        assert!(check_file_name(&[b'a'; 256]).is_err());
    }

    #[test]
    fn file_name_source() {
        // (Upload-Metadata, Ok(name) or Err(status))
        const CASES: &[(&str, Result<&str, u16>)] = &[
            ("filename YS50eHQ=", Ok("a.txt")),
            ("name Yi50eHQ=", Ok("b.txt")),                   // Uppy
            ("name Yi50eHQ=,filename YS50eHQ=", Ok("a.txt")), // filename wins
            ("filename,name Yi50eHQ=", Err(400)),             // an empty filename is not skipped
            ("filetype dGV4dC9wbGFpbg==", Err(400)),
            ("", Err(400)),
            ("filename Li5ldGM=", Err(400)), // "..etc"
        ];
        for &(header, want) in CASES {
            let meta = parse_metadata(header).unwrap();
            let got = file_name(&meta).map_err(|r| r.status);
            assert_eq!(got, want, "{header:?}");
        }
    }

    #[test]
    fn checksums() {
        // (Upload-Checksum, Ok(algo) or Err(status))
        let cases: &[(&str, Result<Algo, u16>)] = &[
            (&format!("sha1 {ABC_SHA1_B64}"), Ok(Algo::Sha1)),
            (&format!("sha256 {ABC_SHA256_B64}"), Ok(Algo::Sha256)),
            (&format!("SHA256 {ABC_SHA256_B64}"), Ok(Algo::Sha256)),
            (&format!("sha1 {ABC_SHA256_B64}"), Err(400)), // wrong length
            (&format!("sha256 {ABC_SHA1_B64}"), Err(400)),
            (&format!("md5 {ABC_SHA1_B64}"), Err(400)),
            (&format!("crc32 {ABC_SHA1_B64}"), Err(400)),
            ("sha1", Err(400)),
            ("sha1 ", Err(400)),
            ("sha1 not*base64", Err(400)),
            (&format!("sha1:{ABC_SHA1_B64}"), Err(400)),
        ];
        for (header, want) in cases {
            let got = parse_checksum(header).map(|(a, _)| a).map_err(|r| r.status);
            assert_eq!(got, *want, "{header:?}");
        }
        for (algo, b64) in [(Algo::Sha1, ABC_SHA1_B64), (Algo::Sha256, ABC_SHA256_B64)] {
            let (parsed, digest) = parse_checksum(&format!("{} {b64}", algo.name())).unwrap();
            assert_eq!(parsed, algo);
            let mut h = ChunkHasher::new(algo);
            h.update(b"a");
            h.update(b"bc");
            assert!(h.clone().matches(&digest), "{algo:?}");
            h.update(b"d");
            assert!(!h.matches(&digest), "{algo:?}");
        }
    }

    #[test]
    fn repr_digests() {
        let unpadded = ABC_SHA256_B64.trim_end_matches('=');
        let cases: &[(String, Result<bool, u16>)] = &[
            (format!("sha-256=:{ABC_SHA256_B64}:"), Ok(true)),
            (format!("sha-256=:{unpadded}:"), Ok(true)),
            (
                format!("sha-512=:AAAA:, sha-256=:{ABC_SHA256_B64}:"),
                Ok(true),
            ),
            (format!("  sha-256=:{ABC_SHA256_B64}:;x=1 "), Ok(true)),
            (
                format!("sha-256=:AAAA:,sha-256=:{ABC_SHA256_B64}:"),
                Ok(true),
            ), // last wins
            ("sha-512=:AAAA:".into(), Ok(false)),
            ("unixsum=30637".into(), Ok(false)),
            ("x=\"a,b\", y".into(), Ok(false)),
            ("".into(), Ok(false)),
            (format!("sha-256={ABC_SHA256_B64}"), Err(400)), // not a byte sequence
            (format!("sha-256=:{ABC_SHA256_B64}"), Err(400)),
            ("sha-256=:AAAA:".into(), Err(400)), // wrong length
            ("sha-256".into(), Err(400)),        // boolean true
            (format!("SHA-256=:{ABC_SHA256_B64}:"), Err(400)), // keys are lowercase
            (format!("sha-256=:{ABC_SHA256_B64}:,"), Err(400)),
            ("x=\"unterminated".into(), Err(400)),
            (format!("sha-256=:{ABC_SHA256_B64}:junk"), Err(400)),
        ];
        for (header, want) in cases {
            let got = parse_repr_digest(header).map_err(|r| r.status);
            match (got, want) {
                (Ok(Some(d)), Ok(true)) => assert_eq!(d, abc_sha256(), "{header:?}"),
                (Ok(None), Ok(false)) => {}
                (Err(status), Err(want)) if status == *want => {}
                (got, want) => panic!("{header:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn metadata_checksums() {
        let b64 = crate::base64::encode(format!("sha256 {ABC_SHA256_B64}").as_bytes());
        let hex = crate::base64::encode(format!("sha256 {ABC_SHA256_HEX}").as_bytes());
        let upper =
            crate::base64::encode(format!("SHA256 {}", ABC_SHA256_HEX.to_uppercase()).as_bytes());
        let md5 = crate::base64::encode(b"md5 kAFQmDzST7DWlj99KOF/cg==");
        let short = crate::base64::encode(b"sha256 abcd");
        let bad_hex = crate::base64::encode(format!("sha256 {}", "g".repeat(64)).as_bytes());
        let cases: &[(String, Result<bool, u16>)] = &[
            (format!("checksum {b64}"), Ok(true)),
            (format!("checksum {hex}"), Ok(true)),
            (format!("checksum {upper}"), Ok(true)),
            (format!("checksum {md5}"), Ok(false)),
            ("filename YQ==".into(), Ok(false)),
            (format!("checksum {short}"), Err(400)),
            (format!("checksum {bad_hex}"), Err(400)),
        ];
        for (header, want) in cases {
            let meta = parse_metadata(header).unwrap();
            let got = metadata_checksum(&meta).map_err(|r| r.status);
            match (got, want) {
                (Ok(Some(d)), Ok(true)) => assert_eq!(d, abc_sha256(), "{header:?}"),
                (Ok(None), Ok(false)) => {}
                (Err(status), Err(want)) if status == *want => {}
                (got, want) => panic!("{header:?}: got {got:?}, want {want:?}"),
            }
        }
        let repr = format!("sha-256=:{ABC_SHA256_B64}:");
        let other = "sha-256=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:";
        let with = parse_metadata(&format!("checksum {hex}")).unwrap();
        let without = Metadata::default();
        assert_eq!(expected_sha256(Some(&repr), &with), Ok(Some(abc_sha256())));
        assert_eq!(expected_sha256(None, &with), Ok(Some(abc_sha256())));
        assert_eq!(
            expected_sha256(Some(&repr), &without),
            Ok(Some(abc_sha256()))
        );
        assert_eq!(expected_sha256(None, &without), Ok(None));
        assert_eq!(
            expected_sha256(Some(other), &with).map_err(|r| r.status),
            Err(400)
        );
    }

    #[test]
    fn expires() {
        const CASES: &[(u64, Option<&str>)] = &[
            (0, Some("Thu, 01 Jan 1970 00:00:00 GMT")),
            (1_700_000_000, Some("Tue, 14 Nov 2023 22:13:20 GMT")),
            (253_402_300_799, Some("Fri, 31 Dec 9999 23:59:59 GMT")),
            (253_402_300_800, None),
            (u64::MAX, None),
        ];
        for &(secs, want) in CASES {
            let got = upload_expires(secs).map(|d| d.to_string());
            assert_eq!(got.as_deref(), want, "{secs}");
        }
    }
}
