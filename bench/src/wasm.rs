//! `edgehose-bench wasm`: what the edge's own Rust costs as wasm. The work of
//! `bench/wasm-probe` (accepting one 177-byte event through `api::handle`,
//! building and signing one `PutRecordBatch`) timed natively and in V8
//! (Node's, the engine workerd embeds), the wasm built at each opt-level the
//! Worker could use and finished as `tools/build-edge` finishes the Worker
//! (wasm-bindgen, `wasm-opt -Oz`, names stripped); and, at the Worker's own
//! opt-level, with V8's baseline compiler alone and its optimising compiler
//! alone, to tell tier-up from code quality.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::harness::report;
use crate::{cache_dir, repo_root};

/// The opt-levels built: the Worker's (`tools/build-edge`), "s", and the
/// native default the Lambdas use.
const LEVELS: [&str; 3] = ["z", "s", "3"];

/// The Worker's opt-level (`tools/build-edge`).
const WORKER_LEVEL: &str = "3";

/// V8's tiers, as Node's flags select them.
const TIERS: [(&str, &[&str]); 3] = [
    ("both tiers (default: baseline, then optimised when hot)", &[]),
    ("baseline compiler only (Liftoff)", &["--liftoff", "--no-wasm-tier-up"]),
    ("optimising compiler only (TurboFan)", &["--no-liftoff"]),
];

/// Calls per timed round of each function: about 100 ms of work.
fn calls(work: &str) -> u32 {
    if work == "sign" { 5_000 } else { 20_000 }
}

const WORK: [&str; 2] = ["accept", "sign"];

/// `edgehose-bench wasm`'s options.
#[derive(Debug, clap::Parser)]
pub struct Options {
    /// Rounds, native and wasm taking turns.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u16).range(1..))]
    pub rounds: u16,
    /// Where the table is written.
    #[command(flatten)]
    pub write: crate::harness::report::Write,
}

/// Runs the benchmark.
pub fn main(o: Options) -> Result<(), String> {
    let rounds = usize::from(o.rounds);
    let out = repo_root().join("target/bench/wasm");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let node = edgehose_local::tools::npm_bin("node")?;
    let harness = repo_root().join("bench/js/wasm-probe.mjs");

    println!("wasm benchmark: the edge's Rust work, natively and in V8, {rounds} rounds each");
    let mut native = serde_json::Map::new();
    for work in WORK {
        let us = native_us(work, rounds);
        println!("  native (opt-level 3) {work}: {us:.2} µs");
        native.insert(work.to_owned(), json!(us));
    }
    let mut builds = Vec::new();
    for level in LEVELS {
        let dir = build(level, &out)?;
        let gz = crate::edge::gzipped_size(&dir.join("probe_bg.wasm"))?;
        let mut per = serde_json::Map::new();
        for work in WORK {
            let us = in_v8(&node, &harness, &dir, work, rounds, &[])?;
            println!("  wasm opt-level {level} {work}: {us:.2} µs");
            per.insert(work.to_owned(), json!(us));
        }
        let mut tiers = Vec::new();
        if level == WORKER_LEVEL {
            for (name, flags) in TIERS.iter().skip(1) {
                let mut t = serde_json::Map::new();
                for work in WORK {
                    t.insert(
                        work.to_owned(),
                        json!(in_v8(&node, &harness, &dir, work, rounds, flags)?),
                    );
                }
                tiers.push(json!({"tier": name, "us": t}));
            }
        }
        builds.push(json!({"opt_level": level, "gzip_bytes": gz, "us": per, "tiers": tiers}));
    }
    let raw = json!({
        "date": report::today(), "machine": report::machine(),
        "node": node_version(&node), "native_us": native, "wasm": builds,
    });
    let table = render(&raw, rounds);
    report::publish("wasm", &table, Some(&raw), o.write.file())
}

/// Median µs per call of `work`, natively, in this process.
fn native_us(work: &str, rounds: usize) -> f64 {
    let f: fn(u32) -> u32 = if work == "sign" {
        edgehose_wasm_probe::sign
    } else {
        edgehose_wasm_probe::accept
    };
    let n = calls(work);
    let check = std::hint::black_box(f(n));
    let times: Vec<f64> = (0..rounds)
        .map(|_| {
            let t = std::time::Instant::now();
            let got = std::hint::black_box(f(std::hint::black_box(n)));
            debug_assert_eq!(got, check);
            t.elapsed().as_secs_f64() * 1e6 / f64::from(n)
        })
        .collect();
    edgehose_latency::stats::median(&times)
}

/// Builds the probe for wasm32 at `level` and finishes it as the Worker is
/// finished; returns the directory holding `probe.js` and `probe_bg.wasm`.
fn build(level: &str, out: &Path) -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("  building the probe for wasm32 at opt-level {level} …");
    let status = Command::new(&cargo)
        .current_dir(repo_root())
        .args([
            "build",
            "-q",
            "--release",
            "--locked",
            "--target",
            "wasm32-unknown-unknown",
            "-p",
            "edgehose-wasm-probe",
        ])
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", level)
        .status()
        .map_err(|e| format!("{cargo}: {e}"))?;
    if !status.success() {
        return Err(format!("building edgehose-wasm-probe at opt-level {level} failed"));
    }
    let dir = out.join(format!("opt-{level}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let built = repo_root().join("target/wasm32-unknown-unknown/release/edgehose_wasm_probe.wasm");
    let raw = dir.join("probe.wasm");
    std::fs::copy(&built, &raw).map_err(|e| format!("{}: {e}", built.display()))?;
    let tool = |var: &str, default: PathBuf| std::env::var_os(var).map(PathBuf::from).unwrap_or(default);
    let bindgen = tool("WASM_BINDGEN_BIN", cache_dir().join("cargo-tools/bin/wasm-bindgen"));
    let wasm_opt = tool("WASM_OPT_BIN", cache_dir().join("npm/node_modules/.bin/wasm-opt"));
    run(Command::new(&bindgen)
        .args(["--target", "nodejs", "--out-dir"])
        .arg(&dir)
        .arg(&raw))?;
    let wasm = dir.join("probe_bg.wasm");
    run(Command::new(&wasm_opt)
        .arg(&wasm)
        .args(["-Oz", "--strip-debug", "--strip-producers", "-o"])
        .arg(&wasm)
        .args([
            "--enable-mutable-globals",
            "--enable-sign-ext",
            "--enable-nontrapping-float-to-int",
            "--enable-bulk-memory",
            "--enable-multivalue",
            "--enable-reference-types",
        ]))?;
    Ok(dir)
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Median µs per call of `work` in Node's V8 with these flags.
fn in_v8(node: &Path, harness: &Path, dir: &Path, work: &str, rounds: usize, flags: &[&str]) -> Result<f64, String> {
    let (calls, rounds) = (calls(work).to_string(), rounds.to_string());
    let args = [dir.as_os_str(), work.as_ref(), calls.as_ref(), rounds.as_ref()];
    let v = crate::harness::node::run_json(node, flags, harness, &args)?;
    crate::harness::node::number(&v, "us_per_call", harness)
}

fn node_version(node: &Path) -> String {
    Command::new(node)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// The section: one row per build (and tier), µs per call and × native.
pub fn render(raw: &Value, rounds: usize) -> String {
    let native = |w: &str| raw["native_us"][w].as_f64().unwrap_or(f64::NAN);
    let mut t = format!(
        "### The edge's Rust as wasm ({}; {}; Node {})\n\n`make bench-wasm` (`edgehose-bench wasm --rounds {rounds}`): the work of `bench/wasm-probe` — `api::handle` accepting one 177-byte event (parse, validate, envelope), and building and signing one `PutRecordBatch` of it — timed natively (opt-level 3, as the Lambdas build) and as wasm in Node's V8 (the engine workerd embeds), each wasm built at an opt-level and finished as `tools/build-edge` finishes the Worker (wasm-bindgen, `wasm-opt -Oz`, names stripped). One call runs the work thousands of times, so no JS ↔ wasm crossing is in the figure. µs per call, median of {rounds} rounds; gzipped size of the probe alone (the shared crate's part of the Worker).\n\n| build | accept µs | × native | sign µs | × native | probe gzipped |\n|---|---|---|---|---|---|\n",
        raw["date"].as_str().unwrap_or(""),
        raw["machine"].as_str().unwrap_or(""),
        raw["node"].as_str().unwrap_or("?"),
    );
    t.push_str(&format!(
        "| native, opt-level 3 | {:.2} | 1.00× | {:.2} | 1.00× | – |\n",
        native("accept"),
        native("sign")
    ));
    for b in raw["wasm"].as_array().into_iter().flatten() {
        let level = b["opt_level"].as_str().unwrap_or("?");
        let worker = if level == WORKER_LEVEL { " (the Worker's)" } else { "" };
        let row = |name: &str, us: &Value| {
            let a = us["accept"].as_f64().unwrap_or(f64::NAN);
            let s = us["sign"].as_f64().unwrap_or(f64::NAN);
            format!(
                "| {name} | {a:.2} | {:.2}× | {s:.2} | {:.2}× | {} |\n",
                a / native("accept"),
                s / native("sign"),
                b["gzip_bytes"]
                    .as_u64()
                    .map_or("–".to_owned(), |g| format!("{:.1} KB", g as f64 / 1000.0))
            )
        };
        t.push_str(&row(&format!("wasm, opt-level {level}{worker}"), &b["us"]));
        for tier in b["tiers"].as_array().into_iter().flatten() {
            t.push_str(&row(
                &format!("wasm, opt-level {level}, {}", tier["tier"].as_str().unwrap_or("?")),
                &tier["us"],
            ));
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_holds_native_every_level_and_the_tiers_with_their_ratios() {
        let raw = json!({
            "date": "2026-12-02", "machine": "test", "node": "v22",
            "native_us": {"accept": 2.0, "sign": 5.0},
            "wasm": [
                {"opt_level": "z", "gzip_bytes": 135_000, "us": {"accept": 4.0, "sign": 20.0}, "tiers": []},
                {"opt_level": "3", "gzip_bytes": 157_000, "us": {"accept": 2.2, "sign": 13.0},
                 "tiers": [{"tier": "baseline compiler only (Liftoff)", "us": {"accept": 5.0, "sign": 25.0}}]},
            ],
        });
        let t = render(&raw, 7);
        assert!(
            t.contains("| native, opt-level 3 | 2.00 | 1.00× | 5.00 | 1.00× | – |"),
            "{t}"
        );
        assert!(
            t.contains("| wasm, opt-level z | 4.00 | 2.00× | 20.00 | 4.00× | 135.0 KB |"),
            "{t}"
        );
        assert!(
            t.contains("| wasm, opt-level 3, baseline compiler only (Liftoff) | 5.00 | 2.50× |"),
            "{t}"
        );
        assert!(t.contains("| wasm, opt-level 3 (the Worker's) | 2.20 | 1.10× |"), "{t}");
    }

    #[test]
    fn the_native_work_is_timed_per_call() {
        let us = native_us("accept", 1);
        assert!(us > 0.0 && us.is_finite());
    }
}
