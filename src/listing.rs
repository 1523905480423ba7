//! The folder page: an HTML listing people browse and upload into, a JSON
//! listing for scripts, and the page's own CSS and JavaScript. Pure.
//!
//! The page is served at the folder's URL with its trailing `/` (the caller
//! redirects `/dir` → `/dir/` first), so entry links are relative: `name` for
//! a file, `name/` for a folder, `../` for the parent; breadcrumb links are
//! absolute paths. Names are percent-encoded in links
//! ([`crate::fs_path::encode_path`]) and HTML-escaped in text, because a file
//! name is attacker-controlled text (anyone who can upload or unpack a file
//! picks it).
//!
//! Browsing and downloading work without JavaScript: sorting is a query
//! parameter ([`parse_sort`]), every control is a link. The page is
//! compatible with a strict Content-Security-Policy (`default-src 'self'`):
//! no inline script, no `style` attribute, no event-handler attribute. Its
//! stylesheet, script and icon ([`ASSETS`]) live under `/.ranged/`, a prefix
//! reserved for the server's own files. The script (`assets/page.js`) is a
//! tus 1.0.0 upload client with progress, pause, cancel and resume across
//! network errors and page reloads; it is linked only when the visitor may
//! upload ([`Upload::Yes`]).
//!
//! Sizes are IEC (`1.5 KiB` = 1536 bytes, one decimal), exact bytes on hover;
//! times are UTC minutes. The order is total and the same on every host:
//! folders first, then the chosen key, then [`natural_cmp`] on names.

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::time::SystemTime;

use crate::fs_path::encode_into;

/// The page's static files, served at these fixed paths: (URL path, content
/// type, bytes). The page links them; nothing else refers to their content.
pub const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        CSS_URL,
        "text/css; charset=utf-8",
        include_bytes!("../assets/page.css"),
    ),
    (
        JS_URL,
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/page.js"),
    ),
    // Without an icon of its own, every page view costs a request for
    // /favicon.ico: a 404 in the access log and in the browser's console.
    (
        ICON_URL,
        "image/svg+xml; charset=utf-8",
        include_bytes!("../assets/icon.svg"),
    ),
];

const CSS_URL: &str = "/.ranged/page.css";
const JS_URL: &str = "/.ranged/page.js";
const ICON_URL: &str = "/.ranged/icon.svg";

pub struct Entry {
    pub name: String,
    pub is_dir: bool,
    pub size: u64,
    pub mtime: Option<SystemTime>,
    /// The strong ETag of this version, with its quotes (`"…"`), as sent in
    /// the `ETag` header. A file with one gets a version-pinned link.
    pub etag: Option<String>,
    /// The base64 SHA-256 of this version's content, when known.
    pub digest: Option<String>,
}

/// What a column header sorts by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    Name,
    Size,
    Date,
}

/// The listing order, from the query string (see [`parse_sort`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sort {
    pub key: SortKey,
    pub desc: bool,
}

impl Default for Sort {
    fn default() -> Sort {
        Sort {
            key: SortKey::Name,
            desc: false,
        }
    }
}

/// Whether the page offers uploads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upload {
    /// No upload control at all.
    No,
    /// The visitor may write here: file picker, drop zone, upload script.
    Yes,
    /// Uploads exist but need credentials: a "Log in to upload" link to
    /// `?login`, which the server answers with 401 until they come.
    Login,
}

/// Everything about one page besides its entries.
pub struct View<'a> {
    /// The folder, decoded, with both slashes: `/`, `/a b/`.
    pub path: &'a str,
    pub sort: Sort,
    pub upload: Upload,
    /// A capability-link token the page was opened with. Every link and
    /// upload request carries it as `token=…`; it is never shown.
    pub token: Option<&'a str>,
}

/// Parses `sort=name|size|date` and `order=asc|desc` from a query string
/// (with or without its `?`). Unknown keys and values are ignored, so a
/// hand-edited URL still lists the folder. Without `order`, names go A→Z,
/// sizes largest first and dates newest first: what a click on the header
/// is for.
///
/// ```
/// use ranged::listing::{parse_sort, Sort, SortKey};
/// assert_eq!(parse_sort(Some("sort=size")), Sort { key: SortKey::Size, desc: true });
/// assert_eq!(parse_sort(None), Sort::default());
/// ```
pub fn parse_sort(query: Option<&str>) -> Sort {
    let (mut key, mut desc) = (None, None);
    let query = query.unwrap_or("");
    for pair in query.strip_prefix('?').unwrap_or(query).split('&') {
        match pair.split_once('=') {
            Some(("sort", "name")) => key = Some(SortKey::Name),
            Some(("sort", "size")) => key = Some(SortKey::Size),
            Some(("sort", "date")) => key = Some(SortKey::Date),
            Some(("order", "asc")) => desc = Some(false),
            Some(("order", "desc")) => desc = Some(true),
            _ => {}
        }
    }
    let key = key.unwrap_or(SortKey::Name);
    Sort {
        key,
        desc: desc.unwrap_or(key != SortKey::Name),
    }
}

/// Compares names the way people read them: case-insensitively (Unicode
/// lowercase), with runs of ASCII digits compared as numbers of any length
/// (`file2` < `file10`, `007` = `7`). Names equal that way are ordered by
/// their bytes (`File` < `file`, `007` < `7`), so the order is total: the
/// same listing on every host, every time.
///
/// ```
/// use ranged::listing::natural_cmp;
/// use std::cmp::Ordering::*;
/// assert_eq!(natural_cmp("file2", "file10"), Less);
/// assert_eq!(natural_cmp("Beta", "alpha"), Greater);
/// ```
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    loose_cmp(a, b).then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

/// [`natural_cmp`] without the byte tie-break. Each string is read as a
/// sequence of tokens, a digit run or a single other character, compared in
/// turn; digit runs compare among themselves by value and with characters
/// as their first digit, so the token order is itself total.
fn loose_cmp(mut a: &str, mut b: &str) -> Ordering {
    loop {
        let (x, y) = match (a.chars().next(), b.chars().next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => (x, y),
        };
        if x.is_ascii_digit() && y.is_ascii_digit() {
            let (da, ra) = split_digits(a);
            let (db, rb) = split_digits(b);
            let (na, nb) = (da.trim_start_matches('0'), db.trim_start_matches('0'));
            // Without leading zeros, the longer run is the larger number;
            // comparing lengths first needs no integer that could overflow.
            let by_value = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
            if by_value.is_ne() {
                return by_value;
            }
            (a, b) = (ra, rb);
        } else {
            let by_char = x.to_lowercase().cmp(y.to_lowercase());
            if by_char.is_ne() {
                return by_char;
            }
            (a, b) = (&a[x.len_utf8()..], &b[y.len_utf8()..]);
        }
    }
}

/// Splits `s` after its leading ASCII digits (ASCII, so a char boundary).
fn split_digits(s: &str) -> (&str, &str) {
    let end = s
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    s.split_at(end)
}

/// A size in IEC units with one decimal, rounded half up: `0 B`, `1023 B`,
/// `1.5 KiB`, `931.3 GiB`, `16.0 EiB` for `u64::MAX`. A value that would
/// round to `1024.0` of a unit is shown in the next one (`1.0 MiB`).
///
/// ```
/// assert_eq!(ranged::listing::human_size(1536), "1.5 KiB");
/// ```
pub fn human_size(bytes: u64) -> String {
    let mut out = String::new();
    push_human_size(&mut out, bytes);
    out
}

fn push_human_size(out: &mut String, bytes: u64) {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        let _ = write!(out, "{bytes} B");
        return;
    }
    // u128: ten times u64::MAX, plus half a divisor, does not fit u64.
    let n = u128::from(bytes) * 10;
    let (mut unit, mut div) = (0, 1024u128);
    while unit + 1 < UNITS.len() && n >= div * 1024 * 10 {
        (unit, div) = (unit + 1, div * 1024);
    }
    let mut tenths = (n + div / 2) / div;
    if tenths >= 10_240 && unit + 1 < UNITS.len() {
        (unit, div) = (unit + 1, div * 1024);
        tenths = (n + div / 2) / div;
    }
    let _ = write!(out, "{}.{} {}", tenths / 10, tenths % 10, UNITS[unit]);
}

/// Sorts `entries` in place for `sort`: folders first; then the key (folder
/// sizes count as equal; an unknown time is older than any); then names by
/// [`natural_cmp`], A→Z unless names themselves are sorted descending.
fn sort_entries(entries: &mut [Entry], sort: Sort) {
    entries.sort_by(|a, b| {
        let by_key = match sort.key {
            SortKey::Name => Ordering::Equal,
            SortKey::Size if a.is_dir => Ordering::Equal,
            SortKey::Size => a.size.cmp(&b.size),
            SortKey::Date => a.mtime.cmp(&b.mtime),
        };
        let by_key = if sort.desc { by_key.reverse() } else { by_key };
        // Names are compared only when folder-ness and the key tie.
        b.is_dir.cmp(&a.is_dir).then(by_key).then_with(|| {
            let by_name = natural_cmp(&a.name, &b.name);
            if sort.desc && sort.key == SortKey::Name {
                by_name.reverse()
            } else {
                by_name
            }
        })
    });
}

/// Entries named `.`, `..`, or containing `/` or NUL cannot come from
/// `read_dir`; they are skipped rather than turned into misleading links.
fn listable(entry: &Entry) -> bool {
    !matches!(entry.name.as_str(), "" | "." | "..") && !entry.name.contains(['/', '\0'])
}

/// Renders the folder page for `view`, sorting `entries` in place.
///
/// ```
/// use ranged::listing::{render, Entry, Sort, Upload, View};
/// let view = View { path: "/docs/", sort: Sort::default(), upload: Upload::No, token: None };
/// let mut entries = vec![Entry {
///     name: "a b.txt".into(), is_dir: false, size: 3, mtime: None, etag: None, digest: None,
/// }];
/// let html = render(&view, &mut entries);
/// assert!(html.contains(r#"<a href="a%20b.txt">a b.txt</a>"#));
/// assert!(html.contains(r#"<a href="../">../</a>"#));
/// ```
pub fn render(view: &View, entries: &mut [Entry]) -> String {
    sort_entries(entries, view.sort);
    let mut html = String::with_capacity(1200 + 200 * entries.len());
    html.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n\
         <meta name=\"color-scheme\" content=\"light dark\">\n<title>Index of ",
    );
    push_escaped(&mut html, view.path);
    let _ = write!(
        html,
        "</title>\n<link rel=\"stylesheet\" href=\"{CSS_URL}\">\n\
         <link rel=\"icon\" href=\"{ICON_URL}\">\n"
    );
    if view.upload == Upload::Yes {
        let _ = writeln!(html, "<script src=\"{JS_URL}\" defer></script>");
    }
    html.push_str("</head>\n<body>\n");
    push_breadcrumb(&mut html, view);
    match view.upload {
        Upload::No => {}
        // Hidden until the script shows it: without JavaScript a file
        // picker would upload nothing.
        Upload::Yes => {
            html.push_str("<section id=\"up\" hidden");
            if let Some(token) = view.token {
                html.push_str(" data-token=\"");
                push_escaped(&mut html, token);
                html.push('"');
            }
            html.push_str(
                "><label>Upload files <input type=\"file\" multiple></label> \
                 <span>or drop them on this page</span>\n<ul></ul></section>\n",
            );
        }
        Upload::Login => {
            html.push_str("<p id=\"login\"><a href=\"?login");
            push_token(&mut html, view.token, '&');
            html.push_str("\">Log in to upload</a></p>\n");
        }
    }
    html.push_str("<table>\n<thead><tr>");
    for (key, label) in [
        (SortKey::Name, "Name"),
        (SortKey::Size, "Size"),
        (SortKey::Date, "Modified (UTC)"),
    ] {
        push_header(&mut html, view, key, label);
    }
    html.push_str("</tr></thead>\n<tbody>\n");
    if !matches!(view.path, "/" | "") {
        html.push_str("<tr class=\"d\"><td><a href=\"../");
        push_token(&mut html, view.token, '?');
        html.push_str("\">../</a></td><td></td><td></td></tr>\n");
    }
    let mut pinned = false;
    for entry in entries.iter().filter(|e| listable(e)) {
        pinned |= push_row(&mut html, view, entry);
    }
    html.push_str("</tbody>\n</table>\n");
    if pinned {
        html.push_str(
            "<p id=\"pin\">A <i>pinned</i> link opens that exact version \
             and stops working once the file changes.</p>\n",
        );
    }
    html.push_str("</body>\n</html>\n");
    html
}

/// `/ › photos › 2026 ›`: one absolute link per segment (separators come
/// from the stylesheet), the last one marked as the current page.
fn push_breadcrumb(html: &mut String, view: &View) {
    let path = view.path.strip_prefix('/').unwrap_or(view.path);
    let last = path.trim_end_matches('/').len();
    html.push_str("<nav aria-label=\"Folder\"><h1>");
    push_crumb(html, view.token, "", "/", last == 0);
    let mut start = 0;
    for segment in path.split('/') {
        let stop = start + segment.len();
        if !segment.is_empty() {
            // `path[..stop]` ends before a `/` or at the end: a char boundary.
            push_crumb(html, view.token, &path[..stop], segment, stop == last);
        }
        start = stop + 1;
    }
    html.push_str("</h1></nav>\n");
}

/// One breadcrumb link to the folder `/{prefix}/`.
fn push_crumb(html: &mut String, token: Option<&str>, prefix: &str, text: &str, current: bool) {
    html.push_str("<a href=\"/");
    if !prefix.is_empty() {
        encode_into(html, prefix);
        html.push('/');
    }
    push_token(html, token, '?');
    html.push_str(if current {
        "\" aria-current=\"page\">"
    } else {
        "\">"
    });
    push_escaped(html, text);
    html.push_str("</a>");
}

/// A column header: a link that sorts by this column (reversing the order
/// when it is already the sort), `aria-sort` on the current one.
fn push_header(html: &mut String, view: &View, key: SortKey, label: &str) {
    let current = view.sort.key == key;
    html.push_str("<th");
    if current {
        html.push_str(if view.sort.desc {
            " aria-sort=\"descending\""
        } else {
            " aria-sort=\"ascending\""
        });
    }
    let next = Sort {
        key,
        desc: if current {
            !view.sort.desc
        } else {
            key != SortKey::Name
        },
    };
    html.push_str("><a href=\"");
    if next == Sort::default() {
        html.push_str("./");
        push_token(html, view.token, '?');
    } else {
        let key = match key {
            SortKey::Name => "name",
            SortKey::Size => "size",
            SortKey::Date => "date",
        };
        let order = if next.desc { "desc" } else { "asc" };
        let _ = write!(html, "?sort={key}&amp;order={order}");
        push_token(html, view.token, '&');
    }
    let _ = write!(html, "\">{label}</a></th>");
}

/// One `<tr>`; returns whether it has a pinned link.
fn push_row(html: &mut String, view: &View, entry: &Entry) -> bool {
    let slash = if entry.is_dir { "/" } else { "" };
    html.push_str(if entry.is_dir {
        "<tr class=\"d\">"
    } else {
        "<tr>"
    });
    html.push_str("<td><a href=\"");
    // Only unreserved characters, `/` and `%XX` come out: nothing to
    // HTML-escape, and `a:b` cannot turn into a scheme (RFC 3986 §4.2).
    encode_into(html, &entry.name);
    html.push_str(slash);
    push_token(html, view.token, '?');
    html.push_str("\">");
    push_escaped(html, &entry.name);
    html.push_str(slash);
    html.push_str("</a>");
    let pin = match &entry.etag {
        // Strong ETags only: a weak one does not identify the bytes.
        Some(tag) if !entry.is_dir => tag
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .filter(|t| !t.is_empty()),
        _ => None,
    };
    if let Some(version) = pin {
        html.push_str(" <a class=\"v\" href=\"");
        encode_into(html, &entry.name);
        html.push_str("?v=");
        encode_into(html, version);
        push_token(html, view.token, '&');
        html.push_str("\">pinned</a>");
    }
    html.push_str("</td>");
    if entry.is_dir {
        html.push_str("<td>-</td>");
    } else {
        let _ = write!(html, "<td title=\"{} bytes\">", entry.size);
        push_human_size(html, entry.size);
        html.push_str("</td>");
    }
    html.push_str("<td>");
    match entry.mtime {
        Some(t) => push_utc_minute(html, t),
        None => html.push('-'),
    }
    html.push_str("</td></tr>\n");
    pin.is_some()
}

/// Appends `token=…` after `sep` (`?` or `&amp;`) when there is a token.
fn push_token(html: &mut String, token: Option<&str>, sep: char) {
    if let Some(token) = token {
        html.push_str(if sep == '?' { "?" } else { "&amp;" });
        html.push_str("token=");
        encode_into(html, token);
    }
}

/// Renders the listing as JSON for scripts, sorted like the page:
///
/// ```text
/// {"path":"/a b/","entries":[
/// {"name":"x.bin","type":"file","size":3,"mtime":"2026-01-02T03:04:05Z",
///  "etag":"\"…\"","digest":"sha-256=:…:"},
/// {"name":"sub","type":"dir","size":null,"mtime":…,"etag":null,"digest":null}
/// ]}
/// ```
///
/// Every key is always present, `null` when unknown: `size` for a folder,
/// `mtime` when the time is unknown or outside RFC 3339's years 0000–9999,
/// `etag` (the header value, quotes included, ready for `If-Range`) and
/// `digest` (RFC 9530 `Repr-Digest` form) when not known.
pub fn render_json(view: &View, entries: &mut [Entry]) -> String {
    sort_entries(entries, view.sort);
    let mut json = String::with_capacity(40 + 160 * entries.len());
    json.push_str("{\"path\":");
    push_json_str(&mut json, view.path);
    json.push_str(",\"entries\":[");
    let mut first = true;
    for entry in entries.iter().filter(|e| listable(e)) {
        json.push_str(if first {
            "\n{\"name\":"
        } else {
            ",\n{\"name\":"
        });
        first = false;
        push_json_str(&mut json, &entry.name);
        if entry.is_dir {
            json.push_str(",\"type\":\"dir\",\"size\":null");
        } else {
            let _ = write!(json, ",\"type\":\"file\",\"size\":{}", entry.size);
        }
        json.push_str(",\"mtime\":");
        match entry.mtime.map(utc) {
            Some((y, mo, d, h, mi, s)) if (0..=9999).contains(&y) => {
                let _ = write!(json, "\"{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z\"");
            }
            _ => json.push_str("null"),
        }
        json.push_str(",\"etag\":");
        match &entry.etag {
            Some(tag) => push_json_str(&mut json, tag),
            None => json.push_str("null"),
        }
        json.push_str(",\"digest\":");
        match &entry.digest {
            Some(d) => {
                json.push_str("\"sha-256=:");
                push_json_inner(&mut json, d);
                json.push_str(":\"");
            }
            None => json.push_str("null"),
        }
        json.push('}');
    }
    json.push_str(if first { "]}\n" } else { "\n]}\n" });
    json
}

/// Appends `s` as a JSON string (RFC 8259 §7).
fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    push_json_inner(out, s);
    out.push('"');
}

/// The inside of a JSON string: `"`, `\` and control characters escaped, and
/// U+2028/U+2029 too, which JavaScript before ES2019 does not accept raw in
/// a string literal (a script that `eval`s or embeds the listing).
fn push_json_inner(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0}'..='\u{1f}' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            _ => out.push(c),
        }
    }
}

/// Appends `text` with the five HTML-significant characters escaped, so a
/// file called `<script>` or `a" onclick="x` stays text, in element content
/// and in attribute values alike.
fn push_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
}

/// Appends `t` as `YYYY-MM-DD HH:MM` in UTC. Never panics: unlike an
/// HTTP-date (httpdate panics outside 1970..=9999), a listing may show any
/// year, e.g. `1960-01-01 00:00` or `10000-01-01 00:00`.
fn push_utc_minute(out: &mut String, t: SystemTime) {
    let (year, month, day, hour, minute, _) = utc(t);
    let _ = write!(out, "{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}");
}

/// (year, month, day, hour, minute, second) of `t` in UTC, for any
/// `SystemTime`, floored (0.5 s before 1970 is 23:59:59 on 1969-12-31).
fn utc(t: SystemTime) -> (i64, u8, u8, u8, u8, u8) {
    let c = crate::logging::civil(t);
    (c.year, c.month, c.day, c.hour, c.min, c.sec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::{Equal, Greater, Less};
    use std::time::{Duration, UNIX_EPOCH};

    fn file(name: &str, size: u64) -> Entry {
        Entry {
            name: name.to_string(),
            is_dir: false,
            size,
            mtime: None,
            etag: None,
            digest: None,
        }
    }

    fn dir(name: &str) -> Entry {
        Entry {
            is_dir: true,
            ..file(name, 4096)
        }
    }

    fn at(secs: i64) -> SystemTime {
        if secs >= 0 {
            UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
        } else {
            UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
        }
    }

    fn view(path: &str) -> View<'_> {
        View {
            path,
            sort: Sort::default(),
            upload: Upload::No,
            token: None,
        }
    }

    fn page(path: &str, entries: &mut [Entry]) -> String {
        render(&view(path), entries)
    }

    fn fmt(t: SystemTime) -> String {
        let mut s = String::new();
        push_utc_minute(&mut s, t);
        s
    }

    /// The `<tr>` of the entry whose link text is `text`.
    fn row<'a>(html: &'a str, text: &str) -> &'a str {
        let needle = format!("\">{text}</a>");
        let at = html
            .find(&needle)
            .unwrap_or_else(|| panic!("no row {text:?} in\n{html}"));
        let start = html[..at].rfind("<tr").expect("row start");
        let end = at + html[at..].find("</tr>").expect("row end");
        &html[start..end]
    }

    /// Link texts of the table body, in page order.
    fn order(html: &str) -> Vec<&str> {
        let body = &html[html.find("<tbody>").expect("tbody")..];
        body.split("<tr")
            .skip(1)
            .filter_map(|r| {
                let link = r.find("<a href=")?;
                let start = link + r[link..].find("\">")? + 2;
                let end = start + r[start..].find("</a>")?;
                Some(&r[start..end])
            })
            .filter(|t| *t != "../")
            .collect()
    }

    const NATURAL: &[(&str, &str, Ordering)] = &[
        ("file2", "file10", Less),
        ("file10", "file2", Greater),
        ("file1", "file1", Equal),
        ("alpha", "Beta", Less),
        ("Beta", "alpha", Greater),
        ("beta", "Beta", Greater), // equal ignoring case: bytes decide, `B` < `b`
        ("File", "file", Less),
        ("007", "7", Less), // equal value: bytes decide, `0` < `7`
        ("7", "007", Greater),
        ("file007", "file8", Less), // 7 < 8, leading zeros or not
        ("x01y", "x1z", Less),      // `y` < `z` decides before the zeros tie
        ("a0", "a", Greater),
        ("", "a", Less),
        ("a", "a1", Less),
        ("1", "a", Less), // digits before letters
        ("a-1", "a1", Less),
        ("a_b", "aB", Less), // `_` < `b` once lowercased
        // Runs longer than any integer type compare by value, no overflow.
        (
            "99999999999999999999999999999",
            "100000000000000000000000000000",
            Less,
        ),
        ("v18446744073709551616", "v18446744073709551615", Greater),
        // Unicode: lowercase comparison, then bytes.
        ("É", "é", Less),
        ("éa", "Éb", Less),
        ("Ü9", "ü10", Less),
        ("e", "é", Less),
        ("z", "é", Less),
        ("日本2", "日本10", Less),
        ("Straße", "STRASSE", Greater), // `ß` is not `ss`: no locale rules
        ("٣", "3", Greater),            // only ASCII digits form numbers
    ];

    #[test]
    fn natural_order_table() {
        for &(a, b, expected) in NATURAL {
            assert_eq!(natural_cmp(a, b), expected, "{a:?} vs {b:?}");
            assert_eq!(natural_cmp(b, a), expected.reverse(), "{b:?} vs {a:?}");
        }
    }

    #[test]
    fn natural_order_is_a_total_order() {
        // Random names from a small alphabet that hits digits, zeros, case
        // and multi-byte characters; a sort followed by a pairwise check
        // catches any intransitive or asymmetric comparison.
        const ALPHABET: &[&str] = &["0", "1", "9", "a", "A", "b", "B", "-", "é", "É", "ß"];
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut names: Vec<String> = (0..300)
            .map(|_| {
                let len = next() % 6;
                (0..len)
                    .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                    .collect()
            })
            .collect();
        names.sort_by(|a, b| natural_cmp(a, b));
        for (i, a) in names.iter().enumerate() {
            for b in &names[i..] {
                let expected = if a == b { Equal } else { Less };
                assert_eq!(natural_cmp(a, b), expected, "{a:?} {b:?}");
                assert_eq!(natural_cmp(b, a), expected.reverse(), "{b:?} {a:?}");
            }
        }
    }

    #[test]
    fn human_sizes() {
        for (bytes, expected) in [
            (0, "0 B"),
            (1, "1 B"),
            (1023, "1023 B"),
            (1024, "1.0 KiB"),
            (1075, "1.0 KiB"), // 1.0498…
            (1076, "1.1 KiB"), // 1.0508…: half up
            (1536, "1.5 KiB"),
            (1_048_575, "1.0 MiB"), // 1023.999 KiB would print as 1024.0 KiB
            (1_048_576, "1.0 MiB"),
            (209_715_200, "200.0 MiB"),
            (1_000_000_000_000, "931.3 GiB"),
            ((1 << 60) - 1, "1.0 EiB"),
            (1 << 60, "1.0 EiB"),
            (u64::MAX, "16.0 EiB"),
        ] {
            assert_eq!(human_size(bytes), expected, "{bytes}");
        }
    }

    const SORTS: &[(Option<&str>, SortKey, bool)] = &[
        (None, SortKey::Name, false),
        (Some(""), SortKey::Name, false),
        (Some("sort=name"), SortKey::Name, false),
        (Some("order=desc"), SortKey::Name, true),
        (Some("sort=size"), SortKey::Size, true),
        (Some("sort=size&order=asc"), SortKey::Size, false),
        (Some("?sort=date"), SortKey::Date, true),
        (Some("order=asc&sort=date"), SortKey::Date, false),
        (Some("token=x&sort=date&order=asc"), SortKey::Date, false),
        (Some("sort=size&sort=name"), SortKey::Name, false), // the last one counts
        (Some("sort=SIZE"), SortKey::Name, false),
        (Some("sort=size;order=asc"), SortKey::Name, false),
        (Some("sort&order"), SortKey::Name, false),
        (Some("sort=&order=up"), SortKey::Name, false),
        (Some("login"), SortKey::Name, false),
        (Some("&&=&sort=size=&"), SortKey::Name, false),
    ];

    #[test]
    fn sort_from_query() {
        for &(query, key, desc) in SORTS {
            assert_eq!(parse_sort(query), Sort { key, desc }, "{query:?}");
        }
    }

    #[test]
    fn order_for_each_sort() {
        let entries = || {
            vec![
                Entry {
                    mtime: Some(at(300)),
                    ..file("file10", 10)
                },
                Entry {
                    mtime: Some(at(100)),
                    ..file("File2", 300)
                },
                Entry {
                    mtime: Some(at(200)),
                    ..file("alpha", 10)
                },
                file("beta", 20), // unknown time
                Entry {
                    mtime: Some(at(50)),
                    ..dir("zdir")
                },
                Entry {
                    mtime: Some(at(900)),
                    ..dir("Adir")
                },
            ]
        };
        for (query, expected) in [
            ("", ["Adir/", "zdir/", "alpha", "beta", "File2", "file10"]),
            (
                "order=desc",
                ["zdir/", "Adir/", "file10", "File2", "beta", "alpha"],
            ),
            // Largest first; equal sizes by name A→Z; folders by name.
            (
                "sort=size",
                ["Adir/", "zdir/", "File2", "beta", "alpha", "file10"],
            ),
            (
                "sort=size&order=asc",
                ["Adir/", "zdir/", "alpha", "file10", "beta", "File2"],
            ),
            // Newest first; an unknown time counts as oldest.
            (
                "sort=date",
                ["Adir/", "zdir/", "file10", "alpha", "File2", "beta"],
            ),
            (
                "sort=date&order=asc",
                ["zdir/", "Adir/", "beta", "File2", "alpha", "file10"],
            ),
        ] {
            let mut list = entries();
            let v = View {
                sort: parse_sort(Some(query)),
                ..view("/")
            };
            let html = render(&v, &mut list);
            assert_eq!(order(&html), expected, "{query}");
            let json = render_json(&v, &mut entries());
            let names: Vec<&str> = expected.iter().map(|n| n.trim_end_matches('/')).collect();
            let positions: Vec<usize> = names
                .iter()
                .map(|n| json.find(&format!("{{\"name\":\"{n}\"")).expect(n))
                .collect();
            assert!(positions.is_sorted(), "{query}: {json}");
        }
    }

    #[test]
    fn names_are_escaped_in_text_and_encoded_in_links() {
        let mut entries = vec![
            file("<script>alert(1)", 1), // no `/`: a name cannot hold one
            file("a&b", 2),
            file("say \"hi\"", 3),
            file("it's", 4),
            file("a b.txt", 5),
            file("100%", 6),
            file("a#b?.txt", 7),
            file("café", 8),
            file("日本.txt", 9),
            file("a:b", 10),
            dir("x y&z"),
        ];
        let html = page("/", &mut entries);
        for (href, text) in [
            ("%3Cscript%3Ealert%281%29", "&lt;script&gt;alert(1)"),
            ("a%26b", "a&amp;b"),
            ("say%20%22hi%22", "say &quot;hi&quot;"),
            ("it%27s", "it&#39;s"),
            ("a%20b.txt", "a b.txt"),
            ("100%25", "100%"),
            ("a%23b%3F.txt", "a#b?.txt"),
            ("caf%C3%A9", "café"),
            ("%E6%97%A5%E6%9C%AC.txt", "日本.txt"),
            ("a%3Ab", "a:b"),
            ("x%20y%26z/", "x y&amp;z/"),
        ] {
            let link = format!("<a href=\"{href}\">{text}</a>");
            assert!(html.contains(&link), "missing {link} in\n{html}");
        }
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("\"hi\""), "{html}");
    }

    #[test]
    fn title_and_breadcrumb_are_escaped() {
        let html = page("/<b>&'\"/", &mut []);
        assert!(
            html.contains("<title>Index of /&lt;b&gt;&amp;&#39;&quot;/</title>"),
            "{html}"
        );
        assert!(
            html.contains(
                "<a href=\"/%3Cb%3E%26%27%22/\" aria-current=\"page\">&lt;b&gt;&amp;&#39;&quot;</a>"
            ),
            "{html}"
        );
        assert!(!html.contains("<b>"), "{html}");
    }

    #[test]
    fn breadcrumb_links_every_folder_up_to_the_root() {
        for (path, token, expected) in [
            ("/", None, "<a href=\"/\" aria-current=\"page\">/</a>"),
            (
                "/photos/2026 x/",
                None,
                "<a href=\"/\">/</a><a href=\"/photos/\">photos</a>\
                 <a href=\"/photos/2026%20x/\" aria-current=\"page\">2026 x</a>",
            ),
            (
                "/a?#/",
                None,
                "<a href=\"/\">/</a><a href=\"/a%3F%23/\" aria-current=\"page\">a?#</a>",
            ),
            // Empty segments from `//` link nowhere new.
            (
                "/a//b/",
                None,
                "<a href=\"/\">/</a><a href=\"/a/\">a</a>\
                 <a href=\"/a//b/\" aria-current=\"page\">b</a>",
            ),
            (
                "/é/",
                Some("t k"),
                "<a href=\"/?token=t%20k\">/</a>\
                 <a href=\"/%C3%A9/?token=t%20k\" aria-current=\"page\">é</a>",
            ),
        ] {
            let html = render(
                &View {
                    token,
                    ..view(path)
                },
                &mut [],
            );
            let crumbs = format!("<nav aria-label=\"Folder\"><h1>{expected}</h1></nav>");
            assert!(html.contains(&crumbs), "{path}: want {crumbs}\n{html}");
        }
    }

    #[test]
    fn column_headers_sort_and_show_the_current_sort() {
        let headers = |query: &str, token: Option<&str>| {
            let v = View {
                sort: parse_sort(Some(query)),
                token,
                ..view("/")
            };
            let html = render(&v, &mut []);
            let start = html.find("<thead>").expect("thead");
            let end = html.find("</thead>").expect("thead end");
            html[start..end].to_string()
        };
        let cases = [
            (
                "",
                None,
                "<th aria-sort=\"ascending\"><a href=\"?sort=name&amp;order=desc\">Name</a></th>\
                 <th><a href=\"?sort=size&amp;order=desc\">Size</a></th>\
                 <th><a href=\"?sort=date&amp;order=desc\">Modified (UTC)</a></th>",
            ),
            (
                "sort=size",
                None,
                "<th><a href=\"./\">Name</a></th>\
                 <th aria-sort=\"descending\"><a href=\"?sort=size&amp;order=asc\">Size</a></th>\
                 <th><a href=\"?sort=date&amp;order=desc\">Modified (UTC)</a></th>",
            ),
            (
                "sort=date&order=asc",
                Some("k"),
                "<th><a href=\"./?token=k\">Name</a></th>\
                 <th><a href=\"?sort=size&amp;order=desc&amp;token=k\">Size</a></th>\
                 <th aria-sort=\"ascending\"><a href=\"?sort=date&amp;order=desc&amp;token=k\">\
                 Modified (UTC)</a></th>",
            ),
            (
                "order=desc",
                None,
                "<th aria-sort=\"descending\"><a href=\"./\">Name</a></th>",
            ),
        ];
        for (query, token, expected) in cases {
            let got = headers(query, token);
            assert!(got.contains(expected), "{query}: want {expected}\n{got}");
            assert_eq!(got.matches("aria-sort").count(), 1, "{got}");
        }
    }

    #[test]
    fn parent_link_only_below_the_root() {
        let parent = "<a href=\"../\">../</a>";
        assert!(!page("/", &mut [file("a", 1)]).contains(parent));
        assert!(page("/a/", &mut [file("a", 1)]).contains(parent));
        assert!(page("/a/b c/", &mut []).contains(parent));
    }

    #[test]
    fn upload_control_only_when_offered() {
        let with = |upload, token| {
            render(
                &View {
                    upload,
                    token,
                    ..view("/d/")
                },
                &mut [file("a", 1)],
            )
        };
        let no = with(Upload::No, None);
        for absent in ["type=\"file\"", "id=\"up\"", "page.js", "<script", "login"] {
            assert!(!no.contains(absent), "{absent} in\n{no}");
        }
        let yes = with(Upload::Yes, None);
        assert!(
            yes.contains("<script src=\"/.ranged/page.js\" defer></script>"),
            "{yes}"
        );
        assert!(yes.contains("<section id=\"up\" hidden><label>"), "{yes}");
        assert!(yes.contains("<input type=\"file\" multiple>"), "{yes}");
        assert!(!yes.contains("login"), "{yes}");
        let login = with(Upload::Login, None);
        assert!(
            login.contains("<a href=\"?login\">Log in to upload</a>"),
            "{login}"
        );
        assert!(!login.contains("type=\"file\""), "{login}");
        assert!(!login.contains("<script"), "{login}");
        let login = with(Upload::Login, Some("k"));
        assert!(login.contains("<a href=\"?login&amp;token=k\">"), "{login}");
    }

    #[test]
    fn token_is_carried_by_every_link_and_never_shown() {
        let token = "s3cr&t\"<";
        let mut entries = vec![
            Entry {
                etag: Some("\"1-2\"".into()),
                ..file("f", 1)
            },
            dir("d"),
        ];
        let v = View {
            upload: Upload::Yes,
            token: Some(token),
            ..view("/x/")
        };
        let html = render(&v, &mut entries);
        assert!(
            html.contains("<section id=\"up\" hidden data-token=\"s3cr&amp;t&quot;&lt;\">"),
            "{html}"
        );
        for link in [
            "<a href=\"f?token=s3cr%26t%22%3C\">f</a>",
            "<a href=\"d/?token=s3cr%26t%22%3C\">d/</a>",
            "<a href=\"../?token=s3cr%26t%22%3C\">../</a>",
            "<a class=\"v\" href=\"f?v=1-2&amp;token=s3cr%26t%22%3C\">pinned</a>",
        ] {
            assert!(html.contains(link), "missing {link}\n{html}");
        }
        // Every internal link carries it; none leaves it out.
        let hrefs = html.matches("href=\"").count() - 2; // the stylesheet and icon
        assert_eq!(
            html.matches("token=s3cr%26t%22%3C\"").count(),
            hrefs,
            "{html}"
        );
        // Shown nowhere: the raw or escaped token only appears in attributes.
        assert!(!html.contains(">s3cr"), "{html}");
        assert_eq!(html.matches("s3cr&amp;t").count(), 1, "{html}");
    }

    #[test]
    fn pinned_links_for_strong_etags_only() {
        let mut entries = vec![
            Entry {
                etag: Some("\"5e-1a2b\"".into()),
                ..file("a b", 1)
            },
            Entry {
                etag: Some("W/\"weak\"".into()),
                ..file("weak", 1)
            },
            Entry {
                etag: Some("\"\"".into()),
                ..file("empty", 1)
            },
            Entry {
                etag: Some("\"dir\"".into()),
                ..dir("d")
            },
            file("none", 1),
        ];
        let html = page("/", &mut entries);
        assert!(
            row(&html, "a b").contains("<a class=\"v\" href=\"a%20b?v=5e-1a2b\">pinned</a>"),
            "{html}"
        );
        assert_eq!(html.matches("class=\"v\"").count(), 1, "{html}");
        assert!(html.contains("<p id=\"pin\">"), "{html}");
        assert!(!page("/", &mut [file("x", 1), dir("y")]).contains("id=\"pin\""));
    }

    #[test]
    fn sizes_are_human_with_exact_bytes_on_hover() {
        let mut entries = vec![file("big", u64::MAX), file("empty", 0), dir("d")];
        let html = page("/", &mut entries);
        assert!(
            row(&html, "big").contains("<td title=\"18446744073709551615 bytes\">16.0 EiB</td>"),
            "{html}"
        );
        assert!(
            row(&html, "empty").contains("<td title=\"0 bytes\">0 B</td>"),
            "{html}"
        );
        assert!(row(&html, "d/").contains("<td>-</td><td>-</td>"), "{html}");
    }

    #[test]
    fn page_shape_and_csp() {
        let mut entries = vec![
            Entry {
                etag: Some("\"1\"".into()),
                mtime: Some(at(0)),
                ..file("a", 1)
            },
            dir("b"),
        ];
        let v = View {
            upload: Upload::Yes,
            token: Some("t"),
            ..view("/docs/")
        };
        let html = render(&v, &mut entries);
        assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"));
        assert!(
            html.contains(
                "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            )
        );
        assert!(html.ends_with("</table>\n<p id=\"pin\">A <i>pinned</i> link opens that exact version and stops working once the file changes.</p>\n</body>\n</html>\n"));
        assert_eq!(html.matches("<tr").count(), html.matches("</tr>").count());
        assert_eq!(html.matches("<tr").count(), 4); // header, parent, two entries
        // A `default-src 'self'` policy blocks inline style and script and
        // event-handler attributes: the page must need none of them.
        assert!(!html.contains("<style"), "{html}");
        assert!(!html.contains("style="), "{html}");
        assert_eq!(
            html.matches("<script").count(),
            html.matches("<script src=\"/.ranged/").count()
        );
        for attr in html.split(['<', ' ']).filter(|w| w.starts_with("on")) {
            assert!(!attr.contains('='), "event handler {attr} in\n{html}");
        }
    }

    #[test]
    fn the_page_links_the_assets_it_ships() {
        let html = render(
            &View {
                upload: Upload::Yes,
                ..view("/")
            },
            &mut [],
        );
        for &(url, kind, bytes) in ASSETS {
            assert!(url.starts_with("/.ranged/"), "{url}");
            assert!(
                html.contains(&format!("href=\"{url}\""))
                    || html.contains(&format!("src=\"{url}\"")),
                "{url} not linked"
            );
            let text = std::str::from_utf8(bytes).expect("UTF-8 asset");
            assert!(kind.ends_with("; charset=utf-8"), "{kind}");
            // An SVG's namespace is a name, never fetched.
            let text = text.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
            // Self-contained and CSP-safe: nothing fetched from elsewhere, no
            // markup built from strings (file names go in via textContent).
            for banned in [
                "http://",
                "https://",
                "//cdn",
                "innerHTML",
                "outerHTML",
                "eval(",
                "@import",
            ] {
                assert!(!text.contains(banned), "{banned} in {url}");
            }
        }
        assert_eq!(ASSETS.len(), 3);
    }

    #[test]
    fn impossible_names_are_skipped() {
        let mut entries = vec![
            dir("."),
            dir(".."),
            file("", 1),
            file("a/b", 1),
            file("nul\0", 1),
            file("ok", 1),
        ];
        let html = page("/x/", &mut entries);
        assert_eq!(order(&html), ["ok"], "{html}");
        let json = render_json(&view("/x/"), &mut entries);
        assert_eq!(json.matches("\"name\"").count(), 1, "{json}");
    }

    #[test]
    fn mtime_rendering() {
        let mut entries = vec![Entry {
            mtime: Some(at(951_827_696)), // 2000-02-29T12:34:56Z
            ..file("leap", 1)
        }];
        let html = page("/", &mut entries);
        assert!(
            row(&html, "leap").contains("<td>2000-02-29 12:34</td>"),
            "{html}"
        );
    }

    const JSON_ESCAPES: &[(&str, &str)] = &[
        ("plain.txt", "\"plain.txt\""),
        ("a\"b", r#""a\"b""#),
        ("back\\slash", r#""back\\slash""#),
        ("tab\tnl\ncr\r", r#""tab\tnl\ncr\r""#),
        ("\u{0}\u{1}\u{1f}", r#""\u0000\u0001\u001f""#),
        ("line\u{2028}para\u{2029}", r#""line\u2028para\u2029""#),
        ("<script>&'", "\"<script>&'\""),
        ("café 日本 \u{7f}", "\"café 日本 \u{7f}\""),
    ];

    #[test]
    fn json_string_escaping() {
        for &(raw, expected) in JSON_ESCAPES {
            let mut out = String::new();
            push_json_str(&mut out, raw);
            assert_eq!(out, expected, "{raw:?}");
        }
    }

    #[test]
    fn json_listing() {
        let mut entries = vec![
            Entry {
                mtime: Some(at(951_827_696)),
                etag: Some("\"5-abc\"".into()),
                digest: Some("n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=".into()),
                ..file("a \"b\"\n", 5)
            },
            Entry {
                mtime: Some(at(253_402_300_800)), // year 10000: not RFC 3339
                ..file("far", 0)
            },
            Entry {
                mtime: Some(at(-1)),
                ..dir("sub")
            },
        ];
        let json = render_json(&view("/x\\y/"), &mut entries);
        assert_eq!(
            json,
            "{\"path\":\"/x\\\\y/\",\"entries\":[\n\
             {\"name\":\"sub\",\"type\":\"dir\",\"size\":null,\"mtime\":\"1969-12-31T23:59:59Z\",\
             \"etag\":null,\"digest\":null},\n\
             {\"name\":\"a \\\"b\\\"\\n\",\"type\":\"file\",\"size\":5,\
             \"mtime\":\"2000-02-29T12:34:56Z\",\"etag\":\"\\\"5-abc\\\"\",\
             \"digest\":\"sha-256=:n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=:\"},\n\
             {\"name\":\"far\",\"type\":\"file\",\"size\":0,\"mtime\":null,\"etag\":null,\
             \"digest\":null}\n]}\n"
        );
        assert_eq!(
            render_json(&view("/"), &mut []),
            "{\"path\":\"/\",\"entries\":[]}\n"
        );
    }

    /// The target for a router or camera: a 20-entry page with its
    /// stylesheet, script and icon under 25 KiB, uncompressed.
    #[test]
    fn page_weight() {
        let mut entries: Vec<Entry> = (0..20)
            .map(|i| Entry {
                mtime: Some(at(1_767_225_600 + i * 86_399)),
                etag: Some(format!(
                    "\"{:x}-{:x}\"",
                    1_000_000 + i * 7919,
                    1_767_225_600 + i
                )),
                ..if i < 3 {
                    dir(&format!("Folder number {i}"))
                } else {
                    file(
                        &format!("IMG_20260101_{:06}.jpg", i * 1013),
                        3_000_000 + i.unsigned_abs() * 12_345,
                    )
                }
            })
            .collect();
        let html = render(
            &View {
                upload: Upload::Yes,
                ..view("/photos/2026/")
            },
            &mut entries,
        );
        let assets: usize = ASSETS.iter().map(|a| a.2.len()).sum();
        let total = html.len() + assets;
        eprintln!(
            "page weight: html {} + css {} + js {} + icon {} = {total} bytes",
            html.len(),
            ASSETS[0].2.len(),
            ASSETS[1].2.len(),
            ASSETS[2].2.len()
        );
        assert!(total < 25 * 1024, "{total} bytes");
    }

    #[test]
    fn dates_across_the_whole_range() {
        for (secs, expected) in [
            (0, "1970-01-01 00:00"),
            (59, "1970-01-01 00:00"),
            (-1, "1969-12-31 23:59"),
            (-315_619_200, "1960-01-01 00:00"),
            (-62_135_596_800, "0001-01-01 00:00"),
            (-62_135_596_801, "0000-12-31 23:59"),
            (68_256_000, "1972-03-01 00:00"),
            (951_782_400, "2000-02-29 00:00"),
            (4_107_542_400, "2100-03-01 00:00"), // 2100 is not a leap year
            (253_402_300_799, "9999-12-31 23:59"),
            (253_402_300_800, "10000-01-01 00:00"),
        ] {
            assert_eq!(fmt(at(secs)), expected, "{secs}");
        }
        // Half a second before the epoch is still the last minute of 1969.
        assert_eq!(
            fmt(UNIX_EPOCH - Duration::from_millis(500)),
            "1969-12-31 23:59"
        );
        // The extremes a Linux SystemTime can hold (±(2^63 - 1) s); Duration::MAX
        // does not fit and must simply not be reachable, not panic.
        let max = Duration::from_secs(i64::MAX.unsigned_abs());
        let latest = UNIX_EPOCH.checked_add(max).expect("i64::MAX s fits");
        let earliest = UNIX_EPOCH.checked_sub(max).expect("-i64::MAX s fits");
        assert_eq!(fmt(latest), "292277026596-12-04 15:30");
        assert_eq!(fmt(earliest), "-292277022657-01-27 08:29");
        assert_eq!(UNIX_EPOCH.checked_add(Duration::MAX), None);
    }
}
