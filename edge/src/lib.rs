//! The edgehose edge Worker: answers `POST /v1/events` at the Cloudflare edge
//! as soon as the request is checked, then forwards the enveloped events to
//! Amazon Data Firehose, directly (`waitUntil` + a SigV4-signed
//! `PutRecordBatch`) or through a Cloudflare Queue drained by this Worker.
//!
//! Everything about the HTTP API itself lives in `edgehose_shared::api`, so the
//! API Gateway path answers identically; this crate only moves bytes between
//! the Workers runtime and the shared crate.

mod clock;
pub mod config;
mod forward;

use std::cell::RefCell;
use std::rc::Rc;

use edgehose_shared::api::{self, ApiError, Body, Prepared, Reply, RequestHead};
use edgehose_shared::envelope::EdgeMeta;
use wasm_bindgen::JsValue;
use worker::{Context, Env, MessageBatch, Request, Response, console_error, event};

use crate::clock::{CryptoRandom, now};
use crate::config::{EdgeConfig, Mode};

thread_local! {
    /// The configuration, read once per isolate (a bad one is read again next time).
    static CONFIG: RefCell<Option<Rc<EdgeConfig>>> = const { RefCell::new(None) };
}

fn config(env: &Env) -> Result<Rc<EdgeConfig>, ApiError> {
    if let Some(c) = CONFIG.with(|c| c.borrow().clone()) {
        return Ok(c);
    }
    match EdgeConfig::from_env(env) {
        Ok(c) => {
            let c = Rc::new(c);
            CONFIG.with(|slot| *slot.borrow_mut() = Some(c.clone()));
            Ok(c)
        }
        Err(e) => {
            console_error!("edgehose: misconfigured: {e}");
            Err(ApiError::Misconfigured(e))
        }
    }
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    let received_at = now();
    let config = match config(&env) {
        Ok(c) => c,
        Err(e) => return respond(e.reply(Vec::new())),
    };
    let raw = Clone::clone(req.inner());
    let method = raw.method();
    let url = raw.url();
    let (path, query) = split_url(&url);
    #[cfg(feature = "panic-probe")]
    if path == "/__panic" {
        panic!("panic probe: deliberate panic for the isolation test");
    }
    let headers = req.headers().clone();
    let header = |name: &str| headers.get(name).ok().flatten();
    let (origin, key_header, authorization) = (header("origin"), header(api::KEY_HEADER), header("authorization"));
    let content_length = header("content-length").and_then(|v| v.parse().ok());
    let head = RequestHead {
        method: &method,
        path,
        query,
        origin: origin.as_deref(),
        key_header: key_header.as_deref(),
        authorization: authorization.as_deref(),
        content_length,
    };
    let ingest = match api::prepare(&head, &config.api) {
        Prepared::Reply(reply) => return respond(reply),
        Prepared::Ingest(ingest) => ingest,
    };
    let (content_type, content_encoding) = (header("content-type"), header("content-encoding"));
    let mut req = req;
    let bytes = match req.bytes().await {
        Ok(b) => b,
        Err(e) => return respond(ApiError::Unavailable(format!("the body could not be read: {e}")).reply(ingest.cors)),
    };
    let edge = edge_meta(
        &raw,
        config.api.store_client_ip.then(|| header("cf-connecting-ip")).flatten(),
    );
    let body = Body {
        bytes: &bytes,
        content_type: content_type.as_deref(),
        content_encoding: content_encoding.as_deref(),
    };
    let accepted = match api::accept(&ingest, body, &edge, &config.api, received_at, &CryptoRandom::default()) {
        Ok(a) => a,
        Err(reply) => return respond(reply),
    };
    match config.mode {
        Mode::Direct => {
            let (config, lines) = (config.clone(), accepted.lines);
            ctx.wait_until(async move { forward::direct(&config, &env, lines).await });
        }
        Mode::Queue => {
            // Acknowledge only once the queue holds the events: a 503 tells the
            // client to retry rather than letting an accepted event vanish.
            if let Err(e) = forward::enqueue(&env, &accepted.lines).await {
                console_error!("edgehose: could not enqueue {} events: {e}", accepted.lines.len());
                return respond(ApiError::Unavailable(e).reply(ingest.cors));
            }
        }
    }
    respond(accepted.reply)
}

#[event(queue)]
async fn queue(batch: MessageBatch<String>, env: Env, _ctx: Context) -> worker::Result<()> {
    match config(&env) {
        Ok(config) => forward::consume(&config, batch).await,
        // Misconfigured: let the queue redeliver later rather than lose anything.
        Err(_) => batch.retry_all(),
    }
    Ok(())
}

/// Path and query of a request URL (`https://host/path?query`).
fn split_url(url: &str) -> (&str, Option<&str>) {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let path_start = url[after_scheme..].find('/').map_or(url.len(), |i| after_scheme + i);
    let rest = &url[path_start..];
    let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
    match rest.split_once('?') {
        Some((p, q)) => (if p.is_empty() { "/" } else { p }, Some(q)),
        None => (if rest.is_empty() { "/" } else { rest }, None),
    }
}

/// Country, colo and ASN from `request.cf`, each only when present (the
/// `worker` crate's own accessors panic on a missing field).
fn edge_meta(raw: &worker::worker_sys::web_sys::Request, client_ip: Option<String>) -> EdgeMeta {
    let cf = js_sys::Reflect::get(raw, &JsValue::from_str("cf")).unwrap_or(JsValue::UNDEFINED);
    if !cf.is_object() {
        return EdgeMeta {
            client_ip,
            ..EdgeMeta::default()
        };
    }
    let field = |name: &str| js_sys::Reflect::get(&cf, &JsValue::from_str(name)).ok();
    EdgeMeta {
        country: field("country").and_then(|v| v.as_string()),
        colo: field("colo").and_then(|v| v.as_string()),
        asn: field("asn").and_then(|v| v.as_f64()).map(|n| n as u32),
        client_ip,
    }
}

fn respond(reply: Reply) -> worker::Result<Response> {
    let mut builder = Response::builder().with_status(reply.status);
    if !reply.body.is_empty() {
        builder = builder.with_header("content-type", "application/json")?;
    }
    for (name, value) in &reply.headers {
        builder = builder.with_header(name, value)?;
    }
    Ok(builder.fixed(reply.body.into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::split_url;

    #[test]
    fn urls_split_into_path_and_query() {
        assert_eq!(
            split_url("https://e.example/v1/events?key=a%20b"),
            ("/v1/events", Some("key=a%20b"))
        );
        assert_eq!(split_url("https://e.example"), ("/", None));
        assert_eq!(split_url("http://127.0.0.1:8787/healthz#x"), ("/healthz", None));
        assert_eq!(split_url("https://e.example/?"), ("/", Some("")));
    }
}
