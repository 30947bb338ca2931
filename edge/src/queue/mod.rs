//! Where a queue message is consumed: the Worker's `queue` handler routes
//! each batch by the queue it came from. A dead-letter queue's batch is
//! archived (`dead_letters/queue_consumer.rs`), needing nothing but the R2
//! binding; an events queue's is delivered to the sink (`consume.rs`); and
//! while the configuration cannot be read, every message waits for a fixed
//! deploy, redelivered later and later. `produce.rs` writes the events
//! queues.

pub(crate) mod consume;
pub(crate) mod produce;

use wasm_bindgen::JsValue;
use worker::{Env, console_error};

use crate::config;
use crate::dead_letters::queue_consumer;
use crate::js;

/// Consumes one batch (the body of the Worker's `queue` handler). The batch
/// is read through `js` (ids, delivery counts, bodies of any type), which
/// the `worker` crate's typed batch does not show.
pub(crate) fn handle(batch: js::QueueBatch, env: Env) -> js_sys::Promise {
    js_sys::futures::future_to_promise(async move {
        // Archiving dead letters needs only the R2 binding, never the rest
        // of the configuration: a bad deploy still keeps them.
        let name = batch.queue();
        if let Some((_, prefix)) = config::dead_letter_queues(&env).into_iter().find(|(n, _)| *n == name) {
            queue_consumer::archive(&env, &prefix, &batch).await;
            return Ok(JsValue::UNDEFINED);
        }
        match config::isolate(&env) {
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
