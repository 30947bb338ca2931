//! The built edge Worker (Miniflare, real workerd) with `SINK = "kinesis"`,
//! forwarding to a Kinesis data stream in `moto_server` with SigV4 + IAM
//! checking on and a key allowed `kinesis:PutRecords` on that stream alone.
//! What landed is read back as a consumer would (boto3's `GetRecords`,
//! de-aggregated by awslabs' `aws-kinesis-agg`): every accepted event once,
//! byte for byte, under its partition key, each key's events on one shard in
//! the order sent, in direct and in queue mode.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use edgehose_local::cloudflare::miniflare::{Edge, EdgeOptions};
use edgehose_local::faults::FaultPlan;
use edgehose_local::faults::proxy::FaultProxy;
use edgehose_shared::aws::CallError;
use edgehose_shared::envelope::Envelope;
use edgehose_shared::kinesis::put_records::{Entry, TARGET_PUT_RECORDS, parse_put_records_response, put_records_body};
use edgehose_tests::aws::AwsClient;
use edgehose_tests::events::{post_arrays, sink_options, wait_for};
use edgehose_tests::faults::assert_nothing_lost;
use edgehose_tests::stream::{StreamSandbox, UserRecord};

fn sandbox() -> StreamSandbox {
    StreamSandbox::start().unwrap_or_else(|e| panic!("could not start the moto Kinesis sandbox: {e}"))
}

fn options(sandbox: &StreamSandbox, mode: &str) -> EdgeOptions {
    let endpoint = sandbox.moto.endpoint();
    sink_options(
        mode,
        &sandbox.edge,
        &[
            ("SINK", "kinesis"),
            ("KINESIS_STREAM", &sandbox.stream),
            ("KINESIS_ENDPOINT", &endpoint),
            ("KINESIS_PARTITION_KEY", "field:anonymous_id"),
        ],
    )
}

/// Waits until every sent event is in the stream, then checks each landed
/// once as sent, under its `anonymous_id`, and each key's events of one
/// request on one shard in the order they were sent.
fn assert_landed_in_order(sandbox: &StreamSandbox, edge: &Edge, sent: &[(String, String, usize)]) -> Vec<UserRecord> {
    let ids: BTreeSet<&str> = sent.iter().map(|(id, _, _)| id.as_str()).collect();
    let mut records = Vec::new();
    let complete = wait_for(Duration::from_secs(60), || {
        records = sandbox.records().unwrap();
        records.len() >= sent.len()
    });
    assert!(
        complete,
        "{} of {} events in the stream\n{}",
        records.len(),
        sent.len(),
        edge.log()
    );
    let mut by_id: BTreeMap<String, Vec<(usize, &UserRecord, Envelope<'_>)>> = BTreeMap::new();
    for (position, r) in records.iter().enumerate() {
        let text = std::str::from_utf8(&r.data).unwrap();
        let line = text
            .strip_suffix('\n')
            .expect("each user record is one line and its newline");
        let envelope = Envelope::parse(line).unwrap();
        by_id
            .entry(envelope.id.to_string())
            .or_default()
            .push((position, r, envelope));
    }
    assert_eq!(by_id.len(), sent.len(), "nothing else landed");
    let mut shard_of_key: BTreeMap<String, String> = BTreeMap::new();
    let mut last_position: BTreeMap<(String, usize), usize> = BTreeMap::new();
    for (id, text, request) in sent {
        assert!(ids.contains(id.as_str()));
        let copies = by_id
            .get(id)
            .unwrap_or_else(|| panic!("{id} did not land\n{}", edge.log()));
        assert_eq!(copies.len(), 1, "{id} landed {} times", copies.len());
        let (position, record, envelope) = &copies[0];
        assert_eq!(
            envelope.event.as_ref().unwrap().get(),
            text,
            "{id} is byte for byte what was sent"
        );
        let key: serde_json::Value = serde_json::from_str(text).unwrap();
        let key = key["anonymous_id"].as_str().unwrap();
        assert_eq!(record.partition_key, key, "{id}'s partition key is its anonymous_id");
        assert!(record.aggregated, "{id} rode in an aggregated record");
        let shard = shard_of_key
            .entry(key.to_owned())
            .or_insert_with(|| record.shard.clone());
        assert_eq!(&record.shard, shard, "every event of {key} is on one shard");
        // Sent in id order within a request: read in that order too.
        if let Some(before) = last_position.insert((key.to_owned(), *request), *position) {
            assert!(
                before < *position,
                "{id} was read before an event of {key} sent ahead of it"
            );
        }
    }
    records
}

#[test]
fn direct_mode_lands_every_event_once_under_its_key_in_order() {
    let sandbox = sandbox();
    let edge = Edge::start(&options(&sandbox, "direct")).unwrap();
    let sent = post_arrays(edge.url(), "kdirect", 6, 40, || edge.log());
    let records = assert_landed_in_order(&sandbox, &edge, &sent);
    let shards: BTreeSet<&str> = records.iter().map(|r| r.shard.as_str()).collect();
    let kinesis_records: BTreeSet<(&str, &str)> = records
        .iter()
        .map(|r| (r.shard.as_str(), r.sequence.as_str()))
        .collect();
    println!(
        "kinesis, direct mode: {} events in {} Kinesis records over {} shards",
        records.len(),
        kinesis_records.len(),
        shards.len()
    );
    assert_eq!(shards.len(), 2, "17 keys spread over both shards");
    // 17 keys a request, one aggregated record each: 6 × 17.
    assert_eq!(kinesis_records.len(), 6 * 17);
}

#[test]
fn queue_mode_lands_every_event_once_under_its_key_in_order() {
    let sandbox = sandbox();
    let edge = Edge::start(&options(&sandbox, "queue")).unwrap();
    let sent = post_arrays(edge.url(), "kqueue", 5, 30, || edge.log());
    let records = assert_landed_in_order(&sandbox, &edge, &sent);
    let kinesis_records: BTreeSet<(&str, &str)> = records
        .iter()
        .map(|r| (r.shard.as_str(), r.sequence.as_str()))
        .collect();
    println!(
        "kinesis, queue mode: {} events in {} Kinesis records",
        records.len(),
        kinesis_records.len()
    );
}

#[test]
fn the_edge_key_may_put_to_its_stream_and_no_other() {
    let sandbox = sandbox();
    let client = AwsClient::new(sandbox.moto.endpoint(), sandbox.edge.clone());
    let entry = Entry {
        data: b"{\"probe\":1}\n",
        partition_key: "probe",
        explicit_hash_key: None,
    };
    let put = |stream: &str| {
        let body: serde_json::Value = serde_json::from_slice(&put_records_body(stream, &[entry])).unwrap();
        let r = client.json("kinesis", TARGET_PUT_RECORDS, &body).unwrap();
        parse_put_records_response(r.status, r.header("x-amzn-errortype"), r.header("date"), &r.body, 1)
    };
    assert!(put(&sandbox.stream).unwrap().all_delivered());
    let denied = put(&sandbox.other_stream).unwrap_err();
    assert!(matches!(denied, CallError::AccessDenied { .. }), "{denied:?}");
}

/// Each landed event's copies: the envelope's event text, by id.
fn landed_events(sandbox: &StreamSandbox) -> BTreeMap<String, Vec<String>> {
    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in sandbox.records().unwrap() {
        let line = std::str::from_utf8(&r.data).unwrap().trim_end().to_owned();
        let envelope = Envelope::parse(&line).unwrap();
        let text = envelope.event.as_ref().unwrap().get().to_owned();
        got.entry(envelope.id.to_string()).or_default().push(text);
    }
    got
}

fn survive_faults(mode: &str, seed: u64) {
    let sandbox = sandbox();
    let plan = FaultPlan::every_kind();
    let proxy = FaultProxy::start(&sandbox.moto.endpoint(), sandbox.edge.clone(), plan, seed).unwrap();
    let mut opts = options(&sandbox, mode);
    opts.bindings.insert("KINESIS_ENDPOINT".into(), proxy.url().to_owned());
    // One message per consumer run, so the queue path makes enough calls to meet every fault.
    opts.max_batch_size = 1;
    let edge = Edge::start(&opts).unwrap();
    let sent: Vec<(String, String)> = post_arrays(edge.url(), &format!("kfault-{mode}"), 30, 8, || edge.log())
        .into_iter()
        .map(|(id, text, _)| (id, text))
        .collect();
    assert_nothing_lost(&format!("kinesis, {mode} mode"), &sent, &proxy, &edge, || {
        landed_events(&sandbox)
    });
}

#[test]
fn direct_mode_loses_nothing_under_throttled_shards_partial_failures_and_500s() {
    survive_faults("direct", 29);
}

#[test]
fn queue_mode_loses_nothing_under_throttled_shards_partial_failures_and_500s() {
    survive_faults("queue", 31);
}

#[test]
fn two_streams_share_the_keys_each_key_on_one() {
    let sandbox = sandbox();
    let mut opts = options(&sandbox, "direct");
    opts.bindings.insert(
        "KINESIS_STREAM".into(),
        format!("{},{}", sandbox.stream, sandbox.second_stream),
    );
    let edge = Edge::start(&opts).unwrap();
    let sent = post_arrays(edge.url(), "kshards", 4, 34, || edge.log());
    let ids: BTreeSet<&str> = sent.iter().map(|(id, _, _)| id.as_str()).collect();
    let mut by_stream: Vec<Vec<UserRecord>> = Vec::new();
    let all = wait_for(Duration::from_secs(60), || {
        by_stream = [&sandbox.stream, &sandbox.second_stream]
            .iter()
            .map(|s| sandbox.records_of(s).unwrap())
            .collect();
        by_stream.iter().map(Vec::len).sum::<usize>() >= ids.len()
    });
    assert!(
        all,
        "{:?} records\n{}",
        by_stream.iter().map(Vec::len).collect::<Vec<_>>(),
        edge.log()
    );
    let mut stream_of_key: BTreeMap<String, usize> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for (s, records) in by_stream.iter().enumerate() {
        for r in records {
            let envelope = Envelope::parse(std::str::from_utf8(&r.data).unwrap().trim_end()).unwrap();
            assert!(seen.insert(envelope.id.to_string()), "{} landed twice", envelope.id);
            let first = *stream_of_key.entry(r.partition_key.clone()).or_insert(s);
            assert_eq!(first, s, "key {} is in one stream", r.partition_key);
        }
    }
    assert_eq!(seen.len(), ids.len());
    let counts: Vec<usize> = by_stream.iter().map(Vec::len).collect();
    println!(
        "kinesis over two streams: {counts:?} events, {} keys",
        stream_of_key.len()
    );
    assert!(counts.iter().all(|&n| n > 0), "both streams took keys: {counts:?}");
}
