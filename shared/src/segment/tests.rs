use super::*;

fn parse_ok(body: &str, route: Route) -> Request<'_> {
    parse(body.as_bytes(), route, &Limits::default()).unwrap()
}

fn parse_err(body: &[u8], route: Route, limits: &Limits) -> SegmentError {
    parse(body, route, limits).unwrap_err()
}

#[test]
fn long_and_short_paths_route_to_their_calls() {
    for (path, want) in [
        ("/v1/track", Route::Single(Call::Track)),
        ("/v1/t", Route::Single(Call::Track)),
        ("/v1/page", Route::Single(Call::Page)),
        ("/v1/p", Route::Single(Call::Page)),
        ("/v1/screen", Route::Single(Call::Screen)),
        ("/v1/identify", Route::Single(Call::Identify)),
        ("/v1/i", Route::Single(Call::Identify)),
        ("/v1/group", Route::Single(Call::Group)),
        ("/v1/alias", Route::Single(Call::Alias)),
        ("/v1/batch", Route::Batch),
        ("/v1/b", Route::Batch),
        ("/v1/import", Route::Batch),
    ] {
        assert_eq!(route(path), Some(want), "{path}");
    }
    for other in ["/v1/events", "/v1/m", "/track", "/v2/track", "/v1/tracks"] {
        assert_eq!(route(other), None, "{other}");
    }
    for c in Call::ALL {
        assert_eq!(Call::parse(c.as_str()), Some(c));
    }
}

#[test]
fn a_batch_keeps_each_message_byte_for_byte_and_reads_the_batch_fields() {
    let body = r#"{"batch":[{"type":"track","event":"A","userId":"u", "properties":{"x" : 1}},{"type":"identify","userId":"u"}],"sentAt":"2024-05-01T12:30:05.000Z","writeKey":"wk_abcdefgh"}"#;
    let r = parse_ok(body, Route::Batch);
    assert_eq!(
        r.messages,
        [
            r#"{"type":"track","event":"A","userId":"u", "properties":{"x" : 1}}"#,
            r#"{"type":"identify","userId":"u"}"#
        ]
    );
    assert!(r.messages.iter().all(|m| matches!(m, Cow::Borrowed(_))));
    assert_eq!(r.write_key.as_deref(), Some("wk_abcdefgh"));
    assert_eq!(r.sent_at, Some(Timestamp(1_714_566_605_000)));
}

#[test]
fn a_write_key_in_a_message_is_read_and_taken_out_of_it() {
    let r = parse_ok(
        r#"{"type":"track","event":"A","anonymousId":"a","writeKey":"wk_abcdefgh","sentAt":"2024-05-01T12:30:05.000Z"}"#,
        Route::Single(Call::Track),
    );
    assert_eq!(r.write_key.as_deref(), Some("wk_abcdefgh"));
    assert_eq!(
        r.messages,
        [r#"{"type":"track","event":"A","anonymousId":"a","sentAt":"2024-05-01T12:30:05.000Z"}"#]
    );
    // A batch whose messages carry the key (and agree with it).
    let r = parse_ok(
        r#"{"batch":[{"writeKey":"wk_abcdefgh","type":"page","userId":"u"}],"writeKey":"wk_abcdefgh"}"#,
        Route::Batch,
    );
    assert_eq!(r.messages, [r#"{"type":"page","userId":"u"}"#]);
    for conflict in [
        &br#"{"batch":[{"writeKey":"wk_1111111111"},{"writeKey":"wk_2222222222"}]}"#[..],
        br#"{"writeKey":"wk_1111111111","writeKey":"wk_2222222222","batch":[{"type":"track"}]}"#,
        br#"{"writeKey":"wk_1111111111","batch":[{"writeKey":"wk_2222222222","writeKey":"wk_1111111111"}]}"#,
    ] {
        assert_eq!(
            parse_err(conflict, Route::Batch, &Limits::default()),
            SegmentError::ConflictingWriteKeys
        );
    }
    let twice = br#"{"type":"track","writeKey":"wk_1111111111","writeKey":"wk_2222222222"}"#;
    assert_eq!(
        parse_err(twice, Route::Single(Call::Track), &Limits::default()),
        SegmentError::ConflictingWriteKeys
    );
    // An escaped spelling of the name is the same member: read, then taken out.
    let escaped = r#"{"type":"track","write\u004bey":"wk_1111111111","userId":"u"}"#;
    let r = parse_ok(escaped, Route::Single(Call::Track));
    assert_eq!(r.write_key.as_deref(), Some("wk_1111111111"));
    assert_eq!(r.messages, [r#"{"type":"track","userId":"u"}"#]);
}

#[test]
fn bad_bodies_are_400_naming_what_is_wrong() {
    let l = Limits::default();
    for (body, route, code, says) in [
        (&b"{not json"[..], Route::Batch, "invalid_json", "not valid JSON"),
        (b"[1,2]", Route::Single(Call::Track), "not_an_object", "is an array"),
        (
            br#"{"sentAt":"x"}"#,
            Route::Batch,
            "invalid_batch",
            "`batch` must be an array of messages, not missing",
        ),
        (br#"{"batch":{"a":1}}"#, Route::Batch, "invalid_batch", "not an object"),
        (
            br#"{"batch":[{"type":"track"},7]}"#,
            Route::Batch,
            "invalid_message",
            "batch[1] is a number",
        ),
        (b"  ", Route::Batch, "empty_body", "empty"),
        (b"\xff\xfe{}", Route::Batch, "invalid_json", "UTF-8"),
    ] {
        let e = parse_err(body, route, &l);
        assert_eq!((e.status(), e.code()), (400, code), "{}", String::from_utf8_lossy(body));
        assert!(e.to_string().contains(says), "{e}");
    }
    // A message may nest max_depth levels, in a batch as on its own.
    let nested = |levels: usize| format!(r#"{{"p":{}1{}}}"#, "[".repeat(levels - 1), "]".repeat(levels - 1));
    let at = nested(32);
    assert!(parse(at.as_bytes(), Route::Single(Call::Track), &l).is_ok());
    assert!(parse(format!(r#"{{"batch":[{at}]}}"#).as_bytes(), Route::Batch, &l).is_ok());
    let over = nested(33);
    let e = parse_err(format!(r#"{{"batch":[{over}]}}"#).as_bytes(), Route::Batch, &l);
    assert_eq!(
        (e.code(), e.to_string().as_str()),
        ("too_deep", "an event nests 33 levels deep; max_depth is 32")
    );
    assert_eq!(
        parse_err(over.as_bytes(), Route::Single(Call::Track), &l).code(),
        "too_deep"
    );
}

#[test]
fn segments_limits_are_413_naming_segments_limit_or_the_deployments() {
    let big_props = "x".repeat(SEGMENT_MAX_MESSAGE_BYTES);
    let body = format!(r#"{{"batch":[{{"type":"track"}},{{"type":"track","properties":{{"p":"{big_props}"}}}}]}}"#);
    let e = parse_err(body.as_bytes(), Route::Batch, &Limits::default());
    assert_eq!(e.status(), 413);
    assert!(
        e.to_string()
            .starts_with("message 1 is 32806 bytes; the Segment Tracking API's limit is 32 KB (32768 bytes)"),
        "{e}"
    );
    // A deployment that set a lower limit hears its own limit named.
    let low = Limits::clamped(1 << 20, 1000, 500, 32);
    let e = parse_err(body.as_bytes(), Route::Batch, &low);
    assert_eq!((e.status(), e.code()), (413, "event_too_large"), "{e}");

    let batch = vec![0u8; SEGMENT_MAX_BATCH_BYTES + 1];
    let e = decompress(&batch, None, None, &Limits::default()).unwrap_err();
    assert_eq!((e.status(), e.code()), (413, "batch_too_large"));
    assert!(
        e.to_string()
            .contains("larger than 512000 bytes: the Segment Tracking API's limit of 500 KB"),
        "{e}"
    );
    assert!(decompress(&batch[..SEGMENT_MAX_BATCH_BYTES], None, None, &Limits::default()).is_ok());
    let e = decompress(&batch, None, None, &Limits::clamped(100_000, 1000, 500, 32)).unwrap_err();
    assert_eq!(e.code(), "body_too_large");

    let many: Vec<String> = (0..501).map(|_| r#"{"type":"track"}"#.to_owned()).collect();
    let body = format!(r#"{{"batch":[{}]}}"#, many.join(","));
    assert_eq!(
        parse_err(body.as_bytes(), Route::Batch, &Limits::default()).code(),
        "too_many_events"
    );
}
