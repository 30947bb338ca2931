//! The Firehose sink: lines judged and packed into records of NDJSON
//! (rejected events, and each partition when partitioning, in records of
//! their own), sent by `PutRecordBatch` through the shared delivery driver.
//! With several delivery streams a call goes to the one its first record's
//! hash picks, and each retry to the next, so a throttled stream's records
//! move to another rather than waiting on it.

use std::cell::Cell;

use edgehose_shared::aws::{CallError, Endpoint, PutOutcome};
use edgehose_shared::batch::{PackConfig, pack_calls, pack_grouped};
use edgehose_shared::deliver::Sink;
use edgehose_shared::firehose::{self, PUT_RECORD_BATCH_HEADERS, SIGNING_SERVICE};
use edgehose_shared::judge::triage;
use edgehose_shared::shard::shard_of;

use crate::config::EdgeConfig;
use crate::sinks::signed_call::{PutProtocol, put};
use crate::sinks::{Budget, LineSink, Lost, deliver_call, pack_each_or_alone};

/// The Firehose sink as the edge sends to it: delivery streams, where
/// `PutRecordBatch` goes, how records are filled, whether the stream partitions.
pub struct Firehose<'a> {
    /// The Worker's configuration.
    pub config: &'a EdgeConfig,
    /// The delivery streams.
    pub streams: &'a [String],
    /// Where `PutRecordBatch` goes.
    pub endpoint: &'a Endpoint,
    /// How records are filled.
    pub pack: PackConfig,
    /// Each record holds one partition.
    pub partitioning: bool,
}

impl LineSink for Firehose<'_> {
    /// Judges, packs and sends lines; the calls share `policy`'s budget.
    async fn send<S: AsRef<str>>(&self, lines: &[S], budget: Budget) -> Result<(), Lost> {
        let Self {
            config,
            streams,
            endpoint,
            pack,
            partitioning,
        } = self;
        let (pack, partitioning) = (*pack, *partitioning);
        let (texts, groups) = triage(lines, config.rules(), partitioning);
        let mut lost = Lost::default();
        let all: Vec<usize> = (0..texts.len()).collect();
        let packed = pack_each_or_alone(&all, &texts, &mut lost, |part| {
            let bytes: Vec<&[u8]> = part.iter().map(|&i| texts[i].as_bytes()).collect();
            let part_groups: Vec<_> = part.iter().map(|&i| &groups[i]).collect();
            pack_grouped(&bytes, &part_groups, pack)
        });
        let Some((grouped, members)) = packed else {
            return lost.into_result();
        };
        // Calls are sized for the longest name: any stream may carry any call.
        let longest = streams.iter().max_by_key(|s| s.len()).map_or("", String::as_str);
        for c in pack_calls(grouped.records, longest) {
            let records: Vec<&[u8]> = c.records.iter().map(|r| r.data.as_slice()).collect();
            let first = records.first().map_or(0, |r| shard_of(r, streams.len()));
            let sink = FirehoseSink {
                config,
                streams,
                next: Cell::new(first),
                endpoint,
            };
            let undelivered = deliver_call(config, &records, &sink, budget).await;
            if let Some((records, reason)) = undelivered {
                let indices = records
                    .iter()
                    .flat_map(|&r| c.records[r].lines.clone())
                    .map(|k| members[grouped.order[k]]);
                lost.add(indices, &texts, reason);
            }
        }
        lost.into_result()
    }
}

const PUT_RECORD_BATCH: PutProtocol = PutProtocol {
    service: SIGNING_SERVICE,
    headers: &PUT_RECORD_BATCH_HEADERS,
    read: firehose::parse_put_record_batch_response,
};

/// Firehose, as the driver calls it: one signed `PutRecordBatch`.
struct FirehoseSink<'a> {
    config: &'a EdgeConfig,
    streams: &'a [String],
    /// The stream the next attempt goes to.
    next: Cell<usize>,
    endpoint: &'a Endpoint,
}

impl Sink<[u8]> for FirehoseSink<'_> {
    async fn put(&self, records: &[&[u8]], timeout_ms: u64) -> Result<PutOutcome, CallError> {
        let k = self.next.replace(self.next.get() + 1) % self.streams.len().max(1);
        let stream = self.streams.get(k).map_or("", String::as_str);
        let body = firehose::put_record_batch_body(stream, records.iter().copied());
        put(
            self.config,
            self.endpoint,
            &PUT_RECORD_BATCH,
            &body,
            records.len(),
            timeout_ms,
        )
        .await
    }
}
