//! One signed call in AWS's JSON protocol, for the local pieces that talk to
//! a stand-in as an AWS client would (firehose-local reading a Kinesis
//! stream, `edgehose dev` creating its stream or queue in moto).

use edgehose_shared::sigv4::sign::{Credentials, sign};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::http::send;

/// A service's JSON protocol: its target prefix, media type and signing name.
#[derive(Debug, Clone, Copy)]
pub struct Protocol {
    /// `X-Amz-Target`'s prefix, e.g. `Kinesis_20131202`.
    pub target_prefix: &'static str,
    /// `application/x-amz-json-1.1` or `-1.0`.
    pub content_type: &'static str,
    /// The SigV4 service name.
    pub service: &'static str,
}

/// Kinesis Data Streams.
pub const KINESIS: Protocol = Protocol {
    target_prefix: "Kinesis_20131202",
    content_type: "application/x-amz-json-1.1",
    service: "kinesis",
};

/// SQS.
pub const SQS: Protocol = Protocol {
    target_prefix: "AmazonSQS",
    content_type: "application/x-amz-json-1.0",
    service: "sqs",
};

/// `operation` with `body` at `endpoint`, signed for `region` with
/// `credentials`; the answer's JSON, or the status and body when not 200.
pub fn call(
    endpoint: &str,
    protocol: Protocol,
    operation: &str,
    body: &Value,
    region: &str,
    credentials: &Credentials,
) -> Result<Value> {
    let base = endpoint.trim_end_matches('/');
    let host = base.trim_start_matches("http://").trim_start_matches("https://");
    let mut request = http::Request::post(format!("{base}/"))
        .header("host", host)
        .header("content-type", protocol.content_type)
        .header("x-amz-target", format!("{}.{operation}", protocol.target_prefix))
        .body(body.to_string().into_bytes())?;
    sign(&mut request, credentials, region, protocol.service, crate::clock::now())?;
    let response = send(request)?;
    if response.status != 200 {
        return Err(Error::protocol(format!(
            "{operation}: HTTP {} {}",
            response.status,
            response.text()
        )));
    }
    serde_json::from_slice(&response.body).map_err(|e| Error::json(operation, e))
}
