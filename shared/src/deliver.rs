//! The one delivery driver: sends a call's records through a [`Sink`],
//! resending only the records that failed, as [`RetryPlan`] decides (backoff
//! with full jitter, attempts, a time budget), until every record landed or
//! the plan gives up. Runtime-free: the call ([`Sink`]), the sleep and the
//! clock ([`Pause`]) and the randomness are injected, so the edge Worker,
//! `ingest-api` and the tests (in-memory fakes, milliseconds) all run the
//! same loop.

use std::fmt;
use std::future::Future;

use crate::aws::{CallError, PutOutcome};
use crate::clock::RandomSource;
use crate::retry::{GiveUpReason, RetryPlan, RetryPolicy, Step};
use crate::timestamp::Timestamp;

/// Where records go: one call with `records`, abandoned after `timeout_ms`.
/// A record is whatever the sink's call carries: bytes for Firehose, data
/// with its partition key for Kinesis, a message with its group for SQS.
pub trait Sink<R: ?Sized> {
    /// Sends `records` in one call. `Ok` says which of them failed (by index
    /// into `records`); `Err` is the call failing as a whole.
    fn put(&self, records: &[&R], timeout_ms: u64) -> impl Future<Output = Result<PutOutcome, CallError>>;
}

/// The runtime's clock and sleep.
pub trait Pause {
    /// The current time.
    fn now(&self) -> Timestamp;
    /// Waits `ms` milliseconds.
    fn sleep(&self, ms: u64) -> impl Future<Output = ()>;
}

/// Records of a call that did not land.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undelivered {
    /// Indices into the call's records, ascending.
    pub records: Vec<usize>,
    /// Calls made.
    pub attempts: u32,
    /// Why the plan stopped.
    pub reason: GiveUpReason,
    /// The last failure, in words: the call's error or its failed records.
    pub last: String,
    /// The policy's budget, for the message.
    budget_ms: u64,
}

impl fmt::Display for Undelivered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reason {
            GiveUpReason::Fatal(e) => write!(f, "not retried: {e} [{}]", e.code()),
            GiveUpReason::AttemptsExhausted => {
                write!(f, "{} attempts failed, the last with: {}", self.attempts, self.last)
            }
            GiveUpReason::BudgetExhausted => write!(
                f,
                "the {} ms retry budget ran out after {} attempts, the last with: {}",
                self.budget_ms, self.attempts, self.last
            ),
        }
    }
}

/// How one delivery went: calls made, and what did not land.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Calls made, the first included.
    pub attempts: u32,
    /// `None` when every record landed.
    pub undelivered: Option<Undelivered>,
}

/// Sends `records` through `sink` until each has landed or `policy` gives
/// up. Each call may take what is left of the budget, at most
/// `call_timeout_ms`. The future is `Send` when the sink's, the pause's and
/// the random source are (as a Lambda needs; a Worker needs none).
pub async fn deliver<T: ?Sized, S: Sink<T>, P: Pause, R: RandomSource>(
    records: &[&T],
    policy: RetryPolicy,
    call_timeout_ms: u64,
    sink: &S,
    pause: &P,
    random: &R,
) -> Delivery {
    let mut plan = RetryPlan::new(policy, records.len(), pause.now());
    let mut last = String::new();
    loop {
        let batch: Vec<&T> = plan.pending().iter().map(|&i| records[i]).collect();
        let timeout_ms = plan.call_timeout_ms(pause.now()).min(call_timeout_ms.max(1));
        let result = sink.put(&batch, timeout_ms).await;
        match &result {
            Err(e) => last = format!("{e} [{}]", e.code()),
            Ok(outcome) if !outcome.failed.is_empty() => last = failed_records(outcome),
            Ok(_) => {}
        }
        match plan.on_result(&result, pause.now(), random) {
            Step::Done => {
                return Delivery {
                    attempts: plan.attempts(),
                    undelivered: None,
                };
            }
            Step::Retry { delay_ms } => {
                if delay_ms > 0 {
                    pause.sleep(delay_ms).await;
                }
            }
            Step::GiveUp { undelivered, reason } => {
                return Delivery {
                    attempts: plan.attempts(),
                    undelivered: Some(Undelivered {
                        records: undelivered,
                        attempts: plan.attempts(),
                        reason,
                        last,
                        budget_ms: policy.budget_ms,
                    }),
                };
            }
        }
    }
}

/// "2 of 5 records failed (ServiceUnavailableException)".
pub fn failed_records(outcome: &PutOutcome) -> String {
    let mut codes: Vec<&str> = outcome.failed.iter().map(|f| f.code.as_str()).collect();
    codes.sort_unstable();
    codes.dedup();
    format!(
        "{} of {} records failed ({})",
        outcome.failed.len(),
        outcome.sent,
        codes.join(", ")
    )
}

#[cfg(test)]
mod tests;
