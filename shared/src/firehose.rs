//! The Firehose wire format: the `PutRecordBatch` request (its URL, headers
//! and body; as an `http::Request<Vec<u8>>` with the `http` feature), its
//! response as a typed outcome, and the event Firehose invokes a
//! data-transformation function with.
//!
//! Protocol: AWS JSON 1.1 (`Content-Type: application/x-amz-json-1.1`,
//! `X-Amz-Target: Firehose_20150804.PutRecordBatch`), records' `Data` in
//! base64 (<https://docs.aws.amazon.com/firehose/latest/APIReference/API_PutRecordBatch.html>).

use base64::Engine;
use serde::{Deserialize, Serialize};

#[cfg(feature = "http")]
use crate::aws::Endpoint;
use crate::aws::{self, Answered, CONTENT_TYPE_JSON_1_1, CallError, ConfigError, PutOutcome};

/// `X-Amz-Target` for `PutRecordBatch`.
pub const TARGET_PUT_RECORD_BATCH: &str = "Firehose_20150804.PutRecordBatch";
/// The SigV4 service name for Firehose, and its endpoints' first label.
pub const SIGNING_SERVICE: &str = "firehose";

/// The event Firehose invokes a data-transformation function with
/// (<https://docs.aws.amazon.com/firehose/latest/dev/data-transformation.html>).
/// Records keep their data as the base64 text it travels in, so the function
/// can decode each where it transforms it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransformEvent {
    /// The invocation's id.
    #[serde(default)]
    pub invocation_id: String,
    /// The delivery stream's ARN.
    #[serde(default)]
    pub delivery_stream_arn: String,
    /// The stream's region.
    #[serde(default)]
    pub region: String,
    /// The records to transform.
    pub records: Vec<TransformRecord>,
}

/// One record of a [`TransformEvent`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransformRecord {
    /// Its id, echoed in the answer.
    pub record_id: String,
    /// When Firehose received it, ms since the epoch.
    #[serde(default)]
    pub approximate_arrival_timestamp: i64,
    /// The data, base64.
    pub data: String,
}

/// Checks a delivery stream name against Firehose's pattern.
pub fn check_stream_name(name: &str) -> Result<(), ConfigError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Name {
            what: "delivery stream name",
            name: name.to_owned(),
            rule: "1 to 64 characters from a-z, A-Z, 0-9, '_', '.', '-'",
        })
    }
}

/// Bytes of a `PutRecordBatch` body with no records, for this stream.
pub fn body_overhead(stream: &str) -> usize {
    // {"DeliveryStreamName":"<name>","Records":[]}
    r#"{"DeliveryStreamName":"","Records":[]}"#.len() + stream.len()
}

/// Bytes one record adds to the body (without the comma between records):
/// `{"Data":"<base64>"}`.
pub fn record_entry_bytes(data_len: usize) -> usize {
    r#"{"Data":""}"#.len() + data_len.div_ceil(3) * 4
}

/// The JSON body of a `PutRecordBatch` call. The stream name must have passed
/// [`check_stream_name`] (its characters need no escaping).
pub fn put_record_batch_body<'a>(stream: &str, records: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut body = Vec::with_capacity(body_overhead(stream));
    body.extend_from_slice(br#"{"DeliveryStreamName":""#);
    body.extend_from_slice(stream.as_bytes());
    body.extend_from_slice(br#"","Records":["#);
    for (i, data) in records.into_iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(br#"{"Data":""#);
        let start = body.len();
        body.resize(start + data.len().div_ceil(3) * 4, 0);
        // The buffer was sized to exactly the encoded length.
        let _ = base64::engine::general_purpose::STANDARD.encode_slice(data, &mut body[start..]);
        body.extend_from_slice(br#""}"#);
    }
    body.extend_from_slice(b"]}");
    body
}

/// The headers of every `PutRecordBatch` call but `host` (which HTTP stacks
/// set from the URL) and the signature's: the JSON 1.1 protocol's.
pub const PUT_RECORD_BATCH_HEADERS: [(&str, &str); 2] = [
    ("content-type", CONTENT_TYPE_JSON_1_1),
    ("x-amz-target", TARGET_PUT_RECORD_BATCH),
];

/// The unsigned `PutRecordBatch` request: sign it with [`crate::sigv4::sign::sign`].
#[cfg(feature = "http")]
pub fn put_record_batch_request<'a>(
    endpoint: &Endpoint,
    stream: &str,
    records: impl IntoIterator<Item = &'a [u8]>,
) -> Result<http::Request<Vec<u8>>, ConfigError> {
    check_stream_name(stream)?;
    let body = put_record_batch_body(stream, records);
    let mut builder = http::Request::post(endpoint.url()).header(http::header::HOST, endpoint.host());
    for (name, value) in PUT_RECORD_BATCH_HEADERS {
        builder = builder.header(name, value);
    }
    builder
        .body(body)
        .map_err(|_| ConfigError::Endpoint(endpoint.url().to_owned()))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutResponse {
    failed_put_count: usize,
    request_responses: Vec<Answered>,
}

/// Reads a `PutRecordBatch` response for a request of `sent` records.
///
/// `error_type` is the `x-amzn-ErrorType` header and `date` the `Date` header,
/// when present.
pub fn parse_put_record_batch_response(
    status: u16,
    error_type: Option<&str>,
    date: Option<&str>,
    body: &[u8],
    sent: usize,
) -> Result<PutOutcome, CallError> {
    aws::read_put_answer(status, error_type, date, body, sent, |r: PutResponse| {
        (r.request_responses, Some(r.failed_put_count), "FailedPutCount")
    })
}

#[cfg(test)]
mod tests;
