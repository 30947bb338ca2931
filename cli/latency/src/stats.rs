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
    let m = micros(samples);
    let ms = |us: u64| us as f64 / 1000.0;
    Summary {
        count: m.count,
        p50: ms(m.p50),
        p90: ms(m.p90),
        p99: ms(m.p99),
        max: ms(m.max),
    }
}

/// The same percentiles in whole microseconds, as the benchmarks report them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Micros {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest.
    pub max: u64,
}

/// Nearest-rank percentiles of `samples` in microseconds (HdrHistogram:
/// exact up to 2,048 µs, within 0.1% above; one hour at most).
pub fn micros(samples: &[Duration]) -> Micros {
    let Ok(mut h) = Histogram::<u64>::new_with_bounds(1, MAX_MICROS, 3) else {
        // Fixed, valid bounds: this cannot fail, and an empty answer is never taken for data.
        debug_assert!(false, "the histogram's bounds are valid");
        return Micros::default();
    };
    for d in samples {
        h.saturating_record(u64::try_from(d.as_micros()).unwrap_or(MAX_MICROS).max(1));
    }
    if h.is_empty() {
        return Micros::default();
    }
    Micros {
        count: h.len(),
        p50: h.value_at_quantile(0.50),
        p90: h.value_at_quantile(0.90),
        p99: h.value_at_quantile(0.99),
        max: h.max(),
    }
}

/// The median of a few figures, such as one per benchmark round (the mean
/// of the middle two for an even count; NaN ignored, NaN when none is left).
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
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
    fn a_median_is_of_the_finite_figures() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[f64::NAN, 5.0]), 5.0);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn microseconds_are_exact_below_two_milliseconds() {
        let us: Vec<Duration> = (1..=1000).map(Duration::from_micros).collect();
        let m = micros(&us);
        assert_eq!((m.count, m.p50, m.p90, m.p99, m.max), (1000, 500, 900, 990, 1000));
        assert_eq!(micros(&[]), Micros::default());
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
