// The tus peer of make bench: the official @tus/server with its FileStore,
// as its README shows it, on 127.0.0.1:PORT under /files, storing in DIR.
//   node bench/tus-server.mjs PORT DIR
// The packages are the pinned ones in tests/node_modules (make tools).
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const [port, directory] = process.argv.slice(2);
if (!port || !directory) {
  console.error("usage: node bench/tus-server.mjs PORT DIR");
  process.exit(2);
}
// bench/ has no node_modules of its own: resolve from the tests' package.
const require = createRequire(new URL("../tests/package.json", import.meta.url));
const load = (name) => import(pathToFileURL(require.resolve(name)).href);
const { Server } = await load("@tus/server");
const { FileStore } = await load("@tus/file-store");

const server = new Server({ path: "/files", datastore: new FileStore({ directory }) });
server.listen({ host: "127.0.0.1", port: Number(port) });
process.on("SIGTERM", () => process.exit(0));
