//! `edgehose-bench all` (`make bench`): every benchmark in turn — the edge
//! Worker (with its cold start), its Rust as wasm, the bill, the transform,
//! packing, the whole pipeline, the latency study, the tracker, the fuzz
//! targets and the soak in both modes — each rewriting its own section on
//! the same machine and day, then one table of the headline figures from
//! their raw results.

use serde_json::Value;

use clap::Parser;

use crate::harness::report;
use crate::harness::report::Write;
use crate::repo_root;

type Bench = fn(&Write) -> Result<(), String>;

/// Each benchmark with its defaults, writing where `all` writes.
fn with_defaults<O: Parser>(name: &str, write: &Write) -> Result<O, String> {
    with_args(name, &[], write)
}

/// Each benchmark with `args` over its defaults, writing where `all` writes.
fn with_args<O: Parser>(name: &str, args: &[&str], write: &Write) -> Result<O, String> {
    let mut all = vec![name.to_owned()];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    all.extend(write.file().into_iter().flat_map(|w| ["--write".to_owned(), w]));
    O::try_parse_from(all).map_err(|e| e.to_string())
}

/// Seconds of `make bench`'s soak in each mode (`make soak` alone: 600).
const SOAK_SECS: &str = "180";
/// Seconds per fuzz target in `make bench` (`make fuzz` alone: 60).
const FUZZ_SECS: &str = "30";

/// Runs every benchmark, then the headline table.
pub fn main(write: Write) -> Result<(), String> {
    let benches: [(&str, Bench); 11] = [
        ("edge", |w| crate::edge::main(with_defaults("edge", w)?)),
        ("wasm", |w| crate::wasm::main(with_defaults("wasm", w)?)),
        ("cost", |w| crate::cost::main(with_defaults("cost", w)?)),
        ("transform", |w| crate::transform::main(with_defaults("transform", w)?)),
        ("packing", |w| crate::packing::main(w.clone())),
        ("pipeline", |w| crate::pipeline::main(with_defaults("pipeline", w)?)),
        ("latency", |w| crate::latency::main(with_defaults("latency", w)?)),
        ("tracker", |w| crate::tracker::main(w.clone())),
        ("fuzz", |w| {
            crate::fuzz::main(with_args("fuzz", &["--secs", FUZZ_SECS], w)?)
        }),
        ("soak, queue mode", |w| {
            crate::soak::main(with_args("soak", &["--secs", SOAK_SECS], w)?)
        }),
        ("soak, direct mode", |w| {
            crate::soak::main(with_args("soak", &["--secs", SOAK_SECS, "--mode", "direct"], w)?)
        }),
    ];
    for (name, bench) in benches {
        eprintln!("\n== make bench: {name} ==");
        bench(&write).map_err(|e| format!("{name}: {e}"))?;
    }
    report::publish("headline", &headline()?, None, write.file())
}

fn raw(name: &str) -> Result<Value, String> {
    let path = repo_root().join(format!("target/bench/{name}/{name}.json"));
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// The figures users choose by, from the last run of each benchmark.
pub fn headline() -> Result<String, String> {
    let mut rows: Vec<[String; 3]> = Vec::new();

    let edge = raw("edge")?;
    let named = |prefix: &str| {
        edge["results"]
            .as_array()
            .and_then(|r| {
                r.iter()
                    .find(|r| r["name"].as_str().is_some_and(|n| n.starts_with(prefix)))
            })
            .cloned()
            .unwrap_or_default()
    };
    let (ours, floor, body_floor) = (named("edgehose"), named("floor"), named("body-read floor"));
    let one_cpu = if ours["sequential_one_cpu"].is_object() {
        format!(
            "; one CPU {:.0} / {:.0} µs",
            num(&ours["sequential_one_cpu"]["p50_us"]),
            num(&ours["sequential_one_cpu"]["p99_us"])
        )
    } else {
        String::new()
    };
    let body_read = if body_floor.is_null() {
        String::new()
    } else {
        format!(
            "; reading the body alone {:.0} / {:.0} µs",
            num(&body_floor["sequential"]["p50_us"]),
            num(&body_floor["sequential"]["p99_us"])
        )
    };
    rows.push([
        "edge Worker: one POST, p50 / p99 (raw workerd, keep-alive, direct mode; median of interleaved rounds)".into(),
        format!(
            "{:.0} / {:.0} µs{one_cpu} (runtime floor {:.0} / {:.0} µs{body_read})",
            num(&ours["sequential"]["p50_us"]),
            num(&ours["sequential"]["p99_us"]),
            num(&floor["sequential"]["p50_us"]),
            num(&floor["sequential"]["p99_us"])
        ),
        "edge".into(),
    ]);
    let targets: Vec<String> = edge["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            format!(
                "{}: {} ({})",
                t["what"].as_str().unwrap_or("?"),
                t["figure"].as_str().unwrap_or("?"),
                if t["met"] == true { "met" } else { "missed" }
            )
        })
        .collect();
    if !targets.is_empty() {
        rows.push(["edge Worker targets".into(), targets.join("; "), "edge".into()]);
    }

    if let Ok(w) = raw("wasm") {
        let native = num(&w["native_us"]["accept"]);
        let levels: Vec<String> = w["wasm"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|b| {
                let us = num(&b["us"]["accept"]);
                format!(
                    "opt-level {} {us:.2} µs ({:.1}×)",
                    b["opt_level"].as_str().unwrap_or("?"),
                    us / native
                )
            })
            .collect();
        rows.push([
            "`api::handle`, one 177-byte event: native vs wasm in V8".into(),
            format!("native {native:.2} µs; {}", levels.join(", ")),
            "wasm".into(),
        ]);
    }

    let t = raw("transform")?;
    let rate = |k: &str| num(&t[k]["events_per_sec"]);
    let cold = t["cold_start_ms"].as_array().map_or(f64::NAN, |c| {
        let mut v: Vec<f64> = c.iter().map(num).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    });
    rows.push([
        "transform Lambda: events/s (6 MB event, all CPUs)".into(),
        format!(
            "{:.0} — {:.0}× Python; {:.2}× the parse floor's time on one thread",
            rate("ours"),
            rate("ours") / rate("python"),
            rate("floor") / rate("ours_one_thread")
        ),
        "transform".into(),
    ]);
    rows.push([
        "transform Lambda: cold start to first response".into(),
        format!("{cold:.1} ms (median)"),
        "transform".into(),
    ]);

    let p = raw("pipeline")?;
    let sustained = p["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["keeps_up"] == true && r["missing"] == 0)
        .map(|r| num(&r["steady_delivered_per_sec"]))
        .fold(f64::NAN, f64::max);
    let best = p["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["keeps_up"] == true && r["missing"] == 0)
        .max_by(|a, b| num(&a["steady_delivered_per_sec"]).total_cmp(&num(&b["steady_delivered_per_sec"])))
        .and_then(|r| r["scenario"].as_str())
        .unwrap_or("?")
        .to_owned();
    let default = p["results"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["scenario"] == "window-1")
        .map_or(String::new(), |r| {
            format!(
                "; the default (queue mode as deployed, one event per request) {:.0}",
                num(&r["steady_delivered_per_sec"])
            )
        });
    rows.push([
        "whole local pipeline: sustained events/s, nothing lost (target ≥ 20,000)".into(),
        format!("{sustained:.0} ({best}){default}"),
        "pipeline".into(),
    ]);

    let k = raw("packing")?;
    let billed = |how: &str, per: u64| {
        k["firehose"]
            .as_array()
            .and_then(|r| {
                r.iter()
                    .find(|r| r["how"].as_str().is_some_and(|h| h.starts_with(how)) && r["events_per_request"] == per)
            })
            .map_or(f64::NAN, |r| num(&r["billed_bytes_per_million"]) / 1e9)
    };
    rows.push([
        "Firehose billed per million 170-byte events".into(),
        format!(
            "{:.2} GB in queue mode vs {:.2} GB a record per event ({:.0}× less)",
            billed("edge queue", 10),
            billed("a record per event", 10),
            billed("a record per event", 10) / billed("edge queue", 10)
        ),
        "packing".into(),
    ]);

    if let Ok(c) = raw("cost") {
        let measured: edgehose_cost::measured::Measured =
            serde_json::from_value(c).map_err(|e| format!("target/bench/cost/cost.json: {e}"))?;
        rows.push([
            "whole bill per million 170-byte events, one per request (target: ≤ ⅓ of the API Gateway path's)".into(),
            crate::cost::goal(&measured)?,
            "cost".into(),
        ]);
    }

    let l = raw("latency")?;
    for (scenario, report) in l.as_object().into_iter().flatten() {
        let p50 = |mode: &str, target: &str| {
            report["modes"]
                .as_array()
                .and_then(|m| m.iter().find(|m| m["mode"] == mode))
                .and_then(|m| m["targets"].as_array())
                .and_then(|t| t.iter().find(|t| t["name"] == target))
                .map_or(f64::NAN, |t| num(&t["metrics"]["ttfb"]["p50"]))
        };
        let (edge_new, queue_new, direct_new, api_new) = (
            p50("new-connection", "edge-window"),
            p50("new-connection", "edge-queue"),
            p50("new-connection", "edge-direct"),
            p50("new-connection", "apigw"),
        );
        let failed: u64 = report["modes"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|m| m["targets"].as_array().into_iter().flatten())
            .map(|t| t["failed"].as_u64().unwrap_or(0))
            .sum();
        let times = if edge_new.is_finite() && api_new.is_finite() {
            format!(" ({:.1}×)", api_new / edge_new)
        } else {
            String::new()
        };
        let failures = if failed > 0 {
            format!("; {failed} requests failed")
        } else {
            String::new()
        };
        rows.push([
            format!(
                "click acknowledged, {} (simulated), first click p50, one event per request",
                scenario.replace(':', " → ")
            ),
            format!(
                "edge, queue mode as deployed (window) {edge_new:.0} ms vs API Gateway {api_new:.0} ms{times}; queue mode without a window {queue_new:.0} ms, direct mode {direct_new:.0} ms{failures}"
            ),
            "latency".into(),
        ]);
    }

    if let Ok(t) = raw("tracker") {
        let gz = t["min_gzip_bytes"].as_u64().unwrap_or(0);
        rows.push([
            "browser tracker `edgehose.min.js`, gzipped (target < 2 KB)".into(),
            format!(
                "{gz} bytes — {}",
                if gz < crate::tracker::TARGET_GZIP_BYTES as u64 {
                    "met"
                } else {
                    "missed"
                }
            ),
            "tracker".into(),
        ]);
    }

    let mut out = format!(
        "### Headline figures ({}; {})\n\nWritten by `make bench` (or `edgehose-bench headline --write BENCHMARKS.md` after single benchmarks) from each benchmark's latest raw results (`target/bench/*/*.json`); every figure is also in its section below.\n\n| what | measured | section |\n|---|---|---|\n",
        report::today(),
        report::machine()
    );
    for [what, figure, section] in rows {
        out.push_str(&format!("| {what} | {figure} | {section} |\n"));
    }
    Ok(out)
}
