//! The HTML listing of a directory: escaped names, percent-encoded links, sizes,
//! dates, sorted, with a parent link. Pure.
//!
//! The page is served at the directory's URL with its trailing `/` (the caller
//! redirects `/dir` → `/dir/` first), so every link is relative: `name` for a
//! file, `name/` for a directory, `../` for the parent. Names are
//! percent-encoded in links ([`crate::fs_path::encode_path`]) and HTML-escaped
//! in text, because a file name is attacker-controlled text (anyone who can
//! upload or unpack a file picks it).

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::fs_path::encode_into;

pub struct Entry {
    pub name: String,
    pub is_dir: bool,
    pub size: u64,
    pub mtime: Option<SystemTime>,
}

/// Renders the listing of the directory at `decoded_path` (as returned by
/// [`crate::fs_path::decode`], e.g. `/a b/`) as a small HTML5 page.
///
/// `entries` is sorted in place: directories first, then by name in byte
/// order (stable, locale-free, the same on every host). Entries named `.`,
/// `..`, or containing `/` or NUL cannot come from `read_dir` and are skipped
/// rather than turned into misleading links. Sizes are in bytes (`-` for a
/// directory); times are `YYYY-MM-DD HH:MM` UTC (`-` when unknown), valid for
/// any `SystemTime`, including before 1970 and after 9999.
///
/// ```
/// use ranged::listing::{render, Entry};
/// let mut entries = vec![Entry { name: "a b.txt".into(), is_dir: false, size: 3, mtime: None }];
/// let html = render("/docs/", &mut entries);
/// assert!(html.contains(r#"<a href="a%20b.txt">a b.txt</a>"#));
/// assert!(html.contains(r#"<a href="../">../</a>"#));
/// ```
pub fn render(decoded_path: &str, entries: &mut [Entry]) -> String {
    entries.sort_by(|a, b| {
        b.is_dir
            .cmp(&a.is_dir)
            .then_with(|| a.name.as_bytes().cmp(b.name.as_bytes()))
    });

    let mut html = String::with_capacity(600 + 160 * entries.len());
    html.push_str("<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>Index of ");
    push_escaped(&mut html, decoded_path);
    html.push_str(
        "</title>\n\
         <style>body{font-family:monospace}td{padding:0 2em 0 0}td.n{text-align:right}</style>\n\
         </head>\n<body>\n<h1>Index of ",
    );
    push_escaped(&mut html, decoded_path);
    html.push_str(
        "</h1>\n<table>\n\
         <tr><th>Name</th><th>Size</th><th>Modified (UTC)</th></tr>\n",
    );
    if !matches!(decoded_path, "/" | "") {
        html.push_str(
            "<tr><td><a href=\"../\">../</a></td><td class=\"n\">-</td><td>-</td></tr>\n",
        );
    }
    for entry in entries.iter() {
        if matches!(entry.name.as_str(), "" | "." | "..") || entry.name.contains(['/', '\0']) {
            continue;
        }
        let slash = if entry.is_dir { "/" } else { "" };
        html.push_str("<tr><td><a href=\"");
        // Only unreserved characters, `/` and `%XX` come out: nothing to
        // HTML-escape, and `a:b` cannot turn into a scheme (RFC 3986 §4.2).
        encode_into(&mut html, &entry.name);
        html.push_str(slash);
        html.push_str("\">");
        push_escaped(&mut html, &entry.name);
        html.push_str(slash);
        html.push_str("</a></td><td class=\"n\">");
        if entry.is_dir {
            html.push('-');
        } else {
            let _ = write!(html, "{}", entry.size);
        }
        html.push_str("</td><td>");
        match entry.mtime {
            Some(t) => push_utc_minute(&mut html, t),
            None => html.push('-'),
        }
        html.push_str("</td></tr>\n");
    }
    html.push_str("</table>\n</body>\n</html>\n");
    html
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
    // Seconds since the epoch, floored (so 0.5 s before 1970 is 23:59 on
    // 1969-12-31). i128: a Linux SystemTime spans ±2^63 s, beyond i64 once
    // negated and floored.
    let secs: i128 = match t.duration_since(UNIX_EPOCH) {
        Ok(after) => i128::from(after.as_secs()),
        Err(before) => {
            let d = before.duration();
            -i128::from(d.as_secs()) - i128::from(d.subsec_nanos() > 0)
        }
    };
    let days = secs.div_euclid(86_400);
    let minute_of_day = secs.rem_euclid(86_400) / 60;
    let (year, month, day) = civil_from_days(days);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        minute_of_day / 60,
        minute_of_day % 60
    );
}

/// Proleptic Gregorian (year, month, day) of a day count since 1970-01-01,
/// after Howard Hinnant's `civil_from_days`
/// (<https://howardhinnant.github.io/date_algorithms.html>). Exact for any
/// input whose year fits i128, which every SystemTime does.
fn civil_from_days(days: i128) -> (i128, i128, i128) {
    let z = days + 719_468; // shift the epoch to 0000-03-01
    let era = z.div_euclid(146_097); // 400-year eras
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365], from March 1
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i128::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn file(name: &str, size: u64) -> Entry {
        Entry {
            name: name.to_string(),
            is_dir: false,
            size,
            mtime: None,
        }
    }

    fn dir(name: &str) -> Entry {
        Entry {
            name: name.to_string(),
            is_dir: true,
            size: 4096,
            mtime: None,
        }
    }

    fn at(secs: i64) -> SystemTime {
        if secs >= 0 {
            UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
        } else {
            UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
        }
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
        let start = html[..at].rfind("<tr>").expect("row start");
        let end = at + html[at..].find("</tr>").expect("row end");
        &html[start..end]
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
        let html = render("/", &mut entries);
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
    fn title_and_heading_are_escaped() {
        let html = render("/<b>&'\"/", &mut []);
        assert!(
            html.contains("<title>Index of /&lt;b&gt;&amp;&#39;&quot;/</title>"),
            "{html}"
        );
        assert!(
            html.contains("<h1>Index of /&lt;b&gt;&amp;&#39;&quot;/</h1>"),
            "{html}"
        );
        assert!(!html.contains("<b>"), "{html}");
    }

    #[test]
    fn page_shape() {
        let html = render("/docs/", &mut [file("a", 1)]);
        assert!(html.starts_with("<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n"));
        assert!(html.ends_with("</table>\n</body>\n</html>\n"));
        assert_eq!(html.matches("<tr>").count(), html.matches("</tr>").count());
        assert_eq!(html.matches("<tr>").count(), 3); // header, parent, one entry
    }

    #[test]
    fn directories_first_then_byte_order() {
        let mut entries = vec![
            file("b", 1),
            dir("zdir"),
            file("B", 1),
            file("a", 1),
            dir("Adir"),
            file("é", 1),
            file("_", 1),
            file("10", 1),
            file("9", 1),
        ];
        let html = render("/", &mut entries);
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["Adir", "zdir", "10", "9", "B", "_", "a", "b", "é"]);
        let positions: Vec<usize> = ["Adir/", "zdir/", "10", "9", "B", "_", "a", "b", "é"]
            .iter()
            .map(|t| html.find(&format!("\">{t}</a>")).expect("entry rendered"))
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{html}");
    }

    #[test]
    fn parent_link_only_below_the_root() {
        let parent = "<a href=\"../\">../</a>";
        assert!(!render("/", &mut [file("a", 1)]).contains(parent));
        assert!(render("/a/", &mut [file("a", 1)]).contains(parent));
        assert!(render("/a/b c/", &mut []).contains(parent));
    }

    #[test]
    fn sizes_and_directory_dashes() {
        let mut entries = vec![file("big", u64::MAX), file("empty", 0), dir("d")];
        let html = render("/", &mut entries);
        assert!(
            row(&html, "big").contains(">18446744073709551615<"),
            "{html}"
        );
        assert!(
            row(&html, "empty").contains("<td class=\"n\">0</td>"),
            "{html}"
        );
        assert!(
            row(&html, "d/").contains("<td class=\"n\">-</td><td>-</td>"),
            "{html}"
        );
    }

    #[test]
    fn impossible_names_are_skipped() {
        let mut entries = vec![
            dir("."),
            dir(".."),
            file("", 1),
            file("a/b", 1),
            file("ok", 1),
        ];
        let html = render("/x/", &mut entries);
        assert_eq!(html.matches("<a href=").count(), 2, "{html}"); // ../ and ok
        assert!(html.contains("<a href=\"ok\">ok</a>"));
    }

    #[test]
    fn mtime_rendering() {
        let mut entries = vec![Entry {
            mtime: Some(at(951_827_696)), // 2000-02-29T12:34:56Z
            ..file("leap", 1)
        }];
        let html = render("/", &mut entries);
        assert!(
            row(&html, "leap").contains("<td>2000-02-29 12:34</td>"),
            "{html}"
        );
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

    #[test]
    fn civil_from_days_matches_a_day_by_day_walk() {
        // Walk 1600-03-01 … ~2400 one day at a time against an independent count.
        let leap = |y: i128| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let month_len = |y: i128, m: i128| match m {
            2 if leap(y) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let (mut y, mut m, mut d) = (1600, 3, 1);
        let start = -135_080; // days from 1970-01-01 back to 1600-03-01
        for days in start..start + 292_194 {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            d += 1;
            if d > month_len(y, m) {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }
}
