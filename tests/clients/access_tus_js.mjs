// Uploads FILE as NAME with tus-js-client (tus 1.0, under Node) and prints
// the upload URL the server gave. Credentials, if any, come from
// ACCESS_AUTHORIZATION (an `Authorization` value) and are sent as a header,
// as tus-js-client's users do.
//
//   node access_tus_js.mjs ENDPOINT FILE NAME
import tus from 'tus-js-client';
import fs from 'node:fs';

const [endpoint, file, name] = process.argv.slice(2);
const headers = {};
if (process.env.ACCESS_AUTHORIZATION) headers.Authorization = process.env.ACCESS_AUTHORIZATION;
const upload = new tus.Upload(fs.readFileSync(file), {
  endpoint,
  headers,
  metadata: { filename: name },
  chunkSize: 1 << 20,
  retryDelays: [],
  onError(e) {
    console.error(`upload failed: ${e.message}`);
    process.exit(1);
  },
  onSuccess() {
    console.log(upload.url);
    process.exit(0);
  },
});
upload.start();
