//! Where a Worker's time on its isolate's thread goes: a sequential run of
//! requests while V8's CPU profiler samples the isolate over workerd's
//! inspector (`bench/js/cpu-profile.mjs`), the samples summed by what ran —
//! the Worker's own JavaScript, its wasm, the runtime's built-ins, V8's
//! program and garbage collector — as µs per request. A sampling profile:
//! good for where the time goes, not for exact totals.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::harness::load;
use crate::harness::workerd::{WorkerSpec, Workerd};

/// The category of the Worker's own JavaScript (its modules, and the wasm
/// glue they include), as `bench/js/cpu-profile.mjs` names it.
pub const WORKER_JS: &str = "Worker JavaScript";

/// V8's sampling interval, µs.
pub const INTERVAL_US: u32 = 50;

/// Requests before sampling starts.
const WARM_UP: usize = 2000;

/// One profiled run.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Requests sent while sampling.
    pub requests: usize,
    /// µs per request by category (idle left out).
    pub per_request_us: BTreeMap<String, f64>,
    /// The frames sampled most, with their samples.
    pub top: Vec<(String, u64)>,
}

impl Profile {
    /// µs per request on the isolate's thread, every category but idle.
    pub fn busy_us(&self) -> f64 {
        self.per_request_us.values().sum()
    }

    /// From the harness's JSON line and the requests sent.
    pub fn parse(json: &str, requests: usize) -> Result<Self, String> {
        let v: serde_json::Value = serde_json::from_str(json).map_err(|e| format!("the profile: {e}"))?;
        let interval = v["interval_us"].as_f64().ok_or("the profile has no interval_us")?;
        let samples = v["samples"].as_object().ok_or("the profile has no samples")?;
        let per_request_us = samples
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "(idle)" | "(root)"))
            .map(|(k, n)| (k.clone(), n.as_f64().unwrap_or(0.0) * interval / requests.max(1) as f64))
            .collect();
        let top = v["top"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| Some((t[0].as_str()?.to_owned(), t[1].as_u64()?)))
            .collect();
        Ok(Self {
            requests,
            per_request_us,
            top,
        })
    }
}

/// Starts `spec` in its own workerd with the inspector on, warms it up, and
/// profiles `requests` sequential `request`s.
pub fn profile(
    workerd: &Path,
    node: &Path,
    harness: &Path,
    spec: &WorkerSpec,
    dir: &Path,
    request: &[u8],
    requests: usize,
) -> Result<Profile, String> {
    let (w, url) = Workerd::start_inspected(workerd, spec, dir)?;
    // Long enough for the wasm to reach its optimised tier, as in the rounds.
    load::sequential(w.addr(), request, WARM_UP)?;
    let mut child = Command::new(node)
        .arg(harness)
        .arg(&url)
        .arg(INTERVAL_US.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", node.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout from the profiler")?;
    let mut lines = BufReader::new(stdout).lines();
    match lines.next() {
        Some(Ok(l)) if l == "started" => {}
        other => {
            let _ = child.kill();
            let err = child
                .wait_with_output()
                .map(|o| String::from_utf8_lossy(&o.stderr).into_owned());
            return Err(format!(
                "the profiler did not start ({other:?}): {}",
                err.unwrap_or_default().trim()
            ));
        }
    }
    let sent = load::sequential(w.addr(), request, requests)?.summary().requests;
    drop(child.stdin.take()); // stdin closed: the harness stops and reports
    let line = lines
        .next()
        .ok_or("the profiler printed no profile")?
        .map_err(|e| e.to_string())?;
    let _ = child.wait();
    drop(w);
    Profile::parse(&line, sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_become_microseconds_per_request_without_idle() {
        let p = Profile::parse(
            r#"{"interval_us":50,"samples":{"wasm":200,"Worker JavaScript":400,"(idle)":1000,"runtime built-ins":100},"top":[["qe index.js",300]]}"#,
            1000,
        )
        .unwrap();
        assert_eq!(p.per_request_us["wasm"], 10.0);
        assert_eq!(p.per_request_us["Worker JavaScript"], 20.0);
        assert!(!p.per_request_us.contains_key("(idle)"));
        assert_eq!(p.busy_us(), 35.0);
        assert_eq!(p.top, [("qe index.js".to_owned(), 300)]);
        assert!(Profile::parse("{}", 1).is_err());
    }
}
