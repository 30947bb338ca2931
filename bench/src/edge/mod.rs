//! `edgehose-bench edge`: the edge Worker against the runtime floor (a JS
//! Worker that returns 200), a JS Worker that only reads the body, and a JS
//! Worker doing the same job with aws4fetch, each alone in its own raw
//! workerd on loopback, forwarding to a local sink. The Workers take turns
//! over several rounds, so a slow minute on this shared machine falls on all
//! of them; every figure is the median over the rounds, every ratio the
//! median of the rounds' ratios with their range.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::harness::load::{self, Summary};
use crate::harness::report;
use crate::harness::sink::Sink;
use crate::harness::workerd::{Module, WorkerSpec, Workerd, first_allowed_cpu, pin_this_thread};
use crate::{cache_dir, repo_root};

pub mod cold_start;
pub mod profile;
pub mod size;
use edgehose_latency::stats::median;

/// The event every request carries: 177 bytes of realistic telemetry.
pub fn event_177() -> String {
    edgehose_sample::TELEMETRY_177.to_owned()
}

/// The edge Worker's cold start (a fresh isolate to its first answer) at
/// most this many ms more than the JavaScript floor's: what its wasm's size
/// and its start cost a visitor who meets a new isolate.
pub const TARGET_COLD_START_OVER_FLOOR_MS: f64 = 50.0;
/// Cold starts of each Worker, taking turns.
const COLD_STARTS: usize = 10;
/// The Workers whose isolate is profiled after the rounds.
const PROFILED: [&str; 3] = [
    "edgehose (Rust → wasm)",
    "body-read floor: JS reading the body, returning 200",
    GUARDED,
];
/// The edge Worker with its guards on: the same build, a write key that
/// requires tokens, every request carrying a signed token from an allowed
/// origin, `RATE_LIMITS` charging about one binding call a request, and
/// `BOT_ROUTES` (a browser's user agent: no verdict, the common case).
pub const GUARDED: &str = "guarded: edgehose with a token, RATE_LIMITS and BOT_ROUTES";
/// `--baseline`'s build, plain.
pub const BASELINE: &str = "baseline: the --baseline build of edgehose";
/// The guarded Worker's write key and the origin its token is bound to.
const GUARDED_KEY: (&str, &str) = ("web", "wk_bench_guarded_0123456789");
const GUARDED_ORIGIN: &str = "https://shop.example";
const GUARDED_SECRET: &str = "bench-token-secret-0123456789-abcdef";
/// Each guarded request's share of the address budget is one call: a
/// budget of 100 events against one-event requests.
const GUARDED_LIMITS: &str = r#"{"web":{"address":{"events":100},"key":{"events":1000000}}}"#;
/// The guarded Worker's p99 and CPU may be at most this much above the plain one's.
pub const TARGET_GUARDED_OVER_PLAIN: f64 = 1.10;

/// The plain Worker's settings with the guards on.
fn guarded_bindings(plain: &[(String, String)]) -> Vec<(String, String)> {
    let (id, key) = GUARDED_KEY;
    plain
        .iter()
        .filter(|(k, _)| k != "ALLOW_ANONYMOUS")
        .cloned()
        .chain(
            [
                ("WRITE_KEYS", format!("{id}:{key}")),
                ("ALLOWED_ORIGINS", GUARDED_ORIGIN.to_owned()),
                ("TOKEN_SECRETS", GUARDED_SECRET.to_owned()),
                ("TOKEN_REQUIRED_KEYS", id.to_owned()),
                ("RATE_LIMITS", GUARDED_LIMITS.to_owned()),
                ("BOT_ROUTES", r#"{"web":{"bot":"bots","tool":"quarantine"}}"#.to_owned()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v)),
        )
        .collect()
}

/// The request a page makes with a signed token (valid for the day).
fn guarded_request(body: &str) -> Vec<u8> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let expiry = edgehose_shared::timestamp::Timestamp::from_millis(now_ms + 20 * 3_600_000);
    let token = edgehose_shared::token::mint(GUARDED_SECRET.as_bytes(), GUARDED_KEY.0, GUARDED_ORIGIN, expiry);
    format!(
        "POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nOrigin: {GUARDED_ORIGIN}\r\nx-edgehose-key: {token}\r\ncf-connecting-ip: 203.0.113.7\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Fresh processes compiling the Worker's wasm, per compile mode.
const COMPILE_ROUNDS: usize = 7;
/// p99 below this, µs, with the scheduler free and on one CPU.
pub const TARGET_P99_US: f64 = 1000.0;
/// CPU per request at most this many times the body-read floor's.
pub const TARGET_CPU_OVER_BODY_FLOOR: f64 = 1.3;
/// p50 on one CPU at most this many times the body-read floor's.
pub const TARGET_P50_OVER_BODY_FLOOR: f64 = 1.2;
/// p99 on one CPU at most this many times the body-read floor's.
pub const TARGET_P99_OVER_BODY_FLOOR: f64 = 1.3;
/// The request path's own JavaScript (the profile's Worker JavaScript, µs
/// per request) at most this many times the body-read floor's.
pub const TARGET_JS_OVER_BODY_FLOOR: f64 = 2.0;

/// One Worker's figures in one round.
#[derive(Debug, Clone)]
pub struct Round {
    /// One keep-alive connection, sequential, the scheduler free.
    pub sequential: Summary,
    /// `concurrency` connections.
    pub concurrent: Summary,
    /// Sequential again with the client and workerd on one CPU; `None` when
    /// they could not be pinned.
    pub one_cpu: Option<Summary>,
    /// workerd CPU per request over the round, µs (forwarding included).
    pub cpu_us: f64,
}

/// One Worker's results.
#[derive(Debug, Clone)]
pub struct Result {
    /// Its name in the table.
    pub name: &'static str,
    /// Each round, in order.
    pub rounds: Vec<Round>,
    /// Events (envelope lines) the sink received from it.
    pub forwarded: u64,
    /// `PutRecordBatch` calls the sink received from it.
    pub calls: u64,
}

/// A figure over the rounds: median and range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// Median over the rounds.
    pub median: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
}

impl Spread {
    /// Of these values (NaN ignored).
    pub fn of(values: &[f64]) -> Self {
        let finite: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        Spread {
            median: median(&finite),
            min: finite.iter().copied().fold(f64::NAN, f64::min),
            max: finite.iter().copied().fold(f64::NAN, f64::max),
        }
    }

    fn ratio(&self) -> String {
        format!("{:.2}× ({:.2}–{:.2})", self.median, self.min, self.max)
    }

    fn us(&self) -> String {
        format!("{:.0} ({:.0}–{:.0})", self.median, self.min, self.max)
    }
}

impl Result {
    /// One figure of every round.
    pub fn each(&self, f: impl Fn(&Round) -> Option<f64>) -> Vec<f64> {
        self.rounds.iter().map(|r| f(r).unwrap_or(f64::NAN)).collect()
    }

    /// Its median over the rounds.
    pub fn median(&self, f: impl Fn(&Round) -> Option<f64>) -> f64 {
        median(&self.each(f))
    }
}

/// Per round, `a`'s figure over `b`'s.
pub fn ratios(a: &Result, b: &Result, f: impl Fn(&Round) -> Option<f64>) -> Spread {
    let (x, y) = (a.each(&f), b.each(&f));
    Spread::of(&x.iter().zip(&y).map(|(x, y)| x / y).collect::<Vec<_>>())
}

/// `edgehose-bench edge`'s options.
#[derive(Debug, clap::Parser)]
pub struct Options {
    /// Requests per round and Worker.
    #[arg(long, default_value_t = 2000)]
    pub requests: usize,
    /// Rounds, the Workers taking turns.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    pub rounds: u16,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// The built Worker (edge/build).
    #[arg(long)]
    pub build: Option<PathBuf>,
    /// Another build of the Worker (an earlier commit's edge/build) to take
    /// turns with the others, plain, and be compared with: what a change
    /// costs the default answer, measured in the same rounds.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// A setting for the Workers, e.g. DIRECT_FLUSH_MS=5; repeat it.
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = name_value)]
    pub vars: Vec<(String, String)>,
    /// Where the table is written.
    #[command(flatten)]
    pub write: crate::harness::report::Write,
}

fn name_value(v: &str) -> std::result::Result<(String, String), String> {
    v.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{v:?}: NAME=VALUE"))
}

/// Runs the benchmark; see the module docs.
pub fn main(o: Options) -> std::result::Result<(), String> {
    let (requests, concurrency) = (o.requests, o.concurrency);
    let rounds = usize::from(o.rounds);
    let build = o.build.clone().unwrap_or_else(|| repo_root().join("edge/build"));
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
        ("ALLOW_ANONYMOUS", "true"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .chain(o.vars.iter().cloned())
    .collect();
    let plain = |modules| (modules, bindings.clone());
    let mut variants = vec![
        (
            "edgehose (Rust → wasm)",
            plain(vec![
                Module::Es("index.js".into(), build.join("index.js")),
                Module::Wasm("index_bg.wasm".into(), wasm.clone()),
            ]),
        ),
        (
            "floor: JS returning 200",
            plain(vec![Module::Es("floor.mjs".into(), js.join("floor.mjs"))]),
        ),
        (
            "body-read floor: JS reading the body, returning 200",
            plain(vec![Module::Es("floor-body.mjs".into(), js.join("floor-body.mjs"))]),
        ),
        (
            "JS peer with aws4fetch",
            plain(vec![
                Module::Es("peer.mjs".into(), js.join("aws4fetch-peer.mjs")),
                Module::Es("aws4fetch.mjs".into(), aws4fetch.clone()),
            ]),
        ),
        (
            GUARDED,
            (
                vec![
                    Module::Es("guarded.mjs".into(), js.join("rate-limiter-standin.mjs")),
                    Module::Es("index.js".into(), build.join("index.js")),
                    Module::Wasm("index_bg.wasm".into(), wasm.clone()),
                ],
                guarded_bindings(&bindings),
            ),
        ),
    ];
    if let Some(dir) = &o.baseline {
        variants.push((
            BASELINE,
            plain(vec![
                Module::Es("index.js".into(), dir.join("index.js")),
                Module::Wasm("index_bg.wasm".into(), dir.join("index_bg.wasm")),
            ]),
        ));
    }
    let body = event_177();
    let request = format!(
        "POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes();
    let guarded_request = guarded_request(&body);
    let request_of = |name: &str| if name == GUARDED { &guarded_request } else { &request };

    println!(
        "edge benchmark: {rounds} rounds, the Workers taking turns; each turn {requests} sequential requests on one keep-alive connection, {concurrency} connections × {} requests, then {requests} sequential on one CPU; {}-byte event; raw workerd on loopback",
        requests / 2,
        body.len()
    );
    // Every Worker in its own workerd, started and warmed once.
    let mut running = Vec::new();
    let mut specs = Vec::new();
    for (name, (modules, bindings)) in variants {
        let spec = WorkerSpec { modules, bindings };
        let w = Workerd::start(&workerd, &spec, &work)?;
        specs.push((name, spec));
        load::sequential(w.addr(), request_of(name), 300)?; // JIT, wasm tiers, connection
        running.push((name, w));
    }
    settle(&sink);
    let mut results: Vec<Result> = running
        .iter()
        .map(|(name, _)| Result {
            name,
            rounds: Vec::new(),
            forwarded: 0,
            calls: 0,
        })
        .collect();
    for round in 0..rounds {
        print!("  round {}/{rounds}:", round + 1);
        // A different Worker goes first in each round.
        for k in 0..running.len() {
            let i = (k + round) % running.len();
            let (name, w) = &running[i];
            let (calls0, _, lines0) = sink.counts();
            let r = measure_round(name, w, &sink, request_of(name), requests, concurrency)?;
            let (calls1, _, lines1) = sink.counts();
            print!(" {} {:.0} µs", short(name), r.sequential.p50);
            let _ = std::io::stdout().flush();
            results[i].forwarded += lines1 - lines0;
            results[i].calls += calls1 - calls0;
            results[i].rounds.push(r);
        }
        println!();
    }
    // Where the isolate's time goes, edgehose against the body-read floor,
    // each in a fresh workerd with the inspector on (after the rounds, so the
    // inspector touches none of their figures).
    let node = edgehose_local::tools::npm_bin("node").ok();
    let mut profiles = Vec::new();
    if let Some(node) = &node {
        for (name, spec) in specs.iter().filter(|(n, _)| PROFILED.contains(n)) {
            match profile::profile(
                &workerd,
                node,
                &js.join("cpu-profile.mjs"),
                spec,
                &work,
                &request,
                requests * 2,
            ) {
                Ok(p) => {
                    println!(
                        "  profiled {}: {:.0} µs per request on the isolate's thread",
                        short(name),
                        p.busy_us()
                    );
                    profiles.push((*name, p));
                }
                Err(e) => eprintln!("  (no profile of {name}: {e})"),
            }
        }
    }
    // Cold starts last, each in a fresh workerd: edgehose against the floor.
    let cold_specs: Vec<(&str, &WorkerSpec)> = specs
        .iter()
        .filter(|(n, _)| *n == "edgehose (Rust → wasm)" || n.starts_with("floor"))
        .map(|(n, s)| (*n, s))
        .collect();
    let cold = cold_start::measure(&workerd, &cold_specs, &work, &request, COLD_STARTS)?;
    for c in &cold {
        println!(
            "  cold start {}: {:.1} ms to the first answer",
            short(&c.name),
            c.median_ms()
        );
    }
    let named = repo_root().join("target/edge").join(format!(
        "{}.named.wasm",
        build.file_name().map_or("build".into(), |n| n.to_string_lossy())
    ));
    let harness = js.join("wasm-compile.mjs");
    let size = size::measure(&wasm, &named, node.as_deref(), &harness, COMPILE_ROUNDS)?;
    let table = render(
        &results,
        &size,
        &cold,
        &profiles,
        &Turns {
            requests,
            rounds,
            concurrency,
            body: body.len(),
        },
    );
    let json = serde_json::json!({
        "date": report::today(), "machine": report::machine(), "wasm_gzip_bytes": size.gzip_bytes, "rounds": rounds,
        "cold_start": cold.iter().map(|c| serde_json::json!({
            "name": c.name, "first_answer_ms": c.median_ms(), "listening_ms": c.listening_ms(),
            "each_ms": c.first_answer.iter().map(|d| d.as_secs_f64() * 1000.0).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "size": size::to_json(&size),
        "isolate_profile": profiles.iter().map(|(name, p)| serde_json::json!({
            "name": name, "requests": p.requests, "busy_us_per_request": p.busy_us(),
            "us_per_request": p.per_request_us, "top": p.top,
        })).collect::<Vec<_>>(),
        "results": results.iter().map(|r| serde_json::json!({
            "name": r.name,
            "cpu_us_per_request": r.median(|x| Some(x.cpu_us)),
            "events_forwarded": r.forwarded,
            "putrecordbatch_calls": r.calls,
            "sequential": median_json(r, |x| Some(x.sequential)),
            "concurrent": median_json(r, |x| Some(x.concurrent)),
            "sequential_one_cpu": r.rounds.iter().all(|x| x.one_cpu.is_some()).then(|| median_json(r, |x| x.one_cpu)),
            "rounds": r.rounds.iter().map(|x| serde_json::json!({
                "cpu_us_per_request": x.cpu_us,
                "sequential": summary_json(&x.sequential),
                "concurrent": summary_json(&x.concurrent),
                "sequential_one_cpu": x.one_cpu.as_ref().map(summary_json),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "targets": targets(&results, &cold, &profiles).iter().map(|t| serde_json::json!({
            "what": t.what, "figure": t.figure, "met": t.met,
        })).collect::<Vec<_>>(),
    });
    report::publish("edge", &table, Some(&json), o.write.file())
}

fn short(name: &str) -> &str {
    name.split([' ', ':']).next().unwrap_or(name)
}

fn summary_json(s: &Summary) -> serde_json::Value {
    serde_json::json!({"requests": s.requests, "p50_us": s.p50, "p90_us": s.p90, "p99_us": s.p99, "max_us": s.max, "rps": s.rps, "errors": s.errors})
}

/// Each percentile's median over the rounds.
fn median_json(r: &Result, f: impl Fn(&Round) -> Option<Summary>) -> serde_json::Value {
    let m = |g: fn(&Summary) -> f64| r.median(|x| f(x).as_ref().map(g));
    serde_json::json!({
        "requests": r.rounds.iter().filter_map(&f).map(|s| s.requests).sum::<usize>(),
        "p50_us": m(|s| s.p50), "p90_us": m(|s| s.p90), "p99_us": m(|s| s.p99), "max_us": m(|s| s.max), "rps": m(|s| s.rps),
        "errors": r.rounds.iter().filter_map(&f).map(|s| s.errors).sum::<usize>(),
    })
}

/// One Worker's turn: sequential with the scheduler free, concurrent, then
/// sequential on one CPU; its CPU per request over all of them, forwarding
/// included.
fn measure_round(
    name: &str,
    w: &Workerd,
    sink: &Sink,
    request: &[u8],
    requests: usize,
    concurrency: usize,
) -> std::result::Result<Round, String> {
    let addr = w.addr();
    let cpu0 = w.cpu_seconds()?;
    let sequential = load::sequential(addr, request, requests)?.summary();
    let per = (requests / 2).max(1);
    let concurrent = load::concurrent(addr, request, concurrency, per)?.summary();
    // The concurrent run's forwarding must be done before the one-CPU run,
    // or its calls would run on that CPU between the measured requests.
    settle(sink);
    let one_cpu = match on_one_cpu(w, request, requests) {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("  (no one-CPU run for {name}: {e})");
            None
        }
    };
    w.unpin()?;
    settle(sink); // let waitUntil forwarding finish before reading the CPU counter
    let cpu1 = w.cpu_seconds()?;
    let total = sequential.requests + concurrent.requests + one_cpu.map_or(0, |s| s.requests);
    Ok(Round {
        sequential,
        concurrent,
        one_cpu,
        cpu_us: (cpu1 - cpu0) * 1e6 / total.max(1) as f64,
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
        Ok(load::sequential(addr, &request, requests)?.summary())
    })
    .join()
    .map_err(|_| "the one-CPU client panicked".to_owned())?
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

/// The gzipped size of a file, as `gzip -9` makes it (what the size targets count).
pub fn gzipped_size(path: &Path) -> std::result::Result<usize, String> {
    let out = std::process::Command::new("gzip")
        .args(["-9", "-c"])
        .arg(path)
        .output()
        .map_err(|e| format!("gzip: {e}"))?;
    Ok(out.stdout.len())
}

/// A target, its figure and whether it was met.
pub struct Target {
    /// What is asked.
    pub what: String,
    /// What was measured.
    pub figure: String,
    /// Met or missed.
    pub met: bool,
}

/// The edge Worker's targets against these results (edgehose, floor,
/// body-read floor, JS peer, in that order).
pub fn targets(
    results: &[Result],
    cold: &[cold_start::ColdStarts],
    profiles: &[(&str, profile::Profile)],
) -> Vec<Target> {
    let mut out = Vec::new();
    if let [ours, floor, ..] = cold {
        let over = ours.median_ms() - floor.median_ms();
        out.push(Target {
            what: format!("cold start ≤ the JS floor's + {TARGET_COLD_START_OVER_FLOOR_MS:.0} ms"),
            figure: format!(
                "{:.1} ms against {:.1} ms ({over:+.1} ms)",
                ours.median_ms(),
                floor.median_ms()
            ),
            met: over <= TARGET_COLD_START_OVER_FLOOR_MS,
        });
    }
    let [ours, _floor, body, _peer, rest @ ..] = results else {
        return out;
    };
    let p99 = ours.median(|r| Some(r.sequential.p99));
    out.push(Target {
        what: "p99 < 1 ms, the scheduler free (median of the rounds' p99)".into(),
        figure: format!("{} µs", Spread::of(&ours.each(|r| Some(r.sequential.p99))).us()),
        met: p99 < TARGET_P99_US,
    });
    let p99_one = ours.median(|r| r.one_cpu.map(|s| s.p99));
    out.push(Target {
        what: "p99 < 1 ms on one CPU".into(),
        figure: format!("{} µs", Spread::of(&ours.each(|r| r.one_cpu.map(|s| s.p99))).us()),
        met: p99_one < TARGET_P99_US,
    });
    let cpu = ratios(ours, body, |r| Some(r.cpu_us));
    out.push(Target {
        what: format!("CPU per request ≤ {TARGET_CPU_OVER_BODY_FLOOR}× the body-read floor's"),
        figure: cpu.ratio(),
        met: cpu.median <= TARGET_CPU_OVER_BODY_FLOOR,
    });
    let p50 = ratios(ours, body, |r| r.one_cpu.map(|s| s.p50));
    out.push(Target {
        what: format!("p50 on one CPU ≤ {TARGET_P50_OVER_BODY_FLOOR}× the body-read floor's"),
        figure: p50.ratio(),
        met: p50.median <= TARGET_P50_OVER_BODY_FLOOR,
    });
    let p99 = ratios(ours, body, |r| r.one_cpu.map(|s| s.p99));
    out.push(Target {
        what: format!("p99 on one CPU ≤ {TARGET_P99_OVER_BODY_FLOOR}× the body-read floor's"),
        figure: p99.ratio(),
        met: p99.median <= TARGET_P99_OVER_BODY_FLOOR,
    });
    let js = |name: &str| {
        profiles
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| p.per_request_us.get(profile::WORKER_JS).copied().unwrap_or(0.0))
    };
    if let (Some(our_js), Some(floor_js)) = (js(ours.name), js(body.name)) {
        out.push(Target {
            what: format!("the request path's own JavaScript ≤ {TARGET_JS_OVER_BODY_FLOOR}× the body-read floor's"),
            figure: format!(
                "{our_js:.1} against {floor_js:.1} µs per request ({:.2}×)",
                our_js / floor_js.max(0.1)
            ),
            met: our_js <= TARGET_JS_OVER_BODY_FLOOR * floor_js,
        });
    }
    if let Some(guarded) = rest.iter().find(|r| r.name == GUARDED) {
        let p99 = ratios(guarded, ours, |r| r.one_cpu.map(|s| s.p99));
        out.push(Target {
            what: format!("with the guards on, p99 on one CPU ≤ {TARGET_GUARDED_OVER_PLAIN}× the plain Worker's"),
            figure: p99.ratio(),
            met: p99.median <= TARGET_GUARDED_OVER_PLAIN,
        });
        let cpu = ratios(guarded, ours, |r| Some(r.cpu_us));
        out.push(Target {
            what: format!("with the guards on, CPU per request ≤ {TARGET_GUARDED_OVER_PLAIN}× the plain Worker's"),
            figure: cpu.ratio(),
            met: cpu.median <= TARGET_GUARDED_OVER_PLAIN,
        });
    }
    out
}

/// How each turn of the rounds ran: what the section's first paragraph says.
struct Turns {
    requests: usize,
    rounds: usize,
    concurrency: usize,
    body: usize,
}

fn render(
    results: &[Result],
    size: &size::Size,
    cold: &[cold_start::ColdStarts],
    profiles: &[(&str, profile::Profile)],
    turns: &Turns,
) -> String {
    let Turns {
        requests,
        rounds,
        concurrency,
        body,
    } = *turns;
    let mut t = String::new();
    t.push_str(&format!(
        "### Edge Worker ({}; {})\n\n`make bench-edge` (`edgehose-bench edge --rounds {rounds} --requests {requests}`) — {rounds} rounds in which the Workers take turns (a different one first each round), each alone in its own raw workerd on loopback, forwarding (`waitUntil` → signed `PutRecordBatch`) to a local sink. A turn: {requests} sequential {body}-byte `POST /v1/events` on one keep-alive connection, {concurrency} connections × {} requests, then {requests} sequential with client and workerd on one CPU. Latency in µs, client-side, request written to response read; CPU is workerd's own user+system time per request over the turn, forwarding included. Every figure is the median of the rounds; CPU and the ratios also give the rounds' range.\n\n",
        report::today(),
        report::machine(),
        requests / 2
    ));
    t.push_str("| Worker | p50 | p90 | p99 | one CPU p50 | one CPU p99 | req/s | c=16 p50 | c=16 p99 | c=16 req/s | CPU µs/req (range) | events forwarded | PutRecordBatch calls |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in results {
        let m = |f: fn(&Round) -> Option<f64>| {
            let v = r.median(f);
            if v.is_finite() {
                format!("{v:.0}")
            } else {
                "–".to_owned()
            }
        };
        let requests_made: usize = r
            .rounds
            .iter()
            .map(|x| x.sequential.requests + x.concurrent.requests + x.one_cpu.map_or(0, |s| s.requests))
            .sum();
        t.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} of {} | {} |\n",
            r.name,
            m(|x| Some(x.sequential.p50)),
            m(|x| Some(x.sequential.p90)),
            m(|x| Some(x.sequential.p99)),
            m(|x| x.one_cpu.map(|s| s.p50)),
            m(|x| x.one_cpu.map(|s| s.p99)),
            m(|x| Some(x.sequential.rps)),
            m(|x| Some(x.concurrent.p50)),
            m(|x| Some(x.concurrent.p99)),
            m(|x| Some(x.concurrent.rps)),
            Spread::of(&r.each(|x| Some(x.cpu_us))).us(),
            r.forwarded,
            requests_made,
            r.calls
        ));
    }
    if let [ours, floor, body_floor, peer, rest @ ..] = results {
        let seq = |r: &Round| Some(r.sequential.p50);
        let one = |r: &Round| r.one_cpu.map(|s| s.p50);
        let cpu = |r: &Round| Some(r.cpu_us);
        t.push_str(&format!(
            "\nRatios, median of the rounds (range): p50 with the scheduler free — edgehose / body-read floor **{}**, edgehose / floor {}, reading the body alone / floor {}, edgehose / JS peer **{}**; p50 on one CPU — edgehose / body-read floor **{}**, edgehose / floor {}; CPU per request — edgehose / body-read floor **{}**, edgehose / JS peer {}.\n",
            ratios(ours, body_floor, seq).ratio(),
            ratios(ours, floor, seq).ratio(),
            ratios(body_floor, floor, seq).ratio(),
            ratios(ours, peer, seq).ratio(),
            ratios(ours, body_floor, one).ratio(),
            ratios(ours, floor, one).ratio(),
            ratios(ours, body_floor, cpu).ratio(),
            ratios(ours, peer, cpu).ratio(),
        ));
        if let Some(base) = rest.iter().find(|r| r.name == BASELINE) {
            let p99 = |r: &Round| r.one_cpu.map(|s| s.p99);
            t.push_str(&format!(
                "\nThis build against the baseline build, both plain — p50 on one CPU **{}**, p99 on one CPU **{}**, CPU per request **{}** ({:.0} against {:.0} µs).\n",
                ratios(ours, base, one).ratio(),
                ratios(ours, base, p99).ratio(),
                ratios(ours, base, cpu).ratio(),
                ours.median(cpu),
                base.median(cpu),
            ));
        }
        if let Some(guarded) = rest.iter().find(|r| r.name == GUARDED) {
            let p99 = |r: &Round| r.one_cpu.map(|s| s.p99);
            t.push_str(&format!(
                "\nThe guards' price: the same Worker with a token-only key, every request carrying a signed token from an allowed origin, `RATE_LIMITS` charging about one call to the Rate Limiting binding a request (a stand-in in raw workerd: `bench/js/rate-limiter-standin.mjs`, which counts and never refuses) and `BOT_ROUTES`, against the plain one — p50 on one CPU **{}**, p99 on one CPU **{}**, CPU per request **{}** ({:.0} against {:.0} µs).\n",
                ratios(guarded, ours, one).ratio(),
                ratios(guarded, ours, p99).ratio(),
                ratios(guarded, ours, cpu).ratio(),
                guarded.median(cpu),
                ours.median(cpu),
            ));
        }
        let errors: usize = results
            .iter()
            .flat_map(|r| &r.rounds)
            .map(|x| x.sequential.errors + x.concurrent.errors + x.one_cpu.map_or(0, |s| s.errors))
            .sum();
        if errors > 0 {
            t.push_str(&format!("\n{errors} responses were not 200.\n"));
        }
    }
    t.push_str(&cold_start::render(cold));
    t.push_str(&size::render(size));
    t.push_str(&render_profiles(profiles));
    t.push_str("\n**Targets** (`make bench-edge`):\n\n| target | measured | |\n|---|---|---|\n");
    for target in targets(results, cold, profiles) {
        t.push_str(&format!(
            "| {} | {} | {} |\n",
            target.what,
            target.figure,
            if target.met { "met" } else { "missed" }
        ));
    }
    t
}

/// The paragraph on where each profiled Worker's isolate time goes.
fn render_profiles(profiles: &[(&str, profile::Profile)]) -> String {
    if profiles.is_empty() {
        return String::new();
    }
    let mut t = format!(
        "\n**Where the isolate's time goes** (V8's sampling profiler every {} µs over workerd's inspector, one sequential run per Worker in a fresh workerd after the rounds; µs per request on the isolate's thread as samples × the interval, idle left out — a sampling profile: where the time goes, not exact totals, and low if the sampler falls behind):",
        profile::INTERVAL_US
    );
    for (name, p) in profiles {
        let mut parts: Vec<(&String, &f64)> = p.per_request_us.iter().collect();
        parts.sort_by(|a, b| b.1.total_cmp(a.1));
        let parts: Vec<String> = parts.iter().map(|(k, v)| format!("{k} {v:.1}")).collect();
        t.push_str(&format!(
            " {} ({} requests): **{:.1}** — {};",
            short(name),
            p.requests,
            p.busy_us(),
            parts.join(", ")
        ));
    }
    if let Some((name, p)) = profiles.first() {
        // Busy samples, from the µs they stand for.
        let busy = (p.busy_us() * p.requests as f64 / f64::from(profile::INTERVAL_US)).max(1.0);
        let top: Vec<String> = p
            .top
            .iter()
            .filter(|(f, _)| !f.starts_with("(idle)"))
            .take(6)
            .map(|(f, n)| format!("`{f}` {:.0}%", 100.0 * *n as f64 / busy))
            .collect();
        t.push_str(&format!(
            " {}'s most-sampled frames (share of its busy samples): {}.",
            short(name),
            top.join(", ")
        ));
    }
    t.push('\n');
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

    fn summary(p50: f64) -> Summary {
        Summary {
            requests: 100,
            p50,
            p90: p50,
            p99: 2.0 * p50,
            max: 2.0 * p50,
            rps: 1e6 / p50,
            errors: 0,
        }
    }

    /// A Worker whose rounds have these (p50, CPU, one-CPU p50).
    fn result(name: &'static str, rounds: &[(f64, f64, Option<f64>)]) -> Result {
        Result {
            name,
            rounds: rounds
                .iter()
                .map(|&(p50, cpu_us, one)| Round {
                    sequential: summary(p50),
                    concurrent: summary(p50),
                    one_cpu: one.map(summary),
                    cpu_us,
                })
                .collect(),
            forwarded: 100,
            calls: 1,
        }
    }

    #[test]
    fn medians_and_ranges_are_over_the_rounds() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        assert_eq!(
            Spread::of(&[2.0, f64::NAN, 1.0, 5.0]),
            Spread {
                median: 2.0,
                min: 1.0,
                max: 5.0
            }
        );
        // The ratio is taken within each round, then the median of those.
        let a = result("a", &[(100.0, 10.0, None), (400.0, 10.0, None), (300.0, 10.0, None)]);
        let b = result("b", &[(50.0, 10.0, None), (100.0, 10.0, None), (300.0, 10.0, None)]);
        let r = ratios(&a, &b, |x| Some(x.sequential.p50));
        assert_eq!((r.median, r.min, r.max), (2.0, 1.0, 4.0));
    }

    #[test]
    fn the_table_puts_edgehose_against_both_floors_and_the_peer_and_marks_each_target() {
        let results = [
            result("edgehose", &[(300.0, 150.0, Some(150.0)), (330.0, 160.0, Some(140.0))]),
            result("floor", &[(150.0, 60.0, Some(50.0)), (150.0, 60.0, Some(50.0))]),
            result(
                "body-read floor",
                &[(180.0, 80.0, Some(100.0)), (180.0, 80.0, Some(100.0))],
            ),
            result("JS peer", &[(600.0, 400.0, None), (600.0, 400.0, None)]),
        ];
        let size = size::Size {
            gzip_bytes: 200_000,
            raw_bytes: 450_000,
            breakdown: Err("no named copy".into()),
            compile: Vec::new(),
        };
        let cold = |name: &str, ms: u64| cold_start::ColdStarts {
            name: name.to_owned(),
            listening: vec![Duration::from_millis(ms / 2)],
            first_answer: vec![Duration::from_millis(ms)],
        };
        let cold = [cold("edgehose", 130), cold("floor", 100)];
        let profile = |js: u64| {
            profile::Profile::parse(
                &format!(r#"{{"interval_us":50,"samples":{{"Worker JavaScript":{js}}},"top":[]}}"#),
                1000,
            )
            .unwrap()
        };
        let profiles = [("edgehose", profile(600)), ("body-read floor", profile(200))];
        let turns = Turns {
            requests: 100,
            rounds: 2,
            concurrency: 16,
            body: 177,
        };
        let t = render(&results, &size, &cold, &profiles, &turns);
        assert!(t.contains("**Its size**: 200.0 KB gzipped"), "{t}");
        assert!(t.contains("**Cold start**") && t.contains("edgehose 130.0 ms"), "{t}");
        assert_eq!(t.lines().filter(|l| l.starts_with("| ")).count(), 5 + 1 + 7, "{t}");
        assert!(t.contains("| JS peer | 600 | 600 | 1200 | – | – |"), "{t}");
        assert!(t.contains("| edgehose | 315 |"), "{t}");
        assert!(t.contains("edgehose / body-read floor **1.75× (1.67–1.83)**"), "{t}");
        assert!(
            t.contains("CPU per request — edgehose / body-read floor **1.94× (1.88–2.00)**"),
            "{t}"
        );
        assert!(
            t.contains("| cold start ≤ the JS floor's + 50 ms | 130.0 ms against 100.0 ms (+30.0 ms) | met |"),
            "{t}"
        );
        assert!(
            t.contains("| p99 < 1 ms, the scheduler free (median of the rounds' p99) | 630 (600–660) µs | met |"),
            "{t}"
        );
        assert!(
            t.contains("| p50 on one CPU ≤ 1.2× the body-read floor's | 1.45× (1.40–1.50) | missed |"),
            "{t}"
        );
        assert!(
            t.contains("| p99 on one CPU ≤ 1.3× the body-read floor's | 1.45× (1.40–1.50) | missed |"),
            "{t}"
        );
        assert!(
            t.contains("| the request path's own JavaScript ≤ 2× the body-read floor's | 30.0 against 10.0 µs per request (3.00×) | missed |"),
            "{t}"
        );
        let met = targets(&results, &cold, &profiles);
        assert!(met[0].met && met.len() == 7);
        assert_eq!(targets(&results, &[], &[]).len(), 5);
    }

    #[test]
    fn the_profile_paragraph_orders_each_workers_parts_and_names_the_top_frames() {
        let ours = profile::Profile::parse(
            r#"{"interval_us":50,"samples":{"wasm":200,"Worker JavaScript":600,"(idle)":50},"top":[["(idle)",50],["qe index.js",400]]}"#,
            1000,
        )
        .unwrap();
        let floor = profile::Profile::parse(
            r#"{"interval_us":50,"samples":{"runtime built-ins":300},"top":[]}"#,
            1000,
        )
        .unwrap();
        let t = render_profiles(&[("edgehose (Rust → wasm)", ours), ("body-read floor: x", floor)]);
        assert!(
            t.contains("edgehose (1000 requests): **40.0** — Worker JavaScript 30.0, wasm 10.0;"),
            "{t}"
        );
        assert!(
            t.contains("body-read (1000 requests): **15.0** — runtime built-ins 15.0;"),
            "{t}"
        );
        assert!(t.contains("`qe index.js` 50%") && !t.contains("`(idle)"), "{t}");
        assert_eq!(render_profiles(&[]), "");
    }
}
