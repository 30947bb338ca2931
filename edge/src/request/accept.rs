//! A request whose body is in: its events accepted (`shared::api::accept`),
//! its visitor identified, bots judged, its rate limits asked (of the
//! isolate's memory, then of the Rate Limiting binding), its residency
//! applied by the country it came from, and its events handed on — to the
//! open window (`window`), or written to an events queue before the answer
//! (`queue::produce`) — and the answer given: 200, 429, or 503 when nothing
//! will keep them.

use std::rc::Rc;

use edgehose_shared::api::{self, ApiError, Body, Ingest};
use edgehose_shared::decode::Inflated;
use edgehose_shared::envelope::EdgeMeta;
use edgehose_shared::guard::{self, Limit};
use edgehose_shared::identity;
use edgehose_shared::rate_limit;
use edgehose_shared::timestamp::Timestamp;
use wasm_bindgen::JsValue;
use worker::{Context, Env, console_error};

use super::{LIMITS, respond};
use crate::clock::{CryptoRandom, now};
use crate::config::{self, EdgeConfig};
use crate::js::{self, Head};
use crate::queue::produce;
use crate::receipts;
use crate::window;

/// The second half of a request: its body is in.
pub(super) fn ingest_body(
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
            receipts::refused(&reply, ingest.cell(ingest.key_id.as_deref(), received_at), &env, &ctx);
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
        Limit::Ask(calls) => match config::rate_limiter(&pending.env) {
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
                receipts::refused(&reply, cell, &env, &ctx);
                return respond(reply);
            }
        };
        // Residency: the request's region, by its country, before anything
        // leaves the edge; its lines name it and carry only what it allows.
        let home = config.route(country.as_deref());
        if let Some(region) = &home.residency {
            edgehose_shared::residency::apply(&mut accepted.lines, region);
        }
        let bytes = window::size_of(&accepted.lines);
        if config.answers_at_once() && window::has_room(&config, bytes) {
            // The window's flush writes these counts with its own.
            receipts::count_accepted(&accepted);
            window::submit(config.clone(), env, &ctx, accepted.lines, now());
            return respond(accepted.reply);
        }
        // Queue mode without a window, or an isolate holding all it may: answer
        // once a queue shard holds the events, and 503 (`Retry-After`) when none
        // takes them — never held where nothing keeps them.
        let held = config.answers_at_once().then(window::held_bytes);
        js_sys::futures::future_to_promise(async move {
            let home = config.route(country.as_deref());
            match produce::enqueue_first(home, &env, &accepted.lines, received_at).await {
                Ok(()) => {
                    receipts::count_accepted(&accepted);
                    receipts::flush_later(&env, &ctx);
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
                    receipts::refused(&counted, accepted.cell.clone(), &env, &ctx);
                    Ok(respond(accepted.unavailable(why, cors)))
                }
            }
        })
        .into()
    }
}
