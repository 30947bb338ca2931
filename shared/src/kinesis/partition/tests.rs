use super::*;
use crate::clock::SeededRandom;
use crate::envelope::{Dialect, EdgeMeta, RequestContext, wrap_event};
use crate::timestamp::Timestamp;

fn line(event: &str, received_ms: i64) -> String {
    let edge = EdgeMeta::default();
    let ctx = RequestContext {
        received_at: Timestamp::from_millis(received_ms),
        key_id: None,
        edge: &edge,
        content_type: None,
        dialect: Dialect::V1,
    };
    wrap_event(&ctx, event, &SeededRandom::new(7))
}

#[test]
fn settings_read_each_strategy_and_name_the_mistake() {
    assert_eq!(PartitionKeys::parse("random"), Ok(PartitionKeys::Random));
    assert_eq!(
        PartitionKeys::parse("field:properties.classId"),
        Ok(PartitionKeys::Field(vec!["properties".into(), "classId".into()]))
    );
    assert_eq!(
        PartitionKeys::parse(" time:60 "),
        Ok(PartitionKeys::TimeBucket { seconds: 60 })
    );
    for bad in ["", "field:", "field:a..b", "time:0", "time:-5", "time:x", "shard"] {
        let e = PartitionKeys::parse(bad).unwrap_err();
        assert!(e.contains("invalid"), "{bad}: {e}");
    }
    let s = Settings::new(|n: &str| (n == SETTING).then(|| "time:abc".to_owned()));
    let e = PartitionKeys::from_setting(&s, SETTING).unwrap_err();
    assert!(e.to_string().starts_with("setting KINESIS_PARTITION_KEY = "), "{e}");
    assert_eq!(
        PartitionKeys::from_setting(&Settings::new(|_: &str| None), SETTING),
        Ok(PartitionKeys::Random)
    );
}

#[test]
fn a_field_key_is_the_events_value_at_its_path() {
    let by_class = PartitionKeys::parse("field:properties.classId").unwrap();
    let ride = line(
        r#"{"event":"sample","properties":{"classId":"spin-42","watts":180}}"#,
        0,
    );
    assert_eq!(by_class.key_of(&ride).as_deref(), Some("spin-42"));
    let numeric = line(r#"{"event":"sample","properties":{"classId":42}}"#, 0);
    assert_eq!(by_class.key_of(&numeric).as_deref(), Some("42"));
    let escaped = line(r#"{"event":"sample","properties":{"classId":"a\"b"}}"#, 0);
    assert_eq!(by_class.key_of(&escaped).as_deref(), Some("a\"b"));
    for none in [
        r#"{"event":"sample"}"#,
        r#"{"event":"sample","properties":{"classId":""}}"#,
        r#"{"event":"sample","properties":{"classId":null}}"#,
        r#"{"event":"sample","properties":{"classId":{"id":1}}}"#,
        r#"{"event":"sample","properties":"flat"}"#,
    ] {
        assert_eq!(by_class.key_of(&line(none, 0)), None, "{none}");
    }
    assert_eq!(by_class.key_of("not an envelope"), None);
    let long = line(&format!(r#"{{"anonymous_id":"{}"}}"#, "é".repeat(300)), 0);
    let key = PartitionKeys::parse("field:anonymous_id")
        .unwrap()
        .key_of(&long)
        .unwrap();
    assert_eq!(key.chars().count(), MAX_PARTITION_KEY_CHARS);
}

#[test]
fn a_time_key_is_the_start_of_its_bucket() {
    let minute = PartitionKeys::TimeBucket { seconds: 60 };
    let at = 1_714_566_659_999; // 12:30:59.999
    assert_eq!(
        minute.key_of(&line(r#"{"event":"x"}"#, at)).as_deref(),
        Some("1714566600")
    );
    assert_eq!(
        minute.key_of(&line(r#"{"event":"x"}"#, at + 1)).as_deref(),
        Some("1714566660")
    );
    assert_eq!(PartitionKeys::Random.key_of(&line(r#"{"event":"x"}"#, at)), None);
}

#[test]
fn random_keys_are_128_bits_of_hex() {
    let random = SeededRandom::new(1);
    let (a, b) = (random_key(&random), random_key(&random));
    assert_eq!(a.len(), 32);
    assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a, b);
}
