//! The promised behaviour of docs/semantics.md §1–§3 and §6, checked the way a
//! client sees it: raw requests to the real binary on 127.0.0.1:0, exact
//! status, header values and body bytes.
//!
//! `ROWS` is the spec as a table. It runs once with a fresh connection per row
//! and once over a single kept-alive connection (darkhttpd's `TestKeepAlive`),
//! so every kind of response must also leave the connection usable. The rest
//! are the edges small hosts hit (darkhttpd's `TestLargeFile2G/4G`,
//! `TestLargeMtime`): a sparse 5 GiB file, mtimes outside 1970..=9999, a
//! zero-byte file, files that change or appear while the server runs.

mod support;

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::{Conn, Response, Server, TempDir, build, get, pattern};

/// The file most rows ask for: `LEN` pseudo-random bytes in `/data.txt`.
const LEN: u64 = 1000;
const TXT: &str = "text/plain; charset=utf-8";
/// Its mtime: 2020-09-13T12:26:40.123456789Z, long past (If-Range dates need
/// a Last-Modified at least a second older than the response's Date).
const MTIME_SECS: u64 = 1_600_000_000;
const MTIME_NANOS: u32 = 123_456_789;
/// That mtime in the three HTTP-date forms (RFC 9110 §5.6.7).
const LM: &str = "Sun, 13 Sep 2020 12:26:40 GMT";
const LM_RFC850: &str = "Sunday, 13-Sep-20 12:26:40 GMT";
const LM_ASCTIME: &str = "Sun Sep 13 12:26:40 2020";
const LM_MINUS_1S: &str = "Sun, 13 Sep 2020 12:26:39 GMT";
const LM_PLUS_1S: &str = "Sun, 13 Sep 2020 12:26:41 GMT";
const LM_PLUS_1D: &str = "Mon, 14 Sep 2020 12:26:40 GMT";
/// 30 digits: beyond u64.
const HUGE: &str = "999999999999999999999999999999";

/// What the body of a row's response must be. For HEAD the body is empty and
/// `Content-Length` is the length the GET body would have.
#[derive(Clone, Copy, Debug)]
enum Want {
    /// The whole file.
    Full,
    /// `file[first..=last]`, single part.
    Bytes(u64, u64),
    /// multipart/byteranges with these inclusive ranges, in this order.
    Parts(&'static [(u64, u64)]),
    /// multipart/byteranges of the single bytes 0, 2, 4, … (N parts).
    EveryOther(u64),
    /// These exact bytes (error pages, redirects).
    Text(&'static str),
    /// 304: no body, Content-Length absent or the full size.
    NotModified,
}

/// One request and everything about its answer. In `fields`, expected
/// `headers` and the target, `{etag}` stands for the file's current ETag and
/// `{ranges:N}` for `0-0,2-2,4-4,…` with N elements.
struct Row {
    name: &'static str,
    method: &'static str,
    target: &'static str,
    fields: &'static [(&'static str, &'static str)],
    /// Sent after the head, with a matching Content-Length field in `fields`.
    req_body: &'static str,
    status: u16,
    /// Content-Range exactly, or None for "absent".
    content_range: Option<&'static str>,
    body: Want,
    /// Further fields: `Some(v)` must equal v, `None` must be absent.
    headers: &'static [(&'static str, Option<&'static str>)],
}

const fn row(
    name: &'static str,
    fields: &'static [(&'static str, &'static str)],
    status: u16,
    content_range: Option<&'static str>,
    body: Want,
) -> Row {
    Row {
        name,
        method: "GET",
        target: "/data.txt",
        fields,
        req_body: "",
        status,
        content_range,
        body,
        headers: &[],
    }
}

const fn with_method(mut r: Row, method: &'static str) -> Row {
    r.method = method;
    r
}

const fn with_target(mut r: Row, target: &'static str) -> Row {
    r.target = target;
    r
}

const fn with_headers(mut r: Row, headers: &'static [(&'static str, Option<&'static str>)]) -> Row {
    r.headers = headers;
    r
}

const fn with_body(mut r: Row, req_body: &'static str) -> Row {
    r.req_body = req_body;
    r
}

use Want::*;

const E416: &str = "416 Range Not Satisfiable\n";
const E412: &str = "412 Precondition Failed\n";
const E405: &str = "405 Method Not Allowed\n";
const ALLOW: &[(&str, Option<&str>)] = &[("Allow", Some("GET, HEAD"))];
const NOT_MODIFIED: &[(&str, Option<&str>)] = &[
    ("ETag", Some("{etag}")),
    ("Last-Modified", Some(LM)),
    ("Content-Type", None),
    ("Accept-Ranges", None),
];
const R416: Option<&str> = Some("bytes */1000");

/// The semantics table: §1 decisions, §2 order, §3 formats, §6 rows.
#[rustfmt::skip]
const ROWS: &[Row] = &[
    // Plain GET.
    row("no Range", &[], 200, None, Full),
    // Single ranges (RFC 9110 §14.1.2).
    row("first byte", &[("Range", "bytes=0-0")], 206, Some("bytes 0-0/1000"), Bytes(0, 0)),
    row("single range", &[("Range", "bytes=10-19")], 206, Some("bytes 10-19/1000"), Bytes(10, 19)),
    row("last byte", &[("Range", "bytes=999-999")], 206, Some("bytes 999-999/1000"), Bytes(999, 999)),
    row("last-pos beyond the end is clamped", &[("Range", "bytes=995-2000")], 206, Some("bytes 995-999/1000"), Bytes(995, 999)),
    row("open-ended", &[("Range", "bytes=990-")], 206, Some("bytes 990-999/1000"), Bytes(990, 999)),
    row("open-ended from 0 is still a 206", &[("Range", "bytes=0-")], 206, Some("bytes 0-999/1000"), Bytes(0, 999)),
    row("suffix", &[("Range", "bytes=-10")], 206, Some("bytes 990-999/1000"), Bytes(990, 999)),
    row("suffix longer than the file", &[("Range", "bytes=-2000")], 206, Some("bytes 0-999/1000"), Bytes(0, 999)),
    row("leading zeros are digits", &[("Range", "bytes=0003-00005")], 206, Some("bytes 3-5/1000"), Bytes(3, 5)),
    // Units (§6 rows 1, 2).
    row("unknown unit: 200 (§6 row 1)", &[("Range", "items=0-4")], 200, None, Full),
    row("Bytes= is bytes (§6 row 2)", &[("Range", "Bytes=0-4")], 206, Some("bytes 0-4/1000"), Bytes(0, 4)),
    row("BYTES= is bytes", &[("Range", "BYTES=5-9")], 206, Some("bytes 5-9/1000"), Bytes(5, 9)),
    // Invalid syntax is ignored: 200 full (§1, §6 row 3).
    row("alpha", &[("Range", "bytes=abc")], 200, None, Full),
    row("last before first", &[("Range", "bytes=5-1")], 200, None, Full),
    row("double dash", &[("Range", "bytes=--6")], 200, None, Full),
    row("no dash", &[("Range", "bytes=10")], 200, None, Full),
    row("space instead of =", &[("Range", "bytes 0-4")], 200, None, Full),
    row("empty set", &[("Range", "bytes=")], 200, None, Full),
    row("spaces around the dash", &[("Range", "bytes=0 - 4")], 200, None, Full),
    row("hex", &[("Range", "bytes=0x01-0x02")], 200, None, Full),
    row("garbage element poisons the set", &[("Range", "bytes=0-4, Ran-dom")], 200, None, Full),
    row("+5 is not a number (first)", &[("Range", "bytes=+5-10")], 200, None, Full),
    row("+5 is not a number (last)", &[("Range", "bytes=5-+10")], 200, None, Full),
    row("+5 is not a number (suffix)", &[("Range", "bytes=-+5")], 200, None, Full),
    row("negative first-pos", &[("Range", "bytes=-5-10")], 200, None, Full),
    // Unsatisfiable (§1, §6 row 4).
    row("bytes=-0 (§6 row 4)", &[("Range", "bytes=-0")], 416, R416, Text(E416)),
    row("first-pos at the size", &[("Range", "bytes=1000-")], 416, R416, Text(E416)),
    row("all unsatisfiable", &[("Range", "bytes=1000-1005, 2000-")], 416, R416, Text(E416)),
    row("-0 among unsatisfiable", &[("Range", "bytes=-0,5000-")], 416, R416, Text(E416)),
    // Some unsatisfiable among several: the rest are served.
    row("one left of two: single part", &[("Range", "bytes=0-4,2000-3000")], 206, Some("bytes 0-4/1000"), Bytes(0, 4)),
    row("-0 dropped beside a good range", &[("Range", "bytes=-0,7-9")], 206, Some("bytes 7-9/1000"), Bytes(7, 9)),
    row("two left of three: multipart", &[("Range", "bytes=0-4,2000-,10-14")], 206, None, Parts(&[(0, 4), (10, 14)])),
    // Multipart (§3), parts in request order.
    row("two ranges", &[("Range", "bytes=0-9,500-509")], 206, None, Parts(&[(0, 9), (500, 509)])),
    row("three ranges, request order", &[("Range", "bytes=990-999,0-4,100-149")], 206, None, Parts(&[(990, 999), (0, 4), (100, 149)])),
    row("open-ended part in a set", &[("Range", "bytes=0-1,500-")], 206, None, Parts(&[(0, 1), (500, 999)])),
    row("suffix part in a set", &[("Range", "bytes=-3,0-1")], 206, None, Parts(&[(997, 999), (0, 1)])),
    row("100 ranges are served", &[("Range", "bytes={ranges:100}")], 206, None, EveryOther(100)),
    // Abuse limits (§1, §6 rows 8, 9, 11).
    row("101 ranges: 200 (§6 row 11)", &[("Range", "bytes={ranges:101}")], 200, None, Full),
    row("sum of lengths > size (§6 row 8)", &[("Range", "bytes=0-999,0-0")], 200, None, Full),
    row("0- inside a set (§6 row 9)", &[("Range", "bytes=0-,1-")], 200, None, Full),
    row("three overlapping: 200", &[("Range", "bytes=0-9,5-14,8-20")], 200, None, Full),
    // Overflow (§1, §6 row 7).
    row("30-digit last-pos: to the end", &[("Range", "bytes=990-999999999999999999999999999999")], 206, Some("bytes 990-999/1000"), Bytes(990, 999)),
    row("30-digit suffix: whole file", &[("Range", "bytes=-999999999999999999999999999999")], 206, Some("bytes 0-999/1000"), Bytes(0, 999)),
    row("30-digit first-pos: 416", &[("Range", "bytes=999999999999999999999999999999-")], 416, R416, Text(E416)),
    row("30-digit first and last: 416", &[("Range", "bytes=999999999999999999999999999999-999999999999999999999999999999")], 416, R416, Text(E416)),
    // Whitespace and empty list elements (§1, §6 row 20).
    row("trailing HTAB", &[("Range", "bytes=0-4\t")], 206, Some("bytes 0-4/1000"), Bytes(0, 4)),
    row("OWS around commas", &[("Range", "bytes=0-4 ,\t10-14")], 206, None, Parts(&[(0, 4), (10, 14)])),
    row("empty element in the middle", &[("Range", "bytes=0-4,,10-14")], 206, None, Parts(&[(0, 4), (10, 14)])),
    row("empty element first", &[("Range", "bytes=,0-4")], 206, Some("bytes 0-4/1000"), Bytes(0, 4)),
    row("only empty elements", &[("Range", "bytes=,,")], 200, None, Full),
    // If-Range (§2 step 5, §6 rows 12, 13).
    row("If-Range current ETag", &[("Range", "bytes=10-19"), ("If-Range", "{etag}")], 206, Some("bytes 10-19/1000"), Bytes(10, 19)),
    row("If-Range old ETag: 200 full", &[("Range", "bytes=10-19"), ("If-Range", "\"3e8-0-1\"")], 200, None, Full),
    row("If-Range weak ETag: 200 full", &[("Range", "bytes=10-19"), ("If-Range", "W/{etag}")], 200, None, Full),
    row("If-Range IMF-fixdate = LM", &[("Range", "bytes=10-19"), ("If-Range", LM)], 206, Some("bytes 10-19/1000"), Bytes(10, 19)),
    row("If-Range RFC 850 = LM (§6 row 12)", &[("Range", "bytes=10-19"), ("If-Range", LM_RFC850)], 206, Some("bytes 10-19/1000"), Bytes(10, 19)),
    row("If-Range asctime = LM (§6 row 12)", &[("Range", "bytes=10-19"), ("If-Range", LM_ASCTIME)], 206, Some("bytes 10-19/1000"), Bytes(10, 19)),
    row("If-Range later date: exact match only", &[("Range", "bytes=10-19"), ("If-Range", LM_PLUS_1S)], 200, None, Full),
    row("If-Range earlier date", &[("Range", "bytes=10-19"), ("If-Range", LM_MINUS_1S)], 200, None, Full),
    row("If-Range garbage", &[("Range", "bytes=10-19"), ("If-Range", "yesterday")], 200, None, Full),
    row("If-Range ETag with multipart", &[("Range", "bytes=0-1,3-4"), ("If-Range", "{etag}")], 206, None, Parts(&[(0, 1), (3, 4)])),
    row("If-Range old ETag with -0: 200, not 416", &[("Range", "bytes=-0"), ("If-Range", "\"old\"")], 200, None, Full),
    // If-None-Match / If-Modified-Since → 304 (§2 step 4).
    with_headers(row("If-None-Match current", &[("If-None-Match", "{etag}")], 304, None, NotModified), NOT_MODIFIED),
    with_headers(row("If-None-Match *", &[("If-None-Match", "*")], 304, None, NotModified), NOT_MODIFIED),
    with_headers(row("If-None-Match weak matches", &[("If-None-Match", "W/{etag}")], 304, None, NotModified), NOT_MODIFIED),
    with_headers(row("If-None-Match in a list", &[("If-None-Match", "\"a\", {etag}")], 304, None, NotModified), NOT_MODIFIED),
    with_headers(row("304 beats Range", &[("If-None-Match", "{etag}"), ("Range", "bytes=0-4")], 304, None, NotModified), NOT_MODIFIED),
    row("If-None-Match other", &[("If-None-Match", "\"other\"")], 200, None, Full),
    row("If-None-Match other, with Range", &[("If-None-Match", "\"other\""), ("Range", "bytes=0-4")], 206, Some("bytes 0-4/1000"), Bytes(0, 4)),
    with_headers(row("If-Modified-Since = LM", &[("If-Modified-Since", LM)], 304, None, NotModified), NOT_MODIFIED),
    with_headers(row("If-Modified-Since later (§6 row 19)", &[("If-Modified-Since", LM_PLUS_1D)], 304, None, NotModified), NOT_MODIFIED),
    row("If-Modified-Since earlier", &[("If-Modified-Since", LM_MINUS_1S)], 200, None, Full),
    row("If-Modified-Since invalid", &[("If-Modified-Since", "not a date")], 200, None, Full),
    with_headers(row("If-None-Match hit + IMS older (§6 row 18)", &[("If-None-Match", "{etag}"), ("If-Modified-Since", LM_MINUS_1S)], 304, None, NotModified), NOT_MODIFIED),
    row("If-None-Match miss + IMS later: IMS ignored", &[("If-None-Match", "\"other\""), ("If-Modified-Since", LM_PLUS_1D)], 200, None, Full),
    // If-Match / If-Unmodified-Since → 412 (§2 step 3).
    row("If-Match other: 412", &[("If-Match", "\"other\"")], 412, None, Text(E412)),
    row("If-Match other + Range: 412", &[("If-Match", "\"other\""), ("Range", "bytes=0-4")], 412, None, Text(E412)),
    row("If-Match weak: strong comparison, 412", &[("If-Match", "W/{etag}")], 412, None, Text(E412)),
    row("If-Match current", &[("If-Match", "{etag}")], 200, None, Full),
    row("If-Match *", &[("If-Match", "*")], 200, None, Full),
    row("If-Match current + Range", &[("If-Match", "{etag}"), ("Range", "bytes=0-4")], 206, Some("bytes 0-4/1000"), Bytes(0, 4)),
    row("If-Unmodified-Since earlier: 412", &[("If-Unmodified-Since", LM_MINUS_1S)], 412, None, Text(E412)),
    row("If-Unmodified-Since = LM", &[("If-Unmodified-Since", LM)], 200, None, Full),
    row("If-Unmodified-Since invalid (§6 row 17)", &[("If-Unmodified-Since", "not a date")], 200, None, Full),
    row("If-Match hit + IUS false (§6 row 16)", &[("If-Match", "{etag}"), ("If-Unmodified-Since", LM_MINUS_1S)], 200, None, Full),
    row("412 beats 304", &[("If-Match", "\"other\""), ("If-None-Match", "{etag}")], 412, None, Text(E412)),
    // HEAD mirrors GET without a body (§6 row 14).
    with_method(row("HEAD", &[], 200, None, Full), "HEAD"),
    with_method(row("HEAD + Range (§6 row 14)", &[("Range", "bytes=10-19")], 206, Some("bytes 10-19/1000"), Bytes(10, 19)), "HEAD"),
    with_method(row("HEAD + unsatisfiable Range", &[("Range", "bytes=-0")], 416, R416, Text(E416)), "HEAD"),
    with_method(row("HEAD + If-Range old ETag", &[("Range", "bytes=10-19"), ("If-Range", "\"old\"")], 200, None, Full), "HEAD"),
    with_headers(with_method(row("HEAD + If-None-Match", &[("If-None-Match", "{etag}")], 304, None, NotModified), "HEAD"), NOT_MODIFIED),
    with_method(row("HEAD + If-Match other", &[("If-Match", "\"other\"")], 412, None, Text(E412)), "HEAD"),
    // Other methods: 405, Range and conditionals do not apply (§6 row 15).
    with_headers(with_method(row("POST", &[], 405, None, Text(E405)), "POST"), ALLOW),
    with_headers(with_method(row("POST + Range (§6 row 15)", &[("Range", "bytes=0-4")], 405, None, Text(E405)), "POST"), ALLOW),
    with_headers(with_method(row("DELETE + Range", &[("Range", "bytes=0-4")], 405, None, Text(E405)), "DELETE"), ALLOW),
    with_headers(with_method(row("PUT + If-None-Match", &[("If-None-Match", "*")], 405, None, Text(E405)), "PUT"), ALLOW),
    with_headers(with_body(with_method(row("PUT with a fragment body", &[("Content-Range", "bytes 0-4/1000"), ("Content-Length", "5")], 405, None, Text(E405)), "PUT"), "hello"), ALLOW),
    // Not a file: preconditions and Range do not apply (§2 step 1).
    with_target(row("missing file + Range", &[("Range", "bytes=0-4")], 404, None, Text("404 Not Found\n")), "/missing.txt"),
    with_target(row("missing file + If-Match", &[("If-Match", "\"x\"")], 404, None, Text("404 Not Found\n")), "/missing.txt"),
    with_method(with_target(row("missing file + POST: 404 before 405", &[], 404, None, Text("404 Not Found\n")), "/missing.txt"), "POST"),
    with_target(row("traversal + Range", &[("Range", "bytes=0-4")], 400, None, Text("400 Bad Request\n")), "/../data.txt"),
    with_headers(with_target(row("folder without slash", &[("Range", "bytes=0-4")], 301, None, Text("301 Moved Permanently\n")), "/dir"), &[("Location", Some("/dir/"))]),
    with_target(row("query string is not part of the path", &[("Range", "bytes=1-2")], 206, Some("bytes 1-2/1000"), Bytes(1, 2)), "/data.txt?v=1"),
];

// ---------------------------------------------------------------------------
// Fixture and checks.

struct Fixture {
    _dir: TempDir,
    server: Server,
    data: Vec<u8>,
    etag: String,
}

fn fixture() -> Fixture {
    let dir = TempDir::new();
    let data = pattern(LEN as usize, 7);
    let p = dir.write("data.txt", &data);
    set_mtime(&p, UNIX_EPOCH + Duration::new(MTIME_SECS, MTIME_NANOS));
    dir.write("dir/inner.txt", b"inner");
    let server = Server::start(dir.path());
    let r = get(server.addr, "/data.txt", &[]);
    assert_eq!(r.status, 200);
    let etag = r.header("etag").expect("ETag").to_owned();
    Fixture {
        _dir: dir,
        server,
        data,
        etag,
    }
}

fn set_mtime(path: &Path, t: SystemTime) {
    File::options()
        .write(true)
        .open(path)
        .expect("open for set_modified")
        .set_modified(t)
        .expect("set_modified");
}

/// `{etag}` and `{ranges:N}` replaced.
fn subst(s: &str, etag: &str) -> String {
    let mut out = s.replace("{etag}", etag);
    if let Some(start) = out.find("{ranges:") {
        let end = start + out[start..].find('}').expect("closing brace");
        let n: u64 = out[start + 8..end].parse().expect("count");
        let list: Vec<String> = (0..n).map(|i| format!("{0}-{0}", 2 * i)).collect();
        out.replace_range(start..=end, &list.join(","));
    }
    out
}

fn request_bytes(row: &Row, etag: &str) -> Vec<u8> {
    let fields: Vec<(String, String)> = row
        .fields
        .iter()
        .map(|(n, v)| (n.to_string(), subst(v, etag)))
        .collect();
    let refs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let mut bytes = build(row.method, row.target, &refs);
    bytes.extend_from_slice(row.req_body.as_bytes());
    bytes
}

/// One part of a multipart/byteranges body.
#[derive(Debug)]
struct Part {
    content_type: Option<String>,
    content_range: String,
    data: Vec<u8>,
}

/// Parses a multipart/byteranges body strictly (RFC 9110 §14.6, RFC 2046
/// §5.1.1): optional CRLF preamble, each part `--B CRLF fields CRLF CRLF
/// bytes CRLF`, then `--B--` and an optional CRLF — and nothing else, so a
/// Content-Length that disagrees with the body fails here.
fn parse_multipart(body: &[u8], boundary: &str) -> Vec<Part> {
    let delim = format!("--{boundary}");
    let mut rest = body.strip_prefix(b"\r\n").unwrap_or(body);
    let mut parts = Vec::new();
    for _ in 0..1000 {
        rest = rest.strip_prefix(delim.as_bytes()).unwrap_or_else(|| {
            panic!(
                "expected {delim:?} at {:?}",
                String::from_utf8_lossy(&rest[..rest.len().min(80)])
            )
        });
        if let Some(after) = rest.strip_prefix(b"--") {
            assert!(
                after.is_empty() || after == b"\r\n",
                "bytes after the close delimiter: {:?}",
                String::from_utf8_lossy(after)
            );
            return parts;
        }
        rest = rest
            .strip_prefix(b"\r\n")
            .expect("CRLF after the delimiter");
        let end = rest
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("end of part fields");
        let head = std::str::from_utf8(&rest[..end]).expect("part fields are text");
        rest = &rest[end + 4..];
        let mut content_type = None;
        let mut content_range = None;
        for line in head.split("\r\n") {
            let (n, v) = line.split_once(':').expect("part field line");
            match n.to_ascii_lowercase().as_str() {
                "content-type" => content_type = Some(v.trim().to_owned()),
                "content-range" => content_range = Some(v.trim().to_owned()),
                other => panic!("unexpected part field {other}"),
            }
        }
        let content_range = content_range.expect("every part has Content-Range");
        let (first, last) = content_range
            .strip_prefix("bytes ")
            .and_then(|s| s.split_once('/'))
            .and_then(|(r, _)| r.split_once('-'))
            .map(|(a, b)| (a.parse::<usize>().unwrap(), b.parse::<usize>().unwrap()))
            .expect("Content-Range bytes a-b/len");
        let n = last - first + 1;
        assert!(rest.len() >= n + 2, "part {content_range} truncated");
        parts.push(Part {
            content_type,
            content_range,
            data: rest[..n].to_vec(),
        });
        rest = rest[n..]
            .strip_prefix(b"\r\n")
            .expect("CRLF after part data");
    }
    panic!("more than 1000 parts");
}

/// Checks fields every response carries, then the row's own expectations.
fn check(row: &Row, r: &Response, f: &Fixture) {
    let ctx = format!("row {:?}: {} {:?}", row.name, row.method, row.fields);
    let etag = f.etag.as_str();
    let shown = if r.body.len() <= 64 && r.body.is_ascii() {
        r.body_str()
    } else {
        format!("{} bytes", r.body.len())
    };
    assert_eq!(r.status, row.status, "{ctx}: status; body {shown:?}");
    let date = r.header("date").unwrap_or_else(|| panic!("{ctx}: no Date"));
    assert!(
        httpdate::parse_http_date(date).is_ok() && date.ends_with(" GMT"),
        "{ctx}: Date {date:?}"
    );
    assert_eq!(
        r.header("content-range"),
        row.content_range,
        "{ctx}: Content-Range"
    );
    for (name, want) in row.headers {
        let want = want.map(|w| subst(w, etag));
        assert_eq!(r.header(name), want.as_deref(), "{ctx}: {name}");
    }
    let head = row.method == "HEAD";
    if matches!(r.status, 200 | 206) {
        let tag = r.header("etag").unwrap_or_else(|| panic!("{ctx}: no ETag"));
        assert_eq!(tag, etag, "{ctx}: ETag");
        assert!(
            tag.starts_with('"') && tag.ends_with('"') && tag.len() > 2,
            "{ctx}: ETag {tag}"
        );
        assert_eq!(r.header("last-modified"), Some(LM), "{ctx}: Last-Modified");
        assert_eq!(
            r.header("accept-ranges"),
            Some("bytes"),
            "{ctx}: Accept-Ranges"
        );
    }
    let content_length = r
        .header("content-length")
        .map(|v| v.parse::<u64>().expect("Content-Length"));
    if head {
        assert!(r.body.is_empty(), "{ctx}: HEAD has no body");
    }
    // The body a GET gets: for HEAD, its length must be the Content-Length.
    let expected: Option<Vec<u8>> = match row.body {
        Full => Some(f.data.clone()),
        Bytes(a, b) => Some(f.data[a as usize..=b as usize].to_vec()),
        Text(t) => Some(t.as_bytes().to_vec()),
        NotModified => {
            assert!(r.body.is_empty(), "{ctx}: 304 body");
            assert!(
                content_length.is_none() || content_length == Some(LEN),
                "{ctx}: 304 Content-Length {content_length:?}"
            );
            assert_eq!(r.header("content-type"), None, "{ctx}: 304 Content-Type");
            assert_eq!(r.header("etag"), Some(etag), "{ctx}: 304 ETag");
            None
        }
        Parts(_) | EveryOther(_) => {
            let want: Vec<(u64, u64)> = match row.body {
                Parts(p) => p.to_vec(),
                EveryOther(n) => (0..n).map(|i| (2 * i, 2 * i)).collect(),
                _ => unreachable!(),
            };
            let ct = r
                .header("content-type")
                .unwrap_or_else(|| panic!("{ctx}: no Content-Type"));
            let boundary = ct
                .strip_prefix("multipart/byteranges; boundary=")
                .unwrap_or_else(|| panic!("{ctx}: Content-Type {ct}"));
            assert!(
                (1..=70).contains(&boundary.len())
                    && boundary
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"'()+_,-./:=?".contains(&b)),
                "{ctx}: boundary {boundary:?}"
            );
            assert!(!head, "{ctx}: HEAD multipart rows are not in the table");
            assert_eq!(
                content_length,
                Some(r.body.len() as u64),
                "{ctx}: Content-Length"
            );
            let parts = parse_multipart(&r.body, boundary);
            assert_eq!(parts.len(), want.len(), "{ctx}: number of parts");
            for (p, &(a, b)) in parts.iter().zip(&want) {
                assert_eq!(
                    p.content_type.as_deref(),
                    Some(TXT),
                    "{ctx}: part Content-Type"
                );
                assert_eq!(
                    p.content_range,
                    format!("bytes {a}-{b}/{LEN}"),
                    "{ctx}: part range"
                );
                assert_eq!(
                    p.data,
                    &f.data[a as usize..=b as usize],
                    "{ctx}: part {a}-{b} bytes"
                );
            }
            None
        }
    };
    if let Some(expected) = expected {
        if matches!(r.status, 200 | 206) {
            assert_eq!(r.header("content-type"), Some(TXT), "{ctx}: Content-Type");
        } else {
            assert_eq!(
                r.header("content-type"),
                Some(TXT),
                "{ctx}: error page type"
            );
        }
        assert_eq!(
            content_length,
            Some(expected.len() as u64),
            "{ctx}: Content-Length"
        );
        if !head {
            assert!(
                r.body == expected,
                "{ctx}: body differs ({} bytes, want {})",
                r.body.len(),
                expected.len()
            );
        }
    }
}

// ---------------------------------------------------------------------------
// 1–2. The table, fresh connections and one keep-alive connection.

#[test]
fn table_rows_each_on_a_fresh_connection() {
    let f = fixture();
    for row in ROWS {
        let mut c = Conn::open(f.server.addr);
        c.send(&request_bytes(row, &f.etag));
        let r = c.response(row.method == "HEAD");
        check(row, &r, &f);
    }
}

#[test]
fn table_rows_all_over_one_keep_alive_connection() {
    let f = fixture();
    let mut c = Conn::open(f.server.addr);
    for row in ROWS {
        c.send(&request_bytes(row, &f.etag));
        let r = c.response(row.method == "HEAD");
        check(row, &r, &f);
        assert_ne!(
            r.header("connection"),
            Some("close"),
            "row {:?} closed the connection",
            row.name
        );
    }
    // After every kind of answer (200, 206, multipart, 304, 412, 416, 405,
    // 404, 400, 301) the connection still carries a plain GET.
    let r = c.request("GET", "/data.txt", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, f.data);
    let statuses: std::collections::BTreeSet<u16> = ROWS.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.into_iter().collect::<Vec<_>>(),
        [200, 206, 301, 304, 400, 404, 405, 412, 416]
    );
}

#[test]
fn table_is_well_formed() {
    // Guards the table itself: names are unique, so a failure names one row.
    let mut names: Vec<&str> = ROWS.iter().map(|r| r.name).collect();
    names.sort_unstable();
    let n = names.len();
    names.dedup();
    assert_eq!(names.len(), n, "duplicate row names");
    assert!(
        ROWS.iter()
            .any(|r| matches!(r.body, Parts(p) if p.len() == 3))
    );
    assert_eq!(subst("bytes={ranges:3}", ""), "bytes=0-0,2-2,4-4");
    assert_eq!(HUGE.len(), 30);
}

#[test]
fn head_of_a_multipart_answer_has_the_gets_length() {
    // HEAD + several ranges: the GET's fields, no body. The boundary differs
    // per response but has a fixed length, so the lengths must agree.
    let f = fixture();
    let mut c = Conn::open(f.server.addr);
    let fields = [("Range", "bytes=0-9,500-509,-3")];
    let h = c.request("HEAD", "/data.txt", &fields);
    let g = c.request("GET", "/data.txt", &fields);
    assert_eq!((h.status, g.status), (206, 206));
    assert!(h.body.is_empty());
    let (hb, gb) = (
        h.header("content-type").unwrap(),
        g.header("content-type").unwrap(),
    );
    assert!(hb.starts_with("multipart/byteranges; boundary="), "{hb}");
    assert_eq!(hb.len(), gb.len());
    assert_eq!(
        h.header("content-length"),
        Some(g.body.len().to_string().as_str())
    );
    assert_eq!(h.header("content-range"), None);
    assert_eq!(h.header("etag"), Some(f.etag.as_str()));
    let parts = parse_multipart(
        &g.body,
        gb.strip_prefix("multipart/byteranges; boundary=").unwrap(),
    );
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[2].content_range, "bytes 997-999/1000");
    assert_eq!(parts[2].data, &f.data[997..]);
}

// ---------------------------------------------------------------------------
// 3. A request in 1-byte fragments.

#[test]
fn request_sent_one_byte_at_a_time() {
    let f = fixture();
    let mut c = Conn::open(f.server.addr);
    c.stream().set_nodelay(true).unwrap();
    let req = build(
        "GET",
        "/data.txt",
        &[("Range", "bytes=100-199"), ("If-Range", &f.etag)],
    );
    assert!(req.len() < 200, "bounded: one write per byte");
    for b in &req {
        c.send(std::slice::from_ref(b));
        std::thread::sleep(Duration::from_millis(2));
    }
    let r = c.response(false);
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 100-199/1000"));
    assert_eq!(r.header("content-length"), Some("100"));
    assert_eq!(r.body, &f.data[100..200]);
    // And the connection goes on.
    let r = c.request("GET", "/data.txt", &[("Range", "bytes=-1")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &f.data[999..]);
}

// ---------------------------------------------------------------------------
// 4. A sparse 5 GiB file across 2^31 and 2^32.

#[test]
fn sparse_5_gib_file_ranges_across_2g_and_4g() {
    const SIZE: u64 = 5 << 30;
    const G2: u64 = 1 << 31;
    const G4: u64 = 1 << 32;
    let dir = TempDir::new();
    let path = dir.path().join("big.bin");
    let mut file = File::create(&path).unwrap();
    file.set_len(SIZE).unwrap();
    // Distinct markers either side of each boundary and at the end.
    let markers: [(u64, &[u8]); 3] = [
        (G2 - 2, b"ABCDE"), // 2^31-2 ..= 2^31+2
        (G4 - 2, b"FGHIJ"), // 2^32-2 ..= 2^32+2
        (SIZE - 3, b"XYZ"), // the last three bytes
    ];
    for (off, bytes) in markers {
        file.seek(SeekFrom::Start(off)).unwrap();
        file.write_all(bytes).unwrap();
    }
    drop(file);
    let server = Server::start(dir.path());
    let mut c = Conn::open(server.addr);
    let cases: &[(&str, &str, &[u8])] = &[
        (
            "bytes=2147483646-2147483647",
            "bytes 2147483646-2147483647/5368709120",
            b"AB",
        ),
        (
            "bytes=2147483648-2147483650",
            "bytes 2147483648-2147483650/5368709120",
            b"CDE",
        ),
        (
            "bytes=2147483644-2147483651",
            "bytes 2147483644-2147483651/5368709120",
            b"\0\0ABCDE\0",
        ),
        (
            "bytes=4294967294-4294967295",
            "bytes 4294967294-4294967295/5368709120",
            b"FG",
        ),
        (
            "bytes=4294967296-4294967298",
            "bytes 4294967296-4294967298/5368709120",
            b"HIJ",
        ),
        (
            "bytes=4294967293-4294967299",
            "bytes 4294967293-4294967299/5368709120",
            b"\0FGHIJ\0",
        ),
        ("bytes=-3", "bytes 5368709117-5368709119/5368709120", b"XYZ"),
        (
            "bytes=5368709118-",
            "bytes 5368709118-5368709119/5368709120",
            b"YZ",
        ),
        (
            "bytes=5368709119-99999999999",
            "bytes 5368709119-5368709119/5368709120",
            b"Z",
        ),
    ];
    for &(range, content_range, body) in cases {
        let r = c.request("GET", "/big.bin", &[("Range", range)]);
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(r.header("content-range"), Some(content_range), "{range}");
        assert_eq!(
            r.header("content-length"),
            Some(body.len().to_string().as_str()),
            "{range}"
        );
        assert_eq!(r.body, body, "{range}");
    }
    // Past the end: 416 with the 64-bit size.
    let r = c.request("GET", "/big.bin", &[("Range", "bytes=5368709120-")]);
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */5368709120"));
    // Two parts, one at each boundary.
    let r = c.request(
        "GET",
        "/big.bin",
        &[("Range", "bytes=2147483647-2147483648,4294967295-4294967296")],
    );
    assert_eq!(r.status, 206);
    let ct = r.header("content-type").unwrap();
    let boundary = ct
        .strip_prefix("multipart/byteranges; boundary=")
        .expect(ct);
    let parts = parse_multipart(&r.body, boundary);
    assert_eq!(parts.len(), 2);
    assert_eq!(
        parts[0].content_range,
        "bytes 2147483647-2147483648/5368709120"
    );
    assert_eq!(parts[0].data, b"BC");
    assert_eq!(
        parts[1].content_range,
        "bytes 4294967295-4294967296/5368709120"
    );
    assert_eq!(parts[1].data, b"GH");
    let r = c.request("HEAD", "/big.bin", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("5368709120"));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert!(r.body.is_empty());
}

// ---------------------------------------------------------------------------
// 5. mtimes an HTTP-date cannot carry.

/// A folder on tmpfs: ext4 clamps a year-10000 mtime to 2446, which would
/// quietly test a representable date instead.
struct ShmDir(PathBuf);

impl ShmDir {
    fn new(tag: &str) -> ShmDir {
        let p = PathBuf::from(format!("/dev/shm/ranged-test-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("/dev/shm must exist (tmpfs keeps 64-bit mtimes)");
        ShmDir(p)
    }
}

impl Drop for ShmDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn mtimes_in_1960_and_year_10000() {
    let dir = ShmDir::new("mtime");
    let y1960 = UNIX_EPOCH - Duration::from_secs(315_619_200); // 1960-01-01
    let y10000 = UNIX_EPOCH + Duration::from_secs(253_402_300_800 + 3600); // 10000-01-01T01:00Z
    let body = b"same bytes, different times";
    for (name, t) in [("old.txt", y1960), ("future.txt", y10000)] {
        let p = dir.0.join(name);
        std::fs::write(&p, body).unwrap();
        set_mtime(&p, t);
        assert_eq!(
            std::fs::metadata(&p).unwrap().modified().unwrap(),
            t,
            "{name}: the file system kept the mtime"
        );
    }
    let server = Server::start(&dir.0);
    let mut c = Conn::open(server.addr);
    let mut tags = Vec::new();
    for name in ["old.txt", "future.txt"] {
        let target = format!("/{name}");
        let r = c.request("GET", &target, &[]);
        assert_eq!(r.status, 200, "{name}");
        assert_eq!(r.body, body, "{name}");
        assert_eq!(
            r.header("last-modified"),
            None,
            "{name}: no HTTP-date exists"
        );
        assert_eq!(r.header("accept-ranges"), Some("bytes"), "{name}");
        let etag = r.header("etag").expect("ETag").to_owned();
        assert!(
            etag.starts_with('"') && etag.ends_with('"'),
            "{name}: {etag}"
        );
        // The ETag still makes resumes work.
        let r = c.request(
            "GET",
            &target,
            &[("Range", "bytes=5-9"), ("If-Range", &etag)],
        );
        assert_eq!(r.status, 206, "{name}");
        assert_eq!(r.header("content-range"), Some("bytes 5-9/27"), "{name}");
        assert_eq!(r.body, b"bytes", "{name}");
        // Without a Last-Modified there is nothing to compare dates with.
        for ims in [
            LM,
            "Thu, 01 Jan 1970 00:00:00 GMT",
            "Fri, 31 Dec 9999 23:59:59 GMT",
        ] {
            let r = c.request("GET", &target, &[("If-Modified-Since", ims)]);
            assert_eq!(r.status, 200, "{name}: If-Modified-Since {ims} ignored");
            assert_eq!(r.body, body);
            let r = c.request("GET", &target, &[("If-Unmodified-Since", ims)]);
            assert_eq!(r.status, 200, "{name}: If-Unmodified-Since {ims} ignored");
        }
        // An If-Range date can never match a file without Last-Modified.
        let r = c.request("GET", &target, &[("Range", "bytes=5-9"), ("If-Range", LM)]);
        assert_eq!(r.status, 200, "{name}");
        assert_eq!(r.body, body);
        let r = c.request("GET", &target, &[("If-None-Match", &etag)]);
        assert_eq!(r.status, 304, "{name}");
        tags.push(etag);
    }
    assert_ne!(
        tags[0], tags[1],
        "same size, different mtimes: different ETags"
    );
    server.assert_serves("/old.txt", body);
}

// ---------------------------------------------------------------------------
// 6. A zero-byte file.

#[test]
fn zero_byte_file() {
    let dir = TempDir::new();
    dir.write("empty.bin", b"");
    let server = Server::start(dir.path());
    let mut c = Conn::open(server.addr);
    for (method, range) in [
        ("GET", None),
        ("GET", Some("bytes=0-")),
        ("GET", Some("bytes=-5")),
        ("GET", Some("bytes=0-0")),
        ("GET", Some("bytes=-0")),
        ("GET", Some("bytes=0-4,6-9")),
        ("HEAD", None),
        ("HEAD", Some("bytes=0-")),
    ] {
        let fields: Vec<(&str, &str)> = range.iter().map(|r| ("Range", *r)).collect();
        let r = c.request(method, "/empty.bin", &fields);
        assert_eq!(
            r.status, 200,
            "{method} {range:?}: no Content-Range can describe 0 bytes"
        );
        assert_eq!(r.header("content-length"), Some("0"), "{method} {range:?}");
        assert_eq!(r.header("content-range"), None, "{method} {range:?}");
        assert_eq!(r.header("content-type"), Some("application/octet-stream"));
        assert!(r.header("etag").is_some());
        assert!(r.body.is_empty());
    }
    // The connection survived all of them.
    let r = c.request("GET", "/empty.bin", &[]);
    assert_eq!(r.status, 200);
}

// ---------------------------------------------------------------------------
// 7–8. The folder is served live.

#[test]
fn rewritten_file_gets_new_validators_and_never_a_splice() {
    let dir = TempDir::new();
    let old = pattern(4000, 1);
    let p = dir.write("fw.img", &old);
    set_mtime(&p, UNIX_EPOCH + Duration::new(MTIME_SECS, 0));
    let server = Server::start(dir.path());
    let mut c = Conn::open(server.addr);

    // A client downloads half, then the file is replaced.
    let r = c.request("GET", "/fw.img", &[("Range", "bytes=0-1999")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &old[..2000]);
    let old_tag = r.header("etag").unwrap().to_owned();

    let new = pattern(3000, 2);
    std::fs::write(&p, &new).unwrap();
    set_mtime(&p, UNIX_EPOCH + Duration::new(MTIME_SECS + 60, 0));

    // Resume with If-Range: the whole new file, not old[..2000] + new[2000..].
    let r = c.request(
        "GET",
        "/fw.img",
        &[("Range", "bytes=2000-"), ("If-Range", &old_tag)],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-range"), None);
    assert_eq!(r.header("content-length"), Some("3000"));
    assert!(r.body == new, "the complete new content");
    let new_tag = r.header("etag").unwrap().to_owned();
    assert_ne!(new_tag, old_tag);
    assert_eq!(
        r.header("last-modified"),
        Some("Sun, 13 Sep 2020 12:27:40 GMT")
    );

    let r = c.request("GET", "/fw.img", &[("If-Match", &old_tag)]);
    assert_eq!(r.status, 412);
    assert_eq!(r.body, E412.as_bytes());
    let r = c.request("GET", "/fw.img", &[("If-None-Match", &old_tag)]);
    assert_eq!(r.status, 200, "the cached copy is stale");
    let r = c.request(
        "GET",
        "/fw.img",
        &[("Range", "bytes=2000-"), ("If-Range", &new_tag)],
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 2000-2999/3000"));
    assert_eq!(r.body, &new[2000..]);
}

#[test]
fn same_size_mtime_touched_changes_the_etag() {
    let dir = TempDir::new();
    let data = pattern(500, 3);
    let p = dir.write("f.bin", &data);
    let t0 = UNIX_EPOCH + Duration::new(MTIME_SECS, 500);
    set_mtime(&p, t0);
    let server = Server::start(dir.path());
    let mut c = Conn::open(server.addr);
    let tag = |c: &mut Conn| {
        c.request("HEAD", "/f.bin", &[])
            .header("etag")
            .unwrap()
            .to_owned()
    };
    let t0_tag = tag(&mut c);
    assert_eq!(tag(&mut c), t0_tag, "stable while nothing changes");
    // One nanosecond later: same size, same second, same Last-Modified.
    set_mtime(&p, t0 + Duration::from_nanos(1));
    let ns_tag = tag(&mut c);
    assert_ne!(ns_tag, t0_tag, "a 1 ns mtime change must change the ETag");
    // One second later.
    set_mtime(&p, t0 + Duration::from_secs(1));
    let s_tag = tag(&mut c);
    assert_ne!(s_tag, ns_tag);
    assert_ne!(s_tag, t0_tag);
    for old in [&t0_tag, &ns_tag] {
        let r = c.request(
            "GET",
            "/f.bin",
            &[("Range", "bytes=100-"), ("If-Range", old)],
        );
        assert_eq!(r.status, 200, "If-Range {old}");
        assert_eq!(r.body, data);
        let r = c.request("GET", "/f.bin", &[("If-Match", old)]);
        assert_eq!(r.status, 412, "If-Match {old}");
    }
}

#[test]
fn if_range_date_of_a_file_modified_this_second_is_weak() {
    // §6 row 13: a Last-Modified in the current second is a weak validator.
    let dir = TempDir::new();
    let data = pattern(100, 4);
    let p = dir.write("fresh.bin", &data);
    let server = Server::start(dir.path());
    let mut c = Conn::open(server.addr);
    let mut checked = false;
    for _ in 0..5 {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let t = UNIX_EPOCH + Duration::from_secs(now.as_secs());
        set_mtime(&p, t);
        let lm = httpdate::fmt_http_date(t);
        let r = c.request(
            "GET",
            "/fresh.bin",
            &[("Range", "bytes=0-9"), ("If-Range", &lm)],
        );
        if r.header("date") != Some(lm.as_str()) {
            continue; // the second rolled over in between: try again
        }
        assert_eq!(r.header("last-modified"), Some(lm.as_str()));
        assert_eq!(r.status, 200, "If-Range date in the current second");
        assert_eq!(r.body, data);
        checked = true;
        break;
    }
    assert!(checked, "never managed to ask within one second");
    // An mtime in the future is no strong validator either.
    let future = UNIX_EPOCH
        + Duration::from_secs(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs()
                + 3600,
        );
    set_mtime(&p, future);
    let lm = httpdate::fmt_http_date(future);
    let r = c.request(
        "GET",
        "/fresh.bin",
        &[("Range", "bytes=0-9"), ("If-Range", &lm)],
    );
    assert_eq!(r.header("last-modified"), Some(lm.as_str()));
    assert_eq!(r.status, 200);
    // Once it is old enough, the same kind of date works.
    let past = UNIX_EPOCH + Duration::from_secs(MTIME_SECS);
    set_mtime(&p, past);
    let r = c.request(
        "GET",
        "/fresh.bin",
        &[("Range", "bytes=0-9"), ("If-Range", LM)],
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &data[..10]);
}

#[test]
fn files_created_after_start_are_served() {
    let dir = TempDir::new();
    let server = Server::start(dir.path());
    let r = get(server.addr, "/later.txt", &[]);
    assert_eq!(r.status, 404);
    let data = pattern(300, 5);
    dir.write("later.txt", &data);
    dir.write("sub/new.bin", b"0123456789");
    server.assert_serves("/later.txt", &data);
    let r = get(server.addr, "/sub/new.bin", &[("Range", "bytes=-4")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 6-9/10"));
    assert_eq!(r.body, b"6789");
    // And a deleted one is gone.
    std::fs::remove_file(dir.path().join("later.txt")).unwrap();
    let r = get(server.addr, "/later.txt", &[]);
    assert_eq!(r.status, 404);
    assert_eq!(r.body, b"404 Not Found\n");
}
