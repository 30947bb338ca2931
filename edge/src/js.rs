//! The Worker's calls into JavaScript, each doing a whole step in one
//! crossing: read the request head, build the response, call Firehose, send
//! a batch to a queue. Every crossing between wasm and JavaScript costs time,
//! so the Worker makes one per step instead of one per header or field.

use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::wasm_bindgen;
use worker::worker_sys::web_sys;

#[wasm_bindgen(inline_js = r#"
const HEAD = ["origin", "x-edgehose-key", "authorization", "content-length", "content-type", "content-encoding", "cf-connecting-ip"];
export function request_head(req) {
  const h = req.headers, cf = req.cf || {};
  const out = [req.method, req.url];
  for (const name of HEAD) out.push(h.get(name));
  out.push(cf.country, cf.colo, cf.asn);
  return out.map((v) => (v === null || v === undefined ? "\u0000" : String(v))).join("\u0001");
}
export function respond(status, body, headers) {
  const init = { status, headers: [] };
  if (body.length > 0) init.headers.push(["content-type", "application/json"]);
  if (headers.length > 0) {
    const parts = headers.split("\u0001");
    for (let i = 0; i + 1 < parts.length; i += 2) init.headers.push([parts[i], parts[i + 1]]);
  }
  return new Response(body.length > 0 ? body : null, init);
}
export async function firehose_call(url, headers, body) {
  const h = new Headers();
  const parts = headers.split("\u0001");
  for (let i = 0; i + 1 < parts.length; i += 2) h.set(parts[i], parts[i + 1]);
  // slice(): the argument is a view into wasm memory; fetch gets its own copy.
  const r = await fetch(url, { method: "POST", headers: h, body: body.slice() });
  const bytes = new Uint8Array(await r.arrayBuffer());
  return [r.status, r.headers.get("x-amzn-errortype"), r.headers.get("date"), bytes];
}
export function orphans_put(lines) {
  (globalThis.__edgehose_orphans ??= []).push(lines);
}
export function orphans_take() {
  const o = globalThis.__edgehose_orphans ?? [];
  globalThis.__edgehose_orphans = [];
  return o.join("\u0001");
}
export function with_body(req, then) {
  // `then` is called once, with the body or with the reason it could not be
  // read, whenever the read settles: a one-shot Rust closure that is never
  // called would leak. (A read the runtime abandons without settling, when
  // it cancels the request, leaves it uncalled, as it left a JsFuture before.)
  let read;
  try {
    read = req.arrayBuffer();
  } catch (e) {
    read = Promise.reject(e);
  }
  return read.then((buffer) => then(new Uint8Array(buffer), undefined), (error) => then(undefined, error));
}
export async function queue_send(queue, messages) {
  await queue.sendBatch(messages.split("\u0001").map((body) => ({ body, contentType: "text" })));
}
"#)]
extern "C" {
    fn request_head(req: &web_sys::Request) -> String;
    fn respond(status: u16, body: &str, headers: &str) -> web_sys::Response;
    #[wasm_bindgen(catch)]
    fn firehose_call(url: &str, headers: &str, body: &[u8]) -> Result<js_sys::Promise, JsValue>;
    #[wasm_bindgen(catch)]
    fn queue_send(queue: &JsValue, messages: &str) -> Result<js_sys::Promise, JsValue>;
    fn with_body(req: &web_sys::Request, then: &JsValue) -> js_sys::Promise;
    fn orphans_put(lines: &str);
    fn orphans_take() -> String;
}

/// Keeps envelope lines in the isolate's JavaScript global, which outlives
/// the wasm instance a panic replaces.
pub fn save_orphans(lines: &[String]) {
    if !lines.is_empty() {
        orphans_put(&lines.join("\u{1}"));
    }
}

/// Takes every line saved by [`save_orphans`].
pub fn take_orphans() -> Vec<String> {
    let joined = orphans_take();
    if joined.is_empty() {
        Vec::new()
    } else {
        joined.split('\u{1}').map(str::to_owned).collect()
    }
}

/// Reads the body of `req`, then calls `then` with its bytes or with why it
/// could not be read. The promise resolves to what `then` returns.
///
/// This is the Worker's one wait on a request path, and it is a single
/// promise callback rather than a Rust future: awaiting the body through
/// `JsFuture` inside an async export adds an executor, a waker and a channel
/// on top of the same promise (BENCHMARKS.md says how to compare the two).
pub fn then_with_body(
    req: &web_sys::Request,
    then: impl FnOnce(Result<Vec<u8>, String>) -> JsValue + 'static,
) -> js_sys::Promise {
    let callback = wasm_bindgen::closure::Closure::once_into_js(move |bytes: JsValue, error: JsValue| {
        if bytes.is_undefined() {
            then(Err(describe(error)))
        } else {
            then(Ok(js_sys::Uint8Array::from(bytes).to_vec()))
        }
    });
    with_body(req, &callback)
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

/// POSTs `body` with `headers` to `url` and reads the whole answer.
pub async fn post(url: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Answer, String> {
    let flat = flatten(headers.iter().copied());
    let promise = firehose_call(url, &flat, body).map_err(describe)?;
    let value = js_sys::futures::JsFuture::from(promise).await.map_err(describe)?;
    let parts = js_sys::Array::from(&value);
    Ok(Answer {
        status: parts.get(0).as_f64().unwrap_or(0.0) as u16,
        error_type: parts.get(1).as_string(),
        date: parts.get(2).as_string(),
        body: js_sys::Uint8Array::new(&parts.get(3)).to_vec(),
    })
}

/// Sends text messages to a queue binding in one `sendBatch`. Messages must
/// not contain U+0001 (envelope lines are JSON, where it is always escaped).
pub async fn send_batch(queue: &JsValue, messages: &[String]) -> Result<(), String> {
    let promise = queue_send(queue, &messages.join("\u{1}")).map_err(describe)?;
    js_sys::futures::JsFuture::from(promise)
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

fn flatten<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut flat = String::new();
    for (i, (k, v)) in pairs.enumerate() {
        if i > 0 {
            flat.push('\u{1}');
        }
        flat.push_str(k);
        flat.push('\u{1}');
        flat.push_str(v);
    }
    flat
}

/// What the Worker reads from a request head.
#[derive(Debug, Clone, Default)]
pub struct Head {
    fields: Vec<Option<String>>,
}

impl Head {
    /// Reads the head in one call.
    pub fn read(req: &web_sys::Request) -> Self {
        let text = request_head(req);
        Self {
            fields: text
                .split('\u{1}')
                .map(|v| (v != "\u{0}").then(|| v.to_owned()))
                .collect(),
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
    /// `request.cf.country`.
    pub fn country(&self) -> Option<&str> {
        self.get(9)
    }
    /// `request.cf.colo`.
    pub fn colo(&self) -> Option<&str> {
        self.get(10)
    }
    /// `request.cf.asn`.
    pub fn asn(&self) -> Option<u32> {
        self.get(11).and_then(|v| v.parse().ok())
    }
}

/// Builds the response in one call.
pub fn response(status: u16, body: &str, headers: &[(&'static str, String)]) -> web_sys::Response {
    respond(status, body, &flatten(headers.iter().map(|(k, v)| (*k, v.as_str()))))
}
