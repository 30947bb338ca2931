//! The one fault engine: what a bad day at AWS looks like, drawn call by
//! call from a seeded plan. firehose-local draws from it for the calls it
//! serves (`PutRecordBatch`, `PutRecord`); [`crate::faults::proxy`] draws from
//! it for calls to another emulator (moto's Kinesis `PutRecords` and SQS
//! `SendMessageBatch`). Either way a fault means the same thing:
//!
//! - throttled: the service's throttling error ([`Service::throttled`]),
//!   nothing kept;
//! - partial: about half the records (at least one) failed with that code,
//!   the others kept;
//! - server error: `500 InternalFailure`, nothing kept;
//! - lost response: everything kept, then answered `500` (how duplicates
//!   happen in real life);
//! - hang: never answered, the connection held open until the server stops
//!   (a call that would outlive a caller without a timeout);
//! - outage: every call throttled for `outage_secs` from when the plan is set;
//! - `throttle_stream`: every call to that stream or queue throttled, one
//!   shard over its quota while the others are not;
//! - `latency_ms`: every call held this long first (a slow downstream).
//!
//! Cloudflare's faults (queues refusing, R2 failing, memory held) are the
//! local runner's, in `cli/local/js/miniflare.mjs`.

use std::time::{Duration, Instant};

use edgehose_shared::clock::{RandomSource, SeededRandom};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub mod proxy;

/// The shares of calls that get each fault, the slow-down and the outage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultPlan {
    /// Share of calls throttled, nothing kept.
    pub throttle: f64,
    /// Share of calls with some of their records failed (the others kept).
    pub partial: f64,
    /// Share of calls answered `500 InternalFailure`, nothing kept.
    pub errors: f64,
    /// Share of calls kept, then answered `500` as if the answer were lost.
    pub lost_response: f64,
    /// Share of calls never answered.
    pub hang: f64,
    /// Added to every call before it is answered.
    pub latency_ms: u64,
    /// Every call is throttled for this long, counted from when the plan is set.
    pub outage_secs: u64,
    /// Every call naming this stream or queue is throttled, whatever the
    /// shares say.
    pub throttle_stream: Option<String>,
}

impl FaultPlan {
    /// Every fault but hanging, often enough that a run of some 70 calls
    /// meets each: 10% throttled, 30% partial, 10% 500s, 10% lost responses.
    pub fn every_kind() -> Self {
        Self {
            throttle: 0.1,
            partial: 0.3,
            errors: 0.1,
            lost_response: 0.1,
            ..Self::default()
        }
    }

    /// Checks that the shares are shares and add up to at most one.
    pub fn check(&self) -> Result<()> {
        for (name, v) in self.shares() {
            if !(0.0..=1.0).contains(&v) {
                return Err(Error::config(format!(
                    "fault share {name} must be between 0 and 1, not {v}"
                )));
            }
        }
        let sum: f64 = self.shares().iter().map(|(_, v)| v).sum();
        if sum > 1.0 + 1e-9 {
            return Err(Error::config(format!(
                "fault shares throttle + partial + errors + lost_response + hang must not exceed 1 (they are {sum})"
            )));
        }
        Ok(())
    }

    fn shares(&self) -> [(&'static str, f64); 5] {
        [
            ("throttle", self.throttle),
            ("partial", self.partial),
            ("errors", self.errors),
            ("lost_response", self.lost_response),
            ("hang", self.hang),
        ]
    }
}

/// What happens to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Served normally.
    None,
    /// Throttled.
    Throttle,
    /// Some records failed.
    Partial,
    /// A server error.
    ServerError,
    /// Kept, then answered with a server error.
    LostResponse,
    /// Never answered.
    Hang,
    /// Inside an outage window: throttled.
    Outage,
}

/// Counts of what was drawn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FaultStats {
    /// Calls drawn for.
    pub calls: u64,
    /// Calls throttled by the share or the singled-out stream.
    pub throttled: u64,
    /// Calls with failed records.
    pub partial: u64,
    /// Records failed inside those calls.
    pub failed_records: u64,
    /// Calls answered 500 and not kept.
    pub server_errors: u64,
    /// Calls kept but answered 500.
    pub lost_responses: u64,
    /// Calls never answered.
    pub hung: u64,
    /// Calls refused during an outage.
    pub outage: u64,
    /// The most calls in flight at once.
    pub max_in_flight: u64,
}

/// The service whose calls are failed: each throttles in its own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Firehose (`Firehose_20150804.*`).
    Firehose,
    /// Kinesis Data Streams (`Kinesis_20131202.*`).
    Kinesis,
    /// SQS in the JSON protocol (`AmazonSQS.*`).
    Sqs,
}

impl Service {
    /// The service an `X-Amz-Target` names (Firehose when it names neither other).
    pub fn of_target(target: &str) -> Self {
        if target.starts_with("AmazonSQS.") {
            Self::Sqs
        } else if target.starts_with("Kinesis_") {
            Self::Kinesis
        } else {
            Self::Firehose
        }
    }

    /// The status and error code it throttles with: Firehose's
    /// `ServiceUnavailableException` is a server fault (503); Kinesis's
    /// `ProvisionedThroughputExceededException` and SQS's `RequestThrottled`
    /// are client errors (400).
    pub fn throttled(self) -> (u16, &'static str) {
        match self {
            Self::Firehose => (503, "ServiceUnavailableException"),
            Self::Kinesis => (400, "ProvisionedThroughputExceededException"),
            Self::Sqs => (400, "RequestThrottled"),
        }
    }
}

/// The plan in force, its random draws and what they came to.
#[derive(Debug)]
pub struct Faults {
    plan: FaultPlan,
    outage_until: Option<Instant>,
    random: SeededRandom,
    in_flight: u64,
    /// What was drawn so far.
    pub stats: FaultStats,
}

impl Faults {
    /// Faults drawn from `seed` (runs with the same seed fail the same calls).
    pub fn new(plan: FaultPlan, seed: u64) -> Self {
        let mut f = Self {
            plan: FaultPlan::default(),
            outage_until: None,
            random: SeededRandom::new(seed),
            in_flight: 0,
            stats: FaultStats::default(),
        };
        f.set(plan);
        f
    }

    /// Replaces the plan; an outage starts now.
    pub fn set(&mut self, plan: FaultPlan) {
        self.outage_until = (plan.outage_secs > 0).then(|| Instant::now() + Duration::from_secs(plan.outage_secs));
        self.plan = plan;
    }

    /// The plan in force.
    pub fn plan(&self) -> &FaultPlan {
        &self.plan
    }

    /// Seconds of outage left.
    pub fn outage_left(&self) -> f64 {
        self.outage_until
            .map(|t| t.saturating_duration_since(Instant::now()).as_secs_f64())
            .unwrap_or(0.0)
    }

    /// A call has arrived (counted in flight until [`Faults::leave`]).
    pub fn enter(&mut self) {
        self.in_flight += 1;
        self.stats.max_in_flight = self.stats.max_in_flight.max(self.in_flight);
    }

    /// A call has been answered (or abandoned).
    pub fn leave(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// Decides the fate of the next call, to `stream` if it names one.
    pub fn draw(&mut self, stream: Option<&str>) -> Fault {
        self.stats.calls += 1;
        if self.outage_left() > 0.0 {
            self.stats.outage += 1;
            return Fault::Outage;
        }
        let x = self.unit();
        if stream.is_some() && self.plan.throttle_stream.as_deref() == stream {
            self.stats.throttled += 1;
            return Fault::Throttle;
        }
        let p = &self.plan;
        let mut cumulative = 0.0;
        let mut fault = Fault::None;
        for (share, f) in [
            (p.throttle, Fault::Throttle),
            (p.partial, Fault::Partial),
            (p.errors, Fault::ServerError),
            (p.lost_response, Fault::LostResponse),
            (p.hang, Fault::Hang),
        ] {
            cumulative += share;
            if x < cumulative {
                fault = f;
                break;
            }
        }
        match fault {
            Fault::Throttle => self.stats.throttled += 1,
            Fault::Partial => self.stats.partial += 1,
            Fault::ServerError => self.stats.server_errors += 1,
            Fault::LostResponse => self.stats.lost_responses += 1,
            Fault::Hang => self.stats.hung += 1,
            Fault::None | Fault::Outage => {}
        }
        fault
    }

    /// Which of `n` records fail in a partial call: about half, at least one.
    pub fn failed_records(&mut self, n: usize) -> Vec<bool> {
        let mut failed: Vec<bool> = (0..n).map(|_| self.random.next_u64().is_multiple_of(2)).collect();
        if !failed.contains(&true)
            && let Some(first) = failed.first_mut()
        {
            *first = true;
        }
        self.stats.failed_records += failed.iter().filter(|&&f| f).count() as u64;
        failed
    }

    fn unit(&mut self) -> f64 {
        (self.random.next_u64() % 1_000_000) as f64 / 1_000_000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_drawn_in_proportion() {
        let plan = FaultPlan {
            throttle: 0.1,
            partial: 0.3,
            errors: 0.05,
            lost_response: 0.1,
            hang: 0.02,
            ..FaultPlan::default()
        };
        let mut f = Faults::new(plan, 7);
        let n = 20_000;
        for _ in 0..n {
            f.draw(None);
        }
        let share = |c: u64| c as f64 / n as f64;
        assert!((share(f.stats.throttled) - 0.1).abs() < 0.02, "{:?}", f.stats);
        assert!((share(f.stats.partial) - 0.3).abs() < 0.02, "{:?}", f.stats);
        assert!((share(f.stats.server_errors) - 0.05).abs() < 0.02, "{:?}", f.stats);
        assert!((share(f.stats.lost_responses) - 0.1).abs() < 0.02, "{:?}", f.stats);
        assert!((share(f.stats.hung) - 0.02).abs() < 0.01, "{:?}", f.stats);
        assert_eq!(f.stats.calls, n);
    }

    #[test]
    fn a_singled_out_stream_is_always_throttled_and_the_others_never() {
        let plan = FaultPlan {
            throttle_stream: Some("hot".into()),
            ..FaultPlan::default()
        };
        let mut f = Faults::new(plan, 5);
        assert!((0..50).all(|_| f.draw(Some("hot")) == Fault::Throttle));
        assert!((0..50).all(|_| f.draw(Some("cold")) == Fault::None));
        assert!((0..50).all(|_| f.draw(None) == Fault::None));
        assert_eq!((f.stats.throttled, f.stats.calls), (50, 150));
    }

    #[test]
    fn the_most_calls_in_flight_is_kept() {
        let mut f = Faults::new(FaultPlan::default(), 1);
        f.enter();
        f.enter();
        f.leave();
        f.enter();
        f.enter();
        f.leave();
        f.leave();
        f.leave();
        f.leave();
        assert_eq!(f.stats.max_in_flight, 3);
        f.enter();
        assert_eq!(f.stats.max_in_flight, 3);
    }

    #[test]
    fn each_service_throttles_in_its_own_words() {
        assert_eq!(
            Service::of_target("Firehose_20150804.PutRecordBatch").throttled(),
            (503, "ServiceUnavailableException")
        );
        assert_eq!(
            Service::of_target("Kinesis_20131202.PutRecords").throttled(),
            (400, "ProvisionedThroughputExceededException")
        );
        assert_eq!(
            Service::of_target("AmazonSQS.SendMessageBatch").throttled(),
            (400, "RequestThrottled")
        );
    }

    #[test]
    fn an_outage_refuses_every_call_until_it_ends() {
        let mut f = Faults::new(
            FaultPlan {
                outage_secs: 60,
                ..FaultPlan::default()
            },
            1,
        );
        assert!((0..100).all(|_| f.draw(None) == Fault::Outage));
        f.set(FaultPlan::default());
        assert!((0..100).all(|_| f.draw(None) == Fault::None));
    }

    #[test]
    fn a_partial_call_fails_at_least_one_record() {
        let mut f = Faults::new(FaultPlan::default(), 3);
        for n in 1..50 {
            assert!(f.failed_records(n).contains(&true));
        }
    }

    #[test]
    fn shares_outside_zero_to_one_are_refused() {
        let bad = FaultPlan {
            partial: 1.5,
            ..FaultPlan::default()
        };
        assert!(bad.check().unwrap_err().to_string().contains("partial"));
        let too_much = FaultPlan {
            throttle: 0.6,
            partial: 0.6,
            ..FaultPlan::default()
        };
        assert!(too_much.check().is_err());
        let with_hangs = FaultPlan {
            errors: 0.5,
            hang: 0.6,
            ..FaultPlan::default()
        };
        assert!(with_hangs.check().unwrap_err().to_string().contains("hang"));
        assert!(FaultPlan::every_kind().check().is_ok());
    }
}
