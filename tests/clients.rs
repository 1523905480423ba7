//! Real clients resuming real interrupted downloads (issue 2): `curl -C -`,
//! `wget -c`, `aria2c -x 8 -s 8` segmented, an interrupted `aria2c -c`, a
//! resume across a changed file (If-Range with the old ETag must give the new
//! file, never a splice) and a browser-like video seek.
//!
//! Every client runs against the real binary on 127.0.0.1:0, every client run
//! is bounded (killed by its PID past a limit), and every completed download
//! is checked with `sha256sum` against the source. A missing client is a
//! failure naming the Debian package to install, never a silent pass.

mod support;

use std::path::Path;
use std::process::ExitStatus;
use std::time::{Duration, Instant, SystemTime};
use support::{Proc, Server, TempDir, aria2_args, file_len, get, pattern, require, sha256sum};

const MIB: usize = 1024 * 1024;
/// Longest any single client run may take before it is killed and the test fails.
const CLIENT_LIMIT: Duration = Duration::from_secs(90);
/// Longest we wait for the server to log a request it has finished.
const LOG_LIMIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------- helpers

/// Runs a client to completion (bounded) and returns its exit status and output.
fn run(work: &Path, tag: &str, program: &str, args: &[&str]) -> (ExitStatus, String) {
    let mut c = Proc::spawn(work, tag, program, args);
    let st = c.wait(CLIENT_LIMIT);
    let out = c.output();
    (st, out)
}

/// Runs a client that must succeed.
fn run_ok(work: &Path, tag: &str, program: &str, args: &[&str], server: &Server) {
    let (st, out) = run(work, tag, program, args);
    assert!(
        st.success(),
        "`{program} {}` failed: {st}\n{out}\n--- server log\n{}",
        args.join(" "),
        server.log()
    );
}

/// Asserts, by sha256, that `got` is `want`; compares bytes too to say where
/// they first differ.
fn assert_same_file(got: &Path, want: &Path, what: &str) {
    let (a, b) = (sha256sum(got), sha256sum(want));
    if a != b {
        let x = std::fs::read(got).unwrap_or_default();
        let y = std::fs::read(want).unwrap_or_default();
        let first = x.iter().zip(&y).position(|(p, q)| p != q);
        panic!(
            "{what}: sha256 {a} != {b} (lengths {} vs {}, first difference at {first:?})",
            x.len(),
            y.len()
        );
    }
    eprintln!("{what}: sha256 {a} ok");
}

/// One access-log line: `PEER "METHOD TARGET HTTP/1.x" STATUS BYTES "RANGE" Nms`.
type Access = support::AccessLine;

/// The GETs in the access log.
fn accesses(log: &str) -> Vec<Access> {
    support::access_lines(log)
        .into_iter()
        .filter(|a| a.method == "GET")
        .collect()
}

/// Waits (bounded) until the server has logged a GET of `target` matching
/// `pred`, and returns it.
fn wait_access(server: &Server, target: &str, pred: impl Fn(&Access) -> bool) -> Access {
    let mut found = None;
    support::eventually(LOG_LIMIT, || {
        found = accesses(&server.log())
            .into_iter()
            .find(|a| a.target == target && pred(a));
        found.is_some()
    });
    found.unwrap_or_else(|| {
        panic!(
            "no matching access line for {target} within {LOG_LIMIT:?}; log:\n{}",
            server.log()
        )
    })
}

/// Starts `spawn` and kills it (by PID, with `signal`) once `out` holds at
/// least `at_least` bytes; returns the partial length. Fails if the client
/// finishes first or nothing arrives within the limit.
fn interrupt(mut c: Proc, out: &Path, at_least: u64, full: u64, signal: &str) -> u64 {
    let reached = support::eventually(Duration::from_secs(30), || file_len(out) >= at_least);
    assert!(
        c.is_running(),
        "`{}` finished before it could be interrupted",
        c.name
    );
    assert!(
        reached,
        "`{}` got no {at_least} bytes in 30 s\n{}",
        c.name,
        c.output()
    );
    let st = c.stop(signal);
    eprintln!(
        "interrupted `{}` after {:?} ({st})",
        c.name,
        c.started.elapsed()
    );
    let n = file_len(out);
    assert!(
        n > 0 && n < full,
        "partial download must be non-empty and shorter than {full}: {n}"
    );
    n
}

/// Waits (bounded) until the server log has been quiet for 300 ms.
fn settle(server: &Server) {
    let mut last = server.log().len();
    let mut since = Instant::now();
    support::eventually(LOG_LIMIT, || {
        let now = server.log().len();
        if now != last {
            last = now;
            since = Instant::now();
        }
        since.elapsed() >= Duration::from_millis(300)
    });
}

fn url(server: &Server, name: &str) -> String {
    format!("http://{}/{name}", server.addr)
}

/// The only `ETag` field of a header dump (`curl -D`), last response wins.
fn etag_in(dump: &str) -> Option<String> {
    dump.lines().rev().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case("etag")
            .then(|| v.trim().to_owned())
    })
}

/// Sets the file's mtime (to make a change visible even within one clock tick).
fn set_mtime(path: &Path, t: SystemTime) {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open for set_modified");
    f.set_modified(t).expect("set mtime");
}

// ---------------------------------------------------------------- tests

/// `curl -C -` continues a download killed part-way, from the partial file's
/// size, and the server answers that resume with 206 for `bytes=N-`.
#[test]
fn curl_resumes_an_interrupted_download() {
    require("curl", "curl");
    let t = Instant::now();
    let root = TempDir::new();
    let work = TempDir::new();
    let data = pattern(16 * MIB, 0xC0FFEE);
    let src = root.write("big.bin", &data);
    // The server throttles each connection (curl's own --limit-rate lets a
    // first burst of several MiB through on loopback), so the kill lands
    // part-way: 16 MiB at 8 MiB/s.
    let server = Server::start_with(root.path(), &["--rate-limit", "8M"]);
    let u = url(&server, "big.bin");
    let out = work.path().join("big.bin");
    let o = out.to_str().unwrap();

    let c = Proc::spawn(work.path(), "curl-1", "curl", &["-sS", "-o", o, &u]);
    let n = interrupt(c, &out, 4 * MIB as u64, data.len() as u64, "KILL");
    assert_eq!(
        std::fs::read(&out).unwrap(),
        data[..n as usize],
        "partial file must be a prefix of the source"
    );

    run_ok(
        work.path(),
        "curl-2",
        "curl",
        &["-sS", "-f", "-C", "-", "-o", o, &u],
        &server,
    );
    assert_same_file(&out, &src, "curl -C -");
    let want = format!("bytes={n}-");
    let a = wait_access(&server, "/big.bin", |a| a.range == want);
    assert_eq!(a.status, 206, "resume {want} must get 206: {a:?}");
    assert_eq!(
        a.bytes,
        data.len() as u64 - n,
        "resume sends only the rest: {a:?}"
    );
    eprintln!(
        "curl: interrupted at {n}, resumed with {want} → 206 ({:?})",
        t.elapsed()
    );
}

/// `wget -c` continues a download killed part-way.
#[test]
fn wget_continues_an_interrupted_download() {
    require("wget", "wget");
    let t = Instant::now();
    let root = TempDir::new();
    let work = TempDir::new();
    let data = pattern(16 * MIB, 0x3E7);
    let src = root.write("w/data.iso", &data);
    let server = Server::start(root.path());
    let u = url(&server, "w/data.iso");
    let out = work.path().join("data.iso");
    let o = out.to_str().unwrap();

    let c = Proc::spawn(
        work.path(),
        "wget-1",
        "wget",
        &["-q", "--limit-rate=2m", "-O", o, &u],
    );
    let n = interrupt(c, &out, 2 * MIB as u64, data.len() as u64, "KILL");
    assert_eq!(std::fs::read(&out).unwrap(), data[..n as usize]);

    run_ok(
        work.path(),
        "wget-2",
        "wget",
        &["-q", "-c", "-O", o, &u],
        &server,
    );
    assert_same_file(&out, &src, "wget -c");
    let want = format!("bytes={n}-");
    let a = wait_access(&server, "/w/data.iso", |a| a.range == want);
    assert_eq!(a.status, 206, "{a:?}");
    assert_eq!(a.bytes, data.len() as u64 - n, "{a:?}");
    eprintln!(
        "wget: interrupted at {n}, resumed → 206 ({:?})",
        t.elapsed()
    );
}

/// `aria2c -x 8 -s 8` downloads in segments over several concurrent
/// connections; the result is exact.
#[test]
fn aria2c_segmented_download() {
    require("aria2c", "aria2");
    let t = Instant::now();
    let root = TempDir::new();
    let work = TempDir::new();
    let data = pattern(32 * MIB, 0xA81A);
    let src = root.write("seg.tar.xz", &data);
    let server = Server::start(root.path());
    let u = url(&server, "seg.tar.xz");
    let dir = work.path().to_str().unwrap();

    let args = aria2_args(
        dir,
        "seg.tar.xz",
        &u,
        &["-x", "8", "-s", "8", "--min-split-size=1M"],
    );
    let log_before = server.log().len();
    run_ok(work.path(), "aria2c", "aria2c", &args, &server);
    assert_same_file(&work.path().join("seg.tar.xz"), &src, "aria2c -x 8 -s 8");
    assert!(
        !work.path().join("seg.tar.xz.aria2").exists(),
        "control file must be gone after a complete download"
    );

    // Every request of the download has been logged once aria2c is done
    // (the last may trail by a moment).
    let mut list = Vec::new();
    support::eventually(LOG_LIMIT, || {
        list = accesses(&server.log())
            .into_iter()
            .filter(|a| a.target == "/seg.tar.xz")
            .collect();
        list.iter().map(|a| a.bytes).sum::<u64>() >= data.len() as u64
    });
    let mut ranges: Vec<&str> = list
        .iter()
        .filter(|a| a.range != "-")
        .map(|a| a.range.as_str())
        .collect();
    ranges.sort();
    ranges.dedup();
    // Connections show in the debug log, one line each.
    let connections = server.log()[log_before..]
        .matches("connection opened")
        .count();
    assert!(
        ranges.len() >= 2,
        "segmented download must ask for several ranges: {list:#?}"
    );
    assert!(
        connections >= 2,
        "segmented download must use several connections: {list:#?}"
    );
    for a in &list {
        if a.range != "-" {
            assert_eq!(a.status, 206, "range request must get 206: {a:?}");
        }
    }
    eprintln!(
        "aria2c: {} requests, {} distinct ranges over {} connections ({:?})",
        list.len(),
        ranges.len(),
        connections,
        t.elapsed()
    );
}

/// `aria2c -c` continues an interrupted segmented download from its `.aria2`
/// control file and fetches only what is missing.
#[test]
fn aria2c_continues_an_interrupted_download() {
    require("aria2c", "aria2");
    let t = Instant::now();
    let root = TempDir::new();
    let work = TempDir::new();
    let data = pattern(16 * MIB, 0xB0B);
    let src = root.write("img/disk.img", &data);
    let server = Server::start(root.path());
    let u = url(&server, "img/disk.img");
    let dir = work.path().to_str().unwrap();
    let out = work.path().join("disk.img");
    let control = work.path().join("disk.img.aria2");

    let args = aria2_args(
        dir,
        "disk.img",
        &u,
        &["-x", "4", "-s", "4", "--max-download-limit=2M"],
    );
    let mut c = Proc::spawn(work.path(), "aria2c-1", "aria2c", &args);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        c.is_running(),
        "aria2c finished before it was interrupted\n{}",
        c.output()
    );
    // SIGTERM: aria2c stops gracefully and writes its control file, as when
    // a person interrupts it.
    let st = c.stop("TERM");
    assert!(
        !st.success(),
        "interrupted aria2c must report an unfinished download: {st}"
    );
    assert!(
        control.exists(),
        "interrupted aria2c must leave {}\n{}",
        control.display(),
        c.output()
    );
    assert_ne!(
        std::fs::read(&out).unwrap_or_default(),
        data,
        "download must be incomplete after the interruption"
    );
    // The server logs the cut connections once it notices them: let that
    // finish so that only the resume's requests follow.
    settle(&server);
    let first_phase = server.log().len();

    let args = aria2_args(dir, "disk.img", &u, &["-c", "-x", "4", "-s", "4"]);
    run_ok(work.path(), "aria2c-2", "aria2c", &args, &server);
    assert_same_file(&out, &src, "aria2c -c");
    assert!(
        !control.exists(),
        "control file must be removed when complete"
    );

    // The resume fetched only what was missing: aria2c opens with a plain GET
    // (to learn the length; it drops it when no segment starts at 0), then
    // asks for the missing segments, none from 0, and together they leave
    // out what the first run got.
    let mut resumed = Vec::new();
    support::eventually(LOG_LIMIT, || {
        resumed = accesses(&server.log()[first_phase..]);
        resumed.iter().any(|a| a.status == 206)
    });
    settle(&server);
    let resumed = accesses(&server.log()[first_phase..]);
    let mut asked: Vec<(u64, u64)> = Vec::new();
    for a in resumed.iter().filter(|a| a.range != "-") {
        assert_eq!(a.status, 206, "{a:?}");
        let (s, e) = a
            .range
            .strip_prefix("bytes=")
            .and_then(|r| r.split_once('-'))
            .unwrap_or_else(|| panic!("unexpected range {a:?}"));
        let s: u64 = s.parse().unwrap();
        let e: u64 = if e.is_empty() {
            data.len() as u64 - 1
        } else {
            e.parse().unwrap()
        };
        asked.push((s, e + 1));
    }
    assert!(!asked.is_empty(), "resume asked for no range: {resumed:#?}");
    assert!(
        asked.iter().all(|&(s, _)| s > 0),
        "a resume must not ask from byte 0 again: {resumed:#?}"
    );
    asked.sort();
    let (mut covered, mut end) = (0u64, 0u64);
    for &(s, e) in &asked {
        let s = s.max(end);
        if e > s {
            covered += e - s;
            end = e;
        }
    }
    let sent: u64 = resumed
        .iter()
        .filter(|a| a.status == 206)
        .map(|a| a.bytes)
        .sum();
    assert!(
        covered < data.len() as u64,
        "resume asked for the whole file again ({covered} bytes): {resumed:#?}"
    );
    eprintln!(
        "aria2c -c: {} requests after the interruption, ranges cover {covered} of {} \
         bytes, {sent} sent as 206 ({:?})",
        resumed.len(),
        data.len(),
        t.elapsed()
    );
}

/// A resume after the file changed gives the new file, never a splice of old
/// and new bytes: `If-Range` with the old ETag → 200 and the whole new file.
/// The hardest case: same length, same inode, only content and mtime differ.
#[test]
fn resume_after_change_gives_the_new_file_never_a_splice() {
    require("curl", "curl");
    let t = Instant::now();
    let root = TempDir::new();
    let work = TempDir::new();
    let v1 = pattern(8 * MIB, 1);
    let v2 = pattern(8 * MIB, 2);
    let len = v1.len() as u64;
    let path = root.write("fw.bin", &v1);
    let server = Server::start_with(root.path(), &["--rate-limit", "8M"]);
    let u = url(&server, "fw.bin");
    let out = work.path().join("fw.bin");
    let o = out.to_str().unwrap();
    let hdr1 = work.path().join("headers1.txt");

    // Part of version 1; `--max-time` makes curl exit on its own so that the
    // header dump is complete.
    let (st, log) = run(
        work.path(),
        "curl-v1",
        "curl",
        &[
            "-sS",
            "--max-time",
            "0.5",
            "-D",
            hdr1.to_str().unwrap(),
            "-o",
            o,
            &u,
        ],
    );
    assert_eq!(
        st.code(),
        Some(28),
        "curl must stop on --max-time (28): {st}\n{log}"
    );
    let n = file_len(&out);
    assert!(n > 0 && n < len, "partial download {n} of {len}");
    assert_eq!(std::fs::read(&out).unwrap(), v1[..n as usize]);
    let dump = std::fs::read_to_string(&hdr1).unwrap();
    let old_etag = etag_in(&dump).unwrap_or_else(|| panic!("no ETag in\n{dump}"));
    let old_date = dump
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(n, _)| n.eq_ignore_ascii_case("last-modified"))
                .map(|(_, v)| v.trim().to_owned())
        })
        .expect("Last-Modified in the first response");

    // Version 2 written in place: same length, same inode, another mtime.
    let old_mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::fs::write(&path, &v2).unwrap();
    set_mtime(&path, old_mtime + Duration::from_secs(7));
    let now = get(server.addr, "/fw.bin", &[("Range", "bytes=0-0")]);
    let new_etag = now.header("etag").expect("ETag").to_owned();
    assert_ne!(
        new_etag, old_etag,
        "ETag must change with the content's mtime"
    );

    // curl resuming with the old ETag in If-Range.
    let range = format!("bytes={n}-");
    let if_range = format!("If-Range: {old_etag}");
    let hdr2 = work.path().join("headers2.txt");
    let (st, log) = run(
        work.path(),
        "curl-v2",
        "curl",
        &[
            "-sS",
            "-C",
            "-",
            "-H",
            &if_range,
            "-D",
            hdr2.to_str().unwrap(),
            "-o",
            o,
            &u,
        ],
    );
    let a = wait_access(&server, "/fw.bin", |a| a.range == range);
    assert_eq!(
        a.status, 200,
        "If-Range with the old ETag must get 200: {a:?}"
    );
    let got = std::fs::read(&out).unwrap();
    let splice: Vec<u8> = [&v1[..n as usize], &v2[n as usize..]].concat();
    assert_ne!(got, splice, "curl produced a splice of old and new bytes");
    // curl 7.x refuses a 200 to a resume (exit 33, partial file untouched);
    // a curl that rewrites instead must have the whole new file.
    match st.code() {
        Some(33) => assert_eq!(got, v1[..n as usize], "curl exit 33 must leave the part"),
        Some(0) => assert_same_file(&out, &path, "curl after change"),
        _ => panic!("unexpected curl result {st}\n{log}"),
    }
    eprintln!("curl -C - with old If-Range: server 200, curl {st}");

    // The same at the socket level.
    let r = get(
        server.addr,
        "/fw.bin",
        &[("Range", &range), ("If-Range", &old_etag)],
    );
    assert_eq!(r.status, 200, "old ETag in If-Range → 200");
    assert_eq!(r.header("content-range"), None);
    assert_eq!(r.header("content-length"), Some(len.to_string().as_str()));
    assert!(r.body == v2, "200 must carry the complete new content");
    assert_eq!(r.header("etag"), Some(new_etag.as_str()));

    let r = get(
        server.addr,
        "/fw.bin",
        &[("Range", &range), ("If-Range", &old_date)],
    );
    assert_eq!(
        r.status, 200,
        "If-Range with the old date (mtime changed) → 200"
    );
    assert!(r.body == v2);

    let r = get(
        server.addr,
        "/fw.bin",
        &[("Range", &range), ("If-Range", &new_etag)],
    );
    assert_eq!(r.status, 206, "current ETag in If-Range → 206");
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes {n}-{}/{len}", len - 1).as_str())
    );
    assert!(
        r.body == v2[n as usize..],
        "206 must carry the new bytes from {n}"
    );

    // Once more within the same second: version 4 in place, same length, the
    // mtime only 1 ns later. The nanoseconds in the ETag must still tell.
    let v4 = pattern(8 * MIB, 5);
    let v2_mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::fs::write(&path, &v4).unwrap();
    set_mtime(&path, v2_mtime + Duration::from_nanos(1));
    let r = get(
        server.addr,
        "/fw.bin",
        &[("Range", &range), ("If-Range", &new_etag)],
    );
    assert_eq!(
        r.status, 200,
        "ETag of a version 1 ns older in If-Range → 200"
    );
    assert_ne!(r.header("etag"), Some(new_etag.as_str()));
    assert!(r.body == v4, "200 must carry the complete newest content");

    // A complete fresh download of the newest version by curl is exact.
    let fresh = work.path().join("fresh.bin");
    run_ok(
        work.path(),
        "curl-v2-fresh",
        "curl",
        &["-sS", "-f", "-o", fresh.to_str().unwrap(), &u],
        &server,
    );
    assert_same_file(&fresh, &path, "fresh curl of version 4");
    eprintln!("change + If-Range ({:?})", t.elapsed());
}

/// Documented behaviour: `wget -c` sends no `If-Range`, so after the file
/// GREW it resumes from its partial size and keeps its old prefix — wget's own
/// splice, which only If-Range (or a digest) can prevent. The server's part is
/// correct: 206 with the new length in `Content-Range` and the exact new bytes
/// from N.
#[test]
fn wget_resume_after_the_file_grew_gets_the_new_bytes_from_n() {
    require("wget", "wget");
    let t = Instant::now();
    let root = TempDir::new();
    let work = TempDir::new();
    let v1 = pattern(8 * MIB, 3);
    let v3 = pattern(12 * MIB, 4);
    let path = root.write("log.tar.gz", &v1);
    let server = Server::start(root.path());
    let u = url(&server, "log.tar.gz");
    let out = work.path().join("log.tar.gz");
    let o = out.to_str().unwrap();

    let c = Proc::spawn(
        work.path(),
        "wget-v1",
        "wget",
        &["-q", "--limit-rate=2m", "-O", o, &u],
    );
    let n = interrupt(c, &out, MIB as u64, v1.len() as u64, "KILL");
    let old_mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::fs::write(&path, &v3).unwrap();
    set_mtime(&path, old_mtime + Duration::from_secs(7));

    run_ok(
        work.path(),
        "wget-v3",
        "wget",
        &["-q", "-c", "-O", o, &u],
        &server,
    );
    let range = format!("bytes={n}-");
    let a = wait_access(&server, "/log.tar.gz", |a| a.range == range);
    assert_eq!(
        a.status, 206,
        "no If-Range: the server must honour the range: {a:?}"
    );
    assert_eq!(a.bytes, v3.len() as u64 - n);
    let got = std::fs::read(&out).unwrap();
    assert_eq!(got.len(), v3.len(), "wget's file has the new length");
    assert!(
        got[n as usize..] == v3[n as usize..],
        "bytes from N are the new ones"
    );
    let spliced = got[..n as usize] == v1[..n as usize];
    eprintln!(
        "wget -c after growth: resumed from {n}; prefix is {} (wget sends no If-Range)",
        if spliced {
            "the OLD bytes: a splice"
        } else {
            "new"
        }
    );

    let r = get(server.addr, "/log.tar.gz", &[("Range", &range)]);
    assert_eq!(r.status, 206);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes {n}-{}/{}", v3.len() - 1, v3.len()).as_str())
    );
    assert!(r.body == v3[n as usize..]);
    eprintln!("wget after growth ({:?})", t.elapsed());
}

/// What a browser's <video> does on a seek: an open-ended range on an .mp4.
#[test]
fn browser_like_video_seek() {
    let root = TempDir::new();
    let data = pattern(8 * MIB, 0x4D50);
    root.write("clips/movie.mp4", &data);
    let server = Server::start(root.path());
    let ua = "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0";

    // First the probe browsers send, then a seek into the middle.
    for start in [0usize, 5 * MIB + 12_345] {
        let range = format!("bytes={start}-");
        let r = get(
            server.addr,
            "/clips/movie.mp4",
            &[
                ("User-Agent", ua),
                ("Accept", "video/webm,video/ogg,video/*;q=0.9,*/*;q=0.5"),
                ("Accept-Encoding", "identity"),
                ("Range", &range),
            ],
        );
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(r.header("content-type"), Some("video/mp4"));
        assert_eq!(r.header("accept-ranges"), Some("bytes"));
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes {start}-{}/{}", data.len() - 1, data.len()).as_str())
        );
        assert_eq!(
            r.header("content-length"),
            Some((data.len() - start).to_string().as_str())
        );
        assert!(r.body == data[start..], "body of {range}");
        assert!(r.header("etag").is_some());
    }
}
