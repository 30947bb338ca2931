//! The retry plan for one `PutRecordBatch`: resend only the records that
//! failed, after exponential backoff with full jitter, within a total time
//! budget; and the clock skew learned when AWS says a signature's time is off.
//!
//! Sans-IO: the caller sends, reports each result with the current time, and
//! sleeps for the delay the plan returns.

use crate::aws::{CallError, PutOutcome};
use crate::clock::RandomSource;
use crate::timestamp::Timestamp;

/// How hard to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Most calls in all, the first one included.
    pub max_attempts: u32,
    /// The backoff ceiling of the first retry, in ms; it doubles with each retry.
    pub base_delay_ms: u64,
    /// The largest backoff ceiling, in ms.
    pub max_delay_ms: u64,
    /// No retry is planned that would start later than this many ms after the first call.
    pub budget_ms: u64,
}

impl Default for RetryPolicy {
    /// Eight calls, 100 ms doubling to 5 s, within 20 s: well inside the 30 s a
    /// Worker's `waitUntil` may run after its response.
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay_ms: 100,
            max_delay_ms: 5_000,
            budget_ms: 20_000,
        }
    }
}

impl RetryPolicy {
    /// Reads `RETRY_MAX_ATTEMPTS`, `RETRY_BASE_DELAY_MS`, `RETRY_MAX_DELAY_MS`
    /// and `RETRY_BUDGET_MS` (defaults above; attempts 1..=100, budget at most
    /// `max_budget_ms`).
    pub fn from_settings<F: Fn(&str) -> Option<String>>(
        s: &crate::settings::Settings<F>,
        max_budget_ms: u64,
    ) -> Result<Self, crate::settings::SettingError> {
        let d = Self::default();
        Ok(Self {
            max_attempts: s.usize_or("RETRY_MAX_ATTEMPTS", d.max_attempts as usize)?.clamp(1, 100) as u32,
            base_delay_ms: s.usize_or("RETRY_BASE_DELAY_MS", d.base_delay_ms as usize)? as u64,
            max_delay_ms: s.usize_or("RETRY_MAX_DELAY_MS", d.max_delay_ms as usize)? as u64,
            budget_ms: (s.usize_or("RETRY_BUDGET_MS", d.budget_ms as usize)? as u64).min(max_budget_ms),
        })
    }
}

impl RetryPolicy {
    /// This policy for a call made `started`..`now` into a delivery of several
    /// calls that share one budget (a request's, a `waitUntil`'s): the budget
    /// is what is left of it, or `None` when nothing is left, so the calls
    /// together end within the budget, not each of them.
    pub fn within(self, started: Timestamp, now: Timestamp) -> Option<Self> {
        let spent = now.millis_since(started).max(0) as u64;
        let left = self.budget_ms.checked_sub(spent).filter(|left| *left > 0)?;
        Some(Self {
            budget_ms: left,
            ..self
        })
    }
}

impl RetryPolicy {
    /// This policy for a call made at `now` inside work that must end by
    /// `deadline`: the budget is what is left of the deadline (never more
    /// than the policy's own), or `None` when nothing is left.
    pub fn until(self, deadline: crate::deadline::Deadline, now: Timestamp) -> Option<Self> {
        let left = deadline.left_ms(now).min(self.budget_ms);
        (left > 0).then_some(Self {
            budget_ms: left,
            ..self
        })
    }
}

/// What to do after a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Every record landed.
    Done,
    /// Wait `delay_ms`, then resend the records [`RetryPlan::pending`] names.
    Retry {
        /// How long to wait first.
        delay_ms: u64,
    },
    /// Stop: these records (indices into the original call) did not land.
    GiveUp {
        /// The records still undelivered.
        undelivered: Vec<usize>,
        /// Why the plan stopped.
        reason: GiveUpReason,
    },
}

/// Why a plan stopped with records undelivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GiveUpReason {
    /// The error cannot be fixed by retrying (bad key, unknown stream, …).
    Fatal(CallError),
    /// `max_attempts` calls were made.
    AttemptsExhausted,
    /// The next retry would start after the time budget.
    BudgetExhausted,
}

/// The state of one batch's delivery.
#[derive(Debug, Clone)]
pub struct RetryPlan {
    policy: RetryPolicy,
    started: Timestamp,
    attempts: u32,
    pending: Vec<usize>,
    /// Records that failed in a way resending cannot mend, and the first
    /// such failure: they are given up when the rest are settled.
    abandoned: Vec<usize>,
    abandoned_because: Option<CallError>,
    resigned: bool,
}

impl RetryPlan {
    /// A plan for a call of `records` records whose first attempt starts at `started`.
    pub fn new(policy: RetryPolicy, records: usize, started: Timestamp) -> Self {
        Self {
            policy: RetryPolicy {
                max_attempts: policy.max_attempts.max(1),
                ..policy
            },
            started,
            attempts: 0,
            pending: (0..records).collect(),
            abandoned: Vec::new(),
            abandoned_because: None,
            resigned: false,
        }
    }

    /// How long the next call may take, in ms: what is left of the time
    /// budget at `now` (at least 1). A call that is not answered by then is
    /// given up, so every event is delivered or dead-lettered inside the budget.
    pub fn call_timeout_ms(&self, now: Timestamp) -> u64 {
        let elapsed = now.millis_since(self.started).max(0) as u64;
        self.policy.budget_ms.saturating_sub(elapsed).max(1)
    }

    /// The records (indices into the original call, ascending) the next call must send.
    pub fn pending(&self) -> &[usize] {
        &self.pending
    }

    /// Calls made so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Reports the result of sending [`Self::pending`] and says what to do next.
    pub fn on_result(
        &mut self,
        result: &Result<PutOutcome, CallError>,
        now: Timestamp,
        random: &dyn RandomSource,
    ) -> Step {
        self.attempts += 1;
        match result {
            Ok(outcome) => {
                // Failed indices are positions in what was sent: map them
                // back; a failure resending cannot mend is set aside.
                let mut still = Vec::with_capacity(outcome.failed.len());
                for f in &outcome.failed {
                    let Some(&i) = self.pending.get(f.index) else { continue };
                    if f.is_retryable() {
                        still.push(i);
                    } else {
                        self.abandoned.push(i);
                        self.abandoned_because.get_or_insert_with(|| f.error());
                    }
                }
                self.pending = still;
                if self.pending.is_empty() {
                    return match self.abandoned_because.clone() {
                        None => Step::Done,
                        Some(e) => self.give_up(GiveUpReason::Fatal(e)),
                    };
                }
            }
            Err(e) if !e.is_retryable() => return self.give_up(GiveUpReason::Fatal(e.clone())),
            Err(_) => {}
        }
        if self.attempts >= self.policy.max_attempts {
            return self.give_up(GiveUpReason::AttemptsExhausted);
        }
        // A skew error whose answer told AWS's time is fixed by re-signing
        // with the learned offset, not by waiting: once. Without a `Date`
        // nothing was learned, and an immediate retry would only spin.
        let learned_skew = matches!(
            result,
            Err(CallError::SignatureExpired {
                server_time: Some(_),
                ..
            })
        );
        let delay_ms = if learned_skew && !self.resigned {
            self.resigned = true;
            0
        } else {
            self.backoff(random)
        };
        let start_at = now.add_millis(delay_ms as i64);
        if start_at.millis_since(self.started) > self.policy.budget_ms as i64 {
            return self.give_up(GiveUpReason::BudgetExhausted);
        }
        Step::Retry { delay_ms }
    }

    /// Stops: every record not delivered, those still pending and those set
    /// aside, ascending.
    fn give_up(&mut self, reason: GiveUpReason) -> Step {
        let mut undelivered = std::mem::take(&mut self.pending);
        undelivered.append(&mut self.abandoned);
        undelivered.sort_unstable();
        Step::GiveUp { undelivered, reason }
    }

    /// Full jitter: uniform in `0..=min(max_delay, base * 2^(retry - 1))`.
    fn backoff(&self, random: &dyn RandomSource) -> u64 {
        let exp = self.attempts.saturating_sub(1).min(32);
        let ceiling = self
            .policy
            .base_delay_ms
            .saturating_mul(1u64 << exp)
            .min(self.policy.max_delay_ms);
        random.next_u64() % (ceiling + 1)
    }
}

/// The offset (server minus local, in ms) to add to the local clock when
/// signing, learned from a response `Date` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClockSkew {
    offset_ms: i64,
}

impl ClockSkew {
    /// Learns the skew from a server time read at local time `local_now`.
    pub fn learn(&mut self, server_time: Timestamp, local_now: Timestamp) {
        self.offset_ms = server_time.millis_since(local_now);
    }

    /// Learns the skew from an error, if it says the signature's time was off.
    /// Returns whether anything was learned.
    pub fn learn_from(&mut self, error: &CallError, local_now: Timestamp) -> bool {
        match error {
            CallError::SignatureExpired {
                server_time: Some(t), ..
            } => {
                self.learn(*t, local_now);
                true
            }
            _ => false,
        }
    }

    /// The time to sign with: the local time corrected by the learned offset.
    pub fn corrected(&self, local_now: Timestamp) -> Timestamp {
        local_now.add_millis(self.offset_ms)
    }

    /// The learned offset in ms (server minus local).
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms
    }
}

#[cfg(test)]
mod tests;
