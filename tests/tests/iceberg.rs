//! The Iceberg destination through the whole local pipeline: the built edge
//! Worker (queue mode), firehose-local running the real transform and
//! writing real Iceberg tables with pyiceberg, read back by pyiceberg.
//!
//! One scenario, run against each destination side by side: every door's
//! events from two write keys (the second reusing the first's ids), sent
//! while Firehose's answers are lost (records kept, answered 500: the edge
//! resends) until the edge gives up and dead-letters what Firehose already
//! holds; a client resending whole requests; then `edgehose redrive`
//! bringing the dead letters back over copies already landed. The JSON
//! destination holds every event with its duplicates, counted; the Iceberg
//! tables hold every accepted valid event exactly once under its key, with
//! its dialect's columns.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use edgehose_local::faults::FaultPlan;
use edgehose_shared::table::{ICEBERG_TABLES, iceberg_columns};
use edgehose_tests::events::{post_to, wait_for};
use edgehose_tests::local::Local;

const WRITE_KEYS: &str = "web:wk_web_0123456789,app:wk_app_0123456789";
const ADMIN_KEY: &str = "an-admin-key-for-the-iceberg-redrive";
const SOURCES: &str = r#"{"bike":{"id_field":"uuid"}}"#;

/// An event the scenario sent: its table, key id and id.
type Sent = (&'static str, &'static str, String);

fn send(p: &Local, path: &str, body: &str, key: &str) {
    let r = post_to(
        p.edge.url(),
        path,
        body.as_bytes(),
        &[("content-type", "application/json"), ("x-edgehose-key", key)],
    );
    assert_eq!(r.status, 200, "{path}: {}", r.text());
}

/// One round of every door's traffic under key `key` (`web` or `app`);
/// returns what it sent that is valid.
fn traffic(p: &Local, run: &str, key_id: &'static str, key: &str) -> Vec<Sent> {
    let mut sent = Vec::new();
    let v1: Vec<String> = (0..4)
        .map(|n| {
            sent.push(("events_v1", key_id, format!("{run}-v{n}")));
            format!(
                r#"{{"event":"click","message_id":"{run}-v{n}","url":"https://shop.example/p/{n}","properties":{{"n":{n}}}}}"#
            )
        })
        .collect();
    // And one invalid event (an empty name) beside them: rejected, never a row.
    let body = format!(r#"[{},{{"event":"","message_id":"{run}-bad"}}]"#, v1.join(","));
    send(p, "/v1/events", &body, key);
    let calls: Vec<String> = (0..3)
        .map(|n| {
            sent.push(("events_segment", key_id, format!("{run}-s{n}")));
            format!(
                r#"{{"type":"track","event":"Order Completed","userId":"u{n}","messageId":"{run}-s{n}","properties":{{"revenue":{n}.5}}}}"#
            )
        })
        .collect();
    let batch = format!(r#"{{"batch":[{}]}}"#, calls.join(","));
    send(p, "/v1/batch", &batch, key);
    sent.push(("events_source", key_id, format!("{run}-b0")));
    send(
        p,
        "/v1/ingest/bike",
        &format!(r#"{{"uuid":"{run}-b0","cadence":88}}"#),
        key,
    );
    sent
}

/// Runs the scenario against `destination`; returns the pipeline settled
/// and every valid event sent (with the copies the client sent again).
fn scenario(destination: &str) -> (Local, BTreeSet<Sent>) {
    let every_answer_lost = FaultPlan {
        lost_response: 1.0,
        ..FaultPlan::default()
    };
    let settings = [
        ("DESTINATION", destination),
        ("WRITE_KEYS", WRITE_KEYS),
        ("SOURCES", SOURCES),
        ("ADMIN_KEY", ADMIN_KEY),
        ("RETRY_MAX_ATTEMPTS", "2"),
        ("RETRY_BUDGET_MS", "2000"),
        // The consumer gives up after its first try: straight to the archive.
        ("QUEUE_DELIVERY_ATTEMPTS", "1"),
    ];
    let p = Local::start(&format!("iceberg-{destination}"), every_answer_lost, &settings);
    // Round 1: Firehose keeps every record and its answer is lost; the edge
    // sends each call twice, then dead-letters what Firehose already holds.
    let mut sent: BTreeSet<Sent> = traffic(&p, "r1", "web", "wk_web_0123456789").into_iter().collect();
    let archived = wait_for(Duration::from_secs(90), || {
        let dead = p.destination().dead_letters.join("\n");
        sent.iter().all(|(_, _, id)| dead.contains(&format!("\"{id}\"")))
    });
    assert!(archived, "round 1 was not dead-lettered:\n{}", p.edge.log());
    // Round 2: answers lost now and then; the second key reuses round 1's
    // ids, and a client sends its requests twice (a resend after a timeout).
    p.firehose
        .set_faults(FaultPlan {
            lost_response: 0.3,
            ..FaultPlan::default()
        })
        .unwrap();
    for _ in 0..2 {
        sent.extend(traffic(&p, "r1", "app", "wk_app_0123456789"));
        sent.extend(traffic(&p, "r2", "web", "wk_web_0123456789"));
    }
    // Firehose is well: the dead letters come back over what already landed.
    p.firehose.set_faults(FaultPlan::default()).unwrap();
    let out = std::process::Command::new(edgehose_tests::workspace_binary("edgehose"))
        .args(["redrive", "--url", p.edge.url(), "--admin-key", ADMIN_KEY])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && text.contains("done: "), "{text}");
    let ids: BTreeSet<&str> = sent.iter().map(|(_, _, id)| id.as_str()).collect();
    let landed = p.settle(|d| {
        d.dead_letters.is_empty()
            && ids.iter().all(|id| d.delivered.contains_key(*id))
            && ["r1-bad", "r2-bad"].iter().all(|id| !d.reasons(id).is_empty())
    });
    let missing: Vec<&&str> = ids.iter().filter(|id| !landed.delivered.contains_key(**id)).collect();
    assert!(
        missing.is_empty(),
        "never landed: {missing:?}\n{:?}",
        p.firehose.stats()
    );
    assert!(landed.dead_letters.is_empty(), "{:?}", landed.dead_letters);
    for bad in ["r1-bad", "r2-bad"] {
        let reasons = landed.reasons(bad);
        assert!(
            !reasons.is_empty() && reasons.iter().all(|r| r == "empty"),
            "{bad} is rejected with its reason: {reasons:?}"
        );
    }
    (p, sent)
}

#[test]
fn to_iceberg_every_accepted_valid_event_is_one_row_through_lost_answers_resends_and_a_redrive() {
    let (p, sent) = scenario("iceberg");
    let mut rows_read = 0;
    for (dialect, table) in ICEBERG_TABLES {
        let rows = p.iceberg_rows(table);
        rows_read += rows.len();
        let columns: BTreeSet<&str> = iceberg_columns(dialect).map(|c| c.name).collect();
        let mut keys: BTreeMap<(String, String), usize> = BTreeMap::new();
        for row in &rows {
            let members: BTreeSet<&str> = row.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(members, columns, "{table} has its dialect's columns");
            let key = (
                row["key_id"].as_str().unwrap().to_owned(),
                row["id"].as_str().unwrap().to_owned(),
            );
            *keys.entry(key).or_default() += 1;
            let envelope: serde_json::Value = serde_json::from_str(row["envelope"].as_str().unwrap()).unwrap();
            assert_eq!(envelope["id"], row["id"], "the envelope is kept whole: {row}");
            assert_eq!(envelope["key_id"], row["key_id"]);
            let at = row["event_time"].as_str().unwrap();
            assert!(
                edgehose_shared::timestamp::Timestamp::parse_rfc3339(at).is_some(),
                "{table}.event_time is a timestamp: {at}"
            );
        }
        let twice: Vec<_> = keys.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "{table}: keys in more than one row: {twice:?}");
        let expected: BTreeSet<(String, String)> = sent
            .iter()
            .filter(|(t, _, _)| t == table)
            .map(|(_, k, id)| ((*k).to_owned(), id.clone()))
            .collect();
        let found: BTreeSet<(String, String)> = keys.into_keys().collect();
        assert_eq!(found, expected, "{table} holds every valid event once, under its key");
    }
    // The same id from two keys is two rows.
    let v1 = p.iceberg_rows("events_v1");
    let r1v0: Vec<&str> = v1
        .iter()
        .filter(|r| r["id"] == "r1-v0")
        .map(|r| r["key_id"].as_str().unwrap())
        .collect();
    assert_eq!(r1v0.len(), 2, "{r1v0:?}");
    // Copies were written, and each replaced the row before it.
    let s = p.firehose.stats();
    println!(
        "iceberg: {} rows written for {} events, {rows_read} rows in the tables; {} answers lost",
        s.lines_delivered,
        sent.len(),
        s.faults.lost_responses
    );
    assert_eq!(rows_read, sent.len());
    assert!(
        s.lines_delivered > rows_read as u64,
        "the scenario wrote copies for the unique key to collapse: {s:?}"
    );
    p.remove();
}

#[test]
fn to_json_the_same_scenario_leaves_every_event_with_its_duplicates_counted() {
    let (p, sent) = scenario("json");
    let d = p.destination();
    let mut copies: BTreeMap<(String, String), usize> = BTreeMap::new();
    for lines in d.delivered.values() {
        for line in lines {
            let key = (
                line["key_id"].as_str().unwrap().to_owned(),
                line["id"].as_str().unwrap().to_owned(),
            );
            *copies.entry(key).or_default() += 1;
        }
    }
    let expected: BTreeSet<(String, String)> = sent.iter().map(|(_, k, id)| ((*k).to_owned(), id.clone())).collect();
    assert_eq!(copies.keys().cloned().collect::<BTreeSet<_>>(), expected);
    let duplicates: usize = copies.values().map(|n| n - 1).sum();
    println!(
        "json: {} events, {} lines in the destination, {duplicates} duplicates ({} answers lost)",
        expected.len(),
        copies.values().sum::<usize>(),
        p.firehose.stats().faults.lost_responses
    );
    // At least: round 1's 8 events again by the redrive, and round 2's 16
    // again by the client's second send.
    assert!(duplicates >= 8 + 16, "{duplicates} duplicates");
    p.remove();
}
