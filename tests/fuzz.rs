//! Deterministic, time-bounded mutation fuzzing of the pure parsers a client can
//! reach: request heads (`engine::scan`, `engine::parse`), `Range` values
//! (`range::parse`, `range::resolve`, `range::evaluate`), request targets
//! (`fs_path::decode`) and chunked request bodies (`engine::chunked`).
//!
//! Why in-tree rather than cargo-fuzz: cargo-fuzz (libFuzzer) needs a nightly
//! toolchain (`-Z sanitizer=fuzzer`), which the machines this project is built
//! on cannot fetch and `.ci/run` does not install. This mutator runs on stable
//! under `cargo test`, needs no dependency, is reproducible (xorshift64 from a
//! printed seed, `FUZZ_SEED` to replay), and checks invariants beyond "no panic",
//! including how much each call allocates. It is coverage-blind, so the seed
//! corpora below are written to reach the interesting branches (smuggling
//! variants, saturating numbers, escapes, limits) and the mutations insert the
//! tokens these grammars turn on.
//!
//! * `make fuzz`: the four `#[ignore]`d targets, `FUZZ_SECONDS` (default 60)
//!   each, in parallel (`cargo test --release --test fuzz -- --ignored`).
//! * `fuzz_smoke` runs each target for 2 s in `make test`, so the harness keeps
//!   working.
//!
//! A failure prints the target, seed, iteration and the input (escaped), then
//! fails the test.

use ranged::engine::chunked::{ChunkError, Decoder};
use ranged::engine::{self, MAX_HEAD, MAX_HEADERS, Scan};
use ranged::fs_path;
use ranged::range::{self, ByteRange, MAX_OVERLAPPING, MAX_RANGES, Outcome};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::time::{Duration, Instant};

/// Inputs never grow beyond this: the parsers see at most 64 KiB, four times
/// the largest head the engine ever buffers (`MAX_HEAD`).
const MAX_INPUT: usize = 64 * 1024;
/// A `Range` evaluation may allocate this much at most, whatever the input:
/// `MAX_RANGES` specs and as many resolved ranges, a few times over.
const RANGE_ALLOC_BOUND: isize = 16 * 1024;

// ---------------------------------------------------------------------------
// Allocation accounting: a counting wrapper over the system allocator, per
// thread (the targets run on parallel test threads), so a check can ask "how
// many bytes did this call have live at its peak?".

struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn note(delta: isize) {
    // `try_with`: never panic inside the allocator, even during thread teardown.
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every call is forwarded unchanged to `System`; the bookkeeping only
// touches const-initialised thread-locals without destructors, which never
// allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as our caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as our caller's.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) };
        note(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as our caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // Count the worst case: old and new block live at once.
            note(new_size as isize);
            note(-(layout.size() as isize));
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result with the most bytes it had allocated at
/// once on this thread (beyond what was live before).
fn peak_alloc<T>(f: impl FnOnce() -> T) -> (T, isize) {
    let before = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(before));
    let out = f();
    (out, PEAK.with(Cell::get) - before)
}

// ---------------------------------------------------------------------------
// Random numbers and mutations.

/// The crate's reproducible generator, with the picks the mutators need.
struct Rng(ranged::testing::Xorshift);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(ranged::testing::Xorshift::new(seed))
    }

    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn below(&mut self, n: usize) -> usize {
        self.0.below(n)
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// Tokens every grammar here turns on (the brief's list) plus a few bytes that
/// must never get through (NUL, bare CR, non-UTF-8).
const COMMON_TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r",
    b":",
    b" ",
    b"\t",
    b",",
    b"-",
    b"=",
    b"%",
    b"%00",
    b"\0",
    b"HTTP/1.1",
    b"Content-Length: ",
    b"Transfer-Encoding: chunked",
    b"12345678901234567890",
    b"99999999999999999999",
    b"18446744073709551615",
    b"18446744073709551616",
    b"..",
    b"0",
    b"\xff",
    b"\xc3\xa9",
];

const HEAD_TOKENS: &[&[u8]] = &[
    b"\r\n\r\n",
    b"GET ",
    b"HEAD ",
    b" / ",
    b"HTTP/1.0",
    b"HTTP/2.0",
    b"HTTP/1.2",
    b"Host: a\r\n",
    b"Host: ",
    b"Content-Length: 0\r\n",
    b"Content-Length: 5\r\n",
    b"Transfer-Encoding: gzip, chunked\r\n",
    b"chunked, gzip",
    b"Connection: close\r\n",
    b"Connection: keep-alive\r\n",
    b"Expect: 100-continue\r\n",
    b"Range: bytes=0-1\r\n",
    b"Range: ",
    b"bytes=",
    b"+5",
    b"0x10",
    b"\r\n ",
    b"\r\n\t",
    b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
];

const RANGE_TOKENS: &[&[u8]] = &[
    b"bytes=",
    b"Bytes=",
    b"items=",
    b"0-",
    b"-0",
    b"0-0",
    b"-1",
    b"1-",
    b"500-999",
    b", ",
    b",,",
    b"+",
    b"0x",
    b"1e3",
    b"4294967296",
    b"1048576-1114111",
];

const PATH_TOKENS: &[&[u8]] = &[
    b"/", b"//", b"/./", b"/../", b".", b"...", b"?", b"#", b"\\", b"%2e", b"%2E", b"%2e%2e",
    b"%2f", b"%2F", b"%5c", b"%5C", b"%25", b"%ff", b"%C3%A9", b"%e2%82", b"%4", b"%zz", b"?x=1",
    b".git",
];

/// Applies 1–8 random mutations to `buf`, keeping it within `MAX_INPUT`.
fn mutate(rng: &mut Rng, buf: &mut Vec<u8>, corpus: &[Vec<u8>], tokens: &[&[u8]]) {
    let rounds = 1 + rng.below(8);
    mutate_n(rng, buf, corpus, tokens, rounds);
}

/// Applies `rounds` random mutations to `buf`, keeping it within `MAX_INPUT`.
fn mutate_n(rng: &mut Rng, buf: &mut Vec<u8>, corpus: &[Vec<u8>], tokens: &[&[u8]], rounds: usize) {
    for _ in 0..rounds {
        let len = buf.len();
        match rng.below(9) {
            // Flip one bit.
            0 if len > 0 => {
                let i = rng.below(len);
                buf[i] ^= 1 << rng.below(8);
            }
            // Overwrite one byte with anything.
            1 if len > 0 => {
                let i = rng.below(len);
                buf[i] = rng.next() as u8;
            }
            // Insert a token (twice as likely as the rest: it is what finds bugs).
            2 | 3 => {
                let token = token(rng, tokens);
                let at = rng.below(len + 1);
                buf.splice(at..at, token.iter().copied());
            }
            // Replace a short range by a token.
            4 if len > 0 => {
                let token = token(rng, tokens);
                let at = rng.below(len);
                let end = (at + 1 + rng.below(8)).min(len);
                buf.splice(at..end, token.iter().copied());
            }
            // Delete a range, usually short, sometimes long.
            5 if len > 0 => {
                let at = rng.below(len);
                let max = if rng.chance(8) { len - at } else { 16 };
                let end = (at + 1 + rng.below(max)).min(len);
                buf.drain(at..end);
            }
            // Duplicate a range, 1 to 64 times (long lines, many headers).
            6 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(64)).min(len);
                let piece = buf[at..end].to_vec();
                let times = 1 << rng.below(7);
                let to = rng.below(len + 1);
                let room = MAX_INPUT.saturating_sub(len) / piece.len().max(1);
                let times = times.min(room);
                let extra: Vec<u8> = piece.repeat(times);
                buf.splice(to..to, extra);
            }
            // Splice: our prefix, another input's suffix.
            7 => {
                let other = &corpus[rng.below(corpus.len())];
                let cut = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                buf.truncate(cut);
                buf.extend_from_slice(&other[from..]);
            }
            // A random number, possibly huge.
            _ => {
                let n = match rng.below(4) {
                    0 => rng.below(10) as u64,
                    1 => rng.next() >> rng.below(64),
                    2 => u64::MAX - rng.below(3) as u64,
                    _ => 1 << rng.below(64),
                };
                let at = rng.below(len + 1);
                buf.splice(at..at, n.to_string().into_bytes());
            }
        }
        buf.truncate(MAX_INPUT);
    }
}

fn token<'a>(rng: &mut Rng, specific: &[&'a [u8]]) -> &'a [u8] {
    if rng.chance(3) {
        rng.pick(COMMON_TOKENS)
    } else {
        rng.pick(specific)
    }
}

// ---------------------------------------------------------------------------
// The driver.

/// What one target counts, to show that the fuzzer reaches every outcome.
#[derive(Default)]
struct Tally(Vec<(String, u64)>);

impl Tally {
    fn add(&mut self, what: &str) {
        match self.0.iter_mut().find(|(k, _)| k == what) {
            Some((_, n)) => *n += 1,
            None => self.0.push((what.to_owned(), 1)),
        }
    }
}

fn fuzz_seconds() -> Duration {
    let secs = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(60.0);
    Duration::from_secs_f64(secs)
}

fn base_seed() -> u64 {
    std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_2a6e_d00d_f00d)
}

/// Runs `check` on the seeds, then on mutated seeds and on generated inputs
/// (half each) until `budget` is spent.
/// Returns the number of iterations.
fn drive(
    name: &str,
    budget: Duration,
    corpus: &[Vec<u8>],
    tokens: &[&[u8]],
    generate: fn(&mut Rng, &mut Vec<u8>),
    mut check: impl FnMut(&[u8], &mut Rng, &mut Tally),
) -> u64 {
    let seed = base_seed()
        ^ name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
    let mut rng = Rng::new(seed);
    let mut tally = Tally::default();
    let start = Instant::now();
    let mut input: Vec<u8> = Vec::with_capacity(MAX_INPUT);
    let mut iterations = 0u64;
    // Every seed unmutated first, then mutants until time runs out (the clock
    // is read every 256 iterations).
    loop {
        if iterations.is_multiple_of(256)
            && iterations >= corpus.len() as u64
            && start.elapsed() >= budget
        {
            break;
        }
        if let Some(seed_input) = corpus.get(iterations as usize) {
            input.clear();
            input.extend_from_slice(seed_input);
        } else if rng.chance(2) {
            // A grammar-aware input, lightly mutated half of the time: most
            // blind mutations of a short value are just syntax errors.
            generate(&mut rng, &mut input);
            let rounds = rng.below(2) * (1 + rng.below(2));
            mutate_n(&mut rng, &mut input, corpus, tokens, rounds);
        } else {
            // Usually a fresh seed; sometimes keep stacking mutations.
            if !rng.chance(4) {
                input.clear();
                let seed_input = &corpus[rng.below(corpus.len())];
                input.extend_from_slice(seed_input);
            }
            mutate(&mut rng, &mut input, corpus, tokens);
        }
        assert!(input.len() <= MAX_INPUT);
        let outcome = catch_unwind(AssertUnwindSafe(|| check(&input, &mut rng, &mut tally)));
        if let Err(panic) = outcome {
            eprintln!(
                "\n{name}: FAILED at iteration {iterations} (FUZZ_SEED={}), input ({} bytes):\n  b\"{}\"\n",
                base_seed(),
                input.len(),
                input.escape_ascii()
            );
            resume_unwind(panic);
        }
        iterations += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    let mut counts = tally.0;
    counts.sort();
    let counts: Vec<String> = counts.iter().map(|(k, n)| format!("{k}={n}")).collect();
    println!(
        "{name}: {iterations} iterations in {secs:.1} s ({:.0}/s), seed {seed:#x}\n  {}",
        iterations as f64 / secs,
        counts.join(" ")
    );
    iterations
}

fn strings(items: &[&str]) -> Vec<Vec<u8>> {
    items.iter().map(|s| s.as_bytes().to_vec()).collect()
}

// ---------------------------------------------------------------------------
// Request heads.

fn head_corpus() -> Vec<Vec<u8>> {
    let mut corpus = strings(&[
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /file.bin HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nRange: bytes=1048576-1114111\r\nUser-Agent: curl/8\r\nAccept: */*\r\n\r\n",
        "HEAD /a%20b/?x=1 HTTP/1.1\r\nHost: a\r\nIf-Range: \"abc\"\r\nRange: bytes=0-0,-1\r\n\r\n",
        "GET / HTTP/1.0\r\n\r\n",
        "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, Close\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10000000000000\r\n\r\nabc",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
        "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "GET / HTTP/1.2\r\nHost: a\r\n\r\n",
        "GET /  HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
        "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nExpect: something\r\n\r\n",
        "GET / HTTP/1.1\nHost: a\n\n",
        "GET / HTTP/1.1\r\nHost: a\n\r\n",
        "GET http://a/b HTTP/1.1\r\nHost: a\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n",
        "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\n",
        "",
    ]);
    // At the header-count limit, and one over it.
    for n in [MAX_HEADERS - 1, MAX_HEADERS] {
        let mut s = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
        for i in 0..n {
            s.push_str(&format!("X-{i}: v\r\n"));
        }
        s.push_str("\r\n");
        corpus.push(s.into_bytes());
    }
    // At the request-line limit, and one over it.
    for n in [engine::MAX_REQUEST_LINE - 15, engine::MAX_REQUEST_LINE - 14] {
        let s = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(n));
        corpus.push(s.into_bytes());
    }
    // Just under and over the head limit.
    let mut big = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    while big.len() < MAX_HEAD - 40 {
        big.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    let mut over = big.clone();
    big.extend_from_slice(b"\r\n");
    corpus.push(big);
    over.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n");
    corpus.push(over);
    corpus
}

fn check_head(buf: &[u8], rng: &mut Rng, tally: &mut Tally) {
    let (scanned, bytes) = peak_alloc(|| engine::scan(buf, 0));
    assert_eq!(bytes, 0, "scan allocated");
    match scanned {
        Scan::Complete(n) => {
            tally.add("complete");
            assert!(n >= 4 && n <= buf.len(), "Complete({n}) of {}", buf.len());
            assert_eq!(&buf[n - 4..n], b"\r\n\r\n", "Complete({n}) not at CRLFCRLF");
            // It is the first end of head, and every LF before it has its CR.
            let first_end = buf.windows(4).position(|w| w == b"\r\n\r\n");
            assert_eq!(first_end, Some(n - 4), "not the first CRLFCRLF");
            for i in 0..n {
                if buf[i] == b'\n' {
                    assert!(i > 0 && buf[i - 1] == b'\r', "bare LF at {i} accepted");
                }
            }
            check_parsed(&buf[..n], rng, tally);
        }
        Scan::Incomplete => {
            tally.add("incomplete");
            assert!(buf.len() < MAX_HEAD, "Incomplete at {} bytes", buf.len());
            assert!(
                !buf.windows(4).any(|w| w == b"\r\n\r\n"),
                "Incomplete though CRLFCRLF is there"
            );
        }
        Scan::Reject(refusal) => {
            let status = refusal.status;
            tally.add(&format!("scan-{status}"));
            assert!(
                matches!(status, 400 | 414 | 431),
                "scan rejected with {status}"
            );
        }
    }
    // Resuming: scanning a prefix, then the whole from where it stopped, must
    // agree with one scan of the whole (the readiness loop scans this way).
    let split = rng.below(buf.len() + 1);
    if engine::scan(&buf[..split], 0) == Scan::Incomplete {
        assert_eq!(engine::scan(buf, split), scanned, "resumed at {split}");
    }
    // `parse` on anything, complete or not, must not panic either.
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let _ = engine::parse(buf, &mut headers);
}

/// A complete head: `parse` is total, allocation-free, and what it returns is sane.
/// Its target and Range value then go on to the next stages, as in the server.
fn check_parsed(head: &[u8], rng: &mut Rng, tally: &mut Tally) {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let (parsed, bytes) = peak_alloc(|| {
        engine::parse(head, &mut headers).map(|h| {
            let range = h
                .headers
                .iter()
                .find(|f| f.name.eq_ignore_ascii_case("range"))
                .map(|f| f.value);
            (h.method, h.target, h.http10, h.framing, h.keep_alive, range)
        })
    });
    assert_eq!(bytes, 0, "parse allocated");
    match parsed {
        Ok((method, target, http10, framing, keep_alive, range)) => {
            tally.add("parse-ok");
            assert!(!method.is_empty(), "empty method");
            assert!(!target.is_empty(), "empty target");
            assert!(!method.contains([' ', '\r', '\n']), "method {method:?}");
            assert!(
                !target.contains([' ', '\r', '\n', '\0']),
                "target {target:?}"
            );
            if let engine::Framing::Length(n) = framing {
                assert!(n > 0, "Length(0) should be Framing::None");
            }
            if http10 {
                assert_ne!(framing, engine::Framing::Chunked, "chunked on HTTP/1.0");
            }
            let _ = keep_alive;
            if fs_path::decode(target).is_ok() {
                tally.add("target-ok");
            }
            if let Some(value) = range.and_then(|v| std::str::from_utf8(v).ok()) {
                let size = sizes(rng)[rng.below(8)];
                check_outcome(value, size, &range::evaluate(value, size));
            }
        }
        Err(refusal) => {
            let status = refusal.status;
            tally.add(&format!("parse-{status}"));
            assert!(!refusal.reason.is_empty(), "a refusal without a reason");
            assert!(
                matches!(status, 400 | 417 | 431 | 501 | 505),
                "parse refused with {status}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Range values.

const RANGE_SEEDS: &[&str] = &[
    "bytes=0-0",
    "bytes=0-499",
    "bytes=1048576-1114111",
    "bytes=500-",
    "bytes=-500",
    "bytes=-0",
    "bytes=0-",
    "Bytes=0-4, -3",
    "BYTES=0-4",
    " bytes=0-4 ",
    "\tbytes=0-4\t",
    "bytes=0-1,,3-4",
    "bytes=,0-4",
    "bytes=0-4,",
    "bytes=0-4 , 6-9",
    "bytes = 0-4",
    "bytes=0 - 4",
    "bytes= 0-4",
    "bytes=",
    "bytes=,",
    "bytes=5-1",
    "bytes=+5-",
    "bytes=0x10-",
    "bytes=1e3-",
    "bytes=-",
    "bytes=--5",
    "bytes=1-2-3",
    "items=0-4",
    "=0-4",
    "bytes",
    "",
    "bytes=18446744073709551615-",
    "bytes=18446744073709551614-18446744073709551615",
    "bytes=99999999999999999999999-",
    "bytes=0-99999999999999999999999",
    "bytes=-99999999999999999999999",
    "bytes=4294967295-4294967296",
    "bytes=0-9,5-14",
    "bytes=0-9,5-14,8-20",
    "bytes=0-9,5-14,100-109,105-114",
    "bytes=0-,1-",
    "bytes=0-10001,0-0",
    "bytes=0-4,5-9",
    "bytes=-1,-1",
    "bytes=0-0,2-2,4-4,6-6,8-8",
    "bytes=\u{e9}-1",
];

fn range_corpus() -> Vec<Vec<u8>> {
    let mut corpus = strings(RANGE_SEEDS);
    // Around the count limit.
    for n in [MAX_RANGES, MAX_RANGES + 1] {
        let specs: Vec<String> = (0..n).map(|i| format!("{}-{}", 2 * i, 2 * i)).collect();
        corpus.push(format!("bytes={}", specs.join(",")).into_bytes());
    }
    corpus
}

/// The sizes a Range value is resolved against: the edges and some random ones.
fn sizes(rng: &mut Rng) -> [u64; 8] {
    [
        0,
        1,
        2 + rng.below(100) as u64,
        rng.below(1 << 20) as u64,
        1 << 32,
        u64::MAX,
        u64::MAX - 1,
        rng.next(),
    ]
}

fn check_range(buf: &[u8], rng: &mut Rng, tally: &mut Tally) {
    let value = String::from_utf8_lossy(buf);
    let (parsed, bytes) = peak_alloc(|| range::parse(&value));
    assert!(bytes <= RANGE_ALLOC_BOUND, "parse allocated {bytes} bytes");
    match &parsed {
        Ok(specs) => {
            tally.add("parse-ok");
            assert!(
                !specs.is_empty() && specs.len() <= MAX_RANGES,
                "{} specs",
                specs.len()
            );
            for spec in specs {
                if let range::Spec::Bounded { first, last } = spec {
                    assert!(first <= last, "Bounded {first}-{last} accepted");
                }
            }
        }
        Err(_) => tally.add("malformed"),
    }
    for size in sizes(rng) {
        let (outcome, bytes) = peak_alloc(|| range::evaluate(&value, size));
        assert!(
            bytes <= RANGE_ALLOC_BOUND,
            "evaluate allocated {bytes} bytes"
        );
        // `evaluate` is exactly `parse` then `resolve`.
        let expected = match &parsed {
            Ok(specs) => range::resolve(specs, size),
            Err(_) => Outcome::Ignore,
        };
        assert_eq!(
            outcome, expected,
            "evaluate != resolve(parse) at size {size}"
        );
        check_outcome(&value, size, &outcome);
        tally.add(match outcome {
            Outcome::Ignore => "ignore",
            Outcome::Unsatisfiable => "416",
            Outcome::Partial(ref r) if r.len() == 1 => "206-single",
            Outcome::Partial(_) => "206-multi",
        });
    }
}

fn check_outcome(value: &str, size: u64, outcome: &Outcome) {
    let Outcome::Partial(ranges) = outcome else {
        if size == 0 {
            assert_eq!(*outcome, Outcome::Ignore, "size 0 must ignore Range");
        }
        return;
    };
    let ctx = || format!("{value:?} at size {size}");
    assert!(size > 0, "Partial for an empty file: {}", ctx());
    assert!(
        !ranges.is_empty() && ranges.len() <= MAX_RANGES,
        "{} ranges: {}",
        ranges.len(),
        ctx()
    );
    for r in ranges {
        assert!(r.len >= 1, "empty range {r:?}: {}", ctx());
        let end = r.start.checked_add(r.len);
        assert!(
            end.is_some_and(|e| e <= size),
            "{r:?} past the end: {}",
            ctx()
        );
        assert!(r.last() < size, "{r:?}: {}", ctx());
    }
    if ranges.len() > 1 {
        let total: u128 = ranges.iter().map(|r| u128::from(r.len)).sum();
        assert!(total <= u128::from(size), "parts sum to {total}: {}", ctx());
        // An independent, quadratic count of ranges sharing a byte with another.
        let overlaps =
            |a: &ByteRange, b: &ByteRange| a.start < b.start + b.len && b.start < a.start + a.len;
        let overlapping = (0..ranges.len())
            .filter(|&i| (0..ranges.len()).any(|j| i != j && overlaps(&ranges[i], &ranges[j])))
            .count();
        assert!(
            overlapping <= MAX_OVERLAPPING,
            "{overlapping} overlapping ranges served: {}",
            ctx()
        );
    }
}

// ---------------------------------------------------------------------------
// Request targets.

const PATH_SEEDS: &[&str] = &[
    "/",
    "/a",
    "/a/b.txt",
    "/dir/",
    "/a%20b/?x=1",
    "/%41",
    "/%2541",
    "/a%3Fb",
    "/a/./b//c/",
    "/a/.",
    "//a",
    "/...",
    "/.git/config",
    "/%2e%2e/etc/passwd",
    "/..",
    "/a/../b",
    "/a/..%2fb",
    "/a%2f..%2fb",
    "/%2E%2E",
    "/.%2e/",
    "/%00",
    "/a\0b",
    "/a%5Cb",
    "/a\\b",
    "/%",
    "/%4",
    "/%zz",
    "/%ff",
    "/%C3%A9t%C3%A9",
    "/%e2%82",
    "/caf\u{e9}",
    "/a#frag",
    "/?",
    "*",
    "http://x/",
    "a",
    "",
    "/a?b/../..",
    "/a#/../..",
];

fn path_corpus() -> Vec<Vec<u8>> {
    strings(PATH_SEEDS)
}

fn check_path(buf: &[u8], _rng: &mut Rng, tally: &mut Tally) {
    let target = String::from_utf8_lossy(buf);
    check_target(&target, tally);
    // Most mutants lose the leading `/` and stop at `NotOrigin`; try them as
    // origin-form too.
    if !target.starts_with('/') {
        check_target(&format!("/{target}"), tally);
    }
}

fn check_target(target: &str, tally: &mut Tally) {
    let (decoded, bytes) = peak_alloc(|| fs_path::decode(target));
    // "It is the only allocation" and "never longer than target".
    assert!(
        bytes <= target.len() as isize,
        "decode allocated {bytes} bytes for {} input bytes",
        target.len()
    );
    match decoded {
        Ok(path) => {
            tally.add("ok");
            assert!(path.starts_with('/'), "{path:?} is not absolute");
            assert!(path.len() <= target.len(), "{path:?} outgrew its target");
            assert!(!path.contains('\0'), "NUL in {path:?}");
            assert!(!path.contains('\\'), "backslash in {path:?}");
            let segments: Vec<&str> = path[1..].split('/').collect();
            for (i, s) in segments.iter().enumerate() {
                assert!(*s != ".." && *s != ".", "dot segment in {path:?}");
                assert!(
                    !s.is_empty() || i == segments.len() - 1,
                    "empty segment in {path:?}"
                );
            }
            // `encode_path` is its inverse, and decoding is idempotent on it.
            let encoded = fs_path::encode_path(&path);
            assert_eq!(
                fs_path::decode(&encoded).as_deref(),
                Ok(path.as_str()),
                "encode_path round trip via {encoded:?}"
            );
            // A raw `..` segment before any `?` or `#` is never accepted.
            let raw = target.split(['?', '#']).next().unwrap_or("");
            assert!(
                !raw.split('/').any(|s| s == ".."),
                "raw `..` accepted as {path:?}"
            );
            if fs_path::has_dotfile(&path) {
                tally.add("dotfile");
            }
        }
        Err(e) => tally.add(&format!("{e:?}")),
    }
}

// ---------------------------------------------------------------------------
// Chunked request bodies.

const CHUNK_TOKENS: &[&[u8]] = &[
    b"0\r\n\r\n",
    b"\r\n",
    b"5\r\nhello\r\n",
    b"0000",
    b";",
    b";name=value",
    b" ;",
    b"ffffffffffffffff",
    b"10000000000000000",
    b"0x5",
    b"-1",
    b"+5",
    b"Trailer: x\r\n",
    b"GET / HTTP/1.1\r\n\r\n",
];

const CHUNK_SEEDS: &[&str] = &[
    "0\r\n\r\n",
    "5\r\nhello\r\n0\r\n\r\n",
    "5;ext=1\r\nhello\r\n0\r\n\r\n",
    "5 ; a=\"b\"\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
    "A\r\n0123456789\r\n0000\r\n\r\nGET / HTTP/1.1\r\n\r\n",
    "5\nhello\r\n0\r\n\r\n",
    "5\r\nhelloX\r\n0\r\n\r\n",
    "ffffffffffffffff\r\nabc",
    "10000000000000000\r\n",
    "\r\n",
    "0\r\nTrailer: a\nb\r\n\r\n",
];

fn chunk_corpus() -> Vec<Vec<u8>> {
    strings(CHUNK_SEEDS)
}

/// How a decode ended: the body, the bytes read (when it did not fail), and
/// the error, if any; the same whatever pieces the input arrives in.
#[derive(Debug, PartialEq)]
struct Decoded {
    body: Vec<u8>,
    used: usize,
    done: bool,
    error: Option<ChunkError>,
}

/// Feeds `input` to a decoder in pieces whose lengths come from `piece`,
/// checking each step's own contract on the way.
fn decode_in_pieces(input: &[u8], mut piece: impl FnMut() -> usize) -> Decoded {
    let mut d = Decoder::default();
    let mut out = Decoded {
        body: Vec::new(),
        used: 0,
        done: false,
        error: None,
    };
    // Every call consumes a byte or ends the decode, so this is bounded by
    // the input's length (plus one call per piece boundary).
    while out.used < input.len() && !d.is_done() {
        let end = (out.used + piece().max(1)).min(input.len());
        let mut rest = &input[out.used..end];
        while !rest.is_empty() && !d.is_done() {
            match d.step(rest) {
                Ok(step) => {
                    assert!(step.used > 0, "a step before the end consumed nothing");
                    assert!(
                        step.used <= rest.len(),
                        "a step used more than it was given"
                    );
                    // Body bytes are the end of what the step consumed: a
                    // slice of the input, never framing copied elsewhere.
                    if !step.data.is_empty() {
                        let data_end = step.data.as_ptr_range().end;
                        assert_eq!(data_end, rest[..step.used].as_ptr_range().end);
                    }
                    out.body.extend_from_slice(step.data);
                    out.used += step.used;
                    rest = &rest[step.used..];
                }
                Err(e) => {
                    // A failing step does not say which byte it stopped at;
                    // the body before it and the error are what must agree.
                    out.error = Some(e);
                    out.used = 0;
                    return out;
                }
            }
        }
    }
    out.done = d.is_done();
    out
}

fn check_chunked(buf: &[u8], rng: &mut Rng, tally: &mut Tally) {
    // Decoding never allocates: the engine hands the sink slices of its own
    // buffer, whatever a client sends.
    let mut d = Decoder::default();
    let (_, bytes) = peak_alloc(|| {
        let mut rest = buf;
        while let Ok(step) = d.step(rest) {
            if step.used == 0 || d.is_done() {
                break;
            }
            rest = &rest[step.used..];
        }
    });
    assert_eq!(bytes, 0, "the decoder allocated {bytes} bytes");

    // The outcome does not depend on how the bytes are split across reads
    // (a client controls where each TCP segment ends).
    let whole = decode_in_pieces(buf, || usize::MAX);
    let split = decode_in_pieces(buf, || 1 + rng.below(8));
    let bytewise = decode_in_pieces(buf, || 1);
    assert_eq!(whole, split, "splitting changed the outcome");
    assert_eq!(whole, bytewise, "byte-at-a-time changed the outcome");
    assert!(whole.body.len() <= buf.len(), "more body than input");
    if whole.done {
        // Anything after the last chunk is the next request's, left unread.
        assert!(whole.used <= buf.len() && whole.body.len() < whole.used);
    }
    match whole.error {
        Some(e) => tally.add(&format!("{e:?}")),
        None if whole.done => tally.add("done"),
        None => tally.add("wants-more"),
    }
    if whole.done {
        // Re-encoding what was decoded gives a body that decodes the same.
        let again = decode_in_pieces(&encode_chunked(&whole.body, rng), || 1 + rng.below(64));
        assert!(
            again.done && again.error.is_none(),
            "re-encoded body refused"
        );
        assert_eq!(
            again.body, whole.body,
            "re-encoded body decoded differently"
        );
    }
}

/// A well-formed chunked encoding of `body`: random chunk sizes (hex in
/// either case, leading zeros), sometimes extensions and trailers.
fn encode_chunked(body: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 64);
    let mut rest = body;
    while !rest.is_empty() {
        let n = (1 + rng.below(300)).min(rest.len());
        let size = if rng.chance(2) {
            format!("{n:x}")
        } else {
            format!("00{n:X}")
        };
        out.extend_from_slice(size.as_bytes());
        if rng.chance(6) {
            out.extend_from_slice(b" ;name=\"v\t1\"");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&rest[..n]);
        out.extend_from_slice(b"\r\n");
        rest = &rest[n..];
    }
    out.extend_from_slice(b"0\r\n");
    if rng.chance(4) {
        out.extend_from_slice(b"X-Checksum: abc\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn gen_chunked(rng: &mut Rng, out: &mut Vec<u8>) {
    let len = match rng.below(4) {
        0 => 0,
        1 => rng.below(16),
        2 => rng.below(1024),
        _ => rng.below(16 * 1024),
    };
    let body: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
    out.clear();
    out.extend_from_slice(&encode_chunked(&body, rng));
    if rng.chance(4) {
        // What follows belongs to the next request and must stay unread.
        out.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
    }
    out.truncate(MAX_INPUT);
}

// ---------------------------------------------------------------------------
// Grammar-aware generators: well-formed inputs with edge-case numbers and
// structure, so the checks past the syntax errors get exercised too.

/// A decimal numeral, biased to edges: 0, small, powers of two, around
/// `u64::MAX`, longer than any u64, with leading zeros.
fn gen_number(rng: &mut Rng, out: &mut Vec<u8>) {
    if rng.chance(8) {
        out.extend_from_slice(&b"000"[..1 + rng.below(3)]);
    }
    let n: u64 = match rng.below(7) {
        0 => rng.below(10) as u64,
        1 => rng.below(1 << 20) as u64,
        2 => (1u64 << rng.below(64))
            .wrapping_add(rng.below(3) as u64)
            .wrapping_sub(1),
        3 => u64::MAX - rng.below(3) as u64,
        4 => {
            out.extend_from_slice(b"99999999999999999999");
            rng.below(1000) as u64
        }
        5 => 1_048_576 + rng.below(65_536) as u64,
        _ => rng.next(),
    };
    out.extend_from_slice(n.to_string().as_bytes());
}

fn gen_ows(rng: &mut Rng, out: &mut Vec<u8>) {
    for _ in 0..rng.below(3) {
        out.push(if rng.chance(3) { b'\t' } else { b' ' });
    }
}

/// A `bytes` range set: mostly valid, with OWS, empty elements and up to
/// just over `MAX_RANGES` specs.
fn gen_range(rng: &mut Rng, out: &mut Vec<u8>) {
    out.clear();
    gen_range_into(rng, out);
}

fn gen_range_into(rng: &mut Rng, out: &mut Vec<u8>) {
    if rng.chance(8) {
        gen_ows(rng, out);
    }
    out.extend_from_slice(rng.pick(&[&b"bytes="[..], b"bytes=", b"bytes=", b"Bytes=", b"BYTES="]));
    let specs = match rng.below(4) {
        0 => 1,
        1 => 2,
        2 => 1 + rng.below(6),
        _ => 1 + rng.below(MAX_RANGES + 3),
    };
    for i in 0..specs {
        if i > 0 {
            if rng.chance(2) {
                gen_ows(rng, out);
            }
            out.push(b',');
            if rng.chance(16) {
                out.push(b',');
            }
            if rng.chance(2) {
                gen_ows(rng, out);
            }
        }
        match rng.below(4) {
            // first-last, last >= first unless the first is huge
            0 | 1 => {
                let mark = out.len();
                gen_number(rng, out);
                let first: u64 = std::str::from_utf8(&out[mark..])
                    .ok()
                    .and_then(|d| d.parse().ok())
                    .unwrap_or(u64::MAX);
                out.push(b'-');
                if rng.chance(8) {
                    gen_number(rng, out);
                } else {
                    let len = match rng.below(3) {
                        0 => 0,
                        1 => rng.below(1 << 16) as u64,
                        _ => rng.next() >> rng.below(64),
                    };
                    out.extend_from_slice(first.saturating_add(len).to_string().as_bytes());
                }
            }
            2 => {
                gen_number(rng, out);
                out.push(b'-');
            }
            _ => {
                out.push(b'-');
                gen_number(rng, out);
            }
        }
    }
    if rng.chance(8) {
        gen_ows(rng, out);
    }
}

const PATH_SEGMENTS: &[&str] = &[
    "a",
    "b.txt",
    "dir",
    "",
    ".",
    "..",
    "...",
    ".git",
    "%2e",
    "%2e%2e",
    "%2E.",
    "%2f",
    "%2F",
    "a%2f..",
    "%5c",
    "\\",
    "%00",
    "%20",
    "a%20b",
    "caf%C3%A9",
    "caf\u{e9}",
    "%ff",
    "%e2%82",
    "%",
    "%4",
    "%zz",
    "%2541",
    "%3F",
    "~",
    "a:b",
];

/// An origin-form target from hostile and ordinary segments, maybe with a
/// query or fragment.
fn gen_path(rng: &mut Rng, out: &mut Vec<u8>) {
    out.clear();
    gen_path_into(rng, out);
}

fn gen_path_into(rng: &mut Rng, out: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(6) {
        out.push(b'/');
        out.extend_from_slice(rng.pick(PATH_SEGMENTS).as_bytes());
    }
    if rng.chance(4) {
        out.push(b'/');
    }
    if rng.chance(6) {
        out.extend_from_slice(rng.pick(&[&b"?x=1"[..], b"?/../..", b"#frag", b"?", b"#"]));
    }
}

/// A request head: request line, a few fields drawn from the ones the server
/// looks at (each valid or a known trap), the empty line, sometimes a body.
fn gen_head(rng: &mut Rng, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(rng.pick(&[
        &b"GET"[..],
        b"GET",
        b"GET",
        b"HEAD",
        b"POST",
        b"OPTIONS",
        b"PUT",
        b"get",
        b"X-Custom",
    ]));
    out.push(b' ');
    match rng.below(8) {
        0 => out.extend_from_slice(rng.pick(PATH_SEEDS).as_bytes()),
        1 => out.extend_from_slice(rng.pick(&[&b"*"[..], b"http://a/b", b"/"])),
        _ => gen_path_into(rng, out),
    }
    out.push(b' ');
    out.extend_from_slice(rng.pick(&[
        &b"HTTP/1.1"[..],
        b"HTTP/1.1",
        b"HTTP/1.1",
        b"HTTP/1.0",
        b"HTTP/2.0",
        b"HTTP/1.2",
    ]));
    out.extend_from_slice(b"\r\n");
    let hosts = match rng.below(10) {
        0 => 0,
        1 => 2,
        _ => 1,
    };
    let fields = match rng.below(16) {
        0 => MAX_HEADERS - 4 + rng.below(8),
        _ => rng.below(6),
    };
    let host_at: Vec<usize> = (0..hosts).map(|_| rng.below(fields + 1)).collect();
    for i in 0..=fields {
        for _ in host_at.iter().filter(|&&h| h == i) {
            out.extend_from_slice(b"Host: 127.0.0.1:8080\r\n");
        }
        if i == fields {
            break;
        }
        let name: &[u8] = match rng.below(10) {
            0 => b"Content-Length",
            1 => b"Transfer-Encoding",
            2 => b"Connection",
            3 => b"Expect",
            4 => b"If-Range",
            5 => b"content-length",
            6 | 7 => b"Range",
            _ => b"X-Filler",
        };
        out.extend_from_slice(name);
        out.push(b':');
        gen_ows(rng, out);
        match name {
            b"Content-Length" | b"content-length" => {
                if rng.chance(6) {
                    out.extend_from_slice(rng.pick(&[&b"+5"[..], b"-1", b"0x10", b"5, 5", b""]));
                } else {
                    gen_number(rng, out);
                }
            }
            b"Transfer-Encoding" => out.extend_from_slice(rng.pick(&[
                &b"chunked"[..],
                b"gzip, chunked",
                b"chunked, gzip",
                b"identity",
                b"CHUNKED",
                b",",
            ])),
            b"Connection" => out.extend_from_slice(rng.pick(&[
                &b"close"[..],
                b"keep-alive",
                b"foo, Close",
                b"Keep-Alive, Upgrade",
            ])),
            b"Expect" => {
                out.extend_from_slice(rng.pick(&[&b"100-continue"[..], b"100-Continue", b"x"]))
            }
            b"If-Range" => out.extend_from_slice(b"\"etag\""),
            b"Range" => gen_range_into(rng, out),
            _ => out.extend_from_slice(b"aaaaaaaaaaaaaaaa"),
        }
        gen_ows(rng, out);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if rng.chance(8) {
        out.extend_from_slice(b"GET /hidden HTTP/1.1\r\nHost: a\r\n\r\n");
    }
    out.truncate(MAX_INPUT);
}

// ---------------------------------------------------------------------------
// The tests.

fn heads(budget: Duration) -> u64 {
    drive(
        "fuzz_request_heads",
        budget,
        &head_corpus(),
        HEAD_TOKENS,
        gen_head,
        check_head,
    )
}

fn ranges(budget: Duration) -> u64 {
    drive(
        "fuzz_range",
        budget,
        &range_corpus(),
        RANGE_TOKENS,
        gen_range,
        check_range,
    )
}

fn paths(budget: Duration) -> u64 {
    drive(
        "fuzz_paths",
        budget,
        &path_corpus(),
        PATH_TOKENS,
        gen_path,
        check_path,
    )
}

fn chunked(budget: Duration) -> u64 {
    drive(
        "fuzz_chunked",
        budget,
        &chunk_corpus(),
        CHUNK_TOKENS,
        gen_chunked,
        check_chunked,
    )
}

#[test]
#[ignore = "long-running: `make fuzz`"]
fn fuzz_request_heads() {
    heads(fuzz_seconds());
}

#[test]
#[ignore = "long-running: `make fuzz`"]
fn fuzz_range() {
    ranges(fuzz_seconds());
}

#[test]
#[ignore = "long-running: `make fuzz`"]
fn fuzz_paths() {
    paths(fuzz_seconds());
}

#[test]
#[ignore = "long-running: `make fuzz`"]
fn fuzz_chunked() {
    chunked(fuzz_seconds());
}

/// Every target for 2 s, in parallel, so `make test` keeps the harness working.
#[test]
fn fuzz_smoke() {
    let budget = Duration::from_secs(2);
    std::thread::scope(|s| {
        let targets: [fn(Duration) -> u64; 4] = [heads, ranges, paths, chunked];
        let runs: Vec<_> = targets
            .into_iter()
            .map(|target| s.spawn(move || target(budget)))
            .collect();
        for run in runs {
            let iterations = run.join().expect("a fuzz target failed");
            assert!(iterations > 100, "only {iterations} iterations");
        }
    });
}

/// The mutator itself: deterministic for a seed, and bounded in size.
#[test]
fn mutator_is_deterministic_and_bounded() {
    let corpus = head_corpus();
    let run = |seed| {
        let mut rng = Rng::new(seed);
        let mut buf = corpus[0].clone();
        let mut lens = Vec::new();
        for _ in 0..2000 {
            mutate(&mut rng, &mut buf, &corpus, HEAD_TOKENS);
            assert!(buf.len() <= MAX_INPUT);
            lens.push(buf.len());
        }
        (buf, lens)
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
}
