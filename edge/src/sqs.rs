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
use edgehose_shared::shard::split;
use edgehose_shared::sqs::QueueUrl;
use edgehose_shared::sqs::pack::{PackConfig, pack};
use edgehose_shared::sqs::send_message_batch::{self as wire, Entry, SEND_MESSAGE_BATCH_HEADERS, SIGNING_SERVICE};

use crate::aws::{PutProtocol, put};
use crate::clock::{CryptoRandom, now};
use crate::config::EdgeConfig;
use crate::send::{Lost, deliver_call};

/// Judges, groups, packs and sends lines; the calls share `policy`'s budget.
/// With several queues a FIFO group's events go to the queue its hash picks
/// (so the group stays in order), any other line to the one its own hash picks.
pub async fn send<S: AsRef<str>>(
    config: &EdgeConfig,
    queues: &[QueueUrl],
    endpoint: &Endpoint,
    pack_config: PackConfig,
    groups: &PartitionKeys,
    lines: &[S],
    policy: RetryPolicy,
) -> Result<(), Lost> {
    let (texts, _) = triage(lines, config.rules(), false);
    let fifo = queues.first().is_some_and(QueueUrl::is_fifo);
    let keys: Vec<Option<String>> = if fifo {
        texts.iter().map(|t| groups.key_of(t)).collect()
    } else {
        vec![None; texts.len()]
    };
    let picks: Vec<&[u8]> = texts
        .iter()
        .zip(&keys)
        .map(|(t, k)| k.as_deref().map_or(t.as_bytes(), str::as_bytes))
        .collect();
    let mut lost = Lost::default();
    let started = now();
    for (members, queue) in split(&picks, queues.len()).iter().zip(queues) {
        if members.is_empty() {
            continue;
        }
        let part: Vec<&str> = members.iter().map(|&i| texts[i].as_ref()).collect();
        let part_keys: Vec<Option<String>> = members.iter().map(|&i| keys[i].clone()).collect();
        let batches = match pack(&part, &part_keys, fifo, pack_config, &CryptoRandom::default()) {
            Ok(b) => b,
            // Envelopes are bounded far below a message: a defect, so say so loudly.
            Err(e) => {
                lost.add(members.iter().copied(), &texts, format!("could not pack: {e}"));
                continue;
            }
        };
        for b in batches {
            let entries = b.entries();
            let records: Vec<&Entry<'_>> = entries.iter().collect();
            let sink = SqsSink {
                config,
                queue,
                endpoint,
            };
            if let Some((failed, reason)) = deliver_call(config, &records, &sink, policy, started).await {
                let indices = failed
                    .iter()
                    .flat_map(|&m| b.messages[m].lines.iter().map(|&l| members[l]));
                lost.add(indices, &texts, reason);
            }
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
