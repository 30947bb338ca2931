//! A fault injector for the calls that put many records (Firehose's
//! `PutRecordBatch`, Kinesis's `PutRecords`, SQS's `SendMessageBatch`, told
//! apart by `X-Amz-Target`):
//! an HTTP proxy between a client under test and the emulator that turns a
//! chosen share of calls into throttling, server errors, partial failures
//! or lost responses, and a collector for dead-lettered messages.
//!
//! - throttled: `400` with the service's throttling code
//!   (`ServiceUnavailableException`, `ProvisionedThroughputExceededException`,
//!   `RequestThrottled`), nothing delivered;
//! - server error: `500 InternalFailure`, nothing delivered;
//! - partial: some records answered with that throttling code; only the
//!   others are delivered (re-signed, since the body changes);
//! - lost response: everything delivered, then answered `500` (the way
//!   duplicates happen in real life);
//! - hang: never answered, the connection held open until the proxy stops
//!   (a call that would outlive its caller without a timeout).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine;
use edgehose_shared::clock::{RandomSource, SeededRandom};
use edgehose_shared::sign::{Credentials, sign};

use crate::aws::REGION;
use edgehose_local::clock::now;
use edgehose_local::http::send;

/// The shares of calls that get each fault (the rest pass through).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FaultPlan {
    /// Share answered with throttling.
    pub throttle: f64,
    /// Share answered with a 500.
    pub server_error: f64,
    /// Share with some records failed.
    pub partial: f64,
    /// Share delivered but answered with a 500.
    pub lost_response: f64,
    /// Share never answered.
    pub hang: f64,
    /// Every call is held this long before it is forwarded (a slow downstream).
    pub delay_ms: u64,
    /// Every call to this stream or queue (by name) is throttled, whatever
    /// the shares say: one shard over its quota while the others are not.
    pub throttle_stream: Option<&'static str>,
}

impl FaultPlan {
    /// Every fault but hanging, often enough that a run of some 70 calls
    /// meets each: 10% throttled, 10% 500s, 30% partial, 10% lost responses.
    pub fn every_kind() -> Self {
        Self {
            throttle: 0.1,
            server_error: 0.1,
            partial: 0.3,
            lost_response: 0.1,
            hang: 0.0,
            delay_ms: 0,
            throttle_stream: None,
        }
    }
}

/// What the proxy did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Calls received.
    pub calls: u64,
    /// Calls answered with throttling.
    pub throttled: u64,
    /// Calls answered with a 500 and not delivered.
    pub server_errors: u64,
    /// Calls with some records failed.
    pub partial: u64,
    /// Records failed inside partial calls.
    pub failed_records: u64,
    /// Calls delivered but answered with a 500.
    pub lost_responses: u64,
    /// Calls never answered.
    pub hung: u64,
    /// The most calls in flight at once.
    pub max_in_flight: u64,
}

struct State {
    plan: FaultPlan,
    stats: FaultStats,
    in_flight: u64,
    dead_letters: Vec<String>,
    random: SeededRandom,
}

/// The running proxy.
pub struct FaultProxy {
    url: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Proxies to `upstream`, re-signing partial calls with `credentials`.
    pub fn start(upstream: &str, credentials: Credentials, plan: FaultPlan, seed: u64) -> Result<Self, String> {
        let server = tiny_http::Server::http("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = server.server_addr().to_ip().map(|a| a.port()).ok_or("no port")?;
        let url = format!("http://127.0.0.1:{port}");
        let state = Arc::new(Mutex::new(State {
            plan,
            stats: FaultStats::default(),
            in_flight: 0,
            dead_letters: Vec::new(),
            random: SeededRandom::new(seed),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, stp, up, host) = (
            state.clone(),
            stop.clone(),
            upstream.trim_end_matches('/').to_owned(),
            url.clone(),
        );
        let thread = std::thread::spawn(move || {
            let server = Arc::new(server);
            while !stp.load(Ordering::Relaxed) {
                if let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(50)) {
                    let (st, up, creds, host, stop) =
                        (st.clone(), up.clone(), credentials.clone(), host.clone(), stp.clone());
                    std::thread::spawn(move || handle(request, &st, &up, &creds, &host, &stop));
                }
            }
        });
        Ok(Self {
            url,
            state,
            stop,
            thread: Some(thread),
        })
    }

    /// Where the client should send Firehose calls.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where dead-lettered messages should be posted.
    pub fn dead_letter_url(&self) -> String {
        format!("{}/dead-letters", self.url)
    }

    /// Changes the fault shares from now on.
    pub fn set_plan(&self, plan: FaultPlan) {
        if let Ok(mut s) = self.state.lock() {
            s.plan = plan;
        }
    }

    /// What has happened so far.
    pub fn stats(&self) -> FaultStats {
        self.state.lock().map(|s| s.stats).unwrap_or_default()
    }

    /// Every line of every dead-lettered message so far.
    pub fn dead_letters(&self) -> Vec<String> {
        self.state.lock().map(|s| s.dead_letters.clone()).unwrap_or_default()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

enum Fault {
    None,
    Throttle,
    ServerError,
    Partial,
    LostResponse,
    Hang,
}

fn handle(
    mut request: tiny_http::Request,
    state: &Mutex<State>,
    upstream: &str,
    creds: &Credentials,
    host: &str,
    stop: &AtomicBool,
) {
    let mut body = Vec::new();
    let _ = request.as_reader().read_to_end(&mut body);
    if request.url() == "/dead-letters" {
        if let Ok(mut s) = state.lock() {
            s.dead_letters
                .extend(String::from_utf8_lossy(&body).lines().map(str::to_owned));
        }
        let _ = request.respond(tiny_http::Response::from_string("ok"));
        return;
    }
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|h| {
            (
                h.field.as_str().as_str().to_ascii_lowercase(),
                h.value.as_str().to_owned(),
            )
        })
        .collect();
    let delay = {
        let Ok(mut s) = state.lock() else { return };
        s.in_flight += 1;
        s.stats.max_in_flight = s.stats.max_in_flight.max(s.in_flight);
        s.plan.delay_ms
    };
    std::thread::sleep(Duration::from_millis(delay));
    handle_call(request, headers, body, state, upstream, creds, host, stop);
    if let Ok(mut s) = state.lock() {
        s.in_flight -= 1;
    }
}

#[allow(clippy::too_many_arguments)] // the proxy thread's state, passed through
fn handle_call(
    request: tiny_http::Request,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    state: &Mutex<State>,
    upstream: &str,
    creds: &Credentials,
    host: &str,
    stop: &AtomicBool,
) {
    let target = headers
        .iter()
        .find(|(k, _)| k == "x-amz-target")
        .map_or("", |(_, v)| v.as_str());
    let protocol = Protocol::of(target);
    let named = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v[protocol.stream_member].as_str().map(str::to_owned));
    let fault = {
        let Ok(mut s) = state.lock() else { return };
        s.stats.calls += 1;
        let draw = (s.random.next_u64() % 1_000_000) as f64 / 1_000_000.0;
        let singled_out = s.plan.throttle_stream.is_some() && s.plan.throttle_stream == named.as_deref();
        let p = s.plan;
        let thresholds = [
            (p.throttle, Fault::Throttle),
            (p.server_error, Fault::ServerError),
            (p.partial, Fault::Partial),
            (p.lost_response, Fault::LostResponse),
            (p.hang, Fault::Hang),
        ];
        let mut cumulative = 0.0;
        let mut chosen = Fault::None;
        for (share, fault) in thresholds {
            cumulative += share;
            if draw < cumulative {
                chosen = fault;
                break;
            }
        }
        if singled_out {
            chosen = Fault::Throttle;
        }
        match chosen {
            Fault::Throttle => s.stats.throttled += 1,
            Fault::ServerError => s.stats.server_errors += 1,
            Fault::Partial => s.stats.partial += 1,
            Fault::LostResponse => s.stats.lost_responses += 1,
            Fault::Hang => s.stats.hung += 1,
            Fault::None => {}
        }
        chosen
    };
    let reply = match fault {
        Fault::Throttle => json_error(400, protocol.throttled, "Slow down."),
        Fault::ServerError => json_error(500, "InternalFailure", "injected server error"),
        Fault::None => forward(upstream, &headers, body),
        Fault::LostResponse => {
            let _ = forward(upstream, &headers, body);
            json_error(500, "InternalFailure", "injected: delivered, response lost")
        }
        Fault::Partial => partial(state, upstream, &headers, &body, creds, host, &protocol),
        Fault::Hang => {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
            return;
        }
    };
    let (status, reply_headers, reply_body) = reply;
    let mut response = tiny_http::Response::from_data(reply_body).with_status_code(status);
    for (k, v) in reply_headers {
        if let Ok(h) = tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()) {
            response = response.with_header(h);
        }
    }
    let _ = request.respond(response);
}

type Reply = (u16, Vec<(String, String)>, Vec<u8>);

fn json_error(status: u16, code: &str, message: &str) -> Reply {
    let body = serde_json::json!({"__type": code, "message": message})
        .to_string()
        .into_bytes();
    (
        status,
        vec![("content-type".into(), "application/x-amz-json-1.1".into())],
        body,
    )
}

fn forward(upstream: &str, headers: &[(String, String)], body: Vec<u8>) -> Reply {
    let mut b = http::Request::post(format!("{upstream}/"));
    for (k, v) in headers {
        if !matches!(
            k.as_str(),
            "content-length" | "connection" | "transfer-encoding" | "accept-encoding"
        ) {
            b = b.header(k.as_str(), v.as_str());
        }
    }
    let Ok(request) = b.body(body) else {
        return json_error(500, "InternalFailure", "proxy could not build the request");
    };
    match send(request) {
        Ok(r) => {
            let keep = ["content-type", "x-amzn-errortype", "date", "x-amzn-requestid"];
            let hs = keep
                .iter()
                .filter_map(|k| r.header(k).map(|v| (k.to_string(), v.to_owned())))
                .collect();
            (r.status, hs, r.body)
        }
        Err(e) => json_error(
            502,
            "InternalFailure",
            &format!("proxy could not reach the emulator: {e}"),
        ),
    }
}

/// What differs between the services' calls.
struct Protocol {
    sqs: bool,
    target: &'static str,
    service: &'static str,
    stream_member: &'static str,
    throttled: &'static str,
    entries_member: &'static str,
    count_member: &'static str,
    id_member: &'static str,
}

impl Protocol {
    fn of(target: &str) -> Self {
        if target.starts_with("AmazonSQS.") {
            Self {
                sqs: true,
                target: "AmazonSQS.SendMessageBatch",
                service: "sqs",
                stream_member: "QueueUrl",
                throttled: "RequestThrottled",
                entries_member: "Successful",
                count_member: "",
                id_member: "MessageId",
            }
        } else if target.starts_with("Kinesis_") {
            Self {
                sqs: false,
                target: "Kinesis_20131202.PutRecords",
                service: "kinesis",
                stream_member: "StreamName",
                throttled: "ProvisionedThroughputExceededException",
                entries_member: "Records",
                count_member: "FailedRecordCount",
                id_member: "SequenceNumber",
            }
        } else {
            Self {
                sqs: false,
                target: "Firehose_20150804.PutRecordBatch",
                service: "firehose",
                stream_member: "DeliveryStreamName",
                throttled: "ServiceUnavailableException",
                entries_member: "RequestResponses",
                count_member: "FailedPutCount",
                id_member: "RecordId",
            }
        }
    }
}

/// Fails a random half of the records (at least one), delivers the rest.
fn partial(
    state: &Mutex<State>,
    upstream: &str,
    headers: &[(String, String)],
    body: &[u8],
    creds: &Credentials,
    host: &str,
    protocol: &Protocol,
) -> Reply {
    let Ok(call) = serde_json::from_slice::<serde_json::Value>(body) else {
        return forward(upstream, headers, body.to_vec());
    };
    let records_member = if protocol.sqs { "Entries" } else { "Records" };
    let records = call[records_member].as_array().cloned().unwrap_or_default();
    let stream = call[protocol.stream_member].as_str().unwrap_or_default().to_owned();
    let failed: Vec<bool> = {
        let Ok(s) = state.lock() else {
            return json_error(500, "InternalFailure", "poisoned");
        };
        let mut f: Vec<bool> = records.iter().map(|_| s.random.next_u64() % 2 == 0).collect();
        if !f.iter().any(|&x| x)
            && let Some(first) = f.first_mut()
        {
            *first = true;
        }
        f
    };
    if let Ok(mut s) = state.lock() {
        s.stats.failed_records += failed.iter().filter(|&&x| x).count() as u64;
    }
    let kept: Vec<&serde_json::Value> = records
        .iter()
        .zip(&failed)
        .filter(|(_, f)| !**f)
        .map(|(r, _)| r)
        .collect();
    let mut delivered_ids = Vec::new();
    if !kept.is_empty() {
        let new_body = serde_json::json!({protocol.stream_member: stream, records_member: kept})
            .to_string()
            .into_bytes();
        let authority = host.trim_start_matches("http://").to_owned();
        let Ok(mut request) = http::Request::post(format!("{upstream}/"))
            .header("host", authority)
            .header(
                "content-type",
                if protocol.sqs {
                    "application/x-amz-json-1.0"
                } else {
                    "application/x-amz-json-1.1"
                },
            )
            .header("x-amz-target", protocol.target)
            .body(new_body)
        else {
            return json_error(500, "InternalFailure", "proxy could not build the request");
        };
        if sign(&mut request, creds, REGION, protocol.service, now()).is_err() {
            return json_error(500, "InternalFailure", "proxy could not sign");
        }
        match send(request) {
            Ok(r) if r.status == 200 => {
                let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
                delivered_ids = v[protocol.entries_member]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|x| x[protocol.id_member].as_str().unwrap_or("r").to_owned())
                            .collect()
                    })
                    .unwrap_or_default();
            }
            Ok(r) => {
                return (
                    r.status,
                    vec![("content-type".into(), "application/x-amz-json-1.1".into())],
                    r.body,
                );
            }
            Err(e) => return json_error(502, "InternalFailure", &e),
        }
    }
    if protocol.sqs {
        // Kept entries keep their ids, which the emulator's Successful names.
        let successful: Vec<serde_json::Value> = records
            .iter()
            .zip(&failed)
            .filter(|(_, f)| !**f)
            .zip(delivered_ids)
            .map(|((r, _), message_id)| serde_json::json!({"Id": r["Id"], "MessageId": message_id}))
            .collect();
        let failures: Vec<serde_json::Value> = records
            .iter()
            .zip(&failed)
            .filter(|(_, f)| **f)
            .map(|(r, _)| {
                serde_json::json!({"Id": r["Id"], "SenderFault": false, "Code": "InternalError", "Message": "injected partial failure"})
            })
            .collect();
        let body = serde_json::json!({"Successful": successful, "Failed": failures});
        return (
            200,
            vec![("content-type".into(), "application/x-amz-json-1.0".into())],
            body.to_string().into_bytes(),
        );
    }
    let mut ids = delivered_ids.into_iter();
    let responses: Vec<serde_json::Value> = failed
        .iter()
        .map(|&f| {
            if f {
                serde_json::json!({"ErrorCode": protocol.throttled, "ErrorMessage": "injected partial failure"})
            } else {
                serde_json::json!({protocol.id_member: ids.next().unwrap_or_else(|| base64::engine::general_purpose::STANDARD.encode("r"))})
            }
        })
        .collect();
    let n_failed = failed.iter().filter(|&&f| f).count();
    let body = serde_json::json!({protocol.count_member: n_failed, protocol.entries_member: responses});
    (
        200,
        vec![("content-type".into(), "application/x-amz-json-1.1".into())],
        body.to_string().into_bytes(),
    )
}

/// Waits (up to two minutes) until every sent event (`(id, event text)`) is
/// in the destination (`landed`: each id's copies, as event texts) or among
/// the proxy's dead letters; then fails the test naming what was lost, an
/// event that landed other than as sent, or a fault the run never met
/// (throttling, a 500, a partial call, a lost response). Prints and returns
/// the tally.
pub fn assert_nothing_lost(
    what: &str,
    sent: &[(String, String)],
    proxy: &FaultProxy,
    landed: impl Fn() -> std::collections::BTreeMap<String, Vec<String>>,
    log: impl Fn() -> String,
) -> Tally {
    use std::collections::BTreeSet;
    let ids: BTreeSet<&str> = sent.iter().map(|(id, _)| id.as_str()).collect();
    let dead = || -> BTreeSet<String> {
        proxy
            .dead_letters()
            .iter()
            .filter_map(|l| edgehose_shared::envelope::Envelope::parse(l).ok())
            .map(|e| e.id.into_owned())
            .collect()
    };
    let complete = crate::events::wait_for(Duration::from_secs(120), || {
        let (got, dl) = (landed(), dead());
        ids.iter().all(|id| got.contains_key(*id) || dl.contains(*id))
    });
    let (got, dl) = (landed(), dead());
    let missing: Vec<&&str> = ids
        .iter()
        .filter(|id| !got.contains_key(**id) && !dl.contains(**id))
        .collect();
    let stats = proxy.stats();
    assert!(
        complete && missing.is_empty(),
        "{what}: lost {missing:?}\nfaults: {stats:?}\n{}",
        log()
    );
    assert!(
        stats.throttled > 0 && stats.server_errors > 0 && stats.partial > 0 && stats.lost_responses > 0,
        "{what}: not every fault was met: {stats:?}"
    );
    assert!(
        got.len() * 2 >= ids.len(),
        "{what}: only {} of {} events landed; the rest were dead-lettered: retries should carry most through\n{}",
        got.len(),
        ids.len(),
        log()
    );
    for (id, copies) in &got {
        let original = &sent
            .iter()
            .find(|(i, _)| i == id)
            .unwrap_or_else(|| panic!("{what}: unexpected id {id}"))
            .1;
        assert!(
            copies.iter().all(|c| c == original),
            "{what}: {id} landed other than as sent"
        );
    }
    let tally = Tally {
        accepted: ids.len(),
        landed: got.len(),
        duplicates: got.values().map(|c| c.len() - 1).sum(),
        dead_lettered: dl.len(),
        landed_and_dead_lettered: ids
            .iter()
            .filter(|id| got.contains_key(**id) && dl.contains(**id))
            .count(),
    };
    println!(
        "{what} under faults: {} events accepted, {} landed ({} duplicate copies), {} dead-lettered ({} of them also landed); faults: {stats:?}",
        tally.accepted, tally.landed, tally.duplicates, tally.dead_lettered, tally.landed_and_dead_lettered
    );
    tally
}

/// What became of the events of a run under faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Events accepted.
    pub accepted: usize,
    /// Distinct events in the destination.
    pub landed: usize,
    /// Copies beyond the first.
    pub duplicates: usize,
    /// Distinct events dead-lettered.
    pub dead_lettered: usize,
    /// Of those, how many also landed.
    pub landed_and_dead_lettered: usize,
}
