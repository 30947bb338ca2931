//! The API Gateway path, locally: an HTTP server that turns each request into
//! an API Gateway HTTP API (payload format 2.0) event, invokes the real
//! `ingest-api` binary through the Runtime API, and answers with what the
//! function returned — the classic API Gateway → Lambda → Firehose path the
//! edge is compared against.

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use crate::firehose::store;
use crate::runtime_api::{Function, RawOutcome, RuntimeApi};

/// API Gateway's payload limit (10 MB); larger bodies get its 413.
const MAX_PAYLOAD_BYTES: usize = 10 * 1024 * 1024;
/// API Gateway's integration timeout for HTTP APIs (30 s).
const INTEGRATION_TIMEOUT: Duration = Duration::from_secs(30);

/// The running front end and its function.
pub struct ApiGateway {
    url: String,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    shared: Arc<Shared>,
}

struct Shared {
    /// Declared before `api` so it is dropped (killed) first: a function that
    /// outlived its Runtime API would be refused its next event and panic in
    /// `lambda_runtime`, as no real Lambda sandbox ever sees.
    function: Mutex<Function>,
    api: RuntimeApi,
    accepted_events: AtomicU64,
}

impl ApiGateway {
    /// Starts `binary` (the `ingest-api` function) with `env`, and serves on `listen`.
    pub fn start(listen: &str, binary: &Path, env: &[(&str, &str)], log_file: Option<&Path>) -> Result<Self, String> {
        let api = RuntimeApi::start()?;
        let function = api.spawn_logged(binary, "edgehose-ingest-api", env, log_file)?;
        let server = tiny_http::Server::http(listen).map_err(|e| format!("listening on {listen}: {e}"))?;
        let addr = server.server_addr().to_ip().ok_or("not an IP address")?;
        let shared = Arc::new(Shared {
            function: Mutex::new(function),
            api,
            accepted_events: AtomicU64::new(0),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let server = Arc::new(server);
        // One function instance answers one request at a time, as in Lambda;
        // a few threads keep the accept queue moving.
        let threads = (0..4)
            .map(|_| {
                let (server, shared, stop) = (server.clone(), shared.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        if let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(100)) {
                            handle(&shared, request, addr.port());
                        }
                    }
                })
            })
            .collect();
        Ok(Self {
            url: format!("http://{addr}"),
            stop,
            threads,
            shared,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Events the function accepted (from its `{"accepted": N}` answers).
    pub fn accepted_events(&self) -> u64 {
        self.shared.accepted_events.load(Ordering::Relaxed)
    }

    /// What Lambda would bill for the function's invocations so far.
    pub fn billing(&self) -> crate::runtime_api::Billing {
        self.shared.api.billing()
    }

    /// What the function printed recently.
    pub fn log(&self) -> String {
        self.shared.function.lock().map(|f| f.log()).unwrap_or_default()
    }
}

impl Drop for ApiGateway {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn handle(shared: &Shared, mut request: tiny_http::Request, port: u16) {
    let mut body = Vec::new();
    let read = request
        .as_reader()
        .take(MAX_PAYLOAD_BYTES as u64 + 1)
        .read_to_end(&mut body);
    let (status, headers, reply) = if read.is_err() {
        (400, Vec::new(), br#"{"message":"Bad Request"}"#.to_vec())
    } else if body.len() > MAX_PAYLOAD_BYTES {
        (413, Vec::new(), br#"{"message":"Request Entity Too Large"}"#.to_vec())
    } else {
        let event = event_for(&request, &body, port);
        match shared.api.invoke_raw(event.to_string(), INTEGRATION_TIMEOUT) {
            Ok(RawOutcome::Response(r)) => {
                let (status, headers, body) = response_of(&r);
                if status == 200
                    && let Some(n) = serde_json::from_slice::<Value>(&body)
                        .ok()
                        .and_then(|v| v["accepted"].as_u64())
                {
                    shared.accepted_events.fetch_add(n, Ordering::Relaxed);
                }
                (status, headers, body)
            }
            // What API Gateway answers when the integration fails.
            Ok(RawOutcome::Error(_)) | Err(_) => (500, Vec::new(), br#"{"message":"Internal Server Error"}"#.to_vec()),
        }
    };
    let mut response = tiny_http::Response::from_data(reply).with_status_code(status);
    let mut typed = false;
    for (k, v) in headers {
        typed |= k.eq_ignore_ascii_case("content-type");
        if let Ok(h) = tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()) {
            response.add_header(h);
        }
    }
    if !typed && let Ok(h) = tiny_http::Header::from_bytes(&b"content-type"[..], &b"application/json"[..]) {
        response.add_header(h);
    }
    let _ = request.respond(response);
}

/// The HTTP API payload format 2.0 event for a request
/// (<https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html>).
fn event_for(request: &tiny_http::Request, body: &[u8], port: u16) -> Value {
    let url = request.url();
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let mut headers = serde_json::Map::new();
    for h in request.headers() {
        let name = h.field.as_str().as_str().to_ascii_lowercase();
        let value = h.value.as_str();
        // Repeated headers are joined with commas, as API Gateway does.
        let joined = match headers.get(&name).and_then(Value::as_str) {
            Some(prev) => format!("{prev},{value}"),
            None => value.to_owned(),
        };
        headers.insert(name, Value::String(joined));
    }
    let text = std::str::from_utf8(body).ok();
    let binary = headers
        .get("content-encoding")
        .and_then(Value::as_str)
        .is_some_and(|e| !e.eq_ignore_ascii_case("identity"));
    let (body_field, encoded) = match text {
        Some(t) if !binary => (Value::String(t.to_owned()), false),
        _ => (Value::String(B64.encode(body)), true),
    };
    let now = crate::clock::now();
    let source_ip = request.remote_addr().map(|a| a.ip().to_string()).unwrap_or_default();
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": crate::firehose::ACCOUNT,
            "apiId": "local",
            "domainName": format!("127.0.0.1:{port}"),
            "domainPrefix": "local",
            "http": {
                "method": request.method().as_str(),
                "path": path,
                "protocol": format!("HTTP/{}", request.http_version()),
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent").and_then(Value::as_str).unwrap_or_default(),
            },
            "requestId": store::uuid(),
            "routeKey": "$default",
            "stage": "$default",
            "time": now.to_rfc3339(),
            "timeEpoch": now.as_millis(),
        },
        "body": body_field,
        "isBase64Encoded": encoded,
    })
}

/// Status, headers and body of a function's response (format 2.0: an object
/// with `statusCode`, or any other JSON, which API Gateway returns as 200).
fn response_of(raw: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let v: Value = serde_json::from_str(raw).unwrap_or(Value::Null);
    let Some(status) = v["statusCode"].as_u64() else {
        return (200, Vec::new(), raw.as_bytes().to_vec());
    };
    let headers = crate::tools::string_members(&v["headers"]);
    let body = v["body"].as_str().unwrap_or_default();
    let body = if v["isBase64Encoded"].as_bool() == Some(true) {
        B64.decode(body).unwrap_or_default()
    } else {
        body.as_bytes().to_vec()
    };
    (u16::try_from(status).unwrap_or(500), headers, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_format_2_response_gives_status_headers_and_body() {
        let (s, h, b) = response_of(
            r#"{"statusCode":413,"headers":{"content-type":"application/json"},"body":"{\"error\":\"too big\"}","isBase64Encoded":false}"#,
        );
        assert_eq!(
            (s, h.len(), b.as_slice()),
            (413, 1, br#"{"error":"too big"}"#.as_slice())
        );
        let (s, _, b) = response_of(r#"{"statusCode":200,"body":"aGk=","isBase64Encoded":true}"#);
        assert_eq!((s, b.as_slice()), (200, b"hi".as_slice()));
        // Anything else is returned as a 200 with the JSON as the body.
        assert_eq!(response_of(r#"{"x":1}"#).0, 200);
    }
}
