//! A Snowplow event checked by the tracker protocol
//! (<https://docs.snowplow.io/docs/sources/trackers/snowplow-tracker-protocol/>)
//! and Snowplow's `payload_data` schema: a map of strings with a known `e`,
//! an `eid`, a known `p` and `tv`; a self-describing event (`ue_pr`, or
//! `ue_px` in base64url) and its entities (`co`, or `cx`) decoded and their
//! schema references well formed. What it decodes is what the analyst line
//! carries; the envelope keeps the event as sent.

use serde_json::{Map, Value};

use crate::limits::Limits;
use crate::validate::{Reason, Violation};

/// The event types (`e`) Snowplow's enrichment accepts.
pub const EVENT_TYPES: &[(&str, &str)] = &[
    ("pv", "page_view"),
    ("pp", "page_ping"),
    ("se", "struct"),
    ("ue", "unstruct"),
    ("tr", "transaction"),
    ("ti", "transaction_item"),
    ("ad", "ad_impression"),
    ("ev", "struct"),
];

/// The platforms (`p`) Snowplow's enrichment accepts.
pub const PLATFORMS: &[&str] = &["web", "iot", "app", "mob", "pc", "cnsl", "tv", "srv", "headset"];

/// The wrapper schema of a self-describing event.
pub const UNSTRUCT_EVENT_SCHEMA: &str = "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0";
/// The wrapper schema of an event's entities.
pub const CONTEXTS_SCHEMA: &str = "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-";

/// A valid event, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Every field as sent (all strings).
    pub fields: Map<String, Value>,
    /// The event's name: the self-describing event's schema name, the
    /// structured event's action, else the type's (`page_view`, …).
    pub name: String,
    /// The `e` code.
    pub kind: String,
    /// A self-describing event's `{"schema", "data"}`.
    pub self_describing: Option<Value>,
    /// The entities (`co`/`cx`): their `data` array.
    pub entities: Option<Value>,
}

impl Event {
    /// A field's value.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).and_then(Value::as_str).filter(|s| !s.is_empty())
    }
}

/// Checks one event (its JSON text as the tracker sent it).
pub fn validate(text: &str, limits: &Limits) -> Result<Event, Vec<Violation>> {
    let fields = crate::validate::object_within(text, limits, "a Snowplow event")?;
    let mut violations = Vec::new();
    for (name, value) in &fields {
        if !value.is_string() {
            violations.push(Violation::new(
                Reason::WrongType,
                name,
                format!("every value of a Snowplow event is a string; {name} is {value}"),
            ));
        }
    }
    let get = |name: &str| fields.get(name).and_then(Value::as_str).filter(|s| !s.is_empty());
    for required in ["e", "eid", "p", "tv"] {
        if get(required).is_none() && fields.get(required).is_none_or(Value::is_string) {
            violations.push(Violation::new(
                Reason::MissingField,
                required,
                format!("{required} is required by the tracker protocol"),
            ));
        }
    }
    let kind = get("e").unwrap_or_default().to_owned();
    let type_name = EVENT_TYPES.iter().find(|(e, _)| *e == kind).map(|(_, n)| *n);
    if !kind.is_empty() && type_name.is_none() {
        violations.push(Violation::new(
            Reason::UnknownType,
            "e",
            format!("e = {kind:?} is not an event type: pv, pp, se, ue, tr, ti, ad"),
        ));
    }
    if let Some(eid) = get("eid")
        && !is_uuid(eid)
    {
        violations.push(Violation::new(
            Reason::WrongType,
            "eid",
            format!("eid = {eid:?} is not a UUID"),
        ));
    }
    if let Some(p) = get("p")
        && !PLATFORMS.contains(&p)
    {
        violations.push(Violation::new(
            Reason::WrongType,
            "p",
            format!("p = {p:?} is not a platform: {}", PLATFORMS.join(", ")),
        ));
    }
    for time in ["dtm", "stm", "ttm"] {
        if let Some(t) = get(time)
            && t.parse::<i64>().is_err()
        {
            violations.push(Violation::new(
                Reason::InvalidTimestamp,
                time,
                format!("{time} = {t:?} is not milliseconds since the epoch"),
            ));
        }
    }
    let self_describing =
        decoded(&fields, "ue_pr", "ue_px", &mut violations).and_then(|v| self_describing_event(v, &mut violations));
    if kind == "ue" && self_describing.is_none() && !violations.iter().any(|v| v.field.starts_with("ue_p")) {
        violations.push(Violation::new(
            Reason::MissingField,
            "ue_pr",
            "a self-describing event (e = ue) carries ue_pr or ue_px",
        ));
    }
    if kind == "se" {
        for required in ["se_ca", "se_ac"] {
            if get(required).is_none() {
                violations.push(Violation::new(
                    Reason::MissingField,
                    required,
                    format!("a structured event (e = se) carries {required}"),
                ));
            }
        }
    }
    let entities = decoded(&fields, "co", "cx", &mut violations).and_then(|v| contexts(v, &mut violations));
    if !violations.is_empty() {
        return Err(violations);
    }
    let name = match (&self_describing, kind.as_str()) {
        (Some(sd), _) => sd["schema"]
            .as_str()
            .and_then(|s| s.split('/').nth(1))
            .unwrap_or("unstruct")
            .to_owned(),
        (None, "se") => get("se_ac").unwrap_or("struct").to_owned(),
        _ => type_name.unwrap_or_default().to_owned(),
    };
    Ok(Event {
        name,
        kind,
        self_describing,
        entities,
        fields,
    })
}

/// The JSON in `plain`, or in `base64` (base64url, padding optional, or the
/// standard alphabet), if either is there.
fn decoded(fields: &Map<String, Value>, plain: &str, base64: &str, violations: &mut Vec<Violation>) -> Option<Value> {
    if let Some(text) = fields.get(plain).and_then(Value::as_str).filter(|s| !s.is_empty()) {
        return match serde_json::from_str(text) {
            Ok(v) => Some(v),
            Err(e) => {
                violations.push(Violation::new(Reason::InvalidJson, plain, e.to_string()));
                None
            }
        };
    }
    let text = fields.get(base64).and_then(Value::as_str).filter(|s| !s.is_empty())?;
    let Some(bytes) = base64url(text) else {
        violations.push(Violation::new(
            Reason::InvalidEncoding,
            base64,
            format!("{base64} is not base64url"),
        ));
        return None;
    };
    match serde_json::from_slice(&bytes) {
        Ok(v) => Some(v),
        Err(e) => {
            violations.push(Violation::new(
                Reason::InvalidJson,
                base64,
                format!("{base64} decodes to no JSON: {e}"),
            ));
            None
        }
    }
}

fn base64url(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let trimmed = text.trim_end_matches('=');
    URL_SAFE_NO_PAD
        .decode(trimmed)
        .or_else(|_| STANDARD_NO_PAD.decode(trimmed))
        .ok()
}

/// The inner `{"schema","data"}` of a self-describing event's wrapper.
fn self_describing_event(wrapper: Value, violations: &mut Vec<Violation>) -> Option<Value> {
    let field = "ue_pr";
    if wrapper["schema"].as_str() != Some(UNSTRUCT_EVENT_SCHEMA) {
        violations.push(Violation::new(
            Reason::InvalidSchemaUri,
            field,
            format!("a self-describing event is wrapped in {UNSTRUCT_EVENT_SCHEMA}"),
        ));
        return None;
    }
    let inner = wrapper.get("data").cloned().unwrap_or(Value::Null);
    self_describing_json(&inner, field, violations).then_some(inner)
}

/// The `data` array of an entities wrapper, each entity well formed.
fn contexts(wrapper: Value, violations: &mut Vec<Violation>) -> Option<Value> {
    let field = "co";
    if !wrapper["schema"]
        .as_str()
        .is_some_and(|s| s.starts_with(CONTEXTS_SCHEMA))
    {
        violations.push(Violation::new(
            Reason::InvalidSchemaUri,
            field,
            format!("entities are wrapped in {CONTEXTS_SCHEMA}0 or 1-0-1"),
        ));
        return None;
    }
    let Some(items) = wrapper.get("data").and_then(Value::as_array) else {
        violations.push(Violation::new(
            Reason::WrongType,
            field,
            "the entities' data is an array",
        ));
        return None;
    };
    let all_good = items
        .iter()
        .enumerate()
        .all(|(i, e)| self_describing_json(e, &format!("{field}[{i}]"), violations));
    all_good.then(|| Value::Array(items.clone()))
}

/// Whether `v` is `{"schema": <a well-formed Iglu URI>, "data": …}`.
fn self_describing_json(v: &Value, field: &str, violations: &mut Vec<Violation>) -> bool {
    match v["schema"].as_str() {
        Some(uri) if is_iglu_uri(uri) && v.get("data").is_some() => true,
        Some(uri) if is_iglu_uri(uri) => {
            violations.push(Violation::new(
                Reason::MissingField,
                field,
                "a self-describing JSON has data",
            ));
            false
        }
        other => {
            violations.push(Violation::new(
                Reason::InvalidSchemaUri,
                field,
                format!(
                    "schema {} is not iglu:vendor/name/format/MODEL-REVISION-ADDITION",
                    other.map_or_else(|| "(missing)".to_owned(), |s| format!("{s:?}"))
                ),
            ));
            false
        }
    }
}

/// Whether `uri` is an Iglu schema reference:
/// `iglu:vendor/name/format/M-R-A`, the vendor of letters, digits, `-`, `_`
/// and `.`, the name and format without the dot, the version three numbers
/// without leading zeros, the first at least 1 (Iglu's `SchemaKey`).
pub fn is_iglu_uri(uri: &str) -> bool {
    let Some(rest) = uri.strip_prefix("iglu:") else {
        return false;
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let [vendor, name, format, version] = parts.as_slice() else {
        return false;
    };
    let word = |s: &str, dot: bool| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (dot && b == b'.'))
    };
    let numbers: Vec<&str> = version.split('-').collect();
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    word(vendor, true)
        && word(name, false)
        && word(format, false)
        && numbers.len() == 3
        && numbers.iter().all(|n| number(n))
        && numbers[0] != "0"
}

/// Whether `s` is a UUID in its hyphenated form.
fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}
