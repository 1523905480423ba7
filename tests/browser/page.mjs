// The folder page in Debian's Chromium, against a running ranged: one
// scenario per run, driven by tests/browser.rs.
//
//   node page.mjs SCENARIO 'JSON arguments'
//
// It prints one JSON object per line on stdout: events while it runs
// ({"event": …}, the test may answer on stdin), then {"result": …} — what
// the page showed and what the browser sent, for the Rust test to assert
// on — or {"error": …}. The script itself checks only what it needs to go
// on (an element it waits for); every wait is bounded.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as L from './lib.mjs';

const [scenario, json] = process.argv.slice(2);
const args = JSON.parse(json || '{}');
// Before the Rust test's own limit (90 s), so that the failure says where.
const LIMIT = 85_000;
const deadline = setTimeout(() => {
  L.emit({ error: `${scenario}: still running after ${LIMIT} ms` });
  process.exit(3);
}, LIMIT);

const PICKER = '#up input[type=file]';
// Progress notes on stderr: the Rust test shows them when a scenario fails.
const t0 = Date.now();
const step = (what) => {
  process.stderr.write(`${((Date.now() - t0) / 1000).toFixed(2)} s: ${what}\n`);
};
const browser = await L.launch();

// The rows of the listing as the visitor sees them.
const rows = (page) =>
  page.$$eval('tbody tr', (trs) =>
    trs.map((tr) => {
      const [name, size, date] = tr.querySelectorAll('td');
      const link = name.querySelector('a');
      const pin = name.querySelector('a.v');
      return {
        name: link.textContent, href: link.getAttribute('href'), folder: tr.classList.contains('d'),
        pinned: pin && pin.getAttribute('href'), size: size.textContent,
        bytes: size.getAttribute('title'), date: date.textContent,
      };
    }));
const crumbs = (page) =>
  page.$$eval('nav h1 a', (as) => as.map((a) => ({ text: a.textContent, href: a.getAttribute('href'), current: a.getAttribute('aria-current') })));
const shot = (page, name) => page.screenshot({ path: path.join(args.shots, name) });
// Fetches a link of the page from the page itself and hashes what came.
const fetchHash = (page, href) =>
  page.evaluate(async (href) => {
    const r = await fetch(href);
    const sum = await crypto.subtle.digest('SHA-256', await r.arrayBuffer());
    return { status: r.status, sha256: Array.from(new Uint8Array(sum), (b) => b.toString(16).padStart(2, '0')).join('') };
  }, href);
// Whether the page is wider than its viewport (a sideways scroll on a phone).
const overflow = (page) => page.evaluate(() => ({ scrollWidth: document.documentElement.scrollWidth, innerWidth }));

// What a page reported about itself, for the test to require empty.
const health = (rec) => ({ console: [...rec.console], pageErrors: [...rec.pageErrors], csp: [...rec.csp], documents: [...rec.documents] });

async function listing() {
  const context = await browser.newContext(L.DESKTOP);
  const rec = L.record(context);
  const page = await context.newPage();
  await page.goto(args.url);
  const out = { rows: await rows(page), crumbs: await crumbs(page), title: await page.title() };
  out.downloads = [];
  for (const name of args.fetch) {
    const href = out.rows.find((r) => r.name === name)?.href;
    out.downloads.push({ name, href, ...(href ? await fetchHash(page, href) : {}) });
    const pinned = out.rows.find((r) => r.name === name)?.pinned;
    if (pinned) out.downloads.push({ name, href: pinned, ...(await fetchHash(page, pinned)) });
  }
  // A click on a link to a file the browser does not show: a download.
  const [download] = await Promise.all([
    page.waitForEvent('download', { timeout: 10_000 }),
    page.getByRole('link', { name: args.click, exact: true }).click(),
  ]);
  out.clicked = { name: args.click, suggested: download.suggestedFilename(), sha256: L.sha256(fs.readFileSync(await download.path())) };
  await page.mouse.move(0, 0); // no row under the pointer
  await shot(page, 'listing-desktop.png');
  await rec.collect(page);

  // Inside a folder: the breadcrumb leads back up.
  await page.goto(new URL(args.nested, args.url).href);
  out.nested = { crumbs: await crumbs(page), rows: await rows(page) };
  await page.getByRole('link', { name: args.up, exact: true }).first().click();
  await page.waitForLoadState();
  out.nested.after = { path: new URL(page.url()).pathname, crumbs: await crumbs(page) };
  await rec.collect(page);

  // The proof that the checks of the other pages mean something: this one
  // runs under a policy that blocks inline style, and the probe sees it.
  const probe = await browser.newContext(L.DESKTOP);
  const trec = L.record(probe);
  const t = await probe.newPage();
  await t.goto(args.url);
  await t.evaluate(() => {
    const s = document.createElement('style');
    s.textContent = 'body{}';
    document.head.append(s);
  });
  out.cspProbe = await L.waitFor(() => t.evaluate(() => window.__csp.slice()).then((v) => v.length && v), 5000, 'the probe violation')
    .catch(() => []);
  out.cspProbeConsole = trec.console;

  const phone = await browser.newContext(L.PHONE);
  const prec = L.record(phone);
  const p = await phone.newPage();
  await p.goto(args.url);
  out.phone = { overflow: await overflow(p), rows: (await rows(p)).length };
  await shot(p, 'listing-phone.png');
  await prec.collect(p);

  // Sorting without JavaScript: every header is a link.
  const plain = await browser.newContext({ ...L.DESKTOP, javaScriptEnabled: false });
  const nrec = L.record(plain);
  const n = await plain.newPage();
  await n.goto(args.url);
  out.sorts = [];
  for (const header of ['Size', 'Size', 'Modified (UTC)', 'Name', 'Name']) {
    await n.getByRole('link', { name: header, exact: true }).click();
    await n.waitForLoadState();
    const sorted = await n.$eval('th[aria-sort]', (th) => ({ column: th.textContent, order: th.getAttribute('aria-sort') }));
    out.sorts.push({ clicked: header, search: new URL(n.url()).search, ...sorted, names: (await rows(n)).map((r) => r.name) });
  }
  out.scripts = await n.evaluate(() => document.scripts.length).catch(() => null);
  out.health = [health(rec), health(prec), health(nrec)];
  return out;
}

// Opens the folder page in a new context and waits for the upload control.
async function openUploads(options = {}, url = args.url, rate = args.rate) {
  const context = await browser.newContext({ ...L.DESKTOP, ...options });
  const rec = L.record(context);
  const page = await context.newPage();
  page.on('dialog', (d) => d.accept()); // "Leave site?" while an upload runs
  await ready(page, url, rate);
  return { context, rec, page };
}
async function ready(page, url, rate) {
  step(`open ${url}`);
  await page.goto(url);
  await page.waitForSelector('#up:not([hidden])', { timeout: 10_000 });
  if (rate) await L.throttleUpload(page, rate);
  await L.watchUploads(page);
}
async function waitProgress(page, at, name = args.name) {
  step(`${name}: waiting for ${at} %`);
  await L.waitFor(async () => (await L.progressOf(page, name)) >= at, 30_000, `${at} % of ${name} sent`);
}
async function waitDone(page, name = args.name, ms = 60_000) {
  step(`${name}: waiting for the end`);
  await L.waitFor(async () => {
    const s = await L.stateOf(page, name);
    if (s === 'fail') throw new Error(`upload of ${name} failed: ${await L.statusOf(page, name)}`);
    return s === 'done';
  }, ms, `${name} uploaded`);
}

async function upload() {
  const { rec, page } = await openUploads();
  const t0 = Date.now();
  await page.setInputFiles(PICKER, args.file);
  await waitProgress(page, 40);
  await shot(page, 'upload-desktop.png');
  await waitDone(page);
  const ms = Date.now() - t0;
  await L.waitFor(() => L.listed(page, args.name), 5000, `${args.name} listed`);
  const row = (await rows(page)).find((r) => r.name === args.name);
  const out = { ms, seen: await L.seen(page), tus: rec.tus, row, stored: await L.stored(page) };
  await rec.collect(page);
  out.health = [health(rec)];
  return out;
}

async function kill() {
  const commands = L.commands();
  const { rec, page } = await openUploads();
  await page.setInputFiles(PICKER, args.file);
  await waitProgress(page, args.at);
  const killedAt = Date.now();
  L.emit({ event: 'midway', progress: await L.progressOf(page, args.name) });
  await commands.next(10_000, 'killed');
  await L.waitFor(async () => /retrying in/.test(await L.statusOf(page, args.name)), 10_000, '"retrying in N s"');
  await shot(page, 'upload-retrying.png');
  await commands.next(30_000, 'restarted');
  await waitDone(page);
  await L.waitFor(() => L.listed(page, args.name), 5000, `${args.name} listed`);
  const out = { killedAt, seen: await L.seen(page), tus: rec.tus, stored: await L.stored(page) };
  await rec.collect(page);
  out.health = [health(rec)];
  return out;
}

async function reload() {
  const { rec, page } = await openUploads(args.phone ? L.PHONE : {});
  await page.setInputFiles(PICKER, args.file);
  await waitProgress(page, args.at);
  await shot(page, 'upload-phone.png');
  const before = { progress: await L.progressOf(page, args.name), stored: await L.stored(page) };
  await rec.collect(page);
  const reloadedAt = Date.now();
  await page.reload();
  await page.waitForSelector('#up:not([hidden])', { timeout: 10_000 });
  // Where the server stands, asked from outside the browser.
  const server = before.stored.length === 1 ? await L.tusHead(before.stored[0]) : null;
  const shown = await page.locator('#up li').count();
  if (args.rate) await L.throttleUpload(page, 0);
  await L.watchUploads(page);
  await page.setInputFiles(PICKER, args.file);
  await waitDone(page);
  await L.waitFor(() => L.listed(page, args.name), 5000, `${args.name} listed`);
  const out = {
    before, reloadedAt, server, shownAfterReload: shown,
    seen: await L.seen(page), tus: rec.tus, stored: await L.stored(page),
  };
  await rec.collect(page);
  out.health = [health(rec)];
  return out;
}

// Visitors without write access, one context each: what the page offers,
// and what forged uploads from the page's own origin get: a tus creation in
// the folder, and a PUT over the file `args.put`.
async function readonly() {
  const cases = [];
  for (const c of args.cases) cases.push(await visit(c));
  return { cases };
}
async function visit(c) {
  const context = await browser.newContext({ ...L.DESKTOP, ...(c.credentials ? { httpCredentials: c.credentials } : {}) });
  const rec = L.record(context);
  const page = await context.newPage();
  await page.goto(c.url);
  const login = await page.$eval('#login a', (a) => ({ text: a.textContent, href: a.getAttribute('href') })).catch(() => null);
  const out = {
    up: await page.locator('#up').count(),
    picker: await page.locator('input[type=file]').count(),
    scripts: await page.evaluate(() => document.scripts.length),
    login,
  };
  if (c.shot) await shot(page, c.shot);
  await rec.collect(page);
  out.health = [health(rec)];
  // Anonymous: `credentials: 'omit'`, or Chromium would hold the request
  // for a login prompt that a headless browser never shows.
  if (c.forge !== false) out.forged = await page.evaluate(async ([credentials, target]) => {
    const creation = await fetch(location.pathname, {
      method: 'POST', credentials,
      headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '6', 'Upload-Metadata': 'filename ' + btoa('forged-tus.txt') },
    });
    const put = await fetch(target, { method: 'PUT', body: 'forged', credentials });
    return { post: creation.status, put: put.status };
  }, [c.credentials ? 'same-origin' : 'omit', args.put]);
  if (c.login && login) {
    await page.getByRole('link', { name: login.text }).click();
    await page.waitForSelector('#up:not([hidden])', { timeout: 10_000 });
    out.loggedIn = { path: new URL(page.url()).pathname, picker: await page.locator(PICKER).count() };
  }
  await context.close();
  return out;
}

// The upload controls, on a page opened through a capability link: several
// files at once, pause, cancel, a browser restarted mid-upload, and a link
// that expires while its page is open.
async function controls() {
  const out = {};
  // A link that expires in a few seconds, asked for only now that the
  // browser is up: its page is opened at once and used last, when the
  // link has expired. The refusal (401) makes a browser ask for a user
  // name and password; this visitor has none to give (a headless browser
  // would wait for the prompt forever).
  const commands = L.commands();
  L.emit({ event: 'link' });
  const { url: expiring, expiresAt } = JSON.parse(await commands.next(10_000, 'the link'));
  const late = await openUploads({ httpCredentials: { username: 'visitor', password: 'none' } }, expiring, 0);

  const { rec, page } = await openUploads({}, args.url, args.rate);
  await page.setInputFiles(PICKER, args.three.map((f) => f.path));
  for (const f of args.three) await waitDone(page, f.name);
  for (const f of args.three) await L.waitFor(() => L.listed(page, f.name), 5000, `${f.name} listed`);
  out.three = { seen: await L.seen(page), tus: rec.tus.splice(0), stored: await L.stored(page) };

  const pause = args.pause;
  await L.throttleUpload(page, args.slow);
  await page.setInputFiles(PICKER, pause.path);
  await waitProgress(page, 20, pause.name);
  await page.getByRole('button', { name: `Pause ${pause.name}` }).click();
  await L.waitFor(async () => /^Paused at/.test(await L.statusOf(page, pause.name)), 5000, '"Paused at"');
  const [url] = await L.stored(page);
  const a = await L.tusHead(url);
  await L.sleep(1000);
  const b = await L.tusHead(url);
  out.pause = { text: await L.statusOf(page, pause.name), bar: await L.progressOf(page, pause.name), a, b };
  await page.getByRole('button', { name: `Resume ${pause.name}` }).click();
  await waitDone(page, pause.name);
  out.pause.tus = rec.tus.splice(0);

  const cancel = args.cancel;
  await page.setInputFiles(PICKER, cancel.path);
  await waitProgress(page, 10, cancel.name);
  const [doomed] = await L.stored(page);
  await page.getByRole('button', { name: `Cancel ${cancel.name}` }).click();
  await L.waitFor(() => rec.tus.some((e) => e.method === 'DELETE' && e.status), 10_000, 'the DELETE');
  out.cancel = {
    tus: rec.tus.splice(0), rows: await L.item(page, cancel.name).count(),
    stored: await L.stored(page), head: await L.tusHead(doomed),
  };

  // An upload the server no longer knows (expired, or ended elsewhere):
  // the stored URL answers 404, and the page starts again from byte 0.
  const lost = args.forgotten;
  await page.setInputFiles(PICKER, lost.path);
  await waitProgress(page, 10, lost.name);
  const [gone] = await L.stored(page);
  await rec.collect(page);
  await page.close();
  const ended = await fetch(gone, { method: 'DELETE', headers: { 'Tus-Resumable': '1.0.0' } });
  const fresh = await page.context().newPage();
  await ready(fresh, args.url, 0);
  const storedBefore = await L.stored(fresh);
  await fresh.setInputFiles(PICKER, lost.path);
  await waitDone(fresh, lost.name);
  out.forgotten = { ended: ended.status, gone, storedBefore, tus: rec.tus.splice(0), stored: await L.stored(fresh) };
  await rec.collect(fresh);

  // The browser closed mid-upload and started again on the same profile.
  const again = args.restart;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ranged-profile-'));
  let context = await L.launchOn(dir);
  const rec1 = L.record(context);
  let p = await context.newPage();
  await ready(p, args.url, args.slow);
  await p.setInputFiles(PICKER, again.path);
  await waitProgress(p, 30, again.name);
  const kept = await L.stored(p);
  await rec1.collect(p);
  await context.close();
  context = await L.launchOn(dir);
  const rec2 = L.record(context);
  p = await context.newPage();
  await ready(p, args.url, 0);
  const storedAfter = await L.stored(p);
  const server = kept.length === 1 ? await L.tusHead(kept[0]) : null;
  await p.setInputFiles(PICKER, again.path);
  await waitDone(p, again.name);
  await L.waitFor(() => L.listed(p, again.name), 5000, `${again.name} listed`);
  out.restart = { kept, storedAfter, server, tus: rec2.tus, stored: await L.stored(p) };
  await rec2.collect(p);
  await context.close();
  fs.rmSync(dir, { recursive: true, force: true });

  const lp = late.page;
  await L.waitFor(async () => Date.now() > expiresAt, 30_000, 'the link to expire');
  await lp.setInputFiles(PICKER, args.late.path);
  await L.waitFor(async () => (await L.stateOf(lp, args.late.name)) === 'fail', 10_000, 'the refusal shown');
  await L.sleep(2000); // a retry would come after 1 s
  out.expired = {
    state: await L.stateOf(lp, args.late.name), text: await L.statusOf(lp, args.late.name),
    tus: late.rec.tus, console: late.rec.console,
  };
  await late.rec.collect(lp);
  out.health = [health(rec), health(rec1), health(rec2),
    { ...health(late.rec), console: [] }];
  return out;
}

const scenarios = { listing, upload, kill, reload, readonly, controls };
try {
  if (!scenarios[scenario]) throw new Error(`unknown scenario ${scenario}`);
  const t0 = Date.now();
  const result = await scenarios[scenario]();
  result.wallMs = Date.now() - t0;
  L.emit({ result });
  await browser.close();
  clearTimeout(deadline);
  process.exit(0);
} catch (e) {
  L.emit({ error: String(e && e.stack ? e.stack : e) });
  await Promise.race([browser.close().catch(() => {}), L.sleep(5000)]);
  process.exit(1);
}
