//! An Iceberg row: an event's analyst line typed as its dialect's Iceberg
//! table declares the columns (`edgehose_shared::table`), with the envelope
//! it came in kept whole in the `envelope` column.
//!
//! Firehose's Iceberg destination reads one JSON object a record and maps
//! its top-level members to columns by name; it takes a `timestamptz` as
//! microseconds since the epoch
//! (<https://docs.aws.amazon.com/firehose/latest/dev/apache-iceberg-destination.html>),
//! and a `string` column holds an object's JSON text. So the row is the
//! line with its times as numbers, its objects as text, `key_id` always
//! present (empty when the deployment has no keys: it is half of the unique
//! key, which may not be null), and the envelope.

use edgehose_shared::table::{Column, column_named};
use edgehose_shared::timestamp::Timestamp;
use serde_json::{Map, Value};

/// The Iceberg row of `line` (an analyst line's JSON) for the table of
/// `dialect` (`v1`, `segment`, `source`), with `envelope` (the line as the
/// edge sent it).
pub fn row(line: &[u8], dialect: &str, envelope: &str) -> Vec<u8> {
    let members: Map<String, Value> = serde_json::from_slice(line).unwrap_or_default();
    let mut out = Map::with_capacity(members.len() + 2);
    for (name, value) in members {
        let column = column_named(&name).filter(|c| c.in_iceberg_table_of(dialect));
        // Every member of every line is a column of its table (a test holds
        // the two together); one that is not would fail Firehose's whole
        // record, so it is left out rather than sent.
        debug_assert!(column.is_some(), "{name} is no column of the {dialect} Iceberg table");
        let Some(column) = column else { continue };
        out.insert(name, typed(column, value));
    }
    out.entry("key_id").or_insert_with(|| Value::String(String::new()));
    out.insert("envelope".to_owned(), Value::String(envelope.to_owned()));
    serde_json::to_vec(&out).unwrap_or_default()
}

/// `value` as the column's Iceberg type takes it.
fn typed(column: &Column, value: Value) -> Value {
    match (column.iceberg_type, value) {
        ("timestamptz", Value::String(text)) => match Timestamp::parse_rfc3339(&text) {
            Some(t) => Value::from(t.0.saturating_mul(1000)),
            None => Value::String(text),
        },
        ("string", v @ Value::String(_)) => v,
        ("string", Value::Null) => Value::Null,
        ("string", other) => Value::String(other.to_string()),
        (_, v) => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_become_microseconds_objects_text_and_the_envelope_is_kept() {
        let line = br#"{"id":"m1","event":"click","event_time":"2024-05-01T12:30:00.250Z","received_at":"2024-05-01T12:30:01.000Z","asn":3320,"label":{"lane":"limited"},"properties":{"price":19.99}}"#;
        let env = r#"{"v":1,"id":"m1"}"#;
        let row: Value = serde_json::from_slice(&row(line, "v1", env)).unwrap();
        assert_eq!(row["event_time"], 1_714_566_600_250_000_i64);
        assert_eq!(row["received_at"], 1_714_566_601_000_000_i64);
        assert_eq!(row["asn"], 3320);
        assert_eq!(row["label"], r#"{"lane":"limited"}"#);
        assert_eq!(row["properties"], r#"{"price":19.99}"#);
        assert_eq!(row["key_id"], "", "half of the unique key is never missing");
        assert_eq!(row["envelope"], env);
    }
}
