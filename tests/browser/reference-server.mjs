// A stand-in for ranged's upload side, for checking assets/page.js in a
// browser: @tus/server (the tus project's own Node server) behind a tiny
// router that serves a folder page shaped like src/listing.rs's output.
//
// It is strict where ranged is, so the checks mean something:
// - the folder page is sent with `Content-Security-Policy: default-src 'self'`;
// - creation (POST to the folder URL) needs `?token=<TOKEN>`, the token the
//   page carries in data-token (401 otherwise);
// - upload URLs carry a query (`?sig=…`) that every HEAD/PATCH/DELETE must
//   echo (403 otherwise): the client must use Location as given;
// - a finished upload is published in the folder under its Upload-Metadata
//   filename (decoded as UTF-8) and appears in the listing.
//
// `node reference-server.mjs` runs it alone and prints the folder URL.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { Server } from '@tus/server';
import { FileStore } from '@tus/file-store';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ASSETS = path.resolve(HERE, '../../assets');
export const FOLDER = '/drop/';
export const TOKEN = 'tok en/é&"';
const SIG = 's3';

const escapeHtml = (s) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const encodeName = (s) =>
  Array.from(new TextEncoder().encode(s), (b) =>
    /[A-Za-z0-9\-._~]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : '%' + b.toString(16).toUpperCase().padStart(2, '0'),
  ).join('');

function page(published) {
  const rows = fs
    .readdirSync(published)
    .sort()
    .map((n) => {
      const size = fs.statSync(path.join(published, n)).size;
      return `<tr><td><a href="${encodeName(n)}">${escapeHtml(n)}</a></td><td title="${size} bytes">${size} B</td><td>-</td></tr>\n`;
    })
    .join('');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Index of ${FOLDER}</title>
<link rel="stylesheet" href="/.ranged/page.css">
<script src="/.ranged/page.js" defer></script>
</head>
<body>
<nav aria-label="Folder"><h1><a href="/">/</a><a href="${FOLDER}" aria-current="page">drop</a></h1></nav>
<section id="up" hidden data-token="${escapeHtml(TOKEN)}"><label>Upload files <input type="file" multiple></label> <span>or drop them on this page</span>
<ul></ul></section>
<table>
<thead><tr><th aria-sort="ascending"><a href="?sort=name&amp;order=desc">Name</a></th><th>Size</th><th>Modified (UTC)</th></tr></thead>
<tbody>
${rows}</tbody>
</table>
</body>
</html>
`;
}

/// Starts the server on 127.0.0.1 (port 0 = any). Returns { url, port,
/// published, faults, close }. `faults.create` / `faults.patch`: a status to
/// answer the next creation / PATCH with instead of handling it.
export async function startReference({ port = 0 } = {}) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ranged-tus-ref-'));
  const store = path.join(root, 'store');
  const published = path.join(root, 'published');
  fs.mkdirSync(published);
  const faults = { create: 0, patch: 0 };
  const tus = new Server({
    path: '/.uploads',
    datastore: new FileStore({ directory: store }),
    generateUrl: (_req, { path: p, id }) => `${p}/${id}?sig=${SIG}`,
    getFileIdFromRequest: (req) => new URL(req.url).pathname.split('/').pop() || undefined,
    async onUploadFinish(_req, upload) {
      const name = upload.metadata?.filename;
      if (name && !name.includes('/') && name !== '.' && name !== '..') {
        fs.copyFileSync(path.join(store, upload.id), path.join(published, name));
      }
      return {};
    },
  });
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    const send = (status, type, body, extra = {}) => {
      res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store', ...extra });
      res.end(body);
    };
    try {
      if (url.pathname.startsWith('/.ranged/') && req.method === 'GET') {
        const name = url.pathname.slice('/.ranged/'.length);
        if (!['page.js', 'page.css'].includes(name)) return send(404, 'text/plain', 'no\n');
        const type = name.endsWith('.js') ? 'text/javascript; charset=utf-8' : 'text/css; charset=utf-8';
        return send(200, type, fs.readFileSync(path.join(ASSETS, name)));
      }
      if (url.pathname === FOLDER && req.method === 'GET') {
        return send(200, 'text/html; charset=utf-8', page(published), {
          'Content-Security-Policy': "default-src 'self'",
        });
      }
      if (url.pathname.startsWith(FOLDER) && req.method === 'GET') {
        const name = decodeURIComponent(url.pathname.slice(FOLDER.length));
        const file = path.join(published, name);
        if (name.includes('/') || !fs.existsSync(file)) return send(404, 'text/plain', 'no\n');
        return send(200, 'application/octet-stream', fs.readFileSync(file));
      }
      const faulty = (status) => {
        // Answer without reading the body, as a failing proxy would.
        res.writeHead(status, { 'Content-Type': 'text/plain', Connection: 'close', 'Tus-Resumable': '1.0.0' });
        res.end(`injected ${status}\n`);
        req.destroy();
      };
      if (url.pathname === FOLDER && req.method === 'POST') {
        if (url.searchParams.get('token') !== TOKEN) return send(401, 'text/plain', 'token required\n');
        if (faults.create) return faulty(faults.create);
        return await tus.handle(req, res);
      }
      if (url.pathname.startsWith('/.uploads/')) {
        if (url.searchParams.get('sig') !== SIG) return send(403, 'text/plain', 'the upload URL lost its query\n');
        if (req.method === 'PATCH' && faults.patch) {
          const status = faults.patch;
          faults.patch = 0;
          return faulty(status);
        }
        return await tus.handle(req, res);
      }
      send(404, 'text/plain', 'not found\n');
    } catch (e) {
      if (!res.headersSent) send(500, 'text/plain', String(e));
    }
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  const actual = server.address().port;
  return {
    url: `http://127.0.0.1:${actual}${FOLDER}`,
    port: actual,
    published,
    faults,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          fs.rmSync(root, { recursive: true, force: true });
          resolve();
        });
      }),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const ref = await startReference({ port: Number(process.argv[2] || 0) });
  console.log(ref.url);
}
