//! Any-JSON sources: devices and platforms that post their own JSON to
//! `POST /v1/ingest/<name>` — one object, an array of objects, or NDJSON —
//! with no schema v1 requirement. Each object is one event named `<name>`,
//! kept byte for byte.
//!
//! A source works with no configuration: its events get a generated id and
//! the time they were received. `SOURCES`, one setting read alike by the edge,
//! the API Gateway function and the transform, can say more per source:
//!
//! ```json
//! {"bike": {"id_field": "uuid", "time_field": "deviceTimestamp", "time_format": "epoch_ms", "keys": ["bikes"]},
//!  "gps":  {"time_field": "timestamp", "time_format": "epoch_s"}}
//! ```
//!
//! | setting | meaning |
//! |---|---|
//! | `id_field` | the top-level member holding the event's id (a string or whole number, 1..=100 characters): kept as the envelope `id`, so resends de-duplicate downstream |
//! | `time_field` | the top-level member holding when it happened |
//! | `time_format` | `epoch_ms` (default), `epoch_s` (seconds, fractions allowed: `1683200000.12`), or `rfc3339` |
//! | `keys` | the write key ids (from `WRITE_KEYS`) that may post to this source; any key when absent |
//!
//! Members are named exactly as sent (`position.latitude` is one member's
//! name, not a path). A JSON Schema at `schemas/<name>.json` validates the
//! source's events in the transform, as it does for schema-v1 event names.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::value::RawValue;

use crate::event::MAX_MESSAGE_ID_CHARS;
use crate::json::{self, Members};
use crate::limits::Limits;
use crate::timestamp::Timestamp;
use crate::validate::{Reason, Violation};

/// The path prefix of the any-JSON routes: `/v1/ingest/<name>`.
pub const INGEST_PATH_PREFIX: &str = "/v1/ingest/";

/// Longest source name, in characters.
pub const MAX_SOURCE_NAME_CHARS: usize = 64;

/// Why a source name is refused (the rule it breaks).
pub fn check_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if name.is_empty() || name.len() > MAX_SOURCE_NAME_CHARS || !ok_chars {
        let shown: String = name.chars().take(80).collect();
        return Err(format!(
            "source name {shown:?} is not valid: it must be 1 to {MAX_SOURCE_NAME_CHARS} characters of a-z, 0-9, _ and -"
        ));
    }
    Ok(())
}

/// How a source writes its time member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeFormat {
    /// Milliseconds since the Unix epoch (`1714566600000`).
    #[default]
    EpochMillis,
    /// Seconds since the Unix epoch, fractions allowed (`1683200000.12`).
    EpochSeconds,
    /// An RFC 3339 string (`2024-05-01T12:30:00.250Z`).
    Rfc3339,
}

impl TimeFormat {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "epoch_ms" => Some(Self::EpochMillis),
            "epoch_s" => Some(Self::EpochSeconds),
            "rfc3339" => Some(Self::Rfc3339),
            _ => None,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::EpochMillis => "epoch milliseconds (1714566600000)",
            Self::EpochSeconds => "epoch seconds (1683200000.12)",
            Self::Rfc3339 => "an RFC 3339 time (2024-05-01T12:30:00Z)",
        }
    }

    /// Reads a time member's JSON value in this format; `None` when it does
    /// not hold one (or lies outside years 1..=9999).
    pub fn read(self, raw: &RawValue) -> Option<Timestamp> {
        let text = raw.get();
        let ms = match self {
            Self::Rfc3339 => return json::string(raw).and_then(|s| Timestamp::parse_rfc3339(&s)),
            Self::EpochMillis => decimal_millis(text, 0)?,
            Self::EpochSeconds => decimal_millis(text, 3)?,
        };
        Timestamp::from_millis_in_range(ms)
    }
}

/// A JSON number times 10^`shift`, as whole milliseconds (fractions below a
/// millisecond dropped), read exactly from its digits rather than through a
/// float, so `1683200000.12` seconds is 1683200000120 ms.
fn decimal_millis(text: &str, shift: u32) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if !digits.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    if digits.contains(['e', 'E']) {
        // Exponent forms are rare from devices; a float is exact enough there.
        // (serde_json's float reader: the Worker carries it already.)
        let v: f64 = serde_json::from_str(text).ok()?;
        let ms = (v * 10f64.powi(shift as i32)).trunc();
        return (ms.abs() < 9.0e15).then_some(ms as i64);
    }
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) || int.len() > 16 {
        return None;
    }
    let mut ms: i64 = int.parse().ok()?;
    let mut frac = frac.bytes();
    for _ in 0..shift {
        let d = frac.next().map_or(0, |b| i64::from(b - b'0'));
        ms = ms.checked_mul(10)?.checked_add(d)?;
    }
    Some(if negative { -ms } else { ms })
}

/// What a deployment declared for one source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Source {
    /// The member holding the event's id.
    pub id_field: Option<String>,
    /// The member holding the event's time.
    pub time_field: Option<String>,
    /// How that member writes the time.
    pub time_format: TimeFormat,
    /// The write key ids that may post here; any key when `None`.
    pub keys: Option<Vec<String>>,
}

impl Source {
    /// Whether the key with this id (`None`: no key, when none are
    /// configured) may post to the source.
    pub fn allows_key(&self, key_id: Option<&str>) -> bool {
        match (&self.keys, key_id) {
            (None, _) => true,
            (Some(keys), Some(id)) => keys.iter().any(|k| k == id),
            (Some(_), None) => false,
        }
    }

    /// The event's own id, when the source names an id member and the event
    /// holds a usable one (a string or whole number of 1..=100 characters).
    pub fn id_of(&self, members: &Members<'_>) -> Option<String> {
        let raw = members.get(self.id_field.as_deref()?)?;
        read_id(raw).ok().flatten()
    }

    /// The event's own time, when the source names a time member and the
    /// event holds a readable one.
    pub fn time_of(&self, members: &Members<'_>) -> Option<Timestamp> {
        self.time_format.read(members.get(self.time_field.as_deref()?)?)
    }
}

/// An id member's value: `Ok(None)` for null, `Err` naming what is wrong.
fn read_id(raw: &RawValue) -> Result<Option<String>, String> {
    let text = raw.get();
    let id = if text == "null" {
        return Ok(None);
    } else if let Some(s) = json::string(raw) {
        s.into_owned()
    } else if text.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        text.to_owned()
    } else {
        return Err(format!("must be a string or a whole number, not {}", json::kind(text)));
    };
    let chars = id.chars().count();
    if chars == 0 || chars > MAX_MESSAGE_ID_CHARS {
        return Err(format!(
            "is {chars} characters; an id must be 1 to {MAX_MESSAGE_ID_CHARS}"
        ));
    }
    Ok(Some(id))
}

/// Every declared source, read from `SOURCES`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sources {
    by_name: BTreeMap<String, Source>,
}

/// Whether an event of another door (schema v1, Segment) may be named
/// `name`: not when a declared source is, since a declared source owns its
/// name — the partition and the JSON Schema its events are filed under — and
/// its `keys` guard more than its route.
pub fn check_not_a_source(name: &str, sources: &Sources) -> Result<(), Vec<crate::validate::Violation>> {
    match sources.get(name) {
        None => Ok(()),
        Some(_) => Err(vec![crate::validate::Violation::new(
            crate::validate::Reason::SourceName,
            "event",
            format!(
                "{name:?} is the name of a declared source (SOURCES): its events come only through POST {INGEST_PATH_PREFIX}{name}"
            ),
        )]),
    }
}

impl Sources {
    /// Parses the `SOURCES` setting (see the module docs); every error names
    /// the source and the member at fault.
    pub fn parse(text: &str) -> Result<Self, String> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("is not valid JSON: {e}"))?;
        let Some(object) = value.as_object() else {
            return Err("must be a JSON object of source names".into());
        };
        let mut by_name = BTreeMap::new();
        for (name, settings) in object {
            check_name(name)?;
            let Some(settings) = settings.as_object() else {
                return Err(format!("source {name:?} must be an object of settings"));
            };
            let mut source = Source::default();
            for (key, v) in settings {
                let text = || {
                    v.as_str()
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .ok_or_else(|| format!("source {name:?}: {key} must be a non-empty string"))
                };
                match key.as_str() {
                    "id_field" => source.id_field = Some(text()?),
                    "time_field" => source.time_field = Some(text()?),
                    "time_format" => {
                        let given = text()?;
                        source.time_format = TimeFormat::parse(&given).ok_or_else(|| {
                            format!("source {name:?}: time_format must be epoch_ms, epoch_s or rfc3339, not {given:?}")
                        })?;
                    }
                    "keys" => {
                        let keys = v
                            .as_array()
                            .and_then(|a| {
                                a.iter()
                                    .map(|k| k.as_str().map(str::to_owned))
                                    .collect::<Option<Vec<_>>>()
                            })
                            .filter(|k| !k.is_empty())
                            .ok_or_else(|| {
                                format!("source {name:?}: keys must be a non-empty array of write key ids")
                            })?;
                        source.keys = Some(keys);
                    }
                    other => {
                        return Err(format!(
                            "source {name:?}: unknown setting {other:?} (expected id_field, time_field, time_format, keys)"
                        ));
                    }
                }
            }
            by_name.insert(name.clone(), source);
        }
        Ok(Self { by_name })
    }

    /// Reads the `SOURCES` setting (none declared when unset).
    pub fn from_settings<F: Fn(&str) -> Option<String>>(
        s: &crate::settings::Settings<F>,
    ) -> Result<Self, crate::settings::SettingError> {
        match s.get("SOURCES") {
            Some(text) => Self::parse(&text).map_err(|e| crate::settings::SettingError::new("SOURCES", e)),
            None => Ok(Self::default()),
        }
    }

    /// The declared settings of `name`, if any.
    pub fn get(&self, name: &str) -> Option<&Source> {
        self.by_name.get(name)
    }

    /// Every declared source, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Source)> {
        self.by_name.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// One valid source event, as [`validate_event`] returns it.
#[derive(Debug, Clone)]
pub struct SourceEvent<'a> {
    /// The event as sent.
    pub text: &'a str,
    /// Its own id, when the source declares one and the event holds it.
    pub id: Option<Cow<'a, str>>,
}

/// Checks one source event: a JSON object within the limits, whose declared
/// id and time members, when present, hold what the source says they do.
pub fn validate_event<'a>(
    text: &'a str,
    source: Option<&Source>,
    limits: &Limits,
) -> Result<SourceEvent<'a>, Vec<Violation>> {
    crate::validate::check_size_and_depth(text, limits)?;
    let members = crate::validate::members(text)?;
    let mut problems = Vec::new();
    let mut id = None;
    if let Some(source) = source {
        if let Some(field) = source.id_field.as_deref()
            && let Some(raw) = members.get(field)
        {
            match read_id(raw) {
                Ok(v) => id = v.map(Cow::Owned),
                Err(e) => problems.push(Violation::new(
                    Reason::WrongType,
                    field,
                    format!("`{field}` (the id) {e}"),
                )),
            }
        }
        if let Some(field) = source.time_field.as_deref()
            && let Some(raw) = members.get(field)
            && raw.get() != "null"
            && source.time_format.read(raw).is_none()
        {
            problems.push(Violation::new(
                Reason::InvalidTimestamp,
                field,
                format!(
                    "`{field}` must be {}, got {}",
                    source.time_format.describe(),
                    raw.get().chars().take(80).collect::<String>()
                ),
            ));
        }
    }
    if problems.is_empty() {
        Ok(SourceEvent { text, id })
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests;
