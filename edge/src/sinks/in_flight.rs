//! The cap on calls in flight toward the sink from one isolate
//! (`MAX_IN_FLIGHT_CALLS`): a downstream that takes only so many concurrent
//! requests (a partner API, a stream of few shards) is not flooded by one
//! busy isolate's windows and retries. A call waits for a place; the wait
//! counts against the call's time, so a call still ends inside its budget.
//!
//! A waiting call looks again every few milliseconds on a timer of its own
//! rather than waiting to be woken by the call that frees a place: that call
//! may belong to another request, and the Workers runtime cancels a
//! request's `waitUntil` work that waits on nothing of its own (it would be
//! deemed hung, and its events lost without a word).

use std::cell::Cell;
use std::time::Duration;

use worker::Delay;

/// How often a waiting call looks for a free place.
const LOOK_EVERY_MS: u64 = 5;

thread_local! {
    static IN_FLIGHT: Cell<usize> = const { Cell::new(0) };
}

/// Calls in flight in this isolate now (`GET /healthz`).
pub fn in_flight() -> usize {
    IN_FLIGHT.with(Cell::get)
}

/// A place for one call; dropping it frees the place.
pub struct Permit(());

impl Drop for Permit {
    fn drop(&mut self) {
        IN_FLIGHT.with(|n| n.set(n.get().saturating_sub(1)));
    }
}

/// Waits until fewer than `cap` calls are in flight in this isolate (`0`:
/// no cap), then holds one of the places; `None` if none came free within
/// `within_ms`.
pub async fn acquire(cap: usize, within_ms: u64) -> Option<Permit> {
    let mut waited = 0;
    loop {
        let took = IN_FLIGHT.with(|n| {
            let free = cap == 0 || n.get() < cap;
            if free {
                n.set(n.get() + 1);
            }
            free
        });
        if took {
            return Some(Permit(()));
        }
        if waited >= within_ms {
            return None;
        }
        Delay::from(Duration::from_millis(LOOK_EVERY_MS)).await;
        waited += LOOK_EVERY_MS;
    }
}
