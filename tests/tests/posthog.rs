//! PostHog's SDKs, unchanged, against the built edge Worker in workerd and
//! the whole local pipeline (queue mode, firehose-local, the real
//! `transform`): `posthog-node` from npm and `posthog` from PyPI, each on
//! its classic route (`/batch/`, plain and gzip) and on
//! `/i/v1/analytics/events` (their `POSTHOG_CAPTURE_MODE=v1`), and bad input
//! of each kind. Every event is found in the destination by its `uuid`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::process::Command;

use edgehose_local::faults::FaultPlan;
use edgehose_local::http::Response;
use edgehose_local::tools;
use edgehose_tests::local::Local;
use edgehose_tests::requests::request;

const TOKEN: &str = "phc_server_0123456789";
const WRITE_KEYS: &str = "server:phc_server_0123456789,web:phc_web_0123456789";

fn local(name: &str) -> Local {
    Local::start(
        name,
        FaultPlan::default(),
        &[("WRITE_KEYS", WRITE_KEYS), ("ALLOWED_ORIGINS", "https://shop.example")],
    )
}

/// What an SDK script reported sent: `(event, uuid)`.
fn sent(out: std::process::Output, who: &str) -> Vec<(String, String)> {
    assert!(
        out.status.success(),
        "{who} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["event"].as_str().unwrap().to_owned(),
                v["uuid"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn node(host: &str, run: &str, mode: &str) -> Vec<(String, String)> {
    let out = Command::new(tools::npm_bin("node").unwrap())
        .arg(tools::repo_root().join("tests/sdk/posthog-node.cjs"))
        .env("NODE_PATH", tools::cache_dir().join("npm/node_modules"))
        .env("EDGEHOSE_HOST", host)
        .env("EDGEHOSE_TOKEN", TOKEN)
        .env("EDGEHOSE_RUN", run)
        .env("POSTHOG_CAPTURE_MODE", mode)
        .output()
        .unwrap();
    sent(out, &format!("posthog-node ({mode})"))
}

fn python(host: &str, run: &str, gzip: bool, mode: &str) -> Vec<(String, String)> {
    let out = Command::new(tools::python().unwrap())
        .arg(tools::repo_root().join("tests/sdk/posthog_python.py"))
        .env("EDGEHOSE_HOST", host)
        .env("EDGEHOSE_TOKEN", TOKEN)
        .env("EDGEHOSE_RUN", run)
        .env("EDGEHOSE_GZIP", if gzip { "1" } else { "0" })
        .env("POSTHOG_CAPTURE_MODE", mode)
        .output()
        .unwrap();
    sent(out, &format!("posthog-python ({mode})"))
}

#[test]
fn posthog_node_and_python_land_every_event_once_with_its_fields() {
    let p = local("posthog-sdks");
    let host = p.edge.url().to_owned();
    // Each run side by side: four SDK runs, one Worker.
    let runs: Vec<(&str, Vec<(String, String)>)> = std::thread::scope(|s| {
        let node_v0 = s.spawn(|| node(&host, "n0", "v0"));
        let node_v1 = s.spawn(|| node(&host, "n1", "v1"));
        let py_v0 = s.spawn(|| python(&host, "p0", false, "v0"));
        let py_gz = s.spawn(|| python(&host, "pg", true, "v0"));
        let py_v1 = s.spawn(|| python(&host, "p1", false, "v1"));
        vec![
            ("n0", node_v0.join().unwrap()),
            ("n1", node_v1.join().unwrap()),
            ("p0", py_v0.join().unwrap()),
            ("pg", py_gz.join().unwrap()),
            ("p1", py_v1.join().unwrap()),
        ]
    });
    for (run, events) in &runs {
        assert_eq!(events.len(), 5, "{run}: {events:?}");
    }
    let ids: Vec<&str> = runs
        .iter()
        .flat_map(|(_, e)| e.iter().map(|(_, id)| id.as_str()))
        .collect();
    let d = p.settle(|d| ids.iter().all(|id| d.delivered.contains_key(*id)));
    for id in &ids {
        let copies = d
            .delivered
            .get(*id)
            .unwrap_or_else(|| panic!("{id} is not in the destination; rejected: {:?}", d.reasons(id)));
        assert_eq!(copies.len(), 1, "{id} landed {} times", copies.len());
    }
    for (run, events) in &runs {
        let library = if run.starts_with('n') {
            "posthog-node/"
        } else {
            "posthog-python/"
        };
        for (event, id) in events {
            let l = &d.delivered[id.as_str()][0];
            assert_eq!(
                (l["event"].as_str(), l["key_id"].as_str()),
                (Some(event.as_str()), Some("server")),
                "{l}"
            );
            assert!(l["tracker"].as_str().is_some_and(|t| t.starts_with(library)), "{l}");
            match event.as_str() {
                "order completed" => {
                    assert_eq!(l["distinct_id"], format!("user-{run}"), "{l}");
                    assert_eq!(l["properties"]["total"], 9.5, "{l}");
                    assert!(l.get("sent_at").is_some(), "{l}");
                    if run.starts_with('n') {
                        assert_eq!(l["url"], format!("https://shop.example/{run}"), "{l}");
                        assert_eq!(l["session_id"], format!("s-{run}"), "{l}");
                    }
                }
                "imported" => {
                    // Its own timestamp, corrected by the client's (nil) skew.
                    let t = l["event_time"].as_str().unwrap();
                    assert!(t.starts_with("2024-05-01T12:30:0"), "{l}");
                }
                "$identify" | "$set" => assert_eq!(l["traits"]["plan"], "pro", "{l}"),
                "$create_alias" => assert_eq!(l["properties"]["alias"], format!("alias-{run}"), "{l}"),
                "$groupidentify" => assert_eq!(l["properties"]["$group_key"], format!("acme-{run}"), "{l}"),
                other => panic!("unexpected event {other}: {l}"),
            }
            // The project token is the write key: never kept.
            assert!(!l.to_string().contains(TOKEN), "{l}");
        }
    }
    assert_eq!(d.rejected.len(), 0, "{:?}", d.rejected);
    p.remove();
}

#[test]
fn bad_input_is_refused_by_name_or_kept_with_its_reason() {
    let p = local("posthog-bad");
    let url = |path: &str| format!("{}{path}", p.edge.url());
    let json = ("content-type", "application/json");
    let uuid = |n: u8| format!("0193a2b4-0000-7000-8000-0000000000{n:02}");
    let batch = |events: &str| format!(r#"{{"api_key":"{TOKEN}","batch":[{events}]}}"#);
    let code = |r: &Response| serde_json::from_str::<serde_json::Value>(&r.text()).unwrap()["code"].clone();

    // Refused whole, by name.
    let broken = request("POST", &url("/batch/"), &[json], b"{not json");
    assert_eq!(
        (broken.status, code(&broken)),
        (400, "invalid_json".into()),
        "{}",
        broken.text()
    );
    let two = request(
        "POST",
        &url("/batch/"),
        &[json],
        batch(r#"{"event":"e","distinct_id":"d","properties":{"token":"phc_web_0123456789"}}"#).as_bytes(),
    );
    assert_eq!(
        (two.status, code(&two)),
        (401, "multiple_tokens".into()),
        "{}",
        two.text()
    );
    let unknown = request(
        "POST",
        &url("/e/"),
        &[json],
        batch(r#"{"event":"e"}"#).replace(TOKEN, "phc_mistyped_01").as_bytes(),
    );
    assert_eq!((unknown.status, code(&unknown)), (401, "invalid_write_key".into()));
    let lz = request("POST", &url("/e/?compression=lz64"), &[], b"data=N4Ig");
    assert_eq!(
        (lz.status, code(&lz)),
        (415, "unsupported_compression".into()),
        "{}",
        lz.text()
    );
    let many = request(
        "POST",
        &url("/batch/"),
        &[json],
        batch(&vec![r#"{"event":"e"}"#; 501].join(",")).as_bytes(),
    );
    assert_eq!(
        (many.status, code(&many)),
        (413, "too_many_events".into()),
        "{}",
        many.text()
    );
    let v1_no_uuid = request(
        "POST",
        &url("/i/v1/analytics/events"),
        &[json, ("authorization", &format!("Bearer {TOKEN}"))],
        br#"{"created_at":"2024-05-01T12:30:00Z","batch":[{"event":"e","distinct_id":"d"}]}"#,
    );
    assert_eq!(
        (v1_no_uuid.status, code(&v1_no_uuid)),
        (400, "missing_event_uuid".into())
    );

    // Accepted, then rejected with a reason each; the valid one beside them lands.
    let events = [
        format!(r#"{{"event":"e","uuid":"{}"}}"#, uuid(1)),
        format!(r#"{{"event":"e","distinct_id":"undefined","uuid":"{}"}}"#, uuid(2)),
        format!(r#"{{"event":"","distinct_id":"d","uuid":"{}"}}"#, uuid(3)),
        format!(
            r#"{{"event":"e","distinct_id":"d","timestamp":"soon","uuid":"{}"}}"#,
            uuid(4)
        ),
        format!(
            r#"{{"event":"e","distinct_id":"d","properties":[1],"uuid":"{}"}}"#,
            uuid(5)
        ),
        format!(
            r#"{{"event":"ok","distinct_id":"d","uuid":"{}","properties":{{"$current_url":"https://shop.example/ok"}}}}"#,
            uuid(6)
        ),
    ];
    let r = request("POST", &url("/batch/"), &[json], batch(&events.join(",")).as_bytes());
    assert_eq!((r.status, r.text()), (200, r#"{"status":1}"#.to_owned()));
    // On v1, the answer says which: drop with its reasons, ok for the rest.
    let v1 = format!(
        r#"{{"created_at":"2024-05-01T12:30:00Z","batch":[{{"event":"e","distinct_id":"null","uuid":"{}"}},{{"event":"v1 ok","distinct_id":"d","uuid":"{}"}}]}}"#,
        uuid(7),
        uuid(8)
    );
    let r = request(
        "POST",
        &url("/i/v1/analytics/events"),
        &[
            json,
            ("authorization", &format!("Bearer {TOKEN}")),
            ("posthog-attempt", "1"),
        ],
        v1.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let answer: serde_json::Value = serde_json::from_str(&r.text()).unwrap();
    assert_eq!(answer["results"][uuid(7)]["result"], "drop", "{answer}");
    assert!(
        answer["results"][uuid(7)]["details"]
            .as_str()
            .unwrap()
            .contains("illegal_id"),
        "{answer}"
    );
    assert_eq!(answer["results"][uuid(8)]["result"], "ok", "{answer}");
    let expected = [
        (uuid(1), "missing_field"),
        (uuid(2), "illegal_id"),
        (uuid(3), "empty"),
        (uuid(4), "invalid_timestamp"),
        (uuid(5), "wrong_type"),
        (uuid(7), "illegal_id"),
    ];
    let d = p.settle(|d| {
        [uuid(6), uuid(8)].iter().all(|id| d.delivered.contains_key(id))
            && expected.iter().all(|(id, _)| !d.reasons(id).is_empty())
    });
    for (id, reason) in &expected {
        assert_eq!(d.reasons(id), [*reason], "{id}");
    }
    assert_eq!(d.delivered[&uuid(6)][0]["url"], "https://shop.example/ok");

    // The start calls: no flags, a configuration, a mistyped token told.
    let flags = request(
        "POST",
        &url("/flags/?v=2"),
        &[json, ("origin", "https://shop.example")],
        b"{}",
    );
    assert_eq!(flags.status, 200);
    let v: serde_json::Value = serde_json::from_str(&flags.text()).unwrap();
    assert_eq!(v["flags"], serde_json::json!({}));
    let config = request("GET", &url(&format!("/array/{TOKEN}/config")), &[], b"");
    assert_eq!(config.status, 200);
    assert!(config.text().contains("gzip-js"), "{}", config.text());
    let mistyped = request("GET", &url("/array/phc_mistyped_01/config.js"), &[], b"");
    assert_eq!(mistyped.status, 401);
    p.remove();
}
