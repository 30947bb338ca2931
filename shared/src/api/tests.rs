use super::*;
use crate::clock::SeededRandom;
use crate::envelope::Envelope;

/// A configuration from these settings; without `WRITE_KEYS`, anonymous
/// (`ALLOW_ANONYMOUS`), as a deployment must say to run without keys.
fn config(pairs: &[(&str, &str)]) -> ApiConfig {
    let mut owned: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    if !owned.iter().any(|(k, _)| k == "WRITE_KEYS") {
        owned.push(("ALLOW_ANONYMOUS".into(), "true".into()));
    }
    ApiConfig::from_settings(&Settings::new(move |n: &str| {
        owned.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())
    }))
    .unwrap()
}

fn post<'a>() -> RequestHead<'a> {
    RequestHead {
        method: "POST",
        path: "/v1/events",
        ..RequestHead::default()
    }
}

fn reply_of(p: Prepared) -> Reply {
    match p {
        Prepared::Reply(r) => r,
        Prepared::Ingest(i) => panic!("expected a reply, got {i:?}"),
    }
}

fn ingest_of(p: Prepared) -> Ingest {
    match p {
        Prepared::Ingest(i) => i,
        Prepared::Reply(r) => panic!("expected ingest, got {r:?}"),
    }
}

fn json(r: &Reply) -> serde_json::Value {
    serde_json::from_str(&r.body).unwrap()
}

fn header<'a>(r: &'a Reply, name: &str) -> Option<&'a str> {
    r.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
}

const T: Timestamp = Timestamp(1_714_566_600_000);

fn run(body: &[u8], ct: Option<&str>, ce: Option<&str>, cfg: &ApiConfig) -> Result<Accepted, Reply> {
    let ingest = ingest_of(prepare(&post(), cfg));
    accept(
        &ingest,
        Body {
            bytes: body,
            content_type: ct,
            content_encoding: ce,
            inflated: None,
        },
        &EdgeMeta::default(),
        cfg,
        T,
        &SeededRandom::new(1),
    )
}

#[test]
fn events_are_accepted_with_their_count() {
    let cfg = ApiConfig::default();
    let a = run(
        br#"[{"event":"a"},{"event":"b"}]"#,
        Some("application/json"),
        None,
        &cfg,
    )
    .unwrap();
    assert_eq!(
        (a.reply.status, a.reply.body.as_str(), a.count, a.lines.len()),
        (200, r#"{"accepted":2}"#, 2, 2)
    );
}

#[test]
fn health_and_unknown_paths_and_methods() {
    let cfg = ApiConfig::default();
    let r = reply_of(prepare(
        &RequestHead {
            method: "GET",
            path: "/healthz",
            ..post()
        },
        &cfg,
    ));
    assert_eq!((r.status, r.body.as_str()), (200, r#"{"status":"ok"}"#));
    let r = reply_of(prepare(
        &RequestHead {
            path: "/v2/events",
            ..post()
        },
        &cfg,
    ));
    assert_eq!((r.status, json(&r)["error"].as_str()), (404, Some("not_found")));
    assert!(json(&r)["message"].as_str().unwrap().contains("/v2/events"));
    let r = reply_of(prepare(
        &RequestHead {
            method: "GET",
            ..post()
        },
        &cfg,
    ));
    assert_eq!(r.status, 405);
    assert_eq!(header(&r, "allow"), Some("POST, OPTIONS"));
    assert_eq!(json(&r)["error"], "method_not_allowed");
    let r = reply_of(prepare(
        &RequestHead {
            method: "DELETE",
            path: "/healthz",
            ..post()
        },
        &cfg,
    ));
    assert_eq!((r.status, header(&r, "allow")), (405, Some("GET, HEAD")));
    // A trailing slash is the same path.
    assert!(matches!(
        prepare(
            &RequestHead {
                path: "/v1/events/",
                ..post()
            },
            &cfg
        ),
        Prepared::Ingest(_)
    ));
}

#[test]
fn write_keys_are_required_once_configured_and_identify_the_key() {
    let cfg = config(&[("WRITE_KEYS", "web:wk_web_0123456789, ios:wk_ios_abcdefghij")]);
    let r = reply_of(prepare(&post(), &cfg));
    assert_eq!((r.status, json(&r)["error"].as_str()), (401, Some("missing_write_key")));
    assert!(json(&r)["message"].as_str().unwrap().contains("x-edgehose-key"));
    let r = reply_of(prepare(
        &RequestHead {
            key_header: Some("wk_web_0123456788"),
            ..post()
        },
        &cfg,
    ));
    assert_eq!((r.status, json(&r)["error"].as_str()), (401, Some("invalid_write_key")));

    let by_header = ingest_of(prepare(
        &RequestHead {
            key_header: Some("wk_ios_abcdefghij"),
            ..post()
        },
        &cfg,
    ));
    assert_eq!(by_header.key_id.as_deref(), Some("ios"));
    let by_bearer = ingest_of(prepare(
        &RequestHead {
            authorization: Some("Bearer wk_web_0123456789"),
            ..post()
        },
        &cfg,
    ));
    assert_eq!(by_bearer.key_id.as_deref(), Some("web"));
    let by_query = ingest_of(prepare(
        &RequestHead {
            query: Some("v=1&key=wk%5Fweb%5F0123456789"),
            ..post()
        },
        &cfg,
    ));
    assert_eq!(by_query.key_id.as_deref(), Some("web"));
}

#[test]
fn without_write_keys_anyone_may_post() {
    assert_eq!(ingest_of(prepare(&post(), &ApiConfig::default())).key_id, None);
}

#[test]
fn bad_write_key_settings_are_named() {
    let s = Settings::new(|n: &str| (n == "WRITE_KEYS").then(|| "web:short".to_owned()));
    let e = ApiConfig::from_settings(&s).unwrap_err();
    assert_eq!(e.name, "WRITE_KEYS");
    assert!(e.to_string().contains("at least 8 characters"), "{e}");
    assert!(!format!("{:?}", config(&[("WRITE_KEYS", "web:wk_secret_value")]).write_keys).contains("wk_secret"));
}

#[test]
fn cors_preflight_and_headers_follow_the_allow_list() {
    let cfg = config(&[("ALLOWED_ORIGINS", "https://shop.example, https://m.shop.example")]);
    let pre = RequestHead {
        method: "OPTIONS",
        origin: Some("https://shop.example"),
        ..post()
    };
    let r = reply_of(prepare(&pre, &cfg));
    assert_eq!(r.status, 204);
    assert_eq!(header(&r, "access-control-allow-origin"), Some("https://shop.example"));
    assert_eq!(header(&r, "access-control-allow-methods"), Some("POST, OPTIONS"));
    assert!(
        header(&r, "access-control-allow-headers")
            .unwrap()
            .contains("x-edgehose-key")
    );
    assert_eq!(header(&r, "vary"), Some("Origin"));

    let evil = RequestHead {
        origin: Some("https://evil.example"),
        ..pre
    };
    let r = reply_of(prepare(&evil, &cfg));
    assert_eq!(
        (r.status, json(&r)["error"].as_str()),
        (403, Some("origin_not_allowed"))
    );
    assert_eq!(header(&r, "access-control-allow-origin"), None);
    // The actual POST from a disallowed origin is refused too, readably for
    // that page (a tracker must tell the refusal from a network failure, or
    // it retries), and nothing else in the answer.
    let r = reply_of(prepare(
        &RequestHead {
            origin: Some("https://evil.example"),
            ..post()
        },
        &cfg,
    ));
    assert_eq!(r.status, 403);
    assert_eq!(header(&r, "access-control-allow-origin"), Some("https://evil.example"));
    assert_eq!(header(&r, "vary"), Some("Origin"));
    assert!(json(&r)["message"].as_str().unwrap().contains("ALLOWED_ORIGINS"));
    // An allowed origin's POST carries the CORS headers, errors included.
    let ok = ingest_of(prepare(
        &RequestHead {
            origin: Some("https://m.shop.example"),
            ..post()
        },
        &cfg,
    ));
    assert_eq!(
        ok.cors[0],
        ("access-control-allow-origin", "https://m.shop.example".to_owned())
    );
    let keyed = config(&[("ALLOWED_ORIGINS", "*"), ("WRITE_KEYS", "web:wk_web_0123456789")]);
    let r = reply_of(prepare(
        &RequestHead {
            origin: Some("https://any.example"),
            ..post()
        },
        &keyed,
    ));
    assert_eq!((r.status, header(&r, "access-control-allow-origin")), (401, Some("*")));
}

#[test]
fn origin_settings_are_checked() {
    for bad in ["shop.example", "https://shop.example/", "*, https://a.example"] {
        let s = Settings::new(move |n: &str| (n == "ALLOWED_ORIGINS").then(|| bad.to_owned()));
        assert_eq!(
            ApiConfig::from_settings(&s).unwrap_err().name,
            "ALLOWED_ORIGINS",
            "{bad}"
        );
    }
}

#[test]
fn an_oversized_content_length_is_refused_before_the_body_is_read() {
    let cfg = config(&[("MAX_BODY_BYTES", "1000")]);
    let r = reply_of(prepare(
        &RequestHead {
            content_length: Some(1001),
            ..post()
        },
        &cfg,
    ));
    assert_eq!(r.status, 413);
    assert!(json(&r)["message"].as_str().unwrap().contains("max_body_bytes = 1000"));
    assert!(matches!(
        prepare(
            &RequestHead {
                content_length: Some(1000),
                ..post()
            },
            &cfg
        ),
        Prepared::Ingest(_)
    ));
}

#[test]
fn a_body_without_content_length_gets_the_same_limit_and_413() {
    let cfg = config(&[("MAX_BODY_BYTES", "1000")]);
    let events = ingest_of(prepare(&post(), &cfg));
    assert_eq!(events.body_limit, 1000);
    let over = reply_of(prepare(
        &RequestHead {
            content_length: Some(1001),
            ..post()
        },
        &cfg,
    ));
    let streamed = events.too_large();
    assert_eq!((streamed.status, &streamed.body), (413, &over.body));
    let segment = ingest_of(prepare(&head("POST", "/v1/batch"), &config(&[])));
    assert_eq!(segment.body_limit, crate::limits::SEGMENT_MAX_BATCH_BYTES);
    let r = segment.too_large();
    assert_eq!((r.status, json(&r)["error"].as_str()), (413, Some("batch_too_large")));
}

#[test]
fn limits_are_413_naming_the_limit_and_bad_types_415() {
    let cfg = config(&[("MAX_EVENTS", "2"), ("MAX_EVENT_BYTES", "100")]);
    let r = run(br#"[{},{},{}]"#, None, None, &cfg).unwrap_err();
    assert_eq!((r.status, json(&r)["error"].as_str()), (413, Some("too_many_events")));
    assert!(json(&r)["message"].as_str().unwrap().contains("max_events is 2"));
    let big = format!(r#"{{"event":"{}"}}"#, "x".repeat(100));
    let r = run(big.as_bytes(), None, None, &cfg).unwrap_err();
    assert_eq!((r.status, json(&r)["error"].as_str()), (413, Some("event_too_large")));
    let r = run(b"{}", Some("application/xml"), None, &cfg).unwrap_err();
    assert_eq!(r.status, 415);
}

#[test]
fn malformed_bodies_are_quarantined_by_default_and_refused_when_strict() {
    let lenient = ApiConfig::default();
    let a = run(b"{\"event\": oops", Some("application/json"), None, &lenient).unwrap();
    assert_eq!((a.reply.status, a.count), (200, 1));
    let q = Envelope::parse(&a.lines[0]).unwrap().quarantine.unwrap();
    assert_eq!(q.raw().unwrap(), b"{\"event\": oops");
    assert!(q.reason.starts_with("invalid JSON"), "{}", q.reason);

    let corrupt_gzip = [0x1F, 0x8B, 0x08, 0x00, 0xFF, 0xFF];
    let a = run(&corrupt_gzip, Some("application/json"), Some("gzip"), &lenient).unwrap();
    let q = Envelope::parse(&a.lines[0]).unwrap().quarantine.unwrap();
    assert_eq!(
        (q.encoding.as_str(), q.raw().unwrap()),
        ("base64", corrupt_gzip.to_vec())
    );
    assert!(q.reason.starts_with("the gzip body is corrupt"), "{}", q.reason);

    let strict = config(&[("STRICT", "true")]);
    let r = run(b"{\"event\": oops", Some("application/json"), None, &strict).unwrap_err();
    assert_eq!((r.status, json(&r)["error"].as_str()), (400, Some("malformed")));
    let r = run(b"{\"event\":\"a\"}\n[1]", Some("application/x-ndjson"), None, &strict).unwrap_err();
    assert!(
        json(&r)["message"]
            .as_str()
            .unwrap()
            .starts_with("event 1 is malformed"),
        "{}",
        r.body
    );
    assert_eq!(run(&corrupt_gzip, None, Some("gzip"), &strict).unwrap_err().status, 400);
}

#[test]
fn the_key_id_and_edge_metadata_reach_the_envelope() {
    let cfg = config(&[("WRITE_KEYS", "bikes:wk_bikes_01234567")]);
    let ingest = ingest_of(prepare(
        &RequestHead {
            key_header: Some("wk_bikes_01234567"),
            ..post()
        },
        &cfg,
    ));
    let edge = EdgeMeta {
        country: Some("US".into()),
        colo: Some("SJC".into()),
        asn: Some(7922),
        client_ip: None,
    };
    let a = accept(
        &ingest,
        Body {
            bytes: br#"{"event":"ride"}"#,
            content_type: None,
            content_encoding: None,
            inflated: None,
        },
        &edge,
        &cfg,
        T,
        &SeededRandom::new(2),
    )
    .unwrap();
    let env = Envelope::parse(&a.lines[0]).unwrap();
    assert_eq!(env.key_id.as_deref(), Some("bikes"));
    assert_eq!(env.edge.unwrap().colo.as_deref(), Some("SJC"));
    assert_eq!(env.received_at, T.as_millis());
    assert!(!a.lines[0].contains("wk_bikes"), "the key itself is never stored");
}

#[test]
fn unavailable_and_misconfigured_errors_say_so() {
    let r = ApiError::Unavailable("the queue refused the batch".into()).reply(Vec::new());
    assert_eq!((r.status, header(&r, "retry-after")), (503, Some("5")));
    let r = ApiError::Misconfigured(SettingError::new("FIREHOSE_STREAM", "is missing")).reply(Vec::new());
    assert_eq!(r.status, 500);
    // The setting is named to the client; what is wrong with it is the log's.
    assert_eq!(
        json(&r)["message"],
        "the service is misconfigured (setting FIREHOSE_STREAM); its operator finds why in the service's log"
    );
}

#[test]
fn without_write_keys_the_api_fails_closed_unless_anonymous_is_written_down() {
    let read = |pairs: &'static [(&'static str, &'static str)]| {
        ApiConfig::from_settings(&Settings::new(move |n: &str| {
            pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| (*v).to_owned())
        }))
    };
    let e = read(&[]).unwrap_err();
    assert_eq!(e.name, "WRITE_KEYS");
    assert!(e.problem.contains("ALLOW_ANONYMOUS"), "{e}");
    assert!(read(&[("ALLOW_ANONYMOUS", "false")]).is_err());
    let open = read(&[("ALLOW_ANONYMOUS", "true")]).unwrap();
    assert!(!open.write_keys.is_enabled());
    assert!(
        read(&[("WRITE_KEYS", "web:wk_0123456789")])
            .unwrap()
            .write_keys
            .is_enabled()
    );
    // Both at once is a contradiction, named.
    let both = read(&[("WRITE_KEYS", "web:wk_0123456789"), ("ALLOW_ANONYMOUS", "true")]).unwrap_err();
    assert_eq!(both.name, "ALLOW_ANONYMOUS");
    // A misconfigured answer still lets the browser read it.
    let cors = cors_headers_without_config(Some("https://shop.example"));
    assert_eq!(
        cors[0],
        ("access-control-allow-origin", "https://shop.example".to_owned())
    );
    assert!(cors_headers_without_config(None).is_empty());
}

fn head<'a>(method: &'a str, path: &'a str) -> RequestHead<'a> {
    RequestHead {
        method,
        path,
        ..RequestHead::default()
    }
}

fn send(head: &RequestHead<'_>, body: &[u8], ct: Option<&str>, cfg: &ApiConfig) -> Result<Accepted, Reply> {
    let body = Body {
        bytes: body,
        content_type: ct,
        content_encoding: None,
        inflated: None,
    };
    handle(head, body, &EdgeMeta::default(), cfg, T, &SeededRandom::new(3))
}

fn basic(key: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{key}:"))
    )
}

#[test]
fn segment_routes_answer_success_and_envelope_each_message_as_sent() {
    let cfg = ApiConfig::default();
    let body = br#"{"batch":[{"type":"track","event":"Order Completed","userId":"u1","messageId":"node-m1","timestamp":"2024-05-01T12:29:50.000Z","properties":{"revenue":9.5}},{"type":"identify","anonymousId":"a1","traits":{"plan":"pro"}}],"sentAt":"2024-05-01T12:29:55.000Z"}"#;
    let a = send(&head("POST", "/v1/batch"), body, Some("application/json"), &cfg).unwrap();
    assert_eq!(
        (a.reply.status, a.reply.body.as_str(), a.count),
        (200, r#"{"success":true}"#, 2)
    );
    let e = Envelope::parse(&a.lines[0]).unwrap();
    assert_eq!(
        (e.format.as_deref(), e.call.as_deref(), e.id.as_ref()),
        (Some("segment"), None, "node-m1")
    );
    // Segment's rule: receivedAt - (sentAt - timestamp), with the batch's sentAt.
    assert_eq!(e.event_time, T.as_millis() - 5_000);
    assert_eq!(
        e.event.unwrap().get(),
        r#"{"type":"track","event":"Order Completed","userId":"u1","messageId":"node-m1","timestamp":"2024-05-01T12:29:50.000Z","properties":{"revenue":9.5}}"#
    );
    let second = Envelope::parse(&a.lines[1]).unwrap();
    assert_eq!(second.id.len(), 36, "no messageId: a UUIDv7 is made");

    // A single-call route (long and short path) names the call in the envelope.
    for path in ["/v1/track", "/v1/t", "/v1/track/"] {
        let a = send(
            &head("POST", path),
            br#"{"event":"Clicked","anonymousId":"a"}"#,
            Some("text/plain"),
            &cfg,
        )
        .unwrap();
        let e = Envelope::parse(&a.lines[0]).unwrap();
        assert_eq!(
            (e.format.as_deref(), e.call.as_deref()),
            (Some("segment"), Some("track")),
            "{path}"
        );
        assert_eq!(e.event_time, T.as_millis(), "no timestamp: the receive time");
    }
}

#[test]
fn segment_write_keys_come_from_basic_auth_or_the_body_and_a_bad_one_is_401() {
    let cfg = config(&[("WRITE_KEYS", "web:wk_web_0123456789,server:wk_srv_0123456789")]);
    let msg = br#"{"type":"track","event":"E","userId":"u"}"#;
    // HTTP Basic with the key as the user (analytics-node, analytics-python, RudderStack).
    let auth = basic("wk_srv_0123456789");
    let a = send(
        &RequestHead {
            authorization: Some(&auth),
            ..head("POST", "/v1/track")
        },
        msg,
        None,
        &cfg,
    )
    .unwrap();
    assert_eq!(Envelope::parse(&a.lines[0]).unwrap().key_id.as_deref(), Some("server"));
    // The body's writeKey (analytics-next's text/plain posts), never stored.
    let body = br#"{"type":"page","anonymousId":"a","writeKey":"wk_web_0123456789"}"#;
    let a = send(&head("POST", "/v1/p"), body, Some("text/plain"), &cfg).unwrap();
    assert_eq!(Envelope::parse(&a.lines[0]).unwrap().key_id.as_deref(), Some("web"));
    assert!(!a.lines[0].contains("wk_web"), "{}", a.lines[0]);
    let batch = br#"{"batch":[{"type":"track","event":"E","userId":"u"}],"writeKey":"wk_web_0123456789"}"#;
    assert_eq!(send(&head("POST", "/v1/batch"), batch, None, &cfg).unwrap().count, 1);

    for (h, body) in [
        (basic("wk_wrong_0123456789"), &msg[..]),
        ("Basic !!not-base64".to_owned(), &msg[..]),
        (String::new(), br#"{"type":"track","writeKey":"wk_nope_012345678"}"#),
    ] {
        let r = send(
            &RequestHead {
                authorization: (!h.is_empty()).then_some(h.as_str()),
                ..head("POST", "/v1/track")
            },
            body,
            None,
            &cfg,
        )
        .unwrap_err();
        assert_eq!((r.status, json(&r)["error"].as_str()), (401, Some("invalid_write_key")));
    }
    let r = send(&head("POST", "/v1/track"), msg, None, &cfg).unwrap_err();
    assert_eq!((r.status, json(&r)["error"].as_str()), (401, Some("missing_write_key")));
    // Basic auth works on /v1/events too.
    let auth = basic("wk_web_0123456789");
    let ok = send(
        &RequestHead {
            authorization: Some(&auth),
            ..post()
        },
        br#"{"event":"a"}"#,
        None,
        &cfg,
    );
    assert!(ok.is_ok());
}

#[test]
fn segment_bad_bodies_are_refused_never_quarantined() {
    let cfg = ApiConfig::default();
    let r = send(
        &head("POST", "/v1/batch"),
        b"{\"batch\": oops",
        Some("application/json"),
        &cfg,
    )
    .unwrap_err();
    assert_eq!((r.status, json(&r)["error"].as_str()), (400, Some("invalid_json")));
    let big = format!(
        r#"{{"type":"track","event":"E","userId":"u","properties":{{"p":"{}"}}}}"#,
        "x".repeat(33_000)
    );
    let r = send(&head("POST", "/v1/track"), big.as_bytes(), None, &cfg).unwrap_err();
    assert_eq!((r.status, json(&r)["error"].as_str()), (413, Some("message_too_large")));
    assert!(json(&r)["message"].as_str().unwrap().contains("32 KB"));
    let r = reply_of(prepare(
        &RequestHead {
            content_length: Some(600_000),
            ..head("POST", "/v1/batch")
        },
        &cfg,
    ));
    assert_eq!((r.status, json(&r)["error"].as_str()), (413, Some("batch_too_large")));
    assert!(
        json(&r)["message"]
            .as_str()
            .unwrap()
            .contains("500 KB per batch request")
    );
    let r = send(&head("POST", "/v1/batch"), b"{}", Some("application/xml"), &cfg).unwrap_err();
    assert_eq!(r.status, 415);
    // An unknown type is accepted here and judged by the transform.
    let a = send(
        &head("POST", "/v1/batch"),
        br#"{"batch":[{"type":"purchase"}]}"#,
        None,
        &cfg,
    )
    .unwrap();
    assert_eq!(a.count, 1);
}

#[test]
fn every_ingestion_route_answers_a_cors_preflight() {
    let cfg = config(&[("ALLOWED_ORIGINS", "https://shop.example")]);
    for path in ["/v1/events", "/v1/t", "/v1/batch", "/v1/ingest/bike"] {
        let r = reply_of(prepare(
            &RequestHead {
                origin: Some("https://shop.example"),
                ..head("OPTIONS", path)
            },
            &cfg,
        ));
        assert_eq!(
            (r.status, header(&r, "access-control-allow-origin")),
            (204, Some("https://shop.example")),
            "{path}"
        );
    }
    let r = reply_of(prepare(&head("GET", "/v1/batch"), &cfg));
    assert_eq!((r.status, header(&r, "allow")), (405, Some("POST, OPTIONS")));
}

const SOURCES: &str = r#"{"bike":{"id_field":"uuid","time_field":"deviceTimestamp","time_format":"epoch_ms","keys":["bikes"]},"gps":{"time_field":"timestamp","time_format":"epoch_s"}}"#;

#[test]
fn a_source_takes_any_json_and_keeps_it_byte_for_byte() {
    let cfg = ApiConfig::default();
    let body = br#"[{"ident":"3520","timestamp":1683200000.12,"position.latitude":52.2},{"ident":"3521"}]"#;
    let a = send(&head("POST", "/v1/ingest/gps"), body, Some("application/json"), &cfg).unwrap();
    assert_eq!((a.reply.body.as_str(), a.count), (r#"{"accepted":2}"#, 2));
    let e = Envelope::parse(&a.lines[0]).unwrap();
    assert_eq!(
        (e.format.as_deref(), e.source.as_deref()),
        (Some("source"), Some("gps"))
    );
    assert_eq!(
        e.event.unwrap().get(),
        r#"{"ident":"3520","timestamp":1683200000.12,"position.latitude":52.2}"#
    );
    assert_eq!(e.event_time, T.as_millis(), "nothing declared: the receive time");
    let ndjson = b"{\"a\":1}\n{\"a\":2}\n{\"a\":3}";
    assert_eq!(
        send(
            &head("POST", "/v1/ingest/gps"),
            ndjson,
            Some("application/x-ndjson"),
            &cfg
        )
        .unwrap()
        .count,
        3
    );
}

#[test]
fn a_declared_source_uses_its_id_time_and_keys() {
    let cfg = config(&[
        ("WRITE_KEYS", "bikes:wk_bikes_0123456789,web:wk_web_0123456789"),
        ("SOURCES", SOURCES),
    ]);
    let bike = br#"{"uuid":"6f1c7c2e","event":"update","deviceTimestamp":1714566599000,"second":42,"raceId":"r9","racerId":7,"classId":3,"cadence":88,"resistance":41}"#;
    let a = send(
        &RequestHead {
            key_header: Some("wk_bikes_0123456789"),
            ..head("POST", "/v1/ingest/bike")
        },
        bike,
        None,
        &cfg,
    )
    .unwrap();
    let e = Envelope::parse(&a.lines[0]).unwrap();
    assert_eq!((e.id.as_ref(), e.event_time), ("6f1c7c2e", 1_714_566_599_000));
    assert_eq!(e.key_id.as_deref(), Some("bikes"));
    // A key the source does not list is refused; so is no key.
    let r = send(
        &RequestHead {
            key_header: Some("wk_web_0123456789"),
            ..head("POST", "/v1/ingest/bike")
        },
        bike,
        None,
        &cfg,
    )
    .unwrap_err();
    assert_eq!((r.status, json(&r)["error"].as_str()), (403, Some("key_not_allowed")));
    assert_eq!(
        json(&r)["message"],
        "write key \"web\" may not post to source \"bike\" (SOURCES)"
    );
    let r = send(&head("POST", "/v1/ingest/bike"), bike, None, &cfg).unwrap_err();
    assert_eq!((r.status, json(&r)["error"].as_str()), (401, Some("missing_write_key")));
    // An undeclared source takes any key.
    let ok = send(
        &RequestHead {
            key_header: Some("wk_web_0123456789"),
            ..head("POST", "/v1/ingest/other")
        },
        b"{}",
        None,
        &cfg,
    );
    assert!(ok.is_ok());
}

#[test]
fn a_bad_source_name_or_setting_is_named() {
    let cfg = ApiConfig::default();
    for path in [
        "/v1/ingest/",
        "/v1/ingest",
        "/v1/ingest/Bikes",
        "/v1/ingest/a/b",
        "/v1/ingest/bike%21",
    ] {
        let r = reply_of(prepare(&head("POST", path), &cfg));
        assert_eq!(
            (r.status, json(&r)["error"].as_str()),
            (400, Some("invalid_source_name")),
            "{path}"
        );
        assert!(json(&r)["message"].as_str().unwrap().contains("a-z, 0-9, _ and -"));
    }
    let long = format!("/v1/ingest/{}", "a".repeat(65));
    assert_eq!(reply_of(prepare(&head("POST", &long), &cfg)).status, 400);
    let e = ApiConfig::from_settings(&Settings::new(|n: &str| {
        (n == "SOURCES").then(|| "{\"bike\":{\"keys\":[\"bikes\"]}}".to_owned())
    }))
    .unwrap_err();
    assert_eq!(e.name, "SOURCES");
    assert!(e.problem.contains("WRITE_KEYS does not define"), "{e}");
    let r = reply_of(prepare(&head("POST", "/v1/nope"), &cfg));
    assert!(json(&r)["message"].as_str().unwrap().contains("/v1/ingest/<source>"));
}

#[test]
fn analytics_next_s_usage_metrics_are_answered_and_not_stored() {
    let cfg = config(&[("ALLOWED_ORIGINS", "https://shop.example")]);
    let metrics = RequestHead {
        path: SDK_METRICS_PATH,
        origin: Some("https://shop.example"),
        ..post()
    };
    let r = reply_of(prepare(&metrics, &cfg));
    assert_eq!((r.status, r.body.as_str()), (204, ""));
    assert_eq!(header(&r, "access-control-allow-origin"), Some("https://shop.example"));
    let pre = reply_of(prepare(
        &RequestHead {
            method: "OPTIONS",
            ..metrics
        },
        &cfg,
    ));
    assert_eq!(pre.status, 204);
    let evil = reply_of(prepare(
        &RequestHead {
            origin: Some("https://evil.example"),
            ..metrics
        },
        &cfg,
    ));
    assert_eq!(evil.status, 403);
    let get = reply_of(prepare(
        &RequestHead {
            method: "GET",
            ..metrics
        },
        &cfg,
    ));
    assert_eq!(get.status, 405);
}

/// Prepares and accepts `body` at `path?query`.
fn run_at(path: &str, query: Option<&str>, body: &[u8], cfg: &ApiConfig) -> Result<Accepted, Reply> {
    let head = RequestHead {
        method: "POST",
        path,
        query,
        ..RequestHead::default()
    };
    let ingest = match prepare(&head, cfg) {
        Prepared::Ingest(i) => i,
        Prepared::Reply(r) => return Err(r),
    };
    let body = Body {
        bytes: body,
        content_type: Some("application/json"),
        content_encoding: None,
        inflated: None,
    };
    accept(&ingest, body, &EdgeMeta::default(), cfg, T, &SeededRandom::new(1))
}

#[test]
fn asked_for_verdicts_the_answer_judges_every_event_by_the_edges_rules() {
    let cfg = config(&[]);
    let body = br#"[{"event":"click","message_id":"m-1"},{"message_id":"m-2","properties":{}},"not an object",{"event":"x","message_id":"m-3"}]"#;
    let a = run_at("/v1/events", Some("verdicts=1"), body, &cfg).unwrap();
    let v = json(&a.reply);
    assert_eq!(v["accepted"], 4, "{v}");
    let results = v["results"].as_object().unwrap();
    assert_eq!(results.len(), 4, "{v}");
    assert_eq!(results["m-1"]["result"], "ok");
    assert_eq!(results["m-1"]["index"], 0);
    assert_eq!(results["m-2"]["result"], "rejected");
    assert_eq!(results["m-2"]["details"][0]["field"], "event", "{v}");
    let quarantined: Vec<_> = results.values().filter(|r| r["result"] == "quarantined").collect();
    assert_eq!(quarantined.len(), 1, "{v}");
    assert_eq!(quarantined[0]["index"], 2);
    assert!(quarantined[0]["details"]["reason"].is_string());
    assert_eq!(results["m-3"]["index"], 3);
    assert!(v["ok_means"].as_str().unwrap().contains("JSON Schema"), "{v}");
    // Not asked (or asked not to): the answer is what it always was.
    for query in [None, Some("verdicts=0"), Some("key=x")] {
        let plain = run_at("/v1/events", query, body, &cfg).unwrap();
        assert_eq!(plain.reply.body, r#"{"accepted":4}"#);
    }
    let wrong = run_at("/v1/events", Some("verdicts=yes please"), body, &cfg).unwrap_err();
    assert_eq!(wrong.status, 400);
    assert_eq!(json(&wrong)["code"], "invalid_parameter");
    assert!(json(&wrong)["message"].as_str().unwrap().contains("verdicts"));
}

#[test]
fn segments_door_gives_verdicts_beside_its_own_answer_and_only_when_asked() {
    let cfg = config(&[]);
    let body = br#"{"batch":[{"type":"track","event":"Bought","messageId":"s-1","anonymousId":"a"},{"type":"track","messageId":"s-2","anonymousId":"a"}]}"#;
    let a = run_at("/v1/batch", Some("verdicts=true"), body, &cfg).unwrap();
    let v = json(&a.reply);
    assert_eq!(v["success"], true, "{v}");
    assert_eq!(v["results"]["s-1"]["result"], "ok", "{v}");
    assert_eq!(v["results"]["s-2"]["result"], "rejected", "{v}");
    let plain = run_at("/v1/batch", None, body, &cfg).unwrap();
    assert_eq!(plain.reply.body, r#"{"success":true}"#);
}

#[test]
fn a_signed_token_stands_for_its_key_and_a_key_that_requires_tokens_is_refused_from_browsers() {
    use crate::token::mint;
    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    let cfg = config(&[
        ("WRITE_KEYS", "web:wk_web_0123456789,srv:wk_srv_0123456789"),
        ("TOKEN_SECRETS", SECRET),
        ("TOKEN_REQUIRED_KEYS", "web"),
        ("ALLOWED_ORIGINS", "https://shop.example"),
    ]);
    let now = T;
    let head = |origin: Option<&'static str>, key: &'static str| RequestHead {
        method: "POST",
        path: "/v1/events",
        origin,
        key_header: Some(key),
        received_at: now,
        ..RequestHead::default()
    };
    let token = mint(
        SECRET.as_bytes(),
        "web",
        "https://shop.example",
        now.add_millis(600_000),
    );
    let token: &'static str = Box::leak(token.into_boxed_str());
    let ingest = ingest_of(prepare(&head(Some("https://shop.example"), token), &cfg));
    assert_eq!(ingest.key_id.as_deref(), Some("web"));
    // The bare key: refused from a browser, taken from a server.
    let refused = reply_of(prepare(&head(Some("https://shop.example"), "wk_web_0123456789"), &cfg));
    assert_eq!(
        (refused.status, json(&refused)["code"].clone()),
        (401, "token_required".into())
    );
    assert_eq!(
        ingest_of(prepare(&head(None, "wk_web_0123456789"), &cfg))
            .key_id
            .as_deref(),
        Some("web")
    );
    // A key that does not require tokens still works bare from a browser.
    let srv = ingest_of(prepare(&head(Some("https://shop.example"), "wk_srv_0123456789"), &cfg));
    assert_eq!(srv.key_id.as_deref(), Some("srv"));
    let ghost = mint(SECRET.as_bytes(), "ghost", "*", now.add_millis(600_000));
    let ghost: &'static str = Box::leak(ghost.into_boxed_str());
    let r = reply_of(prepare(&head(None, ghost), &cfg));
    assert_eq!((r.status, json(&r)["code"].clone()), (401, "token_unknown_key".into()));
    // Settings are checked: a required key must exist, and needs secrets.
    let bad = ApiConfig::from_settings(&Settings::new(|n: &str| match n {
        "WRITE_KEYS" => Some("web:wk_web_0123456789".to_owned()),
        "TOKEN_REQUIRED_KEYS" => Some("web".to_owned()),
        _ => None,
    }));
    assert_eq!(bad.unwrap_err().name, "TOKEN_REQUIRED_KEYS");
    let short = ApiConfig::from_settings(&Settings::new(|n: &str| match n {
        "WRITE_KEYS" => Some("web:wk_web_0123456789".to_owned()),
        "TOKEN_SECRETS" => Some("too short".to_owned()),
        _ => None,
    }));
    assert_eq!(short.unwrap_err().name, "TOKEN_SECRETS");
}
