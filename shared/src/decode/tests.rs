use std::io::Write;

use super::*;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn events<'a>(d: &Decoded<'a>) -> Vec<&'a str> {
    d.items
        .iter()
        .filter_map(|i| match i {
            Item::Event(e) => Some(*e),
            Item::Malformed(_) => None,
        })
        .collect()
}

fn run(
    body: &[u8],
    ct: Option<&str>,
    ce: Option<&str>,
    limits: &Limits,
) -> Result<(usize, Vec<String>, Vec<String>), DecodeError> {
    let mut buf = None;
    let d = decode(&mut buf, body, ct, ce, limits)?;
    let evs = events(&d).into_iter().map(str::to_owned).collect();
    let bad = d
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Malformed(m) => Some(m.reason.clone()),
            Item::Event(_) => None,
        })
        .collect();
    Ok((d.len(), evs, bad))
}

const L: Limits = Limits {
    max_body_bytes: crate::limits::MAX_BODY_BYTES,
    max_event_bytes: crate::limits::MAX_EVENT_BYTES,
    max_events: crate::limits::MAX_EVENTS_PER_REQUEST,
    max_depth: crate::limits::MAX_JSON_DEPTH,
};

#[test]
fn a_single_object_is_one_event_kept_byte_for_byte() {
    let body = br#"  {"event":"click", "n" : 1.50}  "#;
    let (n, evs, _) = run(body, Some("application/json"), None, &L).unwrap();
    assert_eq!(n, 1);
    assert_eq!(evs, [r#"{"event":"click", "n" : 1.50}"#]);
}

#[test]
fn an_array_of_objects_is_one_event_each_in_order() {
    let body = br#"[{"event":"a"},{"event":"b"} , {"event":"c"}]"#;
    let (n, evs, _) = run(body, Some("application/json; charset=utf-8"), None, &L).unwrap();
    assert_eq!(n, 3);
    assert_eq!(evs, [r#"{"event":"a"}"#, r#"{"event":"b"}"#, r#"{"event":"c"}"#]);
}

#[test]
fn an_empty_array_is_zero_events() {
    let (n, _, _) = run(b"[]", Some("application/json"), None, &L).unwrap();
    assert_eq!(n, 0);
}

#[test]
fn ndjson_is_one_event_per_line_with_blank_lines_and_crlf_ignored() {
    let body = b"{\"event\":\"a\"}\r\n\r\n{\"event\":\"b\"}\n{\"event\":\"c\"}";
    for ct in ["application/x-ndjson", "application/ndjson", "application/jsonl"] {
        let (n, evs, bad) = run(body, Some(ct), None, &L).unwrap();
        assert_eq!((n, evs.len(), bad.len()), (3, 3, 0), "{ct}");
    }
}

#[test]
fn one_broken_ndjson_line_is_quarantined_alone() {
    let body = b"{\"event\":\"a\"}\n{\"event\":\n[1]\n{\"event\":\"d\"}\n";
    let (n, evs, bad) = run(body, Some("application/x-ndjson"), None, &L).unwrap();
    assert_eq!(n, 4);
    assert_eq!(evs.len(), 2);
    assert_eq!(bad.len(), 2);
    assert!(bad[0].contains("line 2 is not valid JSON"), "{bad:?}");
    assert!(bad[1].contains("event 2 is an array, not a JSON object"), "{bad:?}");
}

#[test]
fn send_beacon_text_plain_json_is_read_as_json() {
    let body = br#"{"event":"page_view","url":"https://example.com/"}"#;
    let (n, evs, _) = run(body, Some("text/plain;charset=UTF-8"), None, &L).unwrap();
    assert_eq!((n, evs.len()), (1, 1));
    let (n, _, _) = run(br#"[{"event":"a"},{"event":"b"}]"#, Some("text/plain"), None, &L).unwrap();
    assert_eq!(n, 2);
}

#[test]
fn text_plain_with_one_object_per_line_is_read_as_ndjson() {
    let body = b"{\"event\":\"a\"}\n{\"event\":\"b\"}\n";
    let (n, evs, _) = run(body, Some("text/plain"), None, &L).unwrap();
    assert_eq!((n, evs.len()), (2, 2));
    let (n, evs, _) = run(body, None, None, &L).unwrap();
    assert_eq!((n, evs.len()), (2, 2));
}

#[test]
fn a_pretty_printed_object_in_text_plain_stays_one_event() {
    let body = b"{\n  \"event\": \"a\",\n  \"n\": 1\n}\n";
    let (n, evs, _) = run(body, Some("text/plain"), None, &L).unwrap();
    assert_eq!((n, evs.len()), (1, 1));
}

#[test]
fn gzip_bodies_are_inflated() {
    let body = gzip(br#"[{"event":"a"},{"event":"b"}]"#);
    let (n, evs, _) = run(&body, Some("application/json"), Some("gzip"), &L).unwrap();
    assert_eq!((n, evs.len()), (2, 2));
    let (n, _, _) = run(
        &gzip(b"{\"event\":\"a\"}\n{\"event\":\"b\"}"),
        Some("application/x-ndjson"),
        Some("x-gzip"),
        &L,
    )
    .unwrap();
    assert_eq!(n, 2);
}

#[test]
fn concatenated_gzip_members_are_all_inflated() {
    let mut body = gzip(b"{\"event\":\"a\"}\n");
    body.extend(gzip(b"{\"event\":\"b\"}\n"));
    let (n, _, _) = run(&body, Some("application/x-ndjson"), Some("gzip"), &L).unwrap();
    assert_eq!(n, 2);
}

#[test]
fn a_gzip_bomb_is_stopped_at_the_limit_while_inflating() {
    // 64 MiB of zeros compress to about 64 KiB.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![b' '; 1 << 20];
    for _ in 0..64 {
        enc.write_all(&zeros).unwrap();
    }
    let bomb = enc.finish().unwrap();
    assert!(bomb.len() < L.max_body_bytes);
    let err = decompress(&bomb, Some("gzip"), &L).unwrap_err();
    assert_eq!(
        err,
        DecodeError::BodyTooLarge {
            limit: L.max_body_bytes,
            decompressed: true
        }
    );
    assert_eq!(err.status(), 413);
    assert!(
        err.to_string()
            .contains("max_body_bytes = 1048576 bytes after decompression"),
        "{err}"
    );
}

#[test]
fn gzip_that_inflates_to_exactly_the_limit_passes_and_one_more_byte_fails() {
    let limits = Limits::clamped(1000, 1000, 500, 32);
    let exact = gzip(&vec![b' '; 1000]);
    assert_eq!(decompress(&exact, Some("gzip"), &limits).unwrap().len(), 1000);
    let over = gzip(&vec![b' '; 1001]);
    assert!(matches!(
        decompress(&over, Some("gzip"), &limits),
        Err(DecodeError::BodyTooLarge {
            limit: 1000,
            decompressed: true
        })
    ));
}

#[test]
fn corrupt_gzip_is_a_quarantinable_error() {
    let mut body = gzip(br#"{"event":"a"}"#);
    let n = body.len();
    body[n / 2] ^= 0xFF;
    body.truncate(n - 4);
    let err = decompress(&body, Some("gzip"), &L).unwrap_err();
    assert_eq!(err.code(), "bad_gzip");
    assert!(err.is_quarantinable());
    assert_eq!(err.status(), 400);
}

#[test]
fn body_at_the_limit_passes_and_one_byte_over_is_413_naming_the_limit() {
    let limits = Limits::clamped(64, 64, 500, 32);
    let event = format!(r#"{{"event":"{}"}}"#, "x".repeat(64 - 12));
    assert_eq!(event.len(), 64);
    assert!(run(event.as_bytes(), None, None, &limits).is_ok());
    let over = format!("{event} ");
    let err = run(over.as_bytes(), None, None, &limits).unwrap_err();
    assert_eq!(
        err,
        DecodeError::BodyTooLarge {
            limit: 64,
            decompressed: false
        }
    );
    assert_eq!(err.status(), 413);
    assert!(err.to_string().contains("max_body_bytes = 64"));
}

#[test]
fn event_at_the_limit_passes_and_one_byte_over_is_413_naming_the_event() {
    let limits = Limits::clamped(1 << 20, 100, 500, 32);
    let at = format!(r#"{{"event":"{}"}}"#, "x".repeat(100 - 12));
    let over = format!(r#"{{"event":"{}"}}"#, "x".repeat(101 - 12));
    for (ct, wrap) in [
        ("application/json", false),
        ("application/json", true),
        ("application/x-ndjson", false),
    ] {
        let body = |e: &str| {
            if wrap {
                format!("[{{}},{e}]")
            } else {
                format!("{{}}\n{e}")
            }
        };
        let (ct, at_body, over_body) = if ct == "application/json" && !wrap {
            (ct, at.clone(), over.clone())
        } else {
            (ct, body(&at), body(&over))
        };
        assert!(run(at_body.as_bytes(), Some(ct), None, &limits).is_ok(), "{ct} {wrap}");
        let err = run(over_body.as_bytes(), Some(ct), None, &limits).unwrap_err();
        let index = if ct == "application/json" && !wrap { 0 } else { 1 };
        assert_eq!(
            err,
            DecodeError::EventTooLarge {
                index,
                size: 101,
                limit: 100
            },
            "{ct} {wrap}"
        );
        assert_eq!(
            err.to_string(),
            format!("event {index} is 101 bytes; max_event_bytes is 100")
        );
        assert_eq!(err.status(), 413);
    }
}

#[test]
fn count_at_the_limit_passes_and_one_over_is_413_naming_the_count() {
    let at = format!("[{}]", vec![r#"{"event":"a"}"#; 500].join(","));
    assert_eq!(run(at.as_bytes(), Some("application/json"), None, &L).unwrap().0, 500);
    let over = format!("[{}]", vec![r#"{"event":"a"}"#; 501].join(","));
    let err = run(over.as_bytes(), Some("application/json"), None, &L).unwrap_err();
    assert_eq!(err, DecodeError::TooManyEvents { count: 501, limit: 500 });
    assert_eq!(
        err.to_string(),
        "the body holds 501 events; max_events is 500 per request"
    );
    let nd = vec![r#"{"event":"a"}"#; 501].join("\n");
    assert_eq!(
        run(nd.as_bytes(), Some("application/x-ndjson"), None, &L)
            .unwrap_err()
            .status(),
        413
    );
}

fn nested(depth: usize) -> String {
    // An event object whose total depth is `depth`.
    format!(
        r#"{{"event":"a","p":{}1{}}}"#,
        "[".repeat(depth - 1),
        "]".repeat(depth - 1)
    )
}

#[test]
fn depth_at_the_limit_passes_and_one_more_level_is_400_naming_the_depth() {
    for (ct, wrap) in [
        ("application/json", false),
        ("application/json", true),
        ("application/x-ndjson", false),
    ] {
        let b = |d| if wrap { format!("[{}]", nested(d)) } else { nested(d) };
        assert!(run(b(32).as_bytes(), Some(ct), None, &L).is_ok(), "{ct}");
        let err = run(b(33).as_bytes(), Some(ct), None, &L).unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::TooDeep {
                    depth: 33,
                    limit: 32,
                    ..
                }
            ),
            "{ct}: {err:?}"
        );
        assert!(err.to_string().contains("33 levels deep; max_depth is 32"));
        assert_eq!(err.status(), 400);
    }
}

#[test]
fn depth_of_ten_thousand_is_refused_without_overflowing_the_stack() {
    let deep = format!(r#"{{"event":"a","p":{}{}}}"#, "[".repeat(10_000), "]".repeat(10_000));
    let err = run(deep.as_bytes(), Some("application/json"), None, &L).unwrap_err();
    assert!(matches!(err, DecodeError::TooDeep { depth: 10_001, .. }), "{err:?}");
    let unbalanced = "[".repeat(10_000);
    assert!(matches!(
        run(unbalanced.as_bytes(), None, None, &L).unwrap_err(),
        DecodeError::TooDeep { .. }
    ));
}

#[test]
fn invalid_utf8_is_quarantined_not_refused() {
    let body = b"{\"event\":\"caf\xE9\"}";
    let mut buf = None;
    let d = decode(&mut buf, body, Some("application/json"), None, &L).unwrap();
    match &d.items[..] {
        [Item::Malformed(m)] => {
            assert_eq!(m.bytes, body);
            assert_eq!(m.index, None);
            assert!(m.reason.contains("not valid UTF-8"), "{}", m.reason);
        }
        other => panic!("{other:?}"),
    }
    let err = d.strict().unwrap_err();
    assert_eq!(err.status(), 400);
    // In NDJSON only the bad line is affected.
    let (n, evs, bad) = run(
        b"{\"event\":\"a\"}\n{\"event\":\"\xFF\"}\n",
        Some("application/x-ndjson"),
        None,
        &L,
    )
    .unwrap();
    assert_eq!((n, evs.len(), bad.len()), (2, 1, 1));
}

#[test]
fn broken_json_is_one_malformed_item_holding_the_whole_body() {
    let body = br#"[{"event":"a"},{"event":"b""#;
    let (n, evs, bad) = run(body, Some("application/json"), None, &L).unwrap();
    assert_eq!((n, evs.len()), (1, 0));
    assert!(bad[0].starts_with("invalid JSON array"), "{bad:?}");
}

#[test]
fn non_object_elements_are_malformed_items_naming_their_kind() {
    let (n, evs, bad) = run(br#"[{"event":"a"},42,"s",null,true,[]]"#, None, None, &L).unwrap();
    assert_eq!((n, evs.len()), (6, 1));
    assert_eq!(
        bad,
        [
            "event 1 is a number, not a JSON object",
            "event 2 is a string, not a JSON object",
            "event 3 is null, not a JSON object",
            "event 4 is a boolean, not a JSON object",
            "event 5 is an array, not a JSON object"
        ]
    );
}

#[test]
fn a_byte_order_mark_is_ignored() {
    let (n, _, bad) = run(b"\xEF\xBB\xBF{\"event\":\"a\"}", Some("application/json"), None, &L).unwrap();
    assert_eq!((n, bad.len()), (1, 0));
}

#[test]
fn empty_and_whitespace_bodies_are_400() {
    for body in [&b""[..], b"  \n\t "] {
        let err = run(body, Some("application/json"), None, &L).unwrap_err();
        assert_eq!((err.code(), err.status()), ("empty_body", 400));
    }
}

#[test]
fn unusable_content_types_and_encodings_are_415_naming_the_header() {
    for ct in [
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "image/png",
        "application/json; charset=latin1",
    ] {
        let err = run(b"{}", Some(ct), None, &L).unwrap_err();
        assert_eq!(err.status(), 415, "{ct}");
        assert!(err.to_string().contains(ct), "{err}");
    }
    let err = run(b"{}", None, Some("br"), &L).unwrap_err();
    assert_eq!(err.status(), 415);
    assert!(err.to_string().contains("\"br\""));
    assert_eq!(
        BodyFormat::from_content_type(Some("application/vnd.api+json")).unwrap(),
        BodyFormat::Json
    );
    assert_eq!(
        BodyFormat::from_content_type(Some("TEXT/PLAIN; charset=\"UTF-8\"")).unwrap(),
        BodyFormat::Sniff
    );
}

#[test]
fn a_body_the_runtime_inflated_is_checked_as_if_inflated_here() {
    let limits = Limits::clamped(100, 10, 50, 8);
    let raw = b"compressed bytes, not read";
    let small = Inflated::Bytes(b"{\"event\":\"a\"}".to_vec());
    assert_eq!(
        decompress_with(raw, Some("gzip"), Some(&small), &limits)
            .unwrap()
            .as_ref(),
        b"{\"event\":\"a\"}"
    );
    // The route's own limit applies, whatever cap the runtime was given.
    let large = Inflated::Bytes(vec![b' '; 101]);
    let over = [large, Inflated::OverCap];
    for inflated in &over {
        assert_eq!(
            decompress_with(raw, Some("x-gzip"), Some(inflated), &limits).unwrap_err(),
            DecodeError::BodyTooLarge {
                limit: 100,
                decompressed: true
            }
        );
    }
    let broken = Inflated::Broken("Decompression failed.".into());
    let e = decompress_with(raw, Some("gzip"), Some(&broken), &limits).unwrap_err();
    assert!(
        e.is_quarantinable() && e.to_string().contains("Decompression failed."),
        "{e}"
    );
    // An identity body ignores any inflation; other encodings stay refused.
    assert_eq!(
        decompress_with(raw, None, Some(&broken), &limits).unwrap().as_ref(),
        raw
    );
    assert!(matches!(
        decompress_with(raw, Some("br"), Some(&small), &limits),
        Err(DecodeError::UnsupportedContentEncoding { .. })
    ));
    assert!(is_gzip(Some(" GZIP ")) && is_gzip(Some("x-gzip")) && !is_gzip(Some("deflate")) && !is_gzip(None));
}
