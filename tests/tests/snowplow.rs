//! Snowplow's trackers, unchanged, against the built edge Worker in workerd
//! and the whole local pipeline (queue mode, firehose-local, the real
//! `transform`): `@snowplow/node-tracker` from npm, the pixel a page loads,
//! and bad input of each kind the protocol allows. Every event is found in
//! the destination by its `eid`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::process::Command;

use edgehose_local::faults::FaultPlan;
use edgehose_local::tools;
use edgehose_tests::local::Local;
use edgehose_tests::requests::{header, request};

const WRITE_KEYS: &str = "server:wk_server_0123456789,web:wk_web_0123456789";
const TP2: &str = "/com.snowplowanalytics.snowplow/tp2";

fn local(name: &str) -> Local {
    Local::start(
        name,
        FaultPlan::default(),
        &[("WRITE_KEYS", WRITE_KEYS), ("ALLOWED_ORIGINS", "*")],
    )
}

/// Runs tests/sdk/snowplow-node.cjs: the `(e, eid)` of every event the
/// tracker reports delivered.
fn node_tracker(host: &str, key: &str, run: &str) -> Vec<(String, String)> {
    let out = Command::new(tools::npm_bin("node").unwrap())
        .arg(tools::repo_root().join("tests/sdk/snowplow-node.cjs"))
        .env("NODE_PATH", tools::cache_dir().join("npm/node_modules"))
        .env("EDGEHOSE_HOST", host)
        .env("EDGEHOSE_WRITE_KEY", key)
        .env("EDGEHOSE_RUN", run)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the tracker failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["e"].as_str().unwrap().to_owned(),
                v["eid"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_node_tracker_and_a_pixel_land_every_event_once_with_its_fields() {
    let p = local("snowplow-node");
    let sent = node_tracker(p.edge.url(), "wk_server_0123456789", "n1");
    assert_eq!(sent.len(), 4, "{sent:?}");
    // A page's pixel: one event in the query string, the key as ?key=.
    let pixel_eid = "5d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
    let pixel = request(
        "GET",
        &format!(
            "{}/i?e=pv&eid={pixel_eid}&p=web&tv=pixel&url=https%3A%2F%2Fshop.example%2Fa&page=A+page&key=wk_web_0123456789",
            p.edge.url()
        ),
        &[("origin", "https://shop.example")],
        b"",
    );
    assert_eq!(pixel.status, 200, "{}", pixel.text());
    assert_eq!(header(&pixel, "content-type"), Some("image/gif"));
    assert!(pixel.body.starts_with(b"GIF89a") && pixel.body.len() == 43);
    assert!(header(&pixel, "cache-control").is_some_and(|c| c.contains("no-store")));
    // The browser tracker sends cookies: the answer names the origin and allows them.
    assert_eq!(
        header(&pixel, "access-control-allow-origin"),
        Some("https://shop.example")
    );
    assert_eq!(header(&pixel, "access-control-allow-credentials"), Some("true"));

    let mut ids: Vec<&str> = sent.iter().map(|(_, id)| id.as_str()).collect();
    ids.push(pixel_eid);
    let d = p.settle(|d| ids.iter().all(|id| d.delivered.contains_key(*id)));
    for id in &ids {
        let copies = d
            .delivered
            .get(*id)
            .unwrap_or_else(|| panic!("{id} is not in the destination; rejected: {:?}", d.reasons(id)));
        assert_eq!(copies.len(), 1, "{id} landed {} times", copies.len());
    }
    let line = |id: &str| d.delivered[id][0].clone();
    for (e, id) in &sent {
        let l = line(id);
        assert_eq!(l["type"], e.as_str(), "{l}");
        assert_eq!(
            (l["key_id"].as_str(), l["platform"].as_str()),
            (Some("server"), Some("srv")),
            "{l}"
        );
        assert_eq!(l["user_id"], "user-n1", "{l}");
        assert_eq!(l["app_id"], "shop", "{l}");
        assert!(l["tracker"].as_str().unwrap().starts_with("node-"), "{l}");
        assert!(l["sent_at"].is_string(), "the tracker's stm is kept: {l}");
        match e.as_str() {
            "pv" => {
                assert_eq!(
                    (l["event"].as_str(), l["name"].as_str()),
                    (Some("page_view"), Some("Home")),
                    "{l}"
                );
                assert_eq!(l["url"], "https://shop.example/n1");
            }
            "se" => {
                assert_eq!(l["event"], "add-to-basket", "{l}");
                assert_eq!(l["properties"]["category"], "shop", "{l}");
            }
            _ if l["event"] == "checkout" => {
                assert_eq!(l["schema"], "iglu:com.acme/checkout/jsonschema/1-0-0", "{l}");
                assert_eq!(l["properties"]["total"], 9.5, "{l}");
                assert_eq!(l["contexts"][0]["data"]["items"], 3, "the entity, decoded from cx: {l}");
            }
            _ => {
                // A true timestamp is taken as given.
                assert_eq!(l["event"], "imported", "{l}");
                assert_eq!(l["event_time"], "2024-05-01T12:30:00.000Z", "{l}");
            }
        }
    }
    let px = line(pixel_eid);
    assert_eq!(
        (px["key_id"].as_str(), px["name"].as_str()),
        (Some("web"), Some("A page")),
        "{px}"
    );
    assert_eq!(d.rejected.len(), 0, "{:?}", d.rejected);
    p.remove();
}

#[test]
fn bad_input_is_refused_by_name_or_kept_with_its_reason() {
    let p = local("snowplow-bad");
    let url = format!("{}{TP2}", p.edge.url());
    let key = ("x-edgehose-key", "wk_server_0123456789");
    let json = ("content-type", "application/json; charset=UTF-8");
    let body = |events: &str| {
        format!(r#"{{"schema":"iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4","data":[{events}]}}"#)
    };
    // Refused whole, by name: not JSON, not the envelope, too many events, no key.
    let broken = request("POST", &url, &[key, json], b"{not json");
    assert_eq!(
        (broken.status, broken.text().contains("invalid_json")),
        (400, true),
        "{}",
        broken.text()
    );
    let other = request("POST", &url, &[key, json], br#"{"data":[{}]}"#);
    assert_eq!(other.status, 400, "{}", other.text());
    assert!(other.text().contains("payload_data"), "{}", other.text());
    let many = request("POST", &url, &[key, json], body(&vec!["{}"; 501].join(",")).as_bytes());
    assert_eq!(many.status, 413, "{}", many.text());
    assert!(many.text().contains("MAX_EVENTS"), "{}", many.text());
    let keyless = request("POST", &url, &[json], body("{}").as_bytes());
    assert_eq!(keyless.status, 401, "{}", keyless.text());
    // A preflight from a page, as the browser tracker's fetch makes it.
    let preflight = request(
        "OPTIONS",
        &url,
        &[
            ("origin", "https://shop.example"),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "content-type,sp-anonymous"),
        ],
        b"",
    );
    assert_eq!(preflight.status, 204);
    assert_eq!(
        header(&preflight, "access-control-allow-origin"),
        Some("https://shop.example")
    );
    assert_eq!(header(&preflight, "access-control-allow-credentials"), Some("true"));
    assert!(
        header(&preflight, "access-control-allow-headers")
            .unwrap()
            .contains("sp-anonymous")
    );

    // Accepted, then rejected with a reason each: a wrong type in the string
    // map, a ue_px that is not base64, an unknown e, a bad schema reference.
    let eid = |n: u8| format!("00000000-0000-4000-8000-0000000000{n:02}");
    let events = [
        format!(r#"{{"e":"pv","eid":"{}","p":"web","tv":"t","vp":1920}}"#, eid(1)),
        format!(r#"{{"e":"ue","eid":"{}","p":"web","tv":"t","ue_px":"%%%"}}"#, eid(2)),
        format!(r#"{{"e":"zz","eid":"{}","p":"web","tv":"t"}}"#, eid(3)),
        format!(
            r#"{{"e":"ue","eid":"{}","p":"web","tv":"t","ue_pr":"{{\"schema\":\"iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0\",\"data\":{{\"schema\":\"acme/ev\",\"data\":{{}}}}}}"}}"#,
            eid(4)
        ),
        format!(
            r#"{{"e":"pv","eid":"{}","p":"web","tv":"t","url":"https://shop.example/ok"}}"#,
            eid(5)
        ),
    ];
    let r = request("POST", &url, &[key, json], body(&events.join(",")).as_bytes());
    assert_eq!((r.status, r.text()), (200, "ok".to_owned()));
    let expected = [
        (eid(1), "wrong_type"),
        (eid(2), "invalid_encoding"),
        (eid(3), "unknown_type"),
        (eid(4), "invalid_schema_uri"),
    ];
    let d = p.settle(|d| d.delivered.contains_key(&eid(5)) && expected.iter().all(|(id, _)| !d.reasons(id).is_empty()));
    for (id, reason) in &expected {
        assert_eq!(d.reasons(id), [*reason], "{id}");
    }
    assert!(d.delivered.contains_key(&eid(5)), "the valid one beside them lands");
    p.remove();
}
