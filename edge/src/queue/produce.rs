//! The events queues' producer: lines as text messages of whole lines,
//! spread over the `QUEUE_SHARDS` shards, each `sendBatch` given only what
//! is left of its caller's deadline (at most [`QUEUE_WRITE_TIMEOUT_MS`]), a
//! shard that refuses or stalls handing on to the next. The request path
//! (a window's flush, and [`enqueue_first`] for a request no window takes),
//! the consumer's own retries and the dead-letter step's fallback all write
//! through here.

use std::cell::RefCell;

use edgehose_shared::batch::{group_lines, queue_batches};
use edgehose_shared::deadline::Deadline;
use edgehose_shared::limits::{QUEUE_MESSAGE_TARGET_BYTES, QUEUE_WRITE_TIMEOUT_MS};
use edgehose_shared::outcome::Outcome;
use edgehose_shared::requeue::QueueBody;
use edgehose_shared::shard::shard_of;
use edgehose_shared::timestamp::Timestamp;
use worker::{Env, console_error};

use crate::clock::now;
use crate::config::EdgeConfig;
use crate::js;
use crate::receipts;
use crate::window;

thread_local! {
    /// Messages this isolate wrote to each events queue shard (`GET /healthz`).
    static QUEUE_MESSAGES: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// Messages this isolate has written to each events queue shard.
pub fn messages_written() -> Vec<u64> {
    QUEUE_MESSAGES.with(|m| m.borrow().clone())
}

fn count_messages(shard: usize, shards: usize, messages: usize) {
    QUEUE_MESSAGES.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() < shards {
            m.resize(shards, 0);
        }
        m[shard] += messages as u64;
    });
}

/// How a write goes: lines already tried `tries` times by the consumer,
/// delivered `delay_seconds` from now, all of it by `deadline`.
#[derive(Debug, Clone, Copy)]
pub struct Write {
    /// Consumer runs that already failed these lines (0 from the request path).
    pub tries: u32,
    /// `delaySeconds` for the messages.
    pub delay_seconds: u32,
    /// When the writing must be over.
    pub deadline: Deadline,
}

impl Write {
    /// A first write from the request path, by `deadline`.
    pub fn now(deadline: Deadline) -> Self {
        Self {
            tries: 0,
            delay_seconds: 0,
            deadline,
        }
    }
}

/// Sends lines to the events queue shard their first line's hash picks;
/// what a shard refuses goes to the next, and so on round every shard.
/// `Err` holds the lines of every message no shard confirmed written, and why.
pub async fn enqueue<S: AsRef<str>>(
    config: &EdgeConfig,
    env: &Env,
    lines: &[S],
    write: Write,
) -> Result<(), (Vec<String>, String)> {
    let shards = config.queue_shards;
    // The first line's hash picks the shard: its envelope id makes it unique.
    let first = lines.first().map_or(0, |l| shard_of(l.as_ref().as_bytes(), shards));
    let mut unsent: Vec<String> = lines.iter().map(|l| l.as_ref().to_owned()).collect();
    let mut refusals: Vec<String> = Vec::new();
    for k in 0..shards {
        let shard = (first + k) % shards;
        let binding = config.queue_binding(shard);
        let result = match env.queue(&binding) {
            Ok(queue) => send_lines(queue.as_ref(), &unsent, write).await,
            Err(e) => Err((unsent.clone(), format!("no queue binding: {e}"))),
        };
        match result {
            Ok(messages) => {
                count_messages(shard, shards, messages);
                count_enqueued(lines, 0, write);
                if !refusals.is_empty() {
                    console_error!(
                        "edgehose: {}; {} events went to {binding} instead",
                        refusals.join("; "),
                        unsent.len()
                    );
                }
                return Ok(());
            }
            Err((rest, e)) => {
                // Messages before the one refused were written to this shard.
                unsent = rest;
                refusals.push(format!("{binding} refused ({e})"));
            }
        }
    }
    count_enqueued(lines, unsent.len(), write);
    Err((unsent, refusals.join("; ")))
}

/// Counts a first write's lines as enqueued (a consumer's or the
/// dead-letter step's write puts back what was counted already), all but
/// the `unsent` at the end: each shard's refusal leaves the lines from its
/// first refused message on.
fn count_enqueued<S: AsRef<str>>(lines: &[S], unsent: usize, write: Write) {
    if write.tries == 0 {
        receipts::count_lines(&lines[..lines.len().saturating_sub(unsent)], Outcome::Enqueued, "");
    }
}

/// Sends lines to a queue as text messages of whole lines, in as few
/// `sendBatch` calls as the Queues limits allow. `Err` holds the lines of
/// the batches from the first that failed on (none after it is tried);
/// `Ok` how many messages were written.
async fn send_lines(
    queue: &wasm_bindgen::JsValue,
    lines: &[String],
    write: Write,
) -> Result<usize, (Vec<String>, String)> {
    let target = QUEUE_MESSAGE_TARGET_BYTES - QueueBody::header_bytes(write.tries);
    let messages: Vec<String> = group_lines(lines, target)
        .into_iter()
        .map(|m| {
            if write.tries == 0 {
                m
            } else {
                QueueBody::frame(&[m], write.tries)
            }
        })
        .collect();
    let sizes: Vec<usize> = messages.iter().map(String::len).collect();
    for range in queue_batches(&sizes) {
        let start = range.start;
        let timeout_ms = write.deadline.step_ms(now(), QUEUE_WRITE_TIMEOUT_MS);
        let sent = if timeout_ms == 0 {
            Err("not sent: the deadline passed".to_owned())
        } else {
            js::send_batch(queue, &messages[range], write.delay_seconds, timeout_ms).await
        };
        if let Err(e) = sent {
            let unsent = messages[start..]
                .iter()
                .flat_map(|m| {
                    QueueBody::parse(m)
                        .lines
                        .into_iter()
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                })
                .collect();
            return Err((unsent, format!("sendBatch: {e}")));
        }
    }
    Ok(messages.len())
}

/// Writes a request's envelopes to an events queue before it is answered
/// (queue mode without a window, and any request an isolate at its
/// `MAX_HELD_BYTES` will not hold). `Err` says why no queue holds them:
/// the request is then answered 503 with `Retry-After`, never held.
pub async fn enqueue_first(
    config: &EdgeConfig,
    env: &Env,
    lines: &[String],
    received_at: Timestamp,
) -> Result<(), String> {
    let (_, work) = window::work_deadline(received_at);
    enqueue(config, env, lines, Write::now(work))
        .await
        .map_err(|(unsent, e)| format!("no events queue took {} of its events: {e}", unsent.len()))
}
