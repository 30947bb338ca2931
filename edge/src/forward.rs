//! Getting accepted envelopes on their way: the direct path (`waitUntil`,
//! gathering an isolate's requests into windows), the queue producer, and the
//! dead-letter step that makes sure nothing is dropped silently. Sending to
//! the sink is `send.rs`; the queue consumer is `consume.rs`.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use edgehose_shared::batch::{group_lines, queue_batches};
use edgehose_shared::limits::{DIRECT_FLUSH_BYTES, DIRECT_FLUSH_LINES, QUEUE_MESSAGE_TARGET_BYTES};
use edgehose_shared::shard::shard_of;
use worker::{Context, Delay, Env, Queue, console_error};

use crate::config::{DEAD_LETTER_QUEUE, EdgeConfig, Mode, events_queue_binding};
use crate::js;
use crate::send::send;

thread_local! {
    /// Messages this isolate wrote to each events queue shard (`GET /healthz`).
    static QUEUE_MESSAGES: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// Messages this isolate has written to each events queue shard.
pub fn queue_messages_written() -> Vec<u64> {
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

thread_local! {
    /// The isolate-wide buffer: envelopes waiting for the open flush window.
    static PENDING: RefCell<Pending> = RefCell::new(Pending::default());
}

#[derive(Default)]
struct Pending {
    lines: Vec<String>,
    bytes: usize,
    window_open: bool,
}

thread_local! {
    /// Direct-mode batches being delivered right now, by batch number.
    static IN_FLIGHT: RefCell<(u64, BTreeMap<u64, Vec<String>>)> = const { RefCell::new((0, BTreeMap::new())) };
    /// Whether this wasm instance has looked for orphans yet.
    static ORPHANS_CHECKED: Cell<bool> = const { Cell::new(false) };
}

/// Installs (once per instance) a panic hook that saves what direct mode
/// holds in wasm memory (the gathering buffer and batches in flight) into
/// the JavaScript global before the panic ends this instance, and from
/// there hands it to the events queue at once, whose consumer delivers it.
/// What the queue refuses, the next instance's first direct-mode request
/// sends again. At worst a batch that was in flight lands twice, never not
/// at all.
fn guard_against_panics() {
    if ORPHANS_CHECKED.with(|c| c.replace(true)) {
        return;
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let mut saved = Vec::new();
        PENDING.with(|p| {
            if let Ok(p) = p.try_borrow() {
                saved.extend(p.lines.iter().cloned());
            }
        });
        IN_FLIGHT.with(|f| {
            if let Ok(f) = f.try_borrow() {
                saved.extend(f.1.values().flatten().cloned());
            }
        });
        js::save_orphans(&saved);
        previous(info);
    }));
}

/// Hands a request's envelopes on after the response: direct mode to
/// the sink, queue mode with `QUEUE_WINDOW_MS` to the events queue.
///
/// Requests arriving within one window of each other in one isolate share
/// one call to the sink (direct) or one queue message (queue): the request
/// that opens a window keeps it alive with its own `waitUntil` and flushes
/// everything buffered when it closes, so a busy isolate makes one call or
/// message per window instead of one per request. A buffer that fills up is
/// sent at once by the request that filled it.
pub fn submit(config: Rc<EdgeConfig>, env: Env, ctx: &Context, mut lines: Vec<String>) {
    if !ORPHANS_CHECKED.with(Cell::get) {
        guard_against_panics();
        let orphans = js::take_orphans();
        if !orphans.is_empty() {
            console_error!(
                "edgehose: resending {} events a panicked instance left undelivered",
                orphans.len()
            );
            lines.extend(orphans);
        }
    }
    if config.window_ms() == 0 {
        ctx.wait_until(async move { flush(&config, &env, lines).await });
        return;
    }
    let (open_window, full) = PENDING.with(|p| {
        let mut p = p.borrow_mut();
        p.bytes += lines.iter().map(|l| l.len() + 1).sum::<usize>();
        p.lines.extend(lines);
        let full = (p.lines.len() >= DIRECT_FLUSH_LINES || p.bytes >= DIRECT_FLUSH_BYTES).then(|| take(&mut p));
        let open = !p.window_open;
        p.window_open = true;
        (open, full)
    });
    if let Some(now_lines) = full {
        let (config, env) = (config.clone(), env.clone());
        ctx.wait_until(async move { flush(&config, &env, now_lines).await });
    }
    if open_window {
        let wait = Duration::from_millis(config.window_ms());
        ctx.wait_until(async move {
            Delay::from(wait).await;
            let lines = PENDING.with(|p| {
                let mut p = p.borrow_mut();
                p.window_open = false;
                take(&mut p)
            });
            if !lines.is_empty() {
                flush(&config, &env, lines).await;
            }
        });
    }
}

/// Sends one window's lines on: direct mode to the sink; queue mode to the
/// events queue, and what the queue refuses straight to the sink, so a
/// queue outage costs a window's batching, not its events.
async fn flush(config: &EdgeConfig, env: &Env, lines: Vec<String>) {
    if config.mode == Mode::Direct {
        return direct(config, env, lines).await;
    }
    let batch = hold(&lines);
    if let Err((unsent, e)) = enqueue_lines(config, env, &lines).await {
        console_error!(
            "edgehose: every events queue refused {} events ({e}); delivering them directly",
            unsent.len()
        );
        deliver_lines(config, env, &unsent).await;
    }
    release(batch);
}

/// Keeps lines in `IN_FLIGHT` (which a panic saves) while they are sent.
fn hold(lines: &[String]) -> u64 {
    IN_FLIGHT.with(|f| {
        let mut f = f.borrow_mut();
        f.0 += 1;
        let n = f.0;
        f.1.insert(n, lines.to_vec());
        n
    })
}

fn release(batch: u64) {
    IN_FLIGHT.with(|f| f.borrow_mut().1.remove(&batch));
}

fn take(p: &mut Pending) -> Vec<String> {
    p.bytes = 0;
    std::mem::take(&mut p.lines)
}

/// Direct mode: packs, signs and sends a request's envelopes; what cannot be
/// delivered within the retry budget goes to the dead-letter path.
pub async fn direct(config: &EdgeConfig, env: &Env, lines: Vec<String>) {
    let batch = hold(&lines);
    deliver_lines(config, env, &lines).await;
    release(batch);
}

/// Sends lines to the sink; what the budget cannot deliver goes to the
/// dead-letter path.
async fn deliver_lines(config: &EdgeConfig, env: &Env, lines: &[String]) {
    if let Err(lost) = send(config, lines, config.retry).await {
        let reason = lost.reason.clone();
        dead_letter(env, &lost.texts(), &reason).await;
    }
}

/// Queue mode without a window, producer side: sends a request's envelopes
/// as text messages of whole lines to an events queue shard. What every
/// shard refuses is delivered directly in `waitUntil` (as direct mode would,
/// the answer then meaning the events were checked) rather than answered
/// with a 503 that a `sendBeacon` client never retries.
pub async fn enqueue_or_deliver(config: Rc<EdgeConfig>, env: Env, ctx: &Context, lines: &[String]) {
    if let Err((unsent, e)) = enqueue_lines(&config, &env, lines).await {
        console_error!(
            "edgehose: every events queue refused {} events ({e}); delivering them directly",
            unsent.len()
        );
        ctx.wait_until(async move { direct(&config, &env, unsent).await });
    }
}

/// Sends lines to the events queue shard their first line's hash picks; what
/// a shard refuses goes to the next, and so on round every shard. `Err`
/// holds the lines of every message no shard confirmed written, and why.
async fn enqueue_lines(config: &EdgeConfig, env: &Env, lines: &[String]) -> Result<(), (Vec<String>, String)> {
    let shards = config.queue_shards;
    // The first line's hash picks the shard: its envelope id makes it unique.
    let first = lines.first().map_or(0, |l| shard_of(l.as_bytes(), shards));
    let mut unsent: Vec<String> = lines.to_vec();
    let mut refusals: Vec<String> = Vec::new();
    for k in 0..shards {
        let shard = (first + k) % shards;
        let binding = events_queue_binding(shard);
        let result = match env.queue(&binding) {
            Ok(queue) => send_lines(&queue, &unsent).await,
            Err(e) => Err((unsent.clone(), format!("no queue binding: {e}"))),
        };
        match result {
            Ok(messages) => {
                count_messages(shard, shards, messages);
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
    Err((unsent, refusals.join("; ")))
}

/// Sends lines to a queue as text messages of whole lines, in as few
/// `sendBatch` calls as the Queues limits allow. `Err` holds the lines of
/// the batches from the first that failed on (none after it is tried);
/// `Ok` how many messages were written.
async fn send_lines(queue: &Queue, lines: &[String]) -> Result<usize, (Vec<String>, String)> {
    let messages = group_lines(lines, QUEUE_MESSAGE_TARGET_BYTES);
    let sizes: Vec<usize> = messages.iter().map(String::len).collect();
    for range in queue_batches(&sizes) {
        let start = range.start;
        if let Err(e) = js::send_batch(queue.as_ref(), &messages[range]).await {
            let unsent = messages[start..]
                .iter()
                .flat_map(|m| m.split('\n').map(str::to_owned))
                .collect();
            return Err((unsent, format!("sendBatch: {e}")));
        }
    }
    Ok(messages.len())
}

/// The last stop for envelopes that could not be delivered: the dead-letter
/// queue when one is bound, else an error line naming every id. Either way
/// the ids are logged. `false` when a bound dead-letter queue refused them
/// (the caller may still hand them back to the queue that redelivers).
pub async fn dead_letter(env: &Env, lines: &[String], reason: &str) -> bool {
    if lines.is_empty() {
        return true;
    }
    let ids = ids(lines).join(",");
    if let Ok(queue) = env.queue(DEAD_LETTER_QUEUE) {
        return match send_lines(&queue, lines).await {
            Ok(_) => {
                console_error!(
                    "edgehose: {} events sent to the dead-letter queue ({reason}); ids: {ids}",
                    lines.len()
                );
                true
            }
            Err((_, e)) => {
                console_error!(
                    "edgehose: the dead-letter queue refused {} events ({e}), undelivered because {reason}; ids: {ids}",
                    lines.len()
                );
                false
            }
        };
    }
    console_error!(
        "edgehose: LOST {} events ({reason}); no dead-letter queue took them; ids: {ids}",
        lines.len()
    );
    true
}

/// The envelope ids of some lines, for the log.
fn ids(lines: &[String]) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct IdOnly {
        id: String,
    }
    lines
        .iter()
        .map(|l| {
            serde_json::from_str::<IdOnly>(l)
                .map(|e| e.id)
                .unwrap_or_else(|_| "?".to_owned())
        })
        .collect()
}
