//! The Kinesis Data Streams sink: each line gets its partition key (as
//! `KINESIS_PARTITION_KEY` chooses), lines of one key share aggregated
//! records in order, and `PutRecords` calls carry them through the shared
//! delivery driver, records a shard throttled resent alone. Rejected events
//! ride as they are marked: a Firehose reading the stream de-aggregates
//! them into records of their own, which the transform fails to the error
//! prefix.

use edgehose_shared::aws::{CallError, Endpoint, PutOutcome};
use edgehose_shared::deliver::Sink;
use edgehose_shared::judge::triage;
use edgehose_shared::kinesis::pack::{PackConfig, pack};
use edgehose_shared::kinesis::partition::PartitionKeys;
use edgehose_shared::kinesis::put_records::{self, Entry, PUT_RECORDS_HEADERS, SIGNING_SERVICE};
use edgehose_shared::shard::split;

use crate::clock::CryptoRandom;
use crate::config::EdgeConfig;
use crate::sinks::signed_call::{PutProtocol, put};
use crate::sinks::{Budget, LineSink, Lost, deliver_call, pack_each_or_alone};

/// The Kinesis sink as the edge sends to it: streams, where `PutRecords`
/// goes, how records are aggregated, how partition keys are chosen.
pub struct Kinesis<'a> {
    /// The Worker's configuration.
    pub config: &'a EdgeConfig,
    /// The data streams.
    pub streams: &'a [String],
    /// Where `PutRecords` goes.
    pub endpoint: &'a Endpoint,
    /// Aggregation, record size, explicit hash key.
    pub pack: &'a PackConfig,
    /// How each event's partition key is chosen.
    pub keys: &'a PartitionKeys,
}

impl LineSink for Kinesis<'_> {
    /// Judges, keys, packs and sends lines; the calls share `policy`'s budget.
    /// With several streams each key's events go to the stream its hash picks
    /// (so a key stays in order on one shard of one stream), a line without a
    /// key to the one its own hash picks.
    async fn send<S: AsRef<str>>(&self, lines: &[S], budget: Budget) -> Result<(), Lost> {
        let Self {
            config,
            streams,
            endpoint,
            pack: pack_config,
            keys,
        } = self;
        let (texts, _) = triage(lines, config.rules(), false);
        let line_keys: Vec<Option<String>> = texts.iter().map(|t| keys.key_of(t)).collect();
        let picks: Vec<&[u8]> = texts
            .iter()
            .zip(&line_keys)
            .map(|(t, k)| k.as_deref().map_or(t.as_bytes(), str::as_bytes))
            .collect();
        let random = CryptoRandom::default();
        let mut lost = Lost::default();
        for (members, stream) in split(&picks, streams.len()).iter().zip(streams.iter()) {
            if members.is_empty() {
                continue;
            }
            let packed = pack_each_or_alone(members, &texts, &mut lost, |part| {
                let bytes: Vec<&[u8]> = part.iter().map(|&i| texts[i].as_bytes()).collect();
                let part_keys: Vec<Option<String>> = part.iter().map(|&i| line_keys[i].clone()).collect();
                pack(&bytes, &part_keys, stream, pack_config, &random)
            });
            let Some((calls, members)) = packed else { continue };
            for c in calls {
                let entries = c.entries();
                let records: Vec<&Entry<'_>> = entries.iter().collect();
                let sink = KinesisSink {
                    config,
                    stream,
                    endpoint,
                };
                if let Some((failed, reason)) = deliver_call(config, &records, &sink, budget).await {
                    let indices = failed
                        .iter()
                        .flat_map(|&r| c.records[r].lines.iter().map(|&l| members[l]));
                    lost.add(indices, &texts, reason);
                }
            }
        }
        lost.into_result()
    }
}

const PUT_RECORDS: PutProtocol = PutProtocol {
    service: SIGNING_SERVICE,
    headers: &PUT_RECORDS_HEADERS,
    read: put_records::parse_put_records_response,
};

/// Kinesis, as the driver calls it: one signed `PutRecords`.
struct KinesisSink<'a> {
    config: &'a EdgeConfig,
    stream: &'a str,
    endpoint: &'a Endpoint,
}

impl<'e> Sink<Entry<'e>> for KinesisSink<'_> {
    async fn put(&self, records: &[&Entry<'e>], timeout_ms: u64) -> Result<PutOutcome, CallError> {
        let entries: Vec<Entry<'_>> = records.iter().map(|e| **e).collect();
        let body = put_records::put_records_body(self.stream, &entries);
        put(
            self.config,
            self.endpoint,
            &PUT_RECORDS,
            &body,
            records.len(),
            timeout_ms,
        )
        .await
    }
}
