//! The real `transform` binary behind a Lambda Runtime API, as Lambda runs
//! it: events in over HTTP, responses, structured logs and EMF lines out.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::time::Duration;

use base64::Engine;
use edgehose_local::aws::lambda_runtime::{Outcome, RuntimeApi};
use edgehose_tests::events::{edge_envelopes, record_of, wait_for};

fn firehose_event(records: &[Vec<u8>]) -> serde_json::Value {
    serde_json::json!({
        "invocationId": "inv-1",
        "deliveryStreamArn": "arn:aws:firehose:us-east-1:123456789012:deliverystream/clicks",
        "region": "us-east-1",
        "records": records.iter().enumerate().map(|(i, d)| serde_json::json!({
            "recordId": format!("rec-{i}"),
            "approximateArrivalTimestamp": 1_714_566_600_000u64,
            "data": base64::engine::general_purpose::STANDARD.encode(d),
        })).collect::<Vec<_>>(),
    })
}

fn envelopes(body: &str) -> Vec<u8> {
    record_of(&edge_envelopes(body))
}

#[test]
fn the_transform_binary_answers_invocations_through_the_runtime_api() {
    let api = RuntimeApi::start().unwrap();
    let function = api
        .spawn(
            env!("CARGO_BIN_EXE_transform").as_ref(),
            "edgehose-transform",
            &[("AWS_LAMBDA_LOG_FORMAT", "JSON"), ("PARTITIONING", "true")],
        )
        .unwrap();
    let good = envelopes(r#"{"event":"click","message_id":"a1"}"#);
    let bad = envelopes(r#"{"message_id":"a2"}"#);
    let event = firehose_event(&[good, bad, Vec::new()]);

    for round in 0..3 {
        let outcome = api
            .invoke(&event, Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{e}\n{}", function.log()));
        let Outcome::Response(resp) = outcome else {
            panic!("round {round}: {outcome:?}\n{}", function.log())
        };
        let results: Vec<&str> = resp["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["result"].as_str().unwrap())
            .collect();
        assert_eq!(results, ["Ok", "ProcessingFailed", "Dropped"]);
        assert_eq!(resp["records"][0]["recordId"], "rec-0");
        assert_eq!(resp["records"][0]["metadata"]["partitionKeys"]["event_name"], "click");
    }

    // The response can reach the Runtime API before the function's last log
    // lines reach the pipe we read them from: wait for them, never sleep.
    let emf_lines = |log: &str| -> Vec<serde_json::Value> {
        log.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v.get("_aws").is_some())
            .collect()
    };
    wait_for(Duration::from_secs(10), || emf_lines(&function.log()).len() >= 3);
    let log = function.log();
    let emf = emf_lines(&log);
    assert_eq!(emf.len(), 3, "one EMF line per invocation:\n{log}");
    assert_eq!(
        (emf[0]["EventsOk"].as_u64(), emf[0]["EventsInvalid"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(
        log.lines()
            .any(|l| l.contains("\"transformed\"") && l.trim_start().starts_with('{')),
        "structured JSON logs:\n{log}"
    );
}

#[test]
fn the_aws_sample_event_goes_through_the_binary() {
    let api = RuntimeApi::start().unwrap();
    let function = api
        .spawn(env!("CARGO_BIN_EXE_transform").as_ref(), "edgehose-transform", &[])
        .unwrap();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/aws-example-firehose-event.json"
    ))
    .unwrap();
    let event: serde_json::Value = serde_json::from_str(&text).unwrap();
    let Outcome::Response(resp) = api.invoke(&event, Duration::from_secs(30)).unwrap() else {
        panic!("{}", function.log())
    };
    let results: Vec<(&str, &str)> = resp["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["recordId"].as_str().unwrap(), r["result"].as_str().unwrap()))
        .collect();
    assert_eq!(
        results,
        [("record1", "ProcessingFailed"), ("record2", "ProcessingFailed")]
    );
}

#[test]
fn the_binary_loads_schemas_from_schema_dir_and_refuses_to_start_on_a_broken_one() {
    let api = RuntimeApi::start().unwrap();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/schemas");
    let function = api
        .spawn(
            env!("CARGO_BIN_EXE_transform").as_ref(),
            "edgehose-transform",
            &[("SCHEMA_DIR", dir)],
        )
        .unwrap();
    let event = firehose_event(&[envelopes(
        r##"{"event":"click","target":"#buy","properties":{"price":-5}}"##,
    )]);
    let Outcome::Response(resp) = api.invoke(&event, Duration::from_secs(30)).unwrap() else {
        panic!("{}", function.log())
    };
    assert_eq!(
        resp["records"][0]["result"], "ProcessingFailed",
        "the only event breaks the click schema"
    );

    let broken = std::env::temp_dir().join(format!("edgehose-broken-schemas-{}", std::process::id()));
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("click.json"), r#"{"type": 12}"#).unwrap();
    let api = RuntimeApi::start().unwrap();
    let mut function = api
        .spawn(
            env!("CARGO_BIN_EXE_transform").as_ref(),
            "edgehose-transform",
            &[("SCHEMA_DIR", broken.to_str().unwrap())],
        )
        .unwrap();
    // Lambda reports a function that exits during init as an init failure, with its log.
    let status = function
        .wait_exit(Duration::from_secs(20))
        .expect("the function exits at cold start");
    assert!(!status.success());
    assert!(function.log().contains("click.json"), "{}", function.log());
    let _ = std::fs::remove_dir_all(broken);
}
