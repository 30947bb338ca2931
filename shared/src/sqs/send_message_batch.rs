//! The `SendMessageBatch` wire format in AWS's JSON protocol (JSON 1.0,
//! `X-Amz-Target: AmazonSQS.SendMessageBatch`): the request body, each entry
//! with the id that is its index, and the answer as a typed outcome
//! (`Successful` and `Failed` matched back by id).

use std::borrow::Cow;

use serde::Deserialize;

use super::QueueUrl;
use crate::aws::{self, Answered, CONTENT_TYPE_JSON_1_0, CallError, PutOutcome};

/// `X-Amz-Target` for `SendMessageBatch`.
pub const TARGET_SEND_MESSAGE_BATCH: &str = "AmazonSQS.SendMessageBatch";
/// The SigV4 service name for SQS, and its endpoints' first label.
pub const SIGNING_SERVICE: &str = "sqs";

/// The headers of every `SendMessageBatch` call but `host` and the signature's.
pub const SEND_MESSAGE_BATCH_HEADERS: [(&str, &str); 2] = [
    ("content-type", CONTENT_TYPE_JSON_1_0),
    ("x-amz-target", TARGET_SEND_MESSAGE_BATCH),
];

/// One message of a `SendMessageBatch` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The body: text of the characters SQS allows ([`sqs_safe`]).
    pub body: &'a str,
    /// A FIFO queue's message group id (its messages are delivered in order).
    pub group_id: Option<&'a str>,
    /// A FIFO queue's deduplication id (a resend within five minutes is dropped).
    pub deduplication_id: Option<&'a str>,
}

/// `text` with the only characters valid JSON may hold raw that SQS refuses
/// (U+FFFE and U+FFFF, which can stand only inside strings) written as JSON
/// escapes: the same JSON value, and a body SQS takes.
pub fn sqs_safe(text: &str) -> Cow<'_, str> {
    if !text.contains(['\u{fffe}', '\u{ffff}']) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.replace('\u{fffe}', "\\ufffe").replace('\u{ffff}', "\\uffff"))
}

/// The JSON body of a `SendMessageBatch` call; entry `i` has the id `i`.
pub fn send_message_batch_body(queue: &QueueUrl, entries: &[Entry<'_>]) -> Vec<u8> {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Body<'a> {
        queue_url: &'a str,
        entries: Vec<Wire<'a>>,
    }
    #[derive(serde::Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Wire<'a> {
        id: String,
        message_body: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        message_group_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        message_deduplication_id: Option<&'a str>,
    }
    let body = Body {
        queue_url: queue.as_str(),
        entries: entries
            .iter()
            .enumerate()
            .map(|(i, e)| Wire {
                id: i.to_string(),
                message_body: e.body,
                message_group_id: e.group_id,
                message_deduplication_id: e.deduplication_id,
            })
            .collect(),
    };
    // Strings and numbers only: serializing cannot fail.
    serde_json::to_vec(&body).unwrap_or_default()
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Response {
    #[serde(default)]
    successful: Vec<Successful>,
    #[serde(default)]
    failed: Vec<Failed>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Successful {
    id: String,
    message_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Failed {
    id: String,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// Reads a `SendMessageBatch` answer for a call of `sent` entries: each
/// entry is found by its id in `Successful` or `Failed`; one in neither
/// failed (`InternalFailure`). `error_type` is the `x-amzn-ErrorType`
/// header and `date` the `Date` header, when present.
pub fn parse_send_message_batch_response(
    status: u16,
    error_type: Option<&str>,
    date: Option<&str>,
    body: &[u8],
    sent: usize,
) -> Result<PutOutcome, CallError> {
    aws::read_put_answer(status, error_type, date, body, sent, |r: Response| {
        let mut entries = vec![Answered::default(); sent];
        let slot = |id: &str| id.parse::<usize>().ok().filter(|&i| i < sent);
        let mut failed = 0;
        for s in r.successful {
            if let Some(i) = slot(&s.id) {
                entries[i].id = Some(s.message_id);
            }
        }
        for f in r.failed {
            if let Some(i) = slot(&f.id) {
                entries[i].id = None;
                entries[i].error_code = Some(f.code.unwrap_or_else(|| "InternalFailure".to_owned()));
                entries[i].error_message = f.message;
                failed += 1;
            }
        }
        // Entries in neither list count as failed too.
        failed += entries
            .iter()
            .filter(|e| e.id.is_none() && e.error_code.is_none())
            .count();
        (entries, Some(failed), "Failed")
    })
}

#[cfg(test)]
mod tests;
