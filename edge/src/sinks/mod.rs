//! Where a sink call is made. `send.rs` sends lines to the configured sink
//! (the one step direct mode, the queue consumer and redrive share), to a
//! standby when `failover.rs` says home has failed too long; each sink
//! (`firehose.rs`, `kinesis.rs`, `sqs.rs`) judges and packs its own way and
//! makes its calls through `signed_call.rs` (SigV4, clock skew), inside the
//! isolate's cap on calls in flight (`in_flight.rs`).
//!
//! This file is what every sink shares: the [`LineSink`] trait each one
//! implements, the [`Budget`] a send runs within, one call through the
//! shared delivery driver ([`deliver_call`]), packing that loses only a line
//! it cannot pack ([`pack_each_or_alone`]), and what did not land ([`Lost`]).
//! The sinks depend on its items, never these on a sink.

pub(crate) mod failover;
mod firehose;
pub(crate) mod in_flight;
mod kinesis;
pub(crate) mod send;
mod signed_call;
mod sqs;

use std::borrow::Cow;
use std::future::Future;
use std::time::Duration;

use edgehose_shared::deadline::Deadline;
use edgehose_shared::deliver::{Pause, Sink, deliver};
use edgehose_shared::outcome::why;
use edgehose_shared::retry::{GiveUpReason, RetryPolicy};
use edgehose_shared::timestamp::Timestamp;
use worker::Delay;

use crate::clock::{CryptoRandom, now};
use crate::config::EdgeConfig;

/// A sink as the edge sends to it: lines in; what did not land out, each
/// line with its index in the input.
pub trait LineSink {
    /// Judges, packs and sends `lines`, every call inside `budget`.
    fn send<S: AsRef<str>>(&self, lines: &[S], budget: Budget) -> impl Future<Output = Result<(), Lost>>;
}

/// How hard and how long one send may try: its retry policy, and the
/// deadline every one of its calls and waits ends by.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Attempts and backoff; its budget is capped by the deadline.
    pub policy: RetryPolicy,
    /// When the whole send must be over.
    pub deadline: Deadline,
}

impl Budget {
    /// `policy`'s budget from now, ending by `deadline` at the latest.
    pub fn starting_now(policy: RetryPolicy, deadline: Deadline) -> Self {
        Self {
            policy,
            deadline: Deadline::after(now(), policy.budget_ms).min(deadline),
        }
    }
}

/// The lines that did not land, and why.
#[derive(Debug, Default)]
pub struct Lost {
    /// Each line's index in the input and what to keep in its place (the
    /// line, or its `rejected` line when it was judged invalid).
    pub lines: Vec<(usize, String)>,
    /// Why the last of them did not land.
    pub reason: String,
    /// Whether any failed in a way resending cannot mend (refused for
    /// good, or unpackable), rather than for want of time or attempts.
    pub fatal: bool,
}

impl Lost {
    /// Adds the lines at `indices`.
    pub fn add(&mut self, indices: impl IntoIterator<Item = usize>, texts: &[Cow<'_, str>], failure: Failure) {
        self.lines
            .extend(indices.into_iter().map(|i| (i, texts[i].clone().into_owned())));
        self.reason = failure.reason;
        self.fatal |= failure.fatal;
    }

    /// `Ok` when nothing was lost.
    pub fn into_result(mut self) -> Result<(), Self> {
        if self.lines.is_empty() {
            return Ok(());
        }
        self.lines.sort_unstable_by_key(|(i, _)| *i);
        Err(self)
    }

    /// Why, as an outcome reason: refused for good, or out of time.
    pub fn why(&self) -> &'static str {
        if self.fatal {
            why::REFUSED_BY_SINK
        } else {
            why::OUT_OF_TIME
        }
    }

    /// The lines alone.
    pub fn texts(self) -> Vec<String> {
        self.lines.into_iter().map(|(_, t)| t).collect()
    }
}

/// Why some lines did not land.
#[derive(Debug, Clone)]
pub struct Failure {
    /// In words, with the typed code.
    pub reason: String,
    /// Resending cannot mend it.
    pub fatal: bool,
}

/// Packs the lines at `members` (indices into a send's lines) with `pack`.
/// When the packing refuses them together, each line it refuses alone is
/// lost (for good: resending cannot pack it either) and the rest are packed
/// without it, so a line that cannot be packed loses only itself. The
/// packing and the members it indexes, or `None` when nothing could be packed.
pub fn pack_each_or_alone<T, E: std::fmt::Display>(
    members: &[usize],
    texts: &[Cow<'_, str>],
    lost: &mut Lost,
    pack: impl Fn(&[usize]) -> Result<T, E>,
) -> Option<(T, Vec<usize>)> {
    let first = match pack(members) {
        Ok(packed) => return Some((packed, members.to_vec())),
        Err(e) => e.to_string(),
    };
    let (fits, unfit): (Vec<usize>, Vec<usize>) = members.iter().partition(|&&m| pack(&[m]).is_ok());
    let failure = |reason: String| Failure { reason, fatal: true };
    if !unfit.is_empty() {
        lost.add(unfit, texts, failure(format!("could not pack: {first}")));
    }
    match pack(&fits) {
        Ok(packed) if !fits.is_empty() => Some((packed, fits)),
        Ok(_) => None,
        Err(e) => {
            lost.add(fits, texts, failure(format!("could not pack: {e}")));
            None
        }
    }
}

/// Delivers one call of a send through the shared driver, with what is
/// left before `deadline`: the records (indices into `records`) that did
/// not land and why, or `None` when all did. With nothing left the call is
/// not made, and all its records come back.
pub async fn deliver_call<R: ?Sized, S: Sink<R>>(
    config: &EdgeConfig,
    records: &[&R],
    sink: &S,
    budget: Budget,
) -> Option<(Vec<usize>, Failure)> {
    let Some(left) = budget.policy.until(budget.deadline, now()) else {
        let reason = "not sent: its deadline passed during earlier calls".to_owned();
        return Some(((0..records.len()).collect(), Failure { reason, fatal: false }));
    };
    let random = CryptoRandom::default();
    let delivery = deliver(records, left, config.call_timeout_ms, sink, &WorkerPause, &random).await;
    delivery.undelivered.map(|u| {
        let failure = Failure {
            reason: u.to_string(),
            fatal: matches!(u.reason, GiveUpReason::Fatal(_)),
        };
        (u.records, failure)
    })
}

/// The Worker's clock (`Date.now()`) and sleep (`setTimeout`).
struct WorkerPause;

impl Pause for WorkerPause {
    fn now(&self) -> Timestamp {
        now()
    }

    async fn sleep(&self, ms: u64) {
        Delay::from(Duration::from_millis(ms)).await;
    }
}
