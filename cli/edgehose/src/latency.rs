//! `edgehose latency`: reads the command line into a measurement plan, runs
//! it (starting a local scenario first when asked), and writes the report,
//! latency.json and latency.svg.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use edgehose_latency::probe::{self, Endpoint};
use edgehose_latency::run::{self, Mode, Plan, Target};
use edgehose_latency::sink::{self, Place, Sink};
use edgehose_latency::{chart, scenario};

use crate::duration::{millis, seconds};

/// `edgehose latency`'s options.
#[derive(Debug, clap::Args)]
#[command(
    about = "Time to acknowledge a click: edge Worker against API Gateway",
    long_about = "\
Time to acknowledge a click: edge Worker against API Gateway.

Each request is timed phase by phase: DNS, TCP connect, TLS handshake, wait for
the first byte, the rest of the answer; with --sink, also until the event is
visible where the data lands (a bucket, read with AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN from the environment and
s3:ListBucket + s3:GetObject, or a directory). Targets take turns, first on a
new connection per request, then on kept-alive connections. Prints
p50/p90/p99/max per target and the ratios to the first target; writes
latency.json and latency.svg.

  real deployments:  edgehose latency --target edge=URL --target apigw=URL
  on this machine:   edgehose latency --scenario tokyo [--region eu-central-1]
                     (both paths run locally behind delay proxies; needs the
                     builds `make bench-latency` makes)"
)]
pub struct LatencyArgs {
    /// NAME=URL to measure; repeat it (edge=https://…/v1/events).
    #[arg(long, value_name = "NAME=URL")]
    target: Vec<String>,
    /// Run both paths locally at this city's distances (`list` lists them).
    #[arg(long, value_name = "CITY")]
    scenario: Option<String>,
    /// The regional half's region in a scenario.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Scenario: client ↔ nearest PoP round trip, ms.
    #[arg(long, default_value_t = scenario::LAST_MILE_MS)]
    last_mile_ms: f64,
    /// Scenario: up to this much more per hop and direction, ms.
    #[arg(long, default_value = "1", value_parser = millis)]
    jitter_ms: Duration,
    /// Scenario: the edge's modes, each its own target: window, queue,
    /// direct, comma-separated, or all.
    #[arg(long, default_value = "all")]
    edge_mode: String,
    /// Scenario: also an edge with two regions (eu-central-1, us-east-1)
    /// that routes the client to the nearer by its country (REGIONS), as
    /// target edge-routed: first click and time-to-land, routed against the
    /// single region of --region.
    #[arg(long)]
    routed: bool,
    /// Scenario: a queue write's round trip, ms, as Cloudflare's Queues take
    /// (their median).
    #[arg(long, default_value_t = scenario::QUEUE_WRITE_MS)]
    queue_write_ms: u64,
    /// Scenario: Firehose's own time per call, ms.
    #[arg(long, default_value_t = 0)]
    firehose_ms: u64,
    /// Measured requests per target and mode.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    requests: u64,
    /// How connections are used.
    #[arg(long, value_enum, default_value_t = Connections::Both)]
    mode: Connections,
    /// Unmeasured requests per target and mode first.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// 'NAME: VALUE' on every request, e.g. a write key; repeat it.
    #[arg(long, value_name = "NAME: VALUE")]
    header: Vec<String>,
    /// Open target NAME's connections through a CONNECT proxy.
    #[arg(long, value_name = "NAME=HOST:PORT")]
    tunnel: Vec<String>,
    /// PEM file of certificates to trust besides the system's.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// s3://BUCKET/PREFIX or a directory where delivered events appear:
    /// event-to-sink latency.
    #[arg(long)]
    sink: Option<String>,
    /// The bucket's region (else $AWS_DEFAULT_REGION, else us-east-1; S3
    /// redirects are followed).
    #[arg(long, env = "AWS_REGION")]
    sink_region: Option<String>,
    /// An S3-compatible endpoint instead of AWS's (http://127.0.0.1:5000).
    #[arg(long)]
    sink_endpoint: Option<String>,
    /// Seconds to wait for the last event in the sink (60; 400 for s3://).
    #[arg(long, value_parser = seconds)]
    sink_timeout: Option<Duration>,
    /// Seconds to wait for each read of an answer.
    #[arg(long, default_value = "30", value_parser = seconds)]
    timeout: Duration,
    /// Directory for latency.json and latency.svg.
    #[arg(long, default_value = "edgehose-latency")]
    out: PathBuf,
}

/// Which connection modes are measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Connections {
    /// A new connection per request.
    New,
    /// Kept-alive connections.
    KeepAlive,
    /// Both, new connections first.
    Both,
}

impl Connections {
    fn modes(self) -> Vec<Mode> {
        match self {
            Self::New => vec![Mode::NewConnection],
            Self::KeepAlive => vec![Mode::KeepAlive],
            Self::Both => vec![Mode::NewConnection, Mode::KeepAlive],
        }
    }
}

/// Runs the command.
pub fn run(args: LatencyArgs) -> Result<(), String> {
    if args.scenario.as_deref() == Some("list") {
        print!("{}", scenario::table());
        return Ok(());
    }
    let out = args.out.clone();
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut ca = match &args.ca {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| format!("--ca {}: {e}", path.display()))?),
        None => None,
    };
    let mut plan = Plan {
        targets: targets(&args)?,
        requests: usize::try_from(args.requests).map_err(|e| format!("--requests: {e}"))?,
        modes: args.mode.modes(),
        warmup: args.warmup,
        headers: headers(&args.header)?,
        timeout: args.timeout.max(Duration::from_millis(100)),
        tls: probe::tls_config(None)?,
        sink: match &args.sink {
            Some(value) => Some(Place::parse(
                value,
                &sink_region(args.sink_region.as_deref()),
                args.sink_endpoint.as_deref(),
            )?),
            None => None,
        },
        sink_timeout: Duration::ZERO,
        run: run::run_id(),
    };

    // A scenario runs both paths here, at its distances.
    let mut stack = None;
    let mut title = "edgehose latency".to_owned();
    if let Some(city) = args.scenario.as_deref() {
        if !plan.targets.is_empty() {
            return Err("--scenario measures its own local targets; leave out --target".into());
        }
        let s = scenario::Scenario::new(city, &args.region, args.last_mile_ms)?;
        let edge_modes = scenario::EdgeMode::parse_list(&args.edge_mode)?;
        let queue_write_ms = args.queue_write_ms;
        eprintln!("starting both paths locally: {}", s.describe());
        for m in &edge_modes {
            eprintln!("  {}: {}", m.target(), m.describe());
        }
        if args.routed {
            eprintln!(
                "  {}: queue mode as deployed, with REGIONS = {:?}: {} goes to the nearer region",
                scenario::ROUTED_TARGET,
                scenario::routed_policy(),
                s.city.name
            );
        }
        eprintln!(
            "  each queue write takes {queue_write_ms} ms (Cloudflare's median: {} ms)",
            scenario::QUEUE_WRITE_MS
        );
        let started = scenario::start(
            &s,
            &scenario::StackOptions {
                jitter: args.jitter_ms,
                edge_modes,
                queue_write_ms,
                firehose_latency_ms: args.firehose_ms,
                data_dir: scenario::data_dir(&out),
                routed: args.routed,
            },
        )?;
        plan.targets = started.targets.clone();
        if plan.sink.is_some() {
            return Err("--scenario watches its own local sink; leave out --sink".into());
        }
        plan.sink = Some(Place::Dir(started.data_dir.clone()));
        ca = Some(started.ca_pem.clone());
        title = format!(
            "edgehose latency, {} → {} (simulated on one machine)",
            s.city.name, s.region
        );
        stack = Some((started, s, queue_write_ms));
    }
    if plan.targets.is_empty() {
        return Err("nothing to measure: give --target NAME=URL (one or more) or --scenario CITY".into());
    }
    plan.tls = probe::tls_config(ca.as_deref())?;

    let sink = match &plan.sink {
        Some(place) => {
            plan.sink_timeout = args.sink_timeout.unwrap_or_else(|| place.default_timeout());
            let sink = Sink::watch(place, &plan.run, plan.tls.clone(), plan.timeout)?;
            eprintln!(
                "watching {} for the events; afterwards they are awaited there for up to {:?}",
                place.describe(),
                plan.sink_timeout
            );
            Some(sink)
        }
        None => None,
    };
    let total = (plan.requests * plan.targets.len() * plan.modes.len()) as u64;
    let bar = progress_bar(total, "requests");
    let mut samples = run::measure(&plan, |s| {
        bar.inc(1);
        bar.set_message(format!("{} {}", s.target, s.mode.name()));
    });
    bar.finish_and_clear();
    if let Some(sink) = &sink {
        let started = Instant::now();
        let bar = progress_bar(0, "events in the sink");
        run::await_sink(sink, &mut samples, plan.sink_timeout, |seen, of| {
            bar.set_length(of as u64);
            bar.set_position(seen as u64);
            bar.set_message(format!("{:.0?}", started.elapsed()));
        });
        bar.finish_and_clear();
        if let Some(problem) = sink.problem() {
            eprintln!(
                "the sink {}: {problem}",
                plan.sink.as_ref().map(Place::describe).unwrap_or_default()
            );
        }
    }
    drop(sink);
    let report = run::report(&plan, &samples);
    println!("{title}\n{}", run::render(&report));
    if let Some(Place::S3 { .. }) = &plan.sink {
        println!(
            "event to sink: until the bucket listing that first showed the event came back \
             (listed every {:?}, so up to that much late)",
            sink::S3_EVERY
        );
    }

    let names: Vec<String> = plan.targets.iter().map(|t| t.name.clone()).collect();
    let svg = out.join("latency.svg");
    chart::write(&svg, &title, &names, &plan.modes, &samples)?;
    let json = serde_json::json!({
        "title": title,
        "scenario": stack.as_ref().map(|(_, s, queue_write_ms)| serde_json::json!({
            "queue_write_ms": queue_write_ms,
            "city": s.city.name,
            "region": s.region,
            "client_to_pop_ms": s.client_to_pop().as_secs_f64() * 1000.0,
            "client_to_region_ms": s.client_to_region().as_secs_f64() * 1000.0,
            "pop_to_region_ms": s.backbone().as_secs_f64() * 1000.0,
            "in_region_ms": s.in_region().as_secs_f64() * 1000.0,
        })),
        "report": report,
        "samples": samples,
    });
    let json_path = out.join("latency.json");
    std::fs::write(&json_path, format!("{json:#}\n")).map_err(|e| format!("{}: {e}", json_path.display()))?;
    println!("\nwrote {} and {}", json_path.display(), svg.display());
    drop(stack);
    Ok(())
}

/// The bucket's region: `--sink-region` (or `$AWS_REGION`), else
/// `$AWS_DEFAULT_REGION`, as the AWS CLI reads them.
fn sink_region(flag: Option<&str>) -> String {
    flag.map(str::to_owned)
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "us-east-1".to_owned())
}

fn progress_bar(total: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(&format!("{{bar:40}} {{pos}}/{{len}} {what}  {{msg}}")) {
        bar.set_style(style);
    }
    bar
}

fn targets(args: &LatencyArgs) -> Result<Vec<Target>, String> {
    let tunnels: Vec<(&str, &str)> = args
        .tunnel
        .iter()
        .map(|t| {
            t.split_once('=')
                .ok_or_else(|| format!("--tunnel {t:?}: NAME=HOST:PORT"))
        })
        .collect::<Result<_, _>>()?;
    let mut out: Vec<Target> = Vec::new();
    for t in &args.target {
        let (name, url) = t
            .split_once('=')
            .ok_or_else(|| format!("--target {t:?}: NAME=URL, e.g. edge=https://…/v1/events"))?;
        if name.is_empty() || out.iter().any(|o| o.name == name) {
            return Err(format!("--target {t:?}: each target needs its own name"));
        }
        let mut endpoint = Endpoint::parse(url)?;
        if let Some((_, proxy)) = tunnels.iter().find(|(n, _)| *n == name) {
            endpoint.tunnel = Some(proxy.parse().map_err(|e| format!("--tunnel {name}={proxy}: {e}"))?);
        }
        out.push(Target {
            name: name.to_owned(),
            url: url.to_owned(),
            endpoint,
            headers: Vec::new(),
        });
    }
    if let Some((n, _)) = tunnels.iter().find(|(n, _)| !out.iter().any(|t| t.name == *n)) {
        return Err(format!("--tunnel {n}=…: no --target is named {n:?}"));
    }
    Ok(out)
}

fn headers(given: &[String]) -> Result<Vec<(String, String)>, String> {
    given
        .iter()
        .map(|h| {
            let (k, v) = h
                .split_once(':')
                .ok_or_else(|| format!("--header {h:?}: 'NAME: VALUE'"))?;
            let (k, v) = (k.trim(), v.trim());
            if k.is_empty() || k.bytes().any(|b| !b.is_ascii_graphic()) || v.contains(['\r', '\n']) {
                return Err(format!("--header {h:?}: not a valid header"));
            }
            Ok((k.to_owned(), v.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests;
