//! The billed quantities of a month's traffic on each path, counted by the
//! code that moves the events: events of the given size enveloped as the
//! edge envelopes them (`shared::envelope`), then grouped into queue
//! messages, Firehose records and `PutRecordBatch` calls by `shared::batch`,
//! exactly as each path sends them, records filled as the destination
//! wants them ([`Destination::pack_config`]). Nothing here is a formula for
//! packing.

use crate::destination::{Billed, Destination};
use crate::error::Result;
use edgehose_shared::batch::{PackConfig, PackingStats, group_lines, pack, pack_calls, pack_records};
use edgehose_shared::limits::{
    DIRECT_FLUSH_BYTES, DIRECT_FLUSH_LINES, QUEUE_BILLING_INCREMENT_BYTES, QUEUE_MAX_BATCH_MESSAGES,
    QUEUE_MESSAGE_TARGET_BYTES,
};

/// How many events are packed to count a path's quantities (then scaled).
pub const SAMPLE_EVENTS: usize = 20_000;

/// How the requests reach the edge and leave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Events in each request.
    pub events_per_request: usize,
    /// Bytes of each event as the client sends it.
    pub event_bytes: usize,
    /// Requests one isolate gathers in one window (direct mode's
    /// `DIRECT_FLUSH_MS`, queue mode's `QUEUE_WINDOW_MS`); 1 when every
    /// request is alone in its window.
    pub requests_per_window: usize,
}

/// What one path does for [`SAMPLE_EVENTS`] events.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Quantities {
    /// Events counted.
    pub events: u64,
    /// Client requests.
    pub requests: u64,
    /// Bytes of all request bodies.
    pub body_bytes: u64,
    /// Queue messages written (each read and deleted once).
    pub queue_messages: u64,
    /// Queue operations billed per write (64 KB increments of each message).
    pub queue_units: u64,
    /// Queue-consumer invocations (full batches of 100 messages).
    pub consumer_batches: u64,
    /// What reached Firehose.
    pub firehose: PackingStats,
}

impl Quantities {
    /// Scales to `events` events.
    pub fn per(&self, events: f64) -> f64 {
        events / self.events.max(1) as f64
    }
}

/// Each request's envelope lines, as the edge (and `ingest-api`) writes
/// them, with its body's size.
fn requests(shape: Shape) -> Vec<(usize, Vec<String>)> {
    let k = shape.events_per_request.max(1);
    let events = SAMPLE_EVENTS.div_ceil(k) * k;
    let bodies: Vec<String> = (0..events)
        .collect::<Vec<_>>()
        .chunks(k)
        .map(|chunk| {
            chunk
                .iter()
                .map(|&n| edgehose_sample::sized(n, shape.event_bytes))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect();
    let lines = edgehose_sample::envelopes(&bodies).unwrap_or_else(|e| panic!("a body the edge accepts: {e}"));
    bodies.iter().map(String::len).zip(lines).collect()
}

fn base(reqs: &[(usize, Vec<String>)]) -> Quantities {
    Quantities {
        events: reqs.iter().map(|(_, l)| l.len() as u64).sum(),
        requests: reqs.len() as u64,
        body_bytes: reqs.iter().map(|(b, _)| *b as u64).sum(),
        ..Quantities::default()
    }
}

fn packed(lines: &[String], config: PackConfig) -> Result<PackingStats> {
    Ok(PackingStats::of(&pack(lines, "edgehose-events", config)?))
}

/// A function behind API Gateway or a function URL: each request's events
/// in as few records as fit (one each for Iceberg), one call per request
/// (`ingest-api`).
pub fn per_request(shape: Shape, destination: Destination) -> Result<Quantities> {
    let reqs = requests(shape);
    let mut q = base(&reqs);
    for (_, lines) in &reqs {
        q.firehose.add(&packed(lines, destination.pack_config())?);
    }
    Ok(q)
}

/// The windows of `shape.requests_per_window` requests, each window's lines.
fn windows(reqs: &[(usize, Vec<String>)], per_window: usize) -> Vec<Vec<String>> {
    reqs.chunks(per_window.max(1))
        .map(|w| w.iter().flat_map(|(_, l)| l.iter().cloned()).collect())
        .collect()
}

/// The edge in direct mode: each window's lines packed into one call, a
/// window sent early once it holds `DIRECT_FLUSH_LINES` lines or
/// `DIRECT_FLUSH_BYTES`, as `edge/src/window.rs` does.
pub fn edge_direct(shape: Shape, destination: Destination) -> Result<Quantities> {
    let config = destination.pack_config();
    let reqs = requests(shape);
    let mut q = base(&reqs);
    for window in windows(&reqs, shape.requests_per_window) {
        let mut start = 0;
        let mut bytes = 0;
        for (i, line) in window.iter().enumerate() {
            bytes += line.len() + 1;
            if i + 1 - start >= DIRECT_FLUSH_LINES || bytes >= DIRECT_FLUSH_BYTES {
                q.firehose.add(&packed(&window[start..=i], config)?);
                start = i + 1;
                bytes = 0;
            }
        }
        if start < window.len() {
            q.firehose.add(&packed(&window[start..], config)?);
        }
    }
    Ok(q)
}

/// The edge in queue mode: each window's lines (each request's, with no
/// window) as messages of whole lines; the consumer packs batches of 100
/// messages into records and calls (for Iceberg, each message's lines a
/// record each).
pub fn edge_queue(shape: Shape, destination: Destination) -> Result<Quantities> {
    let reqs = requests(shape);
    let mut q = base(&reqs);
    let messages: Vec<String> = windows(&reqs, shape.requests_per_window)
        .iter()
        .flat_map(|w| group_lines(w, QUEUE_MESSAGE_TARGET_BYTES))
        .collect();
    q.queue_messages = messages.len() as u64;
    q.queue_units = messages
        .iter()
        .map(|m| m.len().div_ceil(QUEUE_BILLING_INCREMENT_BYTES).max(1) as u64)
        .sum();
    for batch in messages.chunks(QUEUE_MAX_BATCH_MESSAGES) {
        q.consumer_batches += 1;
        let records = match destination {
            // A message is whole lines: NDJSON as it stands.
            Destination::Json => pack_records(batch, destination.pack_config())?,
            Destination::Iceberg => {
                let lines: Vec<&str> = batch.iter().flat_map(|m| m.split('\n')).collect();
                pack_records(&lines, destination.pack_config())?
            }
        };
        q.firehose
            .add(&PackingStats::of(&pack_calls(records, "edgehose-events")));
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(k: usize, per_window: usize) -> Shape {
        Shape {
            events_per_request: k,
            event_bytes: 170,
            requests_per_window: per_window,
        }
    }

    #[test]
    fn events_have_the_size_asked_for() {
        assert_eq!(edgehose_sample::sized(3, 170).len(), 170);
        assert_eq!(edgehose_sample::sized(3, 1000).len(), 1000);
        assert!(serde_json::from_str::<serde_json::Value>(&edgehose_sample::sized(3, 170)).is_ok());
    }

    #[test]
    fn one_event_per_request_is_one_record_and_one_call_each_on_the_api_gateway_path() {
        let q = per_request(shape(1, 1), Destination::Json).unwrap();
        assert_eq!(q.events, SAMPLE_EVENTS as u64);
        assert_eq!(q.firehose.records as u64, q.events);
        assert_eq!(q.firehose.calls as u64, q.events);
        assert_eq!(q.firehose.billed_bytes, q.events * 5 * 1024);
    }

    #[test]
    fn a_window_of_requests_shares_records_in_direct_mode() {
        let alone = edge_direct(shape(1, 1), Destination::Json).unwrap();
        let shared = edge_direct(shape(1, 20), Destination::Json).unwrap();
        assert_eq!(alone.firehose.records as u64, alone.events);
        assert_eq!(shared.firehose.records as u64, alone.events / 20);
        assert_eq!(shared.firehose.calls, shared.firehose.records);
    }

    #[test]
    fn queue_mode_writes_a_message_per_window_and_packs_100_at_a_time() {
        let alone = edge_queue(shape(1, 1), Destination::Json).unwrap();
        assert_eq!(alone.queue_messages, alone.events);
        assert_eq!(alone.queue_units, alone.events);
        assert_eq!(alone.consumer_batches, alone.events / 100);
        let windowed = edge_queue(shape(1, 50), Destination::Json).unwrap();
        assert_eq!(windowed.queue_messages, alone.events / 50);
        // 100 messages of one ~400-byte line each fill far less than a record.
        assert_eq!(alone.firehose.records as u64, alone.consumer_batches);
    }

    #[test]
    fn with_iceberg_every_path_sends_one_event_a_record() {
        for k in [1, 20] {
            let paths = [
                per_request(shape(k, 1), Destination::Iceberg).unwrap(),
                edge_direct(shape(k, 20), Destination::Iceberg).unwrap(),
                edge_queue(shape(k, 20), Destination::Iceberg).unwrap(),
            ];
            let json = per_request(shape(k, 1), Destination::Json).unwrap();
            for q in paths {
                assert_eq!(q.firehose.records as u64, q.events, "{q:?}");
                assert_eq!(q.firehose.lines as u64, q.events, "{q:?}");
                // The same lines, the same bytes, however they are grouped.
                assert_eq!(q.firehose.payload_bytes, json.firehose.payload_bytes, "{q:?}");
                assert!(q.firehose.calls >= q.firehose.records.div_ceil(500), "{q:?}");
            }
        }
    }

    #[test]
    fn big_messages_are_billed_per_64_kb() {
        let q = edge_queue(shape(400, 1), Destination::Json).unwrap();
        assert!(q.queue_units > q.queue_messages, "{q:?}");
    }
}
