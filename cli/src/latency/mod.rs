//! `edgehose latency`: how long a click takes to be acknowledged by the edge
//! Worker and by the API Gateway path, phase by phase, against real
//! deployments or against local ones placed at a distance by the delay proxy.
//!
//! ```text
//! edgehose latency --target edge=https://edgehose.example.workers.dev/v1/events \
//!                  --target apigw=https://abc.execute-api.us-east-1.amazonaws.com/v1/events
//! edgehose latency --scenario tokyo --region us-east-1
//! ```

pub mod chart;
pub mod probe;
pub mod proxy;
pub mod run;
pub mod s3;
pub mod scenario;
pub mod sink;
pub mod stats;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::args::{Args, Flag};
use probe::Endpoint;
use run::{Mode, Plan, Target};
use sink::{Place, Sink};

/// The flags of `edgehose latency`.
pub const FLAGS: &[Flag] = &[
    (
        "target",
        true,
        "NAME=URL to measure; repeat it (edge=https://…/v1/events)",
    ),
    (
        "scenario",
        true,
        "CITY: run both paths locally at its distances (`list`)",
    ),
    ("region", true, "the regional half's region in a scenario (us-east-1)"),
    ("last-mile-ms", true, "scenario: client ↔ nearest PoP round trip (20)"),
    (
        "jitter-ms",
        true,
        "scenario: up to this much more per hop and direction (1)",
    ),
    (
        "edge-mode",
        true,
        "scenario: the edge's modes, each its own target: window, queue, direct, comma-separated (all)",
    ),
    (
        "queue-write-ms",
        true,
        "scenario: a queue write's round trip, as Cloudflare's Queues take (60, their median)",
    ),
    ("firehose-ms", true, "scenario: Firehose's own time per call (0)"),
    ("requests", true, "measured requests per target and mode (100)"),
    ("mode", true, "new, keep-alive or both (both)"),
    ("warmup", true, "unmeasured requests per target and mode first (3)"),
    (
        "header",
        true,
        "'NAME: VALUE' on every request, e.g. a write key; repeat it",
    ),
    (
        "tunnel",
        true,
        "NAME=HOST:PORT: open target NAME's connections through a CONNECT proxy",
    ),
    ("ca", true, "PEM file of certificates to trust besides the system's"),
    (
        "sink",
        true,
        "s3://BUCKET/PREFIX or a directory where delivered events appear: event-to-sink latency",
    ),
    (
        "sink-region",
        true,
        "the bucket's region ($AWS_REGION, $AWS_DEFAULT_REGION, us-east-1; S3 redirects are followed)",
    ),
    (
        "sink-endpoint",
        true,
        "an S3-compatible endpoint instead of AWS's (http://127.0.0.1:5000)",
    ),
    (
        "sink-timeout",
        true,
        "seconds to wait for the last event in the sink (60; 400 for s3://)",
    ),
    ("timeout", true, "seconds to wait for each read of an answer (30)"),
    (
        "out",
        true,
        "directory for latency.json and latency.svg (edgehose-latency)",
    ),
    ("help", false, "this help"),
];

const HELP: &str = "\
edgehose latency: time to acknowledge a click, edge Worker against API Gateway

Each request is timed phase by phase: DNS, TCP connect, TLS handshake, wait for
the first byte, the rest of the answer; with --sink, also until the event is
visible where the data lands (a bucket, read with AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN from the environment and
s3:ListBucket + s3:GetObject, or a directory). Targets take turns, first on a new connection per
request, then on kept-alive connections. Prints p50/p90/p99/max per target and
the ratios to the first target; writes latency.json and latency.svg.

  real deployments:  edgehose latency --target edge=URL --target apigw=URL
  on this machine:   edgehose latency --scenario tokyo [--region eu-central-1]
                     (both paths run locally behind delay proxies; needs the
                     builds `make bench-latency` makes)
";

/// Runs the command.
pub fn main(raw: &[String]) -> Result<(), String> {
    let args = Args::parse(raw, FLAGS)?;
    if args.switch("help") {
        println!("{HELP}\n{}", crate::args::help(FLAGS));
        return Ok(());
    }
    if args.get("scenario") == Some("list") {
        print!("{}", scenario::table());
        return Ok(());
    }
    let out = PathBuf::from(args.get("out").unwrap_or("edgehose-latency"));
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut ca = match args.get("ca") {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| format!("--ca {path}: {e}"))?),
        None => None,
    };
    let mut plan = Plan {
        targets: targets(&args)?,
        requests: args.parsed("requests", 100usize)?,
        modes: modes(args.get("mode").unwrap_or("both"))?,
        warmup: args.parsed("warmup", 3usize)?,
        headers: headers(&args)?,
        timeout: millis_flag(&args, "timeout", 30.0)?.max(Duration::from_millis(100)),
        tls: probe::tls_config(None)?,
        sink: match args.get("sink") {
            Some(value) => Some(Place::parse(value, &sink_region(&args), args.get("sink-endpoint"))?),
            None => None,
        },
        sink_timeout: Duration::ZERO,
        run: run::run_id(),
    };
    if plan.requests == 0 {
        return Err("--requests must be at least 1".into());
    }

    // A scenario runs both paths here, at its distances.
    let mut stack = None;
    let mut title = "edgehose latency".to_owned();
    if let Some(city) = args.get("scenario") {
        if !plan.targets.is_empty() {
            return Err("--scenario measures its own local targets; leave out --target".into());
        }
        let s = scenario::Scenario::new(
            city,
            args.get("region").unwrap_or("us-east-1"),
            args.parsed("last-mile-ms", scenario::LAST_MILE_MS)?,
        )?;
        let edge_modes = scenario::EdgeMode::parse_list(args.get("edge-mode").unwrap_or("all"))?;
        let queue_write_ms = args.parsed("queue-write-ms", scenario::QUEUE_WRITE_MS)?;
        eprintln!("starting both paths locally: {}", s.describe());
        for m in &edge_modes {
            eprintln!("  {}: {}", m.target(), m.describe());
        }
        eprintln!(
            "  each queue write takes {queue_write_ms} ms (Cloudflare's median: {} ms)",
            scenario::QUEUE_WRITE_MS
        );
        let started = scenario::start(
            &s,
            &scenario::StackOptions {
                jitter: millis_flag(&args, "jitter-ms", 1.0)?,
                edge_modes,
                queue_write_ms,
                firehose_latency_ms: args.parsed("firehose-ms", 0u64)?,
                data_dir: scenario::data_dir(&out),
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
            let default = place.default_timeout().as_secs_f64();
            plan.sink_timeout = millis_flag(&args, "sink-timeout", default)?;
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

/// A duration flag: milliseconds for `*-ms` flags, seconds otherwise; it
/// must be a finite, non-negative number of at most a day.
pub fn millis_flag(args: &Args, name: &str, default: f64) -> Result<Duration, String> {
    let v: f64 = args.parsed(name, default)?;
    let secs = if name.ends_with("-ms") { v / 1000.0 } else { v };
    if !(0.0..=86_400.0).contains(&secs) {
        return Err(format!("--{name} {v}: between 0 and a day"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The bucket's region: `--sink-region`, else the AWS CLI's variables.
fn sink_region(args: &Args) -> String {
    args.get("sink-region")
        .map(str::to_owned)
        .or_else(|| std::env::var("AWS_REGION").ok())
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

fn targets(args: &Args) -> Result<Vec<Target>, String> {
    let tunnels: Vec<(&str, &str)> = args
        .all("tunnel")
        .into_iter()
        .map(|t| {
            t.split_once('=')
                .ok_or_else(|| format!("--tunnel {t:?}: NAME=HOST:PORT"))
        })
        .collect::<Result<_, _>>()?;
    let mut out: Vec<Target> = Vec::new();
    for t in args.all("target") {
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
        });
    }
    if let Some((n, _)) = tunnels.iter().find(|(n, _)| !out.iter().any(|t| t.name == *n)) {
        return Err(format!("--tunnel {n}=…: no --target is named {n:?}"));
    }
    Ok(out)
}

fn modes(v: &str) -> Result<Vec<Mode>, String> {
    match v {
        "new" => Ok(vec![Mode::NewConnection]),
        "keep-alive" => Ok(vec![Mode::KeepAlive]),
        "both" => Ok(vec![Mode::NewConnection, Mode::KeepAlive]),
        other => Err(format!("--mode {other:?}: new, keep-alive or both")),
    }
}

fn headers(args: &Args) -> Result<Vec<(String, String)>, String> {
    args.all("header")
        .into_iter()
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
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Args {
        Args::parse(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>(), FLAGS).unwrap()
    }

    /// A target that accepts every event and "delivers" it to `sink` as an
    /// object holding its line, as firehose-local would.
    fn accepting_server(sink: std::path::PathBuf) -> String {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1/events", server.server_addr().to_ip().unwrap());
        std::thread::spawn(move || {
            for (n, mut req) in server.incoming_requests().enumerate() {
                let mut body = String::new();
                let _ = std::io::Read::read_to_string(req.as_reader(), &mut body);
                let status = if body.contains("\"event\":\"click\"") { 200 } else { 400 };
                // Written aside and renamed into place, as Firehose's objects appear whole.
                let tmp = sink.join(format!(".object-{n}"));
                std::fs::write(&tmp, format!("{body}\n")).unwrap();
                std::fs::rename(&tmp, sink.join(format!("object-{n}"))).unwrap();
                let _ = req.respond(tiny_http::Response::from_string("{\"accepted\":1}").with_status_code(status));
            }
        });
        url
    }

    #[test]
    fn a_run_measures_every_target_in_both_modes_finds_events_in_the_sink_and_draws_them() {
        let dir = std::env::temp_dir().join(format!("edgehose-latency-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let sink = dir.join("sink");
        std::fs::create_dir_all(&sink).unwrap();
        let url = accepting_server(sink.clone());
        let target = |name: &str| Target {
            name: name.to_owned(),
            url: url.clone(),
            endpoint: Endpoint::parse(&url).unwrap(),
        };
        let plan = Plan {
            targets: vec![target("edge"), target("apigw")],
            requests: 6,
            modes: vec![Mode::NewConnection, Mode::KeepAlive],
            warmup: 1,
            headers: vec![("x-edgehose-key".into(), "k".into())],
            timeout: Duration::from_secs(10),
            tls: probe::tls_config(None).unwrap(),
            sink: Some(Place::Dir(sink)),
            sink_timeout: Duration::from_secs(10),
            run: run::run_id(),
        };
        let watch = Sink::watch(plan.sink.as_ref().unwrap(), &plan.run, plan.tls.clone(), plan.timeout).unwrap();
        let mut ticks = 0;
        let mut samples = run::measure(&plan, |_| ticks += 1);
        let mut last = (0, 0);
        run::await_sink(&watch, &mut samples, plan.sink_timeout, |seen, of| last = (seen, of));
        assert_eq!((samples.len(), ticks, last), (24, 24, (24, 24)));
        assert!(samples.iter().all(|s| s.ok() && s.sink.is_some()), "{samples:?}");
        let ids: std::collections::BTreeSet<&str> = samples.iter().map(|s| s.message_id.as_str()).collect();
        assert_eq!(ids.len(), 24, "every request sends its own event");
        let report = run::report(&plan, &samples);
        for m in &report.modes {
            for t in &m.targets {
                assert_eq!((t.ok, t.failed, t.missing_from_sink), (6, 0, 0), "{t:?}");
                assert_eq!(t.metrics["ttfb"].count, 6);
                assert!(t.metrics.contains_key("sink"));
            }
            assert_eq!(m.ratios.len(), 1);
            assert!(m.ratios[0].ttfb_p50.is_some());
        }
        // Kept-alive requests after the first pay no connect.
        let keep = samples.iter().filter(|s| s.mode == Mode::KeepAlive);
        assert!(
            keep.filter_map(|s| s.phases)
                .all(|p| p.connect.is_zero() && p.tls.is_zero())
        );
        let text = run::render(&report);
        assert!(text.contains("new-connection") && text.contains("apigw / edge: time to first byte p50"));
        let svg = dir.join("latency.svg");
        chart::write(
            &svg,
            "test run",
            &["edge".into(), "apigw".into()],
            &plan.modes,
            &samples,
        )
        .unwrap();
        let drawn = std::fs::read_to_string(&svg).unwrap();
        assert!(drawn.starts_with("<svg") && drawn.contains("apigw, keep-alive") && drawn.contains("TLS handshake"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn failures_are_counted_with_their_reason() {
        let dir = std::env::temp_dir().join(format!("edgehose-latency-fail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let url = format!("http://{closed}/v1/events");
        let plan = Plan {
            targets: vec![Target {
                name: "down".into(),
                url: url.clone(),
                endpoint: Endpoint::parse(&url).unwrap(),
            }],
            requests: 2,
            modes: vec![Mode::NewConnection],
            warmup: 0,
            headers: Vec::new(),
            timeout: Duration::from_secs(2),
            tls: probe::tls_config(None).unwrap(),
            sink: None,
            sink_timeout: Duration::ZERO,
            run: run::run_id(),
        };
        let report = run::report(&plan, &run::measure(&plan, |_| {}));
        let t = &report.modes[0].targets[0];
        assert_eq!((t.ok, t.failed), (0, 2));
        assert!(
            t.first_failure.as_deref().unwrap_or_default().contains("connecting to"),
            "{t:?}"
        );
        assert!(run::render(&report).contains("2 of 2 requests failed"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn targets_tunnels_and_headers_are_read_and_mistakes_named() {
        let a = args(&[
            "--target",
            "edge=https://e.example/v1/events",
            "--target",
            "apigw=https://a.example/v1/events",
            "--tunnel",
            "apigw=127.0.0.1:9000",
            "--header",
            "X-Edgehose-Key: k1",
        ]);
        let t = targets(&a).unwrap();
        assert_eq!(t.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["edge", "apigw"]);
        assert_eq!(
            (t[0].endpoint.tunnel, t[1].endpoint.tunnel),
            (None, Some("127.0.0.1:9000".parse().unwrap()))
        );
        assert_eq!(headers(&a).unwrap(), [("X-Edgehose-Key".to_owned(), "k1".to_owned())]);
        assert!(
            targets(&args(&["--target", "https://x/"]))
                .unwrap_err()
                .contains("NAME=URL")
        );
        assert!(
            targets(&args(&["--target", "a=https://x/", "--target", "a=https://y/"]))
                .unwrap_err()
                .contains("own name")
        );
        assert!(
            targets(&args(&["--target", "a=https://x/", "--tunnel", "b=1.2.3.4:1"]))
                .unwrap_err()
                .contains("\"b\"")
        );
        assert!(
            headers(&args(&["--header", "no colon"]))
                .unwrap_err()
                .contains("NAME: VALUE")
        );
        assert_eq!(modes("both").unwrap(), [Mode::NewConnection, Mode::KeepAlive]);
        assert!(modes("sometimes").is_err());
        let a = args(&["--jitter-ms", "2.5", "--timeout", "inf", "--sink-timeout", "-1"]);
        assert_eq!(millis_flag(&a, "jitter-ms", 1.0), Ok(Duration::from_micros(2500)));
        assert!(millis_flag(&a, "timeout", 30.0).unwrap_err().contains("--timeout"));
        assert!(millis_flag(&a, "sink-timeout", 60.0).is_err());
        assert_eq!(millis_flag(&a, "rtt-ms", 0.0), Ok(Duration::ZERO));
    }
}
