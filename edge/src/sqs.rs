//! The SQS sink: lines packed into as few messages as the size allows (on a
//! FIFO queue, one group per message, as `SQS_MESSAGE_GROUP` chooses, and a
//! deduplication id), `SendMessageBatch` calls of up to 10 messages
//! carrying them through the shared delivery driver, the entries that failed
//! resent alone. Rejected events ride as they are marked, for the queue's
//! reader to tell apart.

use edgehose_shared::aws::{CallError, Endpoint, PutOutcome};
use edgehose_shared::deliver::Sink;
use edgehose_shared::judge::triage;
use edgehose_shared::kinesis::partition::PartitionKeys;
use edgehose_shared::retry::RetryPolicy;
use edgehose_shared::sqs::QueueUrl;
use edgehose_shared::sqs::pack::{PackConfig, pack};
use edgehose_shared::sqs::send_message_batch::{self as wire, Entry, SEND_MESSAGE_BATCH_HEADERS, SIGNING_SERVICE};

use crate::aws::{PutProtocol, put};
use crate::clock::{CryptoRandom, now};
use crate::config::EdgeConfig;
use crate::send::{Lost, deliver_call};

/// Judges, groups, packs and sends lines; the calls share `policy`'s budget.
pub async fn send<S: AsRef<str>>(
    config: &EdgeConfig,
    queue: &QueueUrl,
    endpoint: &Endpoint,
    pack_config: PackConfig,
    groups: &PartitionKeys,
    lines: &[S],
    policy: RetryPolicy,
) -> Result<(), Lost> {
    let (texts, _) = triage(lines, config.rules(), false);
    let fifo = queue.is_fifo();
    let keys: Vec<Option<String>> = if fifo {
        texts.iter().map(|t| groups.key_of(t)).collect()
    } else {
        Vec::new()
    };
    let batches = match pack(&texts, &keys, fifo, pack_config, &CryptoRandom::default()) {
        Ok(b) => b,
        // Envelopes are bounded far below a message: a defect, so say so loudly.
        Err(e) => return Err(Lost::all(&texts, format!("could not pack: {e}"))),
    };
    let mut lost = Lost::default();
    let started = now();
    for b in batches {
        let entries = b.entries();
        let records: Vec<&Entry<'_>> = entries.iter().collect();
        let sink = SqsSink {
            config,
            queue,
            endpoint,
        };
        if let Some((failed, reason)) = deliver_call(config, &records, &sink, policy, started).await {
            let indices = failed.iter().flat_map(|&m| b.messages[m].lines.iter().copied());
            lost.add(indices, &texts, reason);
        }
    }
    lost.into_result()
}

const SEND_MESSAGE_BATCH: PutProtocol = PutProtocol {
    service: SIGNING_SERVICE,
    headers: &SEND_MESSAGE_BATCH_HEADERS,
    read: wire::parse_send_message_batch_response,
};

/// SQS, as the driver calls it: one signed `SendMessageBatch`.
struct SqsSink<'a> {
    config: &'a EdgeConfig,
    queue: &'a QueueUrl,
    endpoint: &'a Endpoint,
}

impl<'e> Sink<Entry<'e>> for SqsSink<'_> {
    async fn put(&self, records: &[&Entry<'e>], timeout_ms: u64) -> Result<PutOutcome, CallError> {
        let entries: Vec<Entry<'_>> = records.iter().map(|e| **e).collect();
        let body = wire::send_message_batch_body(self.queue, &entries);
        put(
            self.config,
            self.endpoint,
            &SEND_MESSAGE_BATCH,
            &body,
            records.len(),
            timeout_ms,
        )
        .await
    }
}
