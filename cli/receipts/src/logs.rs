//! The transform's receipts, read from its CloudWatch Logs group with
//! `FilterLogEvents` (one receipt line per invocation, `shared::outcome`),
//! or from firehose-local's stand-in of that group under `make dev`, with
//! the same signed calls. Pages are followed to the end.

use edgehose_local::aws::json_call::{LOGS, call};
use edgehose_shared::outcome::{RECEIPT_FIELD, Tally, parse_receipt_line};
use edgehose_shared::sigv4::sign::Credentials;
use serde_json::json;

use crate::error::{Error, Result};

/// The transform's log group, as the template names it and firehose-local too.
pub const TRANSFORM_LOG_GROUP: &str = "/aws/lambda/edgehose-transform";

/// Where the receipts are read.
#[derive(Debug, Clone)]
pub struct Logs {
    /// CloudWatch Logs' endpoint (`https://logs.<region>.amazonaws.com`, or firehose-local's).
    pub endpoint: String,
    /// The region the calls are signed for.
    pub region: String,
    /// The credentials they are signed with.
    pub credentials: Credentials,
    /// The log group.
    pub group: String,
    /// The delivery stream whose receipts count (others' are skipped).
    pub stream: String,
}

/// What the receipts say, and how many were read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Receipts {
    /// Every receipt's counts added up.
    pub tally: Tally,
    /// Receipt lines read.
    pub lines: usize,
}

impl Logs {
    /// Every receipt printed between `start_ms` and `end_ms`.
    pub fn read(&self, start_ms: i64, end_ms: i64) -> Result<Receipts> {
        let mut out = Receipts::default();
        let mut token: Option<String> = None;
        loop {
            let mut body = json!({
                "logGroupName": self.group,
                "startTime": start_ms,
                "endTime": end_ms,
                "filterPattern": format!("\"{RECEIPT_FIELD}\""),
            });
            if let Some(t) = &token {
                body["nextToken"] = json!(t);
            }
            let answer = call(
                &self.endpoint,
                LOGS,
                "FilterLogEvents",
                &body,
                &self.region,
                &self.credentials,
            )?;
            let events = answer["events"]
                .as_array()
                .ok_or_else(|| Error::Answer(format!("FilterLogEvents answered no events: {answer}")))?;
            for e in events {
                // A line that only mentions the field is not a receipt.
                if let Some(r) = e["message"].as_str().and_then(parse_receipt_line)
                    && r.stream == self.stream
                {
                    out.tally.merge(&r.tally);
                    out.lines += 1;
                }
            }
            match answer["nextToken"].as_str() {
                Some(t) if Some(t) != token.as_deref() => token = Some(t.to_owned()),
                _ => return Ok(out),
            }
        }
    }
}
