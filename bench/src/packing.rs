//! `edgehose-bench packing`: what each sink bills, and how many calls it
//! takes, per million ~170-byte events, for the ways events can reach it.
//! Firehose bills ingestion per record rounded up to the next 5 KB
//! (<https://aws.amazon.com/firehose/pricing/>), so a 300-byte record costs
//! as much as a 5 KB one; Kinesis Data Streams bills PUT payload units of
//! 25 KB per record (<https://aws.amazon.com/kinesis/data-streams/pricing/>);
//! SQS bills a request per 64 KB of a call's payload
//! (<https://aws.amazon.com/sqs/pricing/>).
//!
//! Every figure comes from the packing code the edge and `ingest-api` run
//! (`shared::batch`, `shared::kinesis::pack`, `shared::sqs::pack`), applied
//! to events enveloped exactly as the edge does; none is a formula.

use edgehose_sample::envelope_lines;
use edgehose_sample::ride_sample;
use edgehose_shared::batch::{PackConfig, PackingStats, group_lines, pack, pack_calls, pack_records};
use edgehose_shared::clock::SeededRandom;
use edgehose_shared::kinesis::PUT_PAYLOAD_UNIT_BYTES;
use edgehose_shared::kinesis::pack::{PackConfig as KinesisPack, pack as kinesis_pack};
use edgehose_shared::kinesis::partition::PartitionKeys;
use edgehose_shared::limits::{QUEUE_MAX_BATCH_MESSAGES, QUEUE_MESSAGE_TARGET_BYTES};
use edgehose_shared::sqs::BILLING_CHUNK_BYTES as SQS_BILLING_CHUNK_BYTES;
use edgehose_shared::sqs::pack::{PackConfig as SqsPack, pack as sqs_pack};

use crate::harness::report;

/// Events packed per row; figures are scaled to a million.
const EVENTS: usize = 100_000;
const PER_MILLION: u64 = (1_000_000 / EVENTS) as u64;
const STREAM: &str = "edgehose-events";

/// One way of sending.
struct Row {
    how: String,
    per_request: usize,
    stats: PackingStats,
    calls: u64,
}

/// The events as `per_request`-event requests, each request's envelope lines.
fn requests(per_request: usize) -> Result<Vec<Vec<String>>, String> {
    let events: Vec<String> = (0..EVENTS).map(|n| ride_sample("pack", n)).collect();
    events
        .chunks(per_request)
        .map(|c| envelope_lines(&c.join("\n")))
        .collect()
}

/// Runs the benchmark.
pub fn main(write: crate::harness::report::Write) -> Result<(), String> {
    let mut rows = Vec::new();
    let by_size: Vec<(usize, Vec<Vec<String>>)> = [1usize, 10, 50]
        .into_iter()
        .map(|n| Ok((n, requests(n)?)))
        .collect::<Result<_, String>>()?;
    for (per_request, reqs) in &by_size {
        let per_request = *per_request;
        // One record per event, the request's records in one call: what a
        // function that maps each event to a record does.
        let mut stats = PackingStats::default();
        for lines in reqs {
            stats.add(&PackingStats::of(
                &pack(lines, STREAM, PackConfig::with_target_record_bytes(1)).map_err(|e| e.to_string())?,
            ));
        }
        rows.push(Row {
            how: "a record per event, a call per request".into(),
            per_request,
            calls: stats.calls as u64,
            stats,
        });
        // Direct mode, and the API Gateway path (the same packer): each
        // request's events in as few records as fit, one call per request.
        let mut stats = PackingStats::default();
        for lines in reqs {
            stats.add(&PackingStats::of(
                &pack(lines, STREAM, PackConfig::default()).map_err(|e| e.to_string())?,
            ));
        }
        rows.push(Row {
            how: "edge direct mode / API Gateway path: a record per request".into(),
            per_request,
            calls: stats.calls as u64,
            stats,
        });
        // Queue mode: requests become messages; the consumer packs batches of
        // 100 messages into records and one call.
        let messages: Vec<String> = reqs
            .iter()
            .flat_map(|l| group_lines(l, QUEUE_MESSAGE_TARGET_BYTES))
            .collect();
        let mut stats = PackingStats::default();
        for batch in messages.chunks(QUEUE_MAX_BATCH_MESSAGES) {
            let records = pack_records(batch, PackConfig::default()).map_err(|e| e.to_string())?;
            stats.add(&PackingStats::of(&pack_calls(records, STREAM)));
        }
        rows.push(Row {
            how: "edge queue mode: consumer batches of 100 messages".into(),
            per_request,
            calls: stats.calls as u64,
            stats,
        });
    }
    let kinesis = kinesis_rows(&by_size)?;
    let sqs = sqs_rows(&by_size)?;
    let mut table = render(&rows);
    table.push('\n');
    table.push_str(&render_streams(
        "Kinesis Data Streams per million events",
        &format!("The same {EVENTS} events sent with `SINK = \"kinesis\"` (`shared::kinesis::pack`: aggregated records of up to 51,200 bytes, 500 records or 5 MiB a call), scaled to a million. A PUT payload unit is 25 KB of a record, rounded up; a shard takes 1,000 records and 1 MiB a second."),
        "PUT payload units",
        "Kinesis records",
        &kinesis,
    ));
    let envelope = rows.first().map_or(1, |r| r.stats.payload_bytes / EVENTS as u64).max(1);
    table.push_str(&format!(
        "\nAggregation is what makes a 170-byte event cheap here: alone it is a record and a whole PUT payload unit; aggregated, up to {} of its {envelope}-byte envelopes share a unit, and a record of a shard's 1,000 a second. Keyed by `anonymous_id`, a request's events split into one record per device they name.\n\n",
        PUT_PAYLOAD_UNIT_BYTES as u64 / envelope
    ));
    table.push_str(&render_streams(
        "SQS per million events",
        &format!("The same {EVENTS} events sent with `SINK = \"sqs\"` (`shared::sqs::pack`: lines joined into messages of up to 256 KiB, 10 messages or 1 MiB a call), scaled to a million. SQS bills a request per 64 KiB of a call's payload."),
        "billed requests",
        "messages",
        &sqs,
    ));
    let streams = |rs: &[StreamRow]| -> Vec<serde_json::Value> {
        rs.iter()
            .map(|r| {
                serde_json::json!({"how": r.how, "events_per_request": r.per_request, "records_per_million": r.records,
                    "calls_per_million": r.calls, "billed_units_per_million": r.billed})
            })
            .collect()
    };
    let firehose_json = serde_json::json!(
        rows.iter()
            .map(|r| serde_json::json!({
                "how": r.how,
                "events_per_request": r.per_request,
                "records_per_million": r.stats.records as u64 * PER_MILLION,
                "calls_per_million": r.calls * PER_MILLION,
                "payload_bytes_per_million": r.stats.payload_bytes * PER_MILLION,
                "billed_bytes_per_million": r.stats.billed_bytes * PER_MILLION,
            }))
            .collect::<Vec<_>>()
    );
    let json = serde_json::json!({"firehose": firehose_json, "kinesis": streams(&kinesis), "sqs": streams(&sqs)});
    report::publish("packing", &table, Some(&json), write.file())
}

fn render(rows: &[Row]) -> String {
    let payload = rows.first().map_or(0, |r| r.stats.payload_bytes) as f64 / EVENTS as f64;
    let mut t = format!(
        "### Firehose cost per million events ({})\n\n`make bench-packing` — {EVENTS} ~170-byte events ({payload:.0} bytes each once the edge envelopes them), packed by `shared::batch` the way each path sends them; scaled to a million. Firehose bills each record rounded up to 5 KB.\n\n",
        report::today()
    );
    t.push_str("| how events reach Firehose | events per request | records | calls | billed GB | billed ÷ payload |\n|---|---|---|---|---|---|\n");
    for r in rows {
        let billed = r.stats.billed_bytes * PER_MILLION;
        t.push_str(&format!(
            "| {} | {} | {} | {} | {:.2} | {:.2}× |\n",
            r.how,
            r.per_request,
            r.stats.records as u64 * PER_MILLION,
            r.calls * PER_MILLION,
            billed as f64 / 1e9,
            r.stats.billed_bytes as f64 / r.stats.payload_bytes.max(1) as f64
        ));
    }
    t.push_str("\nCalls are `PutRecordBatch` (at most 500 records or 4 MiB each); with one event per request every path makes a call and a record per click. Queue mode's calls are per consumer batch, whatever the requests' sizes; with fewer than 100 messages waiting, `max_batch_timeout` sends smaller batches.\n");
    t
}

/// One way of sending to Kinesis or SQS.
struct StreamRow {
    how: String,
    per_request: usize,
    /// Kinesis records, or SQS messages.
    records: u64,
    calls: u64,
    /// PUT payload units (Kinesis) or billed requests (SQS).
    billed: u64,
}

/// Kinesis: every call's records, aggregated or not, keyed as the edge keys
/// them by default (random) or by `anonymous_id`.
fn kinesis_rows(reqs_by_size: &[(usize, Vec<Vec<String>>)]) -> Result<Vec<StreamRow>, String> {
    let random = SeededRandom::new(7);
    let by_device = PartitionKeys::parse("field:anonymous_id")?;
    let mut rows = Vec::new();
    for (per_request, reqs) in reqs_by_size {
        for (how, aggregate, keys) in [
            (
                "a record per event (no aggregation), random keys",
                false,
                &PartitionKeys::Random,
            ),
            ("aggregated, random keys (the default)", true, &PartitionKeys::Random),
            ("aggregated, keyed by anonymous_id (17 devices)", true, &by_device),
        ] {
            let config = KinesisPack {
                aggregate,
                ..KinesisPack::default()
            };
            let (mut records, mut calls, mut units) = (0u64, 0u64, 0u64);
            // Direct mode: each request packed alone, as a window of one request.
            for lines in reqs {
                let line_keys: Vec<Option<String>> = lines.iter().map(|l| keys.key_of(l)).collect();
                for call in kinesis_pack(lines, &line_keys, STREAM, &config, &random).map_err(|e| e.to_string())? {
                    calls += 1;
                    for r in &call.records {
                        records += 1;
                        units += r.entry().counted_bytes().div_ceil(PUT_PAYLOAD_UNIT_BYTES) as u64;
                    }
                }
            }
            rows.push(StreamRow {
                how: format!("edge direct mode, a call per request: {how}"),
                per_request: *per_request,
                records: records * PER_MILLION,
                calls: calls * PER_MILLION,
                billed: units * PER_MILLION,
            });
        }
        // Queue mode: a consumer batch of 100 messages, aggregated, random keys.
        let messages: Vec<String> = reqs
            .iter()
            .flat_map(|l| group_lines(l, QUEUE_MESSAGE_TARGET_BYTES))
            .collect();
        let (mut records, mut calls, mut units) = (0u64, 0u64, 0u64);
        for batch in messages.chunks(QUEUE_MAX_BATCH_MESSAGES) {
            let lines: Vec<&str> = batch.iter().flat_map(|m| m.split('\n')).collect();
            let none = vec![None; lines.len()];
            for call in
                kinesis_pack(&lines, &none, STREAM, &KinesisPack::default(), &random).map_err(|e| e.to_string())?
            {
                calls += 1;
                for r in &call.records {
                    records += 1;
                    units += r.entry().counted_bytes().div_ceil(PUT_PAYLOAD_UNIT_BYTES) as u64;
                }
            }
        }
        rows.push(StreamRow {
            how: "edge queue mode, consumer batches of 100 messages: aggregated, random keys".into(),
            per_request: *per_request,
            records: records * PER_MILLION,
            calls: calls * PER_MILLION,
            billed: units * PER_MILLION,
        });
    }
    Ok(rows)
}

/// SQS: messages and calls as the edge packs them, and the requests SQS
/// bills (each 64 KiB of a call's payload).
fn sqs_rows(reqs_by_size: &[(usize, Vec<Vec<String>>)]) -> Result<Vec<StreamRow>, String> {
    let random = SeededRandom::new(7);
    let mut rows = Vec::new();
    let tally = |batches: &[edgehose_shared::sqs::pack::Batch], row: &mut StreamRow| {
        for b in batches {
            row.calls += 1;
            row.records += b.messages.len() as u64;
            row.billed += b.bytes.div_ceil(SQS_BILLING_CHUNK_BYTES).max(1) as u64;
        }
    };
    for (per_request, reqs) in reqs_by_size {
        // What a producer that sends each event as a message does: ten a call.
        let mut naive = StreamRow {
            how: "a message per event, ten a call (a producer batching across requests)".into(),
            per_request: *per_request,
            records: 0,
            calls: 0,
            billed: 0,
        };
        let all: Vec<&String> = reqs.iter().flatten().collect();
        for ten in all.chunks(10) {
            naive.calls += 1;
            naive.records += ten.len() as u64;
            let bytes: usize = ten.iter().map(|l| l.len()).sum();
            naive.billed += bytes.div_ceil(SQS_BILLING_CHUNK_BYTES).max(1) as u64;
        }
        let mut direct = StreamRow {
            how: "edge direct mode, a call per request: events many to a message".into(),
            per_request: *per_request,
            records: 0,
            calls: 0,
            billed: 0,
        };
        for lines in reqs {
            tally(
                &sqs_pack(lines, &[], false, SqsPack::default(), &random).map_err(|e| e.to_string())?,
                &mut direct,
            );
        }
        let mut queued = StreamRow {
            how: "edge queue mode: consumer batches of 100 messages".into(),
            per_request: *per_request,
            records: 0,
            calls: 0,
            billed: 0,
        };
        let messages: Vec<String> = reqs
            .iter()
            .flat_map(|l| group_lines(l, QUEUE_MESSAGE_TARGET_BYTES))
            .collect();
        for batch in messages.chunks(QUEUE_MAX_BATCH_MESSAGES) {
            let lines: Vec<&str> = batch.iter().flat_map(|m| m.split('\n')).collect();
            tally(
                &sqs_pack(&lines, &[], false, SqsPack::default(), &random).map_err(|e| e.to_string())?,
                &mut queued,
            );
        }
        for mut row in [naive, direct, queued] {
            row.records *= PER_MILLION;
            row.calls *= PER_MILLION;
            row.billed *= PER_MILLION;
            rows.push(row);
        }
    }
    Ok(rows)
}

fn render_streams(title: &str, intro: &str, billed: &str, records: &str, rows: &[StreamRow]) -> String {
    let mut t = format!("### {title} ({})\n\n{intro}\n\n", report::today());
    t.push_str(&format!(
        "| how events reach it | events per request | {records} | calls | {billed} |\n|---|---|---|---|---|\n"
    ));
    for r in rows {
        t.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            r.how, r.per_request, r.records, r.calls, r.billed
        ));
    }
    t
}
