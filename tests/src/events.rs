//! Realistic events to post, and checks of what landed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use edgehose_shared::clock::SeededRandom;
use edgehose_shared::decode::{BodyFormat, parse_events};
use edgehose_shared::envelope::{EdgeMeta, Envelope, RequestContext, wrap_items};
use edgehose_shared::limits::Limits;
use edgehose_shared::timestamp::Timestamp;

use crate::sandbox::Sandbox;
use edgehose_local::http::{Response, send};

/// A 170-byte-class telemetry event with a unique `message_id`.
pub fn event(run: &str, n: usize) -> String {
    format!(
        r#"{{"event":"ride_sample","message_id":"{run}-{n}","ts":{},"anonymous_id":"bike-{}","properties":{{"watts":{},"cadence":{},"hr":{}}}}}"#,
        1_714_566_600_000u64 + n as u64 * 1000,
        n % 17,
        150 + n % 200,
        80 + n % 20,
        120 + n % 50
    )
}

/// When [`edge_envelopes`] says its requests arrived.
pub const RECEIVED_AT_MS: i64 = 1_714_566_600_250;

/// Envelope lines exactly as the edge writes them for an NDJSON body, one
/// request per 500 events (the per-request limit), received at
/// [`RECEIVED_AT_MS`] through Frankfurt with write key `web`.
pub fn edge_envelopes(ndjson: &str) -> Vec<String> {
    let edge = EdgeMeta {
        country: Some("DE".into()),
        colo: Some("FRA".into()),
        asn: Some(3320),
        client_ip: None,
    };
    let ctx = RequestContext {
        received_at: Timestamp::from_millis(RECEIVED_AT_MS),
        key_id: Some("web"),
        edge: &edge,
        content_type: Some("application/x-ndjson"),
        dialect: edgehose_shared::envelope::Dialect::V1,
    };
    let random = SeededRandom::new(4);
    let lines: Vec<&str> = ndjson.lines().collect();
    lines
        .chunks(500)
        .flat_map(|chunk| {
            let body = chunk.join("\n");
            match parse_events(body.as_bytes(), BodyFormat::Ndjson, &Limits::default()) {
                Ok(decoded) => wrap_items(&ctx, &decoded.items, &random),
                Err(e) => panic!("not a body the edge accepts: {e}"),
            }
        })
        .collect()
}

/// Lines joined into one Firehose record's bytes (each followed by `\n`).
pub fn record_of(lines: &[String]) -> Vec<u8> {
    lines.iter().flat_map(|l| format!("{l}\n").into_bytes()).collect()
}

/// POSTs `body` to the events endpoint.
pub fn post(base: &str, body: &[u8], headers: &[(&str, &str)]) -> Response {
    let mut b = http::Request::post(format!("{base}/v1/events"));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    match b.body(body.to_vec()).map_err(|e| e.to_string()).and_then(send) {
        Ok(r) => r,
        Err(e) => panic!("POST {base}/v1/events: {e}"),
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

/// Posts `requests` JSON arrays of `per` [`event`]s to the Worker at `base`,
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
        let events: Vec<String> = (0..per).map(|i| event(run, r * per + i)).collect();
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
    key: &edgehose_shared::sign::Credentials,
    settings: &[(&str, &str)],
) -> edgehose_local::miniflare::EdgeOptions {
    let mut o = edgehose_local::miniflare::EdgeOptions::new(&[
        ("AWS_REGION", crate::aws::REGION),
        ("FORWARD_MODE", mode),
        ("AWS_ACCESS_KEY_ID", key.access_key_id()),
        ("AWS_SECRET_ACCESS_KEY", key.secret_access_key()),
        ("RETRY_BASE_DELAY_MS", "20"),
        ("RETRY_MAX_DELAY_MS", "300"),
        ("RETRY_BUDGET_MS", "6000"),
        ("DIRECT_FLUSH_MS", "0"),
    ]);
    o.bindings
        .extend(settings.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    o.max_retries = 4;
    o
}
