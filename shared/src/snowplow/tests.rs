use super::validate::{is_iglu_uri, validate};
use super::*;
use crate::validate::Reason;

const EID: &str = "9f0b7a2e-4c1d-4e8a-9b6f-2d3c4e5f6a7b";

fn event(extra: &str) -> String {
    format!(r#"{{"e":"pv","eid":"{EID}","p":"web","tv":"js-4.10.1","url":"https://shop.example/"{extra}}}"#)
}

fn reasons(text: &str) -> Vec<(Reason, String)> {
    validate(text, &Limits::default())
        .map(|_| Vec::new())
        .unwrap_or_else(|v| v.into_iter().map(|v| (v.reason, v.field)).collect())
}

#[test]
fn the_routes_are_the_trackers_and_a_double_slash_is_forgiven() {
    assert_eq!(route(TP2_PATH), Some(Route::Post));
    assert_eq!(route("//com.snowplowanalytics.snowplow/tp2"), Some(Route::Post));
    assert_eq!(route("/i"), Some(Route::Pixel));
    assert_eq!(route("/com.snowplowanalytics.snowplow/tp1"), None);
    assert_eq!(PIXEL_GIF.len(), 43);
    assert!(PIXEL_GIF.starts_with(b"GIF89a"));
}

#[test]
fn a_post_body_is_the_payload_data_envelope_and_nothing_else() {
    let limits = Limits::default();
    let body = format!(
        r#"{{"schema":"iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4","data":[{},{}]}}"#,
        event(""),
        event(r#","e":"se""#)
    );
    assert_eq!(events(body.as_bytes(), &limits).unwrap().len(), 2);
    let e = events(b"{not json", &limits).unwrap_err();
    assert_eq!((e.status(), e.code()), (400, "invalid_json"));
    let e = events(br#"{"schema":"iglu:x/y/jsonschema/1-0-0","data":[{}]}"#, &limits).unwrap_err();
    assert_eq!(e.code(), "not_payload_data");
    let e = events(br#"[1,2]"#, &limits).unwrap_err();
    assert_eq!(e.code(), "not_payload_data");
    let e = events(
        br#"{"schema":"iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4","data":[]}"#,
        &limits,
    )
    .unwrap_err();
    assert_eq!(e.code(), "empty_batch");
    let many = format!(
        r#"{{"schema":"iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4","data":[{}]}}"#,
        vec!["{}"; 501].join(",")
    );
    let e = events(many.as_bytes(), &limits).unwrap_err();
    assert_eq!((e.status(), e.code()), (413, "too_many_events"));
    assert!(e.to_string().contains("MAX_EVENTS"), "{e}");
}

#[test]
fn a_pixel_event_is_its_query_decoded_without_the_key() {
    let e = pixel_event(Some(
        "stm=1714566601000&e=pv&url=https%3A%2F%2Fshop.example%2F&page=A+page&key=wk_1",
    ))
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&e).unwrap();
    assert_eq!(v["url"], "https://shop.example/");
    assert_eq!(v["page"], "A page");
    assert_eq!(v["stm"], "1714566601000");
    assert!(v.get("key").is_none());
    assert_eq!(pixel_event(None).unwrap_err().code(), "empty_query");
}

#[test]
fn the_time_is_dtm_corrected_by_stm_or_ttm_as_given() {
    let m = |t: &str| stamp(&Members::parse(t).unwrap());
    let s = m(&format!(
        r#"{{"eid":"{EID}","dtm":"1714566600000","stm":"1714566601000"}}"#
    ));
    assert_eq!(s.id.as_deref(), Some(EID));
    assert_eq!(
        (s.time, s.sent_at),
        (Some(Timestamp(1_714_566_600_000)), Some(Timestamp(1_714_566_601_000)))
    );
    let t = m(r#"{"ttm":"1700000000000","dtm":"1714566600000","stm":"1714566601000"}"#);
    assert_eq!((t.time, t.sent_at), (Some(Timestamp(1_700_000_000_000)), None));
    assert_eq!(m(r#"{"dtm":"soon"}"#).time, None);
}

#[test]
fn events_are_checked_by_the_protocol() {
    assert!(reasons(&event("")).is_empty());
    assert_eq!(reasons(&event(r#","e":"zz""#)), [(Reason::UnknownType, "e".to_owned())]);
    assert_eq!(reasons(&event(r#","p":"moon""#)), [(Reason::WrongType, "p".to_owned())]);
    assert_eq!(reasons(&event(r#","vp":1920"#)), [(Reason::WrongType, "vp".to_owned())]);
    assert_eq!(
        reasons(&event(r#","dtm":"yesterday""#)),
        [(Reason::InvalidTimestamp, "dtm".to_owned())]
    );
    assert_eq!(
        reasons(r#"{"e":"pv","p":"web","tv":"t"}"#),
        [(Reason::MissingField, "eid".to_owned())]
    );
    assert_eq!(
        reasons(&event(r#","eid":"1""#)),
        [(Reason::WrongType, "eid".to_owned())]
    );
    assert_eq!(reasons("[1]"), [(Reason::NotAnObject, String::new())]);
    assert_eq!(
        reasons(&event(r#","e":"se","se_ca":"shop""#)),
        [(Reason::MissingField, "se_ac".to_owned())]
    );
}

#[test]
fn a_self_describing_event_and_its_entities_are_decoded_from_either_form() {
    use base64::Engine as _;
    let inner = r#"{"schema":"iglu:com.acme/checkout/jsonschema/1-0-0","data":{"total":9.5}}"#;
    let ue =
        format!(r#"{{"schema":"iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0","data":{inner}}}"#);
    let co = r#"{"schema":"iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0","data":[{"schema":"iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0","data":{"id":"p1"}}]}"#;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let quoted = |s: &str| serde_json::to_string(s).unwrap();
    for (ue_field, co_field) in [
        (
            format!(r#","ue_pr":{}"#, quoted(&ue)),
            format!(r#","co":{}"#, quoted(co)),
        ),
        (format!(r#","ue_px":"{}""#, b64(&ue)), format!(r#","cx":"{}""#, b64(co))),
    ] {
        let text = event(&format!(r#","e":"ue"{ue_field}{co_field}"#));
        let e = validate(&text, &Limits::default()).unwrap();
        assert_eq!(e.name, "checkout");
        assert_eq!(e.self_describing.unwrap()["data"]["total"], 9.5);
        assert_eq!(e.entities.unwrap()[0]["data"]["id"], "p1");
    }
    assert_eq!(
        reasons(&event(r#","e":"ue","ue_px":"%%%""#)),
        [(Reason::InvalidEncoding, "ue_px".to_owned())]
    );
    let bad_uri = ue.replace("com.acme/checkout/jsonschema/1-0-0", "com.acme/checkout/1-0");
    assert_eq!(
        reasons(&event(&format!(r#","e":"ue","ue_pr":{}"#, quoted(&bad_uri)))),
        [(Reason::InvalidSchemaUri, "ue_pr".to_owned())]
    );
    assert_eq!(
        reasons(&event(r#","e":"ue""#)),
        [(Reason::MissingField, "ue_pr".to_owned())]
    );
}

#[test]
fn iglu_uris_follow_schemaver() {
    for good in [
        "iglu:com.acme/ev/jsonschema/1-0-0",
        "iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-12",
    ] {
        assert!(is_iglu_uri(good), "{good}");
    }
    for bad in [
        "iglu:com.acme/ev/jsonschema/0-0-0",
        "iglu:com.acme/ev/jsonschema/1-00-0",
        "iglu:com.acme/e.v/jsonschema/1-0-0",
        "iglu:com.acme/ev/1-0-0",
        "com.acme/ev/jsonschema/1-0-0",
        "iglu:com.acme/ev/jsonschema/1-0",
    ] {
        assert!(!is_iglu_uri(bad), "{bad}");
    }
}
