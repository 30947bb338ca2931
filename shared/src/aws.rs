//! What every AWS call edgehose makes shares, whichever the service
//! (Firehose, Kinesis Data Streams, SQS; all speak AWS's JSON protocol): the
//! endpoint, the outcome of a call that puts many records (which of them
//! failed), and a failed call's error, read from its response and classified
//! once, so the retry plan and the delivery driver know every sink's errors.

use serde::Deserialize;

use crate::timestamp::Timestamp;

/// The JSON 1.1 media type of Firehose and Kinesis calls.
pub const CONTENT_TYPE_JSON_1_1: &str = "application/x-amz-json-1.1";
/// The JSON 1.0 media type of SQS calls.
pub const CONTENT_TYPE_JSON_1_0: &str = "application/x-amz-json-1.0";

/// A setting AWS would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A stream or queue name outside its service's pattern.
    #[error("{what} {name:?} is invalid: use {rule}")]
    Name {
        /// What is named: "delivery stream name", "Kinesis stream name", …
        what: &'static str,
        /// The name as given.
        name: String,
        /// The service's rule, in words.
        rule: &'static str,
    },
    /// Regions look like `eu-west-1`.
    #[error("region {0:?} is invalid: expected a name such as eu-west-1")]
    Region(String),
    /// An endpoint override must be an absolute http(s) URL.
    #[error("endpoint {0:?} is invalid: expected an absolute http:// or https:// URL")]
    Endpoint(String),
}

/// Where a service's calls go: an absolute `http` or `https` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    url: String,
    scheme_len: usize,
    authority_len: usize,
}

impl Endpoint {
    /// A service's public regional endpoint,
    /// `https://<service>.<region>.amazonaws.com/` (`.amazonaws.com.cn` in
    /// the China regions); `service` is `firehose`, `kinesis` or `sqs`.
    pub fn for_region(service: &str, region: &str) -> Result<Self, ConfigError> {
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
        Self::parse(&format!("https://{service}.{region}.{suffix}/"))
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

    /// The URL requests are sent to, e.g. `https://kinesis.eu-west-1.amazonaws.com/`.
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
        crate::sigv4::sign::host_of(self.scheme(), self.authority())
    }

    /// What a call to this endpoint signs besides its headers and body.
    pub fn target(&self) -> crate::sigv4::sign::Target<'_> {
        crate::sigv4::sign::Target {
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

/// A call putting many records that AWS answered with 200 (`PutRecordBatch`,
/// `PutRecords`, `SendMessageBatch`): which records failed.
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

/// One entry of a 200 answer to a call that puts many records, in any of
/// the services' shapes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Answered {
    /// The id that came back when the record landed: Firehose's `RecordId`,
    /// Kinesis's `SequenceNumber`, SQS's `MessageId`.
    #[serde(default, alias = "RecordId", alias = "SequenceNumber", alias = "MessageId")]
    pub id: Option<String>,
    /// The entry's `ErrorCode`, if any.
    #[serde(default)]
    pub error_code: Option<String>,
    /// The entry's `ErrorMessage`, if any.
    #[serde(default)]
    pub error_message: Option<String>,
}

/// Reads the answer to a call that put `sent` records: a status other than
/// 200 is the call's error; a 200's body is read as `T`, whose entries and
/// stated failure count `parts` gives (with the count's name, for errors).
pub fn read_put_answer<T: serde::de::DeserializeOwned>(
    status: u16,
    error_type: Option<&str>,
    date: Option<&str>,
    body: &[u8],
    sent: usize,
    parts: impl FnOnce(T) -> (Vec<Answered>, Option<usize>, &'static str),
) -> Result<PutOutcome, CallError> {
    if status != 200 {
        return Err(error_from_response(status, error_type, date, body));
    }
    let answer: T = serde_json::from_slice(body).map_err(|e| CallError::Unexpected {
        status,
        detail: format!("{e}: {}", excerpt(body)),
    })?;
    let (entries, failed_count, count_name) = parts(answer);
    put_outcome(sent, entries, failed_count, count_name)
}

/// The outcome of a 200 answer for `sent` records: its `entries` in request
/// order and the count of failures it states (`count_name`, for the error;
/// `None` where the service's model makes the count optional and the answer
/// left it out: the entries then say it alone). An entry with an error
/// code, or without an id, failed (`InternalFailure` when no code says
/// otherwise); an answer that disagrees with itself or with the request is
/// [`CallError::Unexpected`].
pub fn put_outcome(
    sent: usize,
    entries: Vec<Answered>,
    failed_count: Option<usize>,
    count_name: &str,
) -> Result<PutOutcome, CallError> {
    let unexpected = |detail: String| CallError::Unexpected { status: 200, detail };
    if entries.len() != sent {
        return Err(unexpected(format!("{} results for {sent} records", entries.len())));
    }
    let failed: Vec<FailedRecord> = entries
        .into_iter()
        .enumerate()
        .filter(|(_, e)| e.error_code.is_some() || e.id.is_none())
        .map(|(index, e)| FailedRecord {
            index,
            code: e.error_code.unwrap_or_else(|| "InternalFailure".to_owned()),
            message: e.error_message.unwrap_or_default(),
        })
        .collect();
    if let Some(count) = failed_count
        && failed.len() != count
    {
        return Err(unexpected(format!(
            "{count_name} {count} but {} failed entries",
            failed.len()
        )));
    }
    Ok(PutOutcome { sent, failed })
}

/// One record the service did not take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedRecord {
    /// Its index in the request.
    pub index: usize,
    /// `ServiceUnavailableException` or `InternalFailure`, usually.
    pub code: String,
    /// The service's message.
    pub message: String,
}

impl FailedRecord {
    /// Whether sending the record again can succeed: a shard over its quota
    /// or a fault of the service's can pass; a record SQS finds malformed,
    /// or one a disabled or inaccessible KMS key cannot encrypt, never will.
    pub fn is_retryable(&self) -> bool {
        !matches!(
            self.code.as_str(),
            "InvalidMessageContents"
                | "InvalidParameterValue"
                | "InvalidAttributeValue"
                | "MessageTooLong"
                | "InvalidBatchEntryId"
                | "KMSDisabledException"
                | "KMSInvalidStateException"
                | "KMSAccessDeniedException"
                | "KMSNotFoundException"
                | "KMSOptInRequired"
                | "KmsAccessDenied"
                | "KmsDisabled"
                | "KmsNotFound"
                | "KmsInvalidState"
        )
    }

    /// The record's failure as an error, for the reason it was given up.
    pub fn error(&self) -> CallError {
        CallError::InvalidRequest {
            code: self.code.clone(),
            message: self.message.clone(),
        }
    }
}

/// A call that failed as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// Throttled: a quota of the stream or queue (requests, records, bytes,
    /// a shard's throughput, a KMS key's requests) was exceeded.
    #[error("throttled ({code}): {message}")]
    Throttled {
        /// The AWS error code.
        code: String,
        /// AWS's message.
        message: String,
    },
    /// The stream or queue does not exist in this account and region.
    #[error("stream or queue not found: {message}")]
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
    /// The key is valid but may not put records to this stream or queue.
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
    #[error("server error {status} ({code}): {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// The AWS error code, when given.
        code: String,
        /// AWS's message.
        message: String,
    },
    /// The request never got an answer (connection refused, reset).
    #[error("could not reach the service: {0}")]
    Transport(String),
    /// No answer came within the time the call was given.
    #[error("no answer within {after_ms} ms")]
    TimedOut {
        /// How long the call was given.
        after_ms: u64,
    },
    /// The request could not be built or signed here: nothing was sent, and
    /// sending it again would fail the same way.
    #[error("the request could not be built: {0}")]
    Request(String),
    /// A response that fits none of the above.
    #[error("unexpected response {status}: {detail}")]
    Unexpected {
        /// HTTP status.
        status: u16,
        /// What was wrong with it (body excerpt).
        detail: String,
    },
}

impl CallError {
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
struct JsonError {
    #[serde(default, rename = "__type")]
    kind: Option<String>,
    #[serde(default, alias = "Message")]
    message: Option<String>,
}

/// The error of a call AWS answered with a status other than 200: `error_type`
/// is the `x-amzn-ErrorType` header and `date` the `Date` header, when present.
pub fn error_from_response(status: u16, error_type: Option<&str>, date: Option<&str>, body: &[u8]) -> CallError {
    let (code, message) = error_code_and_message(error_type, body);
    CallError::classify(status, code, message, date)
}

/// The AWS error code and message of a failed response: from
/// `x-amzn-ErrorType`, a JSON `__type`, or an XML `<Code>` (auth failures can
/// come back as XML with `text/html`, even from JSON services).
fn error_code_and_message(error_type: Option<&str>, body: &[u8]) -> (String, String) {
    let short = |s: &str| {
        // "ns#Code", "Code:http://…", "AWS.Service.Code" → "Code"
        let s = s.rsplit('#').next().unwrap_or(s);
        let s = s.split([':', ';']).next().unwrap_or(s);
        // SQS's query-protocol codes: "AWS.SimpleQueueService.NonExistentQueue"
        s.rsplit('.').next().unwrap_or(s).trim().to_owned()
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

impl CallError {
    /// Classifies a failed call from its HTTP status, AWS error code, message
    /// and `Date` header: the one mapping used for raw responses and for SDK
    /// errors alike.
    pub fn classify(status: u16, code: String, message: String, date: Option<&str>) -> CallError {
        classify_error(status, code, message, date)
    }
}

fn classify_error(status: u16, code: String, message: String, date: Option<&str>) -> CallError {
    let lower = message.to_ascii_lowercase();
    let expired = lower.contains("signature expired")
        || lower.contains("signature not yet current")
        || code == "RequestTimeTooSkewed"
        || code == "RequestExpired";
    if expired {
        return CallError::SignatureExpired {
            message,
            server_time: date.and_then(Timestamp::parse_http_date),
        };
    }
    match code.as_str() {
        "ServiceUnavailableException"
        | "ProvisionedThroughputExceededException"
        | "KMSThrottlingException"
        | "KmsThrottled"
        | "RequestThrottled"
        | "ThrottlingException"
        | "LimitExceededException"
        | "Throttling"
        | "TooManyRequestsException" => CallError::Throttled { code, message },
        "ResourceNotFoundException" | "QueueDoesNotExist" | "NonExistentQueue" => {
            CallError::ResourceNotFound { message }
        }
        "InvalidSignatureException"
        | "SignatureDoesNotMatch"
        | "IncompleteSignature"
        | "IncompleteSignatureException"
        | "MissingAuthenticationToken"
        | "MissingAuthenticationTokenException" => CallError::InvalidSignature { code, message },
        "UnrecognizedClientException" | "InvalidClientTokenId" | "ExpiredTokenException" | "ExpiredToken" => {
            CallError::UnrecognizedCredentials { code, message }
        }
        "AccessDeniedException" | "AccessDenied" | "NotAuthorized" => CallError::AccessDenied { code, message },
        _ if status == 429 || status == 503 => CallError::Throttled { code, message },
        _ if status >= 500 => CallError::Server { status, code, message },
        _ if (400..500).contains(&status) && !code.is_empty() => CallError::InvalidRequest { code, message },
        _ => CallError::Unexpected {
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
