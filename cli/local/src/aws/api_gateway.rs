//! The API Gateway path, locally: an HTTP server that turns each request into
//! an API Gateway HTTP API (payload format 2.0) event, invokes the real
//! `ingest-api` binary through the Runtime API, and answers with what the
//! function returned — the classic API Gateway → Lambda → Firehose path the
//! edge is compared against.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use aws_lambda_events::apigw::{
    ApiGatewayV2httpRequest, ApiGatewayV2httpRequestContext, ApiGatewayV2httpRequestContextHttpDescription,
};
use aws_lambda_events::query_map::QueryMap;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use edgehose_shared::sigv4::percent_decode;
use serde_json::Value;

use crate::aws::lambda_runtime::{Function, RawOutcome, RuntimeApi};
use crate::error::{Error, Result};

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
    pub fn start(listen: &str, binary: &Path, env: &[(&str, &str)], log_file: Option<&Path>) -> Result<Self> {
        let api = RuntimeApi::start()?;
        let function = api.spawn_logged(binary, "edgehose-ingest-api", env, log_file, None)?;
        let server = tiny_http::Server::http(listen).map_err(|e| Error::listen(listen, e))?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| Error::config(format!("{listen} is not an IP address and port")))?;
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
    pub fn billing(&self) -> crate::aws::lambda_runtime::Billing {
        self.shared.api.billing()
    }

    /// What the function printed recently.
    pub fn log(&self) -> String {
        self.shared
            .function
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .log()
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
        let invoked = event_for(&request, &body, port)
            .and_then(|event| shared.api.invoke_raw(event.to_string(), INTEGRATION_TIMEOUT));
        match invoked {
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

/// The HTTP API payload format 2.0 event for a request, built as
/// `aws_lambda_events`' typed request
/// (<https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html>):
/// repeated headers joined with commas, the `cookie` header moved to
/// `cookies`, `queryStringParameters` decoded (a repeated name's values
/// joined with commas), the body base64 when it is not text or is encoded.
fn event_for(request: &tiny_http::Request, body: &[u8], port: u16) -> Result<Value> {
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|h| (h.field.as_str().as_str().to_owned(), h.value.as_str().to_owned()))
        .collect();
    let arrived = Arrived {
        method: request.method().as_str(),
        url: request.url(),
        http_version: request.http_version().to_string(),
        source_ip: request.remote_addr().map(|a| a.ip().to_string()),
        headers: &headers,
        body,
    };
    event_of(&arrived, port, crate::clock::now())
}

/// A request as it arrived, taken apart.
struct Arrived<'a> {
    method: &'a str,
    url: &'a str,
    http_version: String,
    source_ip: Option<String>,
    headers: &'a [(String, String)],
    body: &'a [u8],
}

fn event_of(arrived: &Arrived<'_>, port: u16, now: edgehose_shared::timestamp::Timestamp) -> Result<Value> {
    let body = arrived.body;
    let (path, query) = arrived.url.split_once('?').unwrap_or((arrived.url, ""));
    let mut joined: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in arrived.headers {
        let name = name.to_ascii_lowercase();
        let value = value.as_str();
        joined
            .entry(name)
            .and_modify(|prev| {
                prev.push(',');
                prev.push_str(value);
            })
            .or_insert_with(|| value.to_owned());
    }
    let cookies: Option<Vec<String>> = joined.remove("cookie").map(|c| {
        c.split(';')
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect()
    });
    let mut headers = http::HeaderMap::new();
    for (name, value) in &joined {
        if let (Ok(n), Ok(v)) = (
            http::header::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(value),
        ) {
            headers.insert(n, v);
        }
    }
    let mut params: HashMap<String, Vec<String>> = HashMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| String::from_utf8_lossy(&percent_decode(s)).into_owned();
        params.entry(decode(k)).or_default().push(decode(v));
    }
    let binary = joined
        .get("content-encoding")
        .is_some_and(|e| !e.eq_ignore_ascii_case("identity"));
    let (body_text, encoded) = match std::str::from_utf8(body) {
        Ok(t) if !binary => (t.to_owned(), false),
        _ => (B64.encode(body), true),
    };
    let mut http_description = ApiGatewayV2httpRequestContextHttpDescription::default();
    // tiny_http only hands on requests with a valid method.
    http_description.method = http::Method::from_bytes(arrived.method.as_bytes()).unwrap_or(http::Method::GET);
    http_description.path = Some(path.to_owned());
    http_description.protocol = Some(format!("HTTP/{}", arrived.http_version));
    http_description.source_ip = arrived.source_ip.clone();
    http_description.user_agent = joined.get("user-agent").cloned();
    let mut context = ApiGatewayV2httpRequestContext::default();
    context.route_key = Some("$default".into());
    context.account_id = Some(crate::aws::firehose::ACCOUNT.into());
    context.stage = Some("$default".into());
    context.request_id = Some(uuid::Uuid::new_v4().to_string());
    context.apiid = Some("local".into());
    context.domain_name = Some(format!("127.0.0.1:{port}"));
    context.domain_prefix = Some("local".into());
    context.time = Some(now.to_rfc3339());
    context.time_epoch = now.as_millis();
    context.http = http_description;
    let mut event = ApiGatewayV2httpRequest::default();
    event.version = Some("2.0".into());
    event.route_key = Some("$default".into());
    event.raw_path = Some(path.to_owned());
    event.raw_query_string = Some(query.to_owned());
    event.cookies = cookies;
    event.headers = headers;
    event.query_string_parameters = QueryMap::from(params);
    event.request_context = context;
    event.body = (!body.is_empty()).then_some(body_text);
    event.is_base64_encoded = encoded;
    serde_json::to_value(&event).map_err(|e| Error::json("the API Gateway event", e))
}

/// Status, headers and body of a function's response (format 2.0: an object
/// with `statusCode`, or any other JSON, which API Gateway returns as 200).
fn response_of(raw: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let v: Value = serde_json::from_str(raw).unwrap_or(Value::Null);
    let Some(status) = v["statusCode"].as_u64() else {
        return (200, Vec::new(), raw.as_bytes().to_vec());
    };
    let headers = crate::tools::string_members(&v["headers"]);
    // No body is an empty one, as on AWS.
    let body = v["body"].as_str().unwrap_or_default();
    let body = if v["isBase64Encoded"].as_bool() == Some(true) {
        match B64.decode(body) {
            Ok(bytes) => bytes,
            // API Gateway answers a malformed integration response this way,
            // never with an empty 200.
            Err(_) => return (500, Vec::new(), br#"{"message":"Internal Server Error"}"#.to_vec()),
        }
    } else {
        body.as_bytes().to_vec()
    };
    (u16::try_from(status).unwrap_or(500), headers, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cookies_and_query_parameters_arrive_as_on_aws() {
        let headers = [
            ("Cookie".to_owned(), "a=1; b=2".to_owned()),
            ("X-Thing".to_owned(), "one".to_owned()),
            ("x-thing".to_owned(), "two".to_owned()),
            ("Content-Type".to_owned(), "application/json".to_owned()),
        ];
        let arrived = Arrived {
            method: "POST",
            url: "/v1/events?k=v%20w&k=x&empty",
            http_version: "1.1".into(),
            source_ip: Some("127.0.0.1".into()),
            headers: &headers,
            body: br#"{"event":"click"}"#,
        };
        let v = event_of(
            &arrived,
            8788,
            edgehose_shared::timestamp::Timestamp::from_millis(1_714_566_600_000),
        )
        .unwrap();
        assert_eq!(v["version"], "2.0");
        assert_eq!(v["cookies"], json!(["a=1", "b=2"]));
        assert!(v["headers"].get("cookie").is_none(), "{v:#}");
        assert_eq!(v["headers"]["x-thing"], "one,two");
        assert_eq!(v["queryStringParameters"], json!({"k": "v w,x", "empty": ""}));
        assert_eq!(v["rawQueryString"], "k=v%20w&k=x&empty");
        assert_eq!(v["requestContext"]["http"]["method"], "POST");
        assert_eq!(v["requestContext"]["timeEpoch"], 1_714_566_600_000i64);
        assert_eq!(
            (v["body"].as_str(), v["isBase64Encoded"].as_bool()),
            (Some(r#"{"event":"click"}"#), Some(false))
        );
        // lambda_http reads it back as the same typed request.
        let back: ApiGatewayV2httpRequest = serde_json::from_value(v).unwrap();
        assert_eq!(back.query_string_parameters.all("k"), Some(vec!["v w", "x"]));
        assert_eq!(back.cookies.unwrap_or_default(), ["a=1", "b=2"]);
    }

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
