//! The measurement: the same realistic event sent to every target in turn,
//! first on a new connection per request (what a browser's first click
//! pays), then on one kept-alive connection, and the report made from it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use super::probe::{Client, Endpoint, PHASES, PhaseOf, Phases};
use super::sink::{Place, Sink};
use super::stats::{Summary, ratio, summarize};

/// How connections are used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// A new connection (DNS, TCP, TLS) for every request.
    NewConnection,
    /// One connection per target, kept alive.
    KeepAlive,
}

impl Mode {
    /// The name used in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Mode::NewConnection => "new-connection",
            Mode::KeepAlive => "keep-alive",
        }
    }

    /// For people.
    pub fn describe(self) -> &'static str {
        match self {
            Mode::NewConnection => "a new connection per request (a browser's first click)",
            Mode::KeepAlive => "one kept-alive connection per target (the clicks after it)",
        }
    }
}

/// One endpoint to measure.
#[derive(Debug, Clone)]
pub struct Target {
    /// Its name in tables (`edge`, `apigw`).
    pub name: String,
    /// The URL as given.
    pub url: String,
    /// Where requests go.
    pub endpoint: Endpoint,
    /// Headers of its own, beside the plan's (a routed edge's `MF-CF-Blob`,
    /// saying which country the client is in).
    pub headers: Vec<(String, String)>,
}

/// What to measure.
pub struct Plan {
    /// The targets, measured in turn request by request.
    pub targets: Vec<Target>,
    /// Measured requests per target and mode.
    pub requests: usize,
    /// Modes, in order.
    pub modes: Vec<Mode>,
    /// Unmeasured requests per target first (cold starts, DNS caches).
    pub warmup: usize,
    /// Extra request headers (a write key).
    pub headers: Vec<(String, String)>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// TLS trust.
    pub tls: Arc<rustls::ClientConfig>,
    /// Where delivered events appear, for event-to-sink latency.
    pub sink: Option<Place>,
    /// How long to wait for the last event to appear there.
    pub sink_timeout: Duration,
    /// What every `message_id` of this run starts with ([`run_id`]).
    pub run: String,
}

/// A new run's id, `lat-<ms since the epoch, hex>`: the start of every
/// `message_id` it sends, so its events are told apart from any other
/// traffic in the sink.
pub fn run_id() -> String {
    format!("lat-{:x}", edgehose_local::clock::now().as_millis())
}

/// One measured request.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// The target's name.
    pub target: String,
    /// How its connection was used.
    pub mode: Mode,
    /// The event's `message_id`.
    pub message_id: String,
    /// HTTP status (0: no answer).
    pub status: u16,
    /// Phases, when it was answered.
    pub phases: Option<Phases>,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// From sending to the event being visible in the sink.
    pub sink: Option<Duration>,
    /// Whether it went on an already open connection (a kept-alive request
    /// that had to open a new one, the server having closed the old, says no).
    pub reused: bool,
    #[serde(skip)]
    sent_at: Option<SystemTime>,
}

impl Sample {
    /// Whether the target accepted the event (a 2xx answer).
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// The realistic event: a click as a shop page sends it now, ~190 bytes
/// ([`edgehose_sample::click`]).
pub fn event(message_id: &str) -> String {
    edgehose_sample::click(message_id, edgehose_local::clock::now().as_millis())
}

/// Runs `plan`, calling `tick` after every measured request.
pub fn measure(plan: &Plan, mut tick: impl FnMut(&Sample)) -> Vec<Sample> {
    let run = &plan.run;
    let mut samples = Vec::new();
    for &mode in &plan.modes {
        let fresh = mode == Mode::NewConnection;
        let headers: Vec<Vec<(String, String)>> = plan
            .targets
            .iter()
            .map(|t| plan.headers.iter().chain(&t.headers).cloned().collect())
            .collect();
        let mut clients: Vec<Client> = plan
            .targets
            .iter()
            .map(|t| Client::new(t.endpoint.clone(), plan.tls.clone(), plan.timeout))
            .collect();
        for (i, (t, client)) in plan.targets.iter().zip(&mut clients).enumerate() {
            for w in 0..plan.warmup {
                let id = format!("{run}-{}-{}-warm{w}", mode.name(), t.name);
                let _ = client.post(event(&id).as_bytes(), &headers[i], fresh);
            }
        }
        for n in 0..plan.requests {
            // Targets take turns, starting with a different one each time,
            // so a busy moment of the machine hits them alike.
            for k in 0..plan.targets.len() {
                let i = (n + k) % plan.targets.len();
                let target = &plan.targets[i];
                let id = format!("{run}-{}-{}-{n}", mode.name(), target.name);
                let sent_at = SystemTime::now();
                let sample = match clients[i].post(event(&id).as_bytes(), &headers[i], fresh) {
                    Ok(a) => Sample {
                        target: target.name.clone(),
                        mode,
                        message_id: id,
                        status: a.status,
                        phases: Some(a.phases),
                        reused: a.reused,
                        error: (!(200..300).contains(&a.status))
                            .then(|| String::from_utf8_lossy(&a.body).chars().take(300).collect()),
                        sink: None,
                        sent_at: Some(sent_at),
                    },
                    Err(e) => Sample {
                        target: target.name.clone(),
                        mode,
                        message_id: id,
                        status: 0,
                        phases: None,
                        reused: false,
                        error: Some(e.to_string()),
                        sink: None,
                        sent_at: None,
                    },
                };
                tick(&sample);
                samples.push(sample);
            }
        }
    }
    samples
}

/// Waits until every accepted event of `samples` is visible in `sink` or
/// `timeout` passes, noting each one's event-to-sink time; `progress` is
/// told how many of how many were seen.
pub fn await_sink(sink: &Sink, samples: &mut [Sample], timeout: Duration, mut progress: impl FnMut(usize, usize)) {
    let start = Instant::now();
    let accepted = samples.iter().filter(|s| s.ok()).count();
    loop {
        let mut missing = 0;
        for s in samples.iter_mut().filter(|s| s.ok() && s.sink.is_none()) {
            match (sink.visible_at(&s.message_id), s.sent_at) {
                // S3's LastModified has whole seconds: an event that landed
                // in the second it was sent can read as earlier, and counts 0.
                (Some(at), Some(sent)) => s.sink = Some(at.duration_since(sent).unwrap_or_default()),
                _ => missing += 1,
            }
        }
        progress(accepted - missing, accepted);
        if missing == 0 || start.elapsed() > timeout {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The metrics reported, in order: the phases, then the sums, then the sink.
pub const METRICS: [&str; 8] = ["dns", "connect", "tls", "wait", "download", "ttfb", "total", "sink"];

/// Percentiles per mode, target and metric, and the ratios between targets.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Measured requests per target and mode.
    pub requests: usize,
    /// Per mode.
    pub modes: Vec<ModeReport>,
}

/// One mode's figures.
#[derive(Debug, Clone, Serialize)]
pub struct ModeReport {
    /// The mode.
    pub mode: Mode,
    /// Per target, in the order given.
    pub targets: Vec<TargetReport>,
    /// Every other target against the first: `p50 time to first byte of
    /// other / of first`, and the same for p99 and for the event-to-sink p50.
    pub ratios: Vec<Ratio>,
}

/// One target's figures in one mode.
#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    /// Its name.
    pub name: String,
    /// Its URL.
    pub url: String,
    /// Accepted (2xx) requests.
    pub ok: u64,
    /// Failed requests (no answer or not 2xx).
    pub failed: u64,
    /// The first failure's reason.
    pub first_failure: Option<String>,
    /// Percentiles per metric (of accepted requests), in milliseconds.
    pub metrics: BTreeMap<String, Summary>,
    /// Events accepted but not seen in the sink before the timeout.
    pub missing_from_sink: u64,
}

/// One target against the baseline (the first target).
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    /// The target.
    pub target: String,
    /// The baseline.
    pub against: String,
    /// p50 time to first byte, target / baseline.
    pub ttfb_p50: Option<f64>,
    /// p99 time to first byte.
    pub ttfb_p99: Option<f64>,
    /// p50 event-to-sink latency.
    pub sink_p50: Option<f64>,
}

/// Summarises `samples`.
pub fn report(plan: &Plan, samples: &[Sample]) -> Report {
    let modes = plan
        .modes
        .iter()
        .map(|&mode| {
            let targets: Vec<TargetReport> = plan
                .targets
                .iter()
                .map(|t| {
                    let mine = samples.iter().filter(|s| s.mode == mode && s.target == t.name);
                    target_report(t, plan.sink.is_some(), mine)
                })
                .collect();
            let ratios = targets
                .iter()
                .skip(1)
                .filter_map(|other| {
                    let base = targets.first()?;
                    let p = |r: &TargetReport, m: &str, f: fn(&Summary) -> f64| r.metrics.get(m).map_or(f64::NAN, f);
                    Some(Ratio {
                        target: other.name.clone(),
                        against: base.name.clone(),
                        ttfb_p50: ratio(p(other, "ttfb", |s| s.p50), p(base, "ttfb", |s| s.p50)),
                        ttfb_p99: ratio(p(other, "ttfb", |s| s.p99), p(base, "ttfb", |s| s.p99)),
                        sink_p50: ratio(p(other, "sink", |s| s.p50), p(base, "sink", |s| s.p50)),
                    })
                })
                .collect();
            ModeReport { mode, targets, ratios }
        })
        .collect();
    Report {
        requests: plan.requests,
        modes,
    }
}

fn target_report<'a>(target: &Target, watched: bool, samples: impl Iterator<Item = &'a Sample>) -> TargetReport {
    let samples: Vec<&Sample> = samples.collect();
    let ok: Vec<&Sample> = samples.iter().copied().filter(|s| s.ok()).collect();
    let phases: Vec<Phases> = ok.iter().filter_map(|s| s.phases).collect();
    let mut metrics = BTreeMap::new();
    let sums: [(&str, PhaseOf); 2] = [("ttfb", Phases::ttfb), ("total", Phases::total)];
    if !phases.is_empty() {
        for (name, f) in PHASES.iter().map(|(k, _, f)| (*k, *f)).chain(sums) {
            metrics.insert(name.to_owned(), summarize(&phases.iter().map(f).collect::<Vec<_>>()));
        }
    }
    let sink: Vec<Duration> = ok.iter().filter_map(|s| s.sink).collect();
    if !sink.is_empty() {
        metrics.insert("sink".to_owned(), summarize(&sink));
    }
    TargetReport {
        name: target.name.clone(),
        url: target.url.clone(),
        ok: ok.len() as u64,
        failed: (samples.len() - ok.len()) as u64,
        first_failure: samples.iter().find(|s| !s.ok()).map(|s| match &s.error {
            Some(e) if s.status > 0 => format!("HTTP {}: {e}", s.status),
            Some(e) => e.clone(),
            None => format!("HTTP {}", s.status),
        }),
        metrics,
        missing_from_sink: if watched { (ok.len() - sink.len()) as u64 } else { 0 },
    }
}

/// The report as text tables.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    for m in &report.modes {
        out.push_str(&format!(
            "\n{} — {}, {} requests per target (milliseconds)\n\n",
            m.mode.name(),
            m.mode.describe(),
            report.requests
        ));
        out.push_str(&format!(
            "{:<10} {:<9} {:>9} {:>9} {:>9} {:>9}\n",
            "target", "metric", "p50", "p90", "p99", "max"
        ));
        for t in &m.targets {
            for metric in METRICS {
                let Some(s) = t.metrics.get(metric) else { continue };
                if s.count == 0 || (m.mode == Mode::KeepAlive && matches!(metric, "dns" | "connect" | "tls")) {
                    continue;
                }
                out.push_str(&format!(
                    "{:<10} {:<9} {:>9.2} {:>9.2} {:>9.2} {:>9.2}\n",
                    t.name, metric, s.p50, s.p90, s.p99, s.max
                ));
            }
            if t.failed > 0 {
                out.push_str(&format!(
                    "{:<10} {} of {} requests failed; first: {}\n",
                    t.name,
                    t.failed,
                    t.failed + t.ok,
                    t.first_failure.as_deref().unwrap_or("?")
                ));
            }
            if t.missing_from_sink > 0 {
                out.push_str(&format!(
                    "{:<10} {} accepted events not seen in the sink in time\n",
                    t.name, t.missing_from_sink
                ));
            }
        }
        for r in &m.ratios {
            let x = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.2}×"));
            out.push_str(&format!(
                "\n{} / {}: time to first byte p50 {}, p99 {}",
                r.target,
                r.against,
                x(r.ttfb_p50),
                x(r.ttfb_p99)
            ));
            if r.sink_p50.is_some() {
                out.push_str(&format!("; event to sink p50 {}", x(r.sink_p50)));
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests;
