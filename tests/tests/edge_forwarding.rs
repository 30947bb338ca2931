//! The built edge Worker (Miniflare, real workerd) forwarding to `moto_server`
//! with SigV4 + IAM checking on and the least-privilege key: every accepted
//! event lands exactly once, byte for byte, in direct and in queue mode; with
//! faults injected, every accepted event lands or is dead-lettered.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::collections::BTreeSet;
use std::io::Write;
use std::time::Duration;

use edgehose_local::cloudflare::admin::DEV_ADMIN_KEY;
use edgehose_local::cloudflare::miniflare::{Edge, EdgeOptions};
use edgehose_local::faults::FaultPlan;
use edgehose_local::faults::proxy::FaultProxy;
use edgehose_receipts::analytics::Analytics;
use edgehose_sample::ride_sample;
use edgehose_shared::outcome::Outcome;
use edgehose_tests::events::{landed, post, wait_for};
use edgehose_tests::faults::{assert_nothing_lost, dead_letter_ids};
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
        // The consumer puts what did not land back on the queue for a second or two, not minutes.
        ("QUEUE_RETRY_BASE_SECONDS", "1"),
        ("QUEUE_RETRY_MAX_SECONDS", "2"),
        // A budget moto can meet while it serves every test of this file at
        // once (one of its calls has been seen to take over 6 s then); still
        // inside the 30 s waitUntil allows.
        ("RETRY_BUDGET_MS", "20000"),
        ("RETRY_MAX_ATTEMPTS", "6"),
        // One PutRecordBatch per request, so counts are exact and faults meet many calls.
        ("DIRECT_FLUSH_MS", "0"),
        // The isolate's figures in /healthz are shown for this key.
        ("ADMIN_KEY", DEV_ADMIN_KEY),
    ]);
    o.max_retries = 4;
    o
}

/// A fault proxy with `plan` in front of the sandbox's moto.
fn behind(sandbox: &Sandbox, plan: FaultPlan, seed: u64) -> FaultProxy {
    FaultProxy::start(&sandbox.moto.endpoint(), sandbox.edge.clone(), plan, seed)
        .unwrap_or_else(|e| panic!("could not start the fault proxy: {e}"))
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
    let v = health(edge);
    v["isolate"]["queue_messages"]
        .as_u64()
        .unwrap_or_else(|| panic!("no queue_messages in {v}"))
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

    // With a window the answers go first; its write (as slow, inside the
    // 3 s a queue write may take before the window is sent on directly)
    // follows in `waitUntil`.
    opts.bindings.insert("QUEUE_WINDOW_MS".into(), "200".into());
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
    assert_nothing_lost(&format!("{mode} mode"), &sent, &proxy, &edge, texts);
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
fn when_firehose_stays_down_every_event_is_dead_lettered_past_a_refusing_dead_letter_queue() {
    let sandbox = sandbox();
    let down = FaultPlan {
        throttle: 1.0,
        ..FaultPlan::default()
    };
    let proxy = behind(&sandbox, down, 3);
    let mut opts = options(&sandbox, "direct", proxy.url());
    // The dead-letter queue refuses everything: dead letters never pass through it.
    opts.refuse_queues = vec!["DEAD_LETTER_QUEUE".into()];
    let edge = start(&opts);
    let sent = post_events(&edge, "down", 4, 5);
    let ids: BTreeSet<String> = sent.iter().map(|(id, _)| id.clone()).collect();
    let all_dead = wait_for(Duration::from_secs(60), || ids.is_subset(&dead_letter_ids(&edge)));
    assert!(all_dead, "dead letters: {:?}\n{}", dead_letter_ids(&edge), edge.log());
    assert!(landed(&sandbox).is_empty());
    assert!(edge.log().contains("dead-lettered to dead-letters/"), "{}", edge.log());
    // Written under keys made from their lines: one object per window.
    let objects = edge.archived("dead-letters/").unwrap();
    assert_eq!(objects.len(), 4, "{objects:?}");
    assert_eq!(edge.cloudflare_stats().unwrap().wait_until_cut, 0);
}

#[test]
fn without_an_archive_or_a_queue_a_loss_is_logged_with_every_id_and_counted() {
    let sandbox = sandbox();
    let down = FaultPlan {
        errors: 1.0,
        ..FaultPlan::default()
    };
    let proxy = behind(&sandbox, down, 5);
    let mut opts = options(&sandbox, "direct", proxy.url());
    opts.dead_letters_bucket = false;
    opts.events_queue = false;
    opts.dead_letter_queue = false;
    let edge = start(&opts);
    let sent = post_events(&edge, "lost", 1, 3);
    let logged = wait_for(Duration::from_secs(60), || edge.log().contains("LOST 3 events"));
    let log = edge.log();
    assert!(logged, "{log}");
    for (id, _) in &sent {
        assert!(log.contains(id.as_str()), "{id} is named in the log:\n{log}");
    }
    assert!(log.contains("no DEAD_LETTERS bucket binding"), "{log}");
    assert!(
        !log.contains(sandbox.edge.secret_access_key()),
        "the secret is never logged"
    );
    assert_eq!(
        health(&edge)["isolate"]["lost_events"],
        3,
        "counted where an operator looks"
    );
    // And in the outcome counts, where `edgehose receipts` reads them.
    let counts = wait_for(Duration::from_secs(20), || outcomes(&edge).total(Outcome::Lost) == 3);
    assert!(counts, "{:?}", outcomes(&edge));
    assert_eq!(outcomes(&edge).total(Outcome::Accepted), 3);
}

/// The edge's outcome counts in the runner's Analytics Engine stand-in.
fn outcomes(edge: &Edge) -> edgehose_shared::outcome::Tally {
    Analytics::local(edge.url()).read(0).unwrap().tally
}

#[test]
fn outcome_counts_leave_an_isolate_at_most_250_data_points_an_invocation_and_the_rest_follow() {
    let sandbox = sandbox();
    let edge = start(&options(&sandbox, "queue", &sandbox.moto.endpoint()));
    // 300 events received in 300 different minutes: 300 cells delivered by one consumer run.
    let now = edgehose_local::clock::now().as_millis();
    let line = |i: i64| {
        let at = now - i * 60_000;
        format!(
            r#"{{"v":1,"id":"cells-{i}","received_at":{at},"event_time":{at},"key_id":"k","event":{{"event":"e"}}}}"#
        )
    };
    let body: Vec<String> = (0..300).map(line).collect();
    produce(&edge, "EVENTS_QUEUE", body.join("\n").as_bytes(), "text/plain");
    let delivered = |edge: &Edge| outcomes(edge).total(Outcome::Delivered);
    assert!(
        wait_for(Duration::from_secs(60), || delivered(&edge) >= 250),
        "{}",
        edge.log()
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        delivered(&edge),
        250,
        "one invocation wrote its 250 points, the rest wait"
    );
    // The next invocation (another batch) writes what waited with its own.
    produce(&edge, "EVENTS_QUEUE", line(300).as_bytes(), "text/plain");
    assert!(
        wait_for(Duration::from_secs(60), || delivered(&edge) == 301),
        "{}",
        edge.log()
    );
    let tally = outcomes(&edge);
    assert_eq!(tally.cells().count(), 301, "one cell a minute");
    assert!(tally.cells().all(|(c, _)| c.key == "k" && c.door == "v1"));
    let stats = edge.cloudflare_stats().unwrap();
    assert_eq!(
        stats.analytics_refused, 0,
        "the Worker never asked for more than it may: {stats:?}"
    );
    assert!(stats.analytics_points >= 301, "{stats:?}");
}

/// The Worker isolate's `/healthz`, as the operator (the admin key) sees it.
fn health(edge: &Edge) -> serde_json::Value {
    edgehose_local::tools::healthz(edge.url(), DEV_ADMIN_KEY).unwrap()
}

#[test]
fn when_r2_fails_direct_modes_dead_letters_go_back_to_the_queue_and_land_once_firehose_is_back() {
    let sandbox = sandbox();
    let down = FaultPlan {
        throttle: 1.0,
        ..FaultPlan::default()
    };
    let proxy = behind(&sandbox, down, 53);
    let mut opts = options(&sandbox, "direct", proxy.url());
    opts.bindings.insert("RETRY_BUDGET_MS".into(), "1000".into());
    opts.cloudflare_faults.r2_fail = 1.0;
    let edge = start(&opts);
    let sent = post_events(&edge, "r2down", 4, 3);
    let handed = wait_for(Duration::from_secs(60), || {
        edge.log().matches("handed to the events queue instead").count() >= 4
    });
    assert!(handed, "{}", edge.log());
    proxy.set_plan(FaultPlan::default()).unwrap();
    assert_landed_as_sent(&sandbox, &edge, &sent);
    let stats = edge.cloudflare_stats().unwrap();
    assert!(stats.r2_failed >= 8, "{stats:?}");
    assert_eq!(stats.wait_until_cut, 0, "{stats:?}");
}

/// Asserts every sent event landed, as sent (copies beyond the first are
/// allowed: a resend after a lost or late answer).
fn assert_landed_as_sent(sandbox: &Sandbox, edge: &Edge, sent: &[(String, String)]) {
    let ids: BTreeSet<&str> = sent.iter().map(|(id, _)| id.as_str()).collect();
    let complete = wait_for(Duration::from_secs(90), || {
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
    for (id, text) in sent {
        assert!(
            got[id].iter().all(|c| c.event.as_ref().unwrap().get() == text),
            "{id} landed other than as sent"
        );
    }
}

#[test]
fn a_firehose_outage_longer_than_the_queues_retries_ends_with_every_event_delivered() {
    let sandbox = sandbox();
    let down = FaultPlan {
        throttle: 1.0,
        ..FaultPlan::default()
    };
    let proxy = behind(&sandbox, down, 59);
    let mut opts = options(&sandbox, "queue", proxy.url());
    opts.bindings.insert("RETRY_BUDGET_MS".into(), "500".into());
    // Cloudflare's own retries would be spent in the first seconds; the
    // consumer's tries (a second, then two, …) outlast the outage.
    opts.max_retries = 1;
    let edge = start(&opts);
    let sent = post_events(&edge, "outage", 8, 3);
    std::thread::sleep(Duration::from_secs(12));
    let calls_in_outage = proxy.stats().throttled;
    proxy.set_plan(FaultPlan::default()).unwrap();
    assert_exactly_once(&sandbox, &edge, &sent);
    assert!(calls_in_outage >= 8, "{:?}", proxy.stats());
    assert!(dead_letter_ids(&edge).is_empty(), "nothing was dead-lettered");
    assert!(edge.log().contains("goes back to the queue"), "{}", edge.log());
}

#[test]
fn a_consumer_run_with_a_partial_failure_sends_again_only_what_did_not_land() {
    let sandbox = sandbox();
    let partial = FaultPlan {
        partial: 0.5,
        ..FaultPlan::default()
    };
    let proxy = behind(&sandbox, partial, 61);
    let mut opts = options(&sandbox, "queue", proxy.url());
    // One try per run, so a partial call is settled by the queue, not the run's own retries.
    opts.bindings.insert("RETRY_MAX_ATTEMPTS".into(), "1".into());
    opts.max_batch_size = 1;
    let edge = start(&opts);
    let sent = post_events(&edge, "partial", 12, 6);
    // Exactly once: what landed in a partial call was never sent again.
    assert_exactly_once(&sandbox, &edge, &sent);
    assert!(proxy.stats().partial > 0, "{:?}", proxy.stats());
}

/// A sandbox, a proxy in front of it that never answers, and options for an
/// edge behind it: each call abandoned after 1 s, `budget_ms` in all.
fn behind_a_firehose_that_never_answers(mode: &str, budget_ms: u32) -> (Sandbox, FaultProxy, EdgeOptions) {
    let sandbox = sandbox();
    let hang = FaultPlan {
        hang: 1.0,
        ..FaultPlan::default()
    };
    let proxy = behind(&sandbox, hang, 13);
    let mut opts = options(&sandbox, mode, proxy.url());
    opts.bindings.insert("RETRY_BUDGET_MS".into(), budget_ms.to_string());
    opts.bindings.insert("CALL_TIMEOUT_MS".into(), "1000".into());
    (sandbox, proxy, opts)
}

#[test]
fn a_firehose_call_that_never_answers_is_abandoned_and_its_events_dead_lettered_inside_the_budget() {
    let (_sandbox, proxy, opts) = behind_a_firehose_that_never_answers("direct", 3000);
    let edge = start(&opts);
    let sent = post_events(&edge, "hung", 3, 2);
    let ids: BTreeSet<String> = sent.iter().map(|(id, _)| id.clone()).collect();
    // waitUntil would cut the calls off at 30 s; the budget ends them at 3.
    let all_dead = wait_for(Duration::from_secs(25), || ids.is_subset(&dead_letter_ids(&edge)));
    assert!(all_dead, "{:?}\n{}", proxy.stats(), edge.log());
    assert!(proxy.stats().hung >= 3, "{:?}", proxy.stats());
    // The local runner saw the edge give up on those calls.
    let cloudflare = edge.cloudflare_stats().unwrap();
    assert!(cloudflare.sink_calls_abandoned >= 3, "{cloudflare:?}");
    let log = edge.log();
    assert!(log.contains("no answer within"), "{log}");
    assert!(log.contains("[TimedOut]"), "{log}");
}

#[test]
fn in_queue_mode_a_call_that_never_answers_is_tried_again_later_then_dead_lettered_by_id() {
    let (_sandbox, proxy, mut opts) = behind_a_firehose_that_never_answers("queue", 1500);
    opts.bindings.insert("QUEUE_DELIVERY_ATTEMPTS".into(), "3".into());
    let edge = start(&opts);
    let sent = post_events(&edge, "qhung", 2, 3);
    let ids: BTreeSet<String> = sent.iter().map(|(id, _)| id.clone()).collect();
    let all_dead = wait_for(Duration::from_secs(60), || ids.is_subset(&dead_letter_ids(&edge)));
    assert!(all_dead, "{:?}\n{}", proxy.stats(), edge.log());
    let log = edge.log();
    assert!(log.contains("what did not land goes back to the queue"), "{log}");
    assert!(log.contains("try 2, in "), "{log}");
    assert!(log.contains("tried 3 times"), "{log}");
    for id in &ids {
        assert!(log.contains(id.as_str()), "{id} is named in the log:\n{log}");
    }
}

#[test]
fn in_queue_mode_when_nothing_can_keep_them_the_message_is_left_to_the_queue_named_by_id() {
    let sandbox = sandbox();
    let down = FaultPlan {
        errors: 1.0,
        ..FaultPlan::default()
    };
    let proxy = behind(&sandbox, down, 19);
    let mut opts = options(&sandbox, "queue", proxy.url());
    opts.bindings.insert("RETRY_BUDGET_MS".into(), "500".into());
    opts.bindings.insert("QUEUE_DELIVERY_ATTEMPTS".into(), "1".into());
    opts.dead_letters_bucket = false;
    let edge = start(&opts);
    let sent = post_events(&edge, "qkept", 1, 4);
    let logged = wait_for(Duration::from_secs(60), || {
        edge.log().contains("could not be dead-lettered")
    });
    let log = edge.log();
    assert!(logged, "{log}");
    assert!(log.contains("[InternalFailure]"), "the typed reason is logged:\n{log}");
    // Redelivered a minute later (then doubling), not at once: the queue's
    // retries are not burnt while nothing can keep the events.
    assert!(log.contains("the queue redelivers the message in 60 s"), "{log}");
    for (id, _) in &sent {
        assert!(log.contains(id.as_str()), "{id} is named in the log:\n{log}");
    }
    assert!(!log.contains("LOST"), "{log}");
}

/// Sends `body` to a queue binding as another producer would, through the
/// runner's control URL (bytes with `application/octet-stream`).
fn produce(edge: &Edge, binding: &str, body: &[u8], content_type: &str) {
    let sent = edgehose_local::http::send(
        http::Request::post(format!("{}/queues/{binding}", edge.control_url()))
            .header("content-type", content_type)
            .body(body.to_vec())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(sent.status, 200, "{}", sent.text());
}

#[test]
fn a_queue_message_that_is_not_text_is_archived_as_it_came() {
    let sandbox = sandbox();
    let proxy = behind(&sandbox, FaultPlan::default(), 23);
    let edge = start(&options(&sandbox, "queue", proxy.url()));
    produce(&edge, "EVENTS_QUEUE", b"not-an-envelope", "application/octet-stream");
    let kept = wait_for(Duration::from_secs(30), || {
        edge.log()
            .contains("is not text (not sent by this Worker); archived as it came")
    });
    assert!(kept, "{}", edge.log());
    // Its bytes, as base64, in a rejected line of the archive.
    let archived = edge.dead_letters().unwrap().join("\n");
    assert!(archived.contains("bm90LWFuLWVudmVsb3Bl"), "{archived}");
    // Text sent the same way is an envelope line like any other and lands.
    let line = edgehose_tests::events::edge_envelopes(&ride_sample("probe", 1)).remove(0);
    produce(&edge, "EVENTS_QUEUE", line.as_bytes(), "text/plain");
    assert!(wait_for(Duration::from_secs(30), || landed(&sandbox).contains_key("probe-1")));
    assert_eq!(proxy.stats().calls, 1, "{:?}", proxy.stats());
}

#[test]
fn a_bad_deploy_keeps_queued_events_for_hours_and_still_archives_dead_letters() {
    let sandbox = sandbox();
    let mut opts = options(&sandbox, "queue", &sandbox.moto.endpoint());
    opts.bindings.insert("SINK".into(), "fire-hose".into());
    let edge = start(&opts);
    let r = post(edge.url(), b"{}", &[("content-type", "application/json")]);
    assert_eq!(r.status, 500, "{}", r.text());
    let line = edgehose_tests::events::edge_envelopes(&ride_sample("deploy", 1)).remove(0);
    produce(&edge, "EVENTS_QUEUE", line.as_bytes(), "text/plain");
    produce(&edge, "DEAD_LETTER_QUEUE", line.as_bytes(), "text/plain");
    // The events queue's message waits a minute (then longer each time) for
    // a configuration that can be read; the dead-letter queue's is archived
    // with nothing but the R2 binding.
    let waited = wait_for(Duration::from_secs(30), || {
        edge.log()
            .contains("wait for a configuration that can be read; redelivered in 60 s")
    });
    assert!(waited, "{}", edge.log());
    assert!(
        wait_for(Duration::from_secs(30), || dead_letter_ids(&edge).contains("deploy-1")),
        "{}",
        edge.log()
    );
}

#[test]
fn an_archive_that_fails_leaves_the_dead_letter_queues_batch_for_later() {
    let sandbox = sandbox();
    let mut opts = options(&sandbox, "queue", &sandbox.moto.endpoint());
    opts.cloudflare_faults.r2_fail = 1.0;
    let edge = start(&opts);
    let line = edgehose_tests::events::edge_envelopes(&ride_sample("r2fail", 1)).remove(0);
    produce(&edge, "DEAD_LETTER_QUEUE", line.as_bytes(), "text/plain");
    let later = wait_for(Duration::from_secs(30), || {
        edge.log().contains("could not archive 1 dead letters")
    });
    assert!(later, "{}", edge.log());
    assert!(
        edge.log().contains("the queue redelivers them later (delivery 1)"),
        "{}",
        edge.log()
    );
    assert!(edge.cloudflare_stats().unwrap().r2_failed >= 2);
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
    let proxy = behind(&sandbox, slow, 1);
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
    let v = health(edge);
    v["isolate"]["queue_shard_messages"]
        .as_array()
        .unwrap_or_else(|| panic!("no queue_shard_messages in {v}"))
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
fn when_every_shard_refuses_a_request_that_waits_for_the_queue_is_answered_503_with_retry_after() {
    let sandbox = sandbox();
    let mut opts = options(&sandbox, "queue", &sandbox.moto.endpoint());
    opts.bindings.insert("QUEUE_WINDOW_MS".into(), "0".into());
    opts.queue_shards = 2;
    let edge = start(&opts);
    edge.set_faults(&serde_json::json!({"queue_refuse": 1.0})).unwrap();
    let event = ride_sample("refused", 1);
    let r = post(edge.url(), event.as_bytes(), &[("content-type", "application/json")]);
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.header("retry-after").is_some(), "{r:?}");
    assert!(r.text().contains("no events queue took"), "{}", r.text());
    // The queues are back: the client's retry is taken, and lands once.
    edge.set_faults(&serde_json::json!({"queue_refuse": 0.0})).unwrap();
    let r = post(edge.url(), event.as_bytes(), &[("content-type", "application/json")]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_exactly_once(&sandbox, &edge, &[("refused-1".to_owned(), event)]);
}

#[test]
fn a_queue_write_that_stalls_is_abandoned_in_time_and_its_window_delivered_directly() {
    let sandbox = sandbox();
    let mut opts = options(&sandbox, "queue", &sandbox.moto.endpoint());
    opts.bindings.insert("QUEUE_WINDOW_MS".into(), "200".into());
    // A write that would answer only after waitUntil's 30 s.
    opts.cloudflare_faults.queue_stall_ms = 35_000;
    let edge = start(&opts);
    let started = std::time::Instant::now();
    let sent = post_events(&edge, "stalled", 4, 3);
    // Delivered directly once the write's 10 s were up, long before the cut.
    assert_landed_as_sent(&sandbox, &edge, &sent);
    assert!(started.elapsed() < Duration::from_secs(25), "{:?}", started.elapsed());
    assert!(edge.log().contains("no answer within"), "{}", edge.log());
    let stats = edge.cloudflare_stats().unwrap();
    assert_eq!(stats.wait_until_cut, 0, "{stats:?}");
}

#[test]
fn an_isolate_at_its_ceiling_holds_no_more_it_hands_requests_to_the_queue_or_answers_503() {
    let sandbox = sandbox();
    let hang = FaultPlan {
        hang: 1.0,
        ..FaultPlan::default()
    };
    let proxy = behind(&sandbox, hang, 67);
    let mut opts = options(&sandbox, "direct", proxy.url());
    let ceiling: u64 = 2 * 1024 * 1024;
    opts.bindings.insert("MAX_HELD_BYTES".into(), ceiling.to_string());
    opts.bindings.insert("CALL_TIMEOUT_MS".into(), "20000".into());
    // No queue to hand on to at first.
    opts.cloudflare_faults.queue_refuse = 1.0;
    let edge = start(&opts);
    // ~100 KB a request: the isolate holds twenty or so while the sink hangs.
    let body: Vec<String> = (0..30)
        .map(|i| {
            format!(
                r#"{{"event":"big","message_id":"big-{i}","properties":{{"pad":"{}"}}}}"#,
                "x".repeat(3000)
            )
        })
        .collect();
    let body = body.join("\n");
    let mut statuses = Vec::new();
    for _ in 0..40 {
        let r = post(edge.url(), body.as_bytes(), &[("content-type", "application/x-ndjson")]);
        if r.status == 503 {
            assert!(r.header("retry-after").is_some(), "{r:?}");
            assert!(r.text().contains("MAX_HELD_BYTES"), "{}", r.text());
        }
        statuses.push(r.status);
    }
    let held = health(&edge)["isolate"]["held_bytes"].as_u64().unwrap();
    assert!(held <= ceiling, "{held} bytes held");
    let refused = statuses.iter().filter(|&&s| s == 503).count();
    assert!(refused > 0 && statuses[0] == 200, "{statuses:?}");
    // With the queue back, a request past the ceiling is written to it first, and answered 200.
    edge.set_faults(&serde_json::json!({"queue_refuse": 0.0})).unwrap();
    let r = post(edge.url(), body.as_bytes(), &[("content-type", "application/x-ndjson")]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(queue_messages(&edge) >= 1);
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
    let proxy = behind(&sandbox, over_quota, 47);
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

/// `POST` or `GET` `/v1/redrive` with the admin key: its JSON answer.
fn redrive_call(edge: &Edge, method: &str) -> serde_json::Value {
    let r = edgehose_local::http::send(
        http::Request::builder()
            .method(method)
            .uri(format!("{}/v1/redrive", edge.url()))
            .header("authorization", format!("Bearer {DEV_ADMIN_KEY}"))
            .body(Vec::new())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    serde_json::from_slice(&r.body).unwrap()
}

#[test]
fn redrive_skips_what_does_not_land_and_sets_a_poison_object_aside() {
    let sandbox = sandbox();
    let down = FaultPlan {
        throttle: 1.0,
        ..FaultPlan::default()
    };
    let proxy = behind(&sandbox, down, 71);
    let mut opts = options(&sandbox, "direct", proxy.url());
    opts.bindings.insert("RETRY_BUDGET_MS".into(), "1000".into());
    let edge = start(&opts);
    // While Firehose is down: two requests dead-lettered, an object each.
    let sent = post_events(&edge, "redrive-good", 2, 3);
    let archived = wait_for(Duration::from_secs(60), || {
        edge.archived("dead-letters/").unwrap().len() == 2
    });
    assert!(archived, "{}", edge.log());
    // An object no record can ever carry (one line past Firehose's 1,000
    // KiB), archived before the others, so it is the first redrive meets.
    let poison = format!(
        r#"{{"v":1,"id":"poison","received_at":1,"event_time":1,"event":{{"event":"big","pad":"{}"}}}}"#,
        "x".repeat(1_100_000)
    );
    edge.put_archived("dead-letters/2026/01/01/00/poison.ndjson", &poison)
        .unwrap();
    proxy.set_plan(FaultPlan::default()).unwrap();
    // The first round lands the good objects past the poison one; each
    // round counts a failure against it (refused for good), and the fifth
    // sets it aside, so it blocks nothing.
    let first = redrive_call(&edge, "POST");
    assert_eq!(first["redriven_objects"], 2, "{first}");
    assert!(first["error"].as_str().unwrap().contains("could not pack"), "{first}");
    for _ in 2..=5 {
        redrive_call(&edge, "POST");
    }
    let left = redrive_call(&edge, "GET");
    assert_eq!(
        (left["archived_objects"].as_u64(), left["set_aside_objects"].as_u64()),
        (Some(0), Some(1)),
        "{left}"
    );
    let aside = edge.archived("dead-letters-set-aside/").unwrap();
    assert_eq!(
        aside[0].metadata.get("redrive_failures").map(String::as_str),
        Some("5"),
        "{aside:?}"
    );
    assert_exactly_once(&sandbox, &edge, &sent);
}

#[test]
fn receipts_count_an_s3_destination_line_by_line_and_it_balances_the_edges_counts() {
    let sandbox = sandbox();
    let edge = start(&options(&sandbox, "direct", &sandbox.moto.endpoint()));
    let sent = post_events(&edge, "s3count", 6, 5);
    assert_exactly_once(&sandbox, &edge, &sent);
    let accepted = wait_for(Duration::from_secs(20), || {
        outcomes(&edge).total(Outcome::Accepted) == 30
    });
    assert!(accepted, "{:?}", outcomes(&edge));
    // The bucket's objects as Firehose wrote them, counted line by line as
    // `edgehose receipts --verify s3://…` counts them.
    let mut counter = edgehose_receipts::destination::Counter::default();
    let objects = sandbox.objects().unwrap();
    for (_, bytes) in &objects {
        counter.object(bytes);
    }
    let held = counter.held();
    assert_eq!(held.objects, objects.len());
    assert_eq!(held.tally.total(Outcome::Landed), 30);
    // Per key and minute, what the edge accepted is what the bucket holds.
    let edge_counts = Analytics::local(edge.url()).read(0).unwrap();
    let sources = edgehose_receipts::ledger::Sources {
        edge: Some(&edge_counts),
        receipts: None,
        destination: Some(&held.tally),
    };
    let window = edgehose_receipts::ledger::Window {
        from_minute: 0,
        settled_before: i64::MAX,
        key: None,
    };
    let lines = edgehose_receipts::ledger::balance(&sources, &window);
    assert!(!lines.is_empty());
    assert!(lines.iter().all(|l| l.open == 0 && l.lost == 0), "{lines:#?}");
}
