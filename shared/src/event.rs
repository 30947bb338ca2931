//! Event schema v1: what a browser or device sends for one click, page view or
//! custom event.
//!
//! | field | type | limit | meaning |
//! |---|---|---|---|
//! | `event` | string, **required** | 1..=128 characters | the event's name: `click`, `page_view`, `ride_sample` |
//! | `ts` | RFC 3339 string or epoch milliseconds | years 1..=9999 | when it happened, by the client's clock |
//! | `sent_at` | RFC 3339 string or epoch milliseconds | years 1..=9999 | when the client sent it, by the same clock; with `ts` it corrects client clock skew |
//! | `message_id` | string | 1..=100 characters | the client's unique id for the event, for downstream de-duplication |
//! | `anonymous_id` | string | 1..=256 characters | a device or browser id |
//! | `user_id` | string | 1..=256 characters | a signed-in user's id |
//! | `url` | string | ≤ 2,048 characters, absolute (`scheme:`) | the page or screen |
//! | `referrer` | string | ≤ 2,048 characters, absolute or empty | where the user came from |
//! | `target` | string | ≤ 512 characters | what was clicked (a CSS selector, an element id) |
//! | `properties` | object | any keys; depth and size bounded by the event limits | free-form attributes |
//!
//! No other top-level field is accepted by [`crate::validate`]: put custom data
//! in `properties`. The whole event is also bounded by
//! [`crate::limits::MAX_EVENT_BYTES`] and [`crate::limits::MAX_JSON_DEPTH`].

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::timestamp::Timestamp;

/// Longest event name, in characters.
pub const MAX_EVENT_NAME_CHARS: usize = 128;
/// Longest `message_id`, in characters.
pub const MAX_MESSAGE_ID_CHARS: usize = 100;
/// Longest `anonymous_id` or `user_id`, in characters.
pub const MAX_ID_CHARS: usize = 256;
/// Longest `url` or `referrer`, in characters (what browsers and CDNs handle
/// everywhere: <https://www.rfc-editor.org/rfc/rfc9110#section-4.1>).
pub const MAX_URL_CHARS: usize = 2048;
/// Longest `target`, in characters.
pub const MAX_TARGET_CHARS: usize = 512;

/// The names of every field schema v1 knows, in documentation order.
pub const FIELDS: [&str; 10] = [
    "event",
    "ts",
    "sent_at",
    "message_id",
    "anonymous_id",
    "user_id",
    "url",
    "referrer",
    "target",
    "properties",
];

/// One valid schema-v1 event, as [`crate::validate::validate_event`] returns it.
///
/// [`crate::validate::validate_event`] borrows its strings from the event's
/// JSON text where they hold no escapes, and `properties` is that text's own
/// slice, so validating allocates little. (Read with serde, the strings are
/// owned: serde only borrows a bare `Cow<str>`.)
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event<'a> {
    /// The event's name (1..=128 characters).
    #[serde(borrow)]
    pub event: Cow<'a, str>,
    /// When it happened, by the client's clock.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_time")]
    pub ts: Option<Timestamp>,
    /// When the client sent it, by the client's clock.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_time")]
    pub sent_at: Option<Timestamp>,
    /// The client's id for this event (1..=100 characters).
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<Cow<'a, str>>,
    /// A device or browser id.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub anonymous_id: Option<Cow<'a, str>>,
    /// A signed-in user's id.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Cow<'a, str>>,
    /// The page or screen.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub url: Option<Cow<'a, str>>,
    /// Where the user came from.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<Cow<'a, str>>,
    /// What was clicked.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub target: Option<Cow<'a, str>>,
    /// Free-form attributes: a JSON object, kept as its exact text.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub properties: Option<&'a RawValue>,
}

/// Reads a client time: an RFC 3339 string or a whole number of epoch
/// milliseconds. Anything else is `None`.
pub fn parse_client_time(v: &Value) -> Option<Timestamp> {
    match v {
        Value::String(s) => Timestamp::parse_rfc3339(s),
        Value::Number(n) => n.as_i64().and_then(Timestamp::from_millis_in_range),
        _ => None,
    }
}

/// Serde adapter: client times are written as RFC 3339 and read in either form.
mod opt_time {
    use serde::{Deserialize, Deserializer, Serializer};
    use serde_json::Value;

    use crate::timestamp::Timestamp;

    pub fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&t.to_rfc3339()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
        let v = Option::<Value>::deserialize(d)?;
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(v) => super::parse_client_time(&v)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom("expected an RFC 3339 time or epoch milliseconds")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_times_are_read_from_strings_and_milliseconds() {
        assert_eq!(
            parse_client_time(&Value::from("2024-05-01T12:30:00Z")),
            Some(Timestamp(1_714_566_600_000))
        );
        assert_eq!(
            parse_client_time(&Value::from(1_714_566_600_000i64)),
            Some(Timestamp(1_714_566_600_000))
        );
        assert_eq!(parse_client_time(&Value::from(1.5)), None);
        assert_eq!(parse_client_time(&Value::from("yesterday")), None);
        assert_eq!(parse_client_time(&Value::Bool(true)), None);
    }

    #[test]
    fn an_event_round_trips_through_json() {
        let text =
            r#"{"event":"click","ts":"2024-05-01T12:30:00.000Z","url":"https://example.com/","properties":{"x":1}}"#;
        let e: Event = serde_json::from_str(text).unwrap();
        assert_eq!(e.ts, Some(Timestamp(1_714_566_600_000)));
        assert_eq!(serde_json::to_string(&e).unwrap(), text);
    }
}
