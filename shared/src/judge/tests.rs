use super::*;

const AT: i64 = 1_714_566_600_250; // 2024-05-01T12:30:00.250Z

fn v1(event: &str) -> String {
    format!(r#"{{"v":1,"id":"e1","received_at":{AT},"event_time":{AT},"event":{event}}}"#)
}

fn rules_and<T>(f: impl FnOnce(Rules<'_>) -> T) -> T {
    let (limits, sources) = (Limits::default(), Sources::default());
    f(Rules {
        limits: &limits,
        sources: &sources,
    })
}

fn rejected_reasons(verdict: &Verdict<'_>) -> Vec<String> {
    let Verdict::Rejected(line) = verdict else {
        panic!("not rejected: {verdict:?}")
    };
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    v["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_valid_event_keeps_its_line_and_names_its_partition() {
    let line = v1(r#"{"event":"checkout","properties":{"total":5}}"#);
    assert_eq!(
        rules_and(|r| judge(&line, r)),
        Verdict::Event(Partition {
            table: "events",
            name: "checkout".into(),
            date: "2024-05-01".into()
        })
    );
}

#[test]
fn a_labelled_event_names_its_lanes_table_and_a_quarantined_bot_is_rejected() {
    let labelled =
        |label: &str| v1(r#"{"event":"checkout"}"#).replacen(r#"{"v":1,"#, &format!(r#"{{"v":1,"label":{label},"#), 1);
    let limited = labelled(r#"{"lane":"limited","limited":"address"}"#);
    match rules_and(|r| judge(&limited, r)) {
        Verdict::Event(p) => assert_eq!((p.table, p.name.as_str()), ("limited", "checkout")),
        other => panic!("{other:?}"),
    }
    let kept = labelled(r#"{"bot":"verified","signal":"cf.verified_bot"}"#);
    assert!(matches!(rules_and(|r| judge(&kept, r)), Verdict::Event(p) if p.table == "events"));
    let quarantined = labelled(r#"{"lane":"quarantine","bot":"tool","signal":"user_agent:curl"}"#);
    match rules_and(|r| judge(&quarantined, r)) {
        Verdict::Rejected(line) => {
            assert!(line.contains(r#""reason":"bot""#), "{line}");
            assert!(line.contains("bot verdict tool by user_agent:curl"), "{line}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_invalid_event_becomes_its_rejected_line_with_every_reason_and_the_envelope() {
    let line = v1(r#"{"event":"","bogus":1}"#);
    let verdict = rules_and(|r| judge(&line, r));
    let mut reasons = rejected_reasons(&verdict);
    reasons.sort();
    assert_eq!(reasons, ["empty", "unknown_field"]);
    let Verdict::Rejected(text) = &verdict else {
        unreachable!()
    };
    assert!(text.ends_with(&format!(r#""envelope":{line}}}"#)), "{text}");
    assert!(
        text.starts_with(r#"{"id":"e1","received_at":"2024-05-01T12:30:00.250Z""#),
        "{text}"
    );
    // Judged again (a redriven dead letter), it stays as it is.
    assert_eq!(rules_and(|r| judge(text, r)), verdict);
}

#[test]
fn segment_messages_partition_by_track_name_or_call_and_sources_by_name() {
    let seg = |call: &str, msg: &str| {
        format!(
            r#"{{"v":1,"id":"s1","received_at":{AT},"event_time":{AT},"format":"segment","type":"{call}","event":{msg}}}"#
        )
    };
    let name = |line: &str| match rules_and(|r| judge(line, r)) {
        Verdict::Event(p) => p.name,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        name(&seg("track", r#"{"event":"Signed Up","userId":"u"}"#)),
        "Signed Up"
    );
    assert_eq!(name(&seg("page", r#"{"name":"Home","userId":"u"}"#)), "page");
    let nameless = seg("track", r#"{"userId":"u"}"#);
    assert_eq!(rejected_reasons(&rules_and(|r| judge(&nameless, r))), ["missing_field"]);
    let source = format!(
        r#"{{"v":1,"id":"b1","received_at":{AT},"event_time":{AT},"format":"source","source":"bike","event":{{"w":1}}}}"#
    );
    assert_eq!(name(&source), "bike");
}

#[test]
fn a_declared_source_owns_its_name_against_the_other_doors() {
    let limits = Limits::default();
    let sources = Sources::parse(r#"{"bike":{"keys":["bikes"]}}"#).unwrap();
    let rules = Rules {
        limits: &limits,
        sources: &sources,
    };
    // A schema v1 event and a Segment track named like the source: rejected,
    // so no key can file events in the source's partition and schema.
    let v1_bike = v1(r#"{"event":"bike","message_id":"copied"}"#);
    assert_eq!(rejected_reasons(&judge(&v1_bike, rules)), ["source_name"]);
    let track = format!(
        r#"{{"v":1,"id":"s1","received_at":{AT},"event_time":{AT},"format":"segment","type":"track","event":{{"event":"bike","userId":"u"}}}}"#
    );
    assert_eq!(rejected_reasons(&judge(&track, rules)), ["source_name"]);
    // Other names, and the source's own events, are untouched.
    assert!(matches!(judge(&v1(r#"{"event":"bikes"}"#), rules), Verdict::Event(_)));
    let own = format!(
        r#"{{"v":1,"id":"b1","received_at":{AT},"event_time":{AT},"format":"source","source":"bike","event":{{"w":1}}}}"#
    );
    assert!(matches!(judge(&own, rules), Verdict::Event(_)));
}

#[test]
fn quarantined_payloads_and_lines_that_are_no_envelope_are_rejected_with_why() {
    let q = format!(
        r#"{{"v":1,"id":"q1","received_at":{AT},"event_time":{AT},"quarantine":{{"reason":"invalid JSON","encoding":"base64","data":"eyJ","part":1,"parts":1,"bytes":2}}}}"#
    );
    assert_eq!(rejected_reasons(&rules_and(|r| judge(&q, r))), ["quarantined"]);
    assert_eq!(
        rejected_reasons(&rules_and(|r| judge("Hello World", r))),
        ["not_an_envelope"]
    );
}

#[test]
fn triage_keeps_valid_lines_as_they_are_and_groups_by_partition_only_when_asked() {
    let lines = [
        v1(r#"{"event":"a"}"#),
        v1(r#"{"event":""}"#),
        v1(r#"{"event":"b"}"#),
        v1(r#"{"event":"a"}"#),
    ];
    let (texts, groups) = rules_and(|r| triage(&lines, r, false));
    assert_eq!(texts[0], lines[0]);
    assert!(texts[1].starts_with(r#"{"id":"e1""#));
    assert_eq!(
        groups,
        [
            Group::Events(None),
            Group::Rejected,
            Group::Events(None),
            Group::Events(None)
        ]
    );
    let (_, groups) = rules_and(|r| triage(&lines, r, true));
    let a = Group::Events(Some(Partition::new("a", AT)));
    assert_eq!(groups[0], a);
    assert_eq!(groups[3], a);
    assert_eq!(groups[2], Group::Events(Some(Partition::new("b", AT))));
}
