//! Failover and drain-back, decided in each isolate from what its own
//! calls to a region's sink answer — no shared state that could itself
//! fail. A region with a standby (`EU_STANDBY = "eu2"`, another region of
//! `REGIONS` in the same jurisdiction: [`crate::residency`]) sends to its
//! home sink while that answers; once home has failed for longer than
//! `EU_FAILOVER_AFTER_MS` without a call landing, the isolate sends the
//! region's events to the standby's sink instead. Every `EU_PROBE_MS` one
//! send tries home first (a probe, with its real events); the first that
//! lands there brings the isolate back.
//!
//! What the standby receives stays where it landed: the standby's stream
//! delivers to its own bucket, in the same jurisdiction, and each event
//! keeps its `region` (its home) in the envelope, so a reader finds a
//! region's events in its home's table and its standby's, one copy each
//! (a probe that lands at home after a lost answer can make a second,
//! under the same id, which the Iceberg destination's unique key folds).
//! Nothing is moved back: moving would copy events across accounts for no
//! reader's gain, and a copy is where duplicates come from.
//!
//! The isolate's state is its own: a new isolate starts at home, finds it
//! failing, and fails over after the same threshold; each decision is
//! logged and counted by the shell.

use crate::settings::{SettingError, Settings};

/// How long a home sink may fail before a region's events go to its
/// standby, by default: a minute, long enough that a throttling burst the
/// retries ride out does not move traffic, short against an hour's outage.
pub const DEFAULT_FAILOVER_AFTER_MS: u64 = 60_000;
/// How often a failed-over isolate tries home again, by default.
pub const DEFAULT_PROBE_MS: u64 = 10_000;

/// A region's failover settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailoverPolicy {
    /// `<NAME>_FAILOVER_AFTER_MS`.
    pub after_ms: u64,
    /// `<NAME>_PROBE_MS`.
    pub probe_ms: u64,
}

impl Default for FailoverPolicy {
    fn default() -> Self {
        Self {
            after_ms: DEFAULT_FAILOVER_AFTER_MS,
            probe_ms: DEFAULT_PROBE_MS,
        }
    }
}

impl FailoverPolicy {
    /// Reads `<prefix>FAILOVER_AFTER_MS` and `<prefix>PROBE_MS` (at least a
    /// second each: a shorter threshold would move traffic on one slow call).
    pub fn from_settings<F: Fn(&str) -> Option<String>>(s: &Settings<F>, prefix: &str) -> Result<Self, SettingError> {
        let d = Self::default();
        let read = |name: &str, default: u64| -> Result<u64, SettingError> {
            let name = format!("{prefix}{name}");
            let v = s.usize_or(&name, default as usize)? as u64;
            if v < 1_000 {
                return Err(SettingError::new(&name, format!("= {v} is under 1000 ms")));
            }
            Ok(v)
        };
        Ok(Self {
            after_ms: read("FAILOVER_AFTER_MS", d.after_ms)?,
            probe_ms: read("PROBE_MS", d.probe_ms)?,
        })
    }
}

/// Where one send of a region's events goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The home sink.
    Home,
    /// The standby's sink.
    Standby,
    /// Home first, as a probe; what does not land there to the standby.
    Probe,
}

/// A change of course, for the log and the counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// Home failed for longer than the threshold: to the standby.
    FailedOver {
        /// How long home had been failing, ms.
        failing_ms: u64,
    },
    /// A probe landed at home: back.
    Returned {
        /// How long the isolate was failed over, ms.
        away_ms: u64,
    },
}

/// One isolate's view of one region's home sink.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Health {
    /// Since when home has failed without a call landing (ms since the epoch).
    failing_since: Option<i64>,
    /// When this isolate failed over, if it has.
    failed_over_at: Option<i64>,
    /// When it last tried home while failed over.
    last_probe: Option<i64>,
}

impl Health {
    /// Whether this isolate sends the region's events to its standby now.
    pub fn failed_over(&self) -> bool {
        self.failed_over_at.is_some()
    }

    /// Where a send at `now_ms` goes.
    pub fn target(&self, now_ms: i64, policy: FailoverPolicy) -> Target {
        match self.failed_over_at {
            None => Target::Home,
            Some(at) => {
                let since = self.last_probe.unwrap_or(at);
                if now_ms.saturating_sub(since) >= policy.probe_ms as i64 {
                    Target::Probe
                } else {
                    Target::Standby
                }
            }
        }
    }

    /// Records what home answered a send at `now_ms` (`landed`: every line
    /// of it did); a send to the standby alone says nothing of home and is
    /// not recorded. The turn it makes, if any.
    pub fn record_home(&mut self, landed: bool, now_ms: i64, policy: FailoverPolicy) -> Option<Turn> {
        if landed {
            self.failing_since = None;
            self.last_probe = None;
            return self.failed_over_at.take().map(|at| Turn::Returned {
                away_ms: now_ms.saturating_sub(at).max(0) as u64,
            });
        }
        let since = *self.failing_since.get_or_insert(now_ms);
        if self.failed_over_at.is_some() {
            self.last_probe = Some(now_ms);
            return None;
        }
        let failing_ms = now_ms.saturating_sub(since).max(0) as u64;
        if failing_ms >= policy.after_ms {
            self.failed_over_at = Some(now_ms);
            self.last_probe = Some(now_ms);
            return Some(Turn::FailedOver { failing_ms });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: FailoverPolicy = FailoverPolicy {
        after_ms: 5_000,
        probe_ms: 2_000,
    };

    #[test]
    fn home_until_it_has_failed_longer_than_the_threshold_then_the_standby() {
        let mut h = Health::default();
        assert_eq!(h.target(0, P), Target::Home);
        assert_eq!(h.record_home(false, 1_000, P), None);
        assert_eq!(h.record_home(false, 4_000, P), None);
        // A call that lands in between starts the count again.
        assert_eq!(h.record_home(true, 4_500, P), None);
        assert_eq!(h.record_home(false, 5_000, P), None);
        assert_eq!(h.target(9_000, P), Target::Home);
        assert_eq!(
            h.record_home(false, 10_000, P),
            Some(Turn::FailedOver { failing_ms: 5_000 })
        );
        assert!(h.failed_over());
        assert_eq!(h.target(11_000, P), Target::Standby);
        assert_eq!(h.target(12_000, P), Target::Probe);
        // A failed probe waits another probe interval.
        assert_eq!(h.record_home(false, 12_000, P), None);
        assert_eq!(h.target(13_000, P), Target::Standby);
        assert_eq!(h.target(14_000, P), Target::Probe);
        assert_eq!(h.record_home(true, 14_100, P), Some(Turn::Returned { away_ms: 4_100 }));
        assert_eq!(h.target(14_200, P), Target::Home);
        assert!(!h.failed_over());
    }

    #[test]
    fn the_settings_are_read_per_region_and_a_hair_trigger_is_refused() {
        let read = |pairs: &'static [(&'static str, &'static str)]| {
            FailoverPolicy::from_settings(
                &Settings::new(|n: &str| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| (*v).to_owned())),
                "EU_",
            )
        };
        assert_eq!(read(&[]).unwrap(), FailoverPolicy::default());
        let p = read(&[("EU_FAILOVER_AFTER_MS", "3000"), ("EU_PROBE_MS", "1500")]).unwrap();
        assert_eq!((p.after_ms, p.probe_ms), (3_000, 1_500));
        assert_eq!(read(&[("EU_PROBE_MS", "10")]).unwrap_err().name, "EU_PROBE_MS");
    }
}
