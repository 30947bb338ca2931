//! Realistic events to post, and checks of what landed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use edgehose_shared::envelope::Envelope;

use crate::sandbox::Sandbox;
use edgehose_local::http::{Response, send};

/// Envelope lines exactly as the edge writes them for an NDJSON body, one
/// request per 500 events (the per-request limit), as
/// [`edgehose_sample::envelopes`] makes them.
pub fn edge_envelopes(ndjson: &str) -> Vec<String> {
    edgehose_sample::envelope_lines(ndjson).unwrap_or_else(|e| panic!("{e}"))
}

pub use edgehose_sample::record_of;

/// POSTs `body` to the events endpoint.
pub fn post(base: &str, body: &[u8], headers: &[(&str, &str)]) -> Response {
    post_to(base, "/v1/events", body, headers)
}

/// POSTs `body` to `path` (`/v1/batch`, `/v1/ingest/<name>`, …).
pub fn post_to(base: &str, path: &str, body: &[u8], headers: &[(&str, &str)]) -> Response {
    let mut b = http::Request::post(format!("{base}{path}"));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    match b
        .body(body.to_vec())
        .map_err(|e| e.to_string())
        .and_then(|r| send(r).map_err(String::from))
    {
        Ok(r) => r,
        Err(e) => panic!("POST {base}{path}: {e}"),
    }
}

/// Every envelope in the bucket, by id, with how often each id landed.
pub fn landed(sandbox: &Sandbox) -> BTreeMap<String, Vec<Envelope<'static>>> {
    let mut out: BTreeMap<String, Vec<Envelope<'static>>> = BTreeMap::new();
    let objects = sandbox.objects().unwrap_or_else(|e| panic!("reading the bucket: {e}"));
    for (_, bytes) in objects {
        for line in String::from_utf8_lossy(&bytes).lines() {
            // What the edge judged rejected (a quarantined payload, an
            // invalid event) lands as its `rejected` line, envelope inside.
            let inside;
            let envelope = if edgehose_shared::rejected::is_rejected_line(line) {
                let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
                inside = v["envelope"].to_string();
                inside.as_str()
            } else {
                line
            };
            let env = Envelope::parse(envelope)
                .unwrap_or_else(|e| panic!("{e}: {line}"))
                .into_owned();
            out.entry(env.id.to_string()).or_default().push(env);
        }
    }
    out
}

/// Polls until `done` holds or `timeout` passes; returns whether it held.
pub fn wait_for(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    done()
}

/// Posts `requests` JSON arrays of `per` [`edgehose_sample::ride_sample`]s to the Worker at `base`,
/// each answered 200: `(id, event, request)` for every event, in the order sent.
pub fn post_arrays(
    base: &str,
    run: &str,
    requests: usize,
    per: usize,
    log: impl Fn() -> String,
) -> Vec<(String, String, usize)> {
    let mut sent = Vec::new();
    for r in 0..requests {
        let events: Vec<String> = (0..per)
            .map(|i| edgehose_sample::ride_sample(run, r * per + i))
            .collect();
        let body = format!("[{}]", events.join(","));
        let response = post(base, body.as_bytes(), &[("content-type", "application/json")]);
        assert_eq!(response.status, 200, "request {r}: {}\n{}", response.text(), log());
        for (i, e) in events.into_iter().enumerate() {
            sent.push((format!("{run}-{}", r * per + i), e, r));
        }
    }
    sent
}

/// Worker settings for a test against a sink in the emulator: `mode`, the
/// key, quick retries (fault tests finish in seconds), one call per request
/// in direct mode, and the sink's own `settings`.
pub fn sink_options(
    mode: &str,
    key: &edgehose_shared::sigv4::sign::Credentials,
    settings: &[(&str, &str)],
) -> edgehose_local::cloudflare::miniflare::EdgeOptions {
    let mut o = edgehose_local::cloudflare::miniflare::EdgeOptions::new(&[
        ("AWS_REGION", crate::aws::REGION),
        ("FORWARD_MODE", mode),
        ("AWS_ACCESS_KEY_ID", key.access_key_id()),
        ("AWS_SECRET_ACCESS_KEY", key.secret_access_key()),
        ("RETRY_BASE_DELAY_MS", "20"),
        ("RETRY_MAX_DELAY_MS", "300"),
        // The consumer puts what did not land back on the queue for a second or two, not minutes.
        ("QUEUE_RETRY_BASE_SECONDS", "1"),
        ("QUEUE_RETRY_MAX_SECONDS", "2"),
        ("RETRY_BUDGET_MS", "6000"),
        ("DIRECT_FLUSH_MS", "0"),
    ]);
    o.bindings
        .extend(settings.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    o.max_retries = 4;
    o
}

/// Waits until a rate-limit window has just begun (windows are aligned to
/// the epoch: `edgehose_shared::rate_limit::PERIOD_S`), so what a test
/// sends next falls in one window.
pub fn at_a_window_start() {
    let period = edgehose_shared::rate_limit::PERIOD_S * 1000;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    std::thread::sleep(Duration::from_millis(period - now % period + 50));
}
