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

use crate::timestamp::Timestamp;

/// The JSON 1.1 media type every Firehose call uses.
pub const CONTENT_TYPE_JSON_1_1: &str = "application/x-amz-json-1.1";
/// `X-Amz-Target` for `PutRecordBatch`.
pub const TARGET_PUT_RECORD_BATCH: &str = "Firehose_20150804.PutRecordBatch";
/// The SigV4 service name for Firehose.
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

/// A setting Firehose would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Stream names are 1..=64 of `[a-zA-Z0-9_.-]`.
    #[error("delivery stream name {0:?} is invalid: use 1 to 64 characters from a-z, A-Z, 0-9, '_', '.', '-'")]
    StreamName(String),
    /// Regions look like `eu-west-1`.
    #[error("region {0:?} is invalid: expected a name such as eu-west-1")]
    Region(String),
    /// An endpoint override must be an absolute http(s) URL.
    #[error("endpoint {0:?} is invalid: expected an absolute http:// or https:// URL")]
    Endpoint(String),
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
        Err(ConfigError::StreamName(name.to_owned()))
    }
}

/// Where Firehose calls go: an absolute `http` or `https` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    url: String,
    scheme_len: usize,
    authority_len: usize,
}

impl Endpoint {
    /// The public regional endpoint, `https://firehose.<region>.amazonaws.com/`
    /// (`.amazonaws.com.cn` in the China regions).
    pub fn for_region(region: &str) -> Result<Self, ConfigError> {
        let ok = (1..=32).contains(&region.len())
            && region.contains('-')
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            return Err(ConfigError::Region(region.to_owned()));
        }
        let suffix = if region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        Self::parse(&format!("https://firehose.{region}.{suffix}/"))
    }

    /// An explicit endpoint, for local stand-ins and VPC endpoints:
    /// `http(s)://host[:port][/path]`, no user, query or fragment. The path
    /// defaults to `/`. Scheme and host are lower-cased and the port written
    /// as a plain number, as `fetch` sends them, so the host signed is the
    /// host sent.
    pub fn parse(url: &str) -> Result<Self, ConfigError> {
        let bad = || ConfigError::Endpoint(url.to_owned());
        let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
        let scheme = scheme.to_ascii_lowercase();
        if !matches!(scheme.as_str(), "http" | "https") {
            return Err(bad());
        }
        let (authority, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
        let path_ok = path.bytes().all(|b| b.is_ascii_graphic() && !b"?#".contains(&b));
        let authority = normalized_authority(authority).filter(|_| path_ok).ok_or_else(bad)?;
        Ok(Self {
            url: format!("{scheme}://{authority}{path}"),
            scheme_len: scheme.len(),
            authority_len: authority.len(),
        })
    }

    /// The URL requests are sent to, e.g. `https://firehose.eu-west-1.amazonaws.com/`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &str {
        &self.url[..self.scheme_len]
    }

    /// The host and port, as in the URL.
    pub fn authority(&self) -> &str {
        let start = self.scheme_len + 3;
        &self.url[start..start + self.authority_len]
    }

    /// The path, `/` at least.
    pub fn path(&self) -> &str {
        &self.url[self.scheme_len + 3 + self.authority_len..]
    }

    /// The `host` header requests carry and sign (the authority without the
    /// scheme's default port).
    pub fn host(&self) -> &str {
        crate::sign::host_of(self.scheme(), self.authority())
    }

    /// What a call to this endpoint signs besides its headers and body.
    pub fn target(&self) -> crate::sign::Target<'_> {
        crate::sign::Target {
            method: "POST",
            host: self.host(),
            path: self.path(),
            query: "",
        }
    }
}

/// `host[:port]` as `fetch` writes it, or `None` if it is not one: a DNS
/// name or IPv4 address (lower-cased), or an IPv6 address in brackets (in
/// its canonical form), and a port of digits that fits in 16 bits (written
/// without leading zeros).
fn normalized_authority(authority: &str) -> Option<String> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (ip, rest) = v6.split_once(']')?;
            let ip: std::net::Ipv6Addr = ip.parse().ok()?;
            (format!("[{ip}]"), rest)
        }
        None => {
            let (host, port) = authority.find(':').map_or((authority, ""), |i| authority.split_at(i));
            let name = !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
            if !name {
                return None;
            }
            (host.to_ascii_lowercase(), port)
        }
    };
    if port.is_empty() {
        return Some(host);
    }
    let digits = port
        .strip_prefix(':')
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))?;
    let port: u16 = digits.parse().ok()?;
    Some(format!("{host}:{port}"))
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

/// The unsigned `PutRecordBatch` request: sign it with [`crate::sign::sign`].
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

/// A `PutRecordBatch` that Firehose answered with 200: which records failed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PutOutcome {
    /// How many records were sent.
    pub sent: usize,
    /// The failed records, in request order, with their index in the request.
    pub failed: Vec<FailedRecord>,
}

impl PutOutcome {
    /// Whether every record landed.
    pub fn all_delivered(&self) -> bool {
        self.failed.is_empty()
    }
}

/// One record Firehose did not take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedRecord {
    /// Its index in the request.
    pub index: usize,
    /// `ServiceUnavailableException` or `InternalFailure`, usually.
    pub code: String,
    /// Firehose's message.
    pub message: String,
}

/// A `PutRecordBatch` that failed as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FirehoseError {
    /// Throttled: the stream's request, record or byte quota was exceeded.
    #[error("throttled by Firehose ({code}): {message}")]
    Throttled {
        /// The AWS error code.
        code: String,
        /// AWS's message.
        message: String,
    },
    /// The delivery stream does not exist in this account and region.
    #[error("delivery stream not found: {message}")]
    ResourceNotFound {
        /// AWS's message.
        message: String,
    },
    /// The signature does not match: a wrong secret, or a request changed after signing.
    #[error("request signature rejected ({code}): {message}")]
    InvalidSignature {
        /// `InvalidSignatureException`, `SignatureDoesNotMatch`, …
        code: String,
        /// AWS's message.
        message: String,
    },
    /// The signature's time is too far from AWS's clock.
    #[error("request signature expired or not yet valid (clock skew): {message}")]
    SignatureExpired {
        /// AWS's message.
        message: String,
        /// AWS's time, from the response `Date` header, to learn the skew from.
        server_time: Option<Timestamp>,
    },
    /// The access key is unknown or its session has expired.
    #[error("credentials not recognised ({code}): {message}")]
    UnrecognizedCredentials {
        /// `UnrecognizedClientException`, `InvalidClientTokenId`, `ExpiredTokenException`.
        code: String,
        /// AWS's message.
        message: String,
    },
    /// The key is valid but may not put records to this stream.
    #[error("not authorized ({code}): {message}")]
    AccessDenied {
        /// `AccessDeniedException`, …
        code: String,
        /// AWS's message.
        message: String,
    },
    /// The request itself is invalid (a limit, a bad field).
    #[error("invalid request ({code}): {message}")]
    InvalidRequest {
        /// `InvalidArgumentException`, `ValidationException`, …
        code: String,
        /// AWS's message.
        message: String,
    },
    /// A server-side fault (HTTP 5xx).
    #[error("Firehose server error {status} ({code}): {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// The AWS error code, when given.
        code: String,
        /// AWS's message.
        message: String,
    },
    /// The request never got an answer (connection refused, reset).
    #[error("could not reach Firehose: {0}")]
    Transport(String),
    /// No answer came within the time the call was given.
    #[error("Firehose did not answer within {after_ms} ms")]
    TimedOut {
        /// How long the call was given.
        after_ms: u64,
    },
    /// The request could not be built or signed here: nothing was sent, and
    /// sending it again would fail the same way.
    #[error("the request could not be built: {0}")]
    Request(String),
    /// A response that fits none of the above.
    #[error("unexpected Firehose response {status}: {detail}")]
    Unexpected {
        /// HTTP status.
        status: u16,
        /// What was wrong with it (body excerpt).
        detail: String,
    },
}

impl FirehoseError {
    /// Whether resending the same records later can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Throttled { .. }
                | Self::Server { .. }
                | Self::SignatureExpired { .. }
                | Self::Transport(_)
                | Self::TimedOut { .. }
                | Self::Unexpected { .. }
        )
    }

    /// The AWS error code, or a short name for responses without one.
    pub fn code(&self) -> &str {
        match self {
            Self::Throttled { code, .. }
            | Self::InvalidSignature { code, .. }
            | Self::UnrecognizedCredentials { code, .. }
            | Self::AccessDenied { code, .. }
            | Self::InvalidRequest { code, .. } => code,
            Self::Server { code, .. } if !code.is_empty() => code,
            Self::Server { .. } => "ServerError",
            Self::ResourceNotFound { .. } => "ResourceNotFoundException",
            Self::SignatureExpired { .. } => "SignatureExpired",
            Self::Transport(_) => "TransportError",
            Self::TimedOut { .. } => "TimedOut",
            Self::Request(_) => "RequestNotBuilt",
            Self::Unexpected { .. } => "UnexpectedResponse",
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutResponse {
    failed_put_count: usize,
    request_responses: Vec<PutResponseEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutResponseEntry {
    #[serde(default)]
    record_id: Option<String>,
    #[serde(default)]
    error_code: Option<String>,
    #[serde(default)]
    error_message: Option<String>,
}

#[derive(Deserialize)]
struct JsonError {
    #[serde(default, rename = "__type")]
    kind: Option<String>,
    #[serde(default, alias = "Message")]
    message: Option<String>,
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
) -> Result<PutOutcome, FirehoseError> {
    if status == 200 {
        let resp: PutResponse = serde_json::from_slice(body).map_err(|e| FirehoseError::Unexpected {
            status,
            detail: format!("{e}: {}", excerpt(body)),
        })?;
        if resp.request_responses.len() != sent {
            return Err(FirehoseError::Unexpected {
                status,
                detail: format!("{} results for {sent} records", resp.request_responses.len()),
            });
        }
        let failed: Vec<FailedRecord> = resp
            .request_responses
            .into_iter()
            .enumerate()
            .filter(|(_, r)| r.error_code.is_some() || r.record_id.is_none())
            .map(|(index, r)| FailedRecord {
                index,
                code: r.error_code.unwrap_or_else(|| "InternalFailure".to_owned()),
                message: r.error_message.unwrap_or_default(),
            })
            .collect();
        if failed.len() != resp.failed_put_count {
            return Err(FirehoseError::Unexpected {
                status,
                detail: format!(
                    "FailedPutCount {} but {} failed entries",
                    resp.failed_put_count,
                    failed.len()
                ),
            });
        }
        return Ok(PutOutcome { sent, failed });
    }
    let (code, message) = error_code_and_message(error_type, body);
    Err(FirehoseError::classify(status, code, message, date))
}

/// The AWS error code and message of a failed response: from
/// `x-amzn-ErrorType`, a JSON `__type`, or an XML `<Code>` (auth failures can
/// come back as XML with `text/html`, even from JSON services).
fn error_code_and_message(error_type: Option<&str>, body: &[u8]) -> (String, String) {
    let short = |s: &str| {
        // "ns#Code", "Code:http://…" → "Code"
        let s = s.rsplit('#').next().unwrap_or(s);
        s.split(':').next().unwrap_or(s).trim().to_owned()
    };
    let mut code = error_type.map(short).filter(|c| !c.is_empty());
    let mut message = None;
    if let Ok(err) = serde_json::from_slice::<JsonError>(body) {
        code = code.or(err.kind.as_deref().map(short));
        message = err.message;
    } else if let Ok(text) = std::str::from_utf8(body) {
        code = code.or_else(|| xml_element(text, "Code"));
        message = xml_element(text, "Message");
    }
    (code.unwrap_or_default(), message.unwrap_or_else(|| excerpt(body)))
}

impl FirehoseError {
    /// Classifies a failed call from its HTTP status, AWS error code, message
    /// and `Date` header: the one mapping used for raw responses and for SDK
    /// errors alike.
    pub fn classify(status: u16, code: String, message: String, date: Option<&str>) -> FirehoseError {
        classify_error(status, code, message, date)
    }
}

fn classify_error(status: u16, code: String, message: String, date: Option<&str>) -> FirehoseError {
    let lower = message.to_ascii_lowercase();
    let expired = lower.contains("signature expired")
        || lower.contains("signature not yet current")
        || code == "RequestTimeTooSkewed"
        || code == "RequestExpired";
    if expired {
        return FirehoseError::SignatureExpired {
            message,
            server_time: date.and_then(Timestamp::parse_http_date),
        };
    }
    match code.as_str() {
        "ServiceUnavailableException"
        | "ThrottlingException"
        | "LimitExceededException"
        | "Throttling"
        | "TooManyRequestsException" => FirehoseError::Throttled { code, message },
        "ResourceNotFoundException" => FirehoseError::ResourceNotFound { message },
        "InvalidSignatureException"
        | "SignatureDoesNotMatch"
        | "IncompleteSignature"
        | "IncompleteSignatureException"
        | "MissingAuthenticationToken"
        | "MissingAuthenticationTokenException" => FirehoseError::InvalidSignature { code, message },
        "UnrecognizedClientException" | "InvalidClientTokenId" | "ExpiredTokenException" | "ExpiredToken" => {
            FirehoseError::UnrecognizedCredentials { code, message }
        }
        "AccessDeniedException" | "AccessDenied" | "NotAuthorized" => FirehoseError::AccessDenied { code, message },
        _ if status == 429 || status == 503 => FirehoseError::Throttled { code, message },
        _ if status >= 500 => FirehoseError::Server { status, code, message },
        _ if (400..500).contains(&status) && !code.is_empty() => FirehoseError::InvalidRequest { code, message },
        _ => FirehoseError::Unexpected {
            status,
            detail: if code.is_empty() {
                message
            } else {
                format!("{code}: {message}")
            },
        },
    }
}

/// The text of the first `<name>…</name>` element, with XML's five entities decoded.
fn xml_element(text: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = text.find(&open)? + open.len();
    let end = start + text[start..].find(&close)?;
    Some(
        text[start..end]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&")
            .trim()
            .to_owned(),
    )
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
    text.trim().to_owned()
}

#[cfg(test)]
mod tests;
