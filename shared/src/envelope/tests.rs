use std::borrow::Cow;

use super::*;
use crate::clock::SeededRandom;
use crate::decode::{BodyFormat, parse_events};
use crate::limits::Limits;

const RECEIVED: Timestamp = Timestamp(1_714_566_600_250);

fn ctx<'a>(edge: &'a EdgeMeta<'a>) -> RequestContext<'a> {
    RequestContext {
        received_at: RECEIVED,
        key_id: Some("web"),
        edge,
        content_type: Some("application/json"),
        dialect: Dialect::V1,
    }
}

#[test]
fn the_event_text_is_kept_exactly_and_the_message_id_becomes_the_id() {
    let edge = EdgeMeta {
        country: Some("DE".into()),
        colo: Some("FRA".into()),
        asn: Some(3320),
        client_ip: None,
    };
    let event = r#"{"event":"click", "message_id":"m-1","properties":{"price":19.990,"big":12345678901234567890}}"#;
    let line = wrap_event(&ctx(&edge), event, &SeededRandom::new(1));
    assert_eq!(
        line,
        format!(
            r#"{{"v":1,"id":"m-1","received_at":1714566600250,"event_time":1714566600250,"key_id":"web","edge":{{"country":"DE","colo":"FRA","asn":3320}},"event":{event}}}"#
        )
    );
    let back = Envelope::parse(&line).unwrap();
    assert_eq!(back.event.unwrap().get(), event);
    assert_eq!(back.edge.unwrap().asn, Some(3320));
}

#[test]
fn without_a_usable_message_id_the_id_is_a_uuid_v7_from_the_receive_time() {
    let edge = EdgeMeta::default();
    let too_long = format!(r#"{{"event":"a","message_id":"{}"}}"#, "x".repeat(101));
    for event in [
        r#"{"event":"a"}"#,
        r#"{"event":"a","message_id":7}"#,
        r#"{"event":"a","message_id":""}"#,
        too_long.as_str(),
    ] {
        let env = Envelope::parse(&wrap_event(&ctx(&edge), event, &SeededRandom::new(9)))
            .unwrap()
            .into_owned();
        let id = env.id;
        assert_eq!(id.len(), 36, "{id}");
        assert_eq!(&id[14..15], "7", "version nibble in {id}");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "variant in {id}");
        assert_eq!(
            u64::from_str_radix(&id[..8], 16).unwrap() << 16 | u64::from_str_radix(&id[9..13], 16).unwrap(),
            1_714_566_600_250
        );
        assert!(env.edge.is_none());
    }
}

#[test]
fn generated_ids_differ_for_every_event() {
    let edge = EdgeMeta::default();
    let rng = SeededRandom::new(3);
    let ids: std::collections::HashSet<String> = (0..10_000)
        .map(|_| {
            Envelope::parse(&wrap_event(&ctx(&edge), "{}", &rng))
                .unwrap()
                .id
                .into_owned()
        })
        .collect();
    assert_eq!(ids.len(), 10_000);
}

#[test]
fn event_time_is_corrected_for_client_clock_skew() {
    // The client clock is 10 minutes fast: it says it sent at 12:40 what happened at 12:39:58.
    let edge = EdgeMeta::default();
    let event = r#"{"event":"a","ts":"2024-05-01T12:39:58Z","sent_at":"2024-05-01T12:40:00Z"}"#;
    let env = Envelope::parse(&wrap_event(&ctx(&edge), event, &SeededRandom::new(1)))
        .unwrap()
        .into_owned();
    assert_eq!(env.event_time, RECEIVED.as_millis() - 2000);
    // Only ts: taken as is (milliseconds form too).
    let env = Envelope::parse(&wrap_event(&ctx(&edge), r#"{"ts":1000}"#, &SeededRandom::new(1)))
        .unwrap()
        .into_owned();
    assert_eq!(env.event_time, 1000);
    // Unparseable times fall back to the receive time.
    let env = Envelope::parse(&wrap_event(
        &ctx(&edge),
        r#"{"ts":"soon","sent_at":[]}"#,
        &SeededRandom::new(1),
    ))
    .unwrap()
    .into_owned();
    assert_eq!(env.event_time, RECEIVED.as_millis());
}

#[test]
fn a_pretty_printed_event_becomes_one_line_with_the_same_value() {
    let edge = EdgeMeta::default();
    let event = "{\n  \"event\": \"a\",\r\n  \"p\": {\"s\": \"x\\ny\"}\n}";
    let line = wrap_event(&ctx(&edge), event, &SeededRandom::new(1));
    assert!(!line.contains('\n'));
    let back: serde_json::Value = serde_json::from_str(Envelope::parse(&line).unwrap().event.unwrap().get()).unwrap();
    assert_eq!(back, serde_json::from_str::<serde_json::Value>(event).unwrap());
}

#[test]
fn quarantined_text_is_kept_as_text_and_binary_as_base64() {
    let edge = EdgeMeta::default();
    let lines = wrap_quarantine(
        &ctx(&edge),
        b"{\"event\":",
        Some(2),
        "line 3 is not valid JSON",
        &SeededRandom::new(1),
    );
    assert_eq!(lines.len(), 1);
    let q = Envelope::parse(&lines[0]).unwrap().quarantine.unwrap();
    assert_eq!(
        (q.encoding.as_str(), q.raw().unwrap()),
        ("utf-8", b"{\"event\":".to_vec())
    );
    assert_eq!((q.index, q.part, q.parts, q.bytes), (Some(2), 1, 1, 9));

    let binary = [0x1F, 0x8B, 0xFF, 0x00, b'a'];
    let lines = wrap_quarantine(
        &ctx(&edge),
        &binary,
        None,
        "the gzip body is corrupt",
        &SeededRandom::new(1),
    );
    let q = Envelope::parse(&lines[0]).unwrap().quarantine.unwrap();
    assert_eq!(q.encoding, "base64");
    assert_eq!(q.raw().unwrap(), binary);
    assert_eq!(q.content_type.as_deref(), Some("application/json"));
}

#[test]
fn a_large_quarantined_body_is_split_into_parts_that_reassemble_exactly() {
    let edge = EdgeMeta::default();
    // 1 MiB of text with multi-byte characters straddling every chunk boundary.
    let text: String = "é€😀x".chars().cycle().take(400_000).collect();
    let bytes = &text.as_bytes()[..text.len().min(crate::limits::MAX_BODY_BYTES)];
    let lines = wrap_quarantine(&ctx(&edge), bytes, None, "invalid JSON", &SeededRandom::new(5));
    assert!(lines.len() >= 16);
    assert!(lines.iter().all(|l| l.len() < crate::limits::QUEUE_MAX_MESSAGE_BYTES));
    let mut joined = Vec::new();
    let mut ids = std::collections::HashSet::new();
    for (i, line) in lines.iter().enumerate() {
        assert!(line.len() < crate::limits::FIREHOSE_MAX_RECORD_BYTES / 2);
        let env = Envelope::parse(line).unwrap();
        ids.insert(env.id);
        let q = env.quarantine.unwrap();
        assert_eq!((q.part, q.parts, q.bytes), (i + 1, lines.len(), bytes.len()));
        joined.extend(q.raw().unwrap());
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(joined, bytes);
}

#[test]
fn every_item_of_a_body_is_wrapped_in_order() {
    let edge = EdgeMeta::default();
    let body = b"{\"event\":\"a\"}\nnot json\n{\"event\":\"c\"}";
    let d = parse_events(body, BodyFormat::Ndjson, &Limits::default()).unwrap();
    let lines = wrap_items(&ctx(&edge), &d.items, &SeededRandom::new(1));
    let kinds: Vec<bool> = lines
        .iter()
        .map(|l| Envelope::parse(l).unwrap().event.is_some())
        .collect();
    assert_eq!(kinds, [true, false, true]);
}

#[test]
fn envelopes_borrow_from_their_line_and_unescape_when_they_must() {
    let line = r#"{"v":1,"id":"m\u0031","received_at":5,"event_time":4,"key_id":"web","edge":{"country":"DE","colo":"F\u0052A","asn":3320},"event":{"event":"a"}}"#;
    let env = Envelope::parse(line).unwrap();
    assert!(matches!(env.key_id, Some(Cow::Borrowed("web"))));
    assert!(matches!(env.event, Some(Cow::Borrowed(_))));
    let owned: Envelope<'static> = env.into_owned();
    assert_eq!(owned.id, "m1");
    let edge = owned.edge.unwrap();
    assert_eq!(
        (edge.country.as_deref(), edge.colo.as_deref(), edge.asn),
        (Some("DE"), Some("FRA"), Some(3320))
    );
    assert_eq!(owned.event.unwrap().get(), r#"{"event":"a"}"#);
    let nulls = r#"{"v":1,"id":"a","received_at":1,"event_time":1,"key_id":null,"edge":{"colo":null},"event":{}}"#;
    let env = Envelope::parse(nulls).unwrap();
    assert_eq!((env.key_id, env.edge.unwrap().colo), (None, None));
}

#[test]
fn lines_that_are_not_envelopes_are_refused_with_a_reason() {
    assert!(matches!(Envelope::parse("{}"), Err(EnvelopeError::Invalid(_))));
    assert_eq!(
        Envelope::parse(r#"{"v":2,"id":"a","received_at":1,"event_time":1,"event":{}}"#).unwrap_err(),
        EnvelopeError::Version(2)
    );
    let both = r#"{"v":1,"id":"a","received_at":1,"event_time":1,"event":{},"quarantine":{"reason":"r","encoding":"utf-8","data":"","part":1,"parts":1,"bytes":0}}"#;
    assert!(Envelope::parse(both).unwrap_err().to_string().contains("both"));
    assert!(
        Envelope::parse(r#"{"v":1,"id":"a","received_at":1,"event_time":1}"#)
            .unwrap_err()
            .to_string()
            .contains("neither")
    );
}
