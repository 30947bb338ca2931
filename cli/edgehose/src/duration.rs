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

/// A span with its unit (`90s`, `15m`, `1h`, `7d`; a bare number is
/// seconds), of at most 92 days (Analytics Engine keeps three months).
pub fn span(v: &str) -> Result<Duration, String> {
    let v = v.trim();
    let (number, unit) = match v.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => v.split_at(i),
        None => (v, "s"),
    };
    let per = match unit {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3_600.0,
        "d" => DAY_SECS,
        other => return Err(format!("{v:?}: the unit {other:?} is none of s, m, h, d")),
    };
    let n: f64 = number
        .parse()
        .map_err(|_| format!("{v:?} is not a number with a unit (90s, 15m, 1h, 7d)"))?;
    let secs = n * per;
    if !(0.0..=92.0 * DAY_SECS).contains(&secs) {
        return Err(format!("{v}: between 0 and 92 days"));
    }
    Ok(Duration::from_secs_f64(secs))
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
        assert_eq!(span("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(span("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(span("30"), Ok(Duration::from_secs(30)));
        assert!(span("1w").unwrap_err().contains("unit"));
        assert!(span("100d").is_err());
        assert!(span("-1h").is_err());
        assert!(seconds("soon").unwrap_err().contains("not a number"));
    }
}
