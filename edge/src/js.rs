//! The Worker's calls into JavaScript, each doing a whole step in one
//! crossing: read the request head, build the response, call Firehose, send
//! a batch to a queue. Every crossing between wasm and JavaScript costs time,
//! so the Worker makes one per step instead of one per header or field.

use edgehose_shared::decode::Inflated;
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::wasm_bindgen;
use worker::worker_sys::web_sys;

#[wasm_bindgen(inline_js = r#"
const HEAD = ["origin", "x-edgehose-key", "authorization", "content-length", "content-type", "content-encoding", "cf-connecting-ip", "user-agent"];
// The head as lines, "=" before each value present and nothing for one absent:
// header values, the method and the serialised URL never hold a line break
// (Fetch refuses them), so one string crosses without JSON. Should one ever
// hold one, the head goes as JSON, which keeps every value whole.
export function request_head(req) {
  const h = req.headers, cf = req.cf;
  const out = [req.method, req.url];
  for (const name of HEAD) out.push(h.get(name));
  if (cf) {
    const bm = cf.botManagement;
    out.push(cf.country, cf.colo, cf.asn, bm?.score, bm?.verifiedBot ? "1" : null, cf.verifiedBotCategory, cf.clientTrustScore);
  } else out.push(null, null, null, null, null, null, null);
  out.push(h.get("cookie"), h.get("sp-anonymous"), h.get("posthog-sdk-info"));
  let lines = "";
  for (let i = 0; i < out.length; i++) {
    const v = out[i];
    const field = v === null || v === undefined ? "" : "=" + v;
    if (field.includes("\n")) return JSON.stringify(out.map((v) => (v === null || v === undefined ? null : String(v))));
    lines += i === 0 ? field : "\n" + field;
  }
  return lines;
}
// Strings from Rust: laid end to end, with where each ends (in UTF-16 units,
// as JavaScript counts), decoded in one call. No separator, so no character
// inside a string can split or shift them.
// ignoreBOM: a U+FEFF the strings begin with is theirs, not a byte-order mark.
const UTF8 = new TextDecoder("utf-8", { ignoreBOM: true });
function strings(bytes, ends) {
  const all = UTF8.decode(bytes), out = [];
  let start = 0;
  for (const end of ends) {
    out.push(all.slice(start, end));
    start = end;
  }
  return out;
}
function pairs(bytes, ends) {
  const parts = strings(bytes, ends), out = [];
  for (let i = 0; i + 1 < parts.length; i += 2) out.push([parts[i], parts[i + 1]]);
  return out;
}
export function respond(status, body, header_bytes, header_ends) {
  const init = { status, headers: pairs(header_bytes, header_ends) };
  // slice(): the body is a view into wasm memory; the answer gets its own copy.
  return new Response(body.length > 0 ? body.slice() : null, init);
}
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
      dataset.writeDataPoint({ indexes: [blobs[1]], blobs, doubles: Array.from(doubles.subarray(width * i, width * (i + 1))) });
    } catch (e) {
      console.error(`edgehose: the outcomes dataset refused a data point; ${s.length / 4 - i} wait for the next flush (${e})`);
      return i;
    }
  }
  return s.length / 4;
}
// Direct mode's latest request: where a panic hands what it held.
export function remember(env, ctx) {
  globalThis.__edgehose_handoff = { env, ctx };
}
export function orphans_put(bytes, ends) {
  (globalThis.__edgehose_orphans ??= []).push(...strings(bytes, ends));
  hand_on();
}
export function orphans_take() {
  const held = globalThis.__edgehose_orphans;
  return held && held.length > 0 ? held.splice(0) : [];
}
// Sends what a panicked instance held to the events queue (its consumer
// delivers it) without waiting for another request; a batch the queue
// refuses stays held for the next request to resend.
function hand_on() {
  const held = globalThis.__edgehose_orphans, to = globalThis.__edgehose_handoff;
  const queue = to?.env?.EVENTS_QUEUE ?? to?.env?.DEAD_LETTER_QUEUE;
  if (!held || held.length === 0 || !queue) return;
  const lines = held.splice(0), utf8 = new TextEncoder(), batches = [];
  let batch = [], bytes = 0;
  for (const line of lines) {
    const n = utf8.encode(line).length + 100;
    if (batch.length > 0 && (batch.length === 100 || bytes + n > 250000)) {
      batches.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(line);
    bytes += n;
  }
  batches.push(batch);
  const sends = batches.map((b) =>
    queue.sendBatch(b.map((body) => ({ body, contentType: "text" }))).then(
      () => b.length,
      (e) => {
        globalThis.__edgehose_orphans.push(...b);
        console.error(`edgehose: the queue refused ${b.length} events a panicked instance held (${e}); the next request resends them`);
        return 0;
      },
    ),
  );
  const done = Promise.all(sends).then((n) => {
    const handed = n.reduce((a, b) => a + b, 0);
    if (handed > 0) console.error(`edgehose: handed ${handed} events a panicked instance held to the queue`);
  });
  try {
    to.ctx.waitUntil(done);
  } catch {
    // That request is over; the sends run as long as the isolate does.
  }
}
// Reads a body, never holding more than `cap` + 1 bytes of it: one that
// announced no length (chunked, HTTP/2) is read through its stream and
// dropped as soon as it passes the cap. Resolves to the bytes, or null.
async function read_capped(req, cap) {
  const length = req.headers.get("content-length");
  if (req.body === null) return new Uint8Array(0);
  if (length !== null && /^[0-9]+$/.test(length) && Number(length) <= cap) {
    return new Uint8Array(await req.arrayBuffer());
  }
  return read_stream_capped(req.body, cap);
}
// Reads a stream whole, stopping (and resolving to null) once it passes `cap`.
async function read_stream_capped(stream, cap) {
  const reader = stream.getReader(), chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > cap) {
      reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  return joined(chunks, total);
}
// Inflates a gzip body with the runtime's native DecompressionStream, never
// holding much more than `cap` inflated bytes. Resolves to the bytes, null
// past the cap, or the reason as a string when it is not gzip the runtime can
// inflate (the runtime takes one gzip member: bytes after it are refused).
// The runtime inflates whatever is written to the stream at once, queueing
// all of it for the reader, and deflate turns one byte into at most 1032
// (RFC 1951: a 258-byte match in two bits). So the compressed bytes go in
// slices whose inflation is at most four caps, and each slice's output is
// read (and the cap checked) before the next is written: a 1 MiB bomb of
// zeros stops a slice past the cap instead of inflating to a gigabyte.
const DEFLATE_MOST_PER_BYTE = 1032;
const NOTHING_YET = Symbol("nothing yet");
const turn = () => new Promise((ok) => setTimeout(() => ok(NOTHING_YET), 0));
async function inflate_capped(bytes, cap) {
  const slice = Math.max(1024, Math.floor((4 * cap) / DEFLATE_MOST_PER_BYTE));
  const stream = new DecompressionStream("gzip");
  const writer = stream.writable.getWriter(), reader = stream.readable.getReader();
  const chunks = [];
  let total = 0, pending = null;
  // Reads what is ready (all of it when `to_end`): false past the cap.
  const drain = async (to_end) => {
    for (;;) {
      pending ??= reader.read();
      const r = to_end ? await pending : await Promise.race([pending, turn()]);
      if (r === NOTHING_YET) return true;
      pending = null;
      if (r.done) return true;
      total += r.value.byteLength;
      if (total > cap) return false;
      chunks.push(r.value);
    }
  };
  try {
    for (let at = 0; at < bytes.length; at += slice) {
      await writer.write(bytes.subarray(at, at + slice));
      if (!(await drain(false))) return over(reader, writer, pending);
    }
    const closing = writer.close();
    if (!(await drain(true))) return over(reader, writer, pending);
    await closing;
    return joined(chunks, total);
  } catch (e) {
    over(reader, writer, pending);
    const why = String(e?.message ?? e);
    return /trailing bytes/i.test(why)
      ? `bytes follow the end of its first gzip member (${why}); the edge takes one member`
      : why;
  }
}
// Stops an inflation: null, as past the cap.
function over(reader, writer, pending) {
  pending?.catch(() => {});
  reader.cancel().catch(() => {});
  writer.abort().catch(() => {});
  return null;
}
function joined(chunks, total) {
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.byteLength;
  }
  return bytes;
}
export function with_body(req, cap, inflate_cap, sniff, then) {
  // `then` is called once, with the body (null: over the cap) or with the
  // reason it could not be read, whenever the read settles: a one-shot Rust
  // closure that is never called would leak. (A read the runtime abandons
  // without settling, when it cancels the request, leaves it uncalled, as
  // it left a JsFuture before.) With an `inflate_cap` the body is gzip and
  // its inflation comes third (see inflate_capped); with `sniff` only if its
  // first bytes are gzip's (1f 8b 08: PostHog's gzip-js names it nowhere else).
  let read;
  try {
    read = read_capped(req, cap);
  } catch (e) {
    read = Promise.reject(e);
  }
  if (inflate_cap > 0) {
    read = read.then((bytes) =>
      bytes === null
        ? [null, undefined]
        : sniff && !(bytes[0] === 0x1f && bytes[1] === 0x8b && bytes[2] === 0x08)
          ? [bytes, undefined]
          : inflate_capped(bytes, inflate_cap).then((inflated) => [bytes, inflated]),
    );
  } else {
    read = read.then((bytes) => [bytes, undefined]);
  }
  return read.then(([bytes, inflated]) => then(bytes, undefined, inflated), (error) => then(undefined, error, undefined));
}
// A queue batch: each message's id, delivery count and body (null when the
// body is not text, which only a producer other than this Worker can send).
export function queue_messages(batch) {
  return batch.messages.map((m) => [m.id, m.attempts, typeof m.body === "string" ? m.body : null]);
}
// 0: ack; n > 0: redeliver n - 1 seconds from now.
export function queue_settle(batch, actions) {
  batch.messages.forEach((m, i) => (actions[i] === 0 ? m.ack() : m.retry({ delaySeconds: actions[i] - 1 })));
}
export function queue_name(batch) {
  return batch.queue;
}
// A body that is not text, as text: base64 for bytes, else its JSON.
export function queue_body_text(batch, i) {
  const b = batch.messages[i].body;
  if (b instanceof ArrayBuffer || ArrayBuffer.isView(b)) {
    const u = b instanceof ArrayBuffer ? new Uint8Array(b) : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    let s = "";
    for (const x of u) s += String.fromCharCode(x);
    return ["base64", btoa(s)];
  }
  try {
    return ["json", JSON.stringify(b)];
  } catch (e) {
    return ["text", String(b)];
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
export async function r2_put(bucket, key, bytes, tries, timeout_ms) {
  const options = { httpMetadata: { contentType: "application/x-ndjson" }, customMetadata: { redrive_failures: String(tries) } };
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
// Every call of one request to the Rate Limiting binding at once, then
// `then(index of the first refused or -1, undefined)`, or `then(-2, error)`
// when the binding failed; resolves to what `then` returns.
export function rate_limit_then(binding, bytes, ends, then) {
  try {
    const calls = strings(bytes, ends).map((key) => binding.limit({ key }));
    return Promise.all(calls).then(
      (results) => then(results.findIndex((r) => !r.success), undefined),
      (e) => then(-2, e),
    );
  } catch (e) {
    return Promise.resolve(then(-2, e));
  }
}
export async function queue_send(queue, bytes, ends, delay_seconds, timeout_ms) {
  const messages = strings(bytes, ends).map((body) => ({ body, contentType: "text" }));
  const options = delay_seconds > 0 ? { delaySeconds: delay_seconds } : undefined;
  await within(queue.sendBatch(messages, options), timeout_ms, "sendBatch");
}
"#)]
extern "C" {
    fn request_head(req: &web_sys::Request) -> String;
    fn respond(status: u16, body: &[u8], header_bytes: &[u8], header_ends: &[u32]) -> web_sys::Response;
    #[wasm_bindgen(catch)]
    fn firehose_call(
        url: &str,
        header_bytes: &[u8],
        header_ends: &[u32],
        body: &[u8],
        timeout_ms: f64,
    ) -> Result<js_sys::Promise, JsValue>;
    #[wasm_bindgen(catch)]
    fn queue_send(
        queue: &JsValue,
        bytes: &[u8],
        ends: &[u32],
        delay_seconds: u32,
        timeout_ms: f64,
    ) -> Result<js_sys::Promise, JsValue>;
    #[wasm_bindgen(catch)]
    fn sha256_hex(bytes: &[u8]) -> Result<js_sys::Promise, JsValue>;
    fn rate_limit_then(binding: &JsValue, bytes: &[u8], ends: &[u32], then: &JsValue) -> js_sys::Promise;
    fn with_body(req: &web_sys::Request, cap: f64, inflate_cap: f64, sniff: bool, then: &JsValue) -> js_sys::Promise;
    fn orphans_put(bytes: &[u8], ends: &[u32]);
    fn remember(env: &JsValue, ctx: &JsValue);
    fn queue_messages(batch: &JsValue) -> js_sys::Array;
    fn queue_name(batch: &JsValue) -> String;
    fn queue_body_text(batch: &JsValue, i: u32) -> js_sys::Array;
    #[wasm_bindgen(catch)]
    fn r2_put(
        bucket: &JsValue,
        key: &str,
        bytes: &[u8],
        tries: u32,
        timeout_ms: f64,
    ) -> Result<js_sys::Promise, JsValue>;
    #[wasm_bindgen(catch)]
    fn r2_list(bucket: &JsValue, prefix: &str, limit: u32) -> Result<js_sys::Promise, JsValue>;
    #[wasm_bindgen(catch)]
    fn r2_get(bucket: &JsValue, key: &str) -> Result<js_sys::Promise, JsValue>;
    #[wasm_bindgen(catch)]
    fn r2_delete(bucket: &JsValue, key: &str) -> Result<js_sys::Promise, JsValue>;
    fn queue_settle(batch: &JsValue, actions: &[u32]);
    fn orphans_take() -> js_sys::Array;
    fn outcomes_write(dataset: &JsValue, bytes: &[u8], ends: &[u32], doubles: &[f64], width: u32) -> u32;
}

/// Strings laid end to end as UTF-8, with where each ends counted in UTF-16
/// units (JavaScript's string indices): how lists cross into JavaScript in one
/// call and one decode, without a separator any string could hold.
struct Framed {
    bytes: Vec<u8>,
    ends: Vec<u32>,
}

impl Framed {
    fn of<'a>(strings: impl IntoIterator<Item = &'a str>) -> Self {
        let mut framed = Self {
            bytes: Vec::new(),
            ends: Vec::new(),
        };
        let mut units = 0;
        for s in strings {
            framed.bytes.extend_from_slice(s.as_bytes());
            units += if s.is_ascii() {
                s.len()
            } else {
                s.chars().map(char::len_utf16).sum()
            };
            framed.ends.push(units as u32);
        }
        framed
    }
}

/// The binding named `name` on the Worker's `env`, when it has one.
pub fn binding(env: &JsValue, name: &str) -> Option<JsValue> {
    js_sys::Reflect::get(env, &JsValue::from_str(name))
        .ok()
        .filter(|b| !b.is_undefined() && !b.is_null())
}

/// Makes every call to the Rate Limiting binding `binding` at once, one per
/// counter name in `counters`, then calls `then` with the index of the
/// first refused (`None`: all passed), or why the binding failed. Like
/// [`then_with_body`], one promise callback rather than a Rust future on the
/// request path. The promise resolves to what `then` returns.
pub fn then_rate_limited(
    binding: &JsValue,
    counters: &[&str],
    then: impl FnOnce(Result<Option<usize>, String>) -> JsValue + 'static,
) -> js_sys::Promise {
    let f = Framed::of(counters.iter().copied());
    let callback = wasm_bindgen::closure::Closure::once_into_js(move |index: f64, error: JsValue| {
        if index == -2.0 {
            then(Err(describe(error)))
        } else {
            then(Ok((index >= 0.0).then_some(index as usize)))
        }
    });
    rate_limit_then(binding, &f.bytes, &f.ends, &callback)
}

/// Tells JavaScript where the current request's events could be handed if
/// this instance panics: its bindings and its `waitUntil`.
pub fn remember_request(env: &JsValue, ctx: &JsValue) {
    remember(env, ctx);
}

/// Keeps envelope lines in the isolate's JavaScript global, which outlives
/// the wasm instance a panic replaces, and hands them at once to the events
/// queue when one is bound (see [`remember_request`]).
pub fn save_orphans(lines: &[String]) {
    if !lines.is_empty() {
        let f = Framed::of(lines.iter().map(String::as_str));
        orphans_put(&f.bytes, &f.ends);
    }
}

/// Takes every line saved by [`save_orphans`].
pub fn take_orphans() -> Vec<String> {
    orphans_take().iter().filter_map(|v| v.as_string()).collect()
}

/// Writes one Analytics Engine data point per cell (four blobs and `width`
/// counts each) to `dataset`, in order; how many it took before refusing one.
pub fn write_data_points(dataset: &JsValue, blobs: &[&str], doubles: &[f64], width: usize) -> u32 {
    let f = Framed::of(blobs.iter().copied());
    outcomes_write(dataset, &f.bytes, &f.ends, doubles, width as u32)
}

/// A request body, read.
pub enum Read {
    /// All of it, and its inflation when it was to be inflated.
    Body(Vec<u8>, Option<Inflated>),
    /// It passed the cap; reading stopped there.
    TooLarge,
    /// It could not be read, and why.
    Failed(String),
}

/// Reads the body of `req` (never more than `cap` + 1 bytes of it) and, with
/// an `inflate_cap`, inflates it as gzip in the runtime (never more than
/// that + 1 bytes; with `sniff`, only when its first bytes are gzip's), then calls `then` with what came of it. The promise
/// resolves to what `then` returns.
///
/// This is the Worker's one wait on a request path, and it is a single
/// promise callback rather than a Rust future: awaiting the body through
/// `JsFuture` inside an async export adds an executor, a waker and a channel
/// on top of the same promise (BENCHMARKS.md says how to compare the two).
pub fn then_with_body(
    req: &web_sys::Request,
    cap: usize,
    inflate_cap: Option<usize>,
    sniff: bool,
    then: impl FnOnce(Read) -> JsValue + 'static,
) -> js_sys::Promise {
    let callback =
        wasm_bindgen::closure::Closure::once_into_js(move |bytes: JsValue, error: JsValue, inflated: JsValue| {
            if bytes.is_null() {
                then(Read::TooLarge)
            } else if bytes.is_undefined() {
                then(Read::Failed(describe(error)))
            } else {
                let inflated = if inflated.is_undefined() {
                    None
                } else if inflated.is_null() {
                    Some(Inflated::OverCap)
                } else if let Some(reason) = inflated.as_string() {
                    Some(Inflated::Broken(reason))
                } else {
                    Some(Inflated::Bytes(js_sys::Uint8Array::from(inflated).to_vec()))
                };
                then(Read::Body(js_sys::Uint8Array::from(bytes).to_vec(), inflated))
            }
        });
    with_body(req, cap as f64, inflate_cap.map_or(0.0, |c| c as f64), sniff, &callback)
}

/// The SHA-256 of `bytes` (lower-case hex) from the runtime's native
/// `crypto.subtle.digest` rather than the wasm build of `sha2` (the isolate
/// profile's wasm time fell with it; p99 and CPU per request did not move:
/// BENCHMARKS.md); `None` if the runtime refused.
pub async fn native_sha256_hex(bytes: &[u8]) -> Option<String> {
    let promise = sha256_hex(bytes).ok()?;
    js_sys::futures::JsFuture::from(promise).await.ok()?.as_string()
}

/// A Firehose answer: status, `x-amzn-ErrorType`, `Date`, body.
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// `x-amzn-ErrorType`.
    pub error_type: Option<String>,
    /// `Date`.
    pub date: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

/// POSTs `body` with `headers` to `url` and reads the whole answer, giving
/// up after `timeout_ms`: `Ok(None)` when no answer came by then.
pub async fn post(url: &str, headers: &[(&str, &str)], body: &[u8], timeout_ms: u64) -> Result<Option<Answer>, String> {
    let f = Framed::of(headers.iter().flat_map(|(k, v)| [*k, *v]));
    let promise = firehose_call(url, &f.bytes, &f.ends, body, timeout_ms as f64).map_err(describe)?;
    let value = js_sys::futures::JsFuture::from(promise).await.map_err(describe)?;
    let parts = js_sys::Array::from(&value);
    let status = parts.get(0).as_f64().unwrap_or(0.0) as u16;
    if status == 0 {
        return Ok(None);
    }
    Ok(Some(Answer {
        status,
        error_type: parts.get(1).as_string(),
        date: parts.get(2).as_string(),
        body: js_sys::Uint8Array::new(&parts.get(3)).to_vec(),
    }))
}

/// Sends text messages to a queue binding in one `sendBatch`, delivered
/// `delay_seconds` from now, giving up on the answer after `timeout_ms`.
pub async fn send_batch(
    queue: &JsValue,
    messages: &[String],
    delay_seconds: u32,
    timeout_ms: u64,
) -> Result<(), String> {
    let f = Framed::of(messages.iter().map(String::as_str));
    let promise = queue_send(queue, &f.bytes, &f.ends, delay_seconds, timeout_ms as f64).map_err(describe)?;
    js_sys::futures::JsFuture::from(promise)
        .await
        .map(|_| ())
        .map_err(describe)
}

/// One message of a queue batch.
pub struct QueueMessage {
    /// The queue's id for it.
    pub id: String,
    /// Which delivery this is (1 for the first).
    pub attempts: u32,
    /// Its body, when it is text.
    pub body: Option<String>,
}

/// What becomes of one message of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// Done with: the queue deletes it.
    Ack,
    /// The queue delivers it again, this many seconds from now.
    Retry {
        /// `delaySeconds`.
        delay_seconds: u32,
    },
}

/// A queue batch as the runtime handed it to the consumer.
pub struct QueueBatch(pub JsValue);

impl QueueBatch {
    /// Its messages, read in one call.
    pub fn messages(&self) -> Vec<QueueMessage> {
        queue_messages(&self.0)
            .iter()
            .map(|m| {
                let m = js_sys::Array::from(&m);
                QueueMessage {
                    id: m.get(0).as_string().unwrap_or_default(),
                    attempts: m.get(1).as_f64().unwrap_or(1.0) as u32,
                    body: m.get(2).as_string(),
                }
            })
            .collect()
    }

    /// The queue the batch came from.
    pub fn queue(&self) -> String {
        queue_name(&self.0)
    }

    /// Message `i`'s body when it is not text, as text: `("base64", …)` for
    /// bytes, `("json", …)` for anything else.
    pub fn body_as_text(&self, i: usize) -> (String, String) {
        let parts = queue_body_text(&self.0, i as u32);
        (
            parts.get(0).as_string().unwrap_or_default(),
            parts.get(1).as_string().unwrap_or_default(),
        )
    }

    /// Acks or retries each message as `settle` says.
    pub fn settle(&self, settle: &[Settle]) {
        let actions: Vec<u32> = settle
            .iter()
            .map(|s| match s {
                Settle::Ack => 0,
                Settle::Retry { delay_seconds } => delay_seconds.saturating_add(1),
            })
            .collect();
        queue_settle(&self.0, &actions);
    }
}

/// An R2 bucket binding, through the calls the dead-letter archive needs.
pub struct Bucket<'a>(pub &'a JsValue);

impl Bucket<'_> {
    /// Writes an object, noting how many redrive rounds it failed; gives
    /// up on the answer after `timeout_ms`.
    pub async fn put(&self, key: &str, bytes: &[u8], redrive_failures: u32, timeout_ms: u64) -> Result<(), String> {
        await_unit(r2_put(self.0, key, bytes, redrive_failures, timeout_ms as f64)).await
    }

    /// Up to `limit` keys under `prefix`, in key order, and whether more follow.
    pub async fn list(&self, prefix: &str, limit: u32) -> Result<(Vec<String>, bool), String> {
        let value = js_sys::futures::JsFuture::from(r2_list(self.0, prefix, limit).map_err(describe)?)
            .await
            .map_err(describe)?;
        let parts = js_sys::Array::from(&value);
        let keys = js_sys::Array::from(&parts.get(0))
            .iter()
            .filter_map(|k| k.as_string())
            .collect();
        Ok((keys, parts.get(1).is_truthy()))
    }

    /// An object's text and the redrive rounds it failed, `None` when it is not there.
    pub async fn get(&self, key: &str) -> Result<Option<(String, u32)>, String> {
        let value = js_sys::futures::JsFuture::from(r2_get(self.0, key).map_err(describe)?)
            .await
            .map_err(describe)?;
        if value.is_null() {
            return Ok(None);
        }
        let parts = js_sys::Array::from(&value);
        let text = parts.get(0).as_string().ok_or("R2 get: the object's text is missing")?;
        Ok(Some((text, parts.get(1).as_f64().unwrap_or(0.0) as u32)))
    }

    /// Removes an object.
    pub async fn delete(&self, key: &str) -> Result<(), String> {
        await_unit(r2_delete(self.0, key)).await
    }
}

async fn await_unit(promise: Result<js_sys::Promise, JsValue>) -> Result<(), String> {
    js_sys::futures::JsFuture::from(promise.map_err(describe)?)
        .await
        .map(|_| ())
        .map_err(describe)
}

fn describe(e: JsValue) -> String {
    e.as_string()
        .or_else(|| {
            js_sys::Reflect::get(&e, &JsValue::from_str("message"))
                .ok()
                .and_then(|m| m.as_string())
        })
        .unwrap_or_else(|| format!("{e:?}"))
}

/// What the Worker reads from a request head.
#[derive(Debug, Clone, Default)]
pub struct Head {
    fields: Vec<Option<String>>,
}

impl Head {
    /// The fields [`request_head`] sends, in order.
    const FIELDS: usize = 20;

    /// Reads the head in one call.
    pub fn read(req: &web_sys::Request) -> Self {
        Self::parse(&request_head(req))
    }

    /// The head from [`request_head`]'s lines (`=value`, or nothing for an
    /// absent field) or, should a value hold a line break, its JSON array;
    /// anything but exactly [`Self::FIELDS`] fields is no head at all, rather
    /// than fields read from the wrong places.
    fn parse(text: &str) -> Self {
        let fields: Option<Vec<Option<String>>> = if text.starts_with('[') {
            serde_json::from_str(text).ok()
        } else {
            text.split('\n')
                .map(|line| match line {
                    "" => Some(None),
                    _ => line.strip_prefix('=').map(|v| Some(v.to_owned())),
                })
                .collect()
        };
        match fields {
            Some(fields) if fields.len() == Self::FIELDS => Self { fields },
            _ => Self::default(),
        }
    }

    fn get(&self, i: usize) -> Option<&str> {
        self.fields.get(i).and_then(|v| v.as_deref())
    }

    /// The method.
    pub fn method(&self) -> &str {
        self.get(0).unwrap_or("GET")
    }
    /// The full URL.
    pub fn url(&self) -> &str {
        self.get(1).unwrap_or("/")
    }
    /// `Origin`.
    pub fn origin(&self) -> Option<&str> {
        self.get(2)
    }
    /// `x-edgehose-key`.
    pub fn key(&self) -> Option<&str> {
        self.get(3)
    }
    /// `Authorization`.
    pub fn authorization(&self) -> Option<&str> {
        self.get(4)
    }
    /// `Content-Length`, parsed.
    pub fn content_length(&self) -> Option<u64> {
        self.get(5).and_then(|v| v.parse().ok())
    }
    /// `Content-Type`.
    pub fn content_type(&self) -> Option<&str> {
        self.get(6)
    }
    /// `Content-Encoding`.
    pub fn content_encoding(&self) -> Option<&str> {
        self.get(7)
    }
    /// `cf-connecting-ip`.
    pub fn client_ip(&self) -> Option<&str> {
        self.get(8)
    }
    /// `User-Agent`.
    pub fn user_agent(&self) -> Option<&str> {
        self.get(9)
    }
    /// `request.cf.country`.
    pub fn country(&self) -> Option<&str> {
        self.get(10)
    }
    /// `request.cf.colo`.
    pub fn colo(&self) -> Option<&str> {
        self.get(11)
    }
    /// `request.cf.asn`.
    pub fn asn(&self) -> Option<u32> {
        self.get(12).and_then(|v| v.parse().ok())
    }
    /// What Cloudflare and the user agent say of the client
    /// (`cf.botManagement`, `cf.verifiedBotCategory`, `cf.clientTrustScore`).
    pub fn bot_signals(&self) -> edgehose_shared::bot::Signals<'_> {
        edgehose_shared::bot::Signals {
            score: self.get(13).and_then(|v| v.parse().ok()),
            verified_bot: self.get(14).is_some(),
            verified_category: self.get(15),
            trust_score: self.get(16).and_then(|v| v.parse().ok()),
            user_agent: self.user_agent(),
        }
    }
    /// `Cookie`.
    pub fn cookie(&self) -> Option<&str> {
        self.get(17)
    }
    /// Whether `SP-Anonymous` came (Snowplow's trackers' anonymity header).
    pub fn anonymous(&self) -> bool {
        self.get(18).is_some()
    }
    /// `PostHog-Sdk-Info` (PostHog's v1 route names its SDK there).
    pub fn sdk_info(&self) -> Option<&str> {
        self.get(19)
    }
}

/// Builds the response in one call.
pub fn response(status: u16, body: &[u8], headers: &[(&'static str, String)]) -> web_sys::Response {
    let f = Framed::of(headers.iter().flat_map(|(k, v)| [*k, v.as_str()]));
    respond(status, body, &f.bytes, &f.ends)
}

#[cfg(test)]
mod tests {
    use super::{Framed, Head};

    #[test]
    fn a_head_field_keeps_any_byte_and_shifts_nothing() {
        let json = serde_json::json!([
            "POST",
            "https://e.example/v1/events",
            null,
            null,
            null,
            "12",
            "application/json\u{1}\u{1}203.0.113.9\u{1}ZZ\u{1}EVIL\u{1}64500",
            null,
            null,
            "curl/8",
            "DE",
            "FRA",
            "3320",
            "12",
            "1",
            null,
            null,
            "edgehose_id=x",
            "*",
            "posthog-node/5.74.0"
        ])
        .to_string();
        let head = Head::parse(&json);
        assert!(head.content_type().is_some_and(|t| t.contains('\u{1}')));
        assert_eq!(
            (head.country(), head.colo(), head.asn()),
            (Some("DE"), Some("FRA"), Some(3320))
        );
        assert_eq!((head.content_encoding(), head.client_ip()), (None, None));
        let bot = head.bot_signals();
        assert_eq!(
            (bot.score, bot.verified_bot, bot.user_agent),
            (Some(12), true, Some("curl/8"))
        );
        assert_eq!((head.cookie(), head.anonymous()), (Some("edgehose_id=x"), true));
        assert_eq!(head.sdk_info(), Some("posthog-node/5.74.0"));
    }

    #[test]
    fn a_head_as_lines_keeps_empty_and_absent_apart() {
        let lines = "=POST\n=https://e.example/v1/events\n=\n\n\n=12\n=text/plain\u{1}=x\n\n=203.0.113.9\n\n=DE\n=FRA\n=3320\n\n\n\n\n\n\n";
        let head = Head::parse(lines);
        assert_eq!((head.method(), head.url()), ("POST", "https://e.example/v1/events"));
        assert_eq!((head.origin(), head.key()), (Some(""), None));
        assert_eq!(head.content_length(), Some(12));
        assert_eq!(head.content_type(), Some("text/plain\u{1}=x"));
        assert_eq!((head.content_encoding(), head.client_ip()), (None, Some("203.0.113.9")));
        assert_eq!(
            (head.country(), head.colo(), head.asn()),
            (Some("DE"), Some("FRA"), Some(3320))
        );
    }

    #[test]
    fn a_head_of_the_wrong_shape_is_no_head() {
        assert_eq!(Head::parse(r#"["POST","u","DE"]"#).country(), None);
        assert_eq!(Head::parse("POST\u{1}u").method(), "GET");
        // Too few fields, or a line that is neither empty nor "=value".
        assert_eq!(Head::parse("=POST\n=u\n\n\n\n\n\n\n\n\n=DE\n=FRA").country(), None);
        assert_eq!(
            Head::parse("=POST\n=u\n\n\n\n\n\n\n\n\nDE\n=FRA\n=1\n\n\n\n").method(),
            "GET"
        );
    }

    #[test]
    fn framed_strings_end_where_they_end_whatever_they_hold() {
        let f = Framed::of(["a\u{1}b", "", "\u{0}é", "🙂x"]);
        // UTF-16 units: "é" is one, though two bytes; "🙂" two, though four.
        assert_eq!(f.ends, [3, 3, 5, 8]);
        assert_eq!(f.bytes, "a\u{1}b\u{0}é🙂x".as_bytes());
    }
}
