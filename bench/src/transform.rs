//! `edgehose-bench transform`: the transformation Lambda's handler against a
//! Python function doing the same validation the way AWS's blueprints do
//! (json + jsonschema) and a parse-only floor, on one ~6 MB Firehose event of
//! 170-byte events; plus the `transform` binary's cold start to its first
//! response under a Lambda Runtime API. Each variant runs in its own process,
//! so peak memory is its own.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use edgehose_local::aws::lambda_runtime::{Outcome, RuntimeApi};
use edgehose_regional::transform::{TransformConfig, TransformEvent, inputs, transform};
use edgehose_sample::{envelope_lines, record_of};

use crate::harness::report;
use crate::repo_root;

/// Lambda's request payload limit (6 MB).
const MAX_EVENT_BYTES: usize = 6_291_456;

/// One measured variant.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Measured {
    /// Events processed over all iterations.
    pub events: u64,
    /// Event-file bytes processed over all iterations.
    pub bytes: u64,
    /// Wall time.
    pub seconds: f64,
    /// Peak resident memory, KiB.
    pub peak_rss_kb: u64,
}

impl Measured {
    fn events_per_s(&self) -> f64 {
        self.events as f64 / self.seconds
    }
    fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.seconds
    }
}

/// The benchmark event: 170-byte events as the edge envelopes them, 10% of
/// them invalid, in records of 500, as large as Lambda accepts.
pub fn build_event() -> String {
    let mut n = 0usize;
    let mut records: Vec<String> = Vec::new();
    let mut size = 200;
    loop {
        let body: String = (0..500)
            .map(|i| {
                let k = n + i;
                if k % 10 == 9 {
                    // Invalid: no event name, an unknown field.
                    format!(r#"{{"message_id":"m{k}","ts":1714566600000,"colour":"red","properties":{{"watts":{}}}}}"#, k % 400)
                } else {
                    format!(
                        r#"{{"event":"ride_sample","message_id":"m{k}","ts":1714566600000,"anonymous_id":"bike-{:04}","properties":{{"watts":{},"cadence":88,"hr":141}}}}"#,
                        k % 9999,
                        k % 400
                    )
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let data = base64::engine::general_purpose::STANDARD
            .encode(record_of(&envelope_lines(&body).unwrap_or_else(|e| panic!("{e}"))));
        let entry = format!(
            r#"{{"recordId":"r{}","approximateArrivalTimestamp":1714566600000,"data":"{data}"}}"#,
            records.len()
        );
        if size + entry.len() + 1 > MAX_EVENT_BYTES {
            break;
        }
        size += entry.len() + 1;
        records.push(entry);
        n += 500;
    }
    format!(
        r#"{{"invocationId":"bench","deliveryStreamArn":"arn:aws:firehose:us-east-1:123456789012:deliverystream/bench","region":"us-east-1","records":[{}]}}"#,
        records.join(",")
    )
}

/// One in-process run, in a process of its own (`edgehose-bench
/// transform-run ours|ours-1|floor FILE N`), started by the benchmark.
#[derive(Debug, clap::Parser)]
pub struct RunVariant {
    /// ours (a thread per CPU), ours-1 (one thread) or floor.
    pub variant: String,
    /// The Firehose transformation event to process.
    pub file: std::path::PathBuf,
    /// Times to process it.
    pub iterations: usize,
}

/// Runs one variant and prints its figures as JSON.
pub fn run_variant(r: RunVariant) -> Result<(), String> {
    let (variant, iterations) = (r.variant.as_str(), r.iterations);
    let raw = std::fs::read(&r.file).map_err(|e| format!("{}: {e}", r.file.display()))?;
    // "ours" uses a thread per CPU (the default), "ours-1" one thread.
    let config = TransformConfig {
        threads: usize::from(variant == "ours-1"),
        ..TransformConfig::default()
    };
    // Events (lines) in the file, counted before the clock starts.
    let per_event: u64 = serde_json::from_slice::<TransformEvent>(&raw)
        .map_err(|e| e.to_string())?
        .records
        .iter()
        .map(|r| {
            base64::engine::general_purpose::STANDARD
                .decode(&r.data)
                .map_or(0, |d| d.iter().filter(|&&b| b == b'\n').count() as u64)
        })
        .sum();
    let mut events = 0u64;
    let start = Instant::now();
    for _ in 0..iterations {
        let event: TransformEvent = serde_json::from_slice(&raw).map_err(|e| e.to_string())?;
        events += per_event;
        match variant {
            "ours" | "ours-1" => {
                let records = inputs(&event);
                let (response, _) = transform(&records, &config);
                std::hint::black_box(serde_json::to_vec(&response).map_err(|e| e.to_string())?);
            }
            "floor" => {
                for r in &event.records {
                    let data = base64::engine::general_purpose::STANDARD
                        .decode(&r.data)
                        .map_err(|e| e.to_string())?;
                    for line in String::from_utf8_lossy(&data).lines() {
                        std::hint::black_box(serde_json::from_str::<serde_json::Value>(line).ok());
                    }
                }
            }
            other => return Err(format!("unknown variant {other}")),
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"events": events, "bytes": raw.len() * iterations, "seconds": seconds, "peak_rss_kb": peak_rss_kb()})
    );
    Ok(())
}

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmHWM:")
                .map(|v| v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0))
        })
        .unwrap_or(0)
}

fn child(cmd: &mut Command) -> Result<Measured, String> {
    let out = cmd.output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    serde_json::from_str(line).map_err(|e| format!("{e}: {text}"))
}

/// `edgehose-bench transform`'s options.
#[derive(Debug, clap::Parser)]
pub struct Options {
    /// Times each variant processes the event.
    #[arg(long, default_value_t = 10)]
    pub iterations: usize,
    /// Where the table is written.
    #[command(flatten)]
    pub write: crate::harness::report::Write,
}

/// Runs the benchmark.
pub fn main(o: Options) -> Result<(), String> {
    let iterations = o.iterations;
    let work = repo_root().join("target/bench/transform");
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let file = work.join("event.json");
    let event = build_event();
    std::fs::write(&file, &event).map_err(|e| e.to_string())?;
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let python = edgehose_local::tools::python()?;
    println!(
        "transform benchmark: a {:.2} MB Firehose event, {iterations} iterations per variant",
        event.len() as f64 / 1e6
    );
    let run = |variant: &str| {
        child(
            Command::new(&me)
                .args(["transform-run", variant])
                .arg(&file)
                .arg(iterations.to_string()),
        )
    };
    let ours = run("ours")?;
    let ours_1 = run("ours-1")?;
    let floor = run("floor")?;
    // Python is ~100x slower: fewer iterations keep the run short; rates are per event.
    let py_iters = iterations.div_ceil(5).max(1);
    let python = child(
        Command::new(&python)
            .arg(repo_root().join("bench/python/transform.py"))
            .arg(&file)
            .arg(py_iters.to_string()),
    )?;
    let cold = cold_starts(&work, &file, 15)?;
    let table = render(&ours, &ours_1, &floor, &python, &cold, event.len(), iterations);
    let rate = |m: &Measured| serde_json::json!({"events_per_sec": m.events_per_s(), "mb_per_sec": m.mb_per_s(), "peak_rss_kb": m.peak_rss_kb});
    let json = serde_json::json!({
        "date": report::today(), "machine": report::machine(), "event_bytes": event.len(),
        "ours": rate(&ours), "ours_one_thread": rate(&ours_1), "floor": rate(&floor), "python": rate(&python),
        "cold_start_ms": cold,
    });
    report::publish("transform", &table, Some(&json), o.write.file())
}

/// Spawn-to-first-response times (ms) of the release `transform` binary.
fn cold_starts(_work: &Path, file: &Path, n: usize) -> Result<Vec<f64>, String> {
    let binary: PathBuf = repo_root().join("target/release/transform");
    if !binary.exists() {
        return Err(format!(
            "{} is missing: cargo build --release -p edgehose-regional --bin transform",
            binary.display()
        ));
    }
    // Startup is measured on a one-record event (500 events), so it is not
    // hidden by the work of a 6 MB batch.
    let mut event: serde_json::Value =
        serde_json::from_slice(&std::fs::read(file).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    if let Some(records) = event["records"].as_array_mut() {
        records.truncate(1);
    }
    let mut times = Vec::new();
    for _ in 0..n {
        let api = RuntimeApi::start()?;
        let start = Instant::now();
        let function = api.spawn(&binary, "edgehose-transform", &[])?;
        match api.invoke(&event, Duration::from_secs(60))? {
            Outcome::Response(_) => times.push(start.elapsed().as_secs_f64() * 1000.0),
            Outcome::Error(e) => return Err(format!("{e}\n{}", function.log())),
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(times)
}

fn render(
    ours: &Measured,
    ours_1: &Measured,
    floor: &Measured,
    py: &Measured,
    cold: &[f64],
    event_bytes: usize,
    iterations: usize,
) -> String {
    let mut t = format!(
        "### Transform Lambda ({}; {})\n\n`make bench-transform` — one {:.2} MB Firehose transformation event ({} events of ~170 bytes as the edge envelopes them, 10% invalid, in records of 500), handled in-process {iterations} times per variant (Python fewer), each variant in its own process. Event decoding and response encoding are included.\n\n",
        report::today(),
        report::machine(),
        event_bytes as f64 / 1e6,
        ours.events / iterations as u64,
    );
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    t.push_str("| variant | events/s | MB/s | peak memory |\n|---|---|---|---|\n");
    let threads = format!("edgehose transform, {cpus} threads (one per CPU, the default)");
    for (name, m) in [
        (threads.as_str(), ours),
        ("edgehose transform, 1 thread (Rust, schema v1 + envelopes)", ours_1),
        ("parse-only floor (deserialize every line, nothing else)", floor),
        ("Python blueprint (json + jsonschema)", py),
    ] {
        t.push_str(&format!(
            "| {name} | {:.0} | {:.1} | {:.0} MB |\n",
            m.events_per_s(),
            m.mb_per_s(),
            m.peak_rss_kb as f64 / 1024.0
        ));
    }
    let median = cold.get(cold.len() / 2).copied().unwrap_or_default();
    t.push_str(&format!(
        "\nRatios: edgehose / Python = **{:.0}×** the throughput ({:.0}× on one thread); on one thread edgehose takes **{:.2}×** the parse floor's time (the floor and Python use one).\nCold start of the release `transform` binary, from spawning the process to its first response under a Lambda Runtime API, on a one-record event (500 events) ({} runs): median **{:.1} ms**, min {:.1}, max {:.1}.\n",
        ours.events_per_s() / py.events_per_s(),
        ours_1.events_per_s() / py.events_per_s(),
        floor.events_per_s() / ours_1.events_per_s(),
        cold.len(),
        median,
        cold.first().copied().unwrap_or_default(),
        cold.last().copied().unwrap_or_default()
    ));
    t
}
