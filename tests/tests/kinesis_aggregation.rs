//! The Kinesis aggregated record format against a reference no one here
//! wrote: `aws-kinesis-agg` from PyPI (awslabs' kinesis-aggregation, the
//! format of the Kinesis Producer Library). Its aggregator must make the same
//! bytes of the same user records, and its de-aggregator must read ours back,
//! keys and data, in order.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::io::Write;
use std::process::{Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use edgehose_shared::kinesis::aggregate::{Aggregate, UserRecord};
use serde_json::{Value, json};

/// Aggregates the records with the reference, and de-aggregates `ours`.
const REFERENCE: &str = r#"
import base64, json, sys
from aws_kinesis_agg.aggregator import RecordAggregator
from aws_kinesis_agg.deaggregator import iter_deaggregate_records
job = json.load(sys.stdin)
agg = RecordAggregator()
for pk, ehk, data in job["records"]:
    # It returns the finished aggregate when one fills up: ours must fit one.
    if agg.add_user_record(pk, base64.b64decode(data), ehk) is not None:
        raise SystemExit("the reference aggregator needed a second aggregate")
pk, ehk, data = agg.clear_and_get().get_contents()
ours = bytes.fromhex(job["ours"])
back = [
    [r["kinesis"]["partitionKey"], r["kinesis"].get("explicitHashKey"), r["kinesis"]["data"].decode(), r["kinesis"].get("aggregated", False)]
    for r in iter_deaggregate_records(
        {"SequenceNumber": "1", "PartitionKey": job["pk"], "ApproximateArrivalTimestamp": 0, "Data": ours},
        data_format="Boto3",
    )
]
print(json.dumps({"reference": data.hex(), "pk": pk, "back": back}))
"#;

fn reference(records: &[(String, Option<String>, Vec<u8>)], ours: &[u8], pk: &str) -> Value {
    let python = edgehose_local::tools::python().expect("the bootstrap's Python (make bootstrap)");
    let job = json!({
        "records": records.iter().map(|(k, h, d)| json!([k, h, STANDARD.encode(d)])).collect::<Vec<_>>(),
        "ours": ours.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        "pk": pk,
    });
    let mut child = Command::new(python)
        .args(["-c", REFERENCE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(job.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the reference failed (is aws-kinesis-agg installed? make bootstrap): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// 170-byte samples from `bikes` bikes (a key each), `n` in all.
fn samples(n: usize, bikes: usize, hash_keys: bool) -> Vec<(String, Option<String>, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let bike = i % bikes;
            let mut data = format!(
                r#"{{"event":"ride_sample","anonymous_id":"bike-{bike:04}","ts":{},"properties":{{"watts":{},"cadence":88,"hr":141,"gear":7,"é":"ü"}}}}"#,
                1_714_566_600_000u64 + i as u64 * 1000,
                150 + i % 200
            )
            .into_bytes();
            data.resize(170, b' ');
            let hash = hash_keys.then(|| format!("{}", (bike as u128) << 120));
            (format!("bike-{bike:04}"), hash, data)
        })
        .collect()
}

fn check(records: &[(String, Option<String>, Vec<u8>)]) {
    let mut agg = Aggregate::new();
    for (key, hash, data) in records {
        agg.push(UserRecord {
            partition_key: key,
            explicit_hash_key: hash.as_deref(),
            data,
        });
    }
    let ours = agg.encode().unwrap();
    let pk = agg.partition_key().unwrap();
    let r = reference(records, &ours, pk);
    assert_eq!(
        r["reference"].as_str().unwrap(),
        ours.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        "the same user records make the same bytes"
    );
    assert_eq!(r["pk"], pk, "the aggregate goes with its first record's key");
    let back = r["back"].as_array().unwrap();
    assert_eq!(back.len(), records.len(), "every user record read back");
    for (b, (key, hash, data)) in back.iter().zip(records) {
        assert_eq!(b[3], true, "read as aggregated");
        assert_eq!(b[0], key.as_str());
        assert_eq!(b[1].as_str(), hash.as_deref());
        assert_eq!(STANDARD.decode(b[2].as_str().unwrap()).unwrap(), *data);
    }
}

#[test]
fn the_reference_makes_our_bytes_and_reads_them_back() {
    check(&samples(1, 1, false));
    // A second's worth of samples from a fleet: keys repeat, records share an aggregate.
    check(&samples(300, 40, false));
    check(&samples(120, 7, true));
}

#[test]
fn binary_data_and_unicode_keys_survive() {
    let records: Vec<(String, Option<String>, Vec<u8>)> = (0..50u8)
        .map(|i| (format!("ключ-{}", i % 5), None, (0..=255u8).map(|b| b ^ i).collect()))
        .collect();
    check(&records);
}
