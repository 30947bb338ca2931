//! Where a window gathers: an isolate's accepted envelopes, answered at once,
//! gathered into windows (`DIRECT_FLUSH_MS` in direct mode, `QUEUE_WINDOW_MS`
//! in queue mode) and each window sent on in one `waitUntil` — to the sink
//! (direct), or to an events queue and what it refuses to the sink (queue);
//! the bound on what one isolate holds (`MAX_HELD_BYTES`); and the panic
//! guard that hands what a panicking instance holds to the events queue.
//! Everything after an answer runs under one deadline, `waitUntil`'s 30 s
//! from that answer ([`WAIT_UNTIL_LIMIT_MS`]) less the reserve the
//! dead-letter write keeps. Sending to the sink is `sinks/send.rs`; the queue
//! writes, and the write-first answer of a request no window takes, are
//! `queue/produce.rs`; the dead-letter step is `dead_letters/mod.rs`.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use edgehose_shared::deadline::Deadline;
use edgehose_shared::limits::{DEAD_LETTER_RESERVE_MS, DIRECT_FLUSH_BYTES, DIRECT_FLUSH_LINES, WAIT_UNTIL_LIMIT_MS};
use edgehose_shared::timestamp::Timestamp;
use worker::{Context, Delay, Env, console_error};

use crate::config::{EdgeConfig, Mode};
use crate::dead_letters::dead_letter;
use crate::js;
use crate::queue::produce::{self, Write};
use crate::receipts;
use crate::sinks::send::send;

thread_local! {
    /// The isolate-wide buffer: envelopes waiting for the open flush window.
    static PENDING: RefCell<Pending> = RefCell::new(Pending::default());
}

#[derive(Default)]
struct Pending {
    lines: Vec<String>,
    bytes: usize,
    /// When the request that opened the window was answered: the window's
    /// `waitUntil` runs from then.
    opened_at: Option<Timestamp>,
}

/// Batches being sent on, by number, and the last number given.
#[derive(Default)]
struct InFlight {
    last: u64,
    batches: BTreeMap<u64, Rc<[String]>>,
}

thread_local! {
    /// Batches being sent on right now: shared with the sending, never
    /// copied, and saved by a panic.
    static IN_FLIGHT: RefCell<InFlight> = const { RefCell::new(InFlight { last: 0, batches: BTreeMap::new() }) };
    /// Bytes of envelope lines in `PENDING` and `IN_FLIGHT` together.
    static HELD: Cell<usize> = const { Cell::new(0) };
    /// Whether this wasm instance installed its panic hook.
    static HOOKED: Cell<bool> = const { Cell::new(false) };
}

/// Bytes of accepted envelopes this isolate holds now (`GET /healthz`).
pub fn held_bytes() -> usize {
    HELD.with(Cell::get)
}

/// The bytes `lines` take while held (each line and its separator).
pub fn size_of(lines: &[String]) -> usize {
    lines.iter().map(|l| l.len() + 1).sum()
}

/// Whether `bytes` more may be held without passing `MAX_HELD_BYTES`.
pub fn has_room(config: &EdgeConfig, bytes: usize) -> bool {
    held_bytes().saturating_add(bytes) <= config.max_held_bytes
}

/// The deadline of work a `waitUntil` registered by the request answered
/// at `answered_at` carries out, less the dead-letter write's reserve.
pub(crate) fn work_deadline(answered_at: Timestamp) -> (Deadline, Deadline) {
    let whole = Deadline::after(answered_at, WAIT_UNTIL_LIMIT_MS);
    (whole, whole.less(DEAD_LETTER_RESERVE_MS))
}

/// Installs (once per instance) a panic hook that saves what direct mode
/// holds in wasm memory (the gathering buffer and batches in flight) into
/// the JavaScript global before the panic ends this instance, and from
/// there hands it to the events queue at once, whose consumer delivers it.
/// What the queue refuses, the next request sends on. At worst a batch that
/// was in flight lands twice, never not at all.
fn guard_against_panics() {
    if HOOKED.with(|c| c.replace(true)) {
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
                saved.extend(f.batches.values().flat_map(|b| b.iter().cloned()));
            }
        });
        js::save_orphans(&saved);
        previous(info);
    }));
}

/// Hands a request's envelopes on after the response: direct mode to
/// the sink, queue mode with `QUEUE_WINDOW_MS` to the events queue. The
/// caller checked [`has_room`] first.
///
/// Requests arriving within one window of each other in one isolate share
/// one call to the sink (direct) or one queue message (queue): the request
/// that opens a window keeps it alive with its own `waitUntil` and flushes
/// everything buffered when it closes, so a busy isolate makes one call or
/// message per window instead of one per request. A buffer that fills up is
/// sent at once by the request that filled it. Lines a panicked instance
/// left behind ride with the next request, whichever it is.
pub fn submit(config: Rc<EdgeConfig>, env: Env, ctx: &Context, mut lines: Vec<String>, answered_at: Timestamp) {
    guard_against_panics();
    let orphans = js::take_orphans();
    if !orphans.is_empty() {
        console_error!(
            "edgehose: sending on {} events a panicked instance left undelivered",
            orphans.len()
        );
        lines.extend(orphans);
    }
    let bytes = size_of(&lines);
    HELD.with(|h| h.set(h.get() + bytes));
    if config.window_ms() == 0 {
        let batch = hold(lines);
        ctx.wait_until(async move { flush(&config, &env, batch, answered_at).await });
        return;
    }
    let (open_window, full) = PENDING.with(|p| {
        let mut p = p.borrow_mut();
        p.bytes += bytes;
        p.lines.extend(lines);
        let open = p.opened_at.is_none();
        if open {
            p.opened_at = Some(answered_at);
        }
        let full = (p.lines.len() >= DIRECT_FLUSH_LINES || p.bytes >= DIRECT_FLUSH_BYTES).then(|| take(&mut p));
        (open, full)
    });
    if let Some(now_lines) = full {
        let (config, env) = (config.clone(), env.clone());
        let batch = hold(now_lines);
        ctx.wait_until(async move { flush(&config, &env, batch, answered_at).await });
    }
    if open_window {
        let wait = Duration::from_millis(config.window_ms());
        ctx.wait_until(async move {
            Delay::from(wait).await;
            let (lines, opened_at) = PENDING.with(|p| {
                let mut p = p.borrow_mut();
                let opened_at = p.opened_at.take().unwrap_or(answered_at);
                (take(&mut p), opened_at)
            });
            if !lines.is_empty() {
                flush(&config, &env, hold(lines), opened_at).await;
            }
        });
    }
}

/// Sends one window's lines on under the deadline of the `waitUntil` that
/// carries it: direct mode to the sink; queue mode to the events queue, and
/// what the queue refuses straight to the sink, so a queue outage costs a
/// window's batching, not its events. What does not land is dead-lettered.
async fn flush(config: &EdgeConfig, env: &Env, batch: (u64, Rc<[String]>), answered_at: Timestamp) {
    let (whole, work) = work_deadline(answered_at);
    let lines = &batch.1;
    if config.regions.is_none() {
        send_on(config, env, lines, whole, work).await;
    } else {
        // A window gathers every region's requests: each region's lines go
        // to its own queue or sink, side by side.
        let sends = config.by_region(lines).into_iter().map(|(region, members)| {
            let group: Vec<String> = members.iter().map(|&i| lines[i].clone()).collect();
            async move {
                match region {
                    Some(region) => send_on(region, env, &group, whole, work).await,
                    None => {
                        let why = "its region is not one of REGIONS: sent to no sink";
                        dead_letter(
                            config,
                            env,
                            &group,
                            (why, edgehose_shared::outcome::why::REFUSED_BY_SINK),
                            whole,
                        )
                        .await;
                    }
                }
            }
        });
        futures_util::future::join_all(sends).await;
    }
    release(batch.0);
    receipts::flush(env);
}

/// One region's lines of a window: direct mode to its sink; queue mode to
/// its events queue, and what the queue refuses straight to its sink.
async fn send_on(config: &EdgeConfig, env: &Env, lines: &[String], whole: Deadline, work: Deadline) {
    if config.mode == Mode::Direct {
        deliver(config, env, lines, whole, work).await;
    } else if let Err((unsent, e)) = produce::enqueue(config, env, lines, Write::now(work)).await {
        console_error!(
            "edgehose: every events queue refused {} events ({e}); delivering them directly",
            unsent.len()
        );
        deliver(config, env, &unsent, whole, work).await;
    }
}

/// Keeps lines in `IN_FLIGHT` (which a panic saves) while they are sent.
fn hold(lines: Vec<String>) -> (u64, Rc<[String]>) {
    let lines: Rc<[String]> = lines.into();
    IN_FLIGHT.with(|f| {
        let mut f = f.borrow_mut();
        f.last += 1;
        let n = f.last;
        f.batches.insert(n, lines.clone());
        (n, lines)
    })
}

fn release(batch: u64) {
    let freed = IN_FLIGHT.with(|f| f.borrow_mut().batches.remove(&batch));
    if let Some(lines) = freed {
        let bytes = size_of(&lines);
        HELD.with(|h| h.set(h.get().saturating_sub(bytes)));
    }
}

fn take(p: &mut Pending) -> Vec<String> {
    p.bytes = 0;
    std::mem::take(&mut p.lines)
}

/// Sends lines to the sink by `work`; what does not land is dead-lettered
/// by `whole`.
async fn deliver(config: &EdgeConfig, env: &Env, lines: &[String], whole: Deadline, work: Deadline) {
    if let Err(lost) = send(config, lines, config.retry, work).await {
        let (reason, code) = (lost.reason.clone(), lost.why());
        dead_letter(config, env, &lost.texts(), (&reason, code), whole).await;
    }
}
