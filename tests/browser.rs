//! The folder page in a real browser (issue "A page people use"): Debian's
//! Chromium, headless, driven by playwright-core (`tests/browser/page.mjs`)
//! against the real ranged binary on 127.0.0.1.
//!
//! - The listing: breadcrumb, human sizes, folders first, natural order,
//!   sorting by links with JavaScript off, links that download the exact
//!   bytes, no sideways scroll on a phone; screenshots for people to look at
//!   in `target/browser/`.
//! - Uploads through the file picker: a 50 MB file with visible progress;
//!   the same with the server killed (SIGKILL) and restarted on the same
//!   port midway, resumed by the page on its own; the same with the page
//!   reloaded midway, resumed from the server's offset once the file is
//!   chosen again. Every upload ends with the exact bytes in the folder.
//! - The controls, on a page opened through a capability link: several
//!   files at once, pause, cancel, a restarted browser, an upload the server
//!   forgot, a link that expires while its page is open.
//! - No upload control and refused forged uploads without write access.
//! - No console error, no uncaught exception and no Content-Security-Policy
//!   violation on any page.
//!
//! The scenarios print JSON; the assertions are here. Uploads are slowed in
//! the browser (DevTools network emulation) so that a 50 MB upload over
//! loopback lasts a few seconds and can be watched and interrupted. A
//! missing Chromium, Node or `make tools` fails the test, naming the fix.
//! The scenarios run one at a time (the machine may have two cores).

mod support;

#[path = "browser/json.rs"]
mod json;

use json::{Json, quote};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::{Logged, TempDir, access_lines, pattern};

const CHROMIUM: &str = "/usr/bin/chromium";
/// The size the issue asks for: an upload that cannot fit one small buffer.
const UPLOAD: usize = 50_000_000;
/// What the browser may send per second during uploads (bytes): 50 MB in
/// about five seconds.
const RATE: u64 = 10_000_000;
/// The longest one scenario may run before its Node process is killed.
const SCENARIO_LIMIT: Duration = Duration::from_secs(90);
/// How long a restart may retry while the old port is still taken.
const REBIND_LIMIT: Duration = Duration::from_secs(5);

/// One browser scenario at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The file uploaded across a browser restart.
const RESTART_LEN: usize = 24_000_000;

// ---------------------------------------------------------------- tools

/// Chromium, Node and the pinned playwright-core, or a failure naming what to
/// install.
fn require_tools() -> PathBuf {
    let runs = |program: &str| {
        Command::new(program)
            .arg("--version")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    assert!(
        runs(CHROMIUM),
        "{CHROMIUM} cannot be run: install the Debian package `chromium` \
         (apt-get install chromium; .ci/run does this)"
    );
    assert!(
        runs("node"),
        "`node` cannot be run: install the Debian package `nodejs` (20.19 or later)"
    );
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let playwright = scripts.join("../node_modules/playwright-core/package.json");
    assert!(
        playwright.is_file(),
        "{} is missing: run `make tools` (installs the pinned playwright-core \
         into tests/node_modules)",
        playwright.display()
    );
    scripts
}

/// Where screenshots go for people to look at: `target/browser/`.
fn shots_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.parent().unwrap_or(tmp).join("browser");
    std::fs::create_dir_all(&dir).expect("create target/browser");
    dir
}

/// coreutils' `sha256sum`: the test binary is unoptimised, and hashing
/// 50 MB in it takes over a second.
fn sha256_file(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("run sha256sum (coreutils)");
    assert!(out.status.success(), "sha256sum {}", path.display());
    let text = String::from_utf8_lossy(&out.stdout);
    text.split(' ').next().unwrap_or("").to_owned()
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

// ---------------------------------------------------------------- ranged

/// The real binary with a listen address of our choosing (a restart must
/// get the port of the first run), its log captured.
struct Ranged {
    proc: Logged,
    port: u16,
}

impl Ranged {
    /// Starts ranged on 127.0.0.1:`port` (0: any) serving `root` with
    /// `args`; `Err` with its log if it exits or says nothing for 10 s.
    fn try_start(root: &Path, port: u16, args: &[&str]) -> Result<Ranged, String> {
        let proc = Logged::spawn(
            Command::new(env!("CARGO_BIN_EXE_ranged"))
                .arg("--listen")
                .arg(format!("127.0.0.1:{port}"))
                .arg("--log-level")
                .arg("debug")
                .args(args)
                .arg(root),
        );
        let port = proc.try_listening(1)?[0].port();
        Ok(Ranged { proc, port })
    }

    fn start(root: &Path, args: &[&str]) -> Ranged {
        Ranged::try_start(root, 0, args)
            .unwrap_or_else(|log| panic!("ranged did not start:\n{log}"))
    }

    /// Starts on `port` again, retrying while it is still taken (bounded).
    fn restart_on(root: &Path, port: u16, args: &[&str]) -> (Ranged, u32) {
        let start = Instant::now();
        for attempt in 1.. {
            match Ranged::try_start(root, port, args) {
                Ok(r) => return (r, attempt),
                Err(log) if log.contains("in use") && start.elapsed() < REBIND_LIMIT => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(log) => panic!("ranged did not start again on port {port}:\n{log}"),
            }
        }
        unreachable!()
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn log(&self) -> String {
        self.proc.log()
    }

    /// SIGKILL: no chance to finish a write or say goodbye.
    fn kill(&mut self) {
        self.proc.kill();
    }
}

// ---------------------------------------------------------------- node

/// One run of `page.mjs SCENARIO ARGS`: JSON lines out, commands in, killed
/// by its PID when dropped.
struct Scenario {
    name: String,
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    stderr: PathBuf,
    started: Instant,
}

impl Scenario {
    fn run(name: &str, args: &str, work: &Path) -> Scenario {
        let scripts = require_tools();
        let stderr = work.join(format!("{name}.stderr"));
        let mut child = Command::new("node")
            .arg(scripts.join("page.mjs"))
            .arg(name)
            .arg(args)
            .current_dir(&scripts)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("spawn node");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Scenario {
            name: name.to_owned(),
            child,
            stdin,
            lines,
            stderr,
            started: Instant::now(),
        }
    }

    /// The next JSON line; a failure (with Node's stderr) on `{"error"}`,
    /// on exit, or past the scenario's time limit.
    fn next(&mut self) -> Json {
        let left = SCENARIO_LIMIT.saturating_sub(self.started.elapsed());
        let line = match self.lines.recv_timeout(left) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                self.fail(&format!("no answer within {SCENARIO_LIMIT:?}"))
            }
            Err(RecvTimeoutError::Disconnected) => self.fail("exited without a result"),
        };
        let v = Json::parse(&line).unwrap_or_else(|e| self.fail(&format!("{e}: {line}")));
        if v.has("error") {
            self.fail(v.get("error").str());
        }
        v
    }

    fn event(&mut self, name: &str) -> Json {
        let v = self.next();
        assert_eq!(
            v.get("event"),
            &Json::Str(name.into()),
            "{}: {v}",
            self.name
        );
        v
    }

    fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("write to the scenario");
    }

    fn result(mut self) -> Json {
        let v = self.next();
        assert!(v.has("result"), "{}: {v}", self.name);
        let _ = self.child.wait();
        v.get("result").clone()
    }

    fn fail(&mut self, why: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let err = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        panic!("browser scenario {}: {why}\n--- stderr\n{err}", self.name)
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `{"k": v, …}` from already-encoded values.
fn object(members: &[(&str, String)]) -> String {
    let inner: Vec<String> = members
        .iter()
        .map(|(k, v)| format!("{}:{v}", quote(k)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// No console error or warning (but those `expected`: each line must contain
/// one of them), no uncaught exception, no CSP violation, and every folder
/// page carried the policy.
fn assert_healthy(result: &Json, expected: &[&str]) {
    for h in result.get("health").arr() {
        for line in h.get("console").strs() {
            assert!(
                expected.iter().any(|e| line.contains(e)),
                "console: {line}\n{h}"
            );
        }
        assert!(h.get("pageErrors").arr().is_empty(), "exceptions: {h}");
        assert!(h.get("csp").arr().is_empty(), "CSP violations: {h}");
        for doc in h.get("documents").arr() {
            // Folder pages; a download is a "document" too.
            let url = doc.get("url").str();
            let path = url.split('?').next().unwrap_or(url);
            if doc.get("status").u64() == 200 && path.ends_with('/') {
                assert!(
                    doc.get("csp").str().contains("default-src 'none'"),
                    "a page without its policy: {doc}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------- fixture

/// One entry of the realistic folder: path, size, modification time (UTC
/// `YYYY-MM-DD HH:MM`), and whether its bytes are real (`false`: sparse, too
/// big to read in a test).
struct Item {
    path: &'static str,
    size: u64,
    mtime: &'static str,
    real: bool,
}

const fn file(path: &'static str, size: u64, mtime: &'static str, real: bool) -> Item {
    Item {
        path,
        size,
        mtime,
        real,
    }
}

/// Folders end in `/`; they come after their contents, so that setting
/// their time is the last change to them.
const FOLDER: &[Item] = &[
    file(
        "Holidays 2025/Beach/DSC_0001.jpg",
        1_800_000,
        "2025-08-12 10:01",
        true,
    ),
    file(
        "Holidays 2025/Beach/DSC_0002.jpg",
        1_700_000,
        "2025-08-12 10:02",
        true,
    ),
    file("Holidays 2025/Beach/", 0, "2025-08-12 10:03", true),
    file("Holidays 2025/", 0, "2025-08-30 18:05", true),
    file("Camera/", 0, "2026-01-14 09:40", true),
    file("ISO images/", 0, "2025-11-20 12:00", true),
    file("Videos/", 0, "2026-01-02 18:20", true),
    file(
        "debian-13.1.0-amd64-netinst.iso",
        4_700_000_000,
        "2025-11-15 10:31",
        false,
    ),
    file("file2.txt", 120, "2024-03-01 08:00", true),
    file("file10.txt", 1536, "2024-03-02 08:00", true),
    file("firmware-v2.3.1.bin", 1 << 20, "2025-12-24 16:45", true),
    file(
        "IMG_20260114_093012.jpg",
        2_345_678,
        "2026-01-14 09:30",
        true,
    ),
    file(
        "IMG_20260114_093518.jpg",
        3_456_789,
        "2026-01-14 09:35",
        true,
    ),
    file("notes & <ideas> 'v2'.txt", 700, "2025-06-07 21:10", true),
    file("Übersicht résumé.pdf", 98_765, "2025-02-11 14:22", true),
    file(
        "VID_20260102_181544.mp4",
        1_234_567_890,
        "2026-01-02 18:15",
        false,
    ),
];

/// Seconds since the epoch of a UTC `YYYY-MM-DD HH:MM` (days from civil,
/// Howard Hinnant's algorithm).
fn epoch(date: &str) -> u64 {
    let n: Vec<i64> = date
        .split(['-', ' ', ':'])
        .map(|p| p.parse().expect("number"))
        .collect();
    let (y, m, d) = (n[0] - i64::from(n[1] <= 2), n[1], n[2]);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + n[3] * 3600 + n[4] * 60).expect("after 1970")
}

/// Builds the folder under `root`; the bytes of every real file, by path.
fn build_folder(root: &Path) -> Vec<(&'static str, Vec<u8>)> {
    let mut contents = Vec::new();
    for (i, item) in FOLDER.iter().enumerate() {
        let path = root.join(item.path);
        if item.path.ends_with('/') {
            std::fs::create_dir_all(&path).expect("folder");
        } else {
            std::fs::create_dir_all(path.parent().expect("parent")).expect("folder");
            if item.real {
                let bytes = pattern(item.size as usize, i as u64 + 1);
                std::fs::write(&path, &bytes).expect("write");
                contents.push((item.path, bytes));
            } else {
                let f = File::create(&path).expect("file");
                f.set_len(item.size).expect("sparse file");
            }
        }
        let t = UNIX_EPOCH + Duration::from_secs(epoch(item.mtime));
        File::open(&path)
            .and_then(|f| f.set_modified(t))
            .expect("set mtime");
    }
    contents
}

/// The source of an upload: `UPLOAD` bytes in the test's own folder.
fn upload_source(work: &Path, name: &str) -> (PathBuf, String) {
    let bytes = pattern(UPLOAD, 2026);
    let path = work.join(name);
    std::fs::write(&path, bytes).expect("write the upload source");
    let sum = sha256_file(&path);
    (path, sum)
}

// ---------------------------------------------------------------- tests

/// The listing as people see it: rows, sizes, dates, order, sorting without
/// JavaScript, the breadcrumb, downloads byte for byte, a phone's width.
#[test]
fn listing_renders_sorts_and_downloads_exact_bytes() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let root = TempDir::new();
    let work = TempDir::new();
    let contents = build_folder(root.path());
    let server = Ranged::start(root.path(), &["--upload", "--anonymous-upload"]);
    let fetch = [
        "file2.txt",
        "file10.txt",
        "IMG_20260114_093012.jpg",
        "notes & <ideas> 'v2'.txt",
        "Übersicht résumé.pdf",
    ];
    let args = object(&[
        ("url", quote(&server.url("/"))),
        ("shots", quote(&shots_dir().to_string_lossy())),
        (
            "fetch",
            format!(
                "[{}]",
                fetch.iter().map(|n| quote(n)).collect::<Vec<_>>().join(",")
            ),
        ),
        ("click", quote("firmware-v2.3.1.bin")),
        ("nested", quote("/Holidays%202025/Beach/")),
        ("up", quote("Holidays 2025")),
    ]);
    let t = Instant::now();
    let r = Scenario::run("listing", &args, work.path()).result();
    eprintln!("listing scenario: {:?}", t.elapsed());

    // Folders first, then files, each in natural order (file2 before
    // file10), case- and accent-aware; sizes in IEC units with the exact
    // count on hover; times in UTC.
    let expected = [
        ("Camera/", "-", "", "2026-01-14 09:40"),
        ("Holidays 2025/", "-", "", "2025-08-30 18:05"),
        ("ISO images/", "-", "", "2025-11-20 12:00"),
        ("Videos/", "-", "", "2026-01-02 18:20"),
        (
            "debian-13.1.0-amd64-netinst.iso",
            "4.4 GiB",
            "4700000000 bytes",
            "2025-11-15 10:31",
        ),
        ("file2.txt", "120 B", "120 bytes", "2024-03-01 08:00"),
        ("file10.txt", "1.5 KiB", "1536 bytes", "2024-03-02 08:00"),
        (
            "firmware-v2.3.1.bin",
            "1.0 MiB",
            "1048576 bytes",
            "2025-12-24 16:45",
        ),
        (
            "IMG_20260114_093012.jpg",
            "2.2 MiB",
            "2345678 bytes",
            "2026-01-14 09:30",
        ),
        (
            "IMG_20260114_093518.jpg",
            "3.3 MiB",
            "3456789 bytes",
            "2026-01-14 09:35",
        ),
        (
            "notes & <ideas> 'v2'.txt",
            "700 B",
            "700 bytes",
            "2025-06-07 21:10",
        ),
        (
            "VID_20260102_181544.mp4",
            "1.1 GiB",
            "1234567890 bytes",
            "2026-01-02 18:15",
        ),
        (
            "Übersicht résumé.pdf",
            "96.5 KiB",
            "98765 bytes",
            "2025-02-11 14:22",
        ),
    ];
    let rows = r.get("rows").arr();
    let shown: Vec<(&str, &str, &str, &str)> = rows
        .iter()
        .map(|row| {
            let bytes = row.get("bytes");
            (
                row.get("name").str(),
                row.get("size").str(),
                if bytes.is_null() { "" } else { bytes.str() },
                row.get("date").str(),
            )
        })
        .collect();
    assert_eq!(shown, expected, "the listing of /");
    for row in rows {
        let folder = row.get("name").str().ends_with('/');
        assert_eq!(row.get("folder").bool(), folder, "{row}");
        // Files get a version-pinned link; folders none.
        assert_eq!(row.get("pinned").is_null(), folder, "{row}");
    }
    assert_eq!(r.get("title").str(), "Index of /");
    let crumbs = r.get("crumbs").arr();
    assert_eq!(crumbs.len(), 1, "{crumbs:?}");
    assert_eq!(crumbs[0].get("href").str(), "/");
    assert_eq!(crumbs[0].get("current").str(), "page");

    // Every fetched link, and its pinned twin, gives the exact bytes.
    let downloads = r.get("downloads").arr();
    assert_eq!(downloads.len(), fetch.len() * 2, "{downloads:?}");
    for d in downloads {
        let name = d.get("name").str();
        let (_, bytes) = contents
            .iter()
            .find(|(p, _)| *p == name)
            .expect("a fixture file");
        assert_eq!(d.get("status").u64(), 200, "{d}");
        assert_eq!(d.get("sha256").str(), sha256(bytes), "{d}");
    }
    // The pinned link names the version: `name?v=<etag>`.
    assert!(
        downloads.iter().any(|d| d
            .get("href")
            .str()
            .starts_with("notes%20%26%20%3Cideas%3E%20%27v2%27.txt?v=")),
        "{downloads:?}"
    );
    let clicked = r.get("clicked");
    let (_, firmware) = contents
        .iter()
        .find(|(p, _)| *p == "firmware-v2.3.1.bin")
        .expect("firmware");
    assert_eq!(clicked.get("suggested").str(), "firmware-v2.3.1.bin");
    assert_eq!(clicked.get("sha256").str(), sha256(firmware), "{clicked}");

    // The breadcrumb: one link per folder, the last marked current; a click
    // on one leads there.
    let nested = r.get("nested");
    let crumbs: Vec<(&str, &str, bool)> = nested
        .get("crumbs")
        .arr()
        .iter()
        .map(|c| {
            (
                c.get("text").str(),
                c.get("href").str(),
                !c.get("current").is_null(),
            )
        })
        .collect();
    assert_eq!(
        crumbs,
        [
            ("/", "/", false),
            ("Holidays 2025", "/Holidays%202025/", false),
            ("Beach", "/Holidays%202025/Beach/", true),
        ]
    );
    let names: Vec<&str> = nested
        .get("rows")
        .arr()
        .iter()
        .map(|r| r.get("name").str())
        .collect();
    assert_eq!(names, ["../", "DSC_0001.jpg", "DSC_0002.jpg"]);
    let after = nested.get("after");
    assert_eq!(after.get("path").str(), "/Holidays%202025/");
    assert_eq!(after.get("crumbs").arr().len(), 2, "{after}");

    // Sorting by the column headers with JavaScript off.
    let folders = ["Camera/", "Holidays 2025/", "ISO images/", "Videos/"];
    let by_size_desc = [
        "debian-13.1.0-amd64-netinst.iso",
        "VID_20260102_181544.mp4",
        "IMG_20260114_093518.jpg",
        "IMG_20260114_093012.jpg",
        "firmware-v2.3.1.bin",
        "Übersicht résumé.pdf",
        "file10.txt",
        "notes & <ideas> 'v2'.txt",
        "file2.txt",
    ];
    let by_date_desc = [
        "Camera/",
        "Videos/",
        "ISO images/",
        "Holidays 2025/",
        "IMG_20260114_093518.jpg",
        "IMG_20260114_093012.jpg",
        "VID_20260102_181544.mp4",
        "firmware-v2.3.1.bin",
        "debian-13.1.0-amd64-netinst.iso",
        "notes & <ideas> 'v2'.txt",
        "Übersicht résumé.pdf",
        "file10.txt",
        "file2.txt",
    ];
    let by_name: Vec<&str> = expected.iter().map(|e| e.0).collect();
    let mut by_name_desc: Vec<&str> = folders.iter().rev().copied().collect();
    by_name_desc.extend(by_name[4..].iter().rev());
    let then = |files: &[&'static str]| -> Vec<&'static str> {
        folders.iter().chain(files).copied().collect()
    };
    let by_size_asc: Vec<&str> = by_size_desc.iter().rev().copied().collect();
    let sorts = [
        (
            "Size",
            "?sort=size&order=desc",
            "Size",
            "descending",
            then(&by_size_desc),
        ),
        (
            "Size",
            "?sort=size&order=asc",
            "Size",
            "ascending",
            then(&by_size_asc),
        ),
        (
            "Modified (UTC)",
            "?sort=date&order=desc",
            "Modified (UTC)",
            "descending",
            by_date_desc.to_vec(),
        ),
        ("Name", "", "Name", "ascending", by_name.clone()),
        (
            "Name",
            "?sort=name&order=desc",
            "Name",
            "descending",
            by_name_desc,
        ),
    ];
    let seen = r.get("sorts").arr();
    assert_eq!(seen.len(), sorts.len());
    for (s, (clicked, search, column, order, names)) in seen.iter().zip(sorts) {
        assert_eq!(s.get("clicked").str(), clicked);
        assert_eq!(s.get("search").str(), search, "{s}");
        assert_eq!(s.get("column").str(), column, "{s}");
        assert_eq!(s.get("order").str(), order, "{s}");
        assert_eq!(s.get("names").strs(), names, "after a click on {clicked}");
    }
    assert_eq!(r.get("scripts").u64(), 1, "the page links its script");

    // A phone: every row, nothing wider than the screen.
    let phone = r.get("phone");
    assert_eq!(phone.get("rows").u64(), expected.len() as u64);
    let o = phone.get("overflow");
    assert!(
        o.get("scrollWidth").u64() <= o.get("innerWidth").u64(),
        "the page scrolls sideways on a 390 px phone: {o}"
    );

    // The policy is enforced (an inline style injected by the test is
    // reported), and the page itself never trips it.
    let probe = r.get("cspProbe").strs();
    assert!(
        probe.len() == 1 && probe[0].starts_with("style-src"),
        "{probe:?}"
    );
    let said = r.get("cspProbeConsole").strs();
    assert!(
        said.len() == 1 && said[0].contains("Content Security Policy"),
        "{said:?}"
    );
    assert_healthy(&r, &[]);
    let favicon = access_lines(&server.log())
        .into_iter()
        .filter(|l| l.target == "/favicon.ico")
        .count();
    assert_eq!(favicon, 0, "the page's own icon spares a /favicon.ico 404");
    eprintln!(
        "screenshots: {0}/listing-desktop.png {0}/listing-phone.png",
        shots_dir().display()
    );
}

/// The progress bar's values over time: it must have moved at least twice
/// on the way up, never backwards.
fn assert_progress_moved(seen: &Json, from: u64) {
    let values: Vec<u64> = seen.get("values").arr().iter().map(Json::u64).collect();
    let moving: Vec<u64> = values
        .iter()
        .copied()
        .filter(|v| *v > from && *v < 100)
        .collect();
    assert!(moving.len() >= 2, "progress seen: {values:?}");
    assert!(
        moving.windows(2).all(|w| w[0] < w[1]),
        "progress went back: {values:?}"
    );
    assert_eq!(values.last(), Some(&100), "{values:?}");
}

/// One tus request as the browser sent it and saw its answer.
#[derive(Debug)]
struct Tus {
    method: String,
    /// 0: no answer (a network error, an abort).
    status: u64,
    /// `Upload-Offset` sent.
    offset: Option<u64>,
    /// `Content-Length` sent.
    length: Option<u64>,
    /// `Upload-Offset` answered.
    answered: Option<u64>,
    /// When it ended (ms since the epoch, by Node's clock).
    t: u64,
}

/// The tus requests of a scenario, in the order they ended.
fn tus_log(result: &Json) -> Vec<Tus> {
    result
        .get("tus")
        .arr()
        .iter()
        .map(|e| Tus {
            method: e.get("method").str().to_owned(),
            status: e.get("status").u64(),
            offset: e.get("reqOffset").opt_u64(),
            length: e.get("length").opt_u64(),
            answered: e.get("respOffset").opt_u64(),
            t: e.get("t").u64(),
        })
        .collect()
}

/// A 50 MB file through the file picker: progress on the way, the exact
/// bytes in the folder at the end, the new file in the table.
#[test]
fn upload_through_the_file_picker() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let root = TempDir::new();
    let work = TempDir::new();
    build_folder(root.path());
    let name = "holiday-clip.mp4";
    let (source, sum) = upload_source(work.path(), name);
    let server = Ranged::start(root.path(), &["--upload", "--anonymous-upload"]);
    let args = object(&[
        ("url", quote(&server.url("/"))),
        ("shots", quote(&shots_dir().to_string_lossy())),
        ("file", quote(&source.to_string_lossy())),
        ("name", quote(name)),
        ("rate", RATE.to_string()),
    ]);
    let r = Scenario::run("upload", &args, work.path()).result();
    eprintln!(
        "upload scenario: {} ms, upload {} ms",
        r.get("wallMs").u64(),
        r.get("ms").u64()
    );
    assert_eq!(sha256_file(&root.path().join(name)), sum, "published bytes");
    assert_progress_moved(r.get("seen"), 0);
    // While it runs the page says how fast and how long.
    assert!(
        r.get("seen")
            .get("texts")
            .strs()
            .iter()
            .any(|t| t.contains("/s · ") && t.ends_with(" left")),
        "{}",
        r.get("seen")
    );
    let log = tus_log(&r);
    assert_eq!(log[0].method, "POST", "{log:?}");
    assert_eq!(log[0].status, 201, "{log:?}");
    let patches: Vec<_> = log.iter().filter(|e| e.method == "PATCH").collect();
    assert!(
        patches
            .iter()
            .all(|p| p.status == 204 && p.length <= Some(64 << 20)),
        "{log:?}"
    );
    assert_eq!(
        patches.last().and_then(|p| p.answered),
        Some(UPLOAD as u64),
        "{log:?}"
    );
    let row = r.get("row");
    assert_eq!(row.get("size").str(), "47.7 MiB", "{row}");
    assert_eq!(row.get("bytes").str(), "50000000 bytes", "{row}");
    assert!(
        r.get("stored").arr().is_empty(),
        "a finished upload stays in localStorage"
    );
    assert_healthy(&r, &[]);
    eprintln!("screenshot: {}/upload-desktop.png", shots_dir().display());
}

/// The upload's requests after `t` (ms): the first successful HEAD gives
/// the offset the server kept, and from there only the missing bytes go.
/// Returns that offset.
fn assert_resumed_after(result: &Json, t: u64) -> u64 {
    let log = tus_log(result);
    let after: Vec<_> = log.iter().filter(|e| e.t >= t).collect();
    assert!(
        after.iter().all(|e| e.method != "POST"),
        "a new upload was created instead of resuming: {log:?}"
    );
    let head = after
        .iter()
        .position(|e| e.method == "HEAD" && (e.status == 200 || e.status == 204))
        .unwrap_or_else(|| panic!("no HEAD asked where to resume: {log:?}"));
    let kept = after[head].answered.expect("HEAD answers Upload-Offset");
    assert!(
        kept > 0 && kept < UPLOAD as u64,
        "the server kept {kept} bytes: {log:?}"
    );
    let patches: Vec<_> = after[head..]
        .iter()
        .filter(|e| e.method == "PATCH")
        .collect();
    assert_eq!(patches[0].offset, Some(kept), "first PATCH: {log:?}");
    let sent: u64 = patches
        .iter()
        .filter(|p| p.status == 204)
        .map(|p| p.length.unwrap_or(0))
        .sum();
    assert_eq!(sent, UPLOAD as u64 - kept, "bytes sent again: {log:?}");
    assert_eq!(patches.last().and_then(|p| p.answered), Some(UPLOAD as u64));
    kept
}

/// ranged killed (SIGKILL) mid-upload and started again on the same port:
/// the page notices, retries with back-off, asks where to continue and
/// completes the exact file without being told.
#[test]
fn upload_survives_a_killed_server() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let root = TempDir::new();
    let work = TempDir::new();
    let name = "camera dump.mov";
    let (source, sum) = upload_source(work.path(), name);
    let flags = ["--upload", "--anonymous-upload"];
    let mut first = Ranged::start(root.path(), &flags);
    let port = first.port;
    let args = object(&[
        ("url", quote(&first.url("/"))),
        ("shots", quote(&shots_dir().to_string_lossy())),
        ("file", quote(&source.to_string_lossy())),
        ("name", quote(name)),
        ("rate", RATE.to_string()),
        ("at", "50".into()),
    ]);
    let mut s = Scenario::run("kill", &args, work.path());
    let midway = s.event("midway");
    first.kill();
    s.send("killed");
    // Down long enough for the page's first retry to fail too.
    std::thread::sleep(Duration::from_millis(2500));
    let down = Instant::now();
    let (second, attempts) = Ranged::restart_on(root.path(), port, &flags);
    eprintln!(
        "killed at {}%, restarted on port {port} after {attempts} attempt(s) in {:?}",
        midway.get("progress"),
        down.elapsed()
    );
    s.send("restarted");
    let r = s.result();
    eprintln!("kill scenario: {} ms", r.get("wallMs").u64());
    assert_eq!(sha256_file(&root.path().join(name)), sum, "published bytes");
    assert!(
        second.log().contains("uploads: 1 resumed"),
        "{}",
        second.log()
    );
    let kept = assert_resumed_after(&r, r.get("killedAt").u64());
    // The page said what happened and retried by itself, waiting longer
    // after a second failure.
    let texts = r.get("seen").get("texts").strs();
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("Connection lost, retrying in")),
        "{texts:?}"
    );
    let log = tus_log(&r);
    let failed = log
        .iter()
        .filter(|e| e.t >= r.get("killedAt").u64() && e.status == 0)
        .count();
    assert!(failed >= 2, "the cut PATCH and a retry while down: {log:?}");
    assert!(
        texts.contains(&"Connection lost, retrying in 2 s"),
        "back-off grows: {texts:?}"
    );
    // The restarted server saw only the rest: no creation, one upload.
    let lines = access_lines(&second.log());
    assert!(lines.iter().all(|l| l.method != "POST"), "{lines:?}");
    assert!(
        lines.iter().any(|l| l.method == "PATCH" && l.status == 204),
        "{lines:?}"
    );
    assert!(r.get("stored").arr().is_empty());
    // While the server is down, the browser logs each failed request.
    for h in r.get("health").arr() {
        eprintln!("console while the server was down: {}", h.get("console"));
    }
    assert_healthy(
        &r,
        &[
            "net::ERR_CONNECTION_REFUSED",
            "net::ERR_CONNECTION_RESET",
            "net::ERR_EMPTY_RESPONSE",
        ],
    );
    eprintln!(
        "resumed at {kept} of {UPLOAD} bytes; screenshot: {}/upload-retrying.png",
        shots_dir().display()
    );
}

/// A reload mid-upload (on a phone): once the same file is chosen again,
/// the page finds its upload, asks the server where it stands and sends
/// only the missing bytes.
#[test]
fn upload_resumes_after_a_reload() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let root = TempDir::new();
    let work = TempDir::new();
    build_folder(root.path());
    let name = "VID_20260115_120000.mp4";
    let (source, sum) = upload_source(work.path(), name);
    let server = Ranged::start(root.path(), &["--upload", "--anonymous-upload"]);
    let args = object(&[
        ("url", quote(&server.url("/"))),
        ("shots", quote(&shots_dir().to_string_lossy())),
        ("file", quote(&source.to_string_lossy())),
        ("name", quote(name)),
        ("rate", RATE.to_string()),
        ("at", "50".into()),
        ("phone", "true".into()),
    ]);
    let r = Scenario::run("reload", &args, work.path()).result();
    eprintln!("reload scenario: {} ms", r.get("wallMs").u64());
    assert_eq!(sha256_file(&root.path().join(name)), sum, "published bytes");
    let before = r.get("before");
    assert_eq!(before.get("stored").arr().len(), 1, "{before}");
    // Nothing is shown after the reload until the file is chosen again.
    assert_eq!(r.get("shownAfterReload").u64(), 0);
    let server_offset = r.get("server").get("offset").u64();
    let kept = assert_resumed_after(&r, r.get("reloadedAt").u64());
    assert_eq!(
        kept, server_offset,
        "the page resumed where the server stood"
    );
    // The bar shows that point before the first byte goes, and moves on
    // from there; it does not start again at 0.
    let values: Vec<u64> = r
        .get("seen")
        .get("values")
        .arr()
        .iter()
        .map(Json::u64)
        .collect();
    assert_eq!(
        values.iter().find(|v| **v > 0),
        Some(&(kept * 100 / UPLOAD as u64)),
        "{values:?}"
    );
    assert_progress_moved(r.get("seen"), kept * 100 / UPLOAD as u64);
    // ranged's side: one creation; the PATCH of the old page, which ends
    // when Chromium closes its connection ("request body ended", no
    // answer) or, when the connection lingers, when the next HEAD ends the
    // stale writer (answered 409, never seen); then one PATCH that takes
    // the upload from `kept` to its length (a 204 only with all of it).
    let log = server.log();
    let lines = access_lines(&log);
    let count = |method: &str| lines.iter().filter(|l| l.method == method).count();
    assert_eq!(count("POST"), 1, "{lines:?}");
    let patches: Vec<u16> = lines
        .iter()
        .filter(|l| l.method == "PATCH")
        .map(|l| l.status)
        .collect();
    assert!(
        patches == [204] || patches == [409, 204],
        "PATCH answers {patches:?}:\n{log}"
    );
    eprintln!(
        "the old page's PATCH {}",
        if patches.len() == 1 {
            "ended with its connection"
        } else {
            "was ended by the next HEAD"
        }
    );
    assert!(r.get("stored").arr().is_empty());
    assert_healthy(&r, &[]);
    eprintln!(
        "resumed at {kept} of {UPLOAD} bytes ({}% shown before the reload); screenshot: {}/upload-phone.png",
        before.get("progress"),
        shots_dir().display()
    );
}

/// Without write access the page offers no upload, and an upload forged
/// from the page's own origin is refused: without `--upload` (405), for
/// an anonymous visitor when only accounts may write (a "Log in to upload"
/// link; 401), and for a read-only account (403). The rw account's login
/// link leads to the upload control.
#[test]
fn no_upload_without_write_access() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let root = TempDir::new();
    let work = TempDir::new();
    let contents = build_folder(root.path());
    let plain = Ranged::start(root.path(), &[]);
    let accounts = Ranged::start(
        root.path(),
        &[
            "--upload",
            "--auth",
            "alice:correct horse:rw",
            "--auth",
            "bob:battery staple:ro",
        ],
    );
    let creds =
        |user: &str, pass: &str| object(&[("username", quote(user)), ("password", quote(pass))]);
    let cases = [
        object(&[("url", quote(&plain.url("/")))]),
        object(&[
            ("url", quote(&accounts.url("/"))),
            ("shot", quote("login-desktop.png")),
        ]),
        object(&[
            ("url", quote(&accounts.url("/"))),
            ("credentials", creds("bob", "battery staple")),
        ]),
        object(&[
            ("url", quote(&accounts.url("/"))),
            ("credentials", creds("alice", "correct horse")),
            ("forge", "false".into()),
            ("login", "true".into()),
        ]),
    ];
    // The forged PUT would replace an existing file.
    let target = "file2.txt";
    let (_, original) = contents
        .iter()
        .find(|(p, _)| *p == target)
        .expect("a fixture file");
    let args = object(&[
        ("shots", quote(&shots_dir().to_string_lossy())),
        ("put", quote(target)),
        ("cases", format!("[{}]", cases.join(","))),
    ]);
    let r = Scenario::run("readonly", &args, work.path()).result();
    eprintln!("readonly scenario: {} ms", r.get("wallMs").u64());
    let [none, anonymous, read_only, writer] = r.get("cases").arr() else {
        panic!("four cases: {r}");
    };
    let check_forged = |server: &Ranged, r: &Json, status: u64| {
        let forged = r.get("forged");
        assert_eq!(forged.get("post").u64(), status, "tus creation: {forged}");
        assert_eq!(forged.get("put").u64(), status, "PUT: {forged}");
        assert!(!root.path().join("forged-tus.txt").exists(), "tus creation");
        let now = std::fs::read(root.path().join(target)).expect("read");
        assert!(now == *original, "{target} was replaced");
        let lines = access_lines(&server.log());
        for method in ["POST", "PUT"] {
            assert!(
                lines
                    .iter()
                    .any(|l| l.method == method && u64::from(l.status) == status),
                "{method} {status} in {lines:?}"
            );
        }
    };

    // No --upload: nothing to offer, nothing accepted.
    assert_eq!(none.get("up").u64(), 0);
    assert_eq!(none.get("picker").u64(), 0);
    assert_eq!(none.get("scripts").u64(), 0, "no script without uploads");
    assert!(none.get("login").is_null(), "{none}");
    assert_healthy(none, &[]);
    check_forged(&plain, none, 405);

    // Uploads for accounts only: the anonymous visitor gets a way to log
    // in, not a file picker.
    assert_eq!(anonymous.get("up").u64(), 0);
    assert_eq!(anonymous.get("picker").u64(), 0);
    assert_eq!(anonymous.get("scripts").u64(), 0);
    let login = anonymous.get("login");
    assert_eq!(login.get("text").str(), "Log in to upload", "{anonymous}");
    assert_eq!(login.get("href").str(), "?login", "{anonymous}");
    assert_healthy(anonymous, &[]);
    check_forged(&accounts, anonymous, 401);

    // A read-only account may not write.
    check_forged(&accounts, read_only, 403);

    // The rw account's "Log in to upload" leads back to the folder, now
    // with the file picker.
    let logged_in = writer.get("loggedIn");
    assert_eq!(logged_in.get("path").str(), "/", "{writer}");
    assert_eq!(logged_in.get("picker").u64(), 1, "{writer}");
    assert!(
        access_lines(&accounts.log())
            .iter()
            .any(|l| l.target == "/?login" && l.status == 303 && l.user == "alice"),
        "{}",
        accounts.log()
    );
}

/// `ranged link … PATH` for the server's folder: the URL it prints.
fn link(server: &Ranged, root: &Path, rights: &[&str], expires: &str, path: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ranged"))
        .arg("link")
        .arg("--dir")
        .arg(root)
        .args(rights)
        .args(["--expires", expires, "--url", &server.url("")])
        .arg(path)
        .output()
        .expect("run ranged link");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    text.lines().next().expect("a URL").to_owned()
}

/// The page's controls, opened through a write link of a server where only
/// accounts may write: three files at once (two in flight), pause (nothing
/// arrives; the bar shows what the server has), cancel (tus termination),
/// the browser closed and started again on the same profile (resumed from
/// localStorage), an upload the server forgot (started again), and the link
/// expiring while its page is open (one refusal, a message, no retry loop).
#[test]
fn upload_controls_through_a_capability_link() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let root = TempDir::new();
    let work = TempDir::new();
    let server = Ranged::start(root.path(), &["--upload", "--auth", "alice:pw:rw"]);
    let source = |name: &str, len: usize, seed: u64| -> (String, String) {
        let path = work.path().join(name);
        std::fs::write(&path, pattern(len, seed)).expect("write a source");
        (path.to_string_lossy().into_owned(), sha256_file(&path))
    };
    let names = [
        ("twenty.bin", 20_000_000),
        ("one MB.txt", 1_000_000),
        ("empty.txt", 0),
        ("pause.bin", 8_000_000),
        ("cancel.bin", 8_000_000),
        // Long enough that closing the browser at 30 % lands mid-upload
        // even when the machine is slow.
        ("résumé 日本 ✓.bin", RESTART_LEN),
        ("late.bin", 1000),
        ("forgotten.bin", 4_000_000),
    ];
    let files: Vec<(&str, String, String)> = names
        .iter()
        .zip(1..)
        .map(|(&(name, len), seed)| {
            let (path, sum) = source(name, len, seed);
            (name, path, sum)
        })
        .collect();
    // A write link: a drop box.
    let drop_box = link(&server, root.path(), &["--write"], "24h", "/");
    let arg = |f: &(&str, String, String)| object(&[("name", quote(f.0)), ("path", quote(&f.1))]);
    let ms = |t: SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_millis()
    };
    let args = object(&[
        ("url", quote(&drop_box)),
        ("rate", (2 * RATE).to_string()),
        ("slow", (RATE / 2).to_string()),
        (
            "three",
            format!("[{},{},{}]", arg(&files[0]), arg(&files[1]), arg(&files[2])),
        ),
        ("pause", arg(&files[3])),
        ("cancel", arg(&files[4])),
        ("restart", arg(&files[5])),
        ("late", arg(&files[6])),
        ("forgotten", arg(&files[7])),
    ]);
    let mut s = Scenario::run("controls", &args, work.path());
    // One that expires while the scenario runs: its page is opened first,
    // used last.
    s.event("link");
    let expiring = link(&server, root.path(), &["--write"], "5s", "/");
    let expires_at = SystemTime::now() + Duration::from_secs(5);
    s.send(&object(&[
        ("url", quote(&expiring)),
        ("expiresAt", (ms(expires_at) + 500).to_string()),
    ]));
    let r = s.result();
    eprintln!("controls scenario: {} ms", r.get("wallMs").u64());
    let published = |i: usize| {
        let (name, _, sum) = &files[i];
        let path = root.path().join(name);
        assert!(path.is_file(), "{name} not published:\n{}", server.log());
        assert_eq!(&sha256_file(&path), sum, "{name}");
    };

    // Three at once: two in flight, all exact, every request carrying the
    // link's token (the upload URLs carry one of their own).
    let three = r.get("three");
    for i in 0..3 {
        published(i);
    }
    assert_eq!(three.get("seen").get("maxRunning").u64(), 2, "{three}");
    assert!(three.get("stored").arr().is_empty(), "{three}");
    let log = tus_log(three);
    assert_eq!(
        log.iter().filter(|e| e.method == "POST").count(),
        3,
        "{log:?}"
    );
    assert!(
        three
            .get("tus")
            .arr()
            .iter()
            .all(|e| e.get("url").str().contains("token=")),
        "{three}"
    );
    // 20 MB is one PATCH: the chunk limit is 64 MiB.
    assert!(
        log.iter()
            .any(|e| e.method == "PATCH" && e.offset == Some(0) && e.answered == Some(20_000_000)),
        "{log:?}"
    );

    // Pause: nothing arrives, and the page shows what the server has.
    let pause = r.get("pause");
    published(3);
    let (a, b) = (
        pause.get("a").get("offset").u64(),
        pause.get("b").get("offset").u64(),
    );
    assert!(a > 0 && a < 8_000_000 && a == b, "{pause}");
    let pct = a * 100 / 8_000_000;
    assert_eq!(pause.get("bar").u64(), pct, "{pause}");
    assert!(
        pause
            .get("text")
            .str()
            .starts_with(&format!("Paused at {pct}% · ")),
        "{pause}"
    );
    let log = tus_log(pause);
    assert!(
        log.iter()
            .any(|e| e.method == "PATCH" && e.status == 204 && e.offset == Some(a)),
        "resumed at {a}: {log:?}"
    );

    // Cancel: the upload is terminated and forgotten on both sides.
    let cancel = r.get("cancel");
    let log = tus_log(cancel);
    assert!(
        log.iter().any(|e| e.method == "DELETE" && e.status == 204),
        "{log:?}"
    );
    assert_eq!(cancel.get("rows").u64(), 0, "{cancel}");
    assert!(cancel.get("stored").arr().is_empty(), "{cancel}");
    let head = cancel.get("head").get("status").u64();
    assert!(head == 404 || head == 410, "{cancel}");
    assert!(!root.path().join("cancel.bin").exists());

    // A stored upload the server no longer knows: asked, then started again.
    let forgotten = r.get("forgotten");
    published(7);
    assert_eq!(forgotten.get("ended").u64(), 204, "{forgotten}");
    assert_eq!(
        forgotten.get("storedBefore").strs(),
        [forgotten.get("gone").str()],
        "{forgotten}"
    );
    let log = tus_log(forgotten);
    let after: Vec<(&str, u64)> = log
        .iter()
        .skip_while(|e| e.method != "HEAD")
        .map(|e| (e.method.as_str(), e.status))
        .collect();
    assert!(
        matches!(
            after[..],
            [("HEAD", 404 | 410), ("POST", 201), ("PATCH", 204)]
        ),
        "{log:?}"
    );
    assert!(forgotten.get("stored").arr().is_empty(), "{forgotten}");

    // A restarted browser finds its upload in localStorage and sends the rest.
    let restart = r.get("restart");
    published(5);
    assert_eq!(restart.get("kept").arr().len(), 1, "{restart}");
    assert_eq!(restart.get("storedAfter"), restart.get("kept"), "{restart}");
    let offset = restart.get("server").get("offset").u64();
    assert!(offset > 0 && offset < RESTART_LEN as u64, "{restart}");
    let log = tus_log(restart);
    assert!(log.iter().all(|e| e.method != "POST"), "{log:?}");
    assert_eq!(log[0].method, "HEAD", "{log:?}");
    assert_eq!(log[0].answered, Some(offset), "{log:?}");
    let patches: Vec<_> = log.iter().filter(|e| e.method == "PATCH").collect();
    assert_eq!(patches[0].offset, Some(offset), "{log:?}");
    assert_eq!(
        patches
            .iter()
            .filter(|p| p.status == 204)
            .map(|p| p.length.unwrap_or(0))
            .sum::<u64>(),
        RESTART_LEN as u64 - offset,
        "{log:?}"
    );
    assert!(restart.get("stored").arr().is_empty(), "{restart}");

    // An expired link: one refused creation, said in words, not retried.
    let expired = r.get("expired");
    assert_eq!(expired.get("state").str(), "fail", "{expired}");
    assert_eq!(
        expired.get("text").str(),
        "This link no longer allows uploads (401)",
        "{expired}"
    );
    let log = tus_log(expired);
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(
        (log[0].method.as_str(), log[0].status),
        ("POST", 401),
        "{log:?}"
    );
    for line in expired.get("console").strs() {
        assert!(line.contains("401"), "console: {line}");
    }
    assert!(!root.path().join("late.bin").exists());
    // The page's HEAD of the forgotten upload is logged as a failed load.
    let gone = format!("404 (Not Found) ({})", forgotten.get("gone").str());
    assert_healthy(&r, &[&gone]);
}
