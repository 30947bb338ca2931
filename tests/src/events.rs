//! Realistic events to post, and checks of what landed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use edgehose_shared::envelope::Envelope;

use crate::http::{Response, send};
use crate::sandbox::Sandbox;

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
pub fn landed(sandbox: &Sandbox) -> BTreeMap<String, Vec<Envelope>> {
    let mut out: BTreeMap<String, Vec<Envelope>> = BTreeMap::new();
    let objects = sandbox.objects().unwrap_or_else(|e| panic!("reading the bucket: {e}"));
    for (_, bytes) in objects {
        for line in String::from_utf8_lossy(&bytes).lines() {
            let env = Envelope::parse(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            out.entry(env.id.clone()).or_default().push(env);
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
