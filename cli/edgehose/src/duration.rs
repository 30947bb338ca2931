//! Durations on the command line: `*-ms` options take milliseconds, the rest
//! seconds; either is a finite, non-negative number of at most a day.

use std::time::Duration;

/// A day: the longest wait any option takes.
const DAY_SECS: f64 = 86_400.0;

/// Milliseconds, fractions allowed (`2.5`).
pub fn millis(v: &str) -> Result<Duration, String> {
    within_a_day(v, 1000.0)
}

/// Seconds, fractions allowed.
pub fn seconds(v: &str) -> Result<Duration, String> {
    within_a_day(v, 1.0)
}

fn within_a_day(v: &str, per_second: f64) -> Result<Duration, String> {
    let n: f64 = v.trim().parse().map_err(|_| format!("{v:?} is not a number"))?;
    let secs = n / per_second;
    if !(0.0..=DAY_SECS).contains(&secs) {
        return Err(format!("{v}: between 0 and a day"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_bounds_and_nonsense() {
        assert_eq!(millis("2.5"), Ok(Duration::from_micros(2500)));
        assert_eq!(seconds("0"), Ok(Duration::ZERO));
        assert_eq!(seconds("86400"), Ok(Duration::from_secs(86_400)));
        assert!(seconds("86401").unwrap_err().contains("a day"));
        assert!(millis("-1").is_err());
        assert!(seconds("inf").is_err());
        assert!(seconds("NaN").is_err());
        assert!(seconds("soon").unwrap_err().contains("not a number"));
    }
}
