//! Amazon SQS as a sink: the limits of `SendMessageBatch`, its wire format
//! in AWS's JSON protocol ([`send_message_batch`]), and packing lines into
//! messages and batches ([`pack`]), FIFO queues included.
//!
//! Limits: <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html>
//! and <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html>.

pub mod pack;
pub mod send_message_batch;

use crate::aws::ConfigError;

/// Entries in one `SendMessageBatch` call.
pub const MAX_ENTRIES_PER_BATCH: usize = 10;
/// Bytes of all message bodies of one call together, and of one message.
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;
/// The message size every queue takes: a queue's `MaximumMessageSize`
/// defaulted to 256 KiB before SQS raised the limit to 1 MiB, and may still.
pub const DEFAULT_MESSAGE_BYTES: usize = 256 * 1024;
/// SQS bills each 64 KiB of a call's payload as one request.
pub const BILLING_CHUNK_BYTES: usize = 64 * 1024;
/// Characters of a FIFO message group id or deduplication id.
pub const MAX_FIFO_ID_CHARS: usize = 128;

/// A queue, from its URL (`https://sqs.<region>.amazonaws.com/<account>/<name>`,
/// or a local stand-in's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueUrl {
    url: String,
    name_at: usize,
}

impl QueueUrl {
    /// Reads a queue URL: `http(s)://host[:port]/<account>/<name>`, the name
    /// 1 to 80 of `[A-Za-z0-9_-]` (a FIFO queue's ending in `.fifo`).
    pub fn parse(url: &str) -> Result<Self, ConfigError> {
        let bad = || ConfigError::Name {
            what: "SQS queue URL",
            name: url.to_owned(),
            rule: "http(s)://host/<account>/<name>, the name 1 to 80 characters from a-z, A-Z, 0-9, '_', '-' (and .fifo at the end of a FIFO queue's)",
        };
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or_else(bad)?;
        let parts: Vec<&str> = rest.split('/').collect();
        let [host, account, name] = parts[..] else {
            return Err(bad());
        };
        let stem = name.strip_suffix(".fifo").unwrap_or(name);
        let name_ok = (1..=80).contains(&name.len())
            && !stem.is_empty()
            && stem
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
        let account_ok = !account.is_empty() && account.bytes().all(|b| b.is_ascii_alphanumeric());
        if host.is_empty() || !name_ok || !account_ok {
            return Err(bad());
        }
        Ok(Self {
            url: url.to_owned(),
            name_at: url.len() - name.len(),
        })
    }

    /// The URL, as calls name the queue.
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.url[self.name_at..]
    }

    /// Whether it is a FIFO queue (its name ends in `.fifo`): every message
    /// then needs a group id and a deduplication id.
    pub fn is_fifo(&self) -> bool {
        self.name().ends_with(".fifo")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_urls_name_their_queue_and_say_whether_it_is_fifo() {
        let q = QueueUrl::parse("https://sqs.eu-west-1.amazonaws.com/123456789012/rides").unwrap();
        assert_eq!((q.name(), q.is_fifo()), ("rides", false));
        let f = QueueUrl::parse("http://127.0.0.1:5000/123456789012/rides.fifo").unwrap();
        assert_eq!((f.name(), f.is_fifo()), ("rides.fifo", true));
        for bad in [
            "",
            "rides",
            "ftp://h/1/rides",
            "https://h/rides",
            "https://h/1/ri des",
            "https://h/1/.fifo",
            "https:///1/rides",
            "https://h/1/rides/extra",
            &format!("https://h/1/{}", "a".repeat(81)),
        ] {
            assert!(QueueUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
