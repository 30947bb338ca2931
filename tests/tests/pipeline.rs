//! The whole pipeline as `make dev` runs it: the built edge Worker in workerd
//! (queue mode, Miniflare's Queues), firehose-local verifying SigV4 and
//! running the real `transform` binary, and the data directory in Firehose's
//! S3 layout. Every posted event is accounted for by its id.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use base64::Engine as _;
use edgehose_local::faults::FaultPlan;
use edgehose_sample::ride_sample;
use edgehose_tests::events::{post, wait_for};
use edgehose_tests::local::Local as Pipeline;

fn pipeline(name: &str, faults: FaultPlan) -> Pipeline {
    Pipeline::start(name, faults, &[])
}

/// What the data directory holds, by event id (`message_id`).
#[derive(Debug, Default)]
struct Landed {
    /// Valid events in the destination: id → copies.
    delivered: BTreeMap<String, usize>,
    /// Invalid events: id → reasons (from `rejected` lines or the transform's log).
    rejected: BTreeMap<String, Vec<String>>,
    /// Envelope lines under the error prefix, decoded from `rawData`, and the
    /// original envelopes of `rejected` lines.
    failed_lines: Vec<serde_json::Value>,
    /// Error codes seen under the error prefix.
    error_codes: Vec<String>,
    /// Lines the edge archived as dead letters (its R2 bucket).
    dead_letters: Vec<String>,
    /// `rejected` lines in the destination (only what per-name JSON
    /// Schemas reject may be there).
    rejected_in_destination: usize,
}

/// Notes a `rejected` line: its envelope among the failed lines, its reasons by id.
fn note_rejected(landed: &mut Landed, v: &serde_json::Value, reasons: &[serde_json::Value]) {
    landed.failed_lines.push(v["envelope"].clone());
    let id = v["envelope"]["event"]["message_id"].as_str().unwrap_or("").to_owned();
    landed
        .rejected
        .entry(id)
        .or_default()
        .extend(reasons.iter().map(|r| r.to_string()));
}

fn read(p: &Pipeline) -> Landed {
    let mut landed = Landed::default();
    let objects = edgehose_local::aws::firehose::store::objects(&p.dir);
    for path in &objects {
        let rel = path.strip_prefix(&p.dir).unwrap().to_string_lossy().into_owned();
        if rel.starts_with('.') || rel.ends_with(".log") {
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap();
        if rel.starts_with("processing-failed/") {
            for line in text.lines() {
                let e: serde_json::Value = serde_json::from_str(line).unwrap();
                landed.error_codes.push(e["errorCode"].as_str().unwrap().to_owned());
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(e["rawData"].as_str().unwrap())
                    .unwrap();
                for l in String::from_utf8(raw).unwrap().lines() {
                    let v: serde_json::Value = serde_json::from_str(l).unwrap();
                    // Judged at the edge: the reasons ride with the envelope.
                    match v["rejected"].as_array() {
                        Some(reasons) => note_rejected(&mut landed, &v, &reasons.clone()),
                        None => landed.failed_lines.push(v),
                    }
                }
            }
        } else {
            assert!(rel.contains("/clicks-1-"), "an object outside Firehose's layout: {rel}");
            for line in text.lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
                if let Some(reasons) = v["rejected"].as_array() {
                    landed.rejected_in_destination += 1;
                    note_rejected(&mut landed, &v, &reasons.clone());
                } else {
                    *landed
                        .delivered
                        .entry(v["message_id"].as_str().unwrap().to_owned())
                        .or_default() += 1;
                }
            }
        }
    }
    // Invalid events of records that failed as a whole: their reasons are in the transform's log.
    for line in p.firehose.transform_log().lines() {
        let Some(v) = serde_json::from_str::<serde_json::Value>(line).ok() else {
            continue;
        };
        let Some(rejected) = v["fields"]["rejected"]
            .as_str()
            .and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok())
        else {
            continue;
        };
        // The log names the envelope's id (a v1 event's message_id) and its reasons.
        if let Some(id) = rejected["id"].as_str() {
            landed
                .rejected
                .entry(id.to_owned())
                .or_default()
                .push(rejected["rejected"].to_string());
        }
    }
    landed.dead_letters = p.edge.dead_letters().unwrap();
    landed
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Posts good, invalid, malformed and gzip payloads; returns the ids of the
/// valid and the invalid events and the malformed payloads' markers.
fn traffic(p: &Pipeline, run: &str, requests: usize) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (mut good, mut bad, mut broken) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..requests {
        // Three valid events and one invalid one (an empty event name) per request.
        let ids: Vec<usize> = (0..3).map(|k| i * 10 + k).collect();
        let mut body: Vec<String> = ids.iter().map(|&n| ride_sample(run, n)).collect();
        let invalid = format!("{run}-bad-{i}");
        body.push(format!(r#"{{"event":"","message_id":"{invalid}"}}"#));
        let ndjson = body.join("\n");
        let r = if i % 4 == 0 {
            post(
                p.edge.url(),
                &gzip(ndjson.as_bytes()),
                &[("content-type", "application/x-ndjson"), ("content-encoding", "gzip")],
            )
        } else {
            post(
                p.edge.url(),
                ndjson.as_bytes(),
                &[("content-type", "application/x-ndjson")],
            )
        };
        assert_eq!(r.status, 200, "{}", r.text());
        good.extend(ids.iter().map(|n| format!("{run}-{n}")));
        bad.push(invalid);
        if i % 5 == 0 {
            // Not JSON at all: acknowledged, quarantined, kept under the error prefix.
            let marker = format!("{run}-broken-{i}");
            let r = post(
                p.edge.url(),
                format!("{{\"event\": \"{marker}\", oops").as_bytes(),
                &[("content-type", "application/json")],
            );
            assert_eq!(r.status, 200, "{}", r.text());
            broken.push(marker);
        }
    }
    (good, bad, broken)
}

/// Waits until every posted id and marker is somewhere in the data
/// directory (or dead-lettered), delivering buffers as it goes.
fn settle(p: &Pipeline, good: &[String], bad: &[String], broken: &[String]) -> Landed {
    let mut missing = Vec::new();
    let ok = wait_for(Duration::from_secs(120), || {
        let _ = p.firehose.flush(Duration::from_secs(30));
        let l = read(p);
        let dead = l.dead_letters.join("\n");
        let markers = quarantined_markers(&l).join("\n");
        missing = good
            .iter()
            .filter(|id| !l.delivered.contains_key(*id) && !dead.contains(&format!("\"{id}\"")))
            .chain(
                bad.iter()
                    .filter(|id| !l.rejected.contains_key(*id) && !dead.contains(&format!("\"{id}\""))),
            )
            .chain(
                broken
                    .iter()
                    .filter(|m| !markers.contains(m.as_str()) && !dead.contains(m.as_str())),
            )
            .cloned()
            .collect();
        missing.is_empty()
    });
    assert!(
        ok,
        "{} posted events never landed: {missing:?}\n{:?}\nedge log:\n{}",
        missing.len(),
        p.firehose.stats(),
        p.edge.log(),
    );
    read(p)
}

fn quarantined_markers(l: &Landed) -> Vec<String> {
    l.failed_lines
        .iter()
        .filter_map(|v| v["quarantine"]["data"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn every_event_posted_to_the_edge_lands_validated_or_with_its_reason() {
    let p = pipeline("clean", FaultPlan::default());
    let (good, bad, broken) = traffic(&p, "clean", 20);
    let l = settle(&p, &good, &bad, &broken);

    // Count in = count out, per event id, exactly once without faults.
    let delivered: Vec<&String> = l.delivered.keys().collect();
    let expected: Vec<&String> = {
        let mut g: Vec<&String> = good.iter().collect();
        g.sort();
        g
    };
    assert_eq!(delivered, expected, "valid events in the destination");
    assert!(l.delivered.values().all(|&n| n == 1), "duplicates without faults");
    // Every invalid event was judged at the edge and packed apart: the
    // destination holds events and nothing else.
    assert_eq!(l.rejected_in_destination, 0, "rejected lines among the events: {l:#?}");
    for id in &bad {
        let reasons = l
            .rejected
            .get(id)
            .unwrap_or_else(|| panic!("invalid event {id} is not findable: {l:#?}"));
        assert!(reasons.iter().any(|r| r.contains("event")), "{id}: {reasons:?}");
    }
    for marker in &broken {
        assert!(
            quarantined_markers(&l).iter().any(|d| d.contains(marker.as_str())),
            "malformed payload {marker} is not under the error prefix"
        );
    }
    assert!(
        l.error_codes.iter().all(|c| c == "Lambda.ProcessingFailed"),
        "{:?}",
        l.error_codes
    );
    assert!(l.dead_letters.is_empty(), "{:?}", l.dead_letters);
    p.remove();
}

#[test]
fn with_every_kind_of_fault_and_an_outage_nothing_is_lost() {
    // Throttling, partial failures, 500s and lost answers (kept, then
    // answered 500: the retry makes a duplicate, never a loss).
    // One queue message a batch, so every request makes a Firehose call of
    // its own and the shares are drawn often.
    let p = Pipeline::start_with("faults", FaultPlan::every_kind(), &[], |o| o.max_batch_size = 1);
    let (mut good, mut bad, mut broken) = traffic(&p, "faults-a", 10);
    assert!(
        wait_for(Duration::from_secs(30), || p.firehose.stats().records_received > 0),
        "nothing reached firehose-local"
    );
    // A 5 s outage in the middle of the traffic.
    p.firehose
        .set_faults(FaultPlan {
            outage_secs: 5,
            ..FaultPlan::every_kind()
        })
        .unwrap();
    let (g, b, k) = traffic(&p, "faults-b", 10);
    good.extend(g);
    bad.extend(b);
    broken.extend(k);
    // More traffic after the outage until each kind of fault has been drawn
    // (the shares are drawn per call; a few rounds meet them all).
    let every_kind_met = |p: &Pipeline| {
        let f = p.firehose.stats().faults;
        f.outage > 0 && f.throttled > 0 && f.partial > 0 && f.server_errors > 0 && f.lost_responses > 0
    };
    for round in 0..6 {
        if every_kind_met(&p) {
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
        let (g, b, k) = traffic(&p, &format!("faults-c{round}"), 10);
        good.extend(g);
        bad.extend(b);
        broken.extend(k);
    }
    // Settling is the assertion that nothing is lost: every valid event is in
    // the destination or dead-lettered, every invalid or malformed one is
    // findable with its reason.
    let l = settle(&p, &good, &bad, &broken);
    let s = p.firehose.stats();
    let f = s.faults;
    assert!(every_kind_met(&p), "not every fault happened: {s:?}");

    let duplicates: usize = l.delivered.values().map(|n| n - 1).sum();
    println!(
        "faults: {} calls throttled, {} partial ({} records failed), {} answered 500, {} answers lost, {} refused in the outage; {} duplicate copies of {} events; {} dead-lettered lines",
        f.throttled,
        f.partial,
        f.failed_records,
        f.server_errors,
        f.lost_responses,
        f.outage,
        duplicates,
        good.len(),
        l.dead_letters.len()
    );
    p.remove();
}

#[test]
fn a_call_firehose_local_never_answers_is_abandoned_and_its_events_dead_lettered() {
    let hang = FaultPlan {
        hang: 1.0,
        ..FaultPlan::default()
    };
    let settings = [
        ("FORWARD_MODE", "direct"),
        ("CALL_TIMEOUT_MS", "1000"),
        ("RETRY_BUDGET_MS", "3000"),
    ];
    let p = Pipeline::start("hang", hang, &settings);
    let (good, bad, broken) = traffic(&p, "hang", 3);
    // Valid, invalid and malformed alike ride the hung calls: all dead-lettered.
    let all_dead = wait_for(Duration::from_secs(40), || {
        let dead = read(&p).dead_letters.join("\n");
        good.iter().chain(&bad).all(|id| dead.contains(&format!("\"{id}\"")))
            && broken.iter().all(|marker| dead.contains(marker.as_str()))
    });
    let s = p.firehose.stats();
    assert!(all_dead, "{s:?}\n{}", p.edge.log());
    assert!(s.faults.hung >= 3, "{s:?}");
    assert_eq!(s.records_received, 0, "a hung call keeps nothing: {s:?}");
    assert!(p.edge.log().contains("[TimedOut]"), "{}", p.edge.log());
    p.remove();
}

#[test]
fn with_partitioning_every_object_holds_one_event_name_and_one_day() {
    let p = Pipeline::start("partitions", FaultPlan::default(), &[("PARTITIONING", "true")]);
    let names = ["signup", "checkout", "page_view"];
    let mut ids = Vec::new();
    for i in 0..8 {
        // Every request mixes all three names, so every queue batch does too.
        let body: Vec<String> = (0..6)
            .map(|k| {
                let n = i * 10 + k;
                ids.push(format!("parts-{n}"));
                format!(r#"{{"event":"{}","message_id":"parts-{n}"}}"#, names[k % 3])
            })
            .collect();
        let r = post(
            p.edge.url(),
            body.join("\n").as_bytes(),
            &[("content-type", "application/x-ndjson")],
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let done = wait_for(Duration::from_secs(120), || {
        let _ = p.firehose.flush(Duration::from_secs(30));
        read(&p).delivered.len() == ids.len()
    });
    assert!(done, "{:?}\n{}", p.firehose.stats(), p.edge.log());
    let mut objects = 0;
    for path in edgehose_local::aws::firehose::store::objects(&p.dir) {
        let rel = path.strip_prefix(&p.dir).unwrap().to_string_lossy().into_owned();
        let Some(rest) = rel.strip_prefix("events/event_name=") else {
            continue;
        };
        objects += 1;
        let (name, rest) = rest.split_once("/date=").unwrap();
        let date = rest.split('/').next().unwrap();
        assert!(names.contains(&name), "{rel}: no event is named {name}");
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["event"], name, "{rel}: {line}");
            assert!(v["received_at"].as_str().unwrap().starts_with(date), "{rel}: {line}");
        }
    }
    assert!(objects >= names.len(), "{objects} objects");
    p.remove();
}

/// Queue messages whose undelivered events the edge log says it archived so far.
fn archived(log: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("events of queue message") && l.contains("dead-lettered to dead-letters/"))
        .count()
}

fn redrive(p: &Pipeline, key: &str) -> String {
    let out = std::process::Command::new(edgehose_tests::workspace_binary("edgehose"))
        .args(["redrive", "--url", p.edge.url(), "--admin-key", key])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "edgehose redrive failed:\n{text}\n{}",
        p.edge.log()
    );
    text
}

#[test]
fn dead_letters_are_archived_and_one_command_brings_every_one_back() {
    const KEY: &str = "a-test-admin-key-for-redrive";
    let down = FaultPlan {
        throttle: 1.0,
        ..FaultPlan::default()
    };
    let settings = [
        ("ADMIN_KEY", KEY),
        ("RETRY_BUDGET_MS", "300"),
        ("RETRY_MAX_ATTEMPTS", "2"),
        // The consumer gives up after its first try: straight to the archive.
        ("QUEUE_DELIVERY_ATTEMPTS", "1"),
    ];
    let p = Pipeline::start("redrive", down, &settings);
    let (good, bad, broken) = traffic(&p, "redrive", 6);
    // Every request's message gives up and is archived while Firehose is down.
    let messages = 6 + broken.len();
    let all_archived = wait_for(Duration::from_secs(90), || archived(&p.edge.log()) >= messages);
    assert!(all_archived, "{}", p.edge.log());
    assert!(read(&p).delivered.is_empty());
    let count = std::process::Command::new(edgehose_tests::workspace_binary("edgehose"))
        .args(["redrive", "--count", "--url", p.edge.url(), "--admin-key", KEY])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&count.stdout).contains("archived objects"));

    // Firehose is back: one command, and count in = count out.
    p.firehose.set_faults(FaultPlan::default()).unwrap();
    let text = redrive(&p, KEY);
    assert!(text.contains("done: "), "{text}");
    println!(
        "{} dead letters archived; edgehose redrive:\n{text}",
        archived(&p.edge.log())
    );
    let l = settle(&p, &good, &bad, &broken);
    let mut expected: Vec<&String> = good.iter().collect();
    expected.sort();
    assert_eq!(l.delivered.keys().collect::<Vec<_>>(), expected);
    assert!(
        l.delivered.values().all(|&n| n == 1),
        "each event once: {:?}",
        l.delivered
    );
    assert_eq!(l.rejected_in_destination, 0);
    for id in &bad {
        assert!(
            l.rejected.contains_key(id),
            "{id} is in the error prefix with its reasons"
        );
    }
    // Again: nothing is left, and nothing lands twice.
    let again = redrive(&p, KEY);
    assert!(again.contains("done: 0 events from 0 objects"), "{again}");
    let wrong = std::process::Command::new(edgehose_tests::workspace_binary("edgehose"))
        .args([
            "redrive",
            "--url",
            p.edge.url(),
            "--admin-key",
            "not-the-admin-key-at-all",
        ])
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("401"));
    p.remove();
}
