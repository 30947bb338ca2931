//! The built edge Worker (Miniflare, real workerd) with `SINK = "sqs"`,
//! sending to SQS queues in `moto_server` with SigV4 + IAM checking on and a
//! key allowed `sqs:SendMessage` on them alone. What landed is read as a
//! consumer would (boto3's `ReceiveMessage`): every accepted event once,
//! byte for byte, packed many to a message; on a FIFO queue each message in
//! its event's group (`SQS_MESSAGE_GROUP`), in the order sent, with a
//! deduplication id; in direct and in queue mode, and through faults.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use edgehose_local::cloudflare::miniflare::{Edge, EdgeOptions};
use edgehose_local::faults::FaultPlan;
use edgehose_local::faults::proxy::FaultProxy;
use edgehose_shared::aws::CallError;
use edgehose_shared::envelope::Envelope;
use edgehose_shared::sqs::QueueUrl;
use edgehose_shared::sqs::send_message_batch::{
    Entry, TARGET_SEND_MESSAGE_BATCH, parse_send_message_batch_response, send_message_batch_body,
};
use edgehose_tests::aws::AwsClient;
use edgehose_tests::events::{post_arrays, sink_options, wait_for};
use edgehose_tests::faults::assert_nothing_lost;
use edgehose_tests::sqs::{Received, SqsSandbox};

fn sandbox() -> SqsSandbox {
    SqsSandbox::start().unwrap_or_else(|e| panic!("could not start the moto SQS sandbox: {e}"))
}

fn options(sandbox: &SqsSandbox, mode: &str, queue: &str, endpoint: &str) -> EdgeOptions {
    sink_options(
        mode,
        &sandbox.edge,
        &[
            ("SINK", "sqs"),
            ("SQS_QUEUE_URL", queue),
            ("SQS_ENDPOINT", endpoint),
            ("SQS_MESSAGE_GROUP", "field:anonymous_id"),
        ],
    )
}

/// Each event's copies (as event texts) by id, with the message each came in.
fn landed(messages: &[Received]) -> BTreeMap<String, Vec<(String, usize)>> {
    let mut got: BTreeMap<String, Vec<(String, usize)>> = BTreeMap::new();
    for (m, message) in messages.iter().enumerate() {
        for line in message.body.split('\n') {
            let envelope = Envelope::parse(line).unwrap();
            let text = envelope.event.as_ref().unwrap().get().to_owned();
            got.entry(envelope.id.to_string()).or_default().push((text, m));
        }
    }
    got
}

/// Waits for every sent event, then checks each landed once as sent; on a
/// FIFO queue, in its `anonymous_id`'s group, a request's events of one
/// group in the order sent, each message with a deduplication id.
fn assert_landed(sandbox: &SqsSandbox, edge: &Edge, queue: &str, sent: &[(String, String, usize)]) -> Vec<Received> {
    let mut messages = Vec::new();
    let complete = wait_for(Duration::from_secs(60), || {
        messages = sandbox.received(queue).unwrap();
        landed(&messages).len() >= sent.len()
    });
    let got = landed(&messages);
    assert!(
        complete,
        "{} of {} events in the queue\n{}",
        got.len(),
        sent.len(),
        edge.log()
    );
    assert_eq!(got.len(), sent.len(), "nothing else landed");
    let fifo = queue.ends_with(".fifo");
    let mut order: BTreeMap<(String, usize), (usize, usize)> = BTreeMap::new();
    for (id, text, request) in sent {
        let copies = got
            .get(id)
            .unwrap_or_else(|| panic!("{id} did not land\n{}", edge.log()));
        assert_eq!(copies.len(), 1, "{id} landed {} times", copies.len());
        let (landed_text, m) = &copies[0];
        assert_eq!(landed_text, text, "{id} is byte for byte what was sent");
        let message = &messages[*m];
        assert_eq!(message.deduplication_id.is_some(), fifo);
        if !fifo {
            continue;
        }
        let key: serde_json::Value = serde_json::from_str(text).unwrap();
        let key = key["anonymous_id"].as_str().unwrap().to_owned();
        assert_eq!(message.group_id.as_deref(), Some(key.as_str()), "{id} is in its group");
        let line = message
            .body
            .split('\n')
            .position(|l| l.contains(&format!("\"{id}\"")))
            .unwrap();
        if let Some(before) = order.insert((key.clone(), *request), (*m, line)) {
            assert!(
                before < (*m, line),
                "{id} was read before an event of {key} sent ahead of it"
            );
        }
    }
    messages
}

#[test]
fn a_standard_queue_gets_every_event_once_many_to_a_message_in_direct_mode() {
    let sandbox = sandbox();
    let edge = Edge::start(&options(&sandbox, "direct", &sandbox.queue, &sandbox.moto.endpoint())).unwrap();
    let sent = post_arrays(edge.url(), "sdirect", 6, 40, || edge.log());
    let messages = assert_landed(&sandbox, &edge, &sandbox.queue, &sent);
    println!("sqs, direct mode: {} events in {} messages", sent.len(), messages.len());
    assert_eq!(messages.len(), 6, "one message a request");
}

#[test]
fn a_fifo_queue_gets_each_group_in_order_in_queue_mode() {
    let sandbox = sandbox();
    let edge = Edge::start(&options(
        &sandbox,
        "queue",
        &sandbox.fifo_queue,
        &sandbox.moto.endpoint(),
    ))
    .unwrap();
    let sent = post_arrays(edge.url(), "sfifo", 5, 30, || edge.log());
    let messages = assert_landed(&sandbox, &edge, &sandbox.fifo_queue, &sent);
    let groups: BTreeSet<&str> = messages.iter().filter_map(|m| m.group_id.as_deref()).collect();
    println!(
        "sqs fifo, queue mode: {} events in {} messages, {} groups",
        sent.len(),
        messages.len(),
        groups.len()
    );
    assert_eq!(groups.len(), 17);
}

#[test]
fn the_edge_key_may_send_to_its_queues_and_no_other() {
    let sandbox = sandbox();
    let client = AwsClient::new(sandbox.moto.endpoint(), sandbox.edge.clone());
    let entry = Entry {
        body: "{\"probe\":1}",
        group_id: None,
        deduplication_id: None,
    };
    let send = |queue: &str| {
        let body = send_message_batch_body(&QueueUrl::parse(queue).unwrap(), &[entry]);
        let request = http::Request::post(format!("{}/", sandbox.moto.endpoint()))
            .header("host", sandbox.moto.endpoint().trim_start_matches("http://"))
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", TARGET_SEND_MESSAGE_BATCH)
            .body(body)
            .unwrap();
        let r = client.send_signed(request, "sqs").unwrap();
        parse_send_message_batch_response(r.status, r.header("x-amzn-errortype"), r.header("date"), &r.body, 1)
    };
    assert!(send(&sandbox.queue).unwrap().all_delivered());
    let denied = send(&sandbox.other_queue).unwrap_err();
    assert!(matches!(denied, CallError::AccessDenied { .. }), "{denied:?}");
}

fn survive_faults(mode: &str, seed: u64) {
    let sandbox = sandbox();
    let proxy = FaultProxy::start(
        &sandbox.moto.endpoint(),
        sandbox.edge.clone(),
        FaultPlan::every_kind(),
        seed,
    )
    .unwrap();
    let mut opts = options(&sandbox, mode, &sandbox.queue, proxy.url());
    opts.max_batch_size = 1;
    // Small messages, so a call carries several and partial failures split them.
    // (A message holds any accepted event's line: 2 × MAX_EVENT_BYTES + 1 KiB.)
    opts.bindings.insert("SQS_MESSAGE_TARGET_BYTES".into(), "3072".into());
    opts.bindings.insert("MAX_EVENT_BYTES".into(), "1024".into());
    let edge = Edge::start(&opts).unwrap();
    let sent: Vec<(String, String)> = post_arrays(edge.url(), &format!("sfault-{mode}"), 30, 8, || edge.log())
        .into_iter()
        .map(|(id, text, _)| (id, text))
        .collect();
    let texts = || {
        landed(&sandbox.received(&sandbox.queue).unwrap())
            .into_iter()
            .map(|(id, copies)| (id, copies.into_iter().map(|(t, _)| t).collect()))
            .collect()
    };
    assert_nothing_lost(&format!("sqs, {mode} mode"), &sent, &proxy, &edge, texts);
}

#[test]
fn direct_mode_loses_nothing_under_throttling_partial_failures_and_500s() {
    survive_faults("direct", 37);
}

#[test]
fn queue_mode_loses_nothing_under_throttling_partial_failures_and_500s() {
    survive_faults("queue", 41);
}

#[test]
fn a_fifo_queue_drops_what_is_resent_after_a_lost_answer() {
    let sandbox = sandbox();
    let lost = FaultPlan {
        lost_response: 0.5,
        ..FaultPlan::default()
    };
    let proxy = FaultProxy::start(&sandbox.moto.endpoint(), sandbox.edge.clone(), lost, 43).unwrap();
    let mut opts = options(&sandbox, "direct", &sandbox.fifo_queue, proxy.url());
    // moto serves a FIFO queue's sends one at a time, each slower as the
    // queue fills (to seconds once twenty are waiting): with calls capped at
    // two in flight, each is answered inside the budget and the test is of
    // what it is about, resends after lost answers.
    opts.bindings.insert("MAX_IN_FLIGHT_CALLS".into(), "2".into());
    opts.bindings.insert("RETRY_BUDGET_MS".into(), "20000".into());
    let edge = Edge::start(&opts).unwrap();
    let sent = post_arrays(edge.url(), "sdedup", 10, 20, || edge.log());
    // moto forgets a deduplication id once its message is deleted (SQS
    // keeps it five minutes): read only after the resends are done.
    let mut calls = 0;
    wait_for(Duration::from_secs(60), || {
        std::thread::sleep(Duration::from_millis(1500));
        let now = proxy.stats().calls;
        std::mem::replace(&mut calls, now) == now && now > 0
    });
    assert_landed(&sandbox, &edge, &sandbox.fifo_queue, &sent);
    let stats = proxy.stats();
    assert!(stats.lost_responses > 0, "{stats:?}");
    println!(
        "sqs fifo under lost answers: {} calls, {} answers lost and resent, no event twice",
        stats.calls, stats.lost_responses
    );
}

#[test]
fn two_queues_share_the_messages() {
    let sandbox = sandbox();
    let both = format!("{},{}", sandbox.queue, sandbox.second_queue);
    let mut opts = options(&sandbox, "direct", &both, &sandbox.moto.endpoint());
    // Small messages, so each request makes several to spread.
    // (A message holds any accepted event's line: 2 × MAX_EVENT_BYTES + 1 KiB.)
    opts.bindings.insert("SQS_MESSAGE_TARGET_BYTES".into(), "3072".into());
    opts.bindings.insert("MAX_EVENT_BYTES".into(), "1024".into());
    let edge = Edge::start(&opts).unwrap();
    let sent = post_arrays(edge.url(), "sshards", 6, 20, || edge.log());
    let mut got = (Vec::new(), Vec::new());
    let all = wait_for(Duration::from_secs(60), || {
        got = (
            sandbox.received(&sandbox.queue).unwrap(),
            sandbox.received(&sandbox.second_queue).unwrap(),
        );
        landed(&got.0).len() + landed(&got.1).len() >= sent.len()
    });
    assert!(all, "{}", edge.log());
    let (first, second) = (landed(&got.0), landed(&got.1));
    assert!(first.keys().all(|id| !second.contains_key(id)), "no event in both");
    assert_eq!(first.len() + second.len(), sent.len());
    println!("sqs over two queues: {} and {} events", first.len(), second.len());
    assert!(!first.is_empty() && !second.is_empty());
}
