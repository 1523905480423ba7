// Shared by the browser scenarios (page.mjs): Debian's Chromium launched by
// playwright-core, a recorder for what a page shows its user and what it
// sends, and small waiting helpers. Every wait is bounded.
import { chromium } from 'playwright-core';
import crypto from 'node:crypto';

export const CHROMIUM = '/usr/bin/chromium';
export const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
export const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };
export const DESKTOP = { viewport: { width: 1200, height: 800 } };

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(fn, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(25);
  }
}

export const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');

/// A browser with a fresh profile (Playwright gives launch() a new
/// temporary --user-data-dir and removes it on close).
export const launch = () => chromium.launch({ executablePath: CHROMIUM, args: ARGS });

/// A browser on the profile folder `dir`: closed and launched again on the
/// same folder, it keeps localStorage, as a restarted browser does.
export const launchOn = (dir, options = {}) =>
  chromium.launchPersistentContext(dir, { executablePath: CHROMIUM, args: ARGS, ...DESKTOP, ...options });

const num = (v) => (v === undefined || v === null ? null : Number(v));
const TUS = ['POST', 'HEAD', 'PATCH', 'DELETE'];

// Runs in every document before its own scripts: Content-Security-Policy
// violations as the page itself sees them (the `securitypolicyviolation`
// event; the policy has no report-uri, this is its report).
function cspProbe() {
  window.__csp = [];
  document.addEventListener('securitypolicyviolation', (e) => {
    window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'} at ${e.sourceFile}:${e.lineNumber}`);
  });
}

/// Records, for every page of `context`: console errors and warnings,
/// uncaught exceptions, CSP violations, failed page loads, and the tus
/// requests (method, status, offsets, body length) as the browser sent them.
export function record(context) {
  const rec = { console: [], pageErrors: [], csp: [], tus: [], documents: [] };
  context.addInitScript(cspProbe);
  const watch = (page) => {
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') {
        rec.console.push(`${m.type()}: ${m.text()} (${m.location().url})`);
      }
    });
    page.on('pageerror', (e) => rec.pageErrors.push(String(e)));
    page.on('response', (r) => {
      if (r.request().resourceType() === 'document') {
        rec.documents.push({ url: r.url(), status: r.status(), csp: r.headers()['content-security-policy'] || null });
      }
    });
    const tus = (q) => TUS.includes(q.method()) && ['xhr', 'fetch'].includes(q.resourceType());
    page.on('requestfinished', async (q) => {
      if (!tus(q)) return;
      const entry = { method: q.method(), url: q.url(), status: 0, t: Date.now() };
      rec.tus.push(entry);
      try {
        const r = await q.response();
        const qh = await q.allHeaders();
        const h = r ? await r.allHeaders() : {};
        Object.assign(entry, {
          status: r ? r.status() : 0,
          reqOffset: num(qh['upload-offset']),
          length: num(qh['content-length']),
          respOffset: num(h['upload-offset']),
          location: h.location || null,
        });
      } catch (e) {
        entry.failure = `closed before its headers were read: ${e.message}`;
      }
    });
    page.on('requestfailed', (q) => {
      if (!tus(q)) return;
      rec.tus.push({ method: q.method(), url: q.url(), status: 0, t: Date.now(),
        reqOffset: num(q.headers()['upload-offset']), failure: q.failure()?.errorText });
    });
  };
  context.pages().forEach(watch);
  context.on('page', watch);
  /// Collects the CSP violations a page saw; call before it navigates away.
  rec.collect = async (page) => {
    rec.csp.push(...(await page.evaluate(() => window.__csp || []).catch(() => [])));
  };
  return rec;
}

/// Slows what this page sends to `bytesPerSecond` (DevTools network
/// emulation), so that an upload over loopback lasts long enough to be
/// watched and interrupted; 0 lifts the limit.
export async function throttleUpload(page, bytesPerSecond) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false, latency: 0, downloadThroughput: -1,
    uploadThroughput: bytesPerSecond > 0 ? bytesPerSecond : -1,
  });
  return cdp;
}

/// The upload row of `name` on the folder page.
export const item = (page, name) => page.locator('#up li', { has: page.locator('span', { hasText: name }) });
export const stateOf = (page, name) => item(page, name).getAttribute('class', { timeout: 1000 }).catch(() => null);
export const statusOf = (page, name) => item(page, name).locator('small').textContent({ timeout: 1000 }).catch(() => '');
export const progressOf = (page, name) =>
  item(page, name).locator('progress').evaluate((e) => e.value, null, { timeout: 1000 }).catch(() => -1);

/// Every distinct value the page's progress bars take and every status text
/// it shows, as they change (a MutationObserver in the page: `progress.value`
/// reflects to its attribute), in order; and the most uploads running at once.
export async function watchUploads(page) {
  await page.evaluate(() => {
    window.__seen = { values: [], texts: [], maxRunning: 0 };
    const list = document.querySelector('#up ul');
    const note = () => {
      const s = window.__seen;
      s.maxRunning = Math.max(s.maxRunning, list.querySelectorAll('li.run').length);
      for (const li of list.querySelectorAll('li')) {
        const v = li.querySelector('progress').value;
        const t = li.querySelector('small').textContent;
        if (s.values[s.values.length - 1] !== v) s.values.push(v);
        if (s.texts[s.texts.length - 1] !== t) s.texts.push(t);
      }
    };
    new MutationObserver(note).observe(list, { subtree: true, childList: true, attributes: true, characterData: true });
  });
}
export const seen = (page) => page.evaluate(() => window.__seen);

/// Whether `name` was published and is listed: the page refreshes its table
/// after an upload ends.
export const listed = (page, name) =>
  page.locator('tbody td:first-child > a:first-child', { hasText: name }).count().then((n) => n > 0);

/// Answers of a tus HEAD for an upload URL, from outside the browser.
export async function tusHead(url) {
  const r = await fetch(url, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
  const o = r.headers.get('upload-offset');
  return { status: r.status, offset: o === null ? null : Number(o), length: num(r.headers.get('upload-length')) };
}

/// Stored upload URLs of the page's origin (the page keeps one per unfinished upload).
export const stored = (page) =>
  page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('ranged-upload ')).map((k) => localStorage.getItem(k)));

/// One line of JSON on stdout per event; the Rust test reads them.
export const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

/// Lines the Rust test writes on stdin, one at a time.
export function commands() {
  const waiting = [];
  const queued = [];
  let buf = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const w = waiting.shift();
      if (w) w(line);
      else queued.push(line);
    }
  });
  return {
    next: (ms, what) => new Promise((resolve, reject) => {
      if (queued.length) return resolve(queued.shift());
      const timer = setTimeout(() => reject(new Error(`no "${what}" from the test within ${ms} ms`)), ms);
      waiting.push((line) => { clearTimeout(timer); resolve(line); });
    }),
  };
}
