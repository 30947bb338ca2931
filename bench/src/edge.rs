//! `edgehose-bench edge`: the edge Worker against the runtime floor (a JS
//! Worker that returns 200) and a JS Worker doing the same job with aws4fetch,
//! each alone in raw workerd on loopback, forwarding to a local sink.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::load::{self, Summary};
use crate::report;
use crate::sink::Sink;
use crate::workerd::{Module, WorkerSpec, Workerd, pin_this_thread};
use crate::{cache_dir, flag, repo_root};

/// The event every request carries: 177 bytes of realistic telemetry.
pub fn event_177() -> String {
    let head = r#"{"event":"ride_sample","ts":1714566600000,"anonymous_id":"bike-"#;
    let tail = r#"","properties":{"watts":231,"cadence":88,"hr":141,"speed_kmh":32.4,"gear":7}}"#;
    let pad = 177usize.saturating_sub(head.len() + tail.len());
    format!("{head}{}{tail}", "0".repeat(pad))
}

/// One Worker's results.
#[derive(Debug, Clone)]
pub struct Result {
    /// Its name in the table.
    pub name: &'static str,
    /// One keep-alive connection, sequential.
    pub sequential: Summary,
    /// `concurrency` connections.
    pub concurrent: Summary,
    /// workerd CPU per request, µs (forwarding included).
    pub cpu_us: f64,
    /// Events (envelope lines) the sink received.
    pub forwarded: u64,
    /// `PutRecordBatch` calls the sink received.
    pub calls: u64,
    /// Sequential again with the client and workerd on one CPU; `None` when
    /// they could not be pinned.
    pub one_cpu: Option<Summary>,
}

/// Runs the benchmark; see the module docs.
pub fn main(args: &[String]) -> std::result::Result<(), String> {
    let requests: usize = flag(args, "--requests").and_then(|v| v.parse().ok()).unwrap_or(4000);
    let concurrency: usize = flag(args, "--concurrency").and_then(|v| v.parse().ok()).unwrap_or(16);
    let build = flag(args, "--build")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("edge/build"));
    let wasm = build.join("index_bg.wasm");
    if !wasm.exists() {
        return Err(format!(
            "{} is missing: build the Worker first (make edge)",
            wasm.display()
        ));
    }
    let npm = cache_dir().join("npm/node_modules");
    let workerd = npm.join("@cloudflare/workerd-linux-64/bin/workerd");
    let aws4fetch = npm.join("aws4fetch/dist/aws4fetch.esm.mjs");
    for p in [&workerd, &aws4fetch] {
        if !p.exists() {
            return Err(format!("{} is missing: run tools/bootstrap", p.display()));
        }
    }
    let work = repo_root().join("target/bench/edge");
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let js = repo_root().join("bench/js");
    let sink = Sink::start(4)?;
    let bindings: Vec<(String, String)> = [
        ("FIREHOSE_STREAM", "bench"),
        ("AWS_REGION", "us-east-1"),
        ("FIREHOSE_ENDPOINT", sink.url()),
        ("FORWARD_MODE", "direct"),
        ("AWS_ACCESS_KEY_ID", "AKIDBENCHMARK"),
        ("AWS_SECRET_ACCESS_KEY", "bench-secret-not-a-real-key"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .chain(vars(args))
    .collect();
    let variants = [
        (
            "edgehose (Rust → wasm)",
            vec![
                Module::Es("index.js".into(), build.join("index.js")),
                Module::Wasm("index_bg.wasm".into(), wasm.clone()),
            ],
        ),
        (
            "floor: JS returning 200",
            vec![Module::Es("floor.mjs".into(), js.join("floor.mjs"))],
        ),
        (
            "body-read floor: JS reading the body, returning 200",
            vec![Module::Es("floor-body.mjs".into(), js.join("floor-body.mjs"))],
        ),
        (
            "JS peer with aws4fetch",
            vec![
                Module::Es("peer.mjs".into(), js.join("aws4fetch-peer.mjs")),
                Module::Es("aws4fetch.mjs".into(), aws4fetch.clone()),
            ],
        ),
    ];
    let body = event_177();
    let request = format!(
        "POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes();

    println!(
        "edge benchmark: {requests} sequential requests on one keep-alive connection, then {concurrency} connections × {} requests; {}-byte event; raw workerd on loopback",
        requests / 2,
        body.len()
    );
    let mut results = Vec::new();
    for (name, modules) in variants {
        print!("  {name} … ");
        let _ = std::io::stdout().flush();
        let spec = WorkerSpec {
            modules,
            bindings: bindings.clone(),
        };
        let w = Workerd::start(&workerd, &spec, &work)?;
        let r = measure(name, &w, &sink, &request, requests, concurrency)?;
        println!("p50 {:.0} µs", r.sequential.p50);
        results.push(r);
    }
    let gz = gzipped_size(&wasm)?;
    let table = render(&results, gz, requests, concurrency, body.len());
    let json = serde_json::json!({
        "date": report::today(), "machine": report::machine(), "wasm_gzip_bytes": gz,
        "results": results.iter().map(|r| serde_json::json!({
            "name": r.name, "cpu_us_per_request": r.cpu_us, "events_forwarded": r.forwarded, "putrecordbatch_calls": r.calls,
            "sequential": summary_json(&r.sequential), "concurrent": summary_json(&r.concurrent),
            "sequential_one_cpu": r.one_cpu.as_ref().map(summary_json),
        })).collect::<Vec<_>>(),
    });
    report::publish("edge", &table, Some(&json), flag(args, "--write"))
}

/// `--var NAME=VALUE` settings for the Workers (repeatable), e.g. `--var DIRECT_FLUSH_MS=5`.
fn vars(args: &[String]) -> Vec<(String, String)> {
    args.windows(2)
        .filter(|w| w[0] == "--var")
        .filter_map(|w| w[1].split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect()
}

fn summary_json(s: &Summary) -> serde_json::Value {
    serde_json::json!({"requests": s.requests, "p50_us": s.p50, "p90_us": s.p90, "p99_us": s.p99, "max_us": s.max, "rps": s.rps, "errors": s.errors})
}

fn measure(
    name: &'static str,
    w: &Workerd,
    sink: &Sink,
    request: &[u8],
    requests: usize,
    concurrency: usize,
) -> std::result::Result<Result, String> {
    let addr: SocketAddr = w.addr();
    load::sequential(addr, request, 300)?; // warm up: JIT, wasm tiers, connection
    settle(sink);
    let cpu0 = w.cpu_seconds()?;
    let (calls0, _, lines0) = sink.counts();
    let sequential = load::sequential(addr, request, requests)?.summary();
    let per = (requests / 2).max(1);
    let concurrent = load::concurrent(addr, request, concurrency, per)?.summary();
    settle(sink); // let waitUntil forwarding finish before reading the CPU counter
    let cpu1 = w.cpu_seconds()?;
    let (calls1, _, lines1) = sink.counts();
    let total = (sequential.requests + concurrent.requests) as f64;
    let one_cpu = match on_one_cpu(w, request, requests) {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("  (no one-CPU run for {name}: {e})");
            None
        }
    };
    settle(sink);
    Ok(Result {
        name,
        sequential,
        concurrent,
        cpu_us: (cpu1 - cpu0) * 1e6 / total,
        forwarded: lines1 - lines0,
        calls: calls1 - calls0,
        one_cpu,
    })
}

/// The sequential run with the client thread and every workerd thread on
/// one CPU (the first this process may use). Left to the scheduler, the two
/// usually end up on different CPUs, and on a virtual machine each wake-up
/// across CPUs costs tens of µs (this machine: ≈ 55 µs each way; the floor's
/// p50 goes from ≈ 50 to ≈ 165 µs after its first few hundred requests). On
/// one CPU the figure is the Workers' own time plus two context switches.
fn on_one_cpu(w: &Workerd, request: &[u8], requests: usize) -> std::result::Result<Summary, String> {
    let addr = w.addr();
    let cpu = first_allowed_cpu()?;
    w.pin(cpu)?;
    let request = request.to_vec();
    std::thread::spawn(move || {
        pin_this_thread(cpu)?;
        load::sequential(addr, &request, 300)?;
        Ok(load::sequential(addr, &request, requests)?.summary())
    })
    .join()
    .map_err(|_| "the one-CPU client panicked".to_owned())?
}

/// The first CPU this process may run on (`Cpus_allowed_list`, e.g. `0-1`
/// or `2,5-7`): a container's CPU set need not include CPU 0.
fn first_allowed_cpu() -> std::result::Result<usize, String> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| format!("/proc/self/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .and_then(|list| list.trim().split([',', '-']).next().and_then(|n| n.trim().parse().ok()))
        .ok_or_else(|| "no Cpus_allowed_list in /proc/self/status".to_owned())
}

/// Waits until the sink has seen no new call for 300 ms (at most 10 s).
fn settle(sink: &Sink) {
    let start = Instant::now();
    let mut last = sink.counts();
    let mut quiet = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
        let now = sink.counts();
        if now != last {
            last = now;
            quiet = Instant::now();
        } else if quiet.elapsed() > Duration::from_millis(300) {
            return;
        }
    }
}

fn gzipped_size(path: &Path) -> std::result::Result<usize, String> {
    let out = std::process::Command::new("gzip")
        .args(["-9", "-c"])
        .arg(path)
        .output()
        .map_err(|e| format!("gzip: {e}"))?;
    Ok(out.stdout.len())
}

fn render(results: &[Result], gz: usize, requests: usize, concurrency: usize, body: usize) -> String {
    let mut t = String::new();
    t.push_str(&format!(
        "### Edge Worker ({}; {})\n\n`make bench-edge` — {requests} sequential {body}-byte `POST /v1/events` on one keep-alive connection, then {concurrency} connections × {} requests, each Worker alone in raw workerd on loopback, forwarding (`waitUntil` → signed `PutRecordBatch`) to a local sink. Latency in µs, client-side, request written to response read; CPU is workerd's own user+system time per request over both runs, forwarding included.\n\n",
        report::today(),
        report::machine(),
        requests / 2
    ));
    t.push_str("| Worker | p50 | p90 | p99 | one CPU p50 | one CPU p99 | req/s | c=16 p50 | c=16 p99 | c=16 req/s | CPU µs/req | events forwarded | PutRecordBatch calls |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    let one =
        |r: &Result, f: fn(&Summary) -> f64| r.one_cpu.as_ref().map_or("–".to_owned(), |s| format!("{:.0}", f(s)));
    for r in results {
        t.push_str(&format!(
            "| {} | {:.0} | {:.0} | {:.0} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {} of {} | {} |\n",
            r.name,
            r.sequential.p50,
            r.sequential.p90,
            r.sequential.p99,
            one(r, |s| s.p50),
            one(r, |s| s.p99),
            r.sequential.rps,
            r.concurrent.p50,
            r.concurrent.p99,
            r.concurrent.rps,
            r.cpu_us,
            r.forwarded,
            r.sequential.requests + r.concurrent.requests,
            r.calls
        ));
    }
    if let [ours, floor, body_floor, peer] = results {
        t.push_str(&format!(
            "\nRatios (sequential p50): edgehose / floor = **{:.2}×** (reading the body alone: {:.2}×; edgehose / body-read floor = {:.2}×), edgehose / JS peer = **{:.2}×**; CPU per request: edgehose / JS peer = {:.2}×. Gzipped wasm: **{:.1} KB** ({gz} bytes).\n",
            ours.sequential.p50 / floor.sequential.p50,
            body_floor.sequential.p50 / floor.sequential.p50,
            ours.sequential.p50 / body_floor.sequential.p50,
            ours.sequential.p50 / peer.sequential.p50,
            ours.cpu_us / peer.cpu_us,
            gz as f64 / 1000.0
        ));
        if let (Some(o), Some(f), Some(b)) = (&ours.one_cpu, &floor.one_cpu, &body_floor.one_cpu) {
            t.push_str(&format!(
                "\nOn one CPU (no cross-CPU wake-ups): edgehose / floor = **{:.2}×**, reading the body alone {:.2}×, edgehose / body-read floor = {:.2}×.\n",
                o.p50 / f.p50,
                b.p50 / f.p50,
                o.p50 / b.p50
            ));
        }
        let errors: usize = results.iter().map(|r| r.sequential.errors + r.concurrent.errors).sum();
        if errors > 0 {
            t.push_str(&format!("\n{errors} responses were not 200.\n"));
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_benchmark_event_is_177_bytes_of_valid_json() {
        let e = event_177();
        assert_eq!(e.len(), 177);
        let v: serde_json::Value = serde_json::from_str(&e).unwrap();
        assert_eq!(v["event"], "ride_sample");
    }

    fn result(name: &'static str, p50: f64, cpu_us: f64, one_cpu_p50: Option<f64>) -> Result {
        let summary = Summary {
            requests: 100,
            p50,
            p90: p50,
            p99: p50,
            max: p50,
            rps: 1e6 / p50,
            errors: 0,
        };
        Result {
            name,
            sequential: summary,
            concurrent: summary,
            cpu_us,
            forwarded: 100,
            calls: 1,
            one_cpu: one_cpu_p50.map(|p50| Summary { p50, ..summary }),
        }
    }

    #[test]
    fn the_table_puts_edgehose_against_both_floors_and_the_peer() {
        let results = [
            result("edgehose", 300.0, 150.0, Some(150.0)),
            result("floor", 150.0, 60.0, Some(50.0)),
            result("body-read floor", 180.0, 80.0, Some(60.0)),
            result("JS peer", 600.0, 400.0, None),
        ];
        let t = render(&results, 200_000, 100, 16, 177);
        assert_eq!(t.lines().filter(|l| l.starts_with("| ")).count(), 5, "{t}");
        assert!(t.contains("| JS peer | 600 | 600 | 600 | – | – |"), "{t}");
        assert!(
            t.contains("On one CPU (no cross-CPU wake-ups): edgehose / floor = **3.00×**, reading the body alone 1.20×, edgehose / body-read floor = 2.50×."),
            "{t}"
        );
        assert!(
            t.contains("edgehose / floor = **2.00×** (reading the body alone: 1.20×; edgehose / body-read floor = 1.67×), edgehose / JS peer = **0.50×**; CPU per request: edgehose / JS peer = 0.38×. Gzipped wasm: **200.0 KB**"),
            "{t}"
        );
    }
}
