//! A PostHog event checked by PostHog's own capture rules (`rust/capture`'s
//! analytics validation, which its v1 route answers `drop` for): an object
//! with an `event` name of 1..=200 characters, a `distinct_id` (at the top,
//! or in `properties`) of 1..=200 characters that is not one of the ids
//! PostHog refuses to merge people on, a `uuid` that is a UUID, a
//! `timestamp` that is a time, and `properties`, `$set` and `$set_once`
//! that are objects. What it reads is what the analyst line carries; the
//! envelope keeps the event as sent.

use serde_json::{Map, Value};

use super::MAX_NAME_CHARS;
use crate::limits::Limits;
use crate::validate::{Reason, Violation};

/// The ids PostHog will not take as a person's (its ingestion's
/// `ILLEGAL_DISTINCT_IDS`), compared without case: a client that sends one
/// has lost its user's real id.
pub const ILLEGAL_DISTINCT_IDS: &[&str] = &[
    "anonymous",
    "guest",
    "distinctid",
    "distinct_id",
    "id",
    "not_authenticated",
    "email",
    "undefined",
    "true",
    "false",
    "null",
    "none",
    "nan",
    "0",
    "[object object]",
];

/// A valid event, read.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Every member as sent.
    pub fields: Map<String, Value>,
    /// `event`.
    pub name: String,
    /// `distinct_id` (a number as its text).
    pub distinct_id: String,
    /// `properties` (empty when none).
    pub properties: Map<String, Value>,
}

impl Event {
    /// A string member, at the top or else in `properties` (`$session_id`
    /// is in `properties` from posthog-js, `session_id` at the top on v1).
    pub fn field(&self, names: &[&str]) -> Option<&str> {
        names.iter().find_map(|n| {
            self.fields
                .get(*n)
                .or_else(|| self.properties.get(*n))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        })
    }

    /// The person properties it sets: `$set` (at the top, or in
    /// `properties`).
    pub fn set(&self) -> Option<&Value> {
        self.fields.get("$set").or_else(|| self.properties.get("$set"))
    }

    /// The library that sent it, `<$lib>/<$lib_version>`.
    pub fn library(&self) -> Option<String> {
        let lib = self.field(&["$lib"])?;
        Some(match self.field(&["$lib_version"]) {
            Some(v) => format!("{lib}/{v}"),
            None => lib.to_owned(),
        })
    }
}

/// Checks one event (its JSON text as the SDK sent it, less its token).
pub fn validate(text: &str, limits: &Limits) -> Result<Event, Vec<Violation>> {
    let fields = crate::validate::object_within(text, limits, "a PostHog event")?;
    let mut violations = Vec::new();
    let properties = match fields.get("properties") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(p)) => p.clone(),
        Some(other) => {
            violations.push(Violation::new(
                Reason::WrongType,
                "properties",
                format!("properties is an object; this one is {other}"),
            ));
            Map::new()
        }
    };
    let name = bounded_string(&fields, "event", &mut violations);
    let distinct_id = match fields.get("distinct_id").or_else(|| properties.get("distinct_id")) {
        None | Some(Value::Null) => {
            violations.push(Violation::new(
                Reason::MissingField,
                "distinct_id",
                "distinct_id is required (at the top of the event or in its properties)",
            ));
            None
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(other) => {
            violations.push(Violation::new(
                Reason::WrongType,
                "distinct_id",
                format!("distinct_id is a string (or a number); this one is {other}"),
            ));
            None
        }
    };
    if let Some(distinct_id) = &distinct_id {
        check_bounds("distinct_id", distinct_id, &mut violations);
        let trimmed = distinct_id.trim();
        if !trimmed.is_empty() && ILLEGAL_DISTINCT_IDS.iter().any(|i| i.eq_ignore_ascii_case(trimmed)) {
            violations.push(Violation::new(
                Reason::IllegalId,
                "distinct_id",
                format!(
                    "distinct_id {trimmed:?} is one PostHog refuses as a person's id (the client lost its user's id)"
                ),
            ));
        }
    }
    match fields.get("uuid") {
        None | Some(Value::Null) => {}
        Some(Value::String(u)) if u.is_empty() || uuid::Uuid::try_parse(u).is_ok() => {}
        Some(other) => violations.push(Violation::new(
            Reason::WrongType,
            "uuid",
            format!("uuid is a UUID; this one is {other}"),
        )),
    }
    match fields.get("timestamp") {
        None | Some(Value::Null) => {}
        Some(v) if crate::event::parse_client_time(v).is_some() => {}
        Some(other) => violations.push(Violation::new(
            Reason::InvalidTimestamp,
            "timestamp",
            format!("timestamp is an ISO 8601 (RFC 3339) time; this one is {other}"),
        )),
    }
    for name in ["$set", "$set_once"] {
        for (place, value) in [("", fields.get(name)), ("properties.", properties.get(name))] {
            if let Some(v) = value
                && !v.is_object()
                && !v.is_null()
            {
                violations.push(Violation::new(
                    Reason::WrongType,
                    &format!("{place}{name}"),
                    format!("{place}{name} is an object of person properties; this one is {v}"),
                ));
            }
        }
    }
    if !violations.is_empty() {
        return Err(violations);
    }
    Ok(Event {
        fields,
        name,
        distinct_id: distinct_id.unwrap_or_default(),
        properties,
    })
}

fn bounded_string(fields: &Map<String, Value>, name: &str, violations: &mut Vec<Violation>) -> String {
    match fields.get(name) {
        None | Some(Value::Null) => {
            violations.push(Violation::new(
                Reason::MissingField,
                name,
                format!("{name} is required"),
            ));
            String::new()
        }
        Some(Value::String(s)) => {
            check_bounds(name, s, violations);
            s.clone()
        }
        Some(other) => {
            violations.push(Violation::new(
                Reason::WrongType,
                name,
                format!("{name} is a string; this one is {other}"),
            ));
            String::new()
        }
    }
}

fn check_bounds(name: &str, value: &str, violations: &mut Vec<Violation>) {
    if value.trim().is_empty() {
        violations.push(Violation::new(Reason::Empty, name, format!("{name} is empty")));
    } else if value.chars().count() > MAX_NAME_CHARS {
        violations.push(Violation::new(
            Reason::TooLong,
            name,
            format!(
                "{name} is {} characters; at most {MAX_NAME_CHARS} (PostHog's limit)",
                value.chars().count()
            ),
        ));
    }
}
