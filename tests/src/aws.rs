//! AWS calls signed with the shared crate's signer: JSON 1.1 (Firehose), the
//! query protocol (IAM) and S3's REST API, enough to set up and inspect an
//! emulator.

use edgehose_shared::sigv4::query_string;
use edgehose_shared::sigv4::sign::{Credentials, sign};

use edgehose_local::http::{Response, send};

/// The region every test uses.
pub const REGION: &str = "us-east-1";

/// The wall clock, for signing requests to services that check it.
use edgehose_local::clock::now;

/// A client for one endpoint with one key.
#[derive(Debug, Clone)]
pub struct AwsClient {
    endpoint: String,
    credentials: Credentials,
}

impl AwsClient {
    /// A client for `endpoint` (`http://127.0.0.1:PORT`) signing with `credentials`.
    pub fn new(endpoint: impl Into<String>, credentials: Credentials) -> Self {
        Self {
            endpoint: endpoint.into().trim_end_matches('/').to_owned(),
            credentials,
        }
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Signs `request` for `service` now and sends it.
    pub fn send_signed(&self, mut request: http::Request<Vec<u8>>, service: &str) -> Result<Response, String> {
        sign(&mut request, &self.credentials, REGION, service, now()).map_err(|e| e.to_string())?;
        Ok(send(request)?)
    }

    fn builder(&self, method: &str, path_and_query: &str) -> http::request::Builder {
        let host = self
            .endpoint
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .to_owned();
        http::Request::builder()
            .method(method)
            .uri(format!("{}{path_and_query}", self.endpoint))
            .header("host", host)
    }

    /// A JSON 1.1 call: `target` is `Prefix.Operation`.
    pub fn json(&self, service: &str, target: &str, body: &serde_json::Value) -> Result<Response, String> {
        let request = self
            .builder("POST", "/")
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", target)
            .body(body.to_string().into_bytes())
            .map_err(|e| e.to_string())?;
        self.send_signed(request, service)
    }

    /// A query-protocol call (IAM, STS): form-encoded parameters.
    pub fn query(&self, service: &str, params: &[(&str, &str)]) -> Result<Response, String> {
        let form = query_string(params);
        let request = self
            .builder("POST", "/")
            .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
            .body(form.into_bytes())
            .map_err(|e| e.to_string())?;
        self.send_signed(request, service)
    }

    /// An S3 REST call, path-style (`/bucket/key?query`).
    pub fn s3(&self, method: &str, path_and_query: &str, body: Vec<u8>) -> Result<Response, String> {
        let request = self
            .builder(method, path_and_query)
            .body(body)
            .map_err(|e| e.to_string())?;
        self.send_signed(request, "s3")
    }
}

/// The texts of every `<tag>…</tag>` element, in order (AWS's XML responses).
pub fn xml_values(text: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    text.split(&open)
        .skip(1)
        .filter_map(|rest| rest.split_once(&close).map(|(value, _)| value.replace("&amp;", "&")))
        .collect()
}
