// Runs the built edge Worker in Miniflare (workerd from npm) for the tests:
// the Worker with its queue producers and consumer, plus a small drain that
// posts every dead-letter message to a collector URL so tests can count them.
//
//   node miniflare.mjs <build-dir> '<json options>'
// options: { port, bindings: {NAME: "value"}, maxRetries, maxBatchSize, dlqSink, deadLetterQueue (default true), persist (a directory: R2 kept across restarts),
//            inspectorPort (the Worker's DevTools inspector on that port, 0: any free one; off when absent),
//            queueWriteMs (each write to a queue takes this long, as a write to Cloudflare's
//            Queues storage does; 0 or absent: at once),
//            queueShards (events queues EVENTS_QUEUE, EVENTS_QUEUE_1, …, each with its consumer; default 1),
//            refuseQueues (bindings whose every send and sendBatch throws, as a queue over its limits does) }
// With a dlqSink, a small drain posts every dead-letter message there (tests count them); without
// one, the Worker consumes its dead-letter queue itself and archives it in its DEAD_LETTERS bucket.
// Prints {"url": "...", "control": "...", "inspector": "ws://…/edgehose" (when on)} on one line once ready; stops when stdin closes.
// The control URL takes `POST /queues/<BINDING>`: the body is sent to that
// queue as one message, as bytes when its content type is
// application/octet-stream, else as text (what another producer might send).
import http from "node:http";
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

// A queue write's round trip: Cloudflare's Queues resolve `send` and
// `sendBatch` once the messages are written to the queue's storage, ~60 ms at
// the median (Cloudflare's blog, 2024-10-24, "Durable Objects aren't just
// durable, they're fast"), where Miniflare's resolve at once. This entry
// module runs the built Worker with its queue producers wrapped so that each
// write takes queueWriteMs: half on the way to the storage, half for the
// confirmation back; and so that the bindings refuseQueues names throw, as a
// queue over its limits does. The class keeps the binding's constructor name,
// which the worker crate checks.
const shards = Math.max(1, Number(opts.queueShards ?? 1));
const eventsQueues = Array.from({ length: shards }, (_, k) =>
  k === 0 ? ["EVENTS_QUEUE", "edgehose-events"] : [`EVENTS_QUEUE_${k}`, `edgehose-events-${k}`]);
const refuse = opts.refuseQueues ?? [];
const queueWrapper = (ms) => `
import Worker from "./index.js";
const HALF = ${Number(ms) / 2};
const REFUSE = ${JSON.stringify(refuse)};
const half = () => (HALF > 0 ? new Promise((ok) => setTimeout(ok, HALF)) : Promise.resolve());
class WorkerQueue {
  constructor(inner, refuses) { this.inner = inner; this.refuses = refuses; }
  check() { if (this.refuses) throw new Error("Queue sendBatch failed: Too Many Requests (injected)"); }
  async send(body, options) { await half(); this.check(); const r = await this.inner.send(body, options); await half(); return r; }
  async sendBatch(messages, options) { await half(); this.check(); const r = await this.inner.sendBatch(messages, options); await half(); return r; }
}
const wrap = (env) => {
  const out = { ...env };
  for (const name of [${eventsQueues.map(([b]) => JSON.stringify(b)).join(", ")}, "DEAD_LETTER_QUEUE"])
    if (env[name]) out[name] = new WorkerQueue(env[name], REFUSE.includes(name));
  return out;
};
// worker-build's entry is a WorkerEntrypoint class: the subclass hands it the wrapped bindings.
if (typeof Worker !== "function") throw new Error("the built Worker's default export is not an entrypoint class");
export default class extends Worker { constructor(ctx, env) { super(ctx, wrap(env)); } }
`;
const delayed = Number(opts.queueWriteMs ?? 0) > 0 || refuse.length > 0;

// Written in Miniflare 4's option shape, which Miniflare 5 converts.
const mf = new Miniflare(convertV4MiniflareOptions({
  host: "127.0.0.1",
  port: opts.port,
  workers: [
    {
      name: "edgehose",
      modulesRoot: buildDir,
      modules: [
        ...(delayed ? [{ type: "ESModule", path: `${buildDir}/queue-wrapper.mjs`, contents: queueWrapper(opts.queueWriteMs ?? 0) }] : []),
        { type: "ESModule", path: `${buildDir}/index.js` },
        { type: "CompiledWasm", path: `${buildDir}/index_bg.wasm` },
      ],
      compatibilityDate: "2026-11-01",
      bindings: opts.bindings,
      ...(opts.inspectorPort != null ? { unsafeInspectorProxy: true } : {}),
      queueProducers: {
        ...(opts.eventsQueue === false ? {} : Object.fromEntries(eventsQueues)),
        ...(opts.deadLetterQueue === false ? {} : { DEAD_LETTER_QUEUE: "edgehose-events-dlq" }),
      },
      r2Buckets: ["DEAD_LETTERS"],
      queueConsumers: {
        ...Object.fromEntries(eventsQueues.map(([, queue]) => [queue, {
          maxBatchSize: opts.maxBatchSize ?? 100,
          maxBatchTimeout: 1,
          maxRetries: opts.maxRetries ?? 3,
          ...(opts.deadLetterQueue === false ? {} : { deadLetterQueue: "edgehose-events-dlq" }),
        }])),
        ...(opts.dlqSink ? {} : { "edgehose-events-dlq": { maxBatchSize: 100, maxBatchTimeout: 1, maxRetries: 10 } }),
      },
    },
    ...(opts.dlqSink
      ? [
          {
            name: "dlq-drain",
            modules: true,
            script: dlqDrain,
            compatibilityDate: "2026-11-01",
            bindings: { SINK: opts.dlqSink },
            queueConsumers: { "edgehose-events-dlq": { maxBatchSize: 100, maxBatchTimeout: 1, maxRetries: 10 } },
          },
        ]
      : []),
  ],
  ...(opts.persist ? { resourcePersistencePath: opts.persist } : {}),
  ...(opts.inspectorPort != null ? { inspectorPort: opts.inspectorPort } : {}),
}));

const url = await mf.ready;
let bindings;
const control = http.createServer(async (req, res) => {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const body = Buffer.concat(chunks);
  const queue = /^\/queues\/([A-Z_]+)$/.exec(req.url ?? "");
  try {
    if (req.method === "POST" && queue) {
      bindings ??= await mf.getBindings("edgehose");
      const binding = bindings[queue[1]];
      if (req.headers["content-type"] === "application/octet-stream") {
        await binding.send(new Uint8Array(body), { contentType: "bytes" });
      } else {
        await binding.send(body.toString("utf8"), { contentType: "text" });
      }
      res.end("sent");
      return;
    }
    res.statusCode = 404;
    res.end("unknown control route");
  } catch (e) {
    res.statusCode = 500;
    res.end(String(e));
  }
});
await new Promise((resolve) => control.listen(0, "127.0.0.1", resolve));
const inspector = opts.inspectorPort != null ? new URL("edgehose", await mf.getInspectorURL()).href : undefined;
console.log(JSON.stringify({ url: url.toString(), control: `http://127.0.0.1:${control.address().port}`, inspector }));
process.stdin.on("end", async () => {
  control.close();
  await mf.dispose();
  process.exit(0);
});
process.stdin.resume();
