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
use edgehose_shared::shard::split;
use edgehose_shared::sqs::QueueUrl;
use edgehose_shared::sqs::pack::{PackConfig, pack};
use edgehose_shared::sqs::send_message_batch::{self as wire, Entry, SEND_MESSAGE_BATCH_HEADERS, SIGNING_SERVICE};

use crate::clock::CryptoRandom;
use crate::config::EdgeConfig;
use crate::sinks::signed_call::{PutProtocol, put};
use crate::sinks::{Budget, LineSink, Lost, deliver_call, pack_each_or_alone};

/// The SQS sink as the edge sends to it: queues, where `SendMessageBatch`
/// goes, how messages are filled, a FIFO queue's groups.
pub struct Sqs<'a> {
    /// The Worker's configuration.
    pub config: &'a EdgeConfig,
    /// The queues.
    pub queues: &'a [QueueUrl],
    /// Where `SendMessageBatch` goes.
    pub endpoint: &'a Endpoint,
    /// How messages are filled.
    pub pack: PackConfig,
    /// A FIFO queue's message groups.
    pub groups: &'a PartitionKeys,
}

impl LineSink for Sqs<'_> {
    /// Judges, groups, packs and sends lines; the calls share `policy`'s budget.
    /// With several queues a FIFO group's events go to the queue its hash picks
    /// (so the group stays in order), any other line to the one its own hash picks.
    async fn send<S: AsRef<str>>(&self, lines: &[S], budget: Budget) -> Result<(), Lost> {
        let Self {
            config,
            queues,
            endpoint,
            pack: pack_config,
            groups,
        } = self;
        let pack_config = *pack_config;
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
        for (members, queue) in split(&picks, queues.len()).iter().zip(queues.iter()) {
            if members.is_empty() {
                continue;
            }
            let random = CryptoRandom::default();
            let packed = pack_each_or_alone(members, &texts, &mut lost, |part| {
                let lines: Vec<&str> = part.iter().map(|&i| texts[i].as_ref()).collect();
                let part_keys: Vec<Option<String>> = part.iter().map(|&i| keys[i].clone()).collect();
                pack(&lines, &part_keys, fifo, pack_config, &random)
            });
            let Some((batches, members)) = packed else { continue };
            for b in batches {
                let entries = b.entries();
                let records: Vec<&Entry<'_>> = entries.iter().collect();
                let sink = SqsSink {
                    config,
                    queue,
                    endpoint,
                };
                if let Some((failed, reason)) = deliver_call(config, &records, &sink, budget).await {
                    let indices = failed
                        .iter()
                        .flat_map(|&m| b.messages[m].lines.iter().map(|&l| members[l]));
                    lost.add(indices, &texts, reason);
                }
            }
        }
        lost.into_result()
    }
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
