//! `edgehose-bench soak` (`make soak`): `edgehose dev` — the whole local
//! pipeline a user runs — under sustained load with Firehose and Cloudflare
//! misbehaving, for ten minutes by default. Clients post one event per
//! request on 64 keep-alive connections (one of them hostile: broken JSON,
//! oversized and mistyped bodies), firehose-local throttles, fails records,
//! answers 500 and loses answers on a share of calls and goes down entirely
//! at intervals (once for a minute), while the Worker's queues refuse a
//! share of writes (and all of them for a while) and its R2 archive fails a
//! share of writes; any `waitUntil` work still pending 30 s after its answer
//! fails the run, as does the Worker's memory past its ceiling. Every ten seconds
//! it samples the resident memory of every process `edgehose dev` started,
//! the Worker's own linear memory (`/healthz`) and its live JavaScript heap
//! (V8's after a full collection, read through the DevTools inspector
//! `edgehose dev --inspector-port` opens),
//! so what a request leaves behind shows where it stays: in the Worker's
//! linear memory, in its JS glue, or elsewhere in workerd (Miniflare's queue). At the end it drains the
//! edge, redrives whatever was dead-lettered, stops `edgehose dev` with the
//! signal a terminal's Ctrl-C sends, and looks up every accepted event id in
//! the delivered objects: accepted, landed, lost (must be 0), duplicated.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use edgehose_local::cloudflare::admin::{DEV_ADMIN_KEY, redrive};
use edgehose_local::tools::{free_port, http_get, release_binary};

use crate::harness::load::Conn;
use crate::harness::report;
use crate::harness::workerd::{getconf, processes, tree};
use crate::pipeline::{Posted, post_until, scan};
use crate::repo_root;

/// What to run (`edgehose-bench soak`'s options).
#[derive(Debug, Clone, PartialEq, clap::Parser)]
pub struct Settings {
    /// How long clients post, seconds (at least 20: the memory figures need samples).
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(20..=7 * 86_400))]
    pub secs: u64,
    /// Keep-alive connections, the hostile one included.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(2..))]
    pub connections: u16,
    /// The edge's forwarding mode: queue or direct.
    #[arg(long, default_value = "queue", value_parser = ["queue", "direct"])]
    pub mode: String,
    /// Events per request (1 to 500).
    #[arg(long, default_value_t = 1, value_parser = one_to_500)]
    pub per_request: usize,
    /// Share of Firehose calls throttled.
    #[arg(long, default_value_t = 0.05)]
    pub throttle: f64,
    /// Share of Firehose calls with some records failed.
    #[arg(long, default_value_t = 0.05)]
    pub partial: f64,
    /// Share of Firehose calls answered 500.
    #[arg(long, default_value_t = 0.02)]
    pub errors: f64,
    /// Share of Firehose calls whose answer is lost after the records were
    /// kept (each resend makes a duplicate: the soak's one cause of them).
    #[arg(long, default_value_t = 0.01)]
    pub lost_response: f64,
    /// A Firehose outage starts every this many seconds (0: none) …
    #[arg(long, default_value_t = 120)]
    pub outage_every: u64,
    /// … and lasts this long.
    #[arg(long, default_value_t = 15)]
    pub outage_secs: u64,
    /// One Firehose outage this long at half-way (0: none): longer than
    /// Cloudflare's own retries of a queue message last without a delay.
    #[arg(long, default_value_t = 60)]
    pub long_outage_secs: u64,
    /// Share of queue writes refused ("Too Many Requests", as past 5,000 messages a second).
    #[arg(long, default_value_t = 0.02)]
    pub queue_refuse: f64,
    /// One Queues outage (every write refused) this long at a third of the way (0: none).
    #[arg(long, default_value_t = 10)]
    pub queue_outage_secs: u64,
    /// Share of R2 writes (the dead-letter archive) that fail.
    #[arg(long, default_value_t = 0.2)]
    pub r2_fail: f64,
    /// Whether one connection sends hostile requests.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub hostile: bool,
    /// Where the table is written.
    #[command(flatten)]
    pub write: crate::harness::report::Write,
}

fn one_to_500(v: &str) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if (1..=500).contains(&n) => Ok(n),
        _ => Err(format!("{v:?}: 1 to 500")),
    }
}

impl Default for Settings {
    /// The issue's soak: ten minutes, 64 connections, queue mode.
    fn default() -> Self {
        <Self as clap::Parser>::parse_from(["soak"])
    }
}

impl Settings {
    /// Reads the options (as after `edgehose-bench soak`) and checks what
    /// one flag alone cannot.
    pub fn from_args(args: &[&str]) -> Result<Self, String> {
        let s = <Self as clap::Parser>::try_parse_from(std::iter::once("soak").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        s.check()?;
        Ok(s)
    }

    /// Whether the long outage is on and fits in the second half of the load.
    fn long_outage(&self) -> bool {
        self.long_outage_secs > 0 && self.long_outage_secs * 2 <= self.secs
    }

    /// The outage must end before the next begins; shares are shares.
    pub fn check(&self) -> Result<(), String> {
        if self.outage_every > 0 && self.outage_secs >= self.outage_every {
            return Err("--outage-secs must be shorter than --outage-every".into());
        }
        for (name, share) in [
            ("--queue-refuse", self.queue_refuse),
            ("--r2-fail", self.r2_fail),
            ("--lost-response", self.lost_response),
        ] {
            if !(0.0..=1.0).contains(&share) {
                return Err(format!("{name} is a share from 0 to 1"));
            }
        }
        Ok(())
    }

    /// The fault plan as firehose-local's `PUT /_edgehose/faults` takes it.
    fn faults(&self, outage_secs: u64) -> String {
        serde_json::json!({
            "throttle": self.throttle, "partial": self.partial, "errors": self.errors,
            "lost_response": self.lost_response, "outage_secs": outage_secs,
        })
        .to_string()
    }

    /// `5 % throttled, 5 % with failed records, 2 % answered 500, 15 s outage every 120 s`, and Cloudflare's.
    fn describe_faults(&self) -> String {
        let mut t = format!(
            "AWS: {} % of Firehose calls throttled, {} % with failed records, {} % answered 500, {} % with the answer lost",
            self.throttle * 100.0,
            self.partial * 100.0,
            self.errors * 100.0,
            self.lost_response * 100.0
        );
        if self.outage_every > 0 {
            t.push_str(&format!(
                ", a {} s outage (every call refused) every {} s",
                self.outage_secs, self.outage_every
            ));
        }
        if self.long_outage() {
            t.push_str(&format!(", one {} s outage half-way", self.long_outage_secs));
        }
        t.push_str(&format!(
            "; Cloudflare: {} % of queue writes refused, {} % of R2 writes failed",
            self.queue_refuse * 100.0,
            self.r2_fail * 100.0
        ));
        if self.queue_outage_secs > 0 {
            t.push_str(&format!(
                ", one {} s Queues outage a third of the way",
                self.queue_outage_secs
            ));
        }
        t
    }
}

/// One memory sample.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// Seconds since the clients started (negative: before).
    pub t: f64,
    /// Events the edge isolate had accepted (`/healthz`).
    pub accepted: u64,
    /// Event lines firehose-local had delivered.
    pub delivered: u64,
    /// The Worker's linear memory, bytes (`/healthz`).
    pub wasm: u64,
    /// The Worker's V8 heap in use right after a full collection, bytes (the
    /// inspector's `HeapProfiler.collectGarbage`, then `Runtime.getHeapUsage`).
    pub js_heap: u64,
    /// Whether both of the Worker's readings came back (a failed one reads
    /// 0, which must not pass for flat memory).
    pub measured: bool,
    /// Resident memory by process, bytes.
    pub rss: BTreeMap<String, u64>,
}

/// The row name of a process `edgehose dev` started, by its command name.
pub fn label(name: &str) -> &'static str {
    match name {
        "edgehose" => "edgehose dev (firehose-local, the API Gateway host)",
        "node" => "Miniflare (node)",
        "workerd" => "workerd (the Worker, its JS glue, Miniflare's queue)",
        "transform" => "transform function",
        "ingest-api" => "ingest-api function",
        _ => "other",
    }
}

/// Resident bytes of `pid` (`/proc/PID/statm`).
fn rss_bytes(pid: u32, page: u64) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/statm"))
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
        .unwrap_or(0)
        * page
}

fn page_size() -> u64 {
    getconf("PAGESIZE").map_or(4096, |v| v as u64)
}

/// Resident memory of `root` and everything below it, summed by [`label`].
fn memory(root: u32, page: u64) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for p in tree(&processes(), root) {
        *out.entry(label(&p.name).to_owned()).or_default() += rss_bytes(p.pid, page);
    }
    out
}

/// The edge isolate's figures (`/healthz` as `edgehose dev`'s admin key sees it).
fn healthz(edge: &str) -> Option<serde_json::Value> {
    edgehose_local::tools::healthz(edge, DEV_ADMIN_KEY).ok()
}

/// The Worker's live V8 heap, read by `bench/js/heap.mjs` through its inspector.
fn js_heap(inspector: &str) -> Option<u64> {
    let node = edgehose_local::tools::npm_bin("node").ok()?;
    let harness = repo_root().join("bench/js/heap.mjs");
    let v = crate::harness::node::run_json(&node, &[], &harness, &[std::ffi::OsStr::new(inspector)]).ok()?;
    v["usedSize"].as_u64()
}

fn firehose_stats(url: &str) -> Option<serde_json::Value> {
    http_get(&format!("{url}/_edgehose/stats"))
        .ok()
        .and_then(|b| serde_json::from_str(&b).ok())
}

/// Bytes per request a quantity grew by over `samples`, fitted by least
/// squares against the events accepted: what each request leaves behind
/// (0 when memory is flat; `None` when nothing was accepted between them).
pub fn growth_per_request(samples: &[(u64, u64)]) -> Option<f64> {
    let n = samples.len() as f64;
    if samples.len() < 2 {
        return None;
    }
    let mx = samples.iter().map(|s| s.0 as f64).sum::<f64>() / n;
    let my = samples.iter().map(|s| s.1 as f64).sum::<f64>() / n;
    let sxx: f64 = samples.iter().map(|s| (s.0 as f64 - mx).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = samples.iter().map(|s| (s.0 as f64 - mx) * (s.1 as f64 - my)).sum();
    Some(sxy / sxx)
}

/// A process group stopped with SIGINT, then killed, when dropped.
struct Group(Child);

impl Group {
    /// Sends `signal` to the whole group, through the shell's `kill`
    /// (`kill -SIG -PGID`, the group's id being its leader's pid).
    fn signal(&self, signal: &str) {
        let _ = Command::new("sh")
            .args(["-c", &format!("kill -{signal} -{}", self.0.id())])
            .status();
    }

    fn interrupt(&self) {
        self.signal("INT");
    }

    /// SIGINT to the group, as a terminal's Ctrl-C; waits up to `limit`.
    fn stop(&mut self, limit: Duration) -> bool {
        self.interrupt();
        let start = Instant::now();
        while start.elapsed() < limit {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) && !self.stop(Duration::from_secs(60)) {
            self.signal("KILL");
            let _ = self.0.wait();
        }
    }
}

/// What the hostile connection sent and how it was answered.
#[derive(Debug, Default)]
struct Hostile {
    sent: u64,
    by_status: BTreeMap<u16, u64>,
    /// Broken JSON answered 200: accepted into quarantine, as `STRICT=false`
    /// (`make dev`'s default) promises; each must reach the error prefix.
    quarantined: u64,
    /// An oversized or mistyped body answered 2xx: a bug.
    wrongly_accepted: u64,
}

/// Broken JSON, a body past the 1 MiB limit and a form body, in turn,
/// until `stop`.
fn hostile(addr: SocketAddr, stop: &AtomicBool) -> Hostile {
    let big = format!(
        r#"{{"event":"x","message_id":"big","properties":{{"pad":"{}"}}}}"#,
        "a".repeat(1_100_000)
    );
    let bodies: [(&str, &str); 3] = [
        ("application/json", r#"{"event":"click","message_id":"#),
        ("application/json", &big),
        ("application/x-www-form-urlencoded", "event=click"),
    ];
    let mut h = Hostile::default();
    while !stop.load(Ordering::Relaxed) {
        // A connection of its own each: the edge closes one whose body it
        // refused unread, and the next request must still be answered.
        let mut conn = Conn::open(addr).ok();
        let (ty, body) = bodies[(h.sent % bodies.len() as u64) as usize];
        h.sent += 1;
        let request = format!(
            "POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ty}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let status = conn.as_mut().and_then(|c| c.exchange(request.as_bytes()).ok());
        match status {
            Some(s) => {
                *h.by_status.entry(s).or_default() += 1;
                let ok = (200..300).contains(&s);
                if body == bodies[0].1 {
                    h.quarantined += u64::from(ok);
                } else {
                    h.wrongly_accepted += u64::from(ok);
                }
            }
            None => *h.by_status.entry(0).or_default() += 1,
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    h
}

/// What the soak measured.
#[derive(Debug, Default)]
struct Outcome {
    requests: u64,
    refused: u64,
    accepted: u64,
    landed: u64,
    duplicates: u64,
    missing: u64,
    failed: u64,
    /// Events inside the records under the error prefix.
    failed_events: u64,
    redriven: u64,
    drain_secs: f64,
    stop_secs: f64,
    stopped_line: String,
    hostile: Hostile,
    samples: Vec<Sample>,
    firehose: serde_json::Value,
    /// What Cloudflare's faults did (`GET /_edgehose/faults` on the Worker).
    cloudflare: serde_json::Value,
    /// Events the Worker logged LOST (`edge.log`): nowhere left to keep them.
    logged_lost: u64,
}

/// Runs the soak; see the module docs.
pub fn main(s: Settings) -> Result<(), String> {
    s.check()?;
    let edgehose = release_binary("edgehose", "make soak")?;
    let work = repo_root().join("target/bench/soak");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    println!(
        "soak: `edgehose dev` ({} mode) for {} s, {} connections ({}), {} event(s) per request; {}",
        s.mode,
        s.secs,
        s.connections,
        if s.hostile {
            "one of them hostile"
        } else {
            "all well-behaved"
        },
        s.per_request,
        s.describe_faults()
    );
    let o = run(&s, &edgehose, &work)?;
    let table = render(&s, &o);
    let json = serde_json::json!({
        "date": report::today(), "machine": report::machine(), "settings": format!("{s:?}"),
        "requests": o.requests, "refused": o.refused, "accepted": o.accepted, "landed": o.landed,
        "duplicates": o.duplicates, "lost": o.missing, "logged_lost": o.logged_lost, "error_prefix": o.failed, "redriven": o.redriven,
        "drain_secs": o.drain_secs, "stop_secs": o.stop_secs, "stopped": o.stopped_line,
        "error_prefix_events": o.failed_events,
        "hostile": {"sent": o.hostile.sent, "quarantined": o.hostile.quarantined, "wrongly_accepted": o.hostile.wrongly_accepted, "by_status": o.hostile.by_status.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>()},
        "firehose": o.firehose, "cloudflare": o.cloudflare,
        "samples": o.samples.iter().map(|x| serde_json::json!({"t": x.t, "accepted": x.accepted, "delivered": x.delivered, "wasm_bytes": x.wasm, "js_heap_bytes": x.js_heap, "rss_bytes": x.rss})).collect::<Vec<_>>(),
    });
    // One section per mode, so both stay in BENCHMARKS.md.
    report::publish(&format!("soak-{}", s.mode), &table, Some(&json), s.write.file())?;
    if o.missing > 0 {
        return Err(format!("{} accepted event(s) were not found in the output", o.missing));
    }
    let cut = o.cloudflare["wait_until_cut"].as_u64();
    if cut != Some(0) {
        return Err(format!(
            "waitUntil promises pending 30 s after their response (production cuts them): {cut:?}"
        ));
    }
    if o.cloudflare["over_memory_ceiling"].as_u64() != Some(0) {
        return Err(format!("the Worker's memory passed its ceiling: {}", o.cloudflare));
    }
    if o.hostile.wrongly_accepted > 0 {
        return Err(format!(
            "{} oversized or mistyped request(s) were answered 2xx",
            o.hostile.wrongly_accepted
        ));
    }
    if o.failed_events < o.hostile.quarantined {
        return Err(format!(
            "{} broken request(s) were accepted into quarantine but only {} rejected event(s) reached the error prefix",
            o.hostile.quarantined, o.failed_events
        ));
    }
    Ok(())
}

fn run(s: &Settings, edgehose: &Path, work: &Path) -> Result<Outcome, String> {
    let data = work.join("data");
    let log = work.join("dev.log");
    let ports = [free_port()?, free_port()?, free_port()?, free_port()?];
    let inspector = format!("ws://127.0.0.1:{}/edgehose", ports[3]);
    let edge = format!("http://127.0.0.1:{}", ports[0]);
    let firehose = format!("http://127.0.0.1:{}", ports[2]);
    let mut command = Command::new(edgehose);
    // Its own process group, as a shell gives a foreground job.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
    let mut dev = Group(
        command
            .arg("dev")
            .args(["--port", &ports[0].to_string()])
            .args(["--api-port", &ports[1].to_string()])
            .args(["--firehose-port", &ports[2].to_string()])
            .args(["--inspector-port", &ports[3].to_string()])
            .args(["--mode", &s.mode, "--buffer-secs", "1", "--quiet"])
            // Minutes of soak stand for hours: the consumer's retries wait at
            // most 20 s (not 300), so what waits for its next try comes back
            // while the drain still looks.
            .args(["--queue-retry-max-secs", "20"])
            .args(["--throttle", &s.throttle.to_string()])
            .args(["--partial", &s.partial.to_string()])
            .args(["--errors", &s.errors.to_string()])
            .args(["--lost-response", &s.lost_response.to_string()])
            .args(["--queue-refuse", &s.queue_refuse.to_string()])
            .args(["--r2-fail", &s.r2_fail.to_string()])
            .arg("--data-dir")
            .arg(&data)
            .env_remove("ADMIN_KEY")
            .stdin(Stdio::null())
            .stdout(file.try_clone().map_err(|e| e.to_string())?)
            .stderr(file)
            .spawn()
            .map_err(|e| format!("starting edgehose dev: {e}"))?,
    );
    let started = Instant::now();
    let dev_log = || std::fs::read_to_string(&log).unwrap_or_default();
    while healthz(&edge).is_none() || firehose_stats(&firehose).is_none() {
        if matches!(dev.0.try_wait(), Ok(Some(_))) {
            return Err(format!("edgehose dev exited:\n{}", dev_log()));
        }
        if started.elapsed() > Duration::from_secs(180) {
            return Err(format!("edgehose dev did not come up in 180 s:\n{}", dev_log()));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let addr: SocketAddr = format!("127.0.0.1:{}", ports[0]).parse().map_err(|e| format!("{e}"))?;
    let page = page_size();
    let root = dev.0.id();
    let sample = |t: f64| {
        let h = healthz(&edge).unwrap_or_default();
        let (wasm, js) = (h["isolate"]["wasm_memory_bytes"].as_u64(), js_heap(&inspector));
        Sample {
            t,
            accepted: h["isolate"]["accepted_events"].as_u64().unwrap_or(0),
            delivered: firehose_stats(&firehose)
                .and_then(|v| v["lines_delivered"].as_u64())
                .unwrap_or(0),
            wasm: wasm.unwrap_or(0),
            js_heap: js.unwrap_or(0),
            measured: wasm.is_some() && js.is_some(),
            rss: memory(root, page),
        }
    };
    let mut o = Outcome {
        samples: vec![sample(0.0)],
        ..Outcome::default()
    };
    print_sample(&o.samples[0], "idle");

    let stop = Arc::new(AtomicBool::new(false));
    let well_behaved = usize::from(s.connections) - usize::from(s.hostile);
    let t0 = Instant::now();
    let clients: Vec<_> = (0..well_behaved)
        .map(|c| {
            let (stop, n) = (stop.clone(), s.per_request);
            std::thread::spawn(move || post_until(addr, &format!("soak-c{c}"), n, None, &stop))
        })
        .collect();
    let bad = s.hostile.then(|| {
        let stop = stop.clone();
        std::thread::spawn(move || hostile(addr, &stop))
    });
    let load = Duration::from_secs(s.secs);
    let mut next_outage = s.outage_every;
    let (mut queue_outage, mut long_outage) = (s.queue_outage_secs > 0, s.long_outage());
    let mut k = 1u64;
    while t0.elapsed() < load {
        std::thread::sleep((Duration::from_secs(10 * k)).min(load).saturating_sub(t0.elapsed()));
        let t = t0.elapsed().as_secs_f64();
        let half = load.as_secs_f64() / 2.0;
        if long_outage && t >= half {
            put_faults(&firehose, &s.faults(s.long_outage_secs))?;
            println!("  {t:>5.0} s  Firehose outage for {} s", s.long_outage_secs);
            long_outage = false;
            next_outage = next_outage.max((t as u64) + s.long_outage_secs + s.outage_every / 2);
        } else if s.outage_every > 0 && t >= next_outage as f64 && t + (s.outage_secs as f64) < load.as_secs_f64() {
            put_faults(&firehose, &s.faults(s.outage_secs))?;
            println!("  {t:>5.0} s  Firehose outage for {} s", s.outage_secs);
            next_outage += s.outage_every;
        }
        if queue_outage && t >= load.as_secs_f64() / 3.0 {
            put_faults(
                &edge,
                &serde_json::json!({"queue_outage_secs": s.queue_outage_secs}).to_string(),
            )?;
            println!("  {t:>5.0} s  Queues outage for {} s", s.queue_outage_secs);
            queue_outage = false;
        }
        let x = sample(t);
        print_sample(&x, "");
        o.samples.push(x);
        k += 1;
    }
    stop.store(true, Ordering::SeqCst);
    let mut posted: Vec<Posted> = Vec::new();
    for c in clients {
        posted.push(c.join().map_err(|_| "a client thread panicked".to_owned())??);
    }
    if let Some(b) = bad {
        o.hostile = b.join().map_err(|_| "the hostile client panicked".to_owned())?;
    }
    let load_secs = t0.elapsed().as_secs_f64();
    o.requests = posted.iter().map(|p| p.requests).sum();
    o.refused = posted.iter().map(|p| p.refused).sum();
    o.accepted = posted.iter().map(|p| p.accepted).sum();

    // Drain: every accepted event delivered and nothing moving, then
    // whatever was dead-lettered brought back, until both hold.
    let drain_start = Instant::now();
    let delivered = || {
        firehose_stats(&firehose)
            .and_then(|v| v["lines_delivered"].as_u64())
            .unwrap_or(0)
    };
    let (mut round, mut idle_rounds) = (0, 0);
    // Four rounds in a row with nothing delivered and nothing to redrive: done.
    while idle_rounds < 4 {
        round += 1;
        let before = delivered();
        drain(&firehose, o.accepted, Duration::from_secs(15));
        let redriven = redrive(&edge, DEV_ADMIN_KEY, |_| {}).map_err(|e| format!("redrive: {e}"))?;
        o.redriven += redriven.events;
        if redriven.objects > 0 {
            println!(
                "  redrive round {round}: {} dead-lettered line(s) sent through again",
                redriven.events
            );
        }
        let now = delivered();
        if now >= o.accepted && redriven.objects == 0 {
            break;
        }
        idle_rounds = if now == before && redriven.objects == 0 {
            idle_rounds + 1
        } else {
            0
        };
    }
    o.drain_secs = drain_start.elapsed().as_secs_f64();
    let after = sample(load_secs + o.drain_secs);
    print_sample(&after, "drained");
    o.samples.push(after);
    o.firehose = firehose_stats(&firehose).unwrap_or_default();
    o.cloudflare = http_get(&format!("{edge}/_edgehose/faults"))
        .ok()
        .and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
        .map(|v| v["stats"].clone())
        .unwrap_or_default();

    let stopping = Instant::now();
    if !dev.stop(Duration::from_secs(120)) {
        return Err(format!(
            "edgehose dev did not stop within 120 s of Ctrl-C:\n{}",
            dev_log()
        ));
    }
    o.stop_secs = stopping.elapsed().as_secs_f64();
    o.stopped_line = dev_log()
        .lines()
        .find(|l| l.starts_with("stopped."))
        .unwrap_or("")
        .to_owned();

    o.logged_lost = logged_lost(&std::fs::read_to_string(data.join("edge.log")).unwrap_or_default());
    let landed = scan(&data)?;
    o.failed = landed.failed;
    o.failed_events = error_prefix_events(&data)?;
    (o.landed, o.duplicates, o.missing) = landed.tally(&posted, |c| format!("soak-c{c}"));
    Ok(o)
}

/// Events a Worker log says were LOST (`edgehose: LOST <n> events (…)`).
fn logged_lost(log: &str) -> u64 {
    log.lines()
        .filter_map(|l| l.split("edgehose: LOST ").nth(1))
        .filter_map(|rest| rest.split(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Waits until firehose-local has delivered at least `expected` lines and
/// nothing has moved for five seconds, or nothing moves for `quiet_limit`.
fn drain(firehose: &str, expected: u64, quiet_limit: Duration) {
    let (mut last, mut moved) = (0, Instant::now());
    loop {
        let (received, delivered) = firehose_stats(firehose)
            .and_then(|v| v["lines_received"].as_u64().zip(v["lines_delivered"].as_u64()))
            .unwrap_or((0, 0));
        let n = received + delivered;
        if n != last {
            (last, moved) = (n, Instant::now());
        }
        let still = moved.elapsed();
        if (delivered >= expected && still > Duration::from_secs(5)) || still > quiet_limit {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Events inside the records under the error prefix: each line there is
/// one record in Firehose's error format, its `rawData` the record's lines.
fn error_prefix_events(data: &Path) -> Result<u64, String> {
    use base64::Engine as _;
    let mut n = 0;
    for path in edgehose_local::aws::firehose::store::objects(&data.join("processing-failed")) {
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("{}: {e}", path.display()))?;
            let raw = base64::engine::general_purpose::STANDARD
                .decode(v["rawData"].as_str().unwrap_or(""))
                .map_err(|e| format!("{}: rawData: {e}", path.display()))?;
            n += raw.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count() as u64;
        }
    }
    Ok(n)
}

fn put_faults(firehose: &str, plan: &str) -> Result<(), String> {
    let addr: SocketAddr = firehose
        .trim_start_matches("http://")
        .parse()
        .map_err(|e| format!("{firehose}: {e}"))?;
    let request = format!(
        "PUT /_edgehose/faults HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{plan}",
        plan.len()
    );
    match Conn::open(addr)?.exchange(request.as_bytes())? {
        200 => Ok(()),
        s => Err(format!("PUT /_edgehose/faults answered {s}")),
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn print_sample(x: &Sample, what: &str) {
    let rss: Vec<String> = x
        .rss
        .iter()
        .map(|(k, v)| format!("{} {}", k.split(' ').next().unwrap_or(k), mb(*v)))
        .collect();
    println!(
        "  {:>5.0} s  {what:<7} {} accepted, {} delivered, wasm {}, JS heap {}, {}",
        x.t,
        x.accepted,
        x.delivered,
        mb(x.wasm),
        mb(x.js_heap),
        rss.join(", ")
    );
    let _ = std::io::stdout().flush();
}

fn met(ok: bool) -> &'static str {
    if ok { "**met**" } else { "**missed**" }
}

fn render(s: &Settings, o: &Outcome) -> String {
    let mins = s.secs as f64 / 60.0;
    let mut t = format!(
        "### Soak: `make dev`, {} mode, {mins:.0} min at {} connections with faults on ({}; {})\n\n`make soak SOAK_SECS={}{}` — `edgehose dev` as a user starts it, its release builds; {} keep-alive connections post {} ~170-byte event(s) per request{}. {}. Memory is sampled every 10 s: each process's resident set (`/proc/PID/statm`), the Worker's linear memory (`/healthz`) and its live JavaScript heap (V8's `Runtime.getHeapUsage` right after `HeapProfiler.collectGarbage`, through the DevTools inspector). After the load: drain, `edgehose redrive` for whatever was dead-lettered, SIGINT to `edgehose dev`'s process group, then every accepted event id looked up in the delivered objects.\n\n",
        s.mode,
        s.connections,
        report::today(),
        report::machine(),
        s.secs,
        if s.mode == "direct" {
            " ARGS=\"--mode direct\""
        } else {
            ""
        },
        s.connections,
        s.per_request,
        if s.hostile {
            " (one connection posts broken JSON, bodies over 1 MiB and form bodies instead)"
        } else {
            ""
        },
        s.describe_faults()
    );
    let f = &o.firehose;
    let hostile: Vec<String> = o
        .hostile
        .by_status
        .iter()
        .map(|(k, v)| {
            if *k == 0 {
                format!("{v} closed")
            } else {
                format!("{v} × {k}")
            }
        })
        .collect();
    t.push_str("| | |\n|---|---|\n");
    for (k, v) in [
        (
            "requests answered 200 / not answered 200",
            format!("{} / {}", o.requests, o.refused),
        ),
        ("events accepted", o.accepted.to_string()),
        ("landed in the destination (distinct ids)", o.landed.to_string()),
        (
            "**lost** (target 0)",
            format!(
                "{} — {} (of them logged LOST by the Worker, with their ids: {})",
                o.missing,
                met(o.missing == 0),
                o.logged_lost
            ),
        ),
        (
            "duplicated (extra copies) and their cause",
            format!(
                "{} — what makes one: {} Firehose answers lost after the records were kept (each resend is a copy of a call's records); {} of the edge's {} calls abandoned unanswered when their time ran out, which firehose-local may still have kept (it answers slowly when the machine is saturated); {} queue writes that landed after the edge stopped waiting (the longest took {} ms; each sent its lines on another way too). A partial failure resends only its failed records, and the consumer puts back only what did not land",
                o.duplicates,
                f["faults"]["lost_responses"],
                o.cloudflare["sink_calls_abandoned"],
                o.cloudflare["sink_calls"],
                o.cloudflare["queue_writes_landed_late"],
                o.cloudflare["queue_write_longest_ms"]
            ),
        ),
        (
            "under the error prefix: records / events in them",
            format!("{} / {}", o.failed, o.failed_events),
        ),
        ("dead-lettered, then redriven", o.redriven.to_string()),
        (
            "hostile requests: answers",
            format!(
                "{} sent: {}; broken JSON quarantined {} (each must reach the error prefix); oversized or mistyped accepted {} (target 0)",
                o.hostile.sent,
                if hostile.is_empty() {
                    "none".into()
                } else {
                    hostile.join(", ")
                },
                o.hostile.quarantined,
                o.hostile.wrongly_accepted
            ),
        ),
        (
            "Firehose calls / refused by the faults",
            format!(
                "{} / {} (throttled {}, with failed records {} ({} records), 500 {}, in an outage {})",
                f["calls"],
                f["refused_calls"],
                f["faults"]["throttled"],
                f["faults"]["partial"],
                f["faults"]["failed_records"],
                f["faults"]["server_errors"],
                f["faults"]["outage"]
            ),
        ),
        (
            "Cloudflare's faults: queue writes / refused; R2 writes / failed",
            format!(
                "{} / {}; {} / {}",
                o.cloudflare["queue_writes"],
                o.cloudflare["queue_refused"],
                o.cloudflare["r2_puts"],
                o.cloudflare["r2_failed"]
            ),
        ),
        (
            "`waitUntil` work still pending 30 s after its answer (cut in production; target 0)",
            format!(
                "{} of {}, the longest {} ms — {}",
                o.cloudflare["wait_until_cut"],
                o.cloudflare["wait_until"],
                o.cloudflare["wait_until_longest_ms"],
                met(o.cloudflare["wait_until_cut"].as_u64() == Some(0))
            ),
        ),
        (
            "the Worker's wasm memory at most (read after requests) against an isolate's 128 MB",
            format!(
                "{} — {}",
                mb(o.cloudflare["wasm_memory_most_bytes"].as_u64().unwrap_or(0)),
                met(o.cloudflare["over_memory_ceiling"].as_u64() == Some(0)
                    && o.cloudflare["wasm_memory_most_bytes"].as_u64().is_some_and(|b| b > 0))
            ),
        ),
        (
            "drained (and redriven) after the load in / stopped on Ctrl-C in",
            format!("{:.1} s / {:.1} s", o.drain_secs, o.stop_secs),
        ),
        ("`edgehose dev`'s last line", format!("`{}`", o.stopped_line)),
    ] {
        t.push_str(&format!("| {k} | {v} |\n"));
    }
    t.push_str(&memory_table(s, &o.samples));
    t
}

/// How a table row reads its figure from a sample.
type Reading = Box<dyn Fn(&Sample) -> u64>;

/// Memory at start, after a minute, half-way, at the end of the load and
/// after draining, with what each request left behind over the second half.
fn memory_table(s: &Settings, samples: &[Sample]) -> String {
    let load = s.secs as f64;
    let at = |t: f64| {
        samples
            .iter()
            .filter(|x| x.t <= load + 0.5)
            .min_by(|a, b| (a.t - t).abs().total_cmp(&(b.t - t).abs()))
    };
    let points = [
        ("idle", samples.first()),
        ("after 1 min of load", at(60.0)),
        ("half-way", at(load / 2.0)),
        ("end of load", at(load)),
        ("after draining", samples.last()),
    ];
    let second_half: Vec<&Sample> = samples
        .iter()
        .filter(|x| x.t >= load / 2.0 && x.t <= load + 0.5)
        .collect();
    let mut t = String::from("\n| memory | ");
    t.push_str(&points.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(" | "));
    t.push_str(" | growth per request over the second half |\n|---|");
    t.push_str(&"---|".repeat(points.len() + 1));
    t.push('\n');
    let mut rows: Vec<(String, Reading)> = vec![
        (
            "the Worker's linear memory (`/healthz`)".into(),
            Box::new(|x: &Sample| x.wasm),
        ),
        (
            "the Worker's live JavaScript heap (V8, after a full collection)".into(),
            Box::new(|x: &Sample| x.js_heap),
        ),
    ];
    let names: Vec<String> = samples
        .last()
        .map(|x| x.rss.keys().cloned().collect())
        .unwrap_or_default();
    for n in names {
        let key = n.clone();
        rows.push((
            format!("{n}, resident"),
            Box::new(move |x: &Sample| x.rss.get(&key).copied().unwrap_or(0)),
        ));
    }
    for (name, get) in &rows {
        let cells: Vec<String> = points
            .iter()
            .map(|(_, x)| x.map_or("—".into(), |x| mb(get(x))))
            .collect();
        let fit: Vec<(u64, u64)> = second_half.iter().map(|x| (x.accepted, get(x))).collect();
        let growth = growth_per_request(&fit).map_or("—".into(), |g| format!("{g:.0} B"));
        t.push_str(&format!("| {name} | {} | {growth} |\n", cells.join(" | ")));
    }
    let wasm: Vec<(u64, u64)> = second_half.iter().map(|x| (x.accepted, x.wasm)).collect();
    let js: Vec<(u64, u64)> = second_half.iter().map(|x| (x.accepted, x.js_heap)).collect();
    let js_growth = growth_per_request(&js);
    let peak = samples.iter().map(|x| x.wasm + x.js_heap).max().unwrap_or(0);
    let unmeasured = samples.iter().filter(|x| !x.measured).count();
    if unmeasured > 0 {
        t.push_str(&format!(
            "\nTargets: **not measured** — {unmeasured} of {} samples lack the Worker's linear memory or its JavaScript heap (`/healthz` or the inspector did not answer), so the Worker's memory is not known to be flat: **missed**.\n",
            samples.len()
        ));
        return t;
    }
    t.push_str(&format!(
        "\nTargets: the Worker's memory flat under sustained load, over the second half of the load — its linear memory (which grows only in whole 64 KiB pages) not one page more: {} → {} — {}; its live JavaScript heap growing by less than {LEAK_BYTES_PER_REQUEST} B per request (one small object kept per request would not pass): {} — {}. Their peak together, {}, within a Cloudflare isolate's 128 MB — {}.\n",
        mb(wasm.first().map_or(0, |x| x.1)),
        mb(wasm.last().map_or(0, |x| x.1)),
        met(growth_per_request(&wasm) == Some(0.0)),
        js_growth.map_or("—".into(), |g| format!("{g:.1} B per request")),
        met(js_growth.is_some_and(|g| g < LEAK_BYTES_PER_REQUEST)),
        mb(peak),
        met(peak < 128_000_000)
    ));
    t
}

/// Growth of the live JavaScript heap per request that counts as a leak:
/// V8's smallest objects take 16 bytes or more, so keeping even one per
/// request shows above this.
pub const LEAK_BYTES_PER_REQUEST: f64 = 8.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_is_the_least_squares_slope_against_requests() {
        let flat = [(0, 100), (1000, 100), (2000, 100)];
        assert_eq!(growth_per_request(&flat), Some(0.0));
        let leak = [(0, 1000), (1000, 4000), (2000, 7000)];
        assert_eq!(growth_per_request(&leak), Some(3.0));
        assert_eq!(growth_per_request(&[(5, 1)]), None);
        assert_eq!(growth_per_request(&[(5, 1), (5, 9)]), None);
    }

    #[test]
    fn a_failed_memory_reading_is_not_taken_for_flat_memory() {
        let s = Settings {
            secs: 40,
            ..Settings::default()
        };
        let sample = |t: f64, accepted: u64, measured: bool| Sample {
            t,
            accepted,
            wasm: if measured { 1_500_000 } else { 0 },
            js_heap: if measured { 1_000_000 } else { 0 },
            measured,
            ..Sample::default()
        };
        let good: Vec<Sample> = (0..5).map(|k| sample(k as f64 * 10.0, k * 1000, true)).collect();
        let t = memory_table(&s, &good);
        assert!(t.contains("not one page more: 1.5 MB → 1.5 MB — **met**"), "{t}");
        let mut bad = good;
        bad[3] = sample(30.0, 3000, false);
        let t = memory_table(&s, &bad);
        assert!(t.contains("**not measured**") && !t.contains("**met**"), "{t}");
    }

    #[test]
    fn lost_lines_are_summed_from_the_workers_log() {
        let log =
            "x\nedgehose: LOST 3 events (down); ids: a,b,c\nedgehose: LOST 2 events (x); ids: d,e\nedgehose: LOSTx";
        assert_eq!(logged_lost(log), 5);
    }

    #[test]
    fn settings_default_to_the_issue_s_soak_and_refuse_nonsense() {
        let s = Settings::from_args(&[]).unwrap();
        assert_eq!(
            (s.secs, s.connections, s.mode.as_str(), s.per_request),
            (600, 64, "queue", 1)
        );
        let d = Settings::from_args(&["--secs", "60", "--mode", "direct", "--hostile", "false"]).unwrap();
        assert_eq!((d.secs, d.mode.as_str(), d.hostile), (60, "direct", false));
        for bad in [
            &["--secs", "5"][..],
            &["--mode", "fast"],
            &["--connections", "1"],
            &["--hostile", "yes"],
            &["--outage-every", "10", "--outage-secs", "10"],
            &["--throttle", "lots"],
            &["--queue-refuse", "1.5"],
            &["--r2-fail", "2"],
        ] {
            assert!(Settings::from_args(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn processes_are_named_for_what_they_run() {
        assert!(label("workerd").starts_with("workerd"));
        assert_eq!(label("node"), "Miniflare (node)");
        assert_eq!(label("bash"), "other");
        assert!(rss_bytes(std::process::id(), page_size()) > 0);
    }
}
