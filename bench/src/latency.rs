//! `edgehose-bench latency`: the latency comparison's scenarios, run on this
//! machine by `edgehose latency --scenario`: both paths local, the distances
//! of each scenario's cities put in by the delay proxy. One table of the
//! figures users choose by, each scenario's chart kept beside its JSON.

use std::process::Command;

use serde_json::Value;

use crate::harness::report;
use crate::repo_root;

/// The scenarios measured by default: the near case, a transatlantic one,
/// and two far ones.
const SCENARIOS: &str = "frankfurt:eu-central-1,london:us-east-1,tokyo:us-east-1,sydney:eu-central-1";

/// `edgehose-bench latency`'s options.
#[derive(Debug, clap::Parser)]
pub struct Options {
    /// Measured requests per target and mode.
    #[arg(long, default_value_t = 50)]
    pub requests: usize,
    /// CITY:REGION scenarios, comma-separated.
    #[arg(long, default_value = SCENARIOS)]
    pub scenarios: String,
    /// Where the table is written.
    #[command(flatten)]
    pub write: crate::harness::report::Write,
}

/// Runs the benchmark.
pub fn main(o: Options) -> Result<(), String> {
    let requests = o.requests;
    let scenarios = o.scenarios.clone();
    let edgehose = repo_root().join("target/release/edgehose");
    if !edgehose.exists() {
        return Err(format!(
            "{} is missing: make bench-latency builds it",
            edgehose.display()
        ));
    }
    let mut rows = Vec::new();
    let mut raw = serde_json::Map::new();
    for s in scenarios.split(',').filter(|s| !s.is_empty()) {
        let (city, region) = s.split_once(':').unwrap_or((s, "us-east-1"));
        let out = repo_root()
            .join("target/bench/latency")
            .join(format!("{city}-{region}"));
        eprintln!("latency: {city} → {region}, {requests} requests per path and mode");
        let status = Command::new(&edgehose)
            .args([
                "latency",
                "--scenario",
                city,
                "--region",
                region,
                "--routed",
                "--requests",
            ])
            .arg(requests.to_string())
            .arg("--out")
            .arg(&out)
            .status()
            .map_err(|e| format!("running {}: {e}", edgehose.display()))?;
        if !status.success() {
            return Err(format!("edgehose latency --scenario {city} --region {region} failed"));
        }
        let json: Value = serde_json::from_str(
            &std::fs::read_to_string(out.join("latency.json")).map_err(|e| format!("{}: {e}", out.display()))?,
        )
        .map_err(|e| e.to_string())?;
        rows.push(row(&json));
        raw.insert(format!("{city}:{region}"), json["report"].clone());
    }
    let table = render(&rows, requests, &scenarios);
    report::publish("latency", &table, Some(&Value::Object(raw)), o.write.file())
}

/// One scenario's line: its distances and, per path, the figures.
struct Row {
    scenario: String,
    distances: String,
    paths: Vec<PathFigures>,
}

struct PathFigures {
    name: String,
    new_ttfb: (f64, f64),
    keep_ttfb: (f64, f64),
    sink_p50: Option<f64>,
    failed: u64,
}

fn row(json: &Value) -> Row {
    let s = &json["scenario"];
    let mode = |name: &str| {
        json["report"]["modes"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["mode"] == name))
            .cloned()
            .unwrap_or_default()
    };
    let (new, keep) = (mode("new-connection"), mode("keep-alive"));
    let figures = |m: &Value, name: &str| -> Value {
        m["targets"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["name"] == name))
            .cloned()
            .unwrap_or_default()
    };
    let pct = |t: &Value, metric: &str, p: &str| t["metrics"][metric][p].as_f64().unwrap_or(f64::NAN);
    // Every target the run measured: the edge's modes, then the API Gateway path.
    let names: Vec<String> = keep["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect();
    let paths = names
        .iter()
        .map(|name| {
            let (n, k) = (figures(&new, name), figures(&keep, name));
            PathFigures {
                name: name.clone(),
                new_ttfb: (pct(&n, "ttfb", "p50"), pct(&n, "ttfb", "p99")),
                keep_ttfb: (pct(&k, "ttfb", "p50"), pct(&k, "ttfb", "p99")),
                sink_p50: k["metrics"]["sink"]["p50"].as_f64(),
                failed: n["failed"].as_u64().unwrap_or(0) + k["failed"].as_u64().unwrap_or(0),
            }
        })
        .collect();
    Row {
        scenario: format!(
            "{} → {}",
            s["city"].as_str().unwrap_or("?"),
            s["region"].as_str().unwrap_or("?")
        ),
        distances: format!(
            "PoP {:.0} · region {:.0} · PoP↔region {:.0} · queue write {:.0}",
            s["client_to_pop_ms"].as_f64().unwrap_or(0.0),
            s["client_to_region_ms"].as_f64().unwrap_or(0.0),
            s["pop_to_region_ms"].as_f64().unwrap_or(0.0),
            s["queue_write_ms"].as_f64().unwrap_or(0.0)
        ),
        paths,
    }
}

fn render(rows: &[Row], requests: usize, scenarios: &str) -> String {
    let mut t = format!(
        "### Latency comparison, simulated ({}; {})\n\n`make bench-latency` (`edgehose-bench latency --scenarios {scenarios} --requests {requests}`): for each scenario both paths run on this machine — the release edge Worker in Miniflare's workerd, once per mode, and `ingest-api` behind the local API Gateway, all sending to firehose-local running the release `transform` — behind delay proxies set to the scenario's round trips (ms), TLS terminated after the delay. Every queue write resolves after the queue-write round trip (Cloudflare's median send, ~60 ms: its blog of 2024-10-24, \"Durable Objects aren't just durable, they're fast\"; where a queue's storage sits relative to a PoP is not documented, so every scenario gets the same figure). The edge's modes: `edge-window` is queue mode as deployed (answers at once; one queue message per isolate window, written in `waitUntil`), `edge-queue` queue mode without a window (the answer waits for its queue write), `edge-direct` direct mode (answers at once, calls Firehose itself), `edge-routed` queue mode as deployed with two regions (`REGIONS`, eu-central-1 and us-east-1, each a firehose-local at its backbone distance), sending the client to the nearer by its country. {requests} requests per path and mode, taking turns. Milliseconds; time to first byte as p50 / p99.\n\n",
        report::today(),
        report::machine(),
    );
    t.push_str("| scenario (round trips, ms) | path | new connection | kept alive | event → sink p50, kept alive | failed |\n|---|---|---|---|---|---|\n");
    for r in rows {
        for (i, p) in r.paths.iter().enumerate() {
            let first = if i == 0 {
                format!("{} ({})", r.scenario, r.distances)
            } else {
                String::new()
            };
            t.push_str(&format!(
                "| {first} | {} | {:.1} / {:.1} | {:.1} / {:.1} | {} | {} |\n",
                p.name,
                p.new_ttfb.0,
                p.new_ttfb.1,
                p.keep_ttfb.0,
                p.keep_ttfb.1,
                p.sink_p50.map_or("–".to_owned(), |v| format!("{v:.0}")),
                p.failed
            ));
        }
    }
    t.push_str("\nThe API Gateway path's time to first byte over each edge mode's (p50), new connection / kept alive:\n\n| scenario | edge mode | API Gateway ÷ edge |\n|---|---|---|\n");
    let x = |a: f64, b: f64| {
        if a > 0.0 && b > 0.0 {
            format!("{:.1}×", a / b)
        } else {
            "–".to_owned()
        }
    };
    for r in rows {
        let Some(apigw) = r.paths.iter().find(|p| p.name == "apigw") else {
            continue;
        };
        for (i, edge) in r.paths.iter().filter(|p| p.name != "apigw").enumerate() {
            t.push_str(&format!(
                "| {} | {} | {} / {} |\n",
                if i == 0 { r.scenario.as_str() } else { "" },
                edge.name,
                x(apigw.new_ttfb.0, edge.new_ttfb.0),
                x(apigw.keep_ttfb.0, edge.keep_ttfb.0)
            ));
        }
    }
    t.push_str("\nResidency routing: the nearer region serving the visitor (`edge-routed`) against the scenario's single region (`edge-window`), kept alive, p50 — the first click is answered at the PoP either way; time-to-land moves by the backbone:\n\n| scenario | first click, single / routed | time-to-land, single / routed |\n|---|---|---|\n");
    for r in rows {
        let (Some(single), Some(routed)) = (
            r.paths.iter().find(|p| p.name == "edge-window"),
            r.paths.iter().find(|p| p.name == "edge-routed"),
        ) else {
            continue;
        };
        let land = |p: &PathFigures| p.sink_p50.map_or("–".to_owned(), |v| format!("{v:.0}"));
        t.push_str(&format!(
            "| {} | {:.1} / {:.1} | {} / {} |\n",
            r.scenario,
            single.keep_ttfb.0,
            routed.keep_ttfb.0,
            land(single),
            land(routed)
        ));
    }
    t.push_str(
        "\nCharts and every request's phases: `target/bench/latency/<city>-<region>/latency.svg` and `latency.json`.\n",
    );
    t
}
