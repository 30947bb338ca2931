//! The Worker's calls into JavaScript, each doing a whole step in one
//! crossing: read the request head, build the response, call Firehose, send
//! a batch to a queue. Every crossing between wasm and JavaScript costs time,
//! so the Worker makes one per step instead of one per header or field.
//! The JavaScript side is in `edge/js/`, one ES module per concern.

use edgehose_shared::decode::Inflated;
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::wasm_bindgen;
use worker::worker_sys::web_sys;

// edge/js/'s modules are formatted, linted and unit-tested there (`make
// js-check js-test`). wasm-bindgen copies each module a block below names into
// the build's snippets, where they import each other by relative paths, and
// worker-build's esbuild bundles them with the rest (a module no block names
// is not copied).
//
// One directly linked function per module: a function that takes and returns
// only JS values, nothing to convert (`remember`, `orphans_take`,
// `queue_messages`), is linked into the wasm straight from its module with no
// shim, and wasm-bindgen (0.2.130) names that module in the imports object once
// per such function. Two in one module are a duplicate key, which esbuild warns
// of on every build (and tools/build-edge then fails); so each module holds at
// most one (`remember` is in head.js for that, not beside the orphans it serves).

#[wasm_bindgen(module = "/js/head.js")]
extern "C" {
    fn request_head(req: &web_sys::Request) -> String;
    fn respond(status: u16, body: &[u8], header_bytes: &[u8], header_ends: &[u32]) -> web_sys::Response;
    fn remember(env: &JsValue, ctx: &JsValue);
}

#[wasm_bindgen(module = "/js/body.js")]
extern "C" {
    fn with_body(req: &web_sys::Request, cap: f64, inflate_cap: f64, sniff: bool, then: &JsValue) -> js_sys::Promise;
}

#[wasm_bindgen(module = "/js/calls.js")]
extern "C" {
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
    fn outcomes_write(dataset: &JsValue, bytes: &[u8], ends: &[u32], doubles: &[f64], width: u32) -> u32;
}

#[wasm_bindgen(module = "/js/batch.js")]
extern "C" {
    fn queue_messages(batch: &JsValue) -> js_sys::Array;
    fn queue_name(batch: &JsValue) -> String;
    fn queue_body_text(batch: &JsValue, i: u32) -> js_sys::Array;
    fn queue_settle(batch: &JsValue, actions: &[u32]);
}

#[wasm_bindgen(module = "/js/orphans.js")]
extern "C" {
    fn orphans_put(bytes: &[u8], ends: &[u32]);
    fn orphans_take() -> js_sys::Array;
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
