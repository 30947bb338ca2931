//! A Worker's cold start: from a fresh workerd — a new process, so a new
//! isolate with nothing compiled or cached — to the Worker's first answer.
//! The process's own start is the same for every Worker, so the figure that
//! says what a Worker's code costs is its time against the JavaScript floor's
//! (a Worker that only returns 200), measured in turns. Cloudflare caps a
//! Worker's startup (its global scope) at 1 s of CPU and its script at
//! 64 MiB uncompressed ([`STARTUP_LIMIT_MS`]); the size of the wasm matters
//! only through this time.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::load;
use crate::harness::workerd::{WorkerSpec, Workerd};

/// Cloudflare's limit on a Worker's startup: its global scope must finish
/// within 1 s (<https://developers.cloudflare.com/workers/platform/limits/#worker-startup-time>).
pub const STARTUP_LIMIT_MS: f64 = 1000.0;

/// One Worker's cold starts.
#[derive(Debug, Clone, PartialEq)]
pub struct ColdStarts {
    /// The Worker.
    pub name: String,
    /// From spawning workerd to its socket accepting, each start.
    pub listening: Vec<Duration>,
    /// From spawning workerd to the first answer read whole, each start.
    pub first_answer: Vec<Duration>,
}

impl ColdStarts {
    /// The median first answer, ms.
    pub fn median_ms(&self) -> f64 {
        median_ms(&self.first_answer)
    }

    /// The median time to listening, ms.
    pub fn listening_ms(&self) -> f64 {
        median_ms(&self.listening)
    }
}

/// The median of `values`, in ms (NaN for none).
pub fn median_ms(values: &[Duration]) -> f64 {
    let ms: Vec<f64> = values.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    edgehose_latency::stats::median(&ms)
}

/// `starts` cold starts of each Worker, taking turns (a different one
/// first each turn), each answering `request` once.
pub fn measure(
    workerd: &Path,
    workers: &[(&str, &WorkerSpec)],
    dir: &Path,
    request: &[u8],
    starts: usize,
) -> Result<Vec<ColdStarts>, String> {
    let mut out: Vec<ColdStarts> = workers
        .iter()
        .map(|(name, _)| ColdStarts {
            name: (*name).to_owned(),
            listening: Vec::new(),
            first_answer: Vec::new(),
        })
        .collect();
    for turn in 0..starts {
        for k in 0..workers.len() {
            let i = (k + turn) % workers.len();
            let (name, spec) = workers[i];
            let spawned = Instant::now();
            let w = Workerd::start(workerd, spec, dir)?;
            let listening = spawned.elapsed();
            let run = load::sequential(w.addr(), request, 1)?;
            let first_answer = spawned.elapsed();
            if run.errors > 0 {
                return Err(format!("{name}: its first answer after a cold start was not 200"));
            }
            drop(w);
            out[i].listening.push(listening);
            out[i].first_answer.push(first_answer);
        }
    }
    Ok(out)
}

/// The paragraph BENCHMARKS.md shows.
pub fn render(all: &[ColdStarts]) -> String {
    let Some(floor) = all.iter().find(|c| c.name.starts_with("floor")) else {
        return String::new();
    };
    let lines: Vec<String> = all
        .iter()
        .map(|c| {
            let lo = c.first_answer.iter().min().map_or(0.0, |d| d.as_secs_f64() * 1000.0);
            let hi = c.first_answer.iter().max().map_or(0.0, |d| d.as_secs_f64() * 1000.0);
            format!(
                "{} {:.1} ms ({lo:.1}–{hi:.1}; listening at {:.1}), {:+.1} ms against the floor",
                c.name,
                c.median_ms(),
                c.listening_ms(),
                c.median_ms() - floor.median_ms()
            )
        })
        .collect();
    format!(
        "\n**Cold start** (a fresh workerd each time — a new process and isolate, nothing compiled or cached — from spawning it to the first answer read whole; {} starts each, the Workers taking turns; median and range): {}. What the process's own start takes is the floor's; what a Worker's code adds is its time against the floor's. Cloudflare caps a Worker's startup at {STARTUP_LIMIT_MS:.0} ms of CPU.\n",
        floor.first_answer.len(),
        lines.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_is_the_middle_or_the_mean_of_the_two_middles() {
        let ms = |v: &[u64]| v.iter().map(|&m| Duration::from_millis(m)).collect::<Vec<_>>();
        assert_eq!(median_ms(&ms(&[30, 10, 20])), 20.0);
        assert_eq!(median_ms(&ms(&[40, 10, 20, 30])), 25.0);
        assert!(median_ms(&[]).is_nan());
    }

    #[test]
    fn the_paragraph_names_each_worker_against_the_floor() {
        let c = |name: &str, ms: u64| ColdStarts {
            name: name.to_owned(),
            listening: vec![Duration::from_millis(ms / 2)],
            first_answer: vec![Duration::from_millis(ms)],
        };
        let t = render(&[c("edgehose (Rust → wasm)", 130), c("floor: JS returning 200", 100)]);
        assert!(t.contains("edgehose (Rust → wasm) 130.0 ms"), "{t}");
        assert!(t.contains("+30.0 ms against the floor"), "{t}");
        assert!(render(&[c("edgehose", 1)]).is_empty());
    }
}
