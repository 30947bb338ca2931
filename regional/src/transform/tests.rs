use base64::Engine;

use super::*;

fn edge_lines(body: &str) -> Vec<String> {
    edgehose_tests::events::edge_envelopes(body)
}

fn record(lines: &[String]) -> Vec<u8> {
    edgehose_tests::events::record_of(lines)
}

fn run(datas: &[Vec<u8>], config: &TransformConfig) -> (TransformResponse, Counts) {
    let ids: Vec<String> = (0..datas.len()).map(|i| format!("r{i}")).collect();
    let inputs: Vec<InputRecord<'_>> = datas
        .iter()
        .zip(&ids)
        .map(|(d, id)| InputRecord {
            id,
            data: RecordData::Bytes(d),
            arrived_ms: 0,
        })
        .collect();
    transform(&inputs, config)
}

fn decoded(r: &TransformedRecord) -> Vec<serde_json::Value> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(r.data.as_str())
        .unwrap();
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const VALID: &str = r##"{"event":"click","message_id":"m1","ts":"2024-05-01T12:29:59Z","sent_at":"2024-05-01T12:30:00Z","url":"https://shop.example/p/7","target":"#buy","properties":{"price":19.99}}"##;
const VALID2: &str = r#"{"event":"page_view","message_id":"m2","url":"https://shop.example/"}"#;
const INVALID: &str = r#"{"event":"","message_id":"m3","colour":"red"}"#;

#[test]
fn an_all_valid_record_is_ok_in_the_analyst_shape() {
    let (resp, counts) = run(
        &[record(&edge_lines(&format!("{VALID}\n{VALID2}")))],
        &TransformConfig::default(),
    );
    let r = &resp.records[0];
    assert_eq!((r.record_id.as_str(), r.result), ("r0", RecordResult::Ok));
    let lines = decoded(r);
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines[0],
        serde_json::json!({
            "id": "m1", "event": "click",
            // ts is 1 s before sent_at by the client's clock: received_at - 1 s.
            "event_time": "2024-05-01T12:29:59.250Z", "received_at": "2024-05-01T12:30:00.250Z",
            "sent_at": "2024-05-01T12:30:00.000Z", "message_id": "m1",
            "url": "https://shop.example/p/7", "target": "#buy",
            "key_id": "web", "country": "DE", "colo": "FRA", "asn": 3320,
            "properties": {"price": 19.99}
        })
    );
    assert_eq!(lines[1]["event"], "page_view");
    assert_eq!((counts.events_ok, counts.records_ok), (2, 1));
}

#[test]
fn an_all_invalid_record_fails_so_firehose_keeps_the_original_bytes() {
    let data = record(&edge_lines(INVALID));
    let (resp, counts) = run(std::slice::from_ref(&data), &TransformConfig::default());
    let r = &resp.records[0];
    assert_eq!(r.result, RecordResult::ProcessingFailed);
    // Firehose keeps the original whatever the answer says: none is echoed.
    assert!(r.data.is_empty(), "{}", r.data.as_str().len());
    // The reasons do not travel with the original bytes: they are handed to the log.
    assert_eq!(resp.failed_rejections.len(), 1);
    let rejected: serde_json::Value = serde_json::from_str(&resp.failed_rejections[0]).unwrap();
    assert_eq!(rejected["envelope"]["event"]["message_id"], "m3");
    assert!(!rejected["rejected"].as_array().unwrap().is_empty(), "{rejected}");
    assert_eq!((counts.events_invalid, counts.records_failed), (1, 1));
}

#[test]
fn a_mixed_record_keeps_valid_events_and_marks_each_invalid_one_with_its_reasons() {
    let lines = edge_lines(&format!("{VALID}\n{INVALID}\nnot json at all\n{VALID2}"));
    let (resp, counts) = run(&[record(&lines)], &TransformConfig::default());
    let r = &resp.records[0];
    assert_eq!(r.result, RecordResult::Ok);
    let out = decoded(r);
    assert_eq!(out.len(), 4, "two events and two rejected pieces");
    assert_eq!(
        (out[0]["event"].as_str(), out[1]["event"].as_str()),
        (Some("click"), Some("page_view"))
    );
    let invalid = &out[2];
    assert_eq!(invalid["id"], "m3");
    let reasons: Vec<&str> = invalid["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["unknown_field", "empty"]);
    assert_eq!(
        invalid["envelope"]["event"]["colour"], "red",
        "the original envelope is kept"
    );
    let quarantined = &out[3];
    assert_eq!(quarantined["rejected"][0]["reason"], "quarantined");
    assert_eq!(quarantined["envelope"]["quarantine"]["data"], "not json at all");
    assert_eq!(
        (counts.events_ok, counts.events_invalid, counts.events_quarantined),
        (2, 1, 1)
    );
}

#[test]
fn quarantined_raw_payloads_alone_fail_the_record() {
    let (resp, counts) = run(&[record(&edge_lines("{\"broken\": "))], &TransformConfig::default());
    assert_eq!(resp.records[0].result, RecordResult::ProcessingFailed);
    assert_eq!(counts.events_quarantined, 1);
}

#[test]
fn gzip_bytes_and_other_non_envelopes_fail_the_record() {
    let gz = vec![0x1F, 0x8B, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xFF, 0xFE];
    let (resp, _) = run(&[gz.clone(), b"Hello World".to_vec()], &TransformConfig::default());
    assert!(
        resp.records
            .iter()
            .all(|r| r.result == RecordResult::ProcessingFailed && r.data.is_empty())
    );
}

#[test]
fn an_empty_record_is_dropped() {
    let (resp, counts) = run(&[b"\n\n".to_vec()], &TransformConfig::default());
    assert_eq!(resp.records[0].result, RecordResult::Dropped);
    assert_eq!(counts.records_dropped, 1);
}

#[test]
fn partition_keys_carry_the_event_name_and_date_when_enabled() {
    let config = TransformConfig {
        partitioning: true,
        ..TransformConfig::default()
    };
    let (resp, _) = run(
        &[
            record(&edge_lines(VALID)),
            record(&edge_lines(&format!("{VALID}\n{VALID2}"))),
        ],
        &config,
    );
    let keys = |i: usize| resp.records[i].metadata.as_ref().unwrap().partition_keys.clone();
    assert_eq!(keys(0)["event_name"], "click");
    assert_eq!(keys(0)["event_date"], "2024-05-01");
    assert_eq!(keys(1)["event_name"], "_mixed");
    assert_eq!(
        (keys(0)["table"].as_str(), keys(1)["table"].as_str()),
        ("events", "events")
    );
    let (resp, _) = run(&[record(&edge_lines(VALID))], &TransformConfig::default());
    assert_eq!(resp.records[0].metadata, None);
}

/// The edge's lines with `label` written into each, as the edge's guard does.
fn labelled(body: &str, label: &str) -> Vec<String> {
    let label: edgehose_shared::label::Label = serde_json::from_str(label).unwrap();
    let mut lines = edge_lines(body);
    edgehose_shared::label::apply(&mut lines, &label);
    lines
}

#[test]
fn labelled_events_land_in_their_lanes_table_with_their_label_and_quarantined_bots_fail() {
    let config = TransformConfig {
        partitioning: true,
        ..TransformConfig::default()
    };
    let (resp, counts) = run(
        &[
            record(&labelled(VALID, r#"{"lane":"limited","limited":"address"}"#)),
            record(&labelled(
                VALID,
                r#"{"lane":"bots","bot":"bot","signal":"cf.bot_score","score":3}"#,
            )),
            record(&labelled(VALID, r#"{"bot":"verified","signal":"cf.verified_bot"}"#)),
            record(&labelled(
                VALID,
                r#"{"lane":"quarantine","bot":"tool","signal":"user_agent:curl"}"#,
            )),
            // Mixed lanes in one record (the edge never packs so): the main table.
            record(
                &[
                    labelled(VALID, r#"{"lane":"limited","limited":"key"}"#),
                    edge_lines(VALID2),
                ]
                .concat(),
            ),
        ],
        &config,
    );
    let table = |i: usize| resp.records[i].metadata.as_ref().unwrap().partition_keys["table"].clone();
    assert_eq!(
        (table(0), table(1), table(2), table(4)),
        ("limited".into(), "bots".into(), "events".into(), "events".into())
    );
    assert_eq!(decoded(&resp.records[0])[0]["label"]["limited"], "address");
    assert_eq!(decoded(&resp.records[1])[0]["label"]["score"], 3);
    assert_eq!(decoded(&resp.records[2])[0]["label"]["bot"], "verified");
    assert_eq!(decoded(&resp.records[4])[1].get("label"), None);
    assert_eq!(resp.records[3].result, RecordResult::ProcessingFailed);
    assert_eq!(counts.records_failed, 1);
    let bots: u64 = resp
        .receipt
        .cells()
        .filter(|(c, _)| c.reason == "bot")
        .map(|(_, n)| n[edgehose_shared::outcome::Outcome::Rejected.index()])
        .sum();
    assert_eq!(bots, 1, "{:?}", resp.receipt);
}

#[test]
fn event_names_are_escaped_the_way_hive_partitions_are() {
    assert_eq!(partition_value("page_view"), "page_view");
    assert_eq!(partition_value("クリック 🎉"), "クリック 🎉");
    assert_eq!(partition_value("a/b=c%d"), "a%2Fb%3Dc%25d");
    assert_eq!(partition_value("../x\u{0}\u{7f}\n"), "..%2Fx%00%7F%0A");
    assert_eq!(partition_value("\"#'*:?\\{[]^"), "%22%23%27%2A%3A%3F%5C%7B%5B%5D%5E");
    let config = TransformConfig {
        partitioning: true,
        ..TransformConfig::default()
    };
    let line = VALID.replacen("\"click\"", "\"checkout/step=2\"", 1);
    assert_ne!(line, VALID);
    let (resp, _) = run(&[record(&edge_lines(&line))], &config);
    let keys = &resp.records[0].metadata.as_ref().unwrap().partition_keys;
    assert_eq!(keys["event_name"], "checkout%2Fstep%3D2");
}

#[test]
fn results_serialize_with_the_names_firehose_expects() {
    let config = TransformConfig {
        partitioning: true,
        ..TransformConfig::default()
    };
    let (resp, _) = run(
        &[record(&edge_lines(VALID)), record(&edge_lines(INVALID)), Vec::new()],
        &config,
    );
    let v = serde_json::to_value(&resp).unwrap();
    let results: Vec<&str> = v["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["Ok", "ProcessingFailed", "Dropped"]);
    assert_eq!(v["records"][0]["recordId"], "r0");
    assert_eq!(v["records"][0]["metadata"]["partitionKeys"]["event_name"], "click");
}

#[test]
fn the_aws_sample_event_is_answered_record_by_record() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/aws-example-firehose-event.json"
    ))
    .unwrap();
    let event: TransformEvent = serde_json::from_str(&text).unwrap();
    // The same event as the aws_lambda_events crate reads it.
    let theirs: aws_lambda_events::event::firehose::KinesisFirehoseEvent = serde_json::from_str(&text).unwrap();
    assert_eq!(event.invocation_id, theirs.invocation_id.unwrap());
    assert_eq!(event.region, theirs.region.unwrap());
    assert_eq!(event.records.len(), theirs.records.len());
    for (ours, theirs) in event.records.iter().zip(&theirs.records) {
        assert_eq!(Some(&ours.record_id), theirs.record_id.as_ref());
        assert_eq!(
            ours.approximate_arrival_timestamp,
            theirs.approximate_arrival_timestamp.timestamp_millis()
        );
        let decoded = base64::engine::general_purpose::STANDARD.decode(&ours.data).unwrap();
        assert_eq!(&decoded[..], &theirs.data[..]);
    }
    let (resp, counts) = transform(&inputs(&event), &TransformConfig::default());
    let ids: Vec<&str> = resp.records.iter().map(|r| r.record_id.as_str()).collect();
    assert_eq!(ids, ["record1", "record2"]);
    // "Hello World" is not an edgehose envelope: kept under the error prefix
    // (Firehose writes the original bytes there), not dropped, and not echoed.
    assert!(
        resp.records
            .iter()
            .all(|r| r.result == RecordResult::ProcessingFailed && r.data.is_empty())
    );
    assert_eq!(counts.events_quarantined, 2);
}

#[test]
fn a_batch_near_six_megabytes_answers_within_the_lambda_limit_and_loses_nothing() {
    // ~4.4 MB of 170-byte events in 1 MB records: base64 in, analyst JSON out.
    let body: String = (0..26_000)
        .map(|i| format!("{}\n", VALID.replace("\"m1\"", &format!("\"e{i}\""))))
        .collect();
    let lines = edge_lines(&body);
    let records: Vec<Vec<u8>> = lines.chunks(4000).map(record).collect();
    let input_bytes: usize = records.iter().map(Vec::len).sum();
    assert!(input_bytes > 4_000_000, "{input_bytes}");
    let (resp, counts) = run(&records, &TransformConfig::default());
    let size = serde_json::to_vec(&resp).unwrap().len();
    assert!(size <= LAMBDA_MAX_RESPONSE_BYTES, "{size}");
    // Whatever did not fit is failed (its original bytes go to the error prefix), never dropped.
    assert_eq!(counts.records_ok + counts.records_failed, records.len() as u64);
    assert!(counts.records_over_limit > 0, "this batch does not all fit: {counts:?}");
    for r in resp
        .records
        .iter()
        .filter(|r| r.result == RecordResult::ProcessingFailed)
    {
        assert!(r.data.is_empty());
    }
    let delivered: usize = resp
        .records
        .iter()
        .filter(|r| r.result == RecordResult::Ok)
        .map(|r| decoded(r).len())
        .sum();
    assert_eq!(
        delivered as u64, counts.events_ok,
        "counted events are the delivered ones"
    );
    assert_eq!(
        counts.events_ok + counts.events_over_limit,
        26_000,
        "and the rest are counted as sent to the error prefix"
    );
}

#[test]
fn a_small_response_budget_is_respected_exactly() {
    let records: Vec<Vec<u8>> = (0..10).map(|_| record(&edge_lines(VALID))).collect();
    let config = TransformConfig {
        max_response_bytes: Some(2000),
        ..TransformConfig::default()
    };
    let (resp, counts) = run(&records, &config);
    assert!(serde_json::to_vec(&resp).unwrap().len() <= 2000);
    assert!(counts.records_ok >= 1 && counts.records_over_limit >= 1, "{counts:?}");
    assert_eq!(resp.records.len(), 10);
}

#[test]
fn a_registered_json_schema_rejects_events_with_the_field_path() {
    let dir = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/schemas"));
    let config = TransformConfig {
        schemas: crate::schemas::Schemas::load_dir(&dir).unwrap(),
        ..TransformConfig::default()
    };
    let negative = VALID.replace("19.99", "-1");
    let (resp, counts) = run(
        &[record(&edge_lines(&format!("{VALID}\n{negative}\n{VALID2}")))],
        &config,
    );
    let out = decoded(&resp.records[0]);
    assert_eq!(resp.records[0].result, RecordResult::Ok);
    assert_eq!(
        (counts.events_ok, counts.events_invalid),
        (2, 1),
        "page_view has no schema; one click breaks it"
    );
    let rejected = &out[2]["rejected"][0];
    assert_eq!(
        (rejected["reason"].as_str(), rejected["field"].as_str()),
        (Some("schema_violation"), Some("/properties/price"))
    );
}

#[test]
fn an_answer_is_sized_exactly_as_it_is_written() {
    let answer = TransformedRecord {
        record_id: "r\"1\\\u{1}é".to_owned(),
        result: RecordResult::Ok,
        data: Base64Data::encode(b"{\"event\":\"click\"}\n"),
        metadata: Some(Metadata {
            partition_keys: BTreeMap::from([("event_name".to_owned(), "cl\"ick".to_owned())]),
            otf_metadata: None,
        }),
    };
    let written = serde_json::to_string(&answer).unwrap();
    assert_eq!(answer_size(&answer), written.len() + 1);
    assert!(written.contains(r#""data":"eyJldmVudCI6ImNsaWNrIn0K""#), "{written}");
    assert_eq!(answer.data.as_str(), "eyJldmVudCI6ImNsaWNrIn0K");
    assert!(Base64Data::empty().is_empty());
    assert_eq!(serde_json::to_string(&Base64Data::empty()).unwrap(), r#""""#);
}

#[test]
fn threads_give_the_same_answer_in_the_same_order_as_one() {
    // Records of different sizes and outcomes, so threads finish out of order.
    let records: Vec<Vec<u8>> = (0..40)
        .map(|i| match i % 4 {
            0 => record(&edge_lines(&vec![VALID; 1 + i % 7].join("\n"))),
            1 => record(&edge_lines(INVALID)),
            2 => record(&edge_lines(&format!("{VALID2}\n{INVALID}"))),
            _ => b"not json".to_vec(),
        })
        .collect();
    let one = TransformConfig {
        threads: 1,
        max_response_bytes: Some(20_000),
        ..TransformConfig::default()
    };
    let (expected, expected_counts) = run(&records, &one);
    assert!(
        expected_counts.records_over_limit > 0,
        "the budget must bite: {expected_counts:?}"
    );
    for threads in [2, 3, 8, 64] {
        let (resp, counts) = run(&records, &TransformConfig { threads, ..one.clone() });
        assert_eq!(resp, expected, "{threads} threads");
        assert_eq!(resp.failed_rejections, expected.failed_rejections, "{threads} threads");
        assert_eq!(counts, expected_counts, "{threads} threads");
    }
}

#[test]
fn base64_records_are_decoded_and_bad_base64_fails_only_its_record() {
    let good = record(&edge_lines(VALID));
    let b64 = base64::engine::general_purpose::STANDARD.encode(&good);
    for threads in [1, 2] {
        let config = TransformConfig {
            threads,
            ..TransformConfig::default()
        };
        let inputs = [
            InputRecord {
                id: "a",
                data: RecordData::Base64(&b64),
                arrived_ms: 0,
            },
            InputRecord {
                id: "b",
                data: RecordData::Base64("not base64!"),
                arrived_ms: 0,
            },
            InputRecord {
                id: "c",
                data: RecordData::Bytes(&good),
                arrived_ms: 0,
            },
        ];
        let (resp, counts) = transform(&inputs, &config);
        let results: Vec<RecordResult> = resp.records.iter().map(|r| r.result).collect();
        assert_eq!(
            results,
            [RecordResult::Ok, RecordResult::ProcessingFailed, RecordResult::Ok]
        );
        let mut c_as_a = resp.records[2].clone();
        c_as_a.record_id = "a".into();
        assert_eq!(resp.records[0], c_as_a);
        assert!(resp.records[1].data.is_empty());
        assert_eq!((counts.records_ok, counts.records_failed), (2, 1));
        assert!(
            resp.failed_rejections[0].contains("not_base64"),
            "{:?}",
            resp.failed_rejections
        );
    }
}

/// Envelope lines as the edge writes them for `body` posted to `path`.
fn door_lines(path: &str, body: &str, settings: &[(&str, &str)]) -> Vec<String> {
    use edgehose_shared::api::{self, ApiConfig, Body, Prepared, RequestHead};
    use edgehose_shared::settings::Settings;
    let mut owned: Vec<(String, String)> = settings.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    if !owned.iter().any(|(k, _)| k == "WRITE_KEYS") {
        owned.push(("ALLOW_ANONYMOUS".into(), "true".into()));
    }
    let cfg = ApiConfig::from_settings(&Settings::new(move |n: &str| {
        owned.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())
    }))
    .unwrap();
    let head = RequestHead {
        method: "POST",
        path,
        ..RequestHead::default()
    };
    let Prepared::Ingest(ingest) = api::prepare(&head, &cfg) else {
        panic!("{path} refused")
    };
    let body = Body {
        bytes: body.as_bytes(),
        content_type: Some("application/json"),
        content_encoding: None,
        inflated: None,
    };
    let edge = edgehose_shared::envelope::EdgeMeta {
        country: Some("DE".into()),
        ..Default::default()
    };
    let at = Timestamp::from_millis(edgehose_sample::RECEIVED_AT_MS);
    let random = edgehose_shared::clock::SeededRandom::new(9);
    api::accept(&ingest, body, &edge, &cfg, at, &random).unwrap().lines
}

#[test]
fn segment_messages_come_out_as_analyst_lines_with_their_ids_and_context() {
    let batch = r#"{"batch":[
        {"type":"track","event":"Order Completed","userId":"u1","messageId":"node-1","timestamp":"2024-05-01T12:29:50.000Z","properties":{"revenue":9.5},"context":{"library":{"name":"analytics-node"}}},
        {"type":"identify","anonymousId":"a1","messageId":"py-2","traits":{"plan":"pro"}},
        {"type":"page","userId":"u1","messageId":"p-3","name":"Home","category":null},
        {"type":"group","userId":"u1","messageId":"g-4","groupId":"acme"},
        {"type":"alias","userId":"u1","previousId":"a1","messageId":"al-5"},
        {"type":"screen","anonymousId":"a1","messageId":"s-6","name":"Settings"}
    ],"sentAt":"2024-05-01T12:29:55.000Z"}"#;
    let config = TransformConfig {
        partitioning: true,
        ..TransformConfig::default()
    };
    let (resp, counts) = run(&[record(&door_lines("/v1/batch", batch, &[]))], &config);
    assert_eq!((resp.records[0].result, counts.events_ok), (RecordResult::Ok, 6));
    let lines = decoded(&resp.records[0]);
    assert_eq!(
        lines[0],
        serde_json::json!({
            "id": "node-1", "type": "track", "event": "Order Completed",
            // receivedAt - (sentAt - timestamp): 5 s before the receive time.
            "event_time": "2024-05-01T12:29:55.250Z", "received_at": "2024-05-01T12:30:00.250Z",
            "sent_at": "2024-05-01T12:29:55.000Z",
            "original_timestamp": "2024-05-01T12:29:50.000Z", "message_id": "node-1", "user_id": "u1",
            "country": "DE", "properties": {"revenue": 9.5}, "context": {"library": {"name": "analytics-node"}}
        })
    );
    assert_eq!(lines[1]["traits"], serde_json::json!({"plan": "pro"}));
    assert_eq!(
        (lines[2]["type"].as_str(), lines[2]["name"].as_str()),
        (Some("page"), Some("Home"))
    );
    assert_eq!(lines[3]["group_id"], "acme");
    assert_eq!(lines[4]["previous_id"], "a1");
    let ids: Vec<&str> = lines.iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["node-1", "py-2", "p-3", "g-4", "al-5", "s-6"]);
    // Mixed names in one record partition as `_mixed`; one track event alone by its name.
    let keys = &resp.records[0].metadata.as_ref().unwrap().partition_keys;
    assert_eq!(keys["event_name"], "_mixed");
    let one = door_lines("/v1/track", r#"{"event":"Order Completed","userId":"u"}"#, &[]);
    let (resp, _) = run(&[record(&one)], &config);
    assert_eq!(
        resp.records[0].metadata.as_ref().unwrap().partition_keys["event_name"],
        "Order Completed"
    );
    let page = door_lines("/v1/p", r#"{"anonymousId":"a"}"#, &[]);
    let (resp, _) = run(&[record(&page)], &config);
    assert_eq!(
        resp.records[0].metadata.as_ref().unwrap().partition_keys["event_name"],
        "page"
    );
}

#[test]
fn a_segment_message_breaking_the_spec_is_rejected_with_its_reason() {
    let batch = r#"{"batch":[{"type":"track","event":"Fine","userId":"u","messageId":"ok-1"},{"type":"purchase","userId":"u","messageId":"bad-1"},{"type":"track","anonymousId":"a","messageId":"bad-2"}]}"#;
    let (resp, counts) = run(
        &[record(&door_lines("/v1/batch", batch, &[]))],
        &TransformConfig::default(),
    );
    assert_eq!((counts.events_ok, counts.events_invalid), (1, 2));
    let lines = decoded(&resp.records[0]);
    assert_eq!(lines[0]["id"], "ok-1");
    assert_eq!(
        (lines[1]["id"].as_str(), lines[1]["rejected"][0]["reason"].as_str()),
        (Some("bad-1"), Some("unknown_type"))
    );
    assert_eq!(lines[1]["rejected"][0]["field"], "type");
    assert_eq!(
        (
            lines[2]["rejected"][0]["reason"].as_str(),
            lines[2]["rejected"][0]["field"].as_str()
        ),
        (Some("missing_field"), Some("event"))
    );
    // The original envelope travels with the reasons.
    assert_eq!(lines[1]["envelope"]["event"]["type"], "purchase");
}

#[test]
fn source_events_land_as_sent_with_their_declared_id_and_time() {
    let sources = r#"{"bike":{"id_field":"uuid","time_field":"deviceTimestamp","time_format":"epoch_ms"},"gps":{"time_field":"timestamp","time_format":"epoch_s"}}"#;
    let bike = r#"{"uuid":"6f1c","event":"update","deviceTimestamp":1714566599000,"second":42,"raceId":"r9","racerId":7,"classId":3,"cadence":88,"resistance":41}"#;
    let settings = [("SOURCES", sources)];
    let config = TransformConfig {
        sources: edgehose_shared::source::Sources::parse(sources).unwrap(),
        partitioning: true,
        ..TransformConfig::default()
    };
    let (resp, counts) = run(&[record(&door_lines("/v1/ingest/bike", bike, &settings))], &config);
    assert_eq!((resp.records[0].result, counts.events_ok), (RecordResult::Ok, 1));
    let line = &decoded(&resp.records[0])[0];
    assert_eq!(
        *line,
        serde_json::json!({
            "id": "6f1c", "event": "bike", "source": "bike",
            "event_time": "2024-05-01T12:29:59.000Z", "received_at": "2024-05-01T12:30:00.250Z",
            "country": "DE", "properties": serde_json::from_str::<serde_json::Value>(bike).unwrap()
        })
    );
    assert_eq!(
        resp.records[0].metadata.as_ref().unwrap().partition_keys["event_name"],
        "bike"
    );

    let gps = r#"[{"ident":"352093081","timestamp":1683200000.12,"position.latitude":52.2},{"ident":"352093082","timestamp":"late"}]"#;
    let (resp, counts) = run(&[record(&door_lines("/v1/ingest/gps", gps, &settings))], &config);
    assert_eq!((counts.events_ok, counts.events_invalid), (1, 1));
    let lines = decoded(&resp.records[0]);
    assert_eq!(lines[0]["event_time"], "2023-05-04T11:33:20.120Z");
    assert_eq!(lines[0]["properties"]["position.latitude"], 52.2);
    assert_eq!(
        (
            lines[1]["rejected"][0]["reason"].as_str(),
            lines[1]["rejected"][0]["field"].as_str()
        ),
        (Some("invalid_timestamp"), Some("timestamp"))
    );

    // With no configuration at all, any object lands under its source's name.
    let (resp, counts) = run(
        &[record(&door_lines("/v1/ingest/gps", gps, &[]))],
        &TransformConfig::default(),
    );
    assert_eq!(counts.events_ok, 2);
    assert_eq!(decoded(&resp.records[0])[1]["event"], "gps");
}

#[test]
fn an_event_of_another_door_named_like_a_declared_source_is_rejected_with_why() {
    let sources = r#"{"bike":{"id_field":"uuid","keys":["bikes"]}}"#;
    let config = TransformConfig {
        sources: edgehose_shared::source::Sources::parse(sources).unwrap(),
        ..TransformConfig::default()
    };
    let forged = r#"{"event":"bike","message_id":"6f1c"}"#;
    let (resp, counts) = run(&[record(&door_lines("/v1/events", forged, &[]))], &config);
    assert_eq!((counts.events_ok, counts.events_invalid), (0, 1));
    assert_eq!(resp.records[0].result, RecordResult::ProcessingFailed);
    assert!(
        resp.failed_rejections[0].contains("source_name"),
        "{:?}",
        resp.failed_rejections
    );
}

#[test]
fn a_sources_json_schema_applies_by_its_name() {
    let dir = std::env::temp_dir().join(format!("edgehose-source-schema-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("bike.json"), r#"{"type":"object","required":["cadence"]}"#).unwrap();
    let config = TransformConfig {
        schemas: crate::schemas::Schemas::load_dir(&dir).unwrap(),
        ..TransformConfig::default()
    };
    let lines = door_lines("/v1/ingest/bike", r#"[{"cadence":88},{"watts":200}]"#, &[]);
    let (resp, counts) = run(&[record(&lines)], &config);
    assert_eq!((counts.events_ok, counts.events_invalid), (1, 1));
    assert_eq!(
        decoded(&resp.records[0])[1]["rejected"][0]["reason"],
        "schema_violation"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn lines_the_edge_judged_rejected_fail_their_record_whole_and_keep_their_reasons() {
    use edgehose_shared::judge::{Rules, Verdict, judge};
    let (limits, sources) = (Limits::default(), edgehose_shared::source::Sources::default());
    let rules = Rules {
        limits: &limits,
        sources: &sources,
    };
    let judged: Vec<String> = edge_lines(INVALID)
        .iter()
        .map(|l| match judge(l, rules) {
            Verdict::Rejected(r) => r.into_owned(),
            other => panic!("{other:?}"),
        })
        .collect();
    let (resp, counts) = run(&[record(&judged)], &TransformConfig::default());
    assert_eq!(resp.records[0].result, RecordResult::ProcessingFailed);
    assert_eq!((counts.events_invalid, counts.records_failed), (1, 1));
    // The same line, byte for byte, is what the log keeps for it.
    assert_eq!(resp.failed_rejections, judged);
}

/// Whether a JSON value may stand in a column of `catalog_type`.
fn fits(value: &serde_json::Value, catalog_type: &str) -> bool {
    use serde_json::Value;
    match (catalog_type, value) {
        (_, Value::Null) => true,
        ("string", _) => true,
        ("bigint" | "int", Value::Number(n)) => n.is_i64() || n.is_u64(),
        (t, Value::Object(members)) if t.starts_with("struct<") => members.iter().all(|(name, v)| {
            let fields = &t["struct<".len()..t.len() - 1];
            fields
                .split(',')
                .filter_map(|f| f.split_once(':'))
                .any(|(n, ty)| n == name && fits(v, ty))
        }),
        _ => false,
    }
}

/// A line of every door and call (a keyed v1 event through a Cloudflare
/// location, labelled; five Segment calls; a declared source's event) and
/// the configuration that declares the source.
fn every_door() -> (Vec<String>, TransformConfig) {
    let sources = r#"{"bike":{"id_field":"uuid"}}"#;
    let settings = [("SOURCES", sources)];
    let config = TransformConfig {
        sources: edgehose_shared::source::Sources::parse(sources).unwrap(),
        ..TransformConfig::default()
    };
    let v1 = r##"{"event":"click","message_id":"m1","ts":"2024-05-01T12:29:59Z","sent_at":"2024-05-01T12:30:00Z","anonymous_id":"a","user_id":"u","url":"https://shop.example/p","referrer":"https://search.example/","target":"#buy","properties":{"price":19.99}}"##;
    let segment = r#"{"batch":[
        {"type":"track","event":"Order Completed","userId":"u1","messageId":"n-1","timestamp":"2024-05-01T12:29:50.000Z","properties":{"revenue":9.5},"context":{"library":{"name":"x"}}},
        {"type":"identify","anonymousId":"a1","messageId":"n-2","traits":{"plan":"pro"}},
        {"type":"page","userId":"u1","messageId":"n-3","name":"Home","category":"Docs"},
        {"type":"group","userId":"u1","messageId":"n-4","groupId":"acme"},
        {"type":"alias","userId":"u1","previousId":"a1","messageId":"n-5"}
    ],"sentAt":"2024-05-01T12:29:55.000Z"}"#;
    // The first of each door's lines as a keyed request through a
    // Cloudflare location writes it, labelled.
    let keyed = |mut lines: Vec<String>| {
        lines[0] = lines[0].replacen(
            r#""edge":{"country":"DE"}"#,
            r#""key_id":"web","nuid":"11111111-2222-4333-8444-555555555555","edge":{"country":"DE","colo":"FRA","asn":3320}"#,
            1,
        );
        assert!(lines[0].contains("FRA"), "{}", lines[0]);
        edgehose_shared::label::apply(
            &mut lines[..1],
            &serde_json::from_str(
                r#"{"lane":"limited","limited":"address","bot":"bot","signal":"cf.bot_score","score":3}"#,
            )
            .unwrap(),
        );
        lines
    };
    let mut lines = keyed(door_lines("/v1/events", v1, &[]));
    lines.extend(keyed(door_lines("/v1/batch", segment, &[])));
    lines.extend(keyed(door_lines(
        "/v1/ingest/bike",
        r#"{"uuid":"b-1","cadence":88}"#,
        &settings,
    )));
    // Snowplow: a self-describing event with entities, and a structured one.
    let ue = r#"{"schema":"iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0","data":{"schema":"iglu:com.acme/checkout/jsonschema/1-0-0","data":{"total":9.5}}}"#;
    let co = r#"{"schema":"iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0","data":[{"schema":"iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0","data":{"id":"p1"}}]}"#;
    let quoted = |s: &str| serde_json::to_string(s).unwrap();
    let snowplow = format!(
        r#"{{"schema":"iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4","data":[
        {{"e":"ue","eid":"9f0b7a2e-4c1d-4e8a-9b6f-2d3c4e5f6a7b","p":"web","tv":"js-4.10.1","aid":"shop","uid":"u1","duid":"d1","nuid":"n1","sid":"s1","url":"https://shop.example/","refr":"https://search.example/","page":"Shop","dtm":"1714566599000","stm":"1714566600000","ue_pr":{},"co":{}}},
        {{"e":"se","eid":"0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d","p":"srv","tv":"node-4.8.0","se_ca":"shop","se_ac":"add","se_va":"2"}}]}}"#,
        quoted(ue),
        quoted(co)
    );
    lines.extend(keyed(door_lines("/com.snowplowanalytics.snowplow/tp2", &snowplow, &[])));
    // PostHog: posthog-js's batch, the token in the properties, person properties set.
    let posthog = r#"{"api_key":"phc_1","sent_at":"2024-05-01T12:30:01Z","batch":[{"event":"$pageview","uuid":"0193a2b4-7c1d-7e8a-9b6f-2d3c4e5f6a7b","timestamp":"2024-05-01T12:30:00Z","$set":{"plan":"pro"},"properties":{"token":"phc_1","distinct_id":"d1","$session_id":"s1","$current_url":"https://shop.example/","$referrer":"https://search.example/","$lib":"web","$lib_version":"1.455.2"}}]}"#;
    lines.extend(keyed(door_lines("/batch/", posthog, &[])));
    (lines, config)
}

#[test]
fn every_member_of_every_line_the_transform_writes_is_a_column_of_its_type() {
    use crate::analyst::COLUMNS;
    let (mut lines, config) = every_door();
    // And one a per-name rule rejects beside the valid ones.
    lines.extend(door_lines("/v1/events", r#"{"event":"","message_id":"bad"}"#, &[]));
    let (resp, counts) = run(&[record(&lines)], &config);
    assert_eq!(
        (counts.events_ok, counts.events_invalid),
        (10, 1),
        "{:?}\n{lines:#?}",
        decoded(&resp.records[0])
    );
    let written = decoded(&resp.records[0]);
    let mut seen = std::collections::BTreeSet::new();
    for line in &written {
        for (name, value) in line.as_object().unwrap() {
            let column = COLUMNS
                .iter()
                .find(|c| c.name == name)
                .unwrap_or_else(|| panic!("{name} is written and is no column: {line}"));
            assert!(
                fits(value, column.catalog_type),
                "{name} = {value} is not {}",
                column.catalog_type
            );
            seen.insert(name.clone());
        }
    }
    // And every column is written by some line.
    let unwritten: Vec<&str> = COLUMNS.iter().map(|c| c.name).filter(|n| !seen.contains(*n)).collect();
    assert!(unwritten.is_empty(), "columns no line wrote: {unwritten:?}");
}

fn iceberg(config: TransformConfig) -> TransformConfig {
    TransformConfig {
        iceberg_database: Some("analytics".to_owned()),
        ..config
    }
}

/// Whether a JSON value may stand in an Iceberg column of `iceberg_type`
/// as Firehose reads it (timestamps as microseconds).
fn fits_iceberg(value: &serde_json::Value, iceberg_type: &str) -> bool {
    use serde_json::Value;
    match (iceberg_type, value) {
        (_, Value::Null) => true,
        ("string", Value::String(_)) => true,
        ("long" | "int" | "timestamptz", Value::Number(n)) => n.is_i64(),
        _ => false,
    }
}

#[test]
fn to_iceberg_each_event_is_one_row_of_its_dialects_table_in_that_tables_columns() {
    use edgehose_shared::table::{ICEBERG_TABLES, iceberg_columns};
    let (lines, config) = every_door();
    let config = iceberg(config);
    // One event a record, as the edge sends with DESTINATION = iceberg.
    let records: Vec<Vec<u8>> = lines.iter().map(|l| record(std::slice::from_ref(l))).collect();
    let (resp, counts) = run(&records, &config);
    assert_eq!((counts.events_ok, counts.records_ok), (10, 10));
    let mut seen: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> = Default::default();
    for (r, line) in resp.records.iter().zip(&lines) {
        assert_eq!(r.result, RecordResult::Ok);
        let text = base64::engine::general_purpose::STANDARD
            .decode(r.data.as_str())
            .unwrap();
        assert!(!text.contains(&b'\n'), "one JSON object, no line break");
        let row: serde_json::Value = serde_json::from_slice(&text).unwrap();
        let otf = r.metadata.as_ref().unwrap().otf_metadata.as_ref().unwrap();
        assert_eq!(
            (otf.destination_database_name.as_str(), otf.operation),
            ("analytics", "update")
        );
        let envelope: serde_json::Value = serde_json::from_str(line).unwrap();
        let dialect = envelope["format"].as_str().unwrap_or("v1").to_owned();
        let dialect = dialect.as_str();
        let table = ICEBERG_TABLES.iter().find(|(d, _)| *d == dialect).unwrap().1;
        assert_eq!(otf.destination_table_name, table);
        assert_eq!(row["envelope"].as_str().unwrap(), line, "the envelope is kept whole");
        assert_eq!(row["id"], envelope["id"]);
        assert_eq!(row["key_id"], envelope["key_id"].as_str().unwrap_or(""));
        assert_eq!(row["event_time"], envelope["event_time"].as_i64().unwrap() * 1000);
        for (name, value) in row.as_object().unwrap() {
            let column = iceberg_columns(dialect)
                .find(|c| c.name == name)
                .unwrap_or_else(|| panic!("{name} is written and is no column of {table}: {row}"));
            assert!(
                fits_iceberg(value, column.iceberg_type),
                "{table}.{name} = {value} is not {}",
                column.iceberg_type
            );
            seen.entry(dialect.to_owned()).or_default().insert(name.clone());
        }
    }
    // Every column of every table is written by some row.
    for (dialect, table) in ICEBERG_TABLES {
        let written = &seen[*dialect];
        let unwritten: Vec<&str> = iceberg_columns(dialect)
            .map(|c| c.name)
            .filter(|n| !written.contains(*n))
            .collect();
        assert!(unwritten.is_empty(), "{table}: no row wrote {unwritten:?}");
    }
}

#[test]
fn to_iceberg_an_invalid_event_and_a_record_of_many_go_to_the_error_prefix_counted() {
    let config = iceberg(TransformConfig::default());
    let many = record(&edge_lines(&format!("{VALID}\n{VALID2}")));
    let invalid = record(&edge_lines(INVALID));
    let (resp, counts) = run(&[many, invalid], &config);
    assert!(resp.records.iter().all(|r| r.result == RecordResult::ProcessingFailed));
    assert_eq!(
        (counts.events_ok, counts.events_invalid, counts.records_failed),
        (0, 3, 2)
    );
    assert!(
        resp.failed_rejections
            .iter()
            .any(|l| l.contains(ICEBERG_RECORD_OF_MANY)),
        "{:?}",
        resp.failed_rejections
    );
    let rejected: u64 = resp
        .receipt
        .cells()
        .filter(|(c, _)| c.reason == ICEBERG_RECORD_OF_MANY)
        .map(|(_, n)| n[Outcome::Rejected as usize])
        .sum();
    assert_eq!(rejected, 2, "both events of the record counted where they went");
}
