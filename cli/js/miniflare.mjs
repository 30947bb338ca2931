// Runs the built edge Worker in Miniflare (workerd from npm) for the tests:
// the Worker with its queue producers and consumer, plus a small drain that
// posts every dead-letter message to a collector URL so tests can count them.
//
//   node miniflare.mjs <build-dir> '<json options>'
// options: { port, bindings: {NAME: "value"}, maxRetries, maxBatchSize, dlqSink, deadLetterQueue (default true) }
// Prints {"url": "..."} on one line once ready; stops when stdin closes.
import { pathToFileURL } from "node:url";

// Miniflare comes with wrangler in the bootstrap's npm folder (EDGEHOSE_NPM).
const { Miniflare, convertV4MiniflareOptions } = await import(
  pathToFileURL(`${process.env.EDGEHOSE_NPM}/node_modules/miniflare/dist/src/index.js`).href
);

const [buildDir, json] = process.argv.slice(2);
const opts = JSON.parse(json);

const dlqDrain = `
export default {
  async queue(batch, env) {
    for (const m of batch.messages) {
      const r = await fetch(env.SINK, { method: "POST", body: String(m.body) });
      if (r.ok) m.ack(); else m.retry();
    }
  },
};`;

// Written in Miniflare 4's option shape, which Miniflare 5 converts.
const mf = new Miniflare(convertV4MiniflareOptions({
  host: "127.0.0.1",
  port: opts.port,
  workers: [
    {
      name: "edgehose",
      modulesRoot: buildDir,
      modules: [
        { type: "ESModule", path: `${buildDir}/index.js` },
        { type: "CompiledWasm", path: `${buildDir}/index_bg.wasm` },
      ],
      compatibilityDate: "2026-11-01",
      bindings: opts.bindings,
      queueProducers:
        opts.deadLetterQueue === false
          ? { EVENTS_QUEUE: "edgehose-events" }
          : { EVENTS_QUEUE: "edgehose-events", DEAD_LETTER_QUEUE: "edgehose-events-dlq" },
      queueConsumers: {
        "edgehose-events": {
          maxBatchSize: opts.maxBatchSize ?? 100,
          maxBatchTimeout: 1,
          maxRetries: opts.maxRetries ?? 3,
          deadLetterQueue: "edgehose-events-dlq",
        },
      },
    },
    {
      name: "dlq-drain",
      modules: true,
      script: dlqDrain,
      compatibilityDate: "2026-11-01",
      bindings: { SINK: opts.dlqSink ?? "http://127.0.0.1:9/unset" },
      queueConsumers: { "edgehose-events-dlq": { maxBatchSize: 100, maxBatchTimeout: 1, maxRetries: 10 } },
    },
  ],
}));

const url = await mf.ready;
console.log(JSON.stringify({ url: url.toString() }));
process.stdin.on("end", async () => {
  await mf.dispose();
  process.exit(0);
});
process.stdin.resume();
