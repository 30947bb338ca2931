//! The realistic events edgehose is tested, benchmarked and priced with —
//! one generator, so a figure in BENCHMARKS.md, a cost in `edgehose cost`
//! and an end-to-end test speak of the same traffic:
//!
//! - [`ride_sample`]: an exercise bike's once-a-second sample, ~140 bytes
//!   of device telemetry (tests, pipeline and packing benches);
//! - [`TELEMETRY_177`]: one such sample of 177 bytes, the edge benchmark's body;
//! - [`click`]: a click as a shop page sends it, ~190 bytes and its id
//!   (the latency tool);
//! - [`sized`]: an event of exactly the size asked for (the cost model);
//! - [`envelopes`]: their envelope lines exactly as the edge writes them.
//!
//! Only `edgehose-shared` below it: it builds for wasm32 too (the wasm probe).

use edgehose_shared::clock::SeededRandom;
use edgehose_shared::decode::{BodyFormat, parse_events};
use edgehose_shared::envelope::{Dialect, EdgeMeta, RequestContext, wrap_items};
use edgehose_shared::limits::Limits;
use edgehose_shared::timestamp::Timestamp;

/// When the samples' clocks read (2024-05-01T12:30:00Z), so runs repeat.
pub const SAMPLE_EPOCH_MS: i64 = 1_714_566_600_000;

/// When [`envelopes`] says its requests arrived: 250 ms after [`SAMPLE_EPOCH_MS`].
pub const RECEIVED_AT_MS: i64 = SAMPLE_EPOCH_MS + 250;

/// The `n`-th sample of a run: a bike's power, cadence and heart rate, with
/// a unique `message_id` (`<run>-<n>`) and one of 17 bikes as `anonymous_id`.
pub fn ride_sample(run: &str, n: usize) -> String {
    format!(
        r#"{{"event":"ride_sample","message_id":"{run}-{n}","ts":{},"anonymous_id":"bike-{}","properties":{{"watts":{},"cadence":{},"hr":{}}}}}"#,
        SAMPLE_EPOCH_MS + n as i64 * 1000,
        n % 17,
        150 + n % 200,
        80 + n % 20,
        120 + n % 50
    )
}

/// A 177-byte ride sample without a `message_id` (the edge gives it one).
pub const TELEMETRY_177: &str = r#"{"event":"ride_sample","ts":1714566600000,"anonymous_id":"bike-0000000000000000000000000000000000000","properties":{"watts":231,"cadence":88,"hr":141,"speed_kmh":32.4,"gear":7}}"#;

/// A click on a shop page at `ts_ms`: ~190 bytes with a UUID id.
pub fn click(message_id: &str, ts_ms: i64) -> String {
    format!(
        r##"{{"event":"click","message_id":"{message_id}","ts":{ts_ms},"anonymous_id":"a-7f3c","url":"https://shop.example/p/42","target":"#buy","properties":{{"price":9.5}}}}"##
    )
}

/// The `n`-th event of exactly `bytes` bytes (at least as long as its fixed
/// fields), its `properties.p` padded.
pub fn sized(n: usize, bytes: usize) -> String {
    let head = format!(
        r#"{{"event":"click","message_id":"cost-{n:08}","ts":{},"anonymous_id":"a-{:06}","properties":{{"p":""#,
        SAMPLE_EPOCH_MS + n as i64,
        n % 100_000
    );
    let tail = r#""}}"#;
    let pad = bytes.saturating_sub(head.len() + tail.len());
    format!("{head}{}{tail}", "x".repeat(pad))
}

/// NDJSON events as the edge envelopes them, 500 to a request (the most
/// one takes): every envelope line, in order (see [`envelopes`]).
pub fn envelope_lines(ndjson: &str) -> Result<Vec<String>, String> {
    let bodies: Vec<String> = ndjson
        .lines()
        .collect::<Vec<_>>()
        .chunks(500)
        .map(|c| c.join("\n"))
        .collect();
    Ok(envelopes(&bodies)?.into_iter().flatten().collect())
}

/// Lines joined into one Firehose record's bytes (each followed by `\n`).
pub fn record_of(lines: &[String]) -> Vec<u8> {
    lines.iter().flat_map(|l| format!("{l}\n").into_bytes()).collect()
}

/// Each NDJSON request body's envelope lines, exactly as the edge writes
/// them: received at [`RECEIVED_AT_MS`] through Frankfurt with write key
/// `web`, ids drawn from one seeded source. A body the edge would refuse is
/// an error naming why.
pub fn envelopes(bodies: &[String]) -> Result<Vec<Vec<String>>, String> {
    let edge = EdgeMeta {
        country: Some("DE".into()),
        colo: Some("FRA".into()),
        asn: Some(3320),
        client_ip: None,
    };
    let ctx = RequestContext {
        received_at: Timestamp::from_millis(RECEIVED_AT_MS),
        key_id: Some("web"),
        edge: &edge,
        content_type: Some("application/x-ndjson"),
        dialect: Dialect::V1,
    };
    let random = SeededRandom::new(4);
    bodies
        .iter()
        .map(|body| {
            let decoded = parse_events(body.as_bytes(), BodyFormat::Ndjson, &Limits::default())
                .map_err(|e| format!("not a body the edge accepts: {e}"))?;
            Ok(wrap_items(&ctx, &decoded.items, &random))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_the_sizes_they_say() {
        assert_eq!(TELEMETRY_177.len(), 177);
        assert!(
            (120..=160).contains(&ride_sample("r", 3).len()),
            "{}",
            ride_sample("r", 3)
        );
        assert!((140..=200).contains(&click("m-1", SAMPLE_EPOCH_MS).len()));
        for bytes in [120, 170, 1000, 5000] {
            assert_eq!(sized(7, bytes).len(), bytes);
        }
        assert_ne!(ride_sample("r", 1), ride_sample("r", 2));
    }

    #[test]
    fn envelopes_keep_each_request_s_events_in_order() {
        let bodies = vec![
            [ride_sample("e", 0), ride_sample("e", 1)].join("\n"),
            ride_sample("e", 2),
        ];
        let lines = envelopes(&bodies).unwrap_or_default();
        assert_eq!(lines.iter().map(Vec::len).collect::<Vec<_>>(), [2, 1]);
        assert!(lines[0][0].contains(r#""message_id":"e-0""#), "{}", lines[0][0]);
        assert!(lines[1][0].contains(r#""message_id":"e-2""#), "{}", lines[1][0]);
        assert!(envelopes(&[String::new()]).unwrap_err().contains("not a body"));
    }
}
