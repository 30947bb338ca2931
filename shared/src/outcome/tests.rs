use super::*;

const T: i64 = 1_714_566_600_250; // 2024-05-01T12:30:00.250Z

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

#[test]
fn an_envelope_is_counted_by_its_receive_minute_key_and_door() {
    let line =
        format!(r#"{{"v":1,"id":"e1","received_at":{T},"event_time":{T},"key_id":"web","event":{{"event":"x"}}}}"#);
    let a = LineAccount::of(&line, at(0));
    assert_eq!(a.id, "e1");
    assert_eq!(a.cell.minute, T / 60_000);
    assert_eq!((a.cell.key.as_str(), a.cell.door.as_str()), ("web", "v1"));
    let seg = format!(
        r#"{{"v":1,"id":"s","received_at":{T},"event_time":{T},"format":"segment","type":"track","event":{{}}}}"#
    );
    assert_eq!(LineAccount::of(&seg, at(0)).cell.door, "segment");
    let src = format!(
        r#"{{"v":1,"id":"g","received_at":{T},"event_time":{T},"format":"source","source":"gps","event":{{}}}}"#
    );
    assert_eq!(LineAccount::of(&src, at(0)).cell.door, "source:gps");
}

#[test]
fn a_rejected_line_is_counted_as_the_envelope_it_holds() {
    let envelope = format!(
        r#"{{"v":1,"id":"e2","received_at":{T},"event_time":{T},"key_id":"ios","format":"segment","event":{{}}}}"#
    );
    let reasons = [crate::validate::Violation::new(
        crate::validate::Reason::Quarantined,
        "event",
        "missing",
    )];
    let mut out = Vec::new();
    crate::rejected::Rejected::new("e2", Some(T), &reasons, &envelope).write_to(&mut out);
    let line = String::from_utf8(out).unwrap();
    let a = LineAccount::of(line.trim(), at(0));
    assert_eq!(a.id, "e2");
    assert_eq!(a.cell, LineAccount::of(&envelope, at(0)).cell);
}

#[test]
fn a_line_holding_no_envelope_counts_under_the_fallback_minute() {
    let a = LineAccount::of("not json", at(120_000));
    assert_eq!((a.cell.minute, a.cell.door.as_str(), a.id.as_str()), (2, "?", ""));
}

#[test]
fn a_tally_adds_by_cell_and_round_trips_through_rows_and_receipt_lines() {
    let line = |id: &str, key: &str| {
        format!(r#"{{"v":1,"id":"{id}","received_at":{T},"event_time":{T},"key_id":"{key}","event":{{}}}}"#)
    };
    let mut t = Tally::new();
    t.add_lines(
        &[line("a", "web"), line("b", "web"), line("c", "ios")],
        Outcome::Landed,
        "",
        at(0),
    );
    t.add_lines(&[line("d", "web")], Outcome::Rejected, "schema", at(0));
    t.add(Cell::default(), Outcome::Accepted, 0);
    assert_eq!(t.total(Outcome::Landed), 3);
    assert_eq!(t.total(Outcome::Rejected), 1);
    assert_eq!(t.cells().count(), 3, "web, ios, and web's rejected reason");
    let mut twice = t.clone();
    twice.merge(&t);
    assert_eq!(twice.total(Outcome::Landed), 6);
    let line = receipt_line("transform", "edgehose-events", &t);
    assert!(line.contains(r#""landed":2"#), "{line}");
    assert!(line.contains(r#""reason":"schema""#), "{line}");
    let back = parse_receipt_line(&line).unwrap();
    assert_eq!(
        (back.stage.as_str(), back.stream.as_str(), back.tally),
        ("transform", "edgehose-events", t.clone())
    );
    assert!(parse_receipt_line(r#"{"level":"INFO","message":"transformed"}"#).is_none());
    let wrapped = serde_json::json!({"timestamp": "…", "level": "INFO", "message": line}).to_string();
    assert_eq!(parse_receipt_line(&wrapped).unwrap().tally, t);
}

#[test]
fn every_outcome_has_one_name_and_column() {
    for (i, o) in Outcome::ALL.into_iter().enumerate() {
        assert_eq!(o.index(), i);
        assert_eq!(Outcome::parse(o.as_str()), Some(o));
    }
    assert!(
        Tally::from_rows(&[Row {
            cell: Cell::default(),
            counts: BTreeMap::from([("vanished".to_owned(), 1)]),
        }])
        .is_err()
    );
}
