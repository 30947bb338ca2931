//! Where the receipts are counted: the edge's outcome counts
//! (`shared::outcome`). Every stage of this Worker adds what it did to one
//! isolate-wide tally — a request accepted ([`count_accepted`]) or refused
//! ([`refused`]), enqueued, delivered, dead-lettered, archived, redriven,
//! lost — and the tally leaves the isolate as Workers Analytics Engine data
//! points on the `OUTCOMES` binding, one per cell (minute, key, door,
//! reason) each time it is flushed, never one per event: at the end of
//! every window's flush, queue batch and redrive, and, for counts taken on
//! the request path that no window carries (refusals, write-first answers),
//! by a timer an isolate keeps in `waitUntil` ([`OUTCOMES_FLUSH_MS`]). The
//! totals stay in the isolate for `GET /healthz`. Without the binding
//! nothing is written; `edgehose receipts` reads them back.

use std::cell::{Cell as StdCell, RefCell};
use std::time::Duration;

use edgehose_shared::api::{self, Reply};
use edgehose_shared::limits::{ANALYTICS_INDEX_BYTES, ANALYTICS_POINTS_PER_INVOCATION, OUTCOMES_FLUSH_MS};
use edgehose_shared::outcome::{self, Cell, Counts, OUTCOMES, Outcome, Tally, why};
use edgehose_shared::rejected::is_rejected_line;
use edgehose_shared::timestamp::Timestamp;
use wasm_bindgen::JsValue;
use worker::{Context, Delay, Env};

use crate::clock::now;
use crate::js;

/// The Analytics Engine dataset binding.
pub const OUTCOMES_BINDING: &str = "OUTCOMES";

thread_local! {
    /// Counts not yet written.
    static TALLY: RefCell<Tally> = const { RefCell::new(Tally::new()) };
    /// Every count this isolate took, by outcome (`GET /healthz`).
    static TOTALS: RefCell<Counts> = const { RefCell::new([0; OUTCOMES]) };
    /// Whether a flush timer is waiting.
    static TIMER: StdCell<bool> = const { StdCell::new(false) };
}

/// Every count this isolate took, by outcome.
pub fn totals() -> Counts {
    TOTALS.with(|t| *t.borrow())
}

/// Counts `n` of `outcome` in `cell`.
pub fn count(cell: Cell, outcome: Outcome, n: u64) {
    TOTALS.with(|t| t.borrow_mut()[outcome.index()] += n);
    TALLY.with(|t| t.borrow_mut().add(cell, outcome, n));
}

/// Counts each line as one event of `outcome` in its own cell, under `reason`.
pub fn count_lines<S: AsRef<str>>(lines: &[S], outcome: Outcome, reason: &str) {
    if lines.is_empty() {
        return;
    }
    TOTALS.with(|t| t.borrow_mut()[outcome.index()] += lines.len() as u64);
    let at = now();
    TALLY.with(|t| t.borrow_mut().add_lines(lines, outcome, reason, at));
}

/// Counts lines written to the dead-letter archive: those the edge judged
/// invalid (`rejected` lines) under [`why::INVALID`], the rest under `reason`.
pub fn count_dead_letters<S: AsRef<str>>(lines: &[S], reason: &str) {
    let (invalid, other): (Vec<&str>, Vec<&str>) = lines.iter().map(AsRef::as_ref).partition(|l| is_rejected_line(l));
    count_lines(&invalid, Outcome::DeadLettered, why::INVALID);
    count_lines(&other, Outcome::DeadLettered, reason);
}

/// Counts a request's accepted lines (and of them the quarantined, the
/// limited by scope, the bot-labelled by verdict).
pub fn count_accepted(accepted: &api::Accepted) {
    let n = accepted.lines.len() as u64;
    count(accepted.cell.clone(), Outcome::Accepted, n);
    count(accepted.cell.clone(), Outcome::Quarantined, accepted.quarantined as u64);
    for (outcome, reason) in [
        (Outcome::Limited, &accepted.label.limited),
        (Outcome::Labelled, &accepted.label.bot),
    ] {
        if let Some(reason) = reason {
            let cell = Cell {
                reason: reason.clone(),
                ..accepted.cell.clone()
            };
            count(cell, outcome, n);
        }
    }
}

/// Counts a request answered with an error, under its status; the count
/// leaves the isolate with the next flush, at the latest by its timer.
pub fn refused(reply: &Reply, mut cell: Cell, env: &Env, ctx: &Context) {
    cell.reason = reply.status.to_string();
    count(cell, Outcome::Refused, 1);
    flush_later(env, ctx);
}

/// Where a request refused before its door was read is counted: its minute,
/// no key, and its door when its path names one (else `http`).
pub fn refused_cell(path: &str, received_at: Timestamp) -> Cell {
    let door = api::Door::of_path(path.trim_end_matches('/')).ok().flatten();
    Cell {
        minute: outcome::minute_of(received_at),
        key: String::new(),
        door: door.as_ref().map_or_else(|| "http".to_owned(), api::Door::name),
        reason: String::new(),
    }
}

/// Writes what was counted as data points, one per cell, at most
/// [`ANALYTICS_POINTS_PER_INVOCATION`]; what the dataset did not take stays
/// for the next flush.
pub fn flush(env: &JsValue) {
    let tally = TALLY.with(|t| t.borrow_mut().take());
    if tally.is_empty() {
        return;
    }
    let Some(dataset) = crate::js::binding(env, OUTCOMES_BINDING) else {
        return;
    };
    let cells: Vec<(&Cell, &Counts)> = tally.cells().collect();
    let (now_cells, later) = cells.split_at(cells.len().min(ANALYTICS_POINTS_PER_INVOCATION));
    let minutes: Vec<String> = now_cells.iter().map(|(c, _)| c.minute.to_string()).collect();
    let mut blobs: Vec<&str> = Vec::with_capacity(now_cells.len() * 4);
    let mut doubles: Vec<f64> = Vec::with_capacity(now_cells.len() * OUTCOMES);
    for ((cell, counts), minute) in now_cells.iter().zip(&minutes) {
        blobs.extend([
            minute.as_str(),
            index(&cell.key),
            cell.door.as_str(),
            cell.reason.as_str(),
        ]);
        doubles.extend(counts.iter().map(|&n| n as f64));
    }
    let written = js::write_data_points(&dataset, &blobs, &doubles, OUTCOMES) as usize;
    let unwritten = now_cells[written.min(now_cells.len())..].iter().chain(later);
    TALLY.with(|t| {
        let mut t = t.borrow_mut();
        for (cell, counts) in unwritten {
            for o in Outcome::ALL {
                t.add((*cell).clone(), o, counts[o.index()]);
            }
        }
    });
}

/// The key as an index: at most [`ANALYTICS_INDEX_BYTES`], cut on a
/// character boundary.
fn index(key: &str) -> &str {
    let mut end = key.len().min(ANALYTICS_INDEX_BYTES);
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    &key[..end]
}

/// Makes sure what the request path counted is written within
/// [`OUTCOMES_FLUSH_MS`]: the first count after a flush starts a timer in
/// this request's `waitUntil`.
pub fn flush_later(env: &Env, ctx: &Context) {
    if TIMER.with(|t| t.replace(true)) {
        return;
    }
    let env = env.clone();
    ctx.wait_until(async move {
        Delay::from(Duration::from_millis(OUTCOMES_FLUSH_MS)).await;
        TIMER.with(|t| t.set(false));
        flush(&env);
    });
}
