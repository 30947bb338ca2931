use super::*;

const SOURCES: &str = r#"{
    "bike": {"id_field": "uuid", "time_field": "deviceTimestamp", "time_format": "epoch_ms", "keys": ["bikes"]},
    "gps": {"time_field": "timestamp", "time_format": "epoch_s"},
    "app": {"time_field": "at", "time_format": "rfc3339"}
}"#;

fn members(text: &str) -> Members<'_> {
    Members::parse(text).unwrap()
}

#[test]
fn names_follow_the_rule_and_a_bad_one_is_named() {
    for ok in ["bike", "gps-tracker_2", "a", &"x".repeat(64)] {
        assert!(check_name(ok).is_ok(), "{ok}");
    }
    for bad in ["", "Bikes", "bike!", "a/b", "a b", "é", &"x".repeat(65)] {
        let e = check_name(bad).unwrap_err();
        assert!(e.contains("1 to 64 characters of a-z, 0-9, _ and -"), "{e}");
    }
}

#[test]
fn settings_parse_and_every_mistake_names_the_source_and_member() {
    let s = Sources::parse(SOURCES).unwrap();
    let bike = s.get("bike").unwrap();
    assert_eq!(bike.id_field.as_deref(), Some("uuid"));
    assert_eq!(bike.keys.as_deref(), Some(&["bikes".to_owned()][..]));
    assert_eq!(s.get("gps").unwrap().time_format, TimeFormat::EpochSeconds);
    assert!(s.get("other").is_none());
    assert_eq!(s.iter().count(), 3);
    for (bad, says) in [
        ("[1]", "must be a JSON object"),
        ("{not json", "not valid JSON"),
        (r#"{"Bike":{}}"#, "\"Bike\" is not valid"),
        (r#"{"bike":1}"#, "\"bike\" must be an object"),
        (r#"{"bike":{"idfield":"x"}}"#, "unknown setting \"idfield\""),
        (
            r#"{"bike":{"time_format":"ms"}}"#,
            "time_format must be epoch_ms, epoch_s or rfc3339",
        ),
        (r#"{"bike":{"keys":[]}}"#, "keys must be a non-empty array"),
        (r#"{"bike":{"id_field":""}}"#, "id_field must be a non-empty string"),
    ] {
        let e = Sources::parse(bad).unwrap_err();
        assert!(e.contains(says), "{bad}: {e}");
    }
}

#[test]
fn times_are_read_in_the_declared_format_exactly() {
    let read = |f: TimeFormat, t: &str| f.read(&serde_json::from_str::<Box<RawValue>>(t).unwrap());
    assert_eq!(
        read(TimeFormat::EpochSeconds, "1683200000.12"),
        Some(Timestamp(1_683_200_000_120))
    );
    assert_eq!(
        read(TimeFormat::EpochSeconds, "1683200000"),
        Some(Timestamp(1_683_200_000_000))
    );
    assert_eq!(
        read(TimeFormat::EpochSeconds, "1683200000.1239"),
        Some(Timestamp(1_683_200_000_123))
    );
    assert_eq!(
        read(TimeFormat::EpochSeconds, "1.6832e9"),
        Some(Timestamp(1_683_200_000_000))
    );
    assert_eq!(read(TimeFormat::EpochSeconds, "-1.5"), Some(Timestamp(-1500)));
    assert_eq!(
        read(TimeFormat::EpochMillis, "1714566600000"),
        Some(Timestamp(1_714_566_600_000))
    );
    assert_eq!(
        read(TimeFormat::EpochMillis, "1714566600000.7"),
        Some(Timestamp(1_714_566_600_000))
    );
    assert_eq!(
        read(TimeFormat::Rfc3339, r#""2024-05-01T12:30:00.250Z""#),
        Some(Timestamp(1_714_566_600_250))
    );
    for (f, bad) in [
        (TimeFormat::EpochMillis, r#""1714566600000""#),
        (TimeFormat::EpochMillis, "253402300800000"),
        (TimeFormat::EpochSeconds, "99999999999999999999"),
        (TimeFormat::EpochSeconds, "true"),
        (TimeFormat::Rfc3339, "1714566600000"),
        (TimeFormat::Rfc3339, r#""yesterday""#),
    ] {
        assert_eq!(read(f, bad), None, "{bad}");
    }
}

#[test]
fn a_declared_id_and_time_are_taken_from_the_event() {
    let s = Sources::parse(SOURCES).unwrap();
    let bike = s.get("bike").unwrap();
    let text = r#"{"uuid":"3f1c","event":"update","deviceTimestamp":1714566600123,"second":42}"#;
    let m = members(text);
    assert_eq!(bike.id_of(&m).as_deref(), Some("3f1c"));
    assert_eq!(bike.time_of(&m), Some(Timestamp(1_714_566_600_123)));
    let numeric = members(r#"{"uuid":12345}"#);
    assert_eq!(bike.id_of(&numeric).as_deref(), Some("12345"));
    // Absent or unusable: none (the envelope then makes an id and uses the receive time).
    let m = members(r#"{"uuid":"","deviceTimestamp":"soon"}"#);
    assert_eq!((bike.id_of(&m), bike.time_of(&m)), (None, None));
    assert_eq!(Source::default().id_of(&members(r#"{"uuid":"x"}"#)), None);
}

#[test]
fn keys_restrict_a_source_only_when_listed() {
    let s = Sources::parse(SOURCES).unwrap();
    let bike = s.get("bike").unwrap();
    assert!(bike.allows_key(Some("bikes")));
    assert!(!bike.allows_key(Some("web")));
    assert!(!bike.allows_key(None));
    assert!(s.get("gps").unwrap().allows_key(Some("web")));
    assert!(Source::default().allows_key(None));
}

#[test]
fn validation_accepts_any_object_and_names_a_bad_declared_member() {
    let s = Sources::parse(SOURCES).unwrap();
    let limits = Limits::default();
    // No settings: any object is an event.
    let gps = r#"{"ident":"352093081","timestamp":1683200000.12,"position.latitude":52.2,"position.longitude":4.9}"#;
    assert!(validate_event(gps, None, &limits).is_ok());
    assert!(validate_event(gps, s.get("gps"), &limits).is_ok());
    let e = validate_event(r#"{"uuid":"u1"}"#, s.get("bike"), &limits).unwrap();
    assert_eq!(e.id.as_deref(), Some("u1"));

    let v = validate_event(r#"{"timestamp":"2024-05-01"}"#, s.get("gps"), &limits).unwrap_err();
    assert_eq!(
        (v[0].reason, v[0].field.as_str()),
        (Reason::InvalidTimestamp, "timestamp")
    );
    assert!(v[0].message.contains("epoch seconds"), "{}", v[0].message);
    let v = validate_event(r#"{"uuid":{"a":1}}"#, s.get("bike"), &limits).unwrap_err();
    assert_eq!((v[0].reason, v[0].field.as_str()), (Reason::WrongType, "uuid"));
    let long = format!(r#"{{"uuid":"{}"}}"#, "u".repeat(101));
    assert_eq!(
        validate_event(&long, s.get("bike"), &limits).unwrap_err()[0].field,
        "uuid"
    );

    for (text, reason) in [("[1]", Reason::NotAnObject), ("{\"a\":", Reason::InvalidJson)] {
        assert_eq!(
            validate_event(text, None, &limits).unwrap_err()[0].reason,
            reason,
            "{text}"
        );
    }
    let small = Limits::clamped(1 << 20, 10, 500, 2);
    assert_eq!(
        validate_event(r#"{"a":"0123456789"}"#, None, &small).unwrap_err()[0].reason,
        Reason::TooLarge
    );
    assert_eq!(
        validate_event(r#"{"a":[[]]}"#, None, &Limits::clamped(1 << 20, 100, 500, 2)).unwrap_err()[0].reason,
        Reason::TooDeep
    );
}
