//! Faults firehose-local can inject into `PutRecordBatch` / `PutRecord`
//! calls, so clients can be tested against what real Firehose does on a bad
//! day: throttling, partial failures, server errors, slow answers, outages.

use std::time::{Duration, Instant};

use edgehose_shared::clock::{RandomSource, SeededRandom};
use serde::{Deserialize, Serialize};

/// The shares of calls that get each fault, and the slow-down and outage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultPlan {
    /// Share of calls answered `ServiceUnavailableException` (throttled), nothing kept.
    pub throttle: f64,
    /// Share of calls with some of their records failed (the others kept).
    pub partial: f64,
    /// Share of calls answered `500 InternalFailure`, nothing kept.
    pub errors: f64,
    /// Added to every call before it is answered.
    pub latency_ms: u64,
    /// Every call is answered `ServiceUnavailableException` for this long,
    /// counted from when the plan is set.
    pub outage_secs: u64,
}

impl FaultPlan {
    /// Checks that the shares are shares.
    pub fn check(&self) -> Result<(), String> {
        for (name, v) in [
            ("throttle", self.throttle),
            ("partial", self.partial),
            ("errors", self.errors),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("fault share {name} must be between 0 and 1, not {v}"));
            }
        }
        if self.throttle + self.partial + self.errors > 1.0 {
            return Err("fault shares throttle + partial + errors must not exceed 1".into());
        }
        Ok(())
    }
}

/// What happened to one call.
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
    /// Inside an outage window.
    Outage,
}

/// Counts of injected faults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FaultStats {
    /// Calls throttled.
    pub throttled: u64,
    /// Calls with failed records.
    pub partial: u64,
    /// Records failed inside those calls.
    pub failed_records: u64,
    /// Calls answered 500.
    pub server_errors: u64,
    /// Calls refused during an outage.
    pub outage: u64,
}

/// The plan in force and its random draws.
#[derive(Debug)]
pub struct Faults {
    plan: FaultPlan,
    outage_until: Option<Instant>,
    random: SeededRandom,
    /// What was injected so far.
    pub stats: FaultStats,
}

impl Faults {
    /// Faults drawn from `seed` (runs with the same seed fail the same calls).
    pub fn new(plan: FaultPlan, seed: u64) -> Self {
        let mut f = Self {
            plan: FaultPlan::default(),
            outage_until: None,
            random: SeededRandom::new(seed),
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
    pub fn plan(&self) -> FaultPlan {
        self.plan
    }

    /// Seconds of outage left.
    pub fn outage_left(&self) -> f64 {
        self.outage_until
            .map(|t| t.saturating_duration_since(Instant::now()).as_secs_f64())
            .unwrap_or(0.0)
    }

    /// Decides the fate of the next call.
    pub fn draw(&mut self) -> Fault {
        if self.outage_left() > 0.0 {
            self.stats.outage += 1;
            return Fault::Outage;
        }
        let x = self.unit();
        let p = self.plan;
        let fault = if x < p.throttle {
            Fault::Throttle
        } else if x < p.throttle + p.partial {
            Fault::Partial
        } else if x < p.throttle + p.partial + p.errors {
            Fault::ServerError
        } else {
            Fault::None
        };
        match fault {
            Fault::Throttle => self.stats.throttled += 1,
            Fault::Partial => self.stats.partial += 1,
            Fault::ServerError => self.stats.server_errors += 1,
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
            ..FaultPlan::default()
        };
        let mut f = Faults::new(plan, 7);
        let n = 20_000;
        for _ in 0..n {
            f.draw();
        }
        let share = |c: u64| c as f64 / n as f64;
        assert!((share(f.stats.throttled) - 0.1).abs() < 0.02, "{:?}", f.stats);
        assert!((share(f.stats.partial) - 0.3).abs() < 0.02, "{:?}", f.stats);
        assert!((share(f.stats.server_errors) - 0.05).abs() < 0.02, "{:?}", f.stats);
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
        assert!((0..100).all(|_| f.draw() == Fault::Outage));
        f.set(FaultPlan::default());
        assert!((0..100).all(|_| f.draw() == Fault::None));
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
        assert!(bad.check().unwrap_err().contains("partial"));
        let too_much = FaultPlan {
            throttle: 0.6,
            partial: 0.6,
            ..FaultPlan::default()
        };
        assert!(too_much.check().is_err());
    }
}
