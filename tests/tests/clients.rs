//! The clients people already run, unchanged, against the built edge Worker
//! in workerd and the whole local pipeline (queue mode, firehose-local, the
//! real `transform` binary): Segment's SDKs from npm and PyPI and
//! RudderStack's, device fleets posting their own JSON, and bad input of
//! each kind. Every event is found in the destination by its id.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::io::Write;

use edgehose_local::faults::FaultPlan;
use edgehose_local::http::{Response, send};
use edgehose_tests::clients::Sdk;
use edgehose_tests::local::Local;

const WRITE_KEYS: &str = "server:wk_server_0123456789,bikes:wk_bikes_0123456789";
const SOURCES: &str = r#"{"bike":{"id_field":"uuid","time_field":"deviceTimestamp","time_format":"epoch_ms","keys":["bikes"]},"gps":{"time_field":"timestamp","time_format":"epoch_s"}}"#;

fn local(name: &str) -> Local {
    Local::start(
        name,
        FaultPlan::default(),
        &[("WRITE_KEYS", WRITE_KEYS), ("SOURCES", SOURCES)],
    )
}

fn post(url: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let mut b = http::Request::post(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    send(b.body(body.to_vec()).unwrap()).unwrap()
}

#[test]
fn segment_and_rudderstack_sdks_deliver_every_call_exactly_once() {
    let p = local("sdks");
    let mut sent = Vec::new();
    for sdk in Sdk::SEGMENT {
        let calls = sdk.run(p.edge.url(), "wk_server_0123456789", sdk.name()).unwrap();
        assert_eq!(calls.len(), 7, "{}: {calls:?}", sdk.name());
        sent.extend(calls);
    }
    let d = p.settle(|d| sent.iter().all(|(_, id)| d.delivered.contains_key(id)));
    for (call, id) in &sent {
        let copies = d
            .delivered
            .get(id)
            .unwrap_or_else(|| panic!("{call} {id} is not in the destination; rejected: {:?}", d.reasons(id)));
        assert_eq!(copies.len(), 1, "{call} {id} landed {} times", copies.len());
        let line = &copies[0];
        assert_eq!(
            (line["type"].as_str(), line["key_id"].as_str()),
            (Some(call.as_str()), Some("server")),
            "{line}"
        );
        assert_eq!(line["message_id"].as_str(), Some(id.as_str()));
        // Every SDK sends sentAt (on the batch): the skew correction's input is kept.
        assert!(line["sent_at"].is_string(), "{line}");
        if line["event"] == "Imported" {
            // A historical timestamp moves only by the transit time (under 10 s here).
            assert_eq!(line["original_timestamp"], "2024-05-01T12:30:00.000Z", "{line}");
            assert!(
                line["event_time"].as_str().unwrap().starts_with("2024-05-01T12:30:0"),
                "{line}"
            );
        }
    }
    assert_eq!(d.rejected.len(), 0, "{:?}", d.rejected);
}

#[test]
fn device_payloads_land_with_their_own_ids_and_times() {
    let p = local("devices");
    let base = p.edge.url();
    // An exercise bike's sample, as the bikes send it, with the bikes' key.
    let bike = br#"{"uuid":"6f1c7c2e-bike-1","event":"update","deviceTimestamp":1714566599123,"second":42,"raceId":"r-77","racerId":7,"classId":3,"cadence":88,"resistance":41}"#;
    let r = post(
        &format!("{base}/v1/ingest/bike"),
        &[("x-edgehose-key", "wk_bikes_0123456789")],
        bike,
    );
    assert_eq!((r.status, r.text().as_str()), (200, r#"{"accepted":1}"#));
    // A GPS platform's stream: an array of flat messages with no event field.
    let gps = br#"[{"ident":"352093081429150","timestamp":1683200000.12,"position.latitude":52.2,"position.longitude":4.9},{"ident":"352093081429150","timestamp":1683200001.5,"position.latitude":52.21,"position.longitude":4.91}]"#;
    let r = post(
        &format!("{base}/v1/ingest/gps"),
        &[("authorization", "Bearer wk_server_0123456789")],
        gps,
    );
    assert_eq!((r.status, r.text().as_str()), (200, r#"{"accepted":2}"#));
    // A source nobody declared, as NDJSON: it lands all the same.
    let ndjson = b"{\"room\":\"kitchen\",\"celsius\":21.5}\n{\"room\":\"hall\",\"celsius\":19}\n";
    let r = post(
        &format!("{base}/v1/ingest/thermostat"),
        &[
            ("content-type", "application/x-ndjson"),
            ("x-edgehose-key", "wk_server_0123456789"),
        ],
        ndjson,
    );
    assert_eq!(r.status, 200, "{}", r.text());

    let of = |d: &edgehose_tests::local::Destination, event: &str| -> Vec<serde_json::Value> {
        d.delivered
            .values()
            .flatten()
            .filter(|l| l["event"] == event)
            .cloned()
            .collect()
    };
    let d = p.settle(|d| of(d, "bike").len() == 1 && of(d, "gps").len() == 2 && of(d, "thermostat").len() == 2);
    let bikes = of(&d, "bike");
    assert_eq!(bikes.len(), 1, "{d:?}");
    assert_eq!(bikes[0]["id"], "6f1c7c2e-bike-1");
    assert_eq!(bikes[0]["event_time"], "2024-05-01T12:29:59.123Z");
    assert_eq!(
        (bikes[0]["source"].as_str(), bikes[0]["key_id"].as_str()),
        (Some("bike"), Some("bikes"))
    );
    assert_eq!(
        bikes[0]["properties"],
        serde_json::from_slice::<serde_json::Value>(bike).unwrap()
    );
    let mut times: Vec<String> = of(&d, "gps")
        .iter()
        .map(|l| l["event_time"].as_str().unwrap().to_owned())
        .collect();
    times.sort();
    assert_eq!(times, ["2023-05-04T11:33:20.120Z", "2023-05-04T11:33:21.500Z"]);
    assert!(of(&d, "gps")[0]["properties"]["position.latitude"].as_f64().is_some());
    assert_eq!(of(&d, "thermostat").len(), 2);
}

#[test]
fn bad_input_is_refused_or_rejected_by_name_and_disturbs_nothing_after_it() {
    let p = local("bad-input");
    let base = p.edge.url();
    let key = [("authorization", "Basic d2tfc2VydmVyXzAxMjM0NTY3ODk6")]; // base64("wk_server_0123456789:")
    let error = |r: &Response| -> (u16, String, String) {
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()));
        (
            r.status,
            v["code"].as_str().unwrap_or_default().to_owned(),
            v["message"].as_str().unwrap_or_default().to_owned(),
        )
    };

    let big = format!(
        r#"{{"event":"Big","userId":"u","properties":{{"p":"{}"}}}}"#,
        "x".repeat(33 * 1024)
    );
    let (status, code, message) = error(&post(&format!("{base}/v1/track"), &key, big.as_bytes()));
    assert_eq!((status, code.as_str()), (413, "message_too_large"), "{message}");
    assert!(message.contains("32 KB"), "{message}");

    // Over 500 KB once inflated (a body over it as sent is refused from its
    // Content-Length before it is read; the shared crate's tests cover that).
    let one = r#"{"type":"track","event":"Filler","userId":"u","properties":{"p":"0123456789012345678901234567890123456789"}}"#;
    let batch = format!(r#"{{"batch":[{}]}}"#, vec![one; 5_000].join(","));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(batch.as_bytes()).unwrap();
    let gzipped = gz.finish().unwrap();
    let headers = [key[0], ("content-encoding", "gzip")];
    let (status, code, message) = error(&post(&format!("{base}/v1/batch"), &headers, &gzipped));
    assert_eq!((status, code.as_str()), (413, "batch_too_large"), "{message}");
    assert!(message.contains("500 KB per batch request"), "{message}");

    let (status, code, _) = error(&post(&format!("{base}/v1/batch"), &key, b"{\"batch\": [oops"));
    assert_eq!((status, code.as_str()), (400, "invalid_json"));

    let (status, code, message) = error(&post(&format!("{base}/v1/ingest/Bikes!"), &key, b"{}"));
    assert_eq!((status, code.as_str()), (400, "invalid_source_name"));
    assert!(message.contains("a-z, 0-9, _ and -"), "{message}");

    let (status, code, _) = error(&post(&format!("{base}/v1/ingest/bike"), &key, b"{\"uuid\":\"x\"}"));
    assert_eq!((status, code.as_str()), (403, "key_not_allowed"));

    let (status, code, _) = error(&post(
        &format!("{base}/v1/track"),
        &[],
        b"{\"event\":\"E\",\"userId\":\"u\"}",
    ));
    assert_eq!((status, code.as_str()), (401, "missing_write_key"));

    // Acknowledged, then rejected by the transform with its reason.
    let unknown = br#"{"batch":[{"type":"purchase","userId":"u","messageId":"bad-type-1"}]}"#;
    let r = post(&format!("{base}/v1/batch"), &key, unknown);
    assert_eq!((r.status, r.text().as_str()), (200, r#"{"success":true}"#));

    // None of it disturbed what came after.
    let good = br#"{"event":"After","userId":"u","messageId":"after-1"}"#;
    assert_eq!(post(&format!("{base}/v1/track"), &key, good).status, 200);
    let bike = br#"{"uuid":"after-bike-1","deviceTimestamp":1714566600000}"#;
    assert_eq!(
        post(
            &format!("{base}/v1/ingest/bike"),
            &[("x-edgehose-key", "wk_bikes_0123456789")],
            bike
        )
        .status,
        200
    );

    let d = p.settle(|d| {
        d.delivered.contains_key("after-1")
            && d.delivered.contains_key("after-bike-1")
            && d.rejected.contains_key("bad-type-1")
    });
    assert_eq!(d.reasons("bad-type-1"), ["unknown_type"], "{d:?}");
    assert_eq!(d.delivered.get("after-1").map(Vec::len), Some(1));
    assert_eq!(d.delivered.get("after-bike-1").map(Vec::len), Some(1));
    assert!(
        !d.delivered
            .values()
            .flatten()
            .any(|l| l["event"] == "Big" || l["event"] == "Filler")
    );
}

/// The edge isolate's count of requests refused so far (`/healthz` with the admin key).
fn refused_so_far(p: &Local, admin: &str) -> u64 {
    let request = http::Request::get(format!("{}/healthz", p.edge.url().trim_end_matches('/')))
        .header("authorization", format!("Bearer {admin}"))
        .body(Vec::new())
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&send(request).unwrap().body).unwrap();
    v["isolate"]["outcomes"]["refused"].as_u64().unwrap()
}

/// What each server SDK does with a 429 and its `Retry-After`, recorded:
/// the budget of its key is spent a moment into a window, then the SDK
/// sends its seven calls. docs/src/abuse.md, "Rate limits", has the table.
#[test]
fn each_server_sdk_against_a_429_waits_it_out_or_drops_as_recorded() {
    let admin = "admin-key-clients-0123456789";
    let p = Local::start(
        "sdk-429",
        FaultPlan::default(),
        &[
            ("WRITE_KEYS", WRITE_KEYS),
            ("ADMIN_KEY", admin),
            ("RATE_LIMITS", r#"{"server":{"key":{"events":4}}}"#),
        ],
    );
    let mut report = Vec::new();
    for sdk in Sdk::SEGMENT {
        edgehose_tests::events::at_a_window_start();
        // A quarter of the window's budget spent: the SDK's batches of 3 (Node)
        // or 7 (Python's one flush) go past it.
        let spend = post(
            &format!("{}/v1/events", p.edge.url().trim_end_matches('/')),
            &[("x-edgehose-key", "wk_server_0123456789")],
            br#"{"event":"spend"}"#,
        );
        assert_eq!(spend.status, 200, "{}", spend.text());
        let before = refused_so_far(&p, admin);
        let started = std::time::Instant::now();
        // Against rudder-sdk-python, whose retries follow their own clock, the
        // key's budget is spent again in every window, so however slowly it
        // starts, each of its tries meets a spent key.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flood = (sdk == Sdk::RudderPython).then(|| {
            let (url, stop) = (
                format!("{}/v1/events", p.edge.url().trim_end_matches('/')),
                stop.clone(),
            );
            std::thread::spawn(move || {
                let mut refused = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let r = post(
                        &url,
                        &[("x-edgehose-key", "wk_server_0123456789")],
                        br#"{"event":"spend"}"#,
                    );
                    refused += u64::from(r.status == 429);
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                refused
            })
        });
        let outcome = sdk.run(p.edge.url(), "wk_server_0123456789", &format!("limited-{}", sdk.name()));
        let elapsed = started.elapsed();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let flood_refused = flood.map_or(0, |f| f.join().unwrap());
        let refused = refused_so_far(&p, admin) - before - flood_refused;
        report.push((sdk, outcome, refused, elapsed));
    }
    let all_ids: Vec<String> = report
        .iter()
        .filter_map(|(_, o, ..)| o.as_ref().ok())
        .flatten()
        .map(|(_, id)| id.clone())
        .collect();
    let d = p.settle(|d| all_ids.iter().all(|id| d.delivered.contains_key(id)));
    for (sdk, outcome, refused, elapsed) in &report {
        let summary = format!("{}: {refused} refused, {elapsed:?}, {outcome:?}", sdk.name());
        println!("{summary}");
        match sdk {
            // analytics-node and analytics-python read Retry-After: they wait
            // it out without spending a retry, and every call lands.
            Sdk::AnalyticsNode | Sdk::AnalyticsPython => {
                let calls = outcome.as_ref().unwrap_or_else(|e| panic!("{summary}: {e}"));
                assert_eq!(calls.len(), 7, "{summary}");
                assert!(*refused >= 1, "{summary}");
                assert!(*elapsed >= std::time::Duration::from_secs(5), "{summary}");
                for (_, id) in calls {
                    assert_eq!(d.delivered.get(id).map(Vec::len), Some(1), "{summary}: {id}");
                }
            }
            // rudder-sdk-python retries a 429 with exponential backoff and
            // ignores Retry-After: after its max_retries 3 (four tries, ≤ 7 s
            // of waits) it reports the batch dropped.
            Sdk::RudderPython => {
                let e = outcome.as_ref().expect_err(&summary);
                assert!(e.contains("429"), "{summary}");
                assert_eq!(*refused, 4, "{summary}");
            }
            other => unreachable!("{} is not a Segment client", other.name()),
        }
    }
    p.remove();
}
