//! Percentiles of measured durations (HdrHistogram, three significant
//! digits: every figure within 0.1% of the exact one), and the ratios between
//! targets.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Longest duration recorded; longer ones are clamped to it (1 hour).
const MAX_MICROS: u64 = 3_600_000_000;

/// Percentiles of one metric, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

/// Percentiles of `samples`: the nearest-rank percentile (the smallest
/// sample at or above the share), so p50 of 1..=100 is 50 and p99 is 99.
pub fn summarize(samples: &[Duration]) -> Summary {
    let Ok(mut h) = Histogram::<u64>::new_with_bounds(1, MAX_MICROS, 3) else {
        return Summary::default();
    };
    for d in samples {
        h.saturating_record(u64::try_from(d.as_micros()).unwrap_or(MAX_MICROS).max(1));
    }
    if h.is_empty() {
        return Summary::default();
    }
    let ms = |us: u64| us as f64 / 1000.0;
    Summary {
        count: h.len(),
        p50: ms(h.value_at_quantile(0.50)),
        p90: ms(h.value_at_quantile(0.90)),
        p99: ms(h.value_at_quantile(0.99)),
        max: ms(h.max()),
    }
}

/// `a / b`, or `None` unless both were measured (a target whose every
/// request failed has no figures, not fast ones).
pub fn ratio(a: f64, b: f64) -> Option<f64> {
    (a > 0.0 && b > 0.0 && a.is_finite() && b.is_finite()).then(|| a / b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: impl IntoIterator<Item = u64>) -> Vec<Duration> {
        v.into_iter().map(Duration::from_millis).collect()
    }

    /// Within the histogram's precision (three significant digits: 0.1%).
    fn near(got: f64, want: f64) -> bool {
        (got - want).abs() <= want * 0.001
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let s = summarize(&ms(1..=100));
        assert_eq!(s.count, 100);
        for (got, want) in [(s.p50, 50.0), (s.p90, 90.0), (s.p99, 99.0), (s.max, 100.0)] {
            assert!(near(got, want), "{got} is not {want}: {s:?}");
        }
        // Order does not matter.
        assert_eq!(summarize(&ms((1..=100).rev())), s);
        // One sample is every percentile.
        let s = summarize(&ms([7]));
        assert!(near(s.p50, 7.0) && s.p50 == s.p99 && s.p99 == s.max, "{s:?}");
    }

    #[test]
    fn a_slow_tail_shows_in_p99_and_max_but_not_the_median() {
        let mut samples = ms(std::iter::repeat_n(20, 98));
        samples.extend(ms([900, 2500]));
        let s = summarize(&samples);
        for (got, want) in [(s.p50, 20.0), (s.p90, 20.0), (s.p99, 900.0), (s.max, 2500.0)] {
            assert!(near(got, want), "{got} is not {want}: {s:?}");
        }
    }

    #[test]
    fn sub_millisecond_and_huge_values_are_kept() {
        // Microseconds under 2048 are exact.
        let s = summarize(&[Duration::from_micros(250), Duration::from_micros(1)]);
        assert_eq!((s.p50, s.max), (0.001, 0.25));
        let s = summarize(&[Duration::from_secs(10 * 3600)]);
        assert!((s.max - 3_600_000.0).abs() / 3_600_000.0 < 0.001, "{s:?}");
        assert_eq!(summarize(&[]), Summary::default());
    }

    #[test]
    fn ratios_need_a_denominator() {
        assert_eq!(ratio(90.0, 30.0), Some(3.0));
        assert_eq!(
            (ratio(1.0, 0.0), ratio(0.0, 1.0), ratio(f64::NAN, 1.0)),
            (None, None, None)
        );
    }
}
