//! `edgehose-bench cost`: measures what the cost model takes from
//! benchmarks rather than price lists, rewrites `cli/cost/src/measured.json`
//! with it, and prints the whole bill of every path (`edgehose cost`) for
//! the scenarios of BENCHMARKS.md, with the chart and the price sources.
//!
//! - The edge Worker's CPU per request (workerd's own user + system time),
//!   direct mode with one `PutRecordBatch` per request (`DIRECT_FLUSH_MS=0`,
//!   the most CPU a request can cost), at 1, 10 and 50 events per request:
//!   the median of interleaved rounds.
//! - `ingest-api`'s billed duration per invocation behind the local API
//!   Gateway, with Firehose at us-east-1's in-region round trip (CloudPing's
//!   5.3 ms, the latency scenarios' figure), at the same sizes.
//! - The transform's handler time per event on one thread, over Firehose
//!   invocations of 3 MB (the template's processing buffer).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use edgehose_cost::bill::{Path as CostPath, bill};
use edgehose_cost::measured::{BySize, Measured};
use edgehose_cost::traffic::Shape;
use edgehose_cost::{self as cost, prices};
use edgehose_latency::proxy::{Delay, Proxy, Route};
use edgehose_local::aws::api_gateway::ApiGateway;
use edgehose_local::aws::firehose::{self, Config, FirehoseLocal};
use edgehose_local::aws::lambda_runtime::{RawOutcome, RuntimeApi};

use crate::edge::event_177;
use crate::harness::sink::Sink;
use crate::harness::workerd::{Module, WorkerSpec, Workerd};
use crate::harness::{load, report};
use crate::{cache_dir, repo_root};

/// Request sizes measured (events per request).
const SIZES: [usize; 3] = [1, 10, 50];
/// us-east-1's in-region round trip (CloudPing p50, as `latency::scenario`).
const IN_REGION_MS: f64 = 5.3;
/// The template's memory for both functions.
const MEMORY_MB: f64 = 512.0;
/// Firehose's processing buffer in the template.
const TRANSFORM_EVENT_BYTES: usize = 3 * 1024 * 1024;

/// `edgehose-bench cost`'s options.
#[derive(Debug, clap::Parser)]
pub struct Options {
    /// Rounds of each measurement.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Requests per round.
    #[arg(long, default_value_t = 500)]
    pub requests: usize,
    /// Price figures measured before (after a price change) instead of
    /// measuring again.
    #[arg(long)]
    pub from: Option<PathBuf>,
    /// Where the table is written.
    #[command(flatten)]
    pub write: crate::harness::report::Write,
}

/// Runs the benchmark.
pub fn main(o: Options) -> Result<(), String> {
    let (rounds, requests) = (o.rounds, o.requests);
    let work = repo_root().join("target/bench/cost");
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let chart = repo_root().join("bench/cost.svg");
    if let Some(file) = &o.from {
        let measured =
            Measured::parse(&std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?)?;
        let table = render(&measured, &chart)?;
        return report::publish(
            "cost",
            &table,
            Some(&serde_json::to_value(&measured).unwrap_or_default()),
            o.write.file(),
        );
    }
    println!(
        "cost benchmark: {rounds} interleaved rounds of {requests} requests per size ({SIZES:?} events per request)"
    );
    let edge_cpu = edge_cpu(&work, rounds, requests)?;
    println!("  edge CPU µs per request: {:?}", edge_cpu.points);
    let ingest = ingest_api_billed(&work, rounds, requests / 2)?;
    println!("  ingest-api billed ms per invocation: {:?}", ingest.points);
    let transform_us = transform_us_per_event(&work, 5)?;
    println!("  transform µs per event, one thread: {transform_us:.3}");
    let measured = Measured {
        date: report::today(),
        machine: report::machine(),
        command: "make bench-cost".into(),
        edge_cpu_us_per_request: edge_cpu,
        ingest_api_billed_ms: ingest,
        ingest_api_memory_mb: MEMORY_MB,
        transform_us_per_event: transform_us,
        transform_memory_mb: MEMORY_MB,
    };
    let json = serde_json::to_string_pretty(&measured).map_err(|e| e.to_string())?;
    let file = repo_root().join("cli/cost/src/measured.json");
    std::fs::write(&file, format!("{json}\n")).map_err(|e| format!("{}: {e}", file.display()))?;
    println!("wrote {}", file.display());
    let table = render(&measured, &chart)?;
    report::publish(
        "cost",
        &table,
        Some(&serde_json::to_value(&measured).unwrap_or_default()),
        o.write.file(),
    )
}

/// A `POST /v1/events` of `k` 177-byte events.
fn request(path: &str, k: usize) -> Vec<u8> {
    let body = vec![event_177(); k].join("\n");
    format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn settle(sink: &Sink) {
    let mut last = sink.counts();
    for _ in 0..200 {
        std::thread::sleep(Duration::from_millis(100));
        let now = sink.counts();
        if now == last {
            return;
        }
        last = now;
    }
}

/// The edge Worker's CPU per request at each size: rounds interleave the sizes.
fn edge_cpu(work: &Path, rounds: usize, requests: usize) -> Result<BySize, String> {
    let build = repo_root().join("edge/build");
    let workerd = cache_dir().join("npm/node_modules/@cloudflare/workerd-linux-64/bin/workerd");
    if !build.join("index_bg.wasm").exists() || !workerd.exists() {
        return Err("the Worker build or workerd is missing: make edge (and tools/bootstrap)".into());
    }
    let sink = Sink::start(4)?;
    let spec = WorkerSpec {
        modules: vec![
            Module::Es("index.js".into(), build.join("index.js")),
            Module::Wasm("index_bg.wasm".into(), build.join("index_bg.wasm")),
        ],
        bindings: [
            ("FIREHOSE_STREAM", "bench"),
            ("AWS_REGION", "us-east-1"),
            ("FIREHOSE_ENDPOINT", sink.url()),
            ("FORWARD_MODE", "direct"),
            ("DIRECT_FLUSH_MS", "0"),
            ("AWS_ACCESS_KEY_ID", "AKIDBENCHMARK"),
            ("AWS_SECRET_ACCESS_KEY", "bench-secret-not-a-real-key"),
            ("ALLOW_ANONYMOUS", "true"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    };
    let dir = work.join("edge");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let w = Workerd::start(&workerd, &spec, &dir)?;
    let addr: SocketAddr = w.addr();
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); SIZES.len()];
    for &k in &SIZES {
        load::sequential(addr, &request("/v1/events", k), 200)?; // warm up
    }
    settle(&sink);
    for _ in 0..rounds {
        for (i, &k) in SIZES.iter().enumerate() {
            let req = request("/v1/events", k);
            let (_, _, lines0) = sink.counts();
            let cpu0 = w.cpu_seconds()?;
            let run = load::sequential(addr, &req, requests)?;
            settle(&sink);
            let cpu1 = w.cpu_seconds()?;
            let (_, _, lines1) = sink.counts();
            if run.errors > 0 || lines1 - lines0 != (requests * k) as u64 {
                return Err(format!(
                    "edge at {k} events per request: {} errors, {} of {} events forwarded",
                    run.errors,
                    lines1 - lines0,
                    requests * k
                ));
            }
            samples[i].push((cpu1 - cpu0) * 1e6 / requests as f64);
        }
    }
    Ok(BySize {
        points: SIZES
            .iter()
            .zip(samples)
            .map(|(&k, s)| (k, edgehose_latency::stats::median(&s)))
            .collect(),
    })
}

/// `ingest-api`'s billed ms per invocation at each size, behind the local
/// API Gateway, Firehose one in-region round trip away.
fn ingest_api_billed(work: &Path, rounds: usize, requests: usize) -> Result<BySize, String> {
    let binary = repo_root().join("target/release/ingest-api");
    if !binary.exists() {
        return Err(format!("{} is missing: make bench-cost builds it", binary.display()));
    }
    let data = work.join("firehose");
    let _ = std::fs::remove_dir_all(&data);
    let stream = "edgehose-events";
    let firehose = FirehoseLocal::start(Config::new(stream, data.clone()))?;
    let upstream: SocketAddr = firehose
        .url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .map_err(|e| format!("{}: {e}", firehose.url()))?;
    let proxy = Proxy::start(Route {
        listen: "127.0.0.1:0".into(),
        upstream,
        delay: Delay::rtt(Duration::from_secs_f64(IN_REGION_MS / 1000.0), Duration::ZERO),
        tunnel: false,
        tls: None,
    })?;
    let endpoint = format!("http://{}", proxy.addr());
    let env = [
        ("FIREHOSE_STREAM", stream),
        ("AWS_REGION", firehose::REGION_DEFAULT),
        ("AWS_ACCESS_KEY_ID", firehose::DEV_ACCESS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", firehose::DEV_SECRET_ACCESS_KEY),
        ("FIREHOSE_ENDPOINT", endpoint.as_str()),
        ("ALLOW_ANONYMOUS", "true"),
    ];
    let api = ApiGateway::start("127.0.0.1:0", &binary, &env, Some(&work.join("ingest-api.log")))?;
    let addr: SocketAddr = api
        .url()
        .trim_start_matches("http://")
        .parse()
        .map_err(|e| format!("{}: {e}", api.url()))?;
    for &k in &SIZES {
        load::sequential(addr, &request("/v1/events", k), 20)?; // warm up
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); SIZES.len()];
    for _ in 0..rounds {
        for (i, &k) in SIZES.iter().enumerate() {
            let before = api.billing();
            let run = load::sequential(addr, &request("/v1/events", k), requests)?;
            let after = api.billing();
            let n = after.invocations - before.invocations;
            if run.errors > 0 || n != requests as u64 {
                return Err(format!(
                    "ingest-api at {k} events per request: {} errors, {n} invocations of {requests}\n{}",
                    run.errors,
                    api.log()
                ));
            }
            samples[i].push((after.billed_ms - before.billed_ms) as f64 / n as f64);
        }
    }
    Ok(BySize {
        points: SIZES
            .iter()
            .zip(samples)
            .map(|(&k, s)| (k, edgehose_latency::stats::median(&s)))
            .collect(),
    })
}

/// The release `transform` binary on one thread, invoked with 3 MB
/// Firehose events: billed handler time per event, µs.
fn transform_us_per_event(work: &Path, invocations: usize) -> Result<f64, String> {
    let binary: PathBuf = repo_root().join("target/release/transform");
    if !binary.exists() {
        return Err(format!("{} is missing: make bench-cost builds it", binary.display()));
    }
    let mut event: serde_json::Value =
        serde_json::from_str(&crate::transform::build_event()).map_err(|e| e.to_string())?;
    let records = event["records"].as_array_mut().ok_or("no records")?;
    while serde_json::to_string(records).map_or(0, |s| s.len()) > TRANSFORM_EVENT_BYTES && records.len() > 1 {
        records.pop();
    }
    let events_per_invocation = records.len() * 500;
    let event = event.to_string();
    std::fs::write(work.join("transform-event.json"), &event).map_err(|e| e.to_string())?;
    let api = RuntimeApi::start()?;
    let function = api.spawn(&binary, "edgehose-transform", &[("TRANSFORM_THREADS", "1")])?;
    let invoke = || match api.invoke_raw(event.clone(), Duration::from_secs(120))? {
        RawOutcome::Response(_) => Ok(()),
        RawOutcome::Error(e) => Err(format!("the transform failed: {e}\n{}", function.log())),
    };
    invoke()?; // warm up
    let before = api.billing();
    for _ in 0..invocations {
        invoke()?;
    }
    let after = api.billing();
    Ok((after.billed_ms - before.billed_ms) as f64 * 1000.0 / (invocations * events_per_invocation) as f64)
}

/// The BENCHMARKS.md section: bills at each scenario, the line items at
/// one event per request, the chart, the price sources.
pub fn render(measured: &Measured, chart: &Path) -> Result<String, String> {
    let events = 100e6;
    let shape = |k, r| Shape {
        events_per_request: k,
        event_bytes: 170,
        requests_per_window: r,
    };
    let mut t = format!(
        "### Whole bill per million events ({}; measured on {})\n\n`make bench-cost` — measures CPU and Lambda time, rewrites `cli/cost/src/measured.json` (built into `edgehose cost`), then prices {} 170-byte events a month on every path (`edgehose cost --events-per-month 100000000 --events-per-request K --requests-per-window R`). Prices read {} (AWS us-east-1, Workers Paid); monthly minimums and included allowances counted.\n\n",
        report::today(),
        measured.machine,
        cost::bill::count(events),
        prices::READ_ON
    );
    for (k, r) in [(1, 1), (1, 20), (10, 1), (50, 1)] {
        let bills = CostPath::ALL
            .iter()
            .map(|&p| bill(p, events, shape(k, r), measured))
            .collect::<Result<Vec<_>, _>>()?;
        t.push_str(&format!(
            "**{k} event(s) per request, {r} request(s) per isolate window**\n\n{}\n",
            cost::summary(&bills)
        ));
    }
    let one = CostPath::ALL
        .iter()
        .map(|&p| bill(p, events, shape(1, 1), measured))
        .collect::<Result<Vec<_>, _>>()?;
    t.push_str("<details><summary>Every line at one event per request, each request alone in its window</summary>\n\n");
    t.push_str(&cost::render(&one, shape(1, 1), measured));
    t.push_str("\n</details>\n\n");
    // The same at 20 requests per isolate window, beside it.
    let busy = chart.with_file_name(format!(
        "{}-20-per-window.svg",
        chart.file_stem().and_then(|s| s.to_str()).unwrap_or("cost")
    ));
    for (file, r) in [(chart.to_path_buf(), 1), (busy, 20)] {
        let lines = cost::curve(&CostPath::ALL, events, shape(1, r), measured)?;
        cost::chart::write(&file, &cost::chart_title(events, shape(1, r)), &lines)?;
        t.push_str(&format!(
            "![whole bill per million events against events per request, {r} request(s) per isolate window]({})\n\n",
            file.strip_prefix(repo_root()).unwrap_or(&file).display()
        ));
    }
    let points = |b: &BySize, unit: &str| {
        b.points
            .iter()
            .map(|(k, v)| format!("{v:.1} {unit} at {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    t.push_str(&format!(
        "Measured (median of interleaved rounds): edge CPU per request {} events (direct mode, a signed call per request, forwarding included — an upper bound; queue mode is charged the same); ingest-api billed time per invocation {} events (Firehose {IN_REGION_MS} ms away, as us-east-1's in-region round trip); the transform {:.2} µs per event on one thread here, scaled to 512 MB's CPU share.\n\n",
        points(&measured.edge_cpu_us_per_request, "µs"),
        points(&measured.ingest_api_billed_ms, "ms"),
        measured.transform_us_per_event
    ));
    t.push_str(&format!(
        "**Target** — the default mode's whole bill at one event per request at most a third of the API Gateway path's (100 M events a month): {}.\n\n",
        goal(measured)?
    ));
    t.push_str(&clickstream(measured)?);
    t.push('\n');
    t.push_str(&cost::sources());
    t.push_str("\nFirehose's $0.029 per GB could not be read from AWS's page itself when the table was dated (its price table did not load); the 5 KB (5,120-byte) rounding per record is quoted from the same page. Queue consumers are billed as Workers requests and CPU (<https://developers.cloudflare.com/queues/configuration/consumer-concurrency/#billing>), which the edge lines include.\n");
    Ok(t)
}

/// AWS's published monthly ingestion cost of its Clickstream Analytics on
/// AWS solution (implementation guide, "Cost", v1.1.x, us-east-1, EC2
/// ingestion server) beside ours at the same request rates, one event per
/// request.
fn clickstream(measured: &Measured) -> Result<String, String> {
    const AWS: [(f64, f64, f64, f64); 3] = [
        // (requests/s, Kinesis on-demand, Kinesis provisioned, direct to S3)
        (10.0, 191.8, 175.8, 153.8),
        (100.0, 294.8, 205.8, 179.8),
        (1000.0, 1449.8, 578.8, 398.8),
    ];
    let mut t = String::from(
        "**Beside AWS's own clickstream solution** (Clickstream Analytics on AWS, implementation guide's cost table, v1.1.x, ingestion module only, us-east-1: <https://docs.aws.amazon.com/solutions/latest/clickstream-analytics-on-aws/cost.html>), a month at each request rate, one 170-byte event per request, each request alone in its window:\n\n| requests/s | AWS: Kinesis on-demand | AWS: Kinesis provisioned | AWS: direct to S3 | edgehose queue mode, a message per request | edgehose direct mode | API Gateway path |\n|---|---|---|---|---|---|---|\n",
    );
    for (rps, on_demand, provisioned, s3) in AWS {
        let events = rps * 30.0 * 86_400.0;
        let shape = Shape {
            events_per_request: 1,
            event_bytes: 170,
            requests_per_window: 1,
        };
        let of = |p| bill(p, events, shape, measured).map(|b| b.total);
        t.push_str(&format!(
            "| {rps:.0} | ${on_demand:.0} | ${provisioned:.0} | ${s3:.0} | ${:.0} | ${:.0} | ${:.0} |\n",
            of(CostPath::EdgeQueueWindow)?,
            of(CostPath::EdgeDirect)?,
            of(CostPath::ApiGateway)?
        ));
    }
    Ok(t)
}

/// The goal: the default mode's whole bill at one event per request at most
/// a third of the API Gateway path's. The figure, at 100 M events a month
/// alone in the window and at 20 requests per window, marked met or missed.
pub fn goal(measured: &Measured) -> Result<String, String> {
    let per_million = |p, r| {
        let shape = Shape {
            events_per_request: 1,
            event_bytes: 170,
            requests_per_window: r,
        };
        bill(p, 100e6, shape, measured).map(|b| b.per_million())
    };
    let apigw = per_million(CostPath::ApiGateway, 1)?;
    let mark = |v: f64| if v <= apigw / 3.0 { "met" } else { "missed" };
    let (alone, busy) = (
        per_million(CostPath::EdgeQueueWindow, 1)?,
        per_million(CostPath::EdgeQueueWindow, 20)?,
    );
    let direct = per_million(CostPath::EdgeDirect, 1)?;
    Ok(format!(
        "default (queue, window) ${alone:.2} per million alone in its window ({:.2}× the API Gateway path's ${apigw:.2}: {}), ${busy:.2} at 20 requests per window ({:.2}×: {}); direct mode ${direct:.2} ({:.2}×: {})",
        alone / apigw,
        mark(alone),
        busy / apigw,
        mark(busy),
        direct / apigw,
        mark(direct)
    ))
}
