//! The first-party identity cookie through the built edge Worker and the
//! whole local pipeline: set on a first visit, read back on the next, the
//! same id in every event of the visitor through each door (schema v1,
//! Segment, Snowplow), and none with the anonymity header.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use edgehose_local::faults::FaultPlan;
use edgehose_local::http::{Response, send};
use edgehose_tests::local::Local;

const ORIGIN: &str = "https://shop.example";

fn post(url: &str, headers: &[(&str, &str)], body: &str) -> Response {
    let mut b = http::Request::post(url).header("origin", ORIGIN);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    send(b.body(body.as_bytes().to_vec()).unwrap()).unwrap()
}

fn set_cookie(r: &Response) -> Option<String> {
    r.headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[test]
fn a_visitor_keeps_one_id_across_requests_and_doors_unless_anonymous() {
    let p = Local::start(
        "identity",
        FaultPlan::default(),
        &[
            ("ALLOW_ANONYMOUS", "true"),
            ("ALLOWED_ORIGINS", "*"),
            ("IDENTITY_COOKIE_DAYS", "30"),
            ("IDENTITY_COOKIE_DOMAIN", ".shop.example"),
        ],
    );
    let base = p.edge.url();
    let json = ("content-type", "application/json");
    // First visit: no cookie, one is set.
    let first = post(
        &format!("{base}/v1/events"),
        &[json],
        r#"{"event":"click","message_id":"id-v1"}"#,
    );
    assert_eq!(first.status, 200, "{}", first.text());
    let cookie = set_cookie(&first).expect("a first visit is given a cookie");
    for attribute in [
        "Max-Age=2592000",
        "Domain=.shop.example",
        "SameSite=Lax",
        "Secure",
        "HttpOnly",
        "Path=/",
    ] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    // With the cookie on, a page may send and keep it: credentials allowed.
    assert_eq!(
        first
            .headers
            .get("access-control-allow-credentials")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    let pair = cookie.split(';').next().unwrap().to_owned();
    let id = pair.split_once('=').unwrap().1.to_owned();
    // The next requests bring it back, through other doors.
    let brought = ("cookie", pair.as_str());
    let segment = post(
        &format!("{base}/v1/batch"),
        &[json, brought],
        r#"{"batch":[{"type":"track","event":"x","messageId":"id-seg","anonymousId":"a"}]}"#,
    );
    assert_eq!(segment.status, 200, "{}", segment.text());
    assert!(
        set_cookie(&segment).unwrap().starts_with(&format!("{pair};")),
        "renewed, the same id"
    );
    let tp2 = r#"{"schema":"iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4","data":[{"e":"pv","eid":"00000000-0000-4000-8000-000000000042","p":"web","tv":"t"}]}"#;
    let snow = post(
        &format!("{base}/com.snowplowanalytics.snowplow/tp2"),
        &[json, brought],
        tp2,
    );
    assert_eq!(snow.status, 200, "{}", snow.text());
    // Anonymous: no id, and the cookie ended.
    let anon = post(
        &format!("{base}/v1/events"),
        &[json, brought, ("sp-anonymous", "*")],
        r#"{"event":"click","message_id":"id-anon"}"#,
    );
    assert_eq!(anon.status, 200);
    assert!(
        set_cookie(&anon).unwrap().contains("Max-Age=0"),
        "{:?}",
        set_cookie(&anon)
    );

    let ids = ["id-v1", "id-seg", "00000000-0000-4000-8000-000000000042", "id-anon"];
    let d = p.settle(|d| ids.iter().all(|i| d.delivered.contains_key(*i)));
    for i in &ids[..3] {
        let line = &d.delivered[*i][0];
        assert_eq!(line["network_userid"].as_str(), Some(id.as_str()), "{line}");
    }
    let anon = &d.delivered["id-anon"][0];
    assert!(anon.get("network_userid").is_none(), "{anon}");
    p.remove();
}
