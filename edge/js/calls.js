// The Worker's calls out: the AWS sinks (Firehose, Kinesis, SQS) over fetch, the
// native SHA-256, Analytics Engine, the Rate Limiting binding, queue sends and
// the dead-letter archive in R2 (edge/src/js.rs binds each export).

import { pairs, strings } from "./head.js";

export async function firehose_call(url, header_bytes, header_ends, body, timeout_ms) {
  const headers = new Headers(pairs(header_bytes, header_ends));
  // slice(): the argument is a view into wasm memory; fetch gets its own copy.
  const init = { method: "POST", headers, body: body.slice(), signal: AbortSignal.timeout(timeout_ms) };
  try {
    const r = await fetch(url, init);
    const bytes = new Uint8Array(await r.arrayBuffer());
    return [r.status, r.headers.get("x-amzn-errortype"), r.headers.get("date"), bytes];
  } catch (e) {
    // No answer in time: status 0 tells Rust it was the timeout.
    if (init.signal.aborted) return [0, null, null, new Uint8Array(0)];
    throw e;
  }
}
// The SHA-256 of `bytes` as lower-case hex, by the runtime's native digest
// (which copies `bytes`, a view into wasm memory, before it returns).
export async function sha256_hex(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  let hex = "";
  for (const b of digest) hex += (b < 16 ? "0" : "") + b.toString(16);
  return hex;
}
// Outcome counts to a Workers Analytics Engine dataset: one data point per
// cell, its four blobs (minute, key, door, reason) framed as strings, its
// counts `width` doubles each; the key is the index (what Analytics Engine
// samples by). writeDataPoint does not wait for anything: the runtime sends
// the points after the invocation. Stops at the first point refused (past an
// invocation's limit); how many were written.
export function outcomes_write(dataset, bytes, ends, doubles, width) {
  const s = strings(bytes, ends);
  for (let i = 0; 4 * i < s.length; i++) {
    const blobs = s.slice(4 * i, 4 * i + 4);
    try {
      dataset.writeDataPoint({
        indexes: [blobs[1]],
        blobs,
        doubles: Array.from(doubles.subarray(width * i, width * (i + 1))),
      });
    } catch (e) {
      console.error(
        `edgehose: the outcomes dataset refused a data point; ${s.length / 4 - i} wait for the next flush (${e})`,
      );
      return i;
    }
  }
  return s.length / 4;
}
// Every call of one request to the Rate Limiting binding at once, then
// `then(index of the first refused or -1, undefined)`, or `then(-2, error)`
// when the binding failed; resolves to what `then` returns.
export function rate_limit_then(binding, bytes, ends, then) {
  try {
    const calls = strings(bytes, ends).map((key) => binding.limit({ key }));
    return Promise.all(calls).then(
      (results) =>
        then(
          results.findIndex((r) => !r.success),
          undefined,
        ),
      (e) => then(-2, e),
    );
  } catch (e) {
    return Promise.resolve(then(-2, e));
  }
}
// Settles like `promise`, or rejects once `ms` pass without an answer (the
// work itself may still finish: a write that lands late is harmless twice).
function within(promise, ms, what) {
  if (!(ms > 0)) return promise;
  let timer;
  const late = new Promise((_, fail) => {
    timer = setTimeout(() => fail(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
export async function queue_send(queue, bytes, ends, delay_seconds, timeout_ms) {
  const messages = strings(bytes, ends).map((body) => ({ body, contentType: "text" }));
  const options = delay_seconds > 0 ? { delaySeconds: delay_seconds } : undefined;
  await within(queue.sendBatch(messages, options), timeout_ms, "sendBatch");
}
export async function r2_put(bucket, key, bytes, tries, timeout_ms) {
  const options = {
    httpMetadata: { contentType: "application/x-ndjson" },
    customMetadata: { redrive_failures: String(tries) },
  };
  await within(bucket.put(key, bytes.slice(), options), timeout_ms, "R2 put");
}
export async function r2_list(bucket, prefix, limit) {
  const listed = await bucket.list({ prefix, limit });
  return [listed.objects.map((o) => o.key), listed.truncated];
}
// An object's text and how many redrive rounds it failed, or null.
export async function r2_get(bucket, key) {
  const o = await bucket.get(key);
  return o === null ? null : [await o.text(), Number(o.customMetadata?.redrive_failures ?? 0) || 0];
}
export async function r2_delete(bucket, key) {
  await bucket.delete(key);
}
