//! What a row for the Iceberg destination weighs against the envelope line
//! it is made from: Firehose bills the bytes the transform adds, and
//! `edgehose cost --destination iceberg` prices them at
//! `ICEBERG_ROW_GROWTH` times the line. Measured here on the events the cost
//! model sends, and held to the model's figure.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use edgehose_cost::destination::ICEBERG_ROW_GROWTH;
use edgehose_regional::transform::{InputRecord, RecordData, TransformConfig, transform};

/// Output bytes per input byte for `count` events of `bytes` bytes, each
/// its own record, as the edge sends them to the Iceberg destination.
fn growth(bytes: usize, count: usize) -> f64 {
    let bodies: Vec<String> = (0..count).map(|n| edgehose_sample::sized(n, bytes)).collect();
    let lines: Vec<String> = edgehose_sample::envelopes(&bodies)
        .unwrap()
        .into_iter()
        .flatten()
        .collect();
    let datas: Vec<Vec<u8>> = lines.iter().map(|l| format!("{l}\n").into_bytes()).collect();
    let ids: Vec<String> = (0..count).map(|i| format!("r{i}")).collect();
    let records: Vec<InputRecord<'_>> = datas
        .iter()
        .zip(&ids)
        .map(|(d, id)| InputRecord {
            id,
            data: RecordData::Bytes(d),
            arrived_ms: 0,
        })
        .collect();
    let config = TransformConfig {
        iceberg_database: Some("edgehose".to_owned()),
        ..TransformConfig::default()
    };
    let (response, counts) = transform(&records, &config);
    assert_eq!(counts.events_ok, count as u64);
    let out: usize = response
        .records
        .iter()
        .map(|r| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(r.data.as_str())
                .unwrap()
                .len()
        })
        .sum();
    let input: usize = datas.iter().map(Vec::len).sum();
    out as f64 / input as f64
}

#[test]
fn the_cost_models_row_growth_is_what_the_transform_writes() {
    for bytes in [100, 170, 1000, 4000] {
        println!(
            "{bytes}-byte events: rows are {:.2}x their envelope lines",
            growth(bytes, 200)
        );
    }
    // The cost model's default event is 170 bytes.
    let at_default = growth(170, 200);
    assert!(
        (at_default / ICEBERG_ROW_GROWTH - 1.0).abs() < 0.05,
        "rows are {at_default:.3}x their lines; edgehose cost prices {ICEBERG_ROW_GROWTH}x"
    );
}
