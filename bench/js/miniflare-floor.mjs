// Runs one of the floor Workers of this folder in Miniflare, the way
// `edgehose dev` runs the edge Worker (same entry, same Queues emulation).
//
//   node miniflare-floor.mjs <worker.mjs>
// Prints {"url": "..."} once ready; stops when stdin closes.
import { dirname } from "node:path";
import { pathToFileURL } from "node:url";

const { Miniflare, convertV4MiniflareOptions } = await import(
  pathToFileURL(`${process.env.EDGEHOSE_NPM}/node_modules/miniflare/dist/src/index.js`).href
);

const mf = new Miniflare(
  convertV4MiniflareOptions({
    host: "127.0.0.1",
    port: 0,
    modulesRoot: dirname(process.argv[2]),
    modules: [{ type: "ESModule", path: process.argv[2] }],
    compatibilityDate: "2026-11-01",
    queueProducers: { EVENTS_QUEUE: "edgehose-events" },
    queueConsumers: { "edgehose-events": { maxBatchSize: 100, maxBatchTimeout: 1 } },
  }),
);

const url = await mf.ready;
console.log(JSON.stringify({ url: url.toString() }));
process.stdin.on("end", async () => {
  await mf.dispose();
  process.exit(0);
});
process.stdin.resume();
