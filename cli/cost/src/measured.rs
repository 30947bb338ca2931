//! What the cost model takes from the benchmarks rather than from a price
//! list: CPU per request of the edge Worker, the API Gateway function's
//! billed time per invocation, the transform's time per event. `make
//! bench-cost` measures them and rewrites `measured.json`, which is built
//! into `edgehose cost`; `--measured FILE` reads another.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// The figures of the last `make bench-cost`, built in.
pub const BUILT_IN: &str = include_str!("measured.json");

/// Lambda gives a function one vCPU's worth of CPU at 1,769 MB and CPU in
/// proportion to memory below that
/// (<https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html>).
pub const LAMBDA_MB_PER_VCPU: f64 = 1769.0;

/// One figure measured at several request sizes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BySize {
    /// `(events per request, value)`, by events per request.
    pub points: Vec<(usize, f64)>,
}

impl BySize {
    /// The value at `k` events per request: linear between the measured
    /// sizes, and along the last segment beyond them (the first value below
    /// the smallest).
    pub fn at(&self, k: usize) -> f64 {
        let p = &self.points;
        match p.len() {
            0 => 0.0,
            1 => p[0].1,
            _ => {
                let k = k as f64;
                let i = p.windows(2).position(|w| k <= w[1].0 as f64).unwrap_or(p.len() - 2);
                let ((x0, y0), (x1, y1)) = ((p[i].0 as f64, p[i].1), (p[i + 1].0 as f64, p[i + 1].1));
                if k <= x0 {
                    return y0;
                }
                (y0 + (y1 - y0) * (k - x0) / (x1 - x0)).max(0.0)
            }
        }
    }
}

/// Everything measured.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Measured {
    /// When (`YYYY-MM-DD`).
    pub date: String,
    /// On what (`report::machine`).
    pub machine: String,
    /// The command that measured it.
    pub command: String,
    /// The edge Worker's CPU per request, µs (workerd's own user + system
    /// time, forwarding to Firehose included), by events per request.
    pub edge_cpu_us_per_request: BySize,
    /// `ingest-api`'s billed duration per invocation, ms (each rounded up
    /// to 1 ms), behind the local API Gateway with Firehose at us-east-1's
    /// in-region round trip, by events per request.
    pub ingest_api_billed_ms: BySize,
    /// Memory `ingest-api` was measured (and is deployed) with, MB.
    pub ingest_api_memory_mb: f64,
    /// The transform's handler time per event on one thread of this machine, µs.
    pub transform_us_per_event: f64,
    /// Memory the transform is deployed with, MB (the template's).
    pub transform_memory_mb: f64,
}

impl Measured {
    /// The built-in figures.
    pub fn built_in() -> Result<Self> {
        Self::parse(BUILT_IN)
    }

    /// Reads figures written by `make bench-cost`.
    pub fn parse(json: &str) -> Result<Self> {
        serde_json::from_str(json).map_err(Error::Measured)
    }

    /// The transform's time per event in Lambda, seconds: this machine's
    /// one-thread time scaled by the CPU share its memory buys.
    pub fn transform_seconds_per_event_in_lambda(&self) -> f64 {
        let share = (self.transform_memory_mb / LAMBDA_MB_PER_VCPU).min(1.0);
        self.transform_us_per_event / 1e6 / share
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_between_and_beyond_the_measured_ones_follow_the_nearest_segment() {
        let b = BySize {
            points: vec![(1, 100.0), (10, 190.0), (50, 590.0)],
        };
        assert_eq!(b.at(1), 100.0);
        assert_eq!(b.at(0), 100.0);
        assert!((b.at(5) - 140.0).abs() < 1e-9);
        assert!((b.at(30) - 390.0).abs() < 1e-9);
        assert!((b.at(100) - 1090.0).abs() < 1e-9);
    }

    #[test]
    fn the_built_in_figures_parse() {
        let m = Measured::built_in().unwrap();
        assert!(!m.edge_cpu_us_per_request.points.is_empty());
        assert!(m.transform_seconds_per_event_in_lambda() > 0.0);
    }
}
