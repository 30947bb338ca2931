use super::validate::validate;
use super::*;
use crate::api::{self, Accepted, ApiConfig, Body, Prepared, Reply, RequestHead};
use crate::clock::SeededRandom;
use crate::envelope::{EdgeMeta, Envelope};
use crate::settings::Settings;
use crate::validate::Reason;

const UUID: &str = "0193a2b4-7c1d-7e8a-9b6f-2d3c4e5f6a7b";
const UUID2: &str = "0193a2b4-7c1d-7e8a-9b6f-2d3c4e5f6a7c";
const TOKEN: &str = "phc_site_token_1";
const T: Timestamp = Timestamp(1_714_566_600_000);

fn event(extra: &str) -> String {
    format!(
        r#"{{"event":"$pageview","distinct_id":"u1","uuid":"{UUID}","timestamp":"2024-05-01T12:29:58Z","properties":{{"$lib":"web","$lib_version":"1.455.2"}}{extra}}}"#
    )
}

fn reasons(text: &str) -> Vec<(Reason, String)> {
    validate(text, &Limits::default())
        .map(|_| Vec::new())
        .unwrap_or_else(|v| v.into_iter().map(|v| (v.reason, v.field)).collect())
}

fn config(pairs: &[(&str, &str)]) -> ApiConfig {
    let owned: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    ApiConfig::from_settings(&Settings::new(move |n: &str| {
        owned.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())
    }))
    .unwrap()
}

fn keyed() -> ApiConfig {
    config(&[
        ("WRITE_KEYS", &format!("site:{TOKEN}")),
        ("ALLOWED_ORIGINS", "https://shop.example"),
    ])
}

fn send(
    head: RequestHead<'_>,
    body: &[u8],
    ct: Option<&str>,
    ce: Option<&str>,
    cfg: &ApiConfig,
) -> Result<Accepted, Reply> {
    let body = Body {
        bytes: body,
        content_type: ct,
        content_encoding: ce,
        inflated: None,
    };
    api::handle(&head, body, &EdgeMeta::default(), cfg, T, &SeededRandom::new(5))
}

fn post(path: &str) -> RequestHead<'_> {
    RequestHead {
        method: "POST",
        path,
        ..RequestHead::default()
    }
}

fn envelopes(a: &Accepted) -> Vec<Envelope<'_>> {
    a.lines.iter().map(|l| Envelope::parse(l).unwrap()).collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn the_routes_are_the_sdks() {
    for path in ["/e", "/i/v0/e", "/batch", "/capture", "/track"] {
        assert_eq!(route(path), Some(Route::Capture), "{path}");
    }
    assert_eq!(route("/i/v1/analytics/events"), Some(Route::AnalyticsV1));
    assert_eq!(route("/v1/batch"), None);
    assert_eq!(start("/flags"), Some(Start::Flags));
    assert_eq!(start("/decide"), Some(Start::Flags));
    assert_eq!(
        start("/array/phc_1/config.js"),
        Some(Start::RemoteConfig {
            token: "phc_1",
            script: true
        })
    );
    assert_eq!(
        start("/array/phc_1/config"),
        Some(Start::RemoteConfig {
            token: "phc_1",
            script: false
        })
    );
    assert_eq!(start("/array//config"), None);
    assert_eq!(start("/array/phc_1/other"), None);
}

#[test]
fn a_capture_payload_is_unwrapped_from_every_encoding_the_sdks_send() {
    let json = format!(r#"{{"api_key":"{TOKEN}","batch":[{}]}}"#, event(""));
    let plain = unwrap_capture(json.as_bytes(), Some("application/json"), None).unwrap();
    assert_eq!(plain, json.as_bytes());
    // posthog-js's sendBeacon without compression: a form's data, base64.
    let form = format!(
        "data={}",
        crate::sigv4::uri_encode(b64(json.as_bytes()).as_bytes(), false)
    );
    for (ct, query) in [
        (Some("application/x-www-form-urlencoded"), Some("compression=base64")),
        (None, None),
        (Some("text/plain"), Some("ver=1.455.2")),
    ] {
        assert_eq!(
            unwrap_capture(form.as_bytes(), ct, query).unwrap(),
            json.as_bytes(),
            "{ct:?} {query:?}"
        );
    }
    // A `+` a form turned into a space, and base64 without its padding.
    let spaced = b64(json.as_bytes()).replace('+', " ").trim_end_matches('=').to_owned();
    assert_eq!(
        unwrap_capture(format!("data={spaced}").as_bytes(), None, None).unwrap(),
        json.as_bytes()
    );
    // A form's data in JSON, and base64 said by the query alone.
    let json_form = format!("data={}", crate::sigv4::uri_encode(json.as_bytes(), false));
    assert_eq!(
        unwrap_capture(json_form.as_bytes(), None, None).unwrap(),
        json.as_bytes()
    );
    let raw64 = b64(json.as_bytes());
    assert_eq!(
        unwrap_capture(raw64.as_bytes(), None, Some("compression=base64")).unwrap(),
        json.as_bytes()
    );
    let e = unwrap_capture(b"data=abc", None, Some("compression=lz64")).unwrap_err();
    assert_eq!((e.status(), e.code()), (415, "unsupported_compression"));
    let e = unwrap_capture(b"%%%", None, Some("compression=base64")).unwrap_err();
    assert_eq!((e.status(), e.code()), (400, "invalid_base64"));
    let e = unwrap_capture(b"ver=1", Some("application/x-www-form-urlencoded"), None).unwrap_err();
    assert_eq!(e.code(), "invalid_payload");
}

#[test]
fn a_capture_is_a_batch_an_array_or_one_event_and_its_token_is_taken_out() {
    let limits = Limits::default();
    let r = read_capture(
        format!(
            r#"{{"api_key":"{TOKEN}","sent_at":"2024-05-01T12:30:00Z","batch":[{},{}]}}"#,
            event(""),
            event("")
        )
        .as_bytes(),
        &limits,
    )
    .unwrap();
    assert_eq!(r.token.as_deref(), Some(TOKEN));
    assert_eq!(r.sent_at, Some(T));
    assert_eq!(r.events, [event(""), event("")]);

    // posthog-js: the token in each event's properties, taken out of them.
    let js = format!(r#"[{{"event":"e","properties":{{"token":"{TOKEN}","distinct_id":"d1","$lib":"web"}}}}]"#);
    let r = read_capture(js.as_bytes(), &limits).unwrap();
    assert_eq!(r.token.as_deref(), Some(TOKEN));
    assert_eq!(
        r.events,
        [r#"{"event":"e","properties":{"distinct_id":"d1","$lib":"web"}}"#]
    );

    let one = format!(r#"{{"event":"e","distinct_id":"d","api_key":"{TOKEN}","$token":"{TOKEN}"}}"#);
    let r = read_capture(one.as_bytes(), &limits).unwrap();
    assert_eq!(
        (r.token.as_deref(), r.events.as_slice()),
        (Some(TOKEN), &[r#"{"event":"e","distinct_id":"d"}"#.to_owned()][..])
    );

    let two = format!(r#"{{"api_key":"{TOKEN}","batch":[{{"event":"e","token":"phc_other"}}]}}"#);
    let e = read_capture(two.as_bytes(), &limits).unwrap_err();
    assert_eq!((e.status(), e.code()), (401, "multiple_tokens"));
}

#[test]
fn a_capture_that_is_not_one_is_refused_by_name() {
    let limits = Limits::default();
    let code = |body: &str| {
        let e = read_capture(body.as_bytes(), &limits).unwrap_err();
        (e.status(), e.code())
    };
    assert_eq!(code("{not json"), (400, "invalid_json"));
    assert_eq!(code(r#""text""#), (400, "invalid_payload"));
    assert_eq!(code(r#"{"batch":[]}"#), (400, "empty_batch"));
    assert_eq!(code(r#"{"batch":{}}"#), (400, "invalid_payload"));
    assert_eq!(code(r#"{"batch":[1]}"#), (400, "invalid_event"));
    assert_eq!(code(""), (400, "empty_body"));
    let many = format!("[{}]", vec![r#"{"event":"e"}"#; 501].join(","));
    let e = read_capture(many.as_bytes(), &limits).unwrap_err();
    assert_eq!((e.status(), e.code()), (413, "too_many_events"));
    assert!(e.to_string().contains("500"), "{e}");
    let big = format!(r#"[{{"event":"e","properties":{{"p":"{}"}}}}]"#, "x".repeat(40_000));
    assert_eq!(code(&big), (413, "event_too_large"));
}

#[test]
fn a_v1_batch_has_a_uuid_on_every_event_once() {
    let limits = Limits::default();
    let body = |events: &str| format!(r#"{{"created_at":"2024-05-01T12:30:00Z","batch":[{events}]}}"#);
    let r = read_v1(
        body(&format!("{},{}", event(""), event("").replace(UUID, UUID2))).as_bytes(),
        &limits,
    );
    let r = r.unwrap();
    assert_eq!((r.events.len(), r.sent_at, r.token), (2, Some(T), None));
    let code = |b: String| read_v1(b.as_bytes(), &limits).unwrap_err().code();
    assert_eq!(code(body(r#"{"event":"e"}"#)), "missing_event_uuid");
    assert_eq!(code(body(r#"{"event":"e","uuid":"nope"}"#)), "invalid_event_uuid");
    assert_eq!(
        code(body(&format!("{},{}", event(""), event("")))),
        "duplicate_event_uuid"
    );
    assert_eq!(
        code(format!(r#"{{"created_at":"yesterday","batch":[{}]}}"#, event(""))),
        "invalid_created_at"
    );
}

#[test]
fn the_time_is_corrected_by_the_clients_skew_or_its_offset() {
    let m = |t: &str, batch: Option<Timestamp>| stamp(&Members::parse(t).unwrap(), batch);
    let s = m(&event(""), Some(T));
    assert_eq!(s.id.as_deref(), Some(UUID));
    assert_eq!((s.time, s.sent_at), (Some(Timestamp(T.0 - 2_000)), Some(T)));
    let own = m(&event(r#","sent_at":"2024-05-01T12:30:01Z""#), Some(T));
    assert_eq!(own.sent_at, Some(Timestamp(T.0 + 1_000)));
    let ignored = m(
        r#"{"timestamp":"2024-05-01T12:30:00Z","properties":{"$ignore_sent_at":true}}"#,
        Some(T),
    );
    assert_eq!((ignored.time, ignored.sent_at), (Some(T), None));
    let offset = m(r#"{"offset":1500}"#, None);
    let time = crate::envelope::event_time(T, offset.time, offset.sent_at);
    assert_eq!(time, Timestamp(T.0 - 1_500));
    assert_eq!(m(r#"{"uuid":""}"#, None), crate::dialect::Stamp::default());
}

#[test]
fn events_are_checked_by_posthogs_rules() {
    assert!(reasons(&event("")).is_empty());
    let e = validate(&event(r#","$set":{"plan":"pro"}"#), &Limits::default()).unwrap();
    assert_eq!((e.name.as_str(), e.distinct_id.as_str()), ("$pageview", "u1"));
    assert_eq!(e.library().as_deref(), Some("web/1.455.2"));
    assert_eq!(e.set().unwrap()["plan"], "pro");
    // posthog-js: distinct_id in the properties; a number is its text.
    let js = r#"{"event":"e","properties":{"distinct_id":42}}"#;
    assert_eq!(validate(js, &Limits::default()).unwrap().distinct_id, "42");
    assert_eq!(
        reasons(r#"{"distinct_id":"u1"}"#),
        [(Reason::MissingField, "event".to_owned())]
    );
    assert_eq!(
        reasons(r#"{"event":"e"}"#),
        [(Reason::MissingField, "distinct_id".to_owned())]
    );
    assert_eq!(reasons(&event(r#","event":"""#)), [(Reason::Empty, "event".to_owned())]);
    assert_eq!(
        reasons(&event(&format!(r#","event":"{}""#, "e".repeat(201)))),
        [(Reason::TooLong, "event".to_owned())]
    );
    for illegal in ["null", "undefined", "Anonymous", "0", "[object Object]"] {
        assert_eq!(
            reasons(&event(&format!(r#","distinct_id":"{illegal}""#))),
            [(Reason::IllegalId, "distinct_id".to_owned())],
            "{illegal}"
        );
    }
    assert_eq!(
        reasons(&event(r#","distinct_id":{"a":1}"#)),
        [(Reason::WrongType, "distinct_id".to_owned())]
    );
    assert_eq!(
        reasons(&event(r#","uuid":"x""#)),
        [(Reason::WrongType, "uuid".to_owned())]
    );
    assert_eq!(
        reasons(&event(r#","timestamp":"soon""#)),
        [(Reason::InvalidTimestamp, "timestamp".to_owned())]
    );
    assert_eq!(
        reasons(&event(r#","properties":[1]"#)),
        [(Reason::WrongType, "properties".to_owned())]
    );
    assert_eq!(
        reasons(&event(r#","$set":"pro""#)),
        [(Reason::WrongType, "$set".to_owned())]
    );
    assert_eq!(reasons("[1]"), [(Reason::NotAnObject, String::new())]);
}

#[test]
fn the_door_takes_the_token_from_the_body_and_answers_200() {
    let cfg = keyed();
    let body = format!(
        r#"{{"api_key":"{TOKEN}","batch":[{}],"sent_at":"2024-05-01T12:30:00Z"}}"#,
        event("")
    );
    let a = send(post("/batch/"), body.as_bytes(), Some("application/json"), None, &cfg).unwrap();
    assert_eq!((a.reply.status, a.reply.body.as_str()), (200, CAPTURE_ANSWER));
    assert_eq!(
        (a.count, a.cell.door.as_str(), a.cell.key.as_str()),
        (1, "posthog", "site")
    );
    let env = &envelopes(&a)[0];
    assert_eq!((env.id.as_ref(), env.format.as_deref()), (UUID, Some("posthog")));
    assert_eq!(env.key_id.as_deref(), Some("site"));
    assert_eq!(env.event_time, T.0 - 2_000);
    assert!(!a.lines[0].contains(TOKEN), "{}", a.lines[0]);

    let wrong = body.replace(TOKEN, "phc_mistyped_1");
    let r = send(post("/batch/"), wrong.as_bytes(), None, None, &cfg).unwrap_err();
    assert_eq!(
        (
            r.status,
            serde_json::from_str::<serde_json::Value>(&r.body).unwrap()["code"].as_str()
        ),
        (401, Some("invalid_write_key"))
    );
    let none = format!("[{}]", event(""));
    let r = send(post("/e/"), none.as_bytes(), None, None, &cfg).unwrap_err();
    assert_eq!(r.status, 401);
    assert!(r.body.contains("api_key"), "{}", r.body);
}

#[test]
fn posthog_js_gzip_is_found_by_its_first_bytes_and_a_beacon_by_its_form() {
    let cfg = keyed();
    let body = format!(r#"{{"api_key":"{TOKEN}","batch":[{}]}}"#, event(""));
    let head = RequestHead {
        origin: Some("https://shop.example"),
        ..post("/e/")
    };
    let a = send(head, &gzip(body.as_bytes()), Some("text/plain"), None, &cfg).unwrap();
    assert_eq!((a.reply.status, a.count), (200, 1));
    assert!(
        a.reply
            .headers
            .contains(&("access-control-allow-origin", "https://shop.example".to_owned()))
    );
    let form = format!(
        "data={}",
        crate::sigv4::uri_encode(b64(body.as_bytes()).as_bytes(), false)
    );
    let beacon = RequestHead {
        query: Some("compression=base64&beacon=1"),
        ..head
    };
    let a = send(
        beacon,
        form.as_bytes(),
        Some("application/x-www-form-urlencoded"),
        None,
        &cfg,
    )
    .unwrap();
    assert_eq!((a.reply.status, a.count), (200, 1));
    // posthog-node: gzip named by Content-Encoding.
    let a = send(
        post("/batch/"),
        &gzip(body.as_bytes()),
        Some("application/json"),
        Some("gzip"),
        &cfg,
    )
    .unwrap();
    assert_eq!(a.count, 1);
    let r = send(post("/e/"), &gzip(b"{not json"), None, None, &cfg).unwrap_err();
    assert_eq!(r.status, 400);
}

#[test]
fn v1_answers_a_result_per_event_and_retry_when_it_cannot_keep_them() {
    let cfg = keyed();
    let bad = format!(r#"{{"event":"e","distinct_id":"null","uuid":"{UUID2}"}}"#);
    let body = format!(
        r#"{{"created_at":"2024-05-01T12:30:00Z","batch":[{},{bad}]}}"#,
        event("")
    );
    let auth = format!("Bearer {TOKEN}");
    let head = RequestHead {
        authorization: Some(&auth),
        ..post(ANALYTICS_V1_PATH)
    };
    let a = send(head, body.as_bytes(), Some("application/json"), None, &cfg).unwrap();
    let answer: serde_json::Value = serde_json::from_str(&a.reply.body).unwrap();
    assert_eq!(answer["results"][UUID], serde_json::json!({"result": "ok"}));
    assert_eq!(answer["results"][UUID2]["result"], "drop");
    assert!(
        answer["results"][UUID2]["details"]
            .as_str()
            .unwrap()
            .contains("illegal_id distinct_id")
    );
    assert_eq!(a.cell.key, "site");

    let retry = a.unavailable("the queue refused the batch".into(), Vec::new());
    assert_eq!(retry.status, 200);
    assert!(retry.headers.contains(&("retry-after", V1_RETRY_AFTER_S.to_string())));
    let answer: serde_json::Value = serde_json::from_str(&retry.body).unwrap();
    assert_eq!(answer["results"][UUID]["result"], "retry");
    assert_eq!(answer["results"][UUID2]["result"], "retry");

    // Past a rate limit whose owner keeps what passes: kept, labelled, a warning.
    let label = crate::label::Label {
        limited: Some("key".into()),
        lane: Some(crate::label::Lane::Limited),
        ..Default::default()
    };
    let mut labelled = a.clone();
    labelled.label_answer(&label);
    let answer: serde_json::Value = serde_json::from_str(&labelled.reply.body).unwrap();
    assert_eq!(answer["results"][UUID]["result"], "warning");
    assert_eq!(answer["results"][UUID2]["result"], "drop");

    // A classic capture's 503 stays a 503.
    let classic = send(
        post("/batch/"),
        format!(r#"{{"api_key":"{TOKEN}","batch":[{}]}}"#, event("")).as_bytes(),
        None,
        None,
        &cfg,
    )
    .unwrap();
    assert_eq!(classic.unavailable("down".into(), Vec::new()).status, 503);

    let no_key = send(post(ANALYTICS_V1_PATH), body.as_bytes(), None, None, &cfg).unwrap_err();
    assert_eq!(no_key.status, 401);
}

#[test]
fn the_start_calls_are_answered_without_flags() {
    let cfg = keyed();
    let reply = |head: RequestHead<'_>| match api::prepare(&head, &cfg) {
        Prepared::Reply(r) => r,
        Prepared::Ingest(i) => panic!("{i:?}"),
    };
    let flags = reply(RequestHead {
        query: Some("v=2"),
        origin: Some("https://shop.example"),
        ..post("/flags/")
    });
    assert_eq!(flags.status, 200);
    let v: serde_json::Value = serde_json::from_str(&flags.body).unwrap();
    assert_eq!(
        (v["flags"].clone(), v["errorsWhileComputingFlags"].clone()),
        (serde_json::json!({}), serde_json::json!(false))
    );
    assert_eq!(v["featureFlags"], serde_json::json!({}));
    let path = format!("/array/{TOKEN}/config");
    let config = reply(RequestHead {
        method: "GET",
        ..post(&path)
    });
    let v: serde_json::Value = serde_json::from_str(&config.body).unwrap();
    assert_eq!(v["supportedCompression"][1], "gzip-js");
    assert_eq!(v["hasFeatureFlags"], false);
    let script_path = format!("/array/{TOKEN}/config.js");
    let script = reply(RequestHead {
        method: "GET",
        ..post(&script_path)
    });
    assert_eq!(script.content_type(), Some("application/javascript"));
    assert!(script.body.contains(&format!(
        r#"window._POSTHOG_REMOTE_CONFIG["{TOKEN}"]={{config:{REMOTE_CONFIG}"#
    )));
    let unknown = reply(RequestHead {
        method: "GET",
        ..post("/array/phc_mistyped/config")
    });
    assert_eq!(unknown.status, 401);
    let preflight = reply(RequestHead {
        method: "OPTIONS",
        origin: Some("https://shop.example"),
        ..post("/flags/")
    });
    assert_eq!(preflight.status, 204);
    let capture_preflight = reply(RequestHead {
        method: "OPTIONS",
        origin: Some("https://shop.example"),
        ..post("/e/")
    });
    assert_eq!(capture_preflight.status, 204);
    let put = reply(RequestHead {
        method: "PUT",
        ..post("/flags/")
    });
    assert_eq!(put.status, 405);
}

#[test]
fn a_v1_event_gets_the_library_its_request_names() {
    assert_eq!(
        with_library(r#"{"event":"e","properties":{"a":1}}"#, "posthog-node/5.74.0"),
        r#"{"event":"e","properties":{"$lib":"posthog-node","$lib_version":"5.74.0","a":1}}"#
    );
    assert_eq!(
        with_library(r#"{"event":"e","properties":{}}"#, "posthog-python/7.91.1"),
        r#"{"event":"e","properties":{"$lib":"posthog-python","$lib_version":"7.91.1"}}"#
    );
    assert_eq!(
        with_library(r#"{"event":"e"}"#, "custom"),
        r#"{"event":"e","properties":{"$lib":"custom"}}"#
    );
    let own = r#"{"event":"e","properties":{"$lib":"mine"}}"#;
    assert_eq!(with_library(own, "posthog-node/5.74.0"), own);
    assert_eq!(with_library(r#"{"properties":[1]}"#, "x/1"), r#"{"properties":[1]}"#);
    let e = validate(&with_library(&event(""), "posthog-node/5.74.0"), &Limits::default()).unwrap();
    assert_eq!(e.library().as_deref(), Some("web/1.455.2"), "the event's own is kept");
}

#[test]
fn the_token_is_taken_out_of_nested_properties_only() {
    let text = r#"{"event":"e","properties":{"a":1,"token":"t","b":{"token":"keep"}},"token2":"x"}"#;
    assert_eq!(
        crate::json::without_nested_member(text, "properties", "token"),
        r#"{"event":"e","properties":{"a":1,"b":{"token":"keep"}},"token2":"x"}"#
    );
    assert_eq!(
        crate::json::without_nested_member(r#"{"a":1}"#, "properties", "token"),
        r#"{"a":1}"#
    );
}
