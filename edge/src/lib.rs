//! The edgehose edge Worker: answers `POST /v1/events` at the Cloudflare edge
//! as soon as the request is checked, then forwards the enveloped events to
//! the sink `SINK` names (an Amazon Data Firehose stream, `PutRecordBatch`;
//! a Kinesis data stream, `PutRecords`; an SQS queue, `SendMessageBatch`;
//! SigV4-signed), directly
//! (`waitUntil`) or through a Cloudflare Queue drained by this Worker.
//!
//! Everything about the HTTP API itself lives in `edgehose_shared::api`, so the
//! API Gateway path answers identically; this crate only moves bytes between
//! the Workers runtime and the shared crate.

mod archive;
mod aws;
mod clock;
pub mod config;
mod consume;
mod dead_letter;
mod failover;
mod find;
mod firehose;
mod forward;
mod in_flight;
mod js;
mod kinesis;
mod outcomes;
mod queue;
mod redrive;
mod send;
mod sink;
mod sqs;

use std::cell::RefCell;
use std::rc::Rc;

use edgehose_shared::api::{self, ApiError, Body, Ingest, Prepared, Reply, RequestHead};
use edgehose_shared::decode::{self, Inflated};
use edgehose_shared::envelope::EdgeMeta;
use edgehose_shared::guard::{self, Limit};
use edgehose_shared::identity;
use edgehose_shared::outcome::{self, Cell, Outcome};
use edgehose_shared::rate_limit;
use edgehose_shared::settings::SettingError;
use edgehose_shared::timestamp::Timestamp;
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::wasm_bindgen;
use worker::worker_sys::web_sys;
use worker::{Context, Env, console_error};

use crate::clock::{CryptoRandom, now};
use crate::config::EdgeConfig;
use crate::js::Head;

thread_local! {
    /// The configuration, read once per isolate; a bad one is logged once and
    /// answered 500 from then on (a fixed deploy starts new isolates).
    static CONFIG: RefCell<Option<Result<Rc<EdgeConfig>, SettingError>>> = const { RefCell::new(None) };
    /// What the isolate knows of its rate-limit counters (spent ones, fractions owed).
    static LIMITS: RefCell<rate_limit::Memory> = RefCell::new(rate_limit::Memory::default());
}

/// The Rate Limiting binding `RATE_LIMITS` is counted on (`[[ratelimits]]`
/// in wrangler.toml, its `simple.limit` and `period` those of
/// `edgehose_shared::rate_limit`).
pub const RATE_LIMITER_BINDING: &str = "RATE_LIMITER";

fn config(env: &Env) -> Result<Rc<EdgeConfig>, ApiError> {
    if let Some(c) = CONFIG.with(|c| c.borrow().clone()) {
        return c.map_err(ApiError::Misconfigured);
    }
    let read = EdgeConfig::from_env(env).and_then(|c| {
        if c.api.rate_limits.is_enabled() && limiter(env).is_none() {
            return Err(SettingError::new(
                "RATE_LIMITS",
                format!(
                    "is set and the Worker has no {RATE_LIMITER_BINDING} binding ([[ratelimits]] in wrangler.toml)"
                ),
            ));
        }
        Ok(Rc::new(c))
    });
    if let Err(e) = &read {
        // Once per isolate: the same error on every request says nothing new.
        console_error!("edgehose: misconfigured, answering 500 to every request: {e}");
    }
    CONFIG.with(|slot| *slot.borrow_mut() = Some(read.clone()));
    read.map_err(ApiError::Misconfigured)
}

/// The Worker's `fetch` handler, exported as worker-build expects one.
///
/// It is synchronous: everything the head decides (errors, preflight,
/// health) is answered at once, and otherwise the answer is a promise that
/// settles when the body has been read and checked, in one promise callback
/// rather than a Rust future. Direct mode hands the events to `waitUntil`
/// there; queue mode answers once the queue holds them.
#[wasm_bindgen(js_name = fetch)]
pub fn fetch(req: web_sys::Request, env: Env, ctx: worker::worker_sys::Context) -> JsValue {
    let received_at = now();
    let head = Head::read(&req);
    let (path, query) = split_url(head.url());
    let config = match config(&env) {
        Ok(c) => c,
        Err(e) => {
            let reply = e.reply(api::cors_headers_without_config(head.origin()));
            refused(&reply, refused_cell(path, received_at), &env, &Context::new(ctx));
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
        if let Err(reply) = redrive::check(&config, head.authorization()) {
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
        if let Err(reply) = redrive::check(&config, head.authorization()) {
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
                && redrive::check(&config, head.authorization()).is_ok()
            {
                let totals = outcomes::totals();
                let accepted = totals[Outcome::Accepted.index()];
                let lost = totals[Outcome::Lost.index()];
                let outcomes = Outcome::ALL
                    .iter()
                    .map(|o| format!(r#""{}":{}"#, o.as_str(), totals[o.index()]))
                    .collect::<Vec<_>>()
                    .join(",");
                let memory = wasm_memory_bytes();
                let shards = queue::messages_written();
                let messages: u64 = shards.iter().sum();
                let shards = shards.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
                let calls = in_flight::in_flight();
                let held = forward::held_bytes();
                let failover = failover::report();
                reply.body = format!(
                    r#"{{"status":"ok","isolate":{{"accepted_events":{accepted},"queue_messages":{messages},"queue_shard_messages":[{shards}],"calls_in_flight":{calls},"held_bytes":{held},"lost_events":{lost},"wasm_memory_bytes":{memory},"outcomes":{{{outcomes}}},"failover":{{{failover}}}}}}}"#
                );
            }
            if reply.status >= 400 {
                refused(&reply, refused_cell(path, received_at), &env, &Context::new(ctx));
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
        refused(&reply, ingest.cell(ingest.key_id.as_deref(), received_at), &env, &ctx);
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
        js::Read::Body(bytes, inflated) => ingest_body(
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
            refused(&reply, ingest.cell(ingest.key_id.as_deref(), received_at), &env, &ctx);
            respond(reply)
        }
        js::Read::Failed(e) => {
            let cell = ingest.cell(ingest.key_id.as_deref(), received_at);
            let reply = ApiError::Unavailable(format!("the body could not be read: {e}")).reply(ingest.cors);
            refused(&reply, cell, &env, &ctx);
            respond(reply)
        }
    })
    .into()
}

/// The second half of a request: its body is in.
fn ingest_body(
    config: Rc<EdgeConfig>,
    head: &Head,
    ingest: Ingest,
    (bytes, inflated): (&[u8], Option<&Inflated>),
    received_at: Timestamp,
    env: Env,
    ctx: Context,
) -> JsValue {
    #[cfg(feature = "panic-probe")]
    if bytes == b"panic probe" {
        panic!("panic probe: deliberate panic after the body was read");
    }
    let edge = EdgeMeta {
        country: head.country().map(Into::into),
        colo: head.colo().map(Into::into),
        asn: head.asn(),
        client_ip: config
            .api
            .store_client_ip
            .then(|| head.client_ip().map(Into::into))
            .flatten(),
    };
    let body = Body {
        bytes,
        content_type: head.content_type(),
        content_encoding: head.content_encoding(),
        inflated,
    };
    let mut accepted = match api::accept(&ingest, body, &edge, &config.api, received_at, &CryptoRandom::default()) {
        Ok(a) => a,
        Err(reply) => {
            refused(&reply, ingest.cell(ingest.key_id.as_deref(), received_at), &env, &ctx);
            return respond(reply);
        }
    };
    let visitor = identity::Visitor {
        cookie: head.cookie(),
        anonymous: head.anonymous(),
        query: ingest.query.as_deref(),
    };
    identity::settle(
        &mut accepted,
        config.api.identity.as_ref(),
        &visitor,
        &CryptoRandom::default(),
    );
    let finding = edgehose_shared::bot::judge(&head.bot_signals());
    let now_ms = received_at.as_millis() as u64;
    let limit = LIMITS.with(|m| {
        guard::limit(
            &accepted,
            &config.api,
            head.client_ip(),
            &mut m.borrow_mut(),
            now_ms,
            &CryptoRandom::default(),
        )
    });
    let pending = Pending {
        config,
        accepted,
        finding,
        cors: ingest.cors,
        received_at,
        country: head.country().map(str::to_owned),
        env,
        ctx,
    };
    let (calls, binding) = match limit {
        Limit::Within => return pending.answer(None),
        Limit::Over(scope) => return pending.answer(Some(scope)),
        Limit::Ask(calls) => match limiter(&pending.env) {
            Some(binding) => (calls, binding),
            // Not reached: RATE_LIMITS without the binding is a configuration error.
            None => return pending.answer(None),
        },
    };
    let counters: Vec<String> = calls.iter().map(|(c, _)| c.clone()).collect();
    let counters: Vec<&str> = counters.iter().map(String::as_str).collect();
    js::then_rate_limited(&binding, &counters, move |refused| {
        let over = match refused {
            Ok(refused) => refused.map(|i| {
                LIMITS.with(|m| m.borrow_mut().spend(&calls[i].0, now_ms));
                calls[i].1
            }),
            // A limiter that fails lets the request through: losing
            // events to a guard's outage is worse than a flood's bill.
            Err(e) => {
                console_error!("edgehose: the rate limiter failed, request let through: {e}");
                None
            }
        };
        pending.answer(over)
    })
    .into()
}

/// The Rate Limiting binding, when the Worker has one.
fn limiter(env: &Env) -> Option<JsValue> {
    js::binding(env, RATE_LIMITER_BINDING)
}

/// An accepted request waiting for its limits: what answering it needs.
struct Pending {
    config: Rc<EdgeConfig>,
    accepted: api::Accepted,
    finding: Option<edgehose_shared::bot::Finding>,
    cors: Vec<(&'static str, String)>,
    received_at: Timestamp,
    /// `request.cf.country`: which region's the events are.
    country: Option<String>,
    env: Env,
    ctx: Context,
}

impl Pending {
    /// Answers once its limits are known (`over`: the scope of the limit it
    /// went past): 429, or its events (labelled, if they are) handed on and
    /// the answer given.
    fn answer(self, over: Option<rate_limit::Scope>) -> JsValue {
        let Pending {
            config,
            accepted,
            finding,
            cors,
            received_at,
            country,
            env,
            ctx,
        } = self;
        let now_ms = now().as_millis() as u64;
        let cell = accepted.cell.clone();
        let mut accepted = match guard::settle(accepted, &config.api, finding.as_ref(), over, now_ms) {
            Ok(a) => a,
            Err(reply) => {
                refused(&reply, cell, &env, &ctx);
                return respond(reply);
            }
        };
        // Residency: the request's region, by its country, before anything
        // leaves the edge; its lines name it and carry only what it allows.
        let home = config.route(country.as_deref());
        if let Some(region) = &home.residency {
            edgehose_shared::residency::apply(&mut accepted.lines, region);
        }
        let bytes = forward::size_of(&accepted.lines);
        if config.answers_at_once() && forward::has_room(&config, bytes) {
            // The window's flush writes these counts with its own.
            count_accepted(&accepted);
            forward::submit(config.clone(), env, &ctx, accepted.lines, now());
            return respond(accepted.reply);
        }
        // Queue mode without a window, or an isolate holding all it may: answer
        // once a queue shard holds the events, and 503 (`Retry-After`) when none
        // takes them — never held where nothing keeps them.
        let held = config.answers_at_once().then(forward::held_bytes);
        js_sys::futures::future_to_promise(async move {
            let home = config.route(country.as_deref());
            match forward::enqueue_first(home, &env, &accepted.lines, received_at).await {
                Ok(()) => {
                    count_accepted(&accepted);
                    outcomes::flush_later(&env, &ctx);
                    Ok(respond(accepted.reply))
                }
                Err(e) => {
                    let why = match held {
                        Some(held) => format!(
                            "this isolate holds {held} bytes of accepted events, at its MAX_HELD_BYTES of {}, and {e}",
                            config.max_held_bytes
                        ),
                        None => e,
                    };
                    console_error!("edgehose: answered 503 to {} events: {why}", accepted.count);
                    // Counted as the 503 it is, though PostHog's v1 route
                    // says so per event (`retry`) in a 200.
                    let counted = ApiError::Unavailable(why.clone()).reply(Vec::new());
                    refused(&counted, accepted.cell.clone(), &env, &ctx);
                    Ok(respond(accepted.unavailable(why, cors)))
                }
            }
        })
        .into()
    }
}

/// The size of this instance's linear memory: what the Worker holds of its
/// isolate's 128 MB, which only grows (wasm memory is never given back).
fn wasm_memory_bytes() -> usize {
    #[cfg(target_arch = "wasm32")]
    {
        core::arch::wasm32::memory_size(0) * 65_536
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0
    }
}

/// Counts a request's accepted lines (and of them the quarantined, the
/// limited by scope, the bot-labelled by verdict).
fn count_accepted(accepted: &api::Accepted) {
    let n = accepted.lines.len() as u64;
    outcomes::count(accepted.cell.clone(), Outcome::Accepted, n);
    outcomes::count(accepted.cell.clone(), Outcome::Quarantined, accepted.quarantined as u64);
    for (outcome, reason) in [
        (Outcome::Limited, &accepted.label.limited),
        (Outcome::Labelled, &accepted.label.bot),
    ] {
        if let Some(reason) = reason {
            let cell = Cell {
                reason: reason.clone(),
                ..accepted.cell.clone()
            };
            outcomes::count(cell, outcome, n);
        }
    }
}

/// Counts a request answered with an error, under its status; the count
/// leaves the isolate with the next flush, at the latest by its timer.
fn refused(reply: &Reply, mut cell: Cell, env: &Env, ctx: &Context) {
    cell.reason = reply.status.to_string();
    outcomes::count(cell, Outcome::Refused, 1);
    outcomes::flush_later(env, ctx);
}

/// Where a request refused before its door was read is counted: its minute,
/// no key, and its door when its path names one (else `http`).
fn refused_cell(path: &str, received_at: Timestamp) -> Cell {
    let door = api::Door::of_path(path.trim_end_matches('/')).ok().flatten();
    Cell {
        minute: outcome::minute_of(received_at),
        key: String::new(),
        door: door.as_ref().map_or_else(|| "http".to_owned(), api::Door::name),
        reason: String::new(),
    }
}

/// The Worker's `queue` handler, exported as worker-build expects one. It
/// reads the batch through `js` (ids, delivery counts, bodies of any type),
/// which the `worker` crate's typed batch does not show.
#[wasm_bindgen(js_name = queue)]
pub fn queue(batch: JsValue, env: Env, _ctx: worker::worker_sys::Context) -> js_sys::Promise {
    let batch = js::QueueBatch(batch);
    js_sys::futures::future_to_promise(async move {
        // Archiving dead letters needs only the R2 binding, never the rest
        // of the configuration: a bad deploy still keeps them.
        let name = batch.queue();
        if let Some((_, prefix)) = config::dead_letter_queues(&env).into_iter().find(|(n, _)| *n == name) {
            archive::archive(&env, &prefix, &batch).await;
            return Ok(JsValue::UNDEFINED);
        }
        match config(&env) {
            Ok(config) => consume::consume(&config, &env, &batch).await,
            // Misconfigured: the queue redelivers later and later (a minute,
            // doubling to 12 hours), so a bad deploy has hours to be mended
            // before `max_retries` run out, not minutes.
            Err(_) => {
                let settle: Vec<js::Settle> = batch
                    .messages()
                    .iter()
                    .map(|m| js::Settle::Retry {
                        delay_seconds: edgehose_shared::requeue::redelivery_delay_seconds(m.attempts),
                    })
                    .collect();
                console_error!(
                    "edgehose: {} queue messages wait for a configuration that can be read; redelivered in {} s",
                    settle.len(),
                    settle
                        .iter()
                        .map(|s| match s {
                            js::Settle::Retry { delay_seconds } => *delay_seconds,
                            js::Settle::Ack => 0,
                        })
                        .min()
                        .unwrap_or(0)
                );
                batch.settle(&settle);
            }
        }
        Ok(JsValue::UNDEFINED)
    })
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
