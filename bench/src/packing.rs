//! `edgehose-bench packing`: what Firehose bills, and how many calls it
//! takes, per million ~170-byte events, for the ways events can reach it.
//! Firehose bills ingestion per record rounded up to the next 5 KB
//! (<https://aws.amazon.com/firehose/pricing/>), so a 300-byte record costs
//! as much as a 5 KB one.
//!
//! Every figure comes from the packing code the edge and `ingest-api` run
//! (`shared::batch`), applied to events enveloped exactly as the edge does;
//! none is a formula.

use edgehose_shared::batch::{PackConfig, PackingStats, group_lines, pack, pack_calls, pack_records};
use edgehose_shared::limits::{QUEUE_MAX_BATCH_MESSAGES, QUEUE_MESSAGE_TARGET_BYTES};
use edgehose_tests::events::{edge_envelopes, event};

use crate::{flag, report};

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
fn requests(per_request: usize) -> Vec<Vec<String>> {
    let events: Vec<String> = (0..EVENTS).map(|n| event("pack", n)).collect();
    events
        .chunks(per_request)
        .map(|c| edge_envelopes(&c.join("\n")))
        .collect()
}

/// Runs the benchmark.
pub fn main(args: &[String]) -> Result<(), String> {
    let mut rows = Vec::new();
    for per_request in [1usize, 10, 50] {
        let reqs = requests(per_request);
        // One record per event, the request's records in one call: what a
        // function that maps each event to a record does.
        let mut stats = PackingStats::default();
        for lines in &reqs {
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
        for lines in &reqs {
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
    let table = render(&rows);
    let json = serde_json::json!(
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
    report::publish("packing", &table, Some(&json), flag(args, "--write"))
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
