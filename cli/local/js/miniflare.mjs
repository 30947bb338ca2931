// Runs the built edge Worker in Miniflare (workerd from npm) for the tests
// and `edgehose dev`: the Worker with its queue producers and consumers and
// its DEAD_LETTERS bucket, behind an entry module that makes Cloudflare's
// side fail as it does in production (below).
//
//   node miniflare.mjs <build-dir> '<json options>'
// options: { port, bindings: {NAME: "value"}, maxRetries, maxBatchSize, deadLetterQueue (default true),
//            deadLettersBucket (default true), persist (a directory: R2 kept across restarts),
//            inspectorPort (the Worker's DevTools inspector on that port, 0: any free one; off when absent),
//            queueWriteMs (each write to a queue takes this long, as a write to Cloudflare's
//            Queues storage does; 0 or absent: at once),
//            queueShards (events queues EVENTS_QUEUE, EVENTS_QUEUE_1, …, each with its consumer; default 1),
//            refuseQueues (bindings whose every send and sendBatch throws, as a queue over its limits does),
//            regions (residency regions, e.g. ["eu", "us"]: each its own events queues EU_EVENTS_QUEUE, …
//            named edgehose-events-eu, …, its dead-letter queue edgehose-events-dlq-eu and its
//            EU_DEAD_LETTERS bucket, as REGIONS expects; without it, one set unprefixed),
//            cloudflareFaults (the fault plan to start with: see the wrapper below) }
// The Worker consumes its dead-letter queue itself and archives it in its DEAD_LETTERS bucket.
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

// Cloudflare's side, failing as it does in production, around the built
// Worker, which runs unchanged: this entry module hands it wrapped bindings
// and a wrapped context instead of changing what `wrangler deploy` uploads.
//  - Queues: each write takes queueWriteMs (Cloudflare resolves `send` and
//    `sendBatch` once the messages are written to the queue's storage, ~60 ms
//    at the median: Cloudflare's blog, 2024-10-24, "Durable Objects aren't
//    just durable, they're fast"; Miniflare's resolve at once), plus any
//    stall; a share of writes, or every write during an outage, throws
//    "Too Many Requests", as a queue past its 5,000 messages a second does.
//  - R2: a share of puts, or every put during an outage, throws as an R2
//    incident does (10043 ServiceUnavailable); puts can stall.
//  - waitUntil: every promise handed to it is watched; one still pending 30 s
//    after its response would be cancelled in production, and is reported as
//    cut (`GET /_edgehose/faults` counts them; tests and the soak fail on any).
//  - Memory: the Worker's wasm memory is read after requests (at most every
//    200 ms, through /healthz with its ADMIN_KEY) and held against a ceiling
//    (128 MB, an isolate's limit).
// `PUT /_edgehose/faults` (JSON, snake_case, any subset) changes the plan at
// run time; `GET` shows it with what it did. `POST /_edgehose/analytics/sql`
// queries the OUTCOMES dataset; `GET /_edgehose/queued?id=` finds an event
// still in a queue. `GET /_edgehose/r2?prefix=`
// lists the DEAD_LETTERS bucket's objects with their text; `PUT
// /_edgehose/r2?key=` stores one. The class keeps
// each queue binding's constructor name, which the worker crate checks.
const shards = Math.max(1, Number(opts.queueShards ?? 1));
// Each region's bindings and queues: [binding prefix, queue-name suffix].
const regionSets =
  (opts.regions ?? []).length > 0 ? opts.regions.map((r) => [`${r.toUpperCase()}_`, `-${r}`]) : [["", ""]];
// [binding, queue, its dead-letter queue]: a region's events queues have its own.
const eventsQueues = regionSets.flatMap(([p, s]) =>
  Array.from({ length: shards }, (_, k) =>
    k === 0
      ? [`${p}EVENTS_QUEUE`, `edgehose-events${s}`, `edgehose-events-dlq${s}`]
      : [`${p}EVENTS_QUEUE_${k}`, `edgehose-events${s}-${k}`, `edgehose-events-dlq${s}`],
  ),
);
const deadLetterQueues = regionSets.map(([p, s]) => [`${p}DEAD_LETTER_QUEUE`, `edgehose-events-dlq${s}`]);
const buckets = regionSets.map(([p]) => `${p}DEAD_LETTERS`);
const initialFaults = {
  queue_write_ms: Number(opts.queueWriteMs ?? 0),
  refuse_queues: opts.refuseQueues ?? [],
  ...(opts.cloudflareFaults ?? {}),
};
const wrapper = `
import Worker from "./index.js";
const WAIT_UNTIL_LIMIT_MS = 30000;
const QUEUES = ${JSON.stringify([...eventsQueues.map(([b]) => b), ...deadLetterQueues.map(([b]) => b)])};
const BUCKETS = ${JSON.stringify(buckets)};
const plan = {
  queue_write_ms: 0, queue_refuse: 0, queue_stall_ms: 0, queue_outage_secs: 0, refuse_queues: [], queues: null,
  r2_fail: 0, r2_stall_ms: 0, r2_outage_secs: 0, memory_ceiling_mb: 128,
};
// The edge stops waiting for a queue write after this long (QUEUE_WRITE_TIMEOUT_MS in
// shared/src/limits.rs) and sends the lines on another way: a write that still lands
// after it makes a second copy. Counted, so a run's duplicates have their cause.
const EDGE_QUEUE_WRITE_TIMEOUT_MS = ${Number(opts.queueWriteTimeoutMs ?? 10000)};
const stats = {
  sink_calls: 0, sink_calls_abandoned: 0,
  queue_writes: 0, queue_refused: 0, queue_stalled: 0, queue_write_longest_ms: 0, queue_writes_landed_late: 0,
  r2_puts: 0, r2_failed: 0, r2_stalled: 0, analytics_points: 0, analytics_refused: 0,
  wait_until: 0, wait_until_pending: 0, wait_until_cut: 0, wait_until_longest_ms: 0,
  wasm_memory_bytes: 0, wasm_memory_most_bytes: 0, over_memory_ceiling: 0,
};
let queueOutageUntil = 0, r2OutageUntil = 0, lastMemoryRead = 0;
// Calls to the sink, counted: one the edge abandons (its time ran out) may
// still be kept by the sink, and its records then land twice.
const sinkFetch = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  stats.sink_calls++;
  try {
    return await sinkFetch(input, init);
  } catch (e) {
    if (init?.signal?.aborted) stats.sink_calls_abandoned++;
    throw e;
  }
};
function setPlan(p) {
  for (const [k, v] of Object.entries(p)) {
    if (!(k in plan)) throw new Error("unknown fault " + k + "; known: " + Object.keys(plan).join(", "));
    plan[k] = v;
  }
  for (const k of ["queue_refuse", "r2_fail"])
    if (!(plan[k] >= 0 && plan[k] <= 1)) throw new Error(k + " is a share from 0 to 1, not " + plan[k]);
  if (p.queue_outage_secs) queueOutageUntil = Date.now() + 1000 * p.queue_outage_secs;
  if (p.r2_outage_secs) r2OutageUntil = Date.now() + 1000 * p.r2_outage_secs;
}
// The first plan is set by the first event: the global scope may not read the clock.
let planned = false;
const planOnce = () => {
  if (!planned) {
    planned = true;
    setPlan(${JSON.stringify(initialFaults)});
  }
};
const sleep = (ms) => (ms > 0 ? new Promise((ok) => setTimeout(ok, ms)) : Promise.resolve());
function queueFaults(name) {
  const scoped = plan.queues === null || plan.queues.includes(name);
  if (plan.refuse_queues.includes(name) || (scoped && (Date.now() < queueOutageUntil || Math.random() < plan.queue_refuse))) {
    stats.queue_refused++;
    throw new Error("Queue sendBatch failed: Too Many Requests (injected)");
  }
}
class WorkerQueue {
  constructor(inner, name) { this.inner = inner; this.name = name; }
  async write(call) {
    stats.queue_writes++;
    const at = Date.now();
    const half = plan.queue_write_ms / 2;
    const stall = (plan.queues === null || plan.queues.includes(this.name)) ? plan.queue_stall_ms : 0;
    if (stall > 0) stats.queue_stalled++;
    await sleep(half + stall);
    queueFaults(this.name);
    const r = await call();
    const took = Date.now() - at;
    stats.queue_write_longest_ms = Math.max(stats.queue_write_longest_ms, took);
    if (took > EDGE_QUEUE_WRITE_TIMEOUT_MS) stats.queue_writes_landed_late++;
    await sleep(half);
    return r;
  }
  send(body, options) { return this.write(() => this.inner.send(body, options)).then(() => enqueued([body])); }
  sendBatch(messages, options) {
    return this.write(() => this.inner.sendBatch(messages, options)).then(() => enqueued(messages.map((m) => m.body)));
  }
}
// What the Worker's queues hold now, by body: a body written counts until a
// consumer acks a message carrying it (the events queue's consumer, or the
// dead-letter queue's after Cloudflare moved it there). GET
// /_edgehose/queued?id= finds an event in it, as edgehose trace asks.
const queued = new Map();
function enqueued(bodies) {
  for (const b of bodies) if (typeof b === "string") queued.set(b, (queued.get(b) ?? 0) + 1);
}
function acked(body) {
  const n = queued.get(body);
  if (n === undefined) return;
  if (n <= 1) queued.delete(body); else queued.set(body, n - 1);
}
function queuedWith(id) {
  const found = [];
  for (const [body, copies] of queued) {
    const lines = body.split("\\n");
    const tries = /^#edgehose tries=(\\d+)$/.exec(lines[0] ?? "");
    for (const line of lines) {
      let v;
      try { v = JSON.parse(line); } catch { continue; }
      const inner = v?.envelope && typeof v.envelope === "object" ? v.envelope : v;
      if (v?.id === id || inner?.id === id) found.push({ line, copies, tries: tries ? Number(tries[1]) : 0 });
    }
  }
  return found;
}
// A queue batch whose acks are seen by the ledger above.
function watchedBatch(batch) {
  const messages = batch.messages.map((m) => ({
    get id() { return m.id; },
    get timestamp() { return m.timestamp; },
    get body() { return m.body; },
    get attempts() { return m.attempts; },
    ack() { acked(m.body); return m.ack(); },
    retry(options) { return m.retry(options); },
  }));
  return {
    get queue() { return batch.queue; },
    messages,
    ackAll() { for (const m of messages) m.ack(); },
    retryAll(options) { for (const m of messages) m.retry(options); },
  };
}
class Bucket {
  constructor(inner) { this.inner = inner; }
  async put(key, value, options) {
    stats.r2_puts++;
    if (plan.r2_stall_ms > 0) { stats.r2_stalled++; await sleep(plan.r2_stall_ms); }
    if (Date.now() < r2OutageUntil || Math.random() < plan.r2_fail) {
      stats.r2_failed++;
      throw new Error("put: We encountered an internal error. Please try again. (10043) (injected)");
    }
    return this.inner.put(key, value, options);
  }
  get(key, options) { return this.inner.get(key, options); }
  head(key) { return this.inner.head(key); }
  list(options) { return this.inner.list(options); }
  delete(keys) { return this.inner.delete(keys); }
}
// Workers Analytics Engine's OUTCOMES dataset, which Miniflare does not
// have: every data point written is kept (no sampling: _sample_interval is
// 1), a Worker invocation may write 250 (past that writeDataPoint throws, as
// the limits page says), and POST /_edgehose/analytics/sql answers the SQL
// API's JSON for the queries edgehose receipts makes (below).
const ANALYTICS_POINTS_PER_INVOCATION = 250;
const points = [];
class Dataset {
  constructor() { this.written = 0; }
  writeDataPoint(p) {
    if (++this.written > ANALYTICS_POINTS_PER_INVOCATION) {
      stats.analytics_refused++;
      throw new Error("writeDataPoint: this invocation already wrote " + ANALYTICS_POINTS_PER_INVOCATION + " data points (injected, as Analytics Engine's limit)");
    }
    const blobs = (p.blobs ?? []).map((b) => (b === null || b === undefined ? "" : String(b)));
    const doubles = (p.doubles ?? []).map(Number);
    points.push({ timestamp: Date.now(), index1: String(p.indexes?.[0] ?? ""), blobs, doubles });
    stats.analytics_points++;
  }
}
// The SQL the stand-in reads: SELECT items FROM dataset WHERE timestamp >=
// toDateTime(n) [AND timestamp < toDateTime(m)] GROUP BY … FORMAT JSON,
// items being blobN / index1 [AS a], SUM(_sample_interval * doubleN) AS a,
// SUM(_sample_interval * (_sample_interval - 1) * doubleN * doubleN) AS a,
// count() AS a, MAX(_sample_interval) AS a. Anything else is refused with
// 422, so a reader never gets an answer to a query it did not ask.
function sql(text) {
  const q = text.replace(/\\s+/g, " ").trim();
  const m = /^SELECT (.+) FROM (\\w+) WHERE (.+?) GROUP BY (.+?)(?: ORDER BY .+?)? FORMAT JSON$/i.exec(q);
  if (!m) throw new Error("the local Analytics Engine reads SELECT … FROM … WHERE … GROUP BY … FORMAT JSON only");
  const [, items, , where, groupBy] = m;
  let from = -Infinity, to = Infinity;
  for (const cond of where.split(/ AND /i)) {
    const c = /^timestamp (>=|<) toDateTime\\((\\d+)\\)$/i.exec(cond.trim());
    if (!c) throw new Error("unknown condition: " + cond);
    if (c[1] === ">=") from = 1000 * Number(c[2]); else to = 1000 * Number(c[2]);
  }
  const cols = items.split(",").map((item) => {
    const i = item.trim();
    let r;
    if ((r = /^(blob(\\d+)|index1)(?: AS (\\w+))?$/i.exec(i))) {
      const n = r[2] ? Number(r[2]) - 1 : null;
      return { name: r[3] ?? r[1], type: "String", key: true, of: (p) => (n === null ? p.index1 : p.blobs[n] ?? "") };
    }
    if ((r = /^SUM\\(_sample_interval \\* double(\\d+)\\) AS (\\w+)$/i.exec(i))) {
      const n = Number(r[1]) - 1;
      return { name: r[2], type: "Float64", sum: (p) => p.doubles[n] ?? 0 };
    }
    if ((r = /^SUM\\(_sample_interval \\* \\(_sample_interval - 1\\) \\* double(\\d+) \\* double\\1\\) AS (\\w+)$/i.exec(i))) {
      return { name: r[2], type: "Float64", sum: () => 0 };
    }
    if ((r = /^count\\(\\) AS (\\w+)$/i.exec(i))) return { name: r[1], type: "UInt64", sum: () => 1 };
    if ((r = /^MAX\\(_sample_interval\\) AS (\\w+)$/i.exec(i))) return { name: r[1], type: "UInt32", max: () => 1 };
    throw new Error("the local Analytics Engine does not read " + JSON.stringify(i));
  });
  const keys = groupBy.split(",").map((g) => g.trim());
  for (const k of keys) if (!cols.some((c) => c.key && c.name === k)) throw new Error("GROUP BY " + k + " names no selected blob");
  const groups = new Map();
  for (const p of points) {
    if (p.timestamp < from || p.timestamp >= to) continue;
    const id = JSON.stringify(cols.filter((c) => c.key).map((c) => c.of(p)));
    let row = groups.get(id);
    if (!row) {
      row = {};
      for (const c of cols) row[c.name] = c.key ? c.of(p) : 0;
      groups.set(id, row);
    }
    for (const c of cols) {
      if (c.sum) row[c.name] += c.sum(p);
      if (c.max) row[c.name] = Math.max(row[c.name], c.max(p));
    }
  }
  const data = [...groups.values()];
  return { meta: cols.map((c) => ({ name: c.name, type: c.type })), data, rows: data.length };
}
const wrap = (env) => {
  const out = { ...env };
  for (const name of QUEUES) if (env[name]) out[name] = new WorkerQueue(env[name], name);
  for (const name of BUCKETS) if (env[name]) out[name] = new Bucket(env[name]);
  // One per invocation: each counts its own writes against the limit.
  out.OUTCOMES = new Dataset();
  return out;
};
let pending = 0;
const watch = (ctx) => ({
  waitUntil(promise) {
    const at = Date.now();
    let settled = false;
    stats.wait_until++;
    stats.wait_until_pending = ++pending;
    // Still pending 30 s after its response: production would have cut it off.
    const cut = setTimeout(() => {
      if (settled) return;
      stats.wait_until_cut++;
      console.error("edgehose-local: a waitUntil promise was still pending " + (Date.now() - at) + " ms after its response: production would have cancelled it (CUT)");
    }, WAIT_UNTIL_LIMIT_MS);
    const done = () => {
      settled = true;
      clearTimeout(cut);
      stats.wait_until_pending = --pending;
      stats.wait_until_longest_ms = Math.max(stats.wait_until_longest_ms, Date.now() - at);
    };
    Promise.resolve(promise).then(done, done);
    return ctx.waitUntil(promise);
  },
  passThroughOnException() { return ctx.passThroughOnException(); },
  get props() { return ctx.props; },
});
async function readMemory(worker, url, adminKey) {
  const now = Date.now();
  if (!adminKey || now - lastMemoryRead < 200) return;
  lastMemoryRead = now;
  // The isolate's figures are shown for the admin key only.
  const headers = { authorization: "Bearer " + adminKey };
  const r = await Worker.prototype.fetch.call(worker, new Request(new URL("/healthz", url), { headers }));
  const bytes = (await r.json().catch(() => ({})))?.isolate?.wasm_memory_bytes;
  if (typeof bytes !== "number") return;
  stats.wasm_memory_bytes = bytes;
  stats.wasm_memory_most_bytes = Math.max(stats.wasm_memory_most_bytes, bytes);
  if (bytes > plan.memory_ceiling_mb * 1024 * 1024) {
    stats.over_memory_ceiling++;
    console.error("edgehose-local: the Worker's wasm memory is " + bytes + " bytes, past the " + plan.memory_ceiling_mb + " MB ceiling: production would end this isolate and everything it holds");
  }
}
const json = (v, status = 200) => new Response(JSON.stringify(v), { status, headers: { "content-type": "application/json" } });
async function control(url, request, env) {
  if (url.pathname === "/_edgehose/faults") {
    if (request.method === "PUT") {
      try { setPlan(await request.json()); } catch (e) { return json({ error: String(e?.message ?? e) }, 400); }
    }
    return json({ plan, stats });
  }
  if (url.pathname === "/_edgehose/queued") return json({ found: queuedWith(url.searchParams.get("id") ?? "") });
  if (url.pathname === "/_edgehose/analytics/sql" && request.method === "POST") {
    try { return json(sql(await request.text())); } catch (e) { return json({ errors: [{ message: String(e?.message ?? e) }] }, 422); }
  }
  // ?bucket=EU_DEAD_LETTERS names a region's archive (the first by default).
  const archive = env[url.searchParams.get("bucket") ?? BUCKETS[0]];
  if (url.pathname === "/_edgehose/r2" && archive && request.method === "PUT") {
    // An object put as an operator (or an older version) might have: tests' poison objects.
    const key = url.searchParams.get("key");
    if (!key) return json({ error: "PUT /_edgehose/r2 needs ?key=" }, 400);
    await archive.put(key, await request.arrayBuffer());
    return json({ key });
  }
  if (url.pathname === "/_edgehose/r2" && archive) {
    const out = [];
    let cursor;
    do {
      const page = await archive.list({ prefix: url.searchParams.get("prefix") ?? "", cursor, include: ["customMetadata"] });
      for (const o of page.objects) {
        const body = await archive.get(o.key);
        out.push({ key: o.key, text: body === null ? "" : await body.text(), metadata: o.customMetadata ?? {} });
      }
      cursor = page.truncated ? page.cursor : undefined;
    } while (cursor);
    return json(out);
  }
  return json({ error: "unknown local route " + url.pathname }, 404);
}
// worker-build's entry is a WorkerEntrypoint class: the subclass hands it the wrapped bindings and context.
if (typeof Worker !== "function") throw new Error("the built Worker's default export is not an entrypoint class");
export default class extends Worker {
  constructor(ctx, env) {
    planOnce();
    super(watch(ctx), wrap(env));
    this.rawEnv = env;
  }
  queue(batch) {
    return super.queue(watchedBatch(batch));
  }
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname.startsWith("/_edgehose/")) return control(url, request, this.rawEnv);
    const response = await super.fetch(request);
    await readMemory(this, request.url, this.rawEnv.ADMIN_KEY).catch(() => {});
    return response;
  }
}
`;

// Written in Miniflare 4's option shape, which Miniflare 5 converts.
const mf = new Miniflare(
  convertV4MiniflareOptions({
    host: "127.0.0.1",
    port: opts.port,
    workers: [
      {
        name: "edgehose",
        modulesRoot: buildDir,
        modules: [
          { type: "ESModule", path: `${buildDir}/cloudflare-faults.mjs`, contents: wrapper },
          { type: "ESModule", path: `${buildDir}/index.js` },
          { type: "CompiledWasm", path: `${buildDir}/index_bg.wasm` },
        ],
        compatibilityDate: "2026-11-01",
        bindings: opts.bindings,
        ...(opts.inspectorPort != null ? { unsafeInspectorProxy: true } : {}),
        queueProducers: {
          ...(opts.eventsQueue === false ? {} : Object.fromEntries(eventsQueues.map(([b, q]) => [b, q]))),
          ...(opts.deadLetterQueue === false ? {} : Object.fromEntries(deadLetterQueues)),
        },
        r2Buckets: opts.deadLettersBucket === false ? [] : buckets,
        ...(opts.rateLimiter
          ? { ratelimits: { RATE_LIMITER: { namespace_id: "1001", simple: opts.rateLimiter } } }
          : {}),
        queueConsumers: {
          ...Object.fromEntries(
            eventsQueues.map(([, queue, dlq]) => [
              queue,
              {
                maxBatchSize: opts.maxBatchSize ?? 100,
                maxBatchTimeout: 1,
                maxRetries: opts.maxRetries ?? 3,
                ...(opts.deadLetterQueue === false ? {} : { deadLetterQueue: dlq }),
              },
            ]),
          ),
          ...Object.fromEntries(
            deadLetterQueues.map(([, d]) => [d, { maxBatchSize: 100, maxBatchTimeout: 1, maxRetries: 10 }]),
          ),
        },
      },
    ],
    ...(opts.persist ? { resourcePersistencePath: opts.persist } : {}),
    ...(opts.inspectorPort != null ? { inspectorPort: opts.inspectorPort } : {}),
  }),
);

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
