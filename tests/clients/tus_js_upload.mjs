// Uploads one file with tus-js-client under Node, resumable across
// processes: the upload URL is written to --url-file as soon as the server
// gives it, and a later run with the same --url-file resumes it
// (`uploadUrl`: tus-js-client asks the server for the offset with a HEAD).
//
//   node tests/clients/tus_js_upload.mjs --endpoint http://127.0.0.1:8080/in/ \
//     --file big.iso --name big.iso --url-file url.txt \
//     [--auth user:pass] [--chunk 524288] [--delay-ms 10]
//
// Prints one line per event, for a test to follow: `url URL`,
// `request METHOD OFFSET` before every request (OFFSET: its Upload-Offset,
// `-` if none), `offset N` after every accepted chunk, `done`; on failure
// `error MESSAGE` and exit code 1.
import fs from 'node:fs';
import * as tus from 'tus-js-client';

const opt = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const endpoint = opt('endpoint');
const file = opt('file');
const name = opt('name');
const urlFile = opt('url-file');
const auth = opt('auth', '');
const chunkSize = Number(opt('chunk', String(512 * 1024)));
const delayMs = Number(opt('delay-ms', '0'));
if (!endpoint || !file || !name || !urlFile) {
  console.error('usage: --endpoint URL --file PATH --name NAME --url-file PATH');
  process.exit(2);
}

const saved = fs.existsSync(urlFile) ? fs.readFileSync(urlFile, 'utf8').trim() : '';
const headers = {};
if (auth) headers.Authorization = `Basic ${Buffer.from(auth).toString('base64')}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const upload = new tus.Upload(fs.createReadStream(file), {
  endpoint,
  uploadUrl: saved || null,
  chunkSize,
  metadata: { filename: name },
  headers,
  retryDelays: [0, 500, 1000],
  onUploadUrlAvailable() {
    fs.writeFileSync(urlFile, upload.url);
    console.log(`url ${upload.url}`);
  },
  async onBeforeRequest(req) {
    console.log(`request ${req.getMethod()} ${req.getHeader('Upload-Offset') ?? '-'}`);
    if (req.getMethod() === 'PATCH' && delayMs > 0) await sleep(delayMs);
  },
  onChunkComplete(_size, accepted) {
    console.log(`offset ${accepted}`);
  },
  onSuccess() {
    console.log('done');
  },
  onError(err) {
    console.log(`error ${err.message.split('\n')[0]}`);
    process.exitCode = 1;
  },
});
upload.start();
