//! The built edge Worker (Miniflare, real workerd) forwarding to `moto_server`
//! with SigV4 + IAM checking on and the least-privilege key: every accepted
//! event lands exactly once, byte for byte, in direct and in queue mode; with
//! faults injected, every accepted event lands or is dead-lettered.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::collections::BTreeSet;
use std::io::Write;
use std::time::Duration;

use edgehose_local::fault_proxy::FaultProxy;
use edgehose_local::faults::FaultPlan;
use edgehose_local::miniflare::{Edge, EdgeOptions};
use edgehose_sample::ride_sample;
use edgehose_shared::envelope::Envelope;
use edgehose_tests::events::{landed, post, wait_for};
use edgehose_tests::faults::assert_nothing_lost;
use edgehose_tests::sandbox::Sandbox;

fn sandbox() -> Sandbox {
    Sandbox::start().unwrap_or_else(|e| panic!("could not start the moto sandbox: {e}"))
}

fn options(sandbox: &Sandbox, mode: &str, endpoint: &str) -> EdgeOptions {
    let mut o = EdgeOptions::new(&[
        ("FIREHOSE_STREAM", &sandbox.stream),
        ("AWS_REGION", "us-east-1"),
        ("FIREHOSE_ENDPOINT", endpoint),
        ("FORWARD_MODE", mode),
        ("AWS_ACCESS_KEY_ID", sandbox.edge.access_key_id()),
        ("AWS_SECRET_ACCESS_KEY", sandbox.edge.secret_access_key()),
        // Quick retries, so fault tests finish in seconds.
        ("RETRY_BASE_DELAY_MS", "20"),
        ("RETRY_MAX_DELAY_MS", "300"),
        // A budget moto can meet while it serves every test of this file at
        // once (one of its calls has been seen to take over 6 s then); still
        // inside the 30 s waitUntil allows.
        ("RETRY_BUDGET_MS", "20000"),
        ("RETRY_MAX_ATTEMPTS", "6"),
        // One PutRecordBatch per request, so counts are exact and faults meet many calls.
        ("DIRECT_FLUSH_MS", "0"),
    ]);
    o.max_retries = 4;
    o
}

fn start(options: &EdgeOptions) -> Edge {
    Edge::start(options).unwrap_or_else(|e| panic!("could not start the edge Worker: {e}"))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Posts `requests` requests of `per` events each, in every body form, and
/// returns the events by id.
fn post_events(edge: &Edge, run: &str, requests: usize, per: usize) -> Vec<(String, String)> {
    let mut sent = Vec::new();
    for r in 0..requests {
        let events: Vec<String> = (0..per).map(|i| ride_sample(run, r * per + i)).collect();
        let response = match r % 4 {
            0 => post(
                edge.url(),
                format!("[{}]", events.join(",")).as_bytes(),
                &[("content-type", "application/json")],
            ),
            1 => post(
                edge.url(),
                events.join("\n").as_bytes(),
                &[("content-type", "application/x-ndjson")],
            ),
            2 => post(
                edge.url(),
                &gzip(events.join("\n").as_bytes()),
                &[("content-type", "application/x-ndjson"), ("content-encoding", "gzip")],
            ),
            _ => post(
                edge.url(),
                format!("[{}]", events.join(",")).as_bytes(),
                &[("content-type", "text/plain;charset=UTF-8")],
            ),
        };
        assert_eq!(response.status, 200, "request {r}: {}\n{}", response.text(), edge.log());
        assert_eq!(response.text(), format!(r#"{{"accepted":{per}}}"#));
        for (i, e) in events.into_iter().enumerate() {
            sent.push((format!("{run}-{}", r * per + i), e));
        }
    }
    sent
}

/// Asserts every sent event landed exactly once, as sent.
fn assert_exactly_once(sandbox: &Sandbox, edge: &Edge, sent: &[(String, String)]) {
    let ids: BTreeSet<&str> = sent.iter().map(|(id, _)| id.as_str()).collect();
    let complete = wait_for(Duration::from_secs(60), || {
        let got = landed(sandbox);
        ids.iter().all(|id| got.contains_key(*id))
    });
    let got = landed(sandbox);
    assert!(
        complete,
        "missing: {:?}\n{}",
        ids.iter().filter(|id| !got.contains_key(**id)).collect::<Vec<_>>(),
        edge.log()
    );
    assert_eq!(got.len(), sent.len(), "nothing else landed");
    for (id, text) in sent {
        let copies = &got[id];
        assert_eq!(copies.len(), 1, "{id} landed {} times", copies.len());
        assert_eq!(
            copies[0].event.as_ref().unwrap().get(),
            text,
            "{id} is byte for byte what was sent"
        );
        assert_eq!(copies[0].key_id, None);
    }
}

#[test]
fn direct_mode_lands_every_event_exactly_once_as_sent() {
    let sandbox = sandbox();
    let edge = start(&options(&sandbox, "direct", &sandbox.moto.endpoint()));
    let sent = post_events(&edge, "direct", 12, 10);
    assert_exactly_once(&sandbox, &edge, &sent);
    // One PutRecordBatch (one S3 object in the emulator) per request.
    assert_eq!(sandbox.objects().unwrap().len(), 12);
}

#[test]
fn direct_mode_gathers_concurrent_requests_into_few_calls() {
    let sandbox = sandbox();
    let mut opts = options(&sandbox, "direct", &sandbox.moto.endpoint());
    opts.bindings.insert("DIRECT_FLUSH_MS".into(), "250".into());
    let edge = start(&opts);
    let sent: Vec<(String, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let edge = &edge;
                s.spawn(move || post_events(edge, &format!("gather{t}"), 8, 3))
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert_exactly_once(&sandbox, &edge, &sent);
    let calls = sandbox.objects().unwrap().len();
    assert!(
        calls <= 32 / 4,
        "{calls} PutRecordBatch calls for 32 requests: the isolate should gather them"
    );
    println!("direct mode, 250 ms window: 32 concurrent requests, 96 events, {calls} PutRecordBatch calls");
}

/// Messages the Worker's isolate wrote to the events queue (`/healthz`).
fn queue_messages(edge: &Edge) -> u64 {
    let body = edgehose_local::tools::http_get(&format!("{}/healthz", edge.url())).unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["isolate"]["queue_messages"]
        .as_u64()
        .unwrap_or_else(|| panic!("no queue_messages in {body}"))
}

#[test]
fn queue_mode_lands_every_event_exactly_once_in_far_fewer_calls() {
    let sandbox = sandbox();
    let edge = start(&options(&sandbox, "queue", &sandbox.moto.endpoint()));
    let sent = post_events(&edge, "queue", 40, 5);
    // Without a window each answer waited for its own message.
    assert_eq!(queue_messages(&edge), 40);
    assert_exactly_once(&sandbox, &edge, &sent);
    let calls = sandbox.objects().unwrap().len();
    assert!(
        calls < 40 / 4,
        "{calls} PutRecordBatch calls for 40 requests: the queue should batch"
    );
    println!("queue mode: 40 requests, 200 events, {calls} PutRecordBatch calls");
}

#[test]
fn queue_mode_with_a_window_answers_first_and_writes_one_message_per_window() {
    let sandbox = sandbox();
    let mut opts = options(&sandbox, "queue", &sandbox.moto.endpoint());
    opts.bindings.insert("QUEUE_WINDOW_MS".into(), "1000".into());
    let edge = start(&opts);
    let first = post_events(&edge, "window-first", 1, 5);
    // Answered before the window closed: nothing is in the queue yet.
    assert_eq!(queue_messages(&edge), 0, "the answer did not wait for the queue");
    let mut sent = post_events(&edge, "window", 40, 5);
    sent.extend(first);
    assert_exactly_once(&sandbox, &edge, &sent);
    let messages = queue_messages(&edge);
    assert!(
        (1..=10).contains(&messages),
        "{messages} queue messages for 41 requests: the isolate should gather them per window"
    );
    println!("queue mode, 1000 ms window: 41 requests, 205 events, {messages} queue messages");
}

#[test]
fn a_slow_queue_write_holds_the_answer_only_in_queue_mode_without_a_window() {
    // Every queue write resolves 2.5 s late, as a far queue storage would.
    const WRITE_MS: u64 = 2500;
    let sandbox = sandbox();
    let mut opts = options(&sandbox, "queue", &sandbox.moto.endpoint());
    opts.queue_write_ms = WRITE_MS;
    let waiting = start(&opts);
    let started = std::time::Instant::now();
    let mut sent = post_events(&waiting, "slow-write", 2, 5);
    // Each answer came after its own write was confirmed.
    assert!(
        started.elapsed() >= Duration::from_millis(2 * WRITE_MS),
        "two answers in {:?}: they did not wait for the queue writes",
        started.elapsed()
    );
    assert_eq!(queue_messages(&waiting), 2);
    assert_exactly_once(&sandbox, &waiting, &sent);

    // With a window the answers go first; its write (slower still here, so
    // the answers cannot miss it on a busy machine) follows in `waitUntil`.
    opts.bindings.insert("QUEUE_WINDOW_MS".into(), "200".into());
    opts.queue_write_ms = 4 * WRITE_MS;
    let windowed = start(&opts);
    let first = post_events(&windowed, "slow-write-window", 3, 5);
    assert_eq!(queue_messages(&windowed), 0, "the answers waited for the queue");
    sent.extend(first);
    assert_exactly_once(&sandbox, &windowed, &sent);
    // The write is counted once its confirmation is back.
    assert!(wait_for(Duration::from_secs(30), || queue_messages(&windowed) >= 1));
}

#[test]
fn when_the_queue_cannot_be_written_a_windows_events_go_straight_to_firehose() {
    let sandbox = sandbox();
    let mut opts = options(&sandbox, "queue", &sandbox.moto.endpoint());
    opts.bindings.insert("QUEUE_WINDOW_MS".into(), "200".into());
    opts.events_queue = false;
    let edge = start(&opts);
    let sent = post_events(&edge, "no-queue", 12, 5);
    assert_exactly_once(&sandbox, &edge, &sent);
    assert_eq!(queue_messages(&edge), 0);
    assert!(
        edge.log().contains("every events queue refused"),
        "the fallback is logged:\n{}",
        edge.log()
    );
}

/// Posts through faults, then turns them off and checks that every accepted
/// event is in the bucket or the dead-letter path; returns the duplicates.
fn survive_faults(mode: &str, seed: u64) {
    let sandbox = sandbox();
    let plan = FaultPlan::every_kind();
    let proxy = FaultProxy::start(&sandbox.moto.endpoint(), sandbox.edge.clone(), plan, seed).unwrap();
    let mut opts = options(&sandbox, mode, proxy.url());
    opts.dlq_sink = Some(proxy.dead_letter_url());
    // One message per consumer run, so the queue path makes enough calls to meet every fault.
    opts.max_batch_size = 1;
    let edge = start(&opts);
    let sent = post_events(&edge, mode, 30, 8);
    let texts = || {
        landed(&sandbox)
            .into_iter()
            .map(|(id, copies)| {
                (
                    id,
                    copies
                        .iter()
                        .map(|c| c.event.as_ref().unwrap().get().to_owned())
                        .collect(),
                )
            })
            .collect()
    };
    assert_nothing_lost(&format!("{mode} mode"), &sent, &proxy, texts, || edge.log());
}

#[test]
fn direct_mode_loses_nothing_under_throttling_partial_failures_and_500s() {
    survive_faults("direct", 7);
}

#[test]
fn queue_mode_loses_nothing_under_throttling_partial_failures_and_500s() {
    survive_faults("queue", 11);
}

#[test]
fn when_firehose_stays_down_every_event_is_dead_lettered() {
    let sandbox = sandbox();
    let down = FaultPlan {
        throttle: 1.0,
        ..FaultPlan::default()
    };
    let proxy = FaultProxy::start(&sandbox.moto.endpoint(), sandbox.edge.clone(), down, 3).unwrap();
    let mut opts = options(&sandbox, "direct", proxy.url());
    opts.dlq_sink = Some(proxy.dead_letter_url());
    let edge = start(&opts);
    let sent = post_events(&edge, "down", 4, 5);
    let ids: BTreeSet<String> = sent.iter().map(|(id, _)| id.clone()).collect();
    let all_dead = wait_for(Duration::from_secs(60), || {
        let dl: BTreeSet<String> = proxy
            .dead_letters()
            .iter()
            .map(|l| Envelope::parse(l).unwrap().id.into_owned())
            .collect();
        ids.is_subset(&dl)
    });
    assert!(all_dead, "dead letters: {}\n{}", proxy.dead_letters().len(), edge.log());
    assert!(landed(&sandbox).is_empty());
    let told = wait_for(Duration::from_secs(10), || {
        edge.log().contains("sent to the dead-letter queue")
    });
    assert!(told, "{}", edge.log());
}

#[test]
fn without_a_dead_letter_queue_a_loss_is_logged_with_every_id() {
    let sandbox = sandbox();
    let down = FaultPlan {
        errors: 1.0,
        ..FaultPlan::default()
    };
    let proxy = FaultProxy::start(&sandbox.moto.endpoint(), sandbox.edge.clone(), down, 5).unwrap();
    let mut opts = options(&sandbox, "direct", proxy.url());
    opts.dead_letter_queue = false;
    let edge = start(&opts);
    let sent = post_events(&edge, "lost", 1, 3);
    let logged = wait_for(Duration::from_secs(60), || edge.log().contains("LOST 3 events"));
    let log = edge.log();
    assert!(logged, "{log}");
    for (id, _) in &sent {
        assert!(log.contains(id.as_str()), "{id} is named in the log:\n{log}");
    }
    assert!(
        !log.contains(sandbox.edge.secret_access_key()),
        "the secret is never logged"
    );
}

fn dead_ids(proxy: &FaultProxy) -> BTreeSet<String> {
    proxy
        .dead_letters()
        .iter()
        .map(|l| Envelope::parse(l).unwrap().id.into_owned())
        .collect()
}

/// A sandbox, a proxy in front of it that never answers, and options for an
/// edge behind it: each call abandoned after 1 s, `budget_ms` in all.
fn behind_a_firehose_that_never_answers(mode: &str, budget_ms: u32) -> (Sandbox, FaultProxy, EdgeOptions) {
    let sandbox = sandbox();
    let hang = FaultPlan {
        hang: 1.0,
        ..FaultPlan::default()
    };
    let proxy = FaultProxy::start(&sandbox.moto.endpoint(), sandbox.edge.clone(), hang, 13).unwrap();
    let mut opts = options(&sandbox, mode, proxy.url());
    opts.bindings.insert("RETRY_BUDGET_MS".into(), budget_ms.to_string());
    opts.bindings.insert("CALL_TIMEOUT_MS".into(), "1000".into());
    opts.dlq_sink = Some(proxy.dead_letter_url());
    (sandbox, proxy, opts)
}

#[test]
fn a_firehose_call_that_never_answers_is_abandoned_and_its_events_dead_lettered_inside_the_budget() {
    let (_sandbox, proxy, opts) = behind_a_firehose_that_never_answers("direct", 3000);
    let edge = start(&opts);
    let sent = post_events(&edge, "hung", 3, 2);
    let ids: BTreeSet<String> = sent.iter().map(|(id, _)| id.clone()).collect();
    // waitUntil would cut the calls off at 30 s; the budget ends them at 3.
    let all_dead = wait_for(Duration::from_secs(25), || ids.is_subset(&dead_ids(&proxy)));
    assert!(all_dead, "{:?}\n{}", proxy.stats(), edge.log());
    assert!(proxy.stats().hung >= 3, "{:?}", proxy.stats());
    let log = edge.log();
    assert!(log.contains("no answer within"), "{log}");
    assert!(log.contains("[TimedOut]"), "{log}");
}

#[test]
fn in_queue_mode_a_call_that_never_answers_is_redelivered_then_dead_lettered_by_id() {
    let (_sandbox, proxy, mut opts) = behind_a_firehose_that_never_answers("queue", 1500);
    opts.max_retries = 2;
    let edge = start(&opts);
    let sent = post_events(&edge, "qhung", 2, 3);
    let ids: BTreeSet<String> = sent.iter().map(|(id, _)| id.clone()).collect();
    let all_dead = wait_for(Duration::from_secs(60), || ids.is_subset(&dead_ids(&proxy)));
    assert!(all_dead, "{:?}\n{}", proxy.stats(), edge.log());
    let log = edge.log();
    assert!(log.contains("the queue redelivers them (delivery 1 of 3)"), "{log}");
    assert!(log.contains("delivery 3 of 3"), "{log}");
    for id in &ids {
        assert!(log.contains(id.as_str()), "{id} is named in the log:\n{log}");
    }
}

#[test]
fn in_queue_mode_without_a_dead_letter_queue_the_last_delivery_names_every_id_and_why() {
    let sandbox = sandbox();
    let down = FaultPlan {
        errors: 1.0,
        ..FaultPlan::default()
    };
    let proxy = FaultProxy::start(&sandbox.moto.endpoint(), sandbox.edge.clone(), down, 19).unwrap();
    let mut opts = options(&sandbox, "queue", proxy.url());
    opts.bindings.insert("RETRY_BUDGET_MS".into(), "500".into());
    opts.dead_letter_queue = false;
    opts.max_retries = 1;
    let edge = start(&opts);
    let sent = post_events(&edge, "qlost", 1, 4);
    let logged = wait_for(Duration::from_secs(60), || edge.log().contains("LOST 4 events"));
    let log = edge.log();
    assert!(logged, "{log}");
    assert!(log.contains("[InternalFailure]"), "the typed reason is logged:\n{log}");
    for (id, _) in &sent {
        assert!(log.contains(id.as_str()), "{id} is named in the log:\n{log}");
    }
}

#[test]
fn a_queue_message_that_is_not_text_is_dead_lettered_as_it_came() {
    let sandbox = sandbox();
    let proxy = FaultProxy::start(&sandbox.moto.endpoint(), sandbox.edge.clone(), FaultPlan::default(), 23).unwrap();
    let mut opts = options(&sandbox, "queue", proxy.url());
    opts.dlq_sink = Some(proxy.dead_letter_url());
    let edge = start(&opts);
    let sent = edgehose_local::http::send(
        http::Request::post(format!("{}/queues/EVENTS_QUEUE", edge.control_url()))
            .header("content-type", "application/octet-stream")
            .body(b"not-an-envelope".to_vec())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(sent.status, 200, "{}", sent.text());
    let moved = wait_for(Duration::from_secs(30), || {
        edge.log()
            .contains("is not text (not sent by this Worker); moved to the dead-letter queue")
    });
    assert!(moved, "{}", edge.log());
    // Text sent the same way is an envelope line like any other and lands.
    let line = edgehose_tests::events::edge_envelopes(&ride_sample("probe", 1)).remove(0);
    let sent = edgehose_local::http::send(
        http::Request::post(format!("{}/queues/EVENTS_QUEUE", edge.control_url()))
            .body(line.into_bytes())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(sent.status, 200);
    assert!(wait_for(Duration::from_secs(30), || landed(&sandbox).contains_key("probe-1")));
    assert_eq!(proxy.stats().calls, 1, "{:?}", proxy.stats());
}

/// The most calls the proxy saw in flight at once while 16 requests were
/// posted four at a time through a downstream that takes 300 ms a call,
/// with `MAX_IN_FLIGHT_CALLS` as given; every event lands exactly once.
fn most_in_flight(cap: Option<&str>) -> u64 {
    let sandbox = sandbox();
    let slow = FaultPlan {
        latency_ms: 300,
        ..FaultPlan::default()
    };
    let proxy = FaultProxy::start(&sandbox.moto.endpoint(), sandbox.edge.clone(), slow, 1).unwrap();
    let mut opts = options(&sandbox, "direct", proxy.url());
    if let Some(cap) = cap {
        opts.bindings.insert("MAX_IN_FLIGHT_CALLS".into(), cap.into());
    }
    let edge = start(&opts);
    let sent: Vec<(String, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let edge = &edge;
                s.spawn(move || post_events(edge, &format!("cap{t}"), 4, 2))
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert_exactly_once(&sandbox, &edge, &sent);
    proxy.stats().max_in_flight
}

#[test]
fn max_in_flight_calls_caps_what_one_isolate_has_in_flight() {
    let uncapped = most_in_flight(None);
    let capped = most_in_flight(Some("2"));
    println!(
        "16 requests, 4 at a time, a 300 ms downstream: {uncapped} calls in flight at most uncapped, {capped} with MAX_IN_FLIGHT_CALLS = 2"
    );
    assert!(
        uncapped > 2,
        "without a cap the isolate had only {uncapped} calls in flight: the test cannot tell"
    );
    assert!((1..=2).contains(&capped), "{capped} calls in flight with a cap of 2");
}

/// Messages the Worker's isolate wrote to each events queue shard (`/healthz`).
fn shard_messages(edge: &Edge) -> Vec<u64> {
    let body = edgehose_local::tools::http_get(&format!("{}/healthz", edge.url())).unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["isolate"]["queue_shard_messages"]
        .as_array()
        .unwrap_or_else(|| panic!("no queue_shard_messages in {body}"))
        .iter()
        .map(|n| n.as_u64().unwrap())
        .collect()
}

/// Queue mode answering once a queue holds the events (one message a
/// request), over `shards` events queues of which `refuse` throw.
fn sharded(shards: usize, refuse: &[&str], run: &str) -> (Vec<u64>, String) {
    let sandbox = sandbox();
    let mut opts = options(&sandbox, "queue", &sandbox.moto.endpoint());
    opts.bindings.insert("QUEUE_WINDOW_MS".into(), "0".into());
    opts.queue_shards = shards;
    opts.refuse_queues = refuse.iter().map(|q| q.to_string()).collect();
    let edge = start(&opts);
    let sent = post_events(&edge, run, 24, 3);
    assert_exactly_once(&sandbox, &edge, &sent);
    (shard_messages(&edge), edge.log())
}

#[test]
fn queue_shards_spread_the_messages_over_every_events_queue() {
    let (messages, log) = sharded(3, &[], "shards");
    println!("24 requests over 3 events queues: {messages:?} messages");
    assert_eq!(messages.iter().sum::<u64>(), 24, "{log}");
    assert!(
        messages.iter().all(|&n| n > 0),
        "every shard took messages: {messages:?}"
    );
}

#[test]
fn a_shard_that_refuses_hands_its_messages_to_the_next() {
    let (messages, log) = sharded(3, &["EVENTS_QUEUE_1"], "refused");
    println!("24 requests over 3 events queues, the second refusing: {messages:?} messages");
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[1], 0);
    assert_eq!(messages.iter().sum::<u64>(), 24);
    assert!(log.contains("EVENTS_QUEUE_1 refused"), "the refusal is logged:\n{log}");
}

#[test]
fn when_every_shard_refuses_the_events_are_delivered_directly_not_refused() {
    let (messages, log) = sharded(2, &["EVENTS_QUEUE", "EVENTS_QUEUE_1"], "all-refused");
    assert_eq!(messages.iter().sum::<u64>(), 0);
    assert!(log.contains("every events queue refused"), "{log}");
}

#[test]
fn two_delivery_streams_share_the_calls_and_every_event_lands_once() {
    let sandbox = sandbox();
    let mut opts = options(&sandbox, "direct", &sandbox.moto.endpoint());
    let both = format!("{},{}", sandbox.stream, sandbox.second_stream);
    opts.bindings.insert("FIREHOSE_STREAM".into(), both);
    let edge = start(&opts);
    let sent = post_events(&edge, "streams", 24, 3);
    assert_exactly_once(&sandbox, &edge, &sent);
    let keys: Vec<String> = sandbox.objects().unwrap().into_iter().map(|(k, _)| k).collect();
    let second = keys
        .iter()
        .filter(|k| k.contains(&format!("/{}-", sandbox.second_stream)))
        .count();
    println!(
        "24 calls over two delivery streams: {} to the first, {second} to the second",
        keys.len() - second
    );
    assert_eq!(keys.len(), 24);
    assert!(second > 0 && second < 24, "both streams took calls: {keys:?}");
}

#[test]
fn a_throttled_delivery_streams_calls_move_to_the_other() {
    let sandbox = sandbox();
    assert_eq!(sandbox.second_stream, "clicks-2");
    let over_quota = FaultPlan {
        throttle_stream: Some("clicks-2".into()),
        ..FaultPlan::default()
    };
    let proxy = FaultProxy::start(&sandbox.moto.endpoint(), sandbox.edge.clone(), over_quota, 47).unwrap();
    let mut opts = options(&sandbox, "direct", proxy.url());
    opts.bindings.insert(
        "FIREHOSE_STREAM".into(),
        format!("{},{}", sandbox.stream, sandbox.second_stream),
    );
    let edge = start(&opts);
    let sent = post_events(&edge, "rotate", 24, 3);
    assert_exactly_once(&sandbox, &edge, &sent);
    let keys: Vec<String> = sandbox.objects().unwrap().into_iter().map(|(k, _)| k).collect();
    let stats = proxy.stats();
    println!(
        "24 calls over two delivery streams, the second throttling every call: {} throttled, all {} objects in the first",
        stats.throttled,
        keys.len()
    );
    assert!(stats.throttled > 0, "{stats:?}");
    assert!(keys.iter().all(|k| !k.contains("/clicks-2-")), "{keys:?}");
}
