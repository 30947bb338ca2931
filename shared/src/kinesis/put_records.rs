//! The `PutRecords` wire format: the request body and headers, the size a
//! record adds to a call (as AWS counts it, and as the body grows), and the
//! response as a typed outcome, each failed record with its code.
//!
//! Protocol: AWS JSON 1.1 (`X-Amz-Target: Kinesis_20131202.PutRecords`),
//! records' `Data` in base64
//! (<https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html>).

use base64::Engine;
use serde::Deserialize;

use super::{MAX_PARTITION_KEY_CHARS, MAX_RECORD_BYTES};
use crate::aws::{self, Answered, CONTENT_TYPE_JSON_1_1, CallError, ConfigError, PutOutcome};

/// `X-Amz-Target` for `PutRecords`.
pub const TARGET_PUT_RECORDS: &str = "Kinesis_20131202.PutRecords";
/// The SigV4 service name for Kinesis Data Streams, and its endpoints' first label.
pub const SIGNING_SERVICE: &str = "kinesis";

/// The headers of every `PutRecords` call but `host` and the signature's.
pub const PUT_RECORDS_HEADERS: [(&str, &str); 2] = [
    ("content-type", CONTENT_TYPE_JSON_1_1),
    ("x-amz-target", TARGET_PUT_RECORDS),
];

/// One record of a `PutRecords` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The data, before base64.
    pub data: &'a [u8],
    /// Chooses the shard (by its MD5), unless an explicit hash key does.
    pub partition_key: &'a str,
    /// A decimal 128-bit number naming the shard's hash key range directly.
    pub explicit_hash_key: Option<&'a str>,
}

impl Entry<'_> {
    /// What the record counts against the call's 5 MiB and its own 1 MiB:
    /// its data before base64 and its partition key's bytes.
    pub fn counted_bytes(&self) -> usize {
        self.data.len() + self.partition_key.len()
    }

    /// Checks the record against AWS's per-record limits.
    pub fn check(&self) -> Result<(), RecordError> {
        let chars = self.partition_key.chars().count();
        if !(1..=MAX_PARTITION_KEY_CHARS).contains(&chars) {
            return Err(RecordError::PartitionKey { chars });
        }
        if let Some(h) = self.explicit_hash_key {
            check_explicit_hash_key(h)?;
        }
        if self.counted_bytes() > MAX_RECORD_BYTES {
            return Err(RecordError::TooLarge {
                bytes: self.counted_bytes(),
            });
        }
        Ok(())
    }
}

/// A record AWS would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// Partition keys are 1 to 256 Unicode characters.
    #[error("a Kinesis partition key has {chars} characters; it must have 1 to {MAX_PARTITION_KEY_CHARS}")]
    PartitionKey {
        /// Its length in characters.
        chars: usize,
    },
    /// An explicit hash key is a decimal number below 2^128.
    #[error("explicit hash key {0:?} is invalid: expected a decimal number from 0 to 2^128 - 1")]
    ExplicitHashKey(String),
    /// Data and partition key together are at most 1 MiB.
    #[error("a Kinesis record of {bytes} bytes (data and partition key) passes the {MAX_RECORD_BYTES}-byte limit")]
    TooLarge {
        /// Its counted size.
        bytes: usize,
    },
}

/// Checks an explicit hash key: decimal digits, below 2^128.
pub fn check_explicit_hash_key(key: &str) -> Result<(), RecordError> {
    let digits = !key.is_empty() && key.len() <= 39 && key.bytes().all(|b| b.is_ascii_digit());
    if digits && key.parse::<u128>().is_ok() {
        Ok(())
    } else {
        Err(RecordError::ExplicitHashKey(key.to_owned()))
    }
}

/// Checks a stream name against Kinesis's pattern.
pub fn check_stream_name(name: &str) -> Result<(), ConfigError> {
    let ok = (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Name {
            what: "Kinesis stream name",
            name: name.to_owned(),
            rule: "1 to 128 characters from a-z, A-Z, 0-9, '_', '.', '-'",
        })
    }
}

/// Bytes of a `PutRecords` body with no records, for this stream.
pub fn body_overhead(stream: &str) -> usize {
    r#"{"StreamName":"","Records":[]}"#.len() + stream.len()
}

/// Bytes `entry` adds to the body (without the comma between records).
pub fn entry_body_bytes(entry: &Entry<'_>) -> usize {
    let hash = entry
        .explicit_hash_key
        .map_or(0, |h| r#","ExplicitHashKey":"""#.len() + h.len());
    r#"{"Data":"","PartitionKey":}"#.len()
        + entry.data.len().div_ceil(3) * 4
        + json_string_len(entry.partition_key)
        + hash
}

/// The JSON body of a `PutRecords` call. The stream name must have passed
/// [`check_stream_name`]; partition keys are escaped as JSON strings.
pub fn put_records_body(stream: &str, entries: &[Entry<'_>]) -> Vec<u8> {
    let mut body =
        Vec::with_capacity(body_overhead(stream) + entries.iter().map(|e| entry_body_bytes(e) + 1).sum::<usize>());
    body.extend_from_slice(br#"{"StreamName":""#);
    body.extend_from_slice(stream.as_bytes());
    body.extend_from_slice(br#"","Records":["#);
    for (i, entry) in entries.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(br#"{"Data":""#);
        let start = body.len();
        body.resize(start + entry.data.len().div_ceil(3) * 4, 0);
        // The buffer was sized to exactly the encoded length.
        let _ = base64::engine::general_purpose::STANDARD.encode_slice(entry.data, &mut body[start..]);
        body.extend_from_slice(br#"","PartitionKey":"#);
        write_json_string(&mut body, entry.partition_key);
        if let Some(h) = entry.explicit_hash_key {
            // Checked digits: nothing to escape.
            body.extend_from_slice(br#","ExplicitHashKey":""#);
            body.extend_from_slice(h.as_bytes());
            body.push(b'"');
        }
        body.push(b'}');
    }
    body.extend_from_slice(b"]}");
    body
}

fn write_json_string(out: &mut Vec<u8>, s: &str) {
    // Writing a &str to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn json_string_len(s: &str) -> usize {
    let mut v = Vec::with_capacity(s.len() + 2);
    write_json_string(&mut v, s);
    v.len()
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Response {
    /// Optional in the service's model (PutRecordsOutput): an answer
    /// without it is read from its records alone.
    #[serde(default)]
    failed_record_count: Option<usize>,
    records: Vec<Answered>,
}

/// Reads a `PutRecords` response for a request of `sent` records. A record
/// without a sequence number failed (as `InternalFailure` if no code says
/// otherwise); the usual codes are `ProvisionedThroughputExceededException`
/// (its shard was over quota) and `InternalFailure`, both worth resending
/// alone. `error_type` is the `x-amzn-ErrorType` header and `date` the
/// `Date` header, when present.
pub fn parse_put_records_response(
    status: u16,
    error_type: Option<&str>,
    date: Option<&str>,
    body: &[u8],
    sent: usize,
) -> Result<PutOutcome, CallError> {
    aws::read_put_answer(status, error_type, date, body, sent, |r: Response| {
        (r.records, r.failed_record_count, "FailedRecordCount")
    })
}

#[cfg(test)]
mod tests;
