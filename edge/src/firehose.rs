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
use edgehose_shared::retry::RetryPolicy;
use edgehose_shared::shard::shard_of;

use crate::aws::{PutProtocol, put};
use crate::clock::now;
use crate::config::EdgeConfig;
use crate::send::{Lost, deliver_call};

/// Judges, packs and sends lines; the calls share `policy`'s budget.
pub async fn send<S: AsRef<str>>(
    config: &EdgeConfig,
    streams: &[String],
    endpoint: &Endpoint,
    pack: PackConfig,
    partitioning: bool,
    lines: &[S],
    policy: RetryPolicy,
) -> Result<(), Lost> {
    let (texts, groups) = triage(lines, config.rules(), partitioning);
    let bytes: Vec<&[u8]> = texts.iter().map(|t| t.as_bytes()).collect();
    let grouped = match pack_grouped(&bytes, &groups, pack) {
        Ok(g) => g,
        // Envelopes are bounded far below a record: a defect, so say so loudly.
        Err(e) => return Err(Lost::all(&texts, format!("could not pack: {e}"))),
    };
    let mut lost = Lost::default();
    let started = now();
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
        let undelivered = deliver_call(config, &records, &sink, policy, started).await;
        if let Some((records, reason)) = undelivered {
            let indices = records
                .iter()
                .flat_map(|&r| c.records[r].lines.clone())
                .map(|k| grouped.order[k]);
            lost.add(indices, &texts, reason);
        }
    }
    lost.into_result()
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
