//! Strict validation of one event against schema v1 (see [`crate::event`]):
//! the regional side's check before anything reaches the destination.
//!
//! Every problem is reported, not just the first, each as a [`Violation`]
//! with a machine-readable [`Reason`], the field it concerns, and a message
//! that names the value and the limit.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;
use serde::de;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::event::{
    Event, FIELDS, MAX_EVENT_NAME_CHARS, MAX_ID_CHARS, MAX_MESSAGE_ID_CHARS, MAX_TARGET_CHARS, MAX_URL_CHARS,
    parse_client_time,
};
use crate::json;
use crate::limits::Limits;

/// Why an event failed validation, as a stable machine-readable code
/// (written by [`Reason::as_str`], the one place the codes are spelled;
/// JSON outputs serialize through it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// The text is not JSON.
    InvalidJson,
    /// The JSON is not an object.
    NotAnObject,
    /// The event is over `max_event_bytes`.
    TooLarge,
    /// The event nests deeper than `max_depth`.
    TooDeep,
    /// A required field is absent.
    MissingField,
    /// A field has the wrong JSON type.
    WrongType,
    /// A string field is empty where a value is required.
    Empty,
    /// A string field is over its length limit.
    TooLong,
    /// A time is neither RFC 3339 nor epoch milliseconds.
    InvalidTimestamp,
    /// A URL field is not an absolute URL.
    InvalidUrl,
    /// A top-level field schema v1 does not define.
    UnknownField,
    /// The same top-level field appears twice.
    DuplicateField,
    /// The edge accepted a payload it could not decode (kept as a quarantine record).
    Quarantined,
    /// A line that is not an edgehose envelope reached the regional side.
    NotAnEnvelope,
    /// The event breaks the JSON Schema its deployment registered for its name.
    SchemaViolation,
    /// A schema v1 or Segment event named like a declared any-JSON source,
    /// whose name (its partition and schema) the source owns.
    SourceName,
    /// A Segment message whose `type` is not one of the spec's calls.
    UnknownType,
    /// A bot signal fired on its request and its key's owner quarantines
    /// such events (`BOT_ROUTES`; the label says which signal).
    Bot,
    /// A value in an encoding that does not decode (a Snowplow `ue_px` or
    /// `cx` that is not base64url).
    InvalidEncoding,
    /// A self-describing JSON whose schema is not a well-formed Iglu URI
    /// (`iglu:vendor/name/format/1-0-0`), or the wrong wrapper.
    InvalidSchemaUri,
    /// An id the dialect refuses as a person's (PostHog's illegal
    /// `distinct_id`s: `anonymous`, `null`, `0`, …).
    IllegalId,
}

impl Reason {
    /// The code as written in outputs (`missing_field`, `too_long`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::NotAnObject => "not_an_object",
            Self::TooLarge => "too_large",
            Self::TooDeep => "too_deep",
            Self::MissingField => "missing_field",
            Self::WrongType => "wrong_type",
            Self::Empty => "empty",
            Self::TooLong => "too_long",
            Self::InvalidTimestamp => "invalid_timestamp",
            Self::InvalidUrl => "invalid_url",
            Self::UnknownField => "unknown_field",
            Self::DuplicateField => "duplicate_field",
            Self::Quarantined => "quarantined",
            Self::NotAnEnvelope => "not_an_envelope",
            Self::SchemaViolation => "schema_violation",
            Self::SourceName => "source_name",
            Self::UnknownType => "unknown_type",
            Self::Bot => "bot",
            Self::InvalidEncoding => "invalid_encoding",
            Self::InvalidSchemaUri => "invalid_schema_uri",
            Self::IllegalId => "illegal_id",
        }
    }
}

impl Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event's members, if it is a JSON object within `MAX_EVENT_BYTES`;
/// else the one violation that says why (`what`: "a Snowplow event").
pub fn object_within(
    text: &str,
    limits: &crate::limits::Limits,
    what: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, Vec<Violation>> {
    if text.len() > limits.max_event_bytes {
        return Err(vec![Violation::new(
            Reason::TooLarge,
            "",
            format!(
                "the event is {} bytes; at most {} (MAX_EVENT_BYTES)",
                text.len(),
                limits.max_event_bytes
            ),
        )]);
    }
    match serde_json::from_str(text) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        Ok(_) => Err(vec![Violation::new(
            Reason::NotAnObject,
            "",
            format!("{what} is a JSON object"),
        )]),
        Err(e) => Err(vec![Violation::new(Reason::InvalidJson, "", e.to_string())]),
    }
}

/// One problem with one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// What kind of problem.
    pub reason: Reason,
    /// The field's path (`event`, `properties`), or empty for the whole event.
    pub field: String,
    /// For people: the value and the limit.
    pub message: String,
}

impl Violation {
    /// A violation of `reason` at `field` (empty for the whole event).
    pub fn new(reason: Reason, field: &str, message: impl Into<String>) -> Self {
        Self {
            reason,
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.reason, self.message)
        } else {
            write!(f, "{} at `{}`: {}", self.reason, self.field, self.message)
        }
    }
}

/// Validates one event's JSON text; returns the typed event or every violation.
pub fn validate_event<'a>(text: &'a str, limits: &Limits) -> Result<Event<'a>, Vec<Violation>> {
    check_size_and_depth(text, limits)?;
    let entries = members(text)?.0;

    let mut problems = Vec::new();
    let mut seen: [Option<&'a RawValue>; FIELDS.len()] = [None; FIELDS.len()];
    for (key, raw) in entries {
        let key = key.as_ref();
        match FIELDS.iter().position(|f| *f == key) {
            Some(i) if seen[i].is_some() => problems.push(Violation::new(
                Reason::DuplicateField,
                key,
                format!("`{key}` appears more than once"),
            )),
            Some(i) => seen[i] = Some(raw),
            None => problems.push(Violation::new(
                Reason::UnknownField,
                key,
                format!("`{key}` is not a schema v1 field; put custom data in `properties`"),
            )),
        }
    }
    let [
        event,
        ts,
        sent_at,
        message_id,
        anonymous_id,
        user_id,
        url,
        referrer,
        target,
        properties,
    ] = seen;

    let mut out = Event {
        event: Cow::Borrowed(""),
        ts: None,
        sent_at: None,
        message_id: None,
        anonymous_id: None,
        user_id: None,
        url: None,
        referrer: None,
        target: None,
        properties: None,
    };
    match event.map(|r| string_field(r, "event", 1, MAX_EVENT_NAME_CHARS, &mut problems)) {
        None | Some(Ok(None)) => problems.push(Violation::new(
            Reason::MissingField,
            "event",
            "`event` (the event name) is required",
        )),
        Some(Ok(Some(name))) => out.event = name,
        Some(Err(())) => {}
    }
    out.message_id = opt_string(message_id, "message_id", 1, MAX_MESSAGE_ID_CHARS, &mut problems);
    out.anonymous_id = opt_string(anonymous_id, "anonymous_id", 1, MAX_ID_CHARS, &mut problems);
    out.user_id = opt_string(user_id, "user_id", 1, MAX_ID_CHARS, &mut problems);
    out.target = opt_string(target, "target", 0, MAX_TARGET_CHARS, &mut problems);
    out.url = opt_url(url, "url", false, &mut problems);
    out.referrer = opt_url(referrer, "referrer", true, &mut problems);
    out.ts = opt_time(ts, "ts", &mut problems);
    out.sent_at = opt_time(sent_at, "sent_at", &mut problems);
    if let Some(raw) = properties {
        // Already valid JSON (the whole event parsed): its first byte says its type.
        match raw.get().as_bytes().first() {
            Some(b'{') => out.properties = Some(raw),
            Some(b'n') => {}
            _ => problems.push(Violation::new(
                Reason::WrongType,
                "properties",
                format!("`properties` must be an object, not {}", json::kind(raw.get())),
            )),
        }
    }
    if problems.is_empty() { Ok(out) } else { Err(problems) }
}

/// The checks every dialect makes first: the event's size and nesting depth.
pub(crate) fn check_size_and_depth(text: &str, limits: &Limits) -> Result<(), Vec<Violation>> {
    if text.len() > limits.max_event_bytes {
        return Err(vec![Violation::new(
            Reason::TooLarge,
            "",
            format!(
                "the event is {} bytes; max_event_bytes is {}",
                text.len(),
                limits.max_event_bytes
            ),
        )]);
    }
    let depth = json::max_depth(text.as_bytes());
    if depth > limits.max_depth {
        return Err(vec![Violation::new(
            Reason::TooDeep,
            "",
            format!("the event nests {depth} levels deep; max_depth is {}", limits.max_depth),
        )]);
    }
    Ok(())
}

/// Reads an event's top-level members; anything but an object is the
/// whole event's violation (`not_an_object` or `invalid_json`).
pub(crate) fn members(text: &str) -> Result<json::Members<'_>, Vec<Violation>> {
    json::Members::parse(text).map_err(|e| {
        if serde_json::from_str::<de::IgnoredAny>(text).is_ok() {
            vec![Violation::new(
                Reason::NotAnObject,
                "",
                "the event is not a JSON object",
            )]
        } else {
            vec![Violation::new(Reason::InvalidJson, "", e.to_string())]
        }
    })
}

/// A string field: `Ok(None)` for null, `Err(())` after recording a violation.
pub(crate) fn string_field<'a>(
    raw: &'a RawValue,
    field: &str,
    min: usize,
    max: usize,
    problems: &mut Vec<Violation>,
) -> Result<Option<Cow<'a, str>>, ()> {
    let text = raw.get();
    if text == "null" {
        return Ok(None);
    }
    if !text.starts_with('"') {
        problems.push(Violation::new(
            Reason::WrongType,
            field,
            format!("`{field}` must be a string, not {}", json::kind(text)),
        ));
        return Err(());
    }
    // Valid JSON already (the whole event parsed): without a backslash the
    // string is exactly what lies between its quotes.
    let s: Cow<'a, str> = match text.get(1..text.len() - 1) {
        Some(inner) if !inner.contains('\\') => Cow::Borrowed(inner),
        _ => match serde_json::from_str::<String>(text) {
            Ok(s) => Cow::Owned(s),
            Err(e) => {
                problems.push(Violation::new(Reason::InvalidJson, field, e.to_string()));
                return Err(());
            }
        },
    };
    let chars = if s.is_ascii() { s.len() } else { s.chars().count() };
    if chars < min {
        problems.push(Violation::new(
            Reason::Empty,
            field,
            format!("`{field}` must not be empty"),
        ));
        return Err(());
    }
    if chars > max {
        problems.push(Violation::new(
            Reason::TooLong,
            field,
            format!("`{field}` is {chars} characters; the limit is {max}"),
        ));
        return Err(());
    }
    Ok(Some(s))
}

fn opt_string<'a>(
    raw: Option<&'a RawValue>,
    field: &str,
    min: usize,
    max: usize,
    problems: &mut Vec<Violation>,
) -> Option<Cow<'a, str>> {
    raw.and_then(|r| string_field(r, field, min, max, problems).ok().flatten())
}

fn opt_url<'a>(
    raw: Option<&'a RawValue>,
    field: &str,
    allow_empty: bool,
    problems: &mut Vec<Violation>,
) -> Option<Cow<'a, str>> {
    let s = opt_string(raw, field, 0, MAX_URL_CHARS, problems)?;
    if (s.is_empty() && allow_empty) || has_scheme(&s) {
        Some(s)
    } else {
        problems.push(Violation::new(
            Reason::InvalidUrl,
            field,
            format!(
                "`{field}` must be an absolute URL with a scheme (https://…), got {:?}",
                truncate(&s, 80)
            ),
        ));
        None
    }
}

/// RFC 3986 §3.1: `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )` then `:`.
fn has_scheme(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
}

pub(crate) fn opt_time(
    raw: Option<&RawValue>,
    field: &str,
    problems: &mut Vec<Violation>,
) -> Option<crate::timestamp::Timestamp> {
    let text = raw?.get();
    // Whole epoch milliseconds, the common case, read without building a
    // JSON value (the text is valid JSON, so digits and a sign are an
    // integer; except `-0`, which serde_json reads as the float -0.0).
    let whole = text.bytes().all(|b| b.is_ascii_digit() || b == b'-') && !text.starts_with("-0");
    let parsed = match text.parse::<i64>() {
        Ok(ms) if whole => parse_client_time(&Value::from(ms)),
        _ => {
            let value: Value = match serde_json::from_str(text) {
                Ok(v) => v,
                Err(e) => {
                    problems.push(Violation::new(Reason::InvalidJson, field, e.to_string()));
                    return None;
                }
            };
            if value.is_null() {
                return None;
            }
            parse_client_time(&value)
        }
    };
    if parsed.is_none() {
        problems.push(Violation::new(
            Reason::InvalidTimestamp,
            field,
            format!(
                "`{field}` must be an RFC 3339 time (2024-05-01T12:30:00Z) or whole epoch milliseconds, got {}",
                truncate(text, 80)
            ),
        ));
    }
    parsed
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<Event<'_>, Vec<Violation>> {
        validate_event(text, &Limits::default())
    }

    fn reasons(text: &str) -> Vec<(Reason, String)> {
        check(text)
            .unwrap_err()
            .into_iter()
            .map(|v| (v.reason, v.field))
            .collect()
    }

    #[test]
    fn a_full_event_is_valid_and_typed() {
        let e = check(
            r##"{"event":"click","ts":"2024-05-01T12:30:00Z","sent_at":1714566601000,"message_id":"m1",
                "anonymous_id":"a","user_id":"u","url":"https://example.com/p?q=1","referrer":"",
                "target":"#buy","properties":{"price":9.5,"tags":["a"]}}"##,
        )
        .unwrap();
        assert_eq!(e.event, "click");
        assert_eq!(e.sent_at.unwrap().as_millis(), 1_714_566_601_000);
        assert_eq!(e.referrer.as_deref(), Some(""));
        let props: serde_json::Value = serde_json::from_str(e.properties.unwrap().get()).unwrap();
        assert_eq!(props["price"], 9.5);
    }

    #[test]
    fn nulls_count_as_absent() {
        let e = check(r#"{"event":"a","user_id":null,"ts":null,"properties":null}"#).unwrap();
        assert_eq!((e.user_id, e.ts), (None, None));
        assert!(e.properties.is_none());
    }

    #[test]
    fn the_event_name_is_required_and_bounded() {
        assert_eq!(
            reasons(r#"{"url":"https://x"}"#),
            [(Reason::MissingField, "event".into())]
        );
        assert_eq!(reasons(r#"{"event":null}"#), [(Reason::MissingField, "event".into())]);
        assert_eq!(reasons(r#"{"event":""}"#), [(Reason::Empty, "event".into())]);
        assert_eq!(reasons(r#"{"event":7}"#), [(Reason::WrongType, "event".into())]);
        let at = format!(r#"{{"event":"{}"}}"#, "é".repeat(128));
        assert!(check(&at).is_ok());
        let over = format!(r#"{{"event":"{}"}}"#, "é".repeat(129));
        let v = check(&over).unwrap_err();
        assert_eq!(v[0].reason, Reason::TooLong);
        assert_eq!(v[0].message, "`event` is 129 characters; the limit is 128");
    }

    #[test]
    fn message_id_is_bounded_at_100_characters() {
        assert!(check(&format!(r#"{{"event":"a","message_id":"{}"}}"#, "m".repeat(100))).is_ok());
        assert_eq!(
            reasons(&format!(r#"{{"event":"a","message_id":"{}"}}"#, "m".repeat(101))),
            [(Reason::TooLong, "message_id".into())]
        );
    }

    #[test]
    fn every_problem_is_reported_not_only_the_first() {
        let got =
            reasons(r#"{"event":"a","ts":"soon","url":"/relative","colour":"red","properties":[1],"user_id":""}"#);
        assert_eq!(
            got,
            [
                (Reason::UnknownField, "colour".into()),
                (Reason::Empty, "user_id".into()),
                (Reason::InvalidUrl, "url".into()),
                (Reason::InvalidTimestamp, "ts".into()),
                (Reason::WrongType, "properties".into()),
            ]
        );
    }

    #[test]
    fn escaped_strings_and_keys_read_the_same_as_plain_ones() {
        // Plain strings borrow from the text; escaped ones are unescaped.
        let plain = check(r#"{"event":"click","user_id":"u\"1"}"#).unwrap();
        assert!(matches!(plain.event, Cow::Borrowed("click")));
        assert_eq!(plain.user_id.as_deref(), Some("u\"1"));
        let escaped = check(r#"{"\u0065vent":"cl\u0069ck","message_id":"\u00e9"}"#).unwrap();
        assert_eq!(escaped.event, "click");
        assert_eq!(escaped.message_id.as_deref(), Some("é"));
        // An escaped key is the same field: a duplicate, not an unknown one.
        assert_eq!(
            reasons(r#"{"event":"a","\u0065vent":"b"}"#),
            [(Reason::DuplicateField, "event".into())]
        );
        // Length limits count characters after unescaping.
        let at = format!(r#"{{"event":"{}"}}"#, "\\u00e9".repeat(128));
        assert_eq!(check(&at).unwrap().event.chars().count(), 128);
        let over = format!(r#"{{"event":"{}"}}"#, "\\n".repeat(129));
        assert_eq!(reasons(&over), [(Reason::TooLong, "event".into())]);
    }

    #[test]
    fn times_in_milliseconds_are_bounded_and_other_numbers_rejected() {
        let ms = |t: &str| check(&format!(r#"{{"event":"a","ts":{t}}}"#)).map(|e| e.ts.map(|t| t.as_millis()));
        assert_eq!(ms("1714566600000").unwrap(), Some(1_714_566_600_000));
        assert_eq!(ms("-5").unwrap(), Some(-5));
        assert_eq!(ms("0").unwrap(), Some(0));
        for bad in [
            "253402300800000",
            "-62135596800001",
            "99999999999999999999",
            "-0",
            "1.5",
            "1e3",
            "true",
        ] {
            let v = ms(bad).unwrap_err();
            assert_eq!(
                (v[0].reason, v[0].field.as_str()),
                (Reason::InvalidTimestamp, "ts"),
                "{bad}"
            );
        }
    }

    #[test]
    fn duplicate_fields_are_caught() {
        assert_eq!(
            reasons(r#"{"event":"a","event":"b"}"#),
            [(Reason::DuplicateField, "event".into())]
        );
    }

    #[test]
    fn non_objects_bad_json_size_and_depth_are_whole_event_reasons() {
        for (text, reason) in [
            ("[1]", Reason::NotAnObject),
            ("42", Reason::NotAnObject),
            ("\"s\"", Reason::NotAnObject),
            ("{\"event\":", Reason::InvalidJson),
        ] {
            assert_eq!(reasons(text), [(reason, String::new())], "{text}");
        }
        let limits = Limits::clamped(1 << 20, 20, 500, 3);
        let v = validate_event(r#"{"event":"abcdefghijklmn"}"#, &limits).unwrap_err();
        assert_eq!(
            (v[0].reason, v[0].message.as_str()),
            (Reason::TooLarge, "the event is 26 bytes; max_event_bytes is 20")
        );
        let v = validate_event(r#"{"p":[[[]]]}"#, &limits).unwrap_err();
        assert_eq!(v[0].reason, Reason::TooDeep);
    }

    #[test]
    fn violations_read_as_sentences_and_serialize_with_snake_case_reasons() {
        let v = check(r#"{"event":"a","ts":true}"#).unwrap_err();
        assert!(
            v[0].to_string()
                .starts_with("invalid_timestamp at `ts`: `ts` must be an RFC 3339 time")
        );
        assert_eq!(serde_json::to_value(&v[0]).unwrap()["reason"], "invalid_timestamp");
    }

    #[test]
    fn urls_need_a_scheme() {
        for ok in [
            "https://example.com",
            "http://x/y",
            "android-app://com.example",
            "mailto:a@b",
        ] {
            assert!(has_scheme(ok), "{ok}");
        }
        for bad in ["example.com", "/path", "://x", "1http://x", "https:", ""] {
            assert!(!has_scheme(bad), "{bad}");
        }
    }
}
