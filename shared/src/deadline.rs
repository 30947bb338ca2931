//! One deadline per unit of work, handed down: a `waitUntil`, a queue
//! consumer run, a redrive round each get one absolute end (the platform's
//! limit, minus a reserve for the last step), and every await beneath it —
//! the window, the queue writes, the sink's calls and their retries, the
//! dead-letter write — takes only what is left of it. No step starts a
//! fresh budget of its own, so the steps together end before the platform
//! cuts them off, and the last step (saving what did not land) always has
//! its reserve.
//!
//! ```
//! use edgehose_shared::deadline::Deadline;
//! use edgehose_shared::timestamp::Timestamp;
//!
//! let answered = Timestamp::from_millis(1_000);
//! // waitUntil's 30 s, less 5 s kept for the dead-letter write.
//! let whole = Deadline::after(answered, 30_000);
//! let work = whole.less(5_000);
//! assert_eq!(work.left_ms(Timestamp::from_millis(21_000)), 5_000);
//! assert!(work.passed(Timestamp::from_millis(26_000)));
//! // What the reserve kept is still there for the last step.
//! assert_eq!(whole.left_ms(Timestamp::from_millis(26_000)), 5_000);
//! ```

use crate::timestamp::Timestamp;

/// An absolute end for some work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline {
    at: Timestamp,
}

impl Deadline {
    /// The end `ms` milliseconds after `start`.
    pub fn after(start: Timestamp, ms: u64) -> Self {
        Self {
            at: Timestamp::from_millis(start.as_millis().saturating_add(ms.min(i64::MAX as u64) as i64)),
        }
    }

    /// The end at `at`.
    pub fn at(at: Timestamp) -> Self {
        Self { at }
    }

    /// When it ends.
    pub fn end(self) -> Timestamp {
        self.at
    }

    /// This deadline, `reserve_ms` earlier: the end for the steps before a
    /// last one that must keep `reserve_ms` for itself.
    pub fn less(self, reserve_ms: u64) -> Self {
        Self {
            at: Timestamp::from_millis(
                self.at
                    .as_millis()
                    .saturating_sub(reserve_ms.min(i64::MAX as u64) as i64),
            ),
        }
    }

    /// The earlier of two deadlines.
    pub fn min(self, other: Self) -> Self {
        if other.at < self.at { other } else { self }
    }

    /// Milliseconds left at `now` (0 once it has passed).
    pub fn left_ms(self, now: Timestamp) -> u64 {
        self.at.millis_since(now).max(0) as u64
    }

    /// Whether nothing is left at `now`.
    pub fn passed(self, now: Timestamp) -> bool {
        self.left_ms(now) == 0
    }

    /// What one step may take at `now`: what is left, at most `cap_ms`.
    pub fn step_ms(self, now: Timestamp, cap_ms: u64) -> u64 {
        self.left_ms(now).min(cap_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::Deadline;
    use crate::timestamp::Timestamp;

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn what_is_left_shrinks_to_zero_and_never_below() {
        let d = Deadline::after(t(10_000), 30_000);
        assert_eq!(d.left_ms(t(10_000)), 30_000);
        assert_eq!(d.left_ms(t(39_999)), 1);
        assert_eq!(d.left_ms(t(40_000)), 0);
        assert_eq!(d.left_ms(t(90_000)), 0);
        assert!(d.passed(t(40_000)) && !d.passed(t(39_999)));
    }

    #[test]
    fn a_reserve_ends_the_earlier_steps_sooner_and_the_earlier_deadline_wins() {
        let whole = Deadline::after(t(0), 30_000);
        let steps = whole.less(5_000);
        assert_eq!(steps.end(), t(25_000));
        assert_eq!(whole.min(steps), steps);
        assert_eq!(steps.min(whole), steps);
        // A reserve larger than the whole leaves nothing for the steps.
        assert!(whole.less(40_000).passed(t(0)));
        assert_eq!(steps.step_ms(t(1_000), 10_000), 10_000);
        assert_eq!(steps.step_ms(t(20_000), 10_000), 5_000);
    }
}
