//! The edgehose edge Worker: answers `POST /v1/events` at the Cloudflare edge
//! as soon as the request is checked, then forwards the enveloped events to
//! the sink `SINK` names (an Amazon Data Firehose stream, `PutRecordBatch`;
//! a Kinesis data stream, `PutRecords`; an SQS queue, `SendMessageBatch`;
//! SigV4-signed), directly (`waitUntil`) or through a Cloudflare Queue
//! drained by this Worker.
//!
//! Everything about the HTTP API itself lives in `edgehose_shared::api`, so
//! the API Gateway path answers identically; this crate only moves bytes
//! between the Workers runtime and the shared crate.
//!
//! Where to look:
//!
//! | where … | file |
//! |---|---|
//! | a request is answered | `request/mod.rs` (routing, early refusal, the body read); `request/accept.rs` (limits, residency, hand-off, the answer); `request/healthz.rs` (the isolate's figures); `request/admin.rs` (the admin key) |
//! | a window gathers | `window.rs` (the windows, what an isolate holds, the panic guard) |
//! | a queue message is consumed | `queue/mod.rs` (which queue a batch came from); `queue/consume.rs` (an events queue's batch to the sink); `queue/produce.rs` (writing the events queues) |
//! | a sink call is made | `sinks/send.rs` (to the configured sink, or its standby: `sinks/failover.rs`); `sinks/firehose.rs`, `sinks/kinesis.rs`, `sinks/sqs.rs`; `sinks/signed_call.rs` (SigV4); `sinks/in_flight.rs` (the cap on calls in flight); `sinks/mod.rs` (what they share) |
//! | dead letters go | `dead_letters/mod.rs` (the R2 archive); `dead_letters/queue_consumer.rs` (the dead-letter queue); `dead_letters/redrive.rs` (`/v1/redrive`); `dead_letters/find.rs` (`GET /v1/dead-letters`) |
//! | the receipts are counted | `receipts.rs` (outcome counts to Analytics Engine) |
//!
//! Beside them: `config.rs` (the settings, read once per isolate), `js.rs`
//! (the JavaScript glue in `edge/js/`, bound), `clock.rs` (time and
//! randomness).

mod clock;
pub mod config;
mod dead_letters;
mod js;
mod queue;
mod receipts;
mod request;
mod sinks;
mod window;

use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::wasm_bindgen;
use worker::Env;
use worker::worker_sys::web_sys;

/// The Worker's `fetch` handler, exported as worker-build expects one:
/// `request/mod.rs` answers.
#[wasm_bindgen(js_name = fetch)]
pub fn fetch(req: web_sys::Request, env: Env, ctx: worker::worker_sys::Context) -> JsValue {
    request::handle(req, env, ctx)
}

/// The Worker's `queue` handler, exported as worker-build expects one:
/// `queue/mod.rs` consumes the batch.
#[wasm_bindgen(js_name = queue)]
pub fn queue(batch: JsValue, env: Env, _ctx: worker::worker_sys::Context) -> js_sys::Promise {
    queue::handle(js::QueueBatch(batch), env)
}
