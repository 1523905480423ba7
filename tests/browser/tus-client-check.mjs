// Drives the folder page's upload client (assets/page.js) in headless
// Chromium against a real tus 1.0.0 server, through a throttling TCP proxy
// that can also cut every connection (a network drop).
//
//   node tus-client-check.mjs                       # against reference-server.mjs
//   node tus-client-check.mjs --base URL            # against any server: URL is a
//                                                   # folder page offering uploads
//   options: --chromium PATH (default /usr/bin/chromium), --only NAME
//
// Each check talks to the server only as a browser or a tus client would, so
// the same checks run against ranged: what the browser sent and got is read
// from its network events, uploaded files are fetched back over HTTP and
// compared by SHA-256, upload state is read with a tus HEAD.
import { chromium } from 'playwright-core';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startReference } from './reference-server.mjs';

const opt = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const CHROMIUM = opt('chromium', '/usr/bin/chromium');
const ONLY = opt('only', '');
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--no-first-run', '--disable-sync'];
const MB = 1000 * 1000;
const deadline = setTimeout(() => {
  console.error('FAIL: the whole run took longer than 10 minutes');
  process.exit(1);
}, 600_000);

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ranged-page-check-'));
let ref = null;
let base = opt('base', '');
if (!base) {
  ref = await startReference();
  base = ref.url;
}
const target = new URL(base);

// --- a TCP proxy that throttles client → server bytes and can drop all ---
const proxy = (() => {
  const live = new Set();
  const state = { rate: 0 }; // bytes per second, 0 = unlimited
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    const pair = { client, upstream };
    live.add(pair);
    const kill = () => {
      client.destroy();
      upstream.destroy();
      live.delete(pair);
    };
    client.on('data', (d) => {
      upstream.write(d);
      if (state.rate) {
        client.pause();
        setTimeout(() => client.resume(), (d.length * 1000) / state.rate);
      }
    });
    upstream.pipe(client);
    for (const s of [client, upstream]) {
      s.on('close', kill);
      s.on('error', kill);
    }
  });
  return {
    state,
    listen: () => new Promise((r) => server.listen(0, '127.0.0.1', () => r(server.address().port))),
    dropAll: () => [...live].forEach(({ client, upstream }) => { client.destroy(); upstream.destroy(); }),
    close: () => { [...live].forEach(({ client, upstream }) => { client.destroy(); upstream.destroy(); }); server.close(); },
  };
})();
const proxyPort = await proxy.listen();
const pageUrl = `http://127.0.0.1:${proxyPort}${target.pathname}${target.search}`;
// The upload URL as the server sees it (the proxy only forwards bytes).
const direct = (u) => {
  const x = new URL(u, pageUrl);
  return `${target.origin}${x.pathname}${x.search}`;
};

// --- helpers ---
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(fn, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}
function check(cond, what) {
  if (!cond) throw new Error(what);
}
const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');
function makeFile(name, size) {
  const p = path.join(work, name);
  const buf = crypto.randomBytes(size);
  fs.writeFileSync(p, buf);
  return { path: p, name, size, sha: sha256(buf) };
}
const encodeName = (s) =>
  Array.from(new TextEncoder().encode(s), (b) =>
    /[A-Za-z0-9\-._~]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : '%' + b.toString(16).toUpperCase().padStart(2, '0'),
  ).join('');
async function fetchBack(file) {
  const u = new URL(encodeName(file.name), base);
  u.search = target.search;
  const r = await fetch(u);
  check(r.ok, `GET ${file.name}: ${r.status}`);
  return sha256(Buffer.from(await r.arrayBuffer()));
}
async function tusHead(uploadUrl) {
  const r = await fetch(direct(uploadUrl), { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
  const o = r.headers.get('upload-offset');
  return { status: r.status, offset: o === null ? null : Number(o) };
}

const num = (v) => (v === undefined || v === null ? null : Number(v));
const TUS_METHODS = ['POST', 'HEAD', 'PATCH', 'DELETE'];

// Opens the folder page in `context`; records the tus traffic (with each
// request's start and end from the browser's own timing) and console errors
// (CSP violations among them).
async function open(context) {
  const page = await context.newPage();
  const rec = { page, log: [], errors: [] };
  page.on('console', (m) => {
    // A folder has no favicon; the browser asks anyway.
    if (m.type() === 'error' && !m.location().url.endsWith('/favicon.ico')) rec.errors.push(m.text());
  });
  page.on('pageerror', (e) => rec.errors.push(String(e)));
  const tus = (q) => TUS_METHODS.includes(q.method()) && !q.url().includes('/.ranged/');
  page.on('requestfinished', async (q) => {
    if (!tus(q)) return;
    const t = q.timing();
    const r = await q.response();
    const h = r ? await r.allHeaders() : {};
    const qh = await q.allHeaders();
    rec.log.push({
      method: q.method(), url: q.url(), status: r ? r.status() : 0,
      reqOffset: num(qh['upload-offset']), length: num(qh['content-length']),
      respOffset: num(h['upload-offset']), location: h.location,
      start: t.startTime, end: t.startTime + t.responseEnd,
    });
  });
  page.on('requestfailed', (q) => {
    if (!tus(q)) return;
    const t = q.timing();
    rec.log.push({
      method: q.method(), url: q.url(), status: 0, reqOffset: num(q.headers()['upload-offset']),
      start: t.startTime, end: Date.now(),
    });
  });
  await page.goto(pageUrl);
  await page.waitForSelector('#up:not([hidden])', { timeout: 10_000 });
  return rec;
}
const item = (page, name) => page.locator('#up li', { has: page.locator('span', { hasText: name }) });
const progressOf = (page, name) => item(page, name).locator('progress').evaluate((e) => e.value).catch(() => -1);
const statusOf = (page, name) => item(page, name).locator('small').textContent().catch(() => '');
const waitDone = (page, name, ms = 120_000) =>
  waitFor(async () => (await item(page, name).getAttribute('class').catch(() => '')) === 'done', ms, `${name} done`);
const stored = (page) => page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('ranged-upload ')).map((k) => [k, localStorage.getItem(k)]));
// The most tus requests that were open at the same time. A request's end
// (network stack) and the next one's start (page) come from different
// clocks, measured up to a millisecond apart: overlaps under 5 ms are the
// next request of a finished upload, not a third upload.
const maxOpen = (log) =>
  Math.max(0, ...log.map((a) => log.filter((b) => b.start <= a.start && a.start < b.end - 5).length));
const locationOf = (rec) => {
  const post = rec.log.find((e) => e.method === 'POST' && e.status === 201);
  check(post && post.location, 'no creation answered 201 with a Location');
  return new URL(post.location, pageUrl).href;
};

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
const checks = [];
const test = (name, fn) => checks.push({ name, fn });

test('three files at once: 20 MB byte-exact, at most two in flight, listed when done', async () => {
  proxy.state.rate = 0;
  const files = [makeFile('twenty.bin', 20 * MB), makeFile('one MB.txt', MB), makeFile('empty.txt', 0)];
  const ctx = await browser.newContext();
  const rec = await open(ctx);
  await rec.page.setInputFiles('#up input[type=file]', files.map((f) => f.path));
  for (const f of files) await waitDone(rec.page, f.name);
  for (const f of files) check((await fetchBack(f)) === f.sha, `${f.name}: SHA-256 differs from the original`);
  check(maxOpen(rec.log) === 2, `expected two uploads in flight at once, saw ${maxOpen(rec.log)}`);
  const big = rec.log.filter((e) => e.method === 'PATCH' && e.status === 204);
  check(big.some((e) => e.reqOffset === 0 && e.respOffset === 20 * MB), '20 MB should go in one PATCH (chunk limit 64 MiB)');
  for (const f of files) {
    await waitFor(() => rec.page.locator('tbody a', { hasText: f.name }).count(), 5000, `${f.name} in the listing`);
  }
  check((await stored(rec.page)).length === 0, 'finished uploads must leave nothing in localStorage');
  check(rec.errors.length === 0, `console errors: ${rec.errors.join(' | ')}`);
  await ctx.close();
});

test('a browser closed mid-upload resumes from the stored offset when reopened', async () => {
  const userDir = fs.mkdtempSync(path.join(work, 'profile-'));
  const f = makeFile('résumé 日本 ✓.bin', 20 * MB);
  proxy.state.rate = 3 * MB;
  let ctx = await chromium.launchPersistentContext(userDir, { executablePath: CHROMIUM, args: ARGS });
  let rec = await open(ctx);
  await rec.page.setInputFiles('#up input[type=file]', f.path);
  await waitFor(async () => (await progressOf(rec.page, f.name)) >= 30, 30_000, '30 % sent');
  const kept = await stored(rec.page);
  check(kept.length === 1, `one upload URL in localStorage, got ${JSON.stringify(kept)}`);
  const uploadUrl = locationOf(rec);
  await ctx.close(); // the whole browser goes away mid-PATCH
  await sleep(500);
  const before = await tusHead(uploadUrl);
  check(before.offset > 0 && before.offset < f.size, `server kept part of the upload: ${JSON.stringify(before)}`);

  ctx = await chromium.launchPersistentContext(userDir, { executablePath: CHROMIUM, args: ARGS });
  rec = await open(ctx);
  check(JSON.stringify(await stored(rec.page)) === JSON.stringify(kept), 'the upload URL survived the restart');
  await rec.page.setInputFiles('#up input[type=file]', f.path);
  // Progress, speed and time left while it runs.
  const text = await waitFor(async () => {
    const t = await statusOf(rec.page, f.name);
    return /^\d+% · [\d.]+ (B|KiB|MiB)\/s · \d+ (s|min) left$/.test(t) && t;
  }, 20_000, 'speed and time left');
  proxy.state.rate = 0;
  await waitDone(rec.page, f.name);
  check((await fetchBack(f)) === f.sha, 'SHA-256 differs after the resumed upload');
  const tusLog = rec.log.filter((e) => e.url.includes(new URL(uploadUrl).pathname) || e.method === 'POST');
  check(!tusLog.some((e) => e.method === 'POST'), 'the reopened page created a new upload instead of resuming');
  const head = tusLog.find((e) => e.method === 'HEAD');
  const patches = tusLog.filter((e) => e.method === 'PATCH');
  check(head && head.respOffset >= before.offset, `resume starts with a HEAD: ${JSON.stringify(tusLog)}`);
  check(patches[0].reqOffset === head.respOffset, `first PATCH continues at the HEAD offset: ${JSON.stringify(patches[0])}`);
  const sent = patches.filter((e) => e.status === 204).reduce((n, e) => n + (e.respOffset - e.reqOffset), 0);
  check(sent === f.size - head.respOffset, `only the missing ${f.size - head.respOffset} bytes were sent (${sent})`);
  if (patches[0].length !== null) check(patches[0].length === f.size - head.respOffset, 'PATCH body = the missing bytes');
  check((await stored(rec.page)).length === 0, 'the stored upload URL is removed when done');
  await ctx.close();
  console.log(`  resumed at ${head.respOffset} of ${f.size} bytes; while running: "${text}"`);
});

test('a dropped connection is retried with back-off and continues from the server offset', async () => {
  const f = makeFile('drop.bin', 12 * MB);
  proxy.state.rate = 3 * MB;
  const ctx = await browser.newContext();
  const rec = await open(ctx);
  await rec.page.setInputFiles('#up input[type=file]', f.path);
  await waitFor(async () => (await progressOf(rec.page, f.name)) >= 25, 30_000, '25 % sent');
  proxy.dropAll();
  await waitFor(async () => /retrying in \d+ s/.test(await statusOf(rec.page, f.name)), 10_000, '"retrying in N s"');
  proxy.state.rate = 0;
  await waitDone(rec.page, f.name);
  check((await fetchBack(f)) === f.sha, 'SHA-256 differs after the retried upload');
  const methods = rec.log.map((e) => `${e.method}:${e.status}`);
  check(methods.filter((m) => m.startsWith('POST')).length === 1, `one creation only: ${methods}`);
  // The cut PATCH fails, or Chromium replays it on a new connection at the
  // old offset, which the server refuses with 409: either way the client
  // must ask the server where to continue.
  const failed = rec.log.findIndex((e) => e.method === 'PATCH' && (e.status === 0 || e.status === 409));
  check(failed >= 0, `the cut PATCH shows as failed: ${methods}`);
  const head = rec.log.slice(failed).find((e) => e.method === 'HEAD' && e.status < 300);
  check(head && head.respOffset > 0, `a HEAD after the drop asks for the offset: ${methods}`);
  const next = rec.log.slice(failed).find((e) => e.method === 'PATCH' && e.status === 204);
  check(next.reqOffset === head.respOffset, 'the retry continues at the offset from HEAD');
  await ctx.close();
});

test('pause stops sending, resume continues where the server is', async () => {
  const f = makeFile('pause.bin', 8 * MB);
  proxy.state.rate = 2 * MB;
  const ctx = await browser.newContext();
  const rec = await open(ctx);
  await rec.page.setInputFiles('#up input[type=file]', f.path);
  await waitFor(async () => (await progressOf(rec.page, f.name)) >= 20, 30_000, '20 % sent');
  await rec.page.getByRole('button', { name: `Pause ${f.name}` }).click();
  await waitFor(async () => /^Paused at/.test(await statusOf(rec.page, f.name)), 5000, '"Paused at"');
  const uploadUrl = locationOf(rec);
  await sleep(700);
  const a = await tusHead(uploadUrl);
  await sleep(1500);
  const b = await tusHead(uploadUrl);
  check(a.offset > 0 && a.offset === b.offset, `nothing arrives while paused: ${a.offset} then ${b.offset}`);
  const shown = Math.floor((a.offset * 100) / f.size);
  const paused = await statusOf(rec.page, f.name);
  check(paused.startsWith(`Paused at ${shown}% · `), `shows the server's offset (${shown}%): "${paused}"`);
  check((await progressOf(rec.page, f.name)) === shown, 'the bar shows the stored bytes, not the sent ones');
  await rec.page.getByRole('button', { name: `Resume ${f.name}` }).click();
  proxy.state.rate = 0;
  await waitDone(rec.page, f.name);
  check((await fetchBack(f)) === f.sha, 'SHA-256 differs after pause and resume');
  const after = rec.log.filter((e) => e.method === 'PATCH' && e.status === 204);
  check(after.some((e) => e.reqOffset === a.offset), `a PATCH continues at ${a.offset}`);
  await ctx.close();
});

test('cancel terminates the upload (DELETE) and forgets it', async () => {
  const f = makeFile('cancel.bin', 8 * MB);
  proxy.state.rate = 1 * MB;
  const ctx = await browser.newContext();
  const rec = await open(ctx);
  await rec.page.setInputFiles('#up input[type=file]', f.path);
  await waitFor(async () => (await progressOf(rec.page, f.name)) >= 10, 30_000, '10 % sent');
  const uploadUrl = locationOf(rec);
  await rec.page.getByRole('button', { name: `Cancel ${f.name}` }).click();
  await waitFor(() => rec.log.find((e) => e.method === 'DELETE'), 10_000, 'the DELETE');
  const del = rec.log.find((e) => e.method === 'DELETE');
  check(del.status === 204, `DELETE answered ${del.status}`);
  check((await item(rec.page, f.name).count()) === 0, 'the row goes away');
  check((await stored(rec.page)).length === 0, 'localStorage forgets the upload');
  const h = await tusHead(uploadUrl);
  check(h.status === 404 || h.status === 410, `the server forgot it too (HEAD ${h.status})`);
  proxy.state.rate = 0;
  await ctx.close();
});

test('401 and 403 stop with a message and no retry loop', async () => {
  proxy.state.rate = 0;
  for (const [status, words] of [[403, /not allowed.*403/i], [401, /log in/i]]) {
    const f = makeFile(`denied-${status}.bin`, 1000);
    const ctx = await browser.newContext();
    let posts = 0;
    await ctx.route((u) => u.pathname === target.pathname, (route) => {
      if (route.request().method() !== 'POST') return route.continue();
      posts++;
      return route.fulfill({ status, headers: { 'Tus-Resumable': '1.0.0' }, body: 'no\n' });
    });
    const rec = await open(ctx);
    await rec.page.setInputFiles('#up input[type=file]', f.path);
    await waitFor(async () => (await item(rec.page, f.name).getAttribute('class')) === 'fail', 10_000, `${status} shown`);
    const text = await statusOf(rec.page, f.name);
    check(words.test(text), `message for ${status}: "${text}"`);
    await sleep(3000);
    check(posts === 1, `${status} must not be retried (${posts} creations)`);
    await ctx.close();
  }
});

test('a 503 on a PATCH is retried after a HEAD', async () => {
  proxy.state.rate = 0;
  const f = makeFile('flaky.bin', 2 * MB);
  const ctx = await browser.newContext();
  let failed = 0;
  await ctx.route(() => true, (route) => {
    if (route.request().method() === 'PATCH' && failed === 0) {
      failed++;
      return route.fulfill({ status: 503, headers: { 'Tus-Resumable': '1.0.0' }, body: 'busy\n' });
    }
    return route.continue();
  });
  const rec = await open(ctx);
  await rec.page.setInputFiles('#up input[type=file]', f.path);
  await waitDone(rec.page, f.name, 30_000);
  check((await fetchBack(f)) === f.sha, 'SHA-256 differs after the 503');
  const seq = rec.log.map((e) => `${e.method} ${e.status}`).join(', ');
  check(/^POST 201, PATCH 503, HEAD 20\d, PATCH 204$/.test(seq), `sequence: ${seq}`);
  await ctx.close();
});

test('an upload the server forgot (404 on HEAD) starts again from byte 0', async () => {
  const f = makeFile('forgotten.bin', 4 * MB);
  proxy.state.rate = 1 * MB;
  const ctx = await browser.newContext();
  let rec = await open(ctx);
  await rec.page.setInputFiles('#up input[type=file]', f.path);
  await waitFor(async () => (await progressOf(rec.page, f.name)) >= 10, 30_000, '10 % sent');
  const first = locationOf(rec);
  await rec.page.close(); // the page goes, the stored URL stays
  const r = await fetch(direct(first), { method: 'DELETE', headers: { 'Tus-Resumable': '1.0.0' } });
  check(r.status === 204, `server-side termination: ${r.status}`);
  proxy.state.rate = 0;
  rec = await open(ctx);
  check((await stored(rec.page)).length === 1, 'the old URL is still stored');
  await rec.page.setInputFiles('#up input[type=file]', f.path);
  await waitDone(rec.page, f.name);
  check((await fetchBack(f)) === f.sha, 'SHA-256 differs after starting again');
  const seq = rec.log.map((e) => `${e.method} ${e.status}`).join(', ');
  check(/^HEAD (404|410), POST 201, PATCH 204$/.test(seq), `sequence: ${seq}`);
  check(locationOf(rec) !== first, 'a new upload URL');
  await ctx.close();
});

let passed = 0;
let failed = 0;
for (const c of checks) {
  if (ONLY && !c.name.includes(ONLY)) continue;
  const t0 = Date.now();
  try {
    await c.fn();
    passed++;
    console.log(`ok   ${c.name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${c.name}: ${e.message}`);
  }
}
await browser.close();
proxy.close();
if (ref) await ref.close();
fs.rmSync(work, { recursive: true, force: true });
clearTimeout(deadline);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
