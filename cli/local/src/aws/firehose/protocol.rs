//! The HTTP side of firehose-local: Firehose's JSON 1.1 operations, answered
//! with AWS's error types and shapes, and the `/_edgehose/` control API.

use std::io::Read;
use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use edgehose_shared::limits::{FIREHOSE_MAX_CALL_BYTES, FIREHOSE_MAX_RECORD_BYTES, FIREHOSE_MAX_RECORDS_PER_CALL};
use edgehose_shared::sigv4;
use serde_json::{Value, json};

use super::{ACCOUNT, Inner, Record};
use crate::clock::now;
use crate::faults::{Fault, FaultPlan, Service};

/// The JSON 1.1 target prefix of every Firehose operation.
const TARGET_PREFIX: &str = "Firehose_20150804.";
/// CloudWatch Logs' operations, served for the transform's log group.
const LOGS_TARGET_PREFIX: &str = "Logs_20140328.";
/// The largest request body read (4 MiB of records grow by a third in base64).
const MAX_REQUEST_BYTES: usize = 8 * 1024 * 1024;
/// What a client may send in the first byte of a control call.
const CONTROL_PREFIX: &str = "/_edgehose/";

/// An answer.
struct Reply {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    /// An injected hang: no answer at all until firehose-local stops.
    hang: bool,
}

impl Reply {
    fn json(status: u16, v: &Value) -> Self {
        Self {
            status,
            content_type: "application/x-amz-json-1.1",
            body: v.to_string().into_bytes(),
            hang: false,
        }
    }

    /// Never answered (the connection held open until firehose-local stops).
    fn hang() -> Self {
        Self {
            hang: true,
            ..Self::error(500, "InternalFailure", "never sent")
        }
    }

    fn throttled(message: &str) -> Self {
        let (status, code) = Service::Firehose.throttled();
        Self::error(status, code, message)
    }

    /// An AWS JSON-protocol error: `{"__type": code, "message": …}`.
    fn error(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self::json(status, &json!({"__type": code, "message": message.into()}))
    }

    fn validation(message: impl Into<String>) -> Self {
        Self::error(400, "ValidationException", message)
    }
}

/// Reads one request and answers it.
pub(crate) fn serve(inner: &std::sync::Arc<Inner>, mut request: tiny_http::Request) {
    let mut body = Vec::new();
    let read = request
        .as_reader()
        .take(MAX_REQUEST_BYTES as u64 + 1)
        .read_to_end(&mut body);
    let reply = if read.is_err() {
        Reply::error(400, "SerializationException", "the request body could not be read")
    } else if body.len() > MAX_REQUEST_BYTES {
        Reply::error(
            413,
            "RequestEntityTooLargeException",
            format!("the request body exceeds {MAX_REQUEST_BYTES} bytes"),
        )
    } else {
        route(inner, &request, body)
    };
    if reply.status >= 300 && !request.url().starts_with(CONTROL_PREFIX) {
        inner.counters.refused_calls.fetch_add(1, Ordering::Relaxed);
    }
    if reply.hang {
        // Held on a thread of its own, so the server's threads keep serving.
        let inner = inner.clone();
        std::thread::spawn(move || {
            let _held = request;
            while !inner.stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        return;
    }
    let mut response = tiny_http::Response::from_data(reply.body).with_status_code(reply.status);
    for (k, v) in [
        ("content-type", reply.content_type.to_owned()),
        ("x-amzn-requestid", uuid::Uuid::new_v4().to_string()),
    ] {
        if let Ok(h) = tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()) {
            response.add_header(h);
        }
    }
    let _ = request.respond(response);
}

fn route(inner: &Inner, request: &tiny_http::Request, body: Vec<u8>) -> Reply {
    let method = request.method().as_str().to_owned();
    let url = request.url().to_owned();
    if let Some(control) = url.strip_prefix(CONTROL_PREFIX) {
        return self::control(inner, &method, control, &body);
    }
    if method != "POST" || (url != "/" && !url.starts_with("/?")) {
        return Reply::error(
            404,
            "UnknownOperationException",
            format!("{method} {url}: Firehose operations are POST / with an X-Amz-Target header"),
        );
    }
    let header = |name: &str| {
        request
            .headers()
            .iter()
            .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str().to_owned())
    };
    if let Some(op) = header("x-amz-target").and_then(|t| t.strip_prefix(LOGS_TARGET_PREFIX).map(str::to_owned)) {
        if let Err(reply) = authenticate(inner, request, &url, &body, "logs") {
            return reply;
        }
        return logs(inner, &op, &body);
    }
    let Some(op) = header("x-amz-target").and_then(|t| t.strip_prefix(TARGET_PREFIX).map(str::to_owned)) else {
        return Reply::error(
            400,
            "UnknownOperationException",
            format!("the X-Amz-Target header must name a Firehose operation ({TARGET_PREFIX}…)"),
        );
    };
    if let Err(reply) = authenticate(inner, request, &url, &body, "firehose") {
        return reply;
    }
    let call: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        _ => return Reply::error(400, "SerializationException", "the request body is not a JSON object"),
    };
    match op.as_str() {
        "PutRecordBatch" => put(inner, &call, true),
        "PutRecord" => put(inner, &call, false),
        "DescribeDeliveryStream" => describe(inner, &call),
        "ListDeliveryStreams" => Reply::json(
            200,
            &json!({"DeliveryStreamNames": inner.streams.keys().collect::<Vec<_>>(), "HasMoreDeliveryStreams": false}),
        ),
        other => Reply::error(
            400,
            "UnknownOperationException",
            format!(
                "firehose-local does not implement {other}; it serves PutRecordBatch, PutRecord, DescribeDeliveryStream and ListDeliveryStreams"
            ),
        ),
    }
}

/// CloudWatch Logs for the transform's log group: `FilterLogEvents` over
/// what the function printed (`aws/cloudwatch_logs.rs`), as `edgehose receipts`
/// reads it from AWS. Pages carry the last event's place as `nextToken`.
fn logs(inner: &Inner, op: &str, body: &[u8]) -> Reply {
    let not_found = |name: &str| {
        Reply::error(
            400,
            "ResourceNotFoundException",
            format!("The specified log group does not exist: {name}"),
        )
    };
    if op != "FilterLogEvents" {
        return Reply::error(
            400,
            "UnknownOperationException",
            format!("firehose-local serves CloudWatch Logs' FilterLogEvents only (for its transform), not {op}"),
        );
    }
    let Ok(call) = serde_json::from_slice::<Value>(body) else {
        return Reply::error(400, "SerializationException", "the request body is not JSON");
    };
    let name = call["logGroupName"].as_str().unwrap_or_default();
    let Some(group) = inner.transform.as_ref().map(|t| &t.logs).filter(|g| g.name == name) else {
        return not_found(name);
    };
    let start = call["startTime"].as_i64().unwrap_or(0);
    let end = call["endTime"].as_i64().unwrap_or(i64::MAX);
    let after = match call["nextToken"].as_str() {
        None => 0,
        Some(t) => match t.parse() {
            Ok(n) => n,
            Err(_) => {
                return Reply::error(
                    400,
                    "InvalidParameterException",
                    format!("nextToken {t:?} is not one this endpoint gave"),
                );
            }
        },
    };
    match group.filter((start, end), call["filterPattern"].as_str().unwrap_or_default(), after) {
        Ok((events, more)) => {
            let events: Vec<Value> = events
                .into_iter()
                .map(|e| json!({"logStreamName": "local", "timestamp": e.timestamp, "ingestionTime": e.timestamp, "message": e.message, "eventId": e.seq.to_string()}))
                .collect();
            let mut answer = json!({"events": events, "searchedLogStreams": [{"logStreamName": "local", "searchedCompletely": more.is_none()}]});
            if let Some(seq) = more {
                answer["nextToken"] = json!(seq.to_string());
            }
            Reply::json(200, &answer)
        }
        Err(e) => Reply::error(400, "InvalidParameterException", e.to_string()),
    }
}

/// Checks SigV4 against the configured credentials, as AWS would.
fn authenticate(
    inner: &Inner,
    request: &tiny_http::Request,
    url: &str,
    body: &[u8],
    service: &str,
) -> Result<(), Reply> {
    let mut b = http::Request::builder().method("POST").uri(url);
    for h in request.headers() {
        b = b.header(h.field.as_str().as_str(), h.value.as_str());
    }
    let req = b
        .body(body)
        .map_err(|e| Reply::error(400, "IncompleteSignatureException", format!("unreadable request: {e}")))?;
    let verified = sigv4::verify::verify(&req, |key| inner.config.credentials.get(key).cloned(), now())
        .map_err(|e| Reply::error(e.status(), e.code(), e.to_string()))?;
    if verified.service != service {
        return Err(Reply::error(
            400,
            "InvalidSignatureException",
            format!(
                "Credential should be scoped to correct service: '{service}', not '{}'.",
                verified.service
            ),
        ));
    }
    if verified.region != inner.config.region {
        return Err(Reply::error(
            400,
            "InvalidSignatureException",
            format!(
                "Credential should be scoped to a valid region: this endpoint serves '{}', not '{}'.",
                inner.config.region, verified.region
            ),
        ));
    }
    Ok(())
}

fn stream<'a>(inner: &'a Inner, call: &Value) -> Result<&'a std::sync::Arc<super::stream::Stream>, Reply> {
    let name = call["DeliveryStreamName"].as_str().ok_or_else(|| {
        Reply::validation(
            "1 validation error detected: Value null at 'deliveryStreamName' failed to satisfy constraint: Member must not be null",
        )
    })?;
    inner.streams.get(name).ok_or_else(|| {
        Reply::error(
            400,
            "ResourceNotFoundException",
            format!("Firehose {name} under account {ACCOUNT} not found."),
        )
    })
}

/// PutRecordBatch (`batch`) and PutRecord.
fn put(inner: &Inner, call: &Value, batch: bool) -> Reply {
    let stream = match stream(inner, call) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if stream.config.kinesis_source.is_some() {
        return Reply::error(
            400,
            "InvalidArgumentException",
            format!(
                "This operation is not permitted on KinesisStreamAsSource delivery stream type: {} reads a Kinesis stream",
                stream.config.name
            ),
        );
    }
    let encoded: Vec<&Value> = if batch {
        match call["Records"].as_array() {
            None => {
                return Reply::validation(
                    "1 validation error detected: Value null at 'records' failed to satisfy constraint: Member must not be null",
                );
            }
            Some(a) if a.is_empty() || a.len() > FIREHOSE_MAX_RECORDS_PER_CALL => {
                return Reply::validation(format!(
                    "1 validation error detected: Value at 'records' failed to satisfy constraint: Member must have length less than or equal to {FIREHOSE_MAX_RECORDS_PER_CALL} and greater than or equal to 1 (it has {})",
                    a.len()
                ));
            }
            Some(a) => a.iter().map(|r| &r["Data"]).collect(),
        }
    } else {
        vec![&call["Record"]["Data"]]
    };
    let mut datas = Vec::with_capacity(encoded.len());
    for (i, d) in encoded.iter().enumerate() {
        let field = if batch {
            format!("records.{}.member.data", i + 1)
        } else {
            "record.data".to_owned()
        };
        let Some(text) = d.as_str() else {
            return Reply::validation(format!(
                "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
            ));
        };
        let Ok(data) = B64.decode(text) else {
            return Reply::error(400, "SerializationException", format!("'{field}' is not valid base64"));
        };
        if data.len() > FIREHOSE_MAX_RECORD_BYTES {
            return Reply::validation(format!(
                "1 validation error detected: Value at '{field}' failed to satisfy constraint: Member must have length less than or equal to {FIREHOSE_MAX_RECORD_BYTES} (it has {})",
                data.len()
            ));
        }
        datas.push(data);
    }
    let total: usize = datas.iter().map(Vec::len).sum();
    if total > FIREHOSE_MAX_CALL_BYTES {
        return Reply::error(
            400,
            "InvalidArgumentException",
            format!(
                "Records size exceeds 4 MB limit ({total} bytes of record data; the limit is {FIREHOSE_MAX_CALL_BYTES})"
            ),
        );
    }

    let (fault, latency, failed) = {
        let Ok(mut f) = inner.faults.lock() else {
            return Reply::error(500, "InternalFailure", "firehose-local's fault state is poisoned");
        };
        let fault = f.draw(Some(&stream.config.name));
        let failed = match fault {
            Fault::Partial if batch => f.failed_records(datas.len()),
            _ => vec![false; datas.len()],
        };
        f.enter();
        (fault, f.plan().latency_ms, failed)
    };
    let reply = answer(inner, stream, batch, fault, latency, datas, &failed);
    if !reply.hang
        && let Ok(mut f) = inner.faults.lock()
    {
        f.leave();
    }
    reply
}

/// The answer to a put whose fate is drawn: refused, or its records kept.
fn answer(
    inner: &Inner,
    stream: &super::stream::Stream,
    batch: bool,
    fault: Fault,
    latency: u64,
    datas: Vec<Vec<u8>>,
    failed: &[bool],
) -> Reply {
    if latency > 0 {
        std::thread::sleep(Duration::from_millis(latency));
    }
    match fault {
        Fault::Outage => {
            return Reply::throttled(
                "Firehose is unavailable (an outage injected by firehose-local). Back off and retry.",
            );
        }
        // A single PutRecord cannot fail partly: it is throttled instead.
        Fault::Throttle | Fault::Partial if !batch => return Reply::throttled("Slow down."),
        Fault::Throttle => return Reply::throttled("Slow down."),
        Fault::ServerError => {
            return Reply::error(
                500,
                "InternalFailure",
                "An internal error (injected by firehose-local).",
            );
        }
        Fault::Hang => return Reply::hang(),
        Fault::LostResponse | Fault::Partial | Fault::None => {}
    }

    let arrival = now().as_millis();
    let mut records = Vec::new();
    let mut answers = Vec::with_capacity(datas.len());
    let throttled = Service::Firehose.throttled().1;
    for (data, failed) in datas.into_iter().zip(failed) {
        if *failed {
            answers.push(json!({"ErrorCode": throttled, "ErrorMessage": "Slow down."}));
            continue;
        }
        let id = record_id();
        answers.push(json!({"RecordId": id}));
        records.push(Record {
            id,
            arrival_ms: arrival,
            data,
        });
    }
    let (n, bytes) = (
        records.len() as u64,
        records.iter().map(|r| r.data.len() as u64).sum::<u64>(),
    );
    let lines = records
        .iter()
        .map(|r| r.data.iter().filter(|&&b| b == b'\n').count() as u64)
        .sum::<u64>();
    if let Err(e) = stream.accept(&inner.store, records) {
        eprintln!("firehose-local: could not spool records: {e}");
        return Reply::error(
            500,
            "InternalFailure",
            "firehose-local could not keep the records (see its log)",
        );
    }
    let c = &inner.counters;
    c.calls.fetch_add(1, Ordering::Relaxed);
    c.records_received.fetch_add(n, Ordering::Relaxed);
    c.bytes_received.fetch_add(bytes, Ordering::Relaxed);
    c.lines_received.fetch_add(lines, Ordering::Relaxed);
    if fault == Fault::LostResponse {
        return Reply::error(
            500,
            "InternalFailure",
            "An internal error after the records were kept (a lost answer, injected by firehose-local).",
        );
    }
    if batch {
        let failed_count = failed.iter().filter(|&&f| f).count();
        Reply::json(
            200,
            &json!({"FailedPutCount": failed_count, "Encrypted": false, "RequestResponses": answers}),
        )
    } else {
        Reply::json(200, &json!({"RecordId": answers[0]["RecordId"], "Encrypted": false}))
    }
}

/// A Firehose-style record id (opaque, unique): two random UUIDs' hex.
pub(super) fn record_id() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

fn describe(inner: &Inner, call: &Value) -> Reply {
    let stream = match stream(inner, call) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let c = &stream.config;
    let mut destination = json!({
        "RoleARN": format!("arn:aws:iam::{ACCOUNT}:role/firehose-local"),
        "BucketARN": "arn:aws:s3:::firehose-local",
        "Prefix": c.prefix,
        "ErrorOutputPrefix": c.error_prefix,
        "BufferingHints": {
            "SizeInMBs": c.buffer_bytes.div_ceil(1024 * 1024),
            "IntervalInSeconds": c.buffer_interval.as_secs(),
        },
        "CompressionFormat": if c.gzip { "GZIP" } else { "UNCOMPRESSED" },
        "EncryptionConfiguration": {"NoEncryptionConfig": "NoEncryption"},
    });
    if let Some(t) = &inner.transform {
        destination["ProcessingConfiguration"] = json!({
            "Enabled": true,
            "Processors": [{"Type": "Lambda", "Parameters": [
                {"ParameterName": "LambdaArn", "ParameterValue": t.arn},
                {"ParameterName": "NumberOfRetries", "ParameterValue": t.retries.to_string()},
                {"ParameterName": "BufferSizeInMBs", "ParameterValue": c.processor_bytes.div_ceil(1024 * 1024).to_string()},
            ]}],
        });
    }
    Reply::json(
        200,
        &json!({"DeliveryStreamDescription": {
            "DeliveryStreamName": c.name,
            "DeliveryStreamARN": stream.arn,
            "DeliveryStreamStatus": "ACTIVE",
            "DeliveryStreamType": "DirectPut",
            "VersionId": "1",
            "CreateTimestamp": stream.created,
            "Destinations": [{"DestinationId": "destinationId-000000000001", "ExtendedS3DestinationDescription": destination}],
            "HasMoreDestinations": false,
        }}),
    )
}

fn control(inner: &Inner, method: &str, path: &str, body: &[u8]) -> Reply {
    let ok = |v: Value| Reply {
        status: 200,
        content_type: "application/json",
        body: v.to_string().into_bytes(),
        hang: false,
    };
    let bad = |status: u16, message: String| Reply {
        status,
        content_type: "application/json",
        body: json!({"error": message}).to_string().into_bytes(),
        hang: false,
    };
    match (method, path) {
        ("GET", "stats") => ok(json!(inner.stats())),
        ("GET", "faults") => {
            let (plan, left) = inner
                .faults
                .lock()
                .map(|f| (f.plan().clone(), f.outage_left()))
                .unwrap_or_default();
            ok(json!({"plan": plan, "outage_left_secs": left}))
        }
        ("PUT" | "POST", "faults") => {
            let plan: FaultPlan = match serde_json::from_slice(body) {
                Ok(p) => p,
                Err(e) => {
                    return bad(
                        400,
                        format!(
                            "a fault plan is JSON with throttle, partial, errors, lost_response, hang (shares 0..1), latency_ms, outage_secs, throttle_stream: {e}"
                        ),
                    );
                }
            };
            if let Err(e) = plan.check() {
                return bad(400, e.to_string());
            }
            match inner.faults.lock() {
                Ok(mut f) => {
                    let answer = ok(json!({"plan": plan}));
                    f.set(plan);
                    answer
                }
                Err(_) => bad(500, "poisoned".into()),
            }
        }
        ("POST", "flush") => match inner.flush(Duration::from_secs(120)) {
            Ok(()) => ok(json!(inner.stats())),
            Err(e) => bad(503, e.to_string()),
        },
        _ => bad(
            404,
            format!("{method} {CONTROL_PREFIX}{path}: the control API has GET stats, GET/PUT faults, POST flush"),
        ),
    }
}
