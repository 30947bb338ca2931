//! The fault engine ([`crate::faults`]) in front of an emulator that has
//! none: an HTTP proxy between a client under test and, say, moto, that
//! fails the calls which put many records (Firehose's `PutRecordBatch`,
//! Kinesis's `PutRecords`, SQS's `SendMessageBatch`, told apart by
//! `X-Amz-Target`) as the plan draws, each in its service's own words. A partial call
//! forwards only the records that did not fail, re-signed since the body
//! changes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine;
use edgehose_shared::sigv4::sign::{Credentials, sign};

use crate::clock::now;
use crate::error::{Error, Result};
use crate::faults::{Fault, FaultPlan, FaultStats, Faults, Service};
use crate::http::send;

/// The region partial calls are re-signed for (the emulators' default).
const REGION: &str = "us-east-1";

struct State {
    faults: Faults,
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
    pub fn start(upstream: &str, credentials: Credentials, plan: FaultPlan, seed: u64) -> Result<Self> {
        let server = tiny_http::Server::http("127.0.0.1:0").map_err(|e| Error::listen("127.0.0.1:0", e))?;
        let port = server
            .server_addr()
            .to_ip()
            .map(|a| a.port())
            .ok_or_else(|| Error::config("the proxy listens on a non-IP address"))?;
        let url = format!("http://127.0.0.1:{port}");
        plan.check()?;
        let state = Arc::new(Mutex::new(State {
            faults: Faults::new(plan, seed),
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

    /// Changes the plan from now on (an outage in it starts now).
    pub fn set_plan(&self, plan: FaultPlan) -> Result<()> {
        plan.check()?;
        self.state
            .lock()
            .map_err(|_| Error::Poisoned("the fault proxy's state"))?
            .faults
            .set(plan);
        Ok(())
    }

    /// What has happened so far.
    pub fn stats(&self) -> FaultStats {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .faults
            .stats
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
        s.faults.enter();
        s.faults.plan().latency_ms
    };
    std::thread::sleep(Duration::from_millis(delay));
    handle_call(request, headers, body, state, upstream, creds, host, stop);
    if let Ok(mut s) = state.lock() {
        s.faults.leave();
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
        s.faults.draw(named.as_deref())
    };
    let reply = match fault {
        Fault::Throttle | Fault::Outage => {
            let (status, code) = protocol.service.throttled();
            json_error(status, code, "Slow down.")
        }
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
    service: Service,
    sqs: bool,
    target: &'static str,
    signing_name: &'static str,
    stream_member: &'static str,
    entries_member: &'static str,
    count_member: &'static str,
    id_member: &'static str,
}

impl Protocol {
    fn of(target: &str) -> Self {
        let service = Service::of_target(target);
        match service {
            Service::Sqs => Self {
                service,
                sqs: true,
                target: "AmazonSQS.SendMessageBatch",
                signing_name: "sqs",
                stream_member: "QueueUrl",
                entries_member: "Successful",
                count_member: "",
                id_member: "MessageId",
            },
            Service::Kinesis => Self {
                service,
                sqs: false,
                target: "Kinesis_20131202.PutRecords",
                signing_name: "kinesis",
                stream_member: "StreamName",
                entries_member: "Records",
                count_member: "FailedRecordCount",
                id_member: "SequenceNumber",
            },
            Service::Firehose => Self {
                service,
                sqs: false,
                target: "Firehose_20150804.PutRecordBatch",
                signing_name: "firehose",
                stream_member: "DeliveryStreamName",
                entries_member: "RequestResponses",
                count_member: "FailedPutCount",
                id_member: "RecordId",
            },
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
    // A call without its records array is the emulator's to refuse.
    let Some(records) = call[records_member].as_array().cloned() else {
        return forward(upstream, headers, body.to_vec());
    };
    let stream = call[protocol.stream_member].as_str().unwrap_or_default().to_owned();
    let failed: Vec<bool> = match state.lock() {
        Ok(mut s) => s.faults.failed_records(records.len()),
        Err(_) => return json_error(500, "InternalFailure", "the proxy's state is poisoned"),
    };
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
        if sign(&mut request, creds, REGION, protocol.signing_name, now()).is_err() {
            return json_error(500, "InternalFailure", "proxy could not sign");
        }
        match send(request) {
            Ok(r) if r.status == 200 => {
                let Ok(v) = serde_json::from_slice::<serde_json::Value>(&r.body) else {
                    return json_error(
                        502,
                        "InternalFailure",
                        "the emulator's answer to the kept records is not JSON",
                    );
                };
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
            Err(e) => return json_error(502, "InternalFailure", &e.to_string()),
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
                serde_json::json!({"ErrorCode": protocol.service.throttled().1, "ErrorMessage": "injected partial failure"})
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
