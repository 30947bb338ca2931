//! Where a request is answered: the Worker's `fetch` handler. The head is
//! read and routed (the admin routes to `dead_letters`), checked by
//! `shared::api` (`prepare`: method, path, CORS, key, health), refused early
//! where the rate limits already say so, and then the body is read (capped,
//! and inflated by the runtime when it is gzip) and handed to `accept`,
//! which answers. Every refusal is counted (`receipts`).
//!
//! Everything about the HTTP API itself lives in `edgehose_shared::api`, so
//! the API Gateway path answers identically; this module only moves bytes
//! between the Workers runtime and the shared crate.

mod accept;
mod admin;
mod healthz;

use std::cell::RefCell;

use edgehose_shared::api::{self, ApiError, Prepared, Reply, RequestHead};
use edgehose_shared::decode;
use edgehose_shared::guard;
use edgehose_shared::rate_limit;
use wasm_bindgen::JsValue;
use worker::worker_sys::web_sys;
use worker::{Context, Env};

use crate::clock::now;
use crate::config;
use crate::dead_letters::{find, redrive};
use crate::js::{self, Head};
use crate::receipts;

thread_local! {
    /// What the isolate knows of its rate-limit counters (spent ones, fractions owed).
    static LIMITS: RefCell<rate_limit::Memory> = RefCell::new(rate_limit::Memory::default());
}

/// Answers one request (the body of the Worker's `fetch` handler).
///
/// It is synchronous: everything the head decides (errors, preflight,
/// health) is answered at once, and otherwise the answer is a promise that
/// settles when the body has been read and checked, in one promise callback
/// rather than a Rust future. Direct mode hands the events to `waitUntil`
/// there; queue mode answers once the queue holds them.
pub(crate) fn handle(req: web_sys::Request, env: Env, ctx: worker::worker_sys::Context) -> JsValue {
    let received_at = now();
    let head = Head::read(&req);
    let (path, query) = split_url(head.url());
    let config = match config::isolate(&env) {
        Ok(c) => c,
        Err(e) => {
            let reply = e.reply(api::cors_headers_without_config(head.origin()));
            let cell = receipts::refused_cell(path, received_at);
            receipts::refused(&reply, cell, &env, &Context::new(ctx));
            return respond(reply);
        }
    };
    if config.answers_at_once() {
        js::remember_request(&env, &ctx);
    }
    #[cfg(feature = "panic-probe")]
    if path == "/__panic" {
        panic!("panic probe: deliberate panic for the isolation test");
    }
    if path == find::PATH {
        if let Err(reply) = admin::check(&config, head.authorization()) {
            return respond(reply);
        }
        let query = query.map(str::to_owned);
        let prefixes: Vec<String> = config.each_region().iter().map(|r| r.binding_prefix()).collect();
        return js_sys::futures::future_to_promise(async move {
            Ok(respond(find::handle(&env, query.as_deref(), &prefixes).await))
        })
        .into();
    }
    if path == redrive::PATH {
        if let Err(reply) = admin::check(&config, head.authorization()) {
            return respond(reply);
        }
        let method = head.method().to_owned();
        return js_sys::futures::future_to_promise(async move {
            Ok(respond(redrive::handle(&config, &env, &method).await))
        })
        .into();
    }
    let request_head = RequestHead {
        method: head.method(),
        path,
        query,
        origin: head.origin(),
        key_header: head.key(),
        authorization: head.authorization(),
        content_length: head.content_length(),
        sdk_info: head.sdk_info(),
        received_at,
    };
    let ingest = match api::prepare(&request_head, &config.api) {
        Prepared::Reply(mut reply) => {
            // The isolate's figures are the operator's: behind the admin key.
            // Anyone else gets the bare `ok`.
            if reply.status == 200
                && path.trim_end_matches('/') == api::HEALTH_PATH
                && admin::check(&config, head.authorization()).is_ok()
            {
                reply.body = healthz::figures();
            }
            if reply.status >= 400 {
                let cell = receipts::refused_cell(path, received_at);
                receipts::refused(&reply, cell, &env, &Context::new(ctx));
            }
            return respond(reply);
        }
        Prepared::Ingest(ingest) => ingest,
    };
    let ctx = Context::new(ctx);
    if !ingest.key_in_body
        && let Some(reply) = LIMITS.with(|m| {
            guard::refuse_early(
                &config.api,
                ingest.key_id.as_deref(),
                head.client_ip(),
                &ingest.cors,
                &m.borrow(),
                received_at.as_millis() as u64,
            )
        })
    {
        receipts::refused(&reply, ingest.cell(ingest.key_id.as_deref(), received_at), &env, &ctx);
        return respond(reply);
    }
    // A gzip body is inflated by the runtime (no inflater in the wasm), never
    // past the largest body any route takes; each route's own limit is then
    // checked as if it had been inflated here.
    // PostHog's gzip-js says it is gzip only by its first bytes: the reader
    // looks at them and inflates the body if they say so.
    let named = decode::is_gzip(head.content_encoding());
    let sniff = !named && head.content_encoding().is_none() && ingest.sniffs_gzip();
    let inflate_cap = (named || sniff).then_some(config.api.limits.max_body_bytes);
    js::then_with_body(&req, ingest.body_limit, inflate_cap, sniff, move |read| match read {
        js::Read::Body(bytes, inflated) => accept::ingest_body(
            config,
            &head,
            ingest,
            (&bytes, inflated.as_ref()),
            received_at,
            env,
            ctx,
        ),
        js::Read::TooLarge => {
            let reply = ingest.too_large();
            receipts::refused(&reply, ingest.cell(ingest.key_id.as_deref(), received_at), &env, &ctx);
            respond(reply)
        }
        js::Read::Failed(e) => {
            let cell = ingest.cell(ingest.key_id.as_deref(), received_at);
            let reply = ApiError::Unavailable(format!("the body could not be read: {e}")).reply(ingest.cors);
            receipts::refused(&reply, cell, &env, &ctx);
            respond(reply)
        }
    })
    .into()
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

fn respond(reply: Reply) -> JsValue {
    js::response(reply.status, reply.bytes(), &reply.all_headers()).into()
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
