//! `edgehose-bench pipeline`: sustained events/s through the whole local
//! pipeline, the way `make dev` runs it — clients posting to the release edge
//! Worker in workerd (Miniflare, with its Queues), signed `PutRecordBatch`
//! calls to `edgehose firehose-local`, the release `transform` binary behind
//! the Lambda Runtime API, objects on disk — with every event id looked up in
//! the output afterwards and the CPU each process spent.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use edgehose_local::aws::firehose::{DEV_ACCESS_KEY_ID, DEV_SECRET_ACCESS_KEY, REGION_DEFAULT};
use edgehose_local::cloudflare::miniflare::{Build, Edge, EdgeOptions};
use edgehose_local::tools::{free_port, http_get, release_binary};
use edgehose_sample::ride_sample;

use crate::harness::load::Conn;
use crate::harness::report;
use crate::harness::workerd::{Proc, processes, tree};
use crate::repo_root;

/// The target: events per second sustained on 2 cores, nothing lost.
pub const TARGET_EVENTS_PER_SEC: u64 = 20_000;

/// The delivery stream the benchmark writes to.
const STREAM: &str = "bench-events";

/// One configuration to measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    /// How the edge forwards: `queue` (no window: each answer waits for
    /// its queue write), `window` (queue mode as deployed: answers at once,
    /// one queue message per isolate window) or `direct`.
    pub mode: String,
    /// Events in each request body.
    pub per_request: usize,
    /// Events per second the clients offer together; `None`: as fast as
    /// the edge answers.
    pub rate: Option<u64>,
}

impl Scenario {
    /// `queue-10`: a name for files and event ids.
    pub fn name(&self) -> String {
        match self.rate {
            Some(r) => format!("{}-{}-at-{r}", self.mode, self.per_request),
            None => format!("{}-{}", self.mode, self.per_request),
        }
    }
}

/// `queue:1,queue:50@20000,direct:10` → scenarios (`@` paces the clients to
/// that many events per second together).
pub fn parse_scenarios(text: &str) -> Result<Vec<Scenario>, String> {
    text.split(',')
        .map(|s| {
            let (mode, n) = s
                .trim()
                .split_once(':')
                .ok_or_else(|| format!("scenario {s:?}: MODE:EVENTS_PER_REQUEST[@EVENTS_PER_SEC], e.g. queue:10"))?;
            let (n, rate) = match n.split_once('@') {
                Some((n, r)) => (
                    n,
                    Some(
                        r.parse::<u64>()
                            .ok()
                            .filter(|r| *r > 0)
                            .ok_or_else(|| format!("scenario {s:?}: a rate is events per second, e.g. @20000"))?,
                    ),
                ),
                None => (n, None),
            };
            if !matches!(mode, "queue" | "window" | "direct") {
                return Err(format!("scenario {s:?}: mode is queue, window or direct"));
            }
            let per_request: usize = n
                .parse()
                .ok()
                .filter(|n| (1..=500).contains(n))
                .ok_or_else(|| format!("scenario {s:?}: 1 to 500 events per request"))?;
            Ok(Scenario {
                mode: mode.to_owned(),
                per_request,
                rate,
            })
        })
        .collect()
}

/// The request body of `n` events: one JSON object, or an array of them.
pub fn body(tag: &str, first: usize, n: usize) -> String {
    if n == 1 {
        return ride_sample(tag, first);
    }
    let mut b = String::with_capacity(n * 180);
    b.push('[');
    for i in 0..n {
        if i > 0 {
            b.push(',');
        }
        b.push_str(&ride_sample(tag, first + i));
    }
    b.push(']');
    b
}

/// What one scenario measured.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The configuration.
    pub name: String,
    /// Events per request.
    pub per_request: usize,
    /// The offered rate, when paced.
    pub rate: Option<u64>,
    /// Requests answered 200.
    pub requests: u64,
    /// Requests answered otherwise (or not at all).
    pub refused: u64,
    /// Events the edge acknowledged (`accepted` in its answers).
    pub accepted: u64,
    /// How long clients posted.
    pub load_secs: f64,
    /// From the end of posting until every accepted event was delivered.
    pub drain_secs: f64,
    /// Events delivered per second while clients posted, the first two
    /// seconds (start-up, the first buffer interval) left out.
    pub steady_rate: f64,
    /// Accepted events not yet delivered when posting stopped.
    pub backlog: u64,
    /// Distinct accepted events found in the delivered objects.
    pub delivered_unique: u64,
    /// Extra copies of delivered events (at-least-once retries).
    pub duplicates: u64,
    /// Accepted events found nowhere.
    pub missing: u64,
    /// Lines under the error prefix and in the edge's dead-letter archive.
    pub failed: u64,
    /// firehose-local's counters at the end.
    pub firehose: serde_json::Value,
    /// CPU seconds by component over posting + draining.
    pub cpu: Vec<(String, f64)>,
}

impl Outcome {
    /// Accepted events per second while clients posted.
    pub fn accepted_rate(&self) -> f64 {
        self.accepted as f64 / self.load_secs.max(1e-9)
    }

    /// `queue × 50` or `queue × 50 @ 20000/s`.
    pub fn label(&self) -> String {
        let mode = self.name.split('-').next().unwrap_or("");
        match self.rate {
            Some(r) => format!("{mode} × {} @ {r}/s", self.per_request),
            None => format!("{mode} × {}", self.per_request),
        }
    }

    /// Whether delivery kept up while clients posted: what was not yet
    /// delivered when they stopped is at most two seconds of their traffic
    /// (the one-second buffer plus the queue's batch timeout).
    pub fn keeps_up(&self) -> bool {
        self.backlog as f64 <= 2.0 * self.accepted_rate()
    }

    /// Accepted events over the time from the first post until the last of
    /// them was delivered: the rate the pipeline sustains end to end.
    pub fn end_to_end_rate(&self) -> f64 {
        self.delivered_unique as f64 / (self.load_secs + self.drain_secs).max(1e-9)
    }
}

/// `edgehose-bench pipeline`'s options.
#[derive(Debug, clap::Parser)]
pub struct Options {
    /// Seconds each scenario posts.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Keep-alive connections posting.
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// `MODE:EVENTS_PER_REQUEST[@RPS]` scenarios, comma-separated.
    #[arg(
        long,
        default_value = "window:1,queue:1,queue:10,queue:50,queue:50@20000,queue:50@40000,direct:10,direct:50"
    )]
    pub scenarios: String,
    /// Where the table is written.
    #[command(flatten)]
    pub write: crate::harness::report::Write,
}

/// Runs the benchmark; see the module docs.
pub fn main(o: Options) -> Result<(), String> {
    let (seconds, connections) = (o.seconds, o.connections);
    let scenarios = parse_scenarios(&o.scenarios)?;
    let edgehose = release_binary("edgehose", "make bench-pipeline")?;
    let transform = release_binary("transform", "make bench-pipeline")?;
    Build::Release.dir()?;
    let work = repo_root().join("target/bench/pipeline");
    println!(
        "pipeline benchmark: {connections} keep-alive connections posting for {seconds} s to the edge Worker → firehose-local → transform → disk; every event id checked"
    );
    let mut outcomes = Vec::new();
    for s in &scenarios {
        print!("  {} mode, {} event(s) per request … ", s.mode, s.per_request);
        let _ = std::io::stdout().flush();
        let o = run(
            s,
            [&edgehose, &transform],
            &work.join(s.name()),
            connections,
            Duration::from_secs(seconds),
        )?;
        println!(
            "{:.0} accepted/s, {:.0} end to end/s, {} missing, {} duplicates",
            o.accepted_rate(),
            o.end_to_end_rate(),
            o.missing,
            o.duplicates
        );
        outcomes.push(o);
    }
    print!("  floors: JS Workers in the same Miniflare … ");
    let _ = std::io::stdout().flush();
    let floor_time = Duration::from_secs(seconds.clamp(3, 10));
    let floors = vec![
        floor("returns 200", "floor.mjs", connections, floor_time)?,
        floor(
            "sends the body to a Queue, returns 200",
            "queue-floor.mjs",
            connections,
            floor_time,
        )?,
    ];
    println!(
        "{}",
        floors
            .iter()
            .map(|f| format!("{:.0} µs/request", f.workerd_us))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let table = render(&outcomes, &floors, connections, seconds);
    let json = serde_json::json!({
        "date": report::today(), "machine": report::machine(), "connections": connections, "seconds": seconds,
        "floors": floors.iter().map(|f| serde_json::json!({"name": f.name, "rps": f.rps, "workerd_us_per_request": f.workerd_us})).collect::<Vec<_>>(),
        "results": outcomes.iter().map(|o| serde_json::json!({
            "scenario": o.name, "events_per_request": o.per_request, "offered_per_sec": o.rate, "keeps_up": o.keeps_up(), "requests": o.requests, "refused": o.refused,
            "accepted": o.accepted, "load_secs": o.load_secs, "drain_secs": o.drain_secs,
            "accepted_per_sec": o.accepted_rate(), "steady_delivered_per_sec": o.steady_rate, "backlog": o.backlog,
            "end_to_end_per_sec": o.end_to_end_rate(), "delivered_unique": o.delivered_unique,
            "duplicates": o.duplicates, "missing": o.missing, "failed": o.failed,
            "firehose": o.firehose, "cpu_seconds": o.cpu.iter().map(|(k, v)| (k.clone(), *v)).collect::<HashMap<_, _>>(),
        })).collect::<Vec<_>>(),
    });
    report::publish("pipeline", &table, Some(&json), o.write.file())?;
    let lost: u64 = outcomes.iter().map(|o| o.missing).sum();
    if lost > 0 {
        return Err(format!("{lost} accepted event(s) were not found in the output"));
    }
    Ok(())
}

/// A child process killed when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn stats(url: &str) -> Option<serde_json::Value> {
    http_get(&format!("{url}/_edgehose/stats"))
        .ok()
        .and_then(|b| serde_json::from_str(&b).ok())
}

fn delivered_lines(url: &str) -> Option<u64> {
    stats(url).and_then(|s| s["lines_delivered"].as_u64())
}

/// One scenario on a fresh pipeline, with the `edgehose` and `transform` binaries given.
fn run(
    s: &Scenario,
    [edgehose, transform]: [&Path; 2],
    dir: &Path,
    connections: usize,
    load: Duration,
) -> Result<Outcome, String> {
    let _ = std::fs::remove_dir_all(dir);
    let data = dir.join("data");
    std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
    let log = std::fs::File::create(dir.join("firehose-local.log")).map_err(|e| e.to_string())?;
    let listen = format!("127.0.0.1:{}", free_port()?);
    let firehose_url = format!("http://{listen}");
    let firehose = Guard(
        Command::new(edgehose)
            .args([
                "firehose-local",
                "--listen",
                &listen,
                "--stream",
                STREAM,
                "--buffer-secs",
                "1",
            ])
            .arg("--data-dir")
            .arg(&data)
            .arg("--transform")
            .arg(transform)
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting firehose-local: {e}"))?,
    );
    let started = Instant::now();
    while stats(&firehose_url).is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            return Err(format!(
                "firehose-local did not start; see {}",
                dir.join("firehose-local.log").display()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut options = EdgeOptions::new(&[
        ("FIREHOSE_STREAM", STREAM),
        ("AWS_REGION", REGION_DEFAULT),
        ("FIREHOSE_ENDPOINT", &firehose_url),
        ("AWS_ACCESS_KEY_ID", DEV_ACCESS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", DEV_SECRET_ACCESS_KEY),
        ("FORWARD_MODE", if s.mode == "direct" { "direct" } else { "queue" }),
        ("ALLOWED_ORIGINS", "*"),
    ]);
    let window = if s.mode == "window" {
        edgehose_local::cloudflare::miniflare::DEFAULT_QUEUE_WINDOW_MS
    } else {
        0
    };
    options
        .bindings
        .insert("QUEUE_WINDOW_MS".to_owned(), window.to_string());
    options.max_retries = 10;
    let edge = Edge::start(&options)?;
    let addr: SocketAddr = edge
        .url()
        .trim_start_matches("http://")
        .parse()
        .map_err(|e| format!("edge URL {}: {e}", edge.url()))?;

    // Warm up: compile the wasm, start the isolate and the queue consumer.
    let tag = format!("{}-", s.name());
    let warm = post_for(addr, &format!("{tag}warm-"), s.per_request, 1, Duration::from_secs(2))?;
    let mut expected = warm.accepted;
    while delivered_lines(&firehose_url).unwrap_or(0) < expected {
        if started.elapsed() > Duration::from_secs(90) {
            return Err("the warm-up events were not delivered within 90 s".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    let cpu0 = processes();
    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..connections)
        .map(|c| {
            let (tag, stop, n) = (format!("{tag}c{c}"), stop.clone(), s.per_request);
            let pace = s
                .rate
                .map(|r| Duration::from_secs_f64((n * connections) as f64 / r as f64));
            std::thread::spawn(move || post_until(addr, &tag, n, pace, &stop))
        })
        .collect();
    let mut samples = vec![(0.0, delivered_lines(&firehose_url).unwrap_or(0))];
    while t0.elapsed() < load {
        std::thread::sleep(Duration::from_secs(samples.len() as u64).saturating_sub(t0.elapsed()));
        samples.push((t0.elapsed().as_secs_f64(), delivered_lines(&firehose_url).unwrap_or(0)));
    }
    stop.store(true, Ordering::SeqCst);
    let mut posted = Vec::new();
    for c in clients {
        posted.push(c.join().map_err(|_| "a client thread panicked".to_owned())??);
    }
    let load_secs = t0.elapsed().as_secs_f64();
    expected += posted.iter().map(|p| p.accepted).sum::<u64>();

    // Drain: until every accepted event is delivered, or nothing moves for 60 s.
    let (mut last, mut moved) = (0, Instant::now());
    let drained = loop {
        let n = delivered_lines(&firehose_url).unwrap_or(last);
        if n >= expected {
            break true;
        }
        if n != last {
            (last, moved) = (n, Instant::now());
        } else if moved.elapsed() > Duration::from_secs(60) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let drain_secs = t0.elapsed().as_secs_f64() - load_secs;
    if !drained {
        // Give late retries their chance before counting.
        std::thread::sleep(Duration::from_secs(5));
    }
    let cpu1 = processes();
    let firehose_stats = stats(&firehose_url).unwrap_or_default();
    let cpu = cpu_by_component(&cpu0, &cpu1, edge.pid(), firehose.0.id());
    let dead_letters = edge
        .dead_letters()
        .map_err(|e| format!("the edge's dead letters: {e}"))?
        .len() as u64;
    drop(edge);
    drop(firehose);

    let mut landed = scan(&data)?;
    landed.failed += dead_letters;
    let mut o = Outcome {
        name: s.name(),
        per_request: s.per_request,
        rate: s.rate,
        requests: posted.iter().map(|p| p.requests).sum(),
        refused: posted.iter().map(|p| p.refused).sum(),
        accepted: expected - warm.accepted,
        load_secs,
        drain_secs,
        steady_rate: steady_rate(&samples),
        backlog: expected.saturating_sub(samples.last().map_or(0, |s| s.1)),
        failed: landed.failed,
        firehose: firehose_stats,
        cpu,
        ..Outcome::default()
    };
    (o.delivered_unique, o.duplicates, o.missing) = landed.tally(&posted, |c| format!("{tag}c{c}"));
    Ok(o)
}

/// A floor Worker of `bench/js` measured in Miniflare with one-event
/// requests: what the local runtime costs per request by itself.
#[derive(Debug, Clone, Default)]
pub struct Floor {
    /// What the Worker does.
    pub name: &'static str,
    /// Requests per second.
    pub rps: f64,
    /// workerd CPU per request, µs.
    pub workerd_us: f64,
}

fn floor(name: &'static str, script: &str, connections: usize, d: Duration) -> Result<Floor, String> {
    let npm = edgehose_local::tools::cache_dir().join("npm");
    let mut child = Guard(
        Command::new(edgehose_local::tools::npm_bin("node")?)
            .arg(repo_root().join("bench/js/miniflare-floor.mjs"))
            .arg(repo_root().join("bench/js").join(script))
            .current_dir(&npm)
            .env("EDGEHOSE_NPM", &npm)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting Miniflare: {e}"))?,
    );
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.0.stdout.take().ok_or("no stdout")?),
        &mut line,
    )
    .map_err(|e| e.to_string())?;
    let url: serde_json::Value = serde_json::from_str(&line).map_err(|e| format!("Miniflare said {line:?}: {e}"))?;
    let addr: SocketAddr = url["url"]
        .as_str()
        .unwrap_or("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .map_err(|e| format!("floor URL {url}: {e}"))?;
    post_for(addr, "floor", 1, connections, Duration::from_secs(1))?;
    let node = child.0.id();
    let workerd = |all: &[Proc]| -> f64 { tree(all, node).iter().filter(|p| p.pid != node).map(|p| p.cpu).sum() };
    let cpu0 = workerd(&processes());
    let t = Instant::now();
    let p = post_for(addr, "floor", 1, connections, d)?;
    let secs = t.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(1500)); // the queue consumer's share
    let cpu1 = workerd(&processes());
    drop(child.0.stdin.take());
    Ok(Floor {
        name,
        rps: p.requests as f64 / secs,
        workerd_us: (cpu1 - cpu0) * 1e6 / p.requests.max(1) as f64,
    })
}

/// What one client posted.
#[derive(Debug, Default)]
pub(crate) struct Posted {
    pub(crate) requests: u64,
    pub(crate) refused: u64,
    pub(crate) accepted: u64,
}

/// Posts on one connection until `stop`; event `i` of this client has id
/// `<tag>-<i>`, and a request's events count only when it is answered 200
/// with all of them accepted.
pub(crate) fn post_until(
    addr: SocketAddr,
    tag: &str,
    per_request: usize,
    pace: Option<Duration>,
    stop: &AtomicBool,
) -> Result<Posted, String> {
    let mut conn = Conn::open(addr)?;
    let mut p = Posted::default();
    let expect = format!("\"accepted\":{per_request}");
    let start = Instant::now();
    let mut sent = 0u32;
    while !stop.load(Ordering::Relaxed) {
        if let Some(every) = pace {
            // Open-loop pacing: request k leaves at start + k × every (late
            // ones leave at once, without bunching up the ones after).
            std::thread::sleep((every * sent).saturating_sub(start.elapsed()));
            sent += 1;
        }
        let body = body(tag, p.accepted as usize, per_request);
        let request = format!(
            "POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let status = match conn.exchange(request.as_bytes()) {
            Ok(s) => s,
            Err(_) => {
                // The event ids of an unanswered request are reused: it may
                // have been accepted, and a reused id then shows as a duplicate,
                // never as a loss.
                p.refused += 1;
                conn = Conn::open(addr)?;
                continue;
            }
        };
        if status == 200 && std::str::from_utf8(conn.body()).is_ok_and(|b| b.replace(' ', "").contains(&expect)) {
            p.requests += 1;
            p.accepted += per_request as u64;
        } else {
            p.refused += 1;
        }
    }
    Ok(p)
}

/// [`post_until`] for a fixed time, on `connections` connections.
fn post_for(
    addr: SocketAddr,
    tag: &str,
    per_request: usize,
    connections: usize,
    d: Duration,
) -> Result<Posted, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..connections)
        .map(|c| {
            let (tag, stop) = (format!("{tag}{c}"), stop.clone());
            std::thread::spawn(move || post_until(addr, &tag, per_request, None, &stop))
        })
        .collect();
    std::thread::sleep(d);
    stop.store(true, Ordering::SeqCst);
    let mut total = Posted::default();
    for c in clients {
        let p = c.join().map_err(|_| "a client thread panicked".to_owned())??;
        total.requests += p.requests;
        total.refused += p.refused;
        total.accepted += p.accepted;
    }
    Ok(total)
}

/// The delivery rate from the first sample at or after two seconds (start-up
/// and the first buffer interval left out) to the last: delivery comes in
/// whole objects, so one-second rates are lumpy and only their mean says much.
pub fn steady_rate(samples: &[(f64, u64)]) -> f64 {
    let (Some(first), Some(last)) = (samples.iter().find(|s| s.0 >= 2.0), samples.last()) else {
        return 0.0;
    };
    if last.0 <= first.0 {
        return 0.0;
    }
    last.1.saturating_sub(first.1) as f64 / (last.0 - first.0)
}

/// CPU seconds spent between two snapshots, by component: the benchmark's
/// clients, Miniflare's node process, workerd (the Worker and its Queues),
/// firehose-local and the transform function.
pub fn cpu_by_component(before: &[Proc], after: &[Proc], edge: u32, firehose: u32) -> Vec<(String, f64)> {
    let spent = |p: &Proc| p.cpu - before.iter().find(|b| b.pid == p.pid).map_or(0.0, |b| b.cpu);
    let me = std::process::id();
    let mut out: Vec<(String, f64)> = vec![
        ("clients (this benchmark)".into(), 0.0),
        ("Miniflare (node)".into(), 0.0),
        ("workerd (edge Worker + Queues)".into(), 0.0),
        ("firehose-local".into(), 0.0),
        ("transform function".into(), 0.0),
    ];
    for p in after.iter().filter(|p| p.pid == me) {
        out[0].1 += spent(p);
    }
    for p in tree(after, edge) {
        out[if p.pid == edge || p.name == "node" { 1 } else { 2 }].1 += spent(&p);
    }
    for p in tree(after, firehose) {
        out[if p.pid == firehose { 3 } else { 4 }].1 += spent(&p);
    }
    out
}

/// Event ids found in the delivered objects, and failed lines.
#[derive(Debug, Default)]
pub(crate) struct Landed {
    pub(crate) ids: HashMap<String, u32>,
    pub(crate) failed: u64,
}

impl Landed {
    /// Looks up every event the clients had accepted (client `c`'s event
    /// `i` has id `<tag(c)>-<i>`): (distinct ones found, extra copies, missing).
    pub(crate) fn tally(&self, posted: &[Posted], tag: impl Fn(usize) -> String) -> (u64, u64, u64) {
        let (mut found, mut extra, mut missing) = (0, 0, 0);
        for (c, p) in posted.iter().enumerate() {
            let tag = tag(c);
            for i in 0..p.accepted {
                match self.ids.get(&format!("{tag}-{i}")) {
                    Some(&n) => {
                        found += 1;
                        extra += u64::from(n - 1);
                    }
                    None => missing += 1,
                }
            }
        }
        (found, extra, missing)
    }
}

#[derive(serde::Deserialize)]
struct Delivered {
    message_id: Option<String>,
}

pub(crate) fn scan(data: &Path) -> Result<Landed, String> {
    let mut landed = Landed::default();
    for path in edgehose_local::aws::firehose::store::objects(data) {
        let rel = path.strip_prefix(data).unwrap_or(&path).to_string_lossy().into_owned();
        if rel.ends_with(".log") {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{rel}: {e}"))?;
        if rel.starts_with("processing-failed/") {
            landed.failed += text.lines().count() as u64;
            continue;
        }
        for line in text.lines() {
            let d: Delivered = serde_json::from_str(line).map_err(|e| format!("{rel}: {e}"))?;
            if let Some(id) = d.message_id {
                *landed.ids.entry(id).or_default() += 1;
            }
        }
    }
    Ok(landed)
}

fn render(outcomes: &[Outcome], floors: &[Floor], connections: usize, seconds: u64) -> String {
    let mut t = format!(
        "### Whole local pipeline ({}; {})\n\n`make bench-pipeline` — {connections} keep-alive connections post ~170-byte events for {seconds} s to the release edge Worker (workerd via Miniflare, with its Queues); it forwards signed `PutRecordBatch` calls to `edgehose firehose-local` (SigV4 checked, 1 s buffer), which runs the release `transform` through the Lambda Runtime API and writes objects to disk. Afterwards every event id is looked up in the delivered objects. Everything shares the machine's cores, the clients included.\n\n",
        report::today(),
        report::machine()
    );
    t.push_str("| edge mode | events/request | offered events/s | requests/s | accepted events/s | **delivered events/s while posting** | keeps up | not yet delivered when posting stopped | then drained in | end to end events/s | lost | duplicates | `PutRecordBatch` calls | transform invocations |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for o in outcomes {
        let f = &o.firehose;
        t.push_str(&format!(
            "| {} | {} | {} | {:.0} | {:.0} | **{:.0}** | {} | {} | {:.1} s | {:.0} | {} of {} | {} | {} | {} |\n",
            o.name.split('-').next().unwrap_or(""),
            o.per_request,
            o.rate.map_or("as fast as answered".to_owned(), |r| r.to_string()),
            o.requests as f64 / o.load_secs.max(1e-9),
            o.accepted_rate(),
            o.steady_rate,
            if o.keeps_up() { "yes" } else { "no" },
            o.backlog,
            o.drain_secs,
            o.end_to_end_rate(),
            o.missing,
            o.accepted,
            o.duplicates,
            f["calls"].as_u64().unwrap_or(0),
            f["invocations"].as_u64().unwrap_or(0),
        ));
    }
    match outcomes
        .iter()
        .filter(|o| o.keeps_up() && o.missing == 0)
        .max_by(|a, b| a.steady_rate.total_cmp(&b.steady_rate))
    {
        Some(best) => t.push_str(&format!(
            "\n**Sustained: {:.0} events/s** ({}), the highest delivery rate while posting among the runs whose delivery kept up, nothing lost.\n",
            best.steady_rate,
            best.label()
        )),
        None => t.push_str("\n**Sustained: no run kept up with its clients.**\n"),
    }
    if let Some(d) = outcomes.iter().find(|o| o.name == "window-1") {
        t.push_str(&format!(
            "\n**The default, queue mode as deployed (window), one event per request: {:.0} events/s** delivered while posting ({:.0} requests/s; keeps up: {}; lost {}).\n",
            d.steady_rate,
            d.requests as f64 / d.load_secs.max(1e-9),
            if d.keeps_up() { "yes" } else { "no" },
            d.missing
        ));
    }
    t.push_str(&format!(
        "\n**Target** — ≥ {TARGET_EVENTS_PER_SEC} events/s sustained on 2 cores, nothing lost: "
    ));
    let marks: Vec<String> = outcomes
        .iter()
        .map(|o| {
            let met = o.keeps_up() && o.missing == 0 && o.steady_rate >= TARGET_EVENTS_PER_SEC as f64;
            format!(
                "{} {:.0} ({})",
                o.label(),
                o.steady_rate,
                if met { "met" } else { "missed" }
            )
        })
        .collect();
    t.push_str(&marks.join("; "));
    t.push_str(".\n");
    t.push_str("\nKeeps up: what was not yet delivered when posting stopped is at most two seconds of the accepted traffic (the 1 s buffer and the queue's 1 s batch timeout). End to end = accepted events ÷ (posting time + time until the last of them was delivered). Where the time goes — CPU µs per accepted event, by process, over posting and draining:\n\n| process |");
    for o in outcomes {
        t.push_str(&format!(" {} |", o.label()));
    }
    t.push_str("\n|---|");
    t.push_str(&"---|".repeat(outcomes.len()));
    t.push('\n');
    let components: Vec<String> = outcomes
        .first()
        .map(|o| o.cpu.iter().map(|(k, _)| k.clone()).collect())
        .unwrap_or_default();
    for (i, name) in components.iter().enumerate() {
        t.push_str(&format!("| {name} |"));
        for o in outcomes {
            t.push_str(&format!(" {:.1} |", o.cpu[i].1 * 1e6 / o.accepted.max(1) as f64));
        }
        t.push('\n');
    }
    t.push_str("| **all** |");
    for o in outcomes {
        let total: f64 = o.cpu.iter().map(|(_, v)| v).sum();
        t.push_str(&format!(" **{:.1}** |", total * 1e6 / o.accepted.max(1) as f64));
    }
    t.push_str("\n| cores busy (of the machine's) |");
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    for o in outcomes {
        let total: f64 = o.cpu.iter().map(|(_, v)| v).sum();
        t.push_str(&format!(
            " {:.2} of {cores} |",
            total / (o.load_secs + o.drain_secs).max(1e-9)
        ));
    }
    t.push_str("\n\nMiniflare's own share, from JavaScript Workers doing nothing but the runtime part, one-event requests on the same connections:\n\n| floor Worker in Miniflare | requests/s | workerd CPU µs/request |\n|---|---|---|\n");
    for f in floors {
        t.push_str(&format!("| {} | {:.0} | {:.0} |\n", f.name, f.rps, f.workerd_us));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_parse_and_bad_ones_name_the_problem() {
        assert_eq!(
            parse_scenarios("queue:1, direct:50@20000").unwrap(),
            vec![
                Scenario {
                    mode: "queue".into(),
                    per_request: 1,
                    rate: None
                },
                Scenario {
                    mode: "direct".into(),
                    per_request: 50,
                    rate: Some(20000)
                }
            ]
        );
        assert_eq!(
            parse_scenarios("direct:50@20000").unwrap()[0].name(),
            "direct-50-at-20000"
        );
        assert!(
            parse_scenarios("queue:5@fast")
                .unwrap_err()
                .contains("events per second")
        );
        assert!(
            parse_scenarios("queue")
                .unwrap_err()
                .contains("MODE:EVENTS_PER_REQUEST")
        );
        assert!(
            parse_scenarios("fast:1")
                .unwrap_err()
                .contains("queue, window or direct")
        );
        assert_eq!(parse_scenarios("window:1").unwrap()[0].name(), "window-1");
        assert!(parse_scenarios("queue:501").unwrap_err().contains("1 to 500"));
    }

    #[test]
    fn bodies_carry_consecutive_ids() {
        let one: serde_json::Value = serde_json::from_str(&body("t-", 7, 1)).unwrap();
        assert_eq!(one["message_id"], "t--7");
        let many: serde_json::Value = serde_json::from_str(&body("t-", 7, 3)).unwrap();
        let ids: Vec<&str> = many
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["message_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec!["t--7", "t--8", "t--9"]);
    }

    #[test]
    fn the_steady_rate_leaves_out_the_first_two_seconds() {
        let samples = [
            (0.0, 0),
            (1.0, 10),
            (2.0, 20),
            (3.0, 20),
            (4.0, 4020),
            (5.0, 4020),
            (6.0, 6020),
        ];
        assert_eq!(steady_rate(&samples), 1500.0);
        assert_eq!(steady_rate(&samples[..3]), 0.0);
        assert_eq!(steady_rate(&samples[..2]), 0.0);
    }

    #[test]
    fn cpu_is_attributed_by_process_tree_and_only_what_was_spent_counts() {
        let p = |pid, ppid, name: &str, cpu| Proc {
            pid,
            ppid,
            name: name.into(),
            cpu,
        };
        let me = std::process::id();
        let before = vec![
            p(me, 1, "bench", 1.0),
            p(100, me, "node", 2.0),
            p(101, 100, "workerd", 3.0),
        ];
        let after = vec![
            p(me, 1, "bench", 1.5),
            p(100, me, "node", 2.25),
            p(101, 100, "workerd", 5.0),
            p(200, me, "edgehose", 4.0),
            p(201, 200, "transform", 0.5),
            p(300, 1, "other", 9.0),
        ];
        let cpu = cpu_by_component(&before, &after, 100, 200);
        let v: Vec<f64> = cpu.iter().map(|(_, v)| *v).collect();
        assert_eq!(v, vec![0.5, 0.25, 2.0, 4.0, 0.5]);
    }
}
