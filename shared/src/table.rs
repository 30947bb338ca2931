//! The destination's tables, written down once: every column the
//! transform's analyst lines may carry, its type in the JSON table's
//! catalog and in the Iceberg tables, and which lines carry it. The SAM
//! template's Glue tables list exactly these (a test holds them together),
//! the transform writes its lines and rows by them, and firehose-local
//! creates its Iceberg tables from them.
//!
//! Two destinations ([`Destination`], the `DESTINATION` setting):
//!
//! | destination | what Firehose writes | tables |
//! |---|---|---|
//! | `json` (the default) | NDJSON objects in S3, many events a record | `events`, every door's lines in one (JSON SerDe) |
//! | `iceberg` | rows of Apache Iceberg tables, one event a record | one per dialect ([`ICEBERG_TABLES`]), unique on [`UNIQUE_KEY`] |
//!
//! In the Iceberg tables the event's identity — its key id and id — is the
//! unique key, so a second copy of an event (a lost answer, a resend, an
//! overlapping redrive) updates the first instead of adding a row.

use crate::settings::{SettingError, Settings};

/// One column: a member any analyst line (or a `rejected` line beside
/// them) may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// The member's name.
    pub name: &'static str,
    /// Its type in the JSON table's catalog (Hive DDL as Glue and Athena
    /// read it). Objects of free form (`properties`, `traits`, `context`)
    /// are `string`: Athena's JSON SerDe hands their JSON text to
    /// `json_extract`.
    pub catalog_type: &'static str,
    /// Its type in the Iceberg tables (Iceberg's primitive type names), or
    /// empty where the Iceberg tables have no such column. Objects are
    /// `string` holding their JSON text; times are `timestamptz`, which
    /// Firehose takes as microseconds since the epoch.
    pub iceberg_type: &'static str,
    /// Which lines carry it: `all`, `v1`, `segment`, `source`, `snowplow`, `posthog`, `rejected`,
    /// and `iceberg` for a column every Iceberg row has.
    pub of: &'static str,
    /// What it holds, as the catalogs describe it (empty: the name says it).
    pub comment: &'static str,
}

impl Column {
    /// Whether lines of `kind` (`v1`, `segment`, `source`, `rejected`)
    /// may carry it.
    pub fn carried_by(&self, kind: &str) -> bool {
        self.of.split(", ").any(|k| k == kind || k == "all")
    }

    /// Whether the Iceberg table of `dialect` has it.
    pub fn in_iceberg_table_of(&self, dialect: &str) -> bool {
        !self.iceberg_type.is_empty() && (self.carried_by(dialect) || self.of.split(", ").any(|k| k == "iceberg"))
    }
}

/// The columns, in the order the catalogs list them.
pub const COLUMNS: &[Column] = &[
    column(
        "id",
        "string",
        "string",
        "all",
        "the event's id: its messageId / message_id / eid / uuid / declared id, else a UUIDv7",
    ),
    column(
        "type",
        "string",
        "string",
        "segment, snowplow",
        "Segment: the call; Snowplow: the event type (e: pv, se, ue, …)",
    ),
    column(
        "event",
        "string",
        "string",
        "v1, segment, source, snowplow, posthog",
        "the event's name (v1, Segment track; Snowplow: the self-describing schema's name, the structured event's action, or page_view…; PostHog: event, $pageview…), or the source's name",
    ),
    column(
        "name",
        "string",
        "string",
        "segment, snowplow",
        "Segment page/screen name; Snowplow: the page title",
    ),
    column("category", "string", "string", "segment", "Segment page category"),
    column("source", "string", "string", "source", "any-JSON source's name"),
    column(
        "schema",
        "string",
        "string",
        "snowplow",
        "Snowplow: the self-describing event's Iglu schema",
    ),
    column(
        "event_time",
        "string",
        "timestamptz",
        "v1, segment, source, snowplow, posthog",
        "RFC 3339 (a timestamp in Iceberg), skew-corrected",
    ),
    column(
        "received_at",
        "string",
        "timestamptz",
        "all",
        "RFC 3339 (a timestamp in Iceberg), when the edge received it",
    ),
    column(
        "sent_at",
        "string",
        "string",
        "v1, segment, snowplow, posthog",
        "RFC 3339, the client's sent time",
    ),
    column(
        "original_timestamp",
        "string",
        "string",
        "segment",
        "Segment: the message's own timestamp",
    ),
    column("message_id", "string", "string", "v1, segment", ""),
    column("anonymous_id", "string", "string", "v1, segment", ""),
    column("user_id", "string", "string", "v1, segment, snowplow", ""),
    column(
        "distinct_id",
        "string",
        "string",
        "posthog",
        "PostHog: distinct_id, the person (or anonymous device) the event is of",
    ),
    column("app_id", "string", "string", "snowplow", "Snowplow: aid"),
    column(
        "platform",
        "string",
        "string",
        "snowplow",
        "Snowplow: p (web, srv, mob, …)",
    ),
    column(
        "domain_userid",
        "string",
        "string",
        "snowplow",
        "Snowplow: duid, the tracker's cookie id",
    ),
    column(
        "network_userid",
        "string",
        "string",
        "v1, segment, source, snowplow, posthog",
        "the visitor's id from the identity cookie (Snowplow: nuid or tnuid where the tracker sends one)",
    ),
    column(
        "session_id",
        "string",
        "string",
        "snowplow, posthog",
        "Snowplow: sid; PostHog: $session_id",
    ),
    column("group_id", "string", "string", "segment", ""),
    column("previous_id", "string", "string", "segment", ""),
    column("url", "string", "string", "v1, snowplow, posthog", ""),
    column("referrer", "string", "string", "v1, snowplow, posthog", ""),
    column("target", "string", "string", "v1", ""),
    column(
        "key_id",
        "string",
        "string",
        "v1, segment, source, snowplow, posthog",
        "the write key's id (empty in Iceberg when the deployment has no keys)",
    ),
    column(
        "country",
        "string",
        "string",
        "v1, segment, source, snowplow, posthog",
        "",
    ),
    column(
        "colo",
        "string",
        "string",
        "v1, segment, source, snowplow, posthog",
        "the Cloudflare location",
    ),
    column("asn", "bigint", "long", "v1, segment, source, snowplow, posthog", ""),
    column(
        "label",
        "struct<lane:string,limited:string,bot:string,signal:string,score:int>",
        "string",
        "v1, segment, source, snowplow, posthog",
        "a rate limit passed or a bot verdict (JSON text in Iceberg)",
    ),
    column(
        "properties",
        "string",
        "string",
        "v1, segment, source, snowplow, posthog",
        "JSON text: json_extract_scalar(properties, '$.plan') (Snowplow: the self-describing event's data, or the structured event's fields; PostHog: properties as sent)",
    ),
    column(
        "traits",
        "string",
        "string",
        "segment, posthog",
        "JSON text (PostHog: $set, the person properties)",
    ),
    column("context", "string", "string", "segment", "JSON text"),
    column(
        "contexts",
        "string",
        "string",
        "snowplow",
        "Snowplow: the entities (co/cx), a JSON array of self-describing JSON",
    ),
    column(
        "tracker",
        "string",
        "string",
        "snowplow, posthog",
        "Snowplow: tv, the tracker and its version; PostHog: $lib/$lib_version",
    ),
    column(
        "rejected",
        "string",
        "",
        "rejected",
        "on rejected lines: the reasons, JSON text",
    ),
    column(
        "envelope",
        "string",
        "string",
        "rejected, iceberg",
        "the envelope as received, JSON text (on rejected lines; on every Iceberg row)",
    ),
];

const fn column(
    name: &'static str,
    catalog_type: &'static str,
    iceberg_type: &'static str,
    of: &'static str,
    comment: &'static str,
) -> Column {
    Column {
        name,
        catalog_type,
        iceberg_type,
        of,
        comment,
    }
}

/// The column named `name`.
pub fn column_named(name: &str) -> Option<&'static Column> {
    COLUMNS.iter().find(|c| c.name == name)
}

/// Where the transform's output goes: the setting `DESTINATION`, read by the
/// edge, ingest-api and the transform alike (the template sets all three
/// from its `Destination` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Destination {
    /// NDJSON objects in S3, read through the `events` table.
    #[default]
    Json,
    /// Apache Iceberg tables, one per dialect, unique on [`UNIQUE_KEY`].
    Iceberg,
}

impl Destination {
    /// The setting's name.
    pub const SETTING: &'static str = "DESTINATION";

    /// Every destination.
    pub const ALL: [Destination; 2] = [Destination::Json, Destination::Iceberg];

    /// Its name, as the setting and the template's parameter spell it.
    pub fn key(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Iceberg => "iceberg",
        }
    }

    /// The destination named `key`.
    pub fn parse(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.key() == key)
    }

    /// Reads [`Self::SETTING`] (`json` when unset).
    pub fn from_settings<F: Fn(&str) -> Option<String>>(s: &Settings<F>) -> Result<Self, SettingError> {
        match s.get(Self::SETTING).as_deref().map(str::trim) {
            None | Some("") => Ok(Self::Json),
            Some(key) => Self::parse(key).ok_or_else(|| {
                SettingError::new(
                    Self::SETTING,
                    format!("= {key:?} is not a destination: json or iceberg"),
                )
            }),
        }
    }
}

/// The Iceberg tables, by the dialect whose events each holds (a door as
/// `shared::outcome::door_of` names it, a source's without its name).
pub const ICEBERG_TABLES: &[(&str, &str)] = &[
    ("v1", "events_v1"),
    ("segment", "events_segment"),
    ("source", "events_source"),
    ("snowplow", "events_snowplow"),
    ("posthog", "events_posthog"),
];

/// The columns whose values together are an event's identity in the
/// Iceberg tables: the write key's id (which the client cannot choose) and
/// the event's id. Another key's event with the same id is another row.
pub const UNIQUE_KEY: [&str; 2] = ["key_id", "id"];

/// The Iceberg table of a dialect (`v1`, `segment`, `source`).
pub fn iceberg_table(dialect: &str) -> Option<&'static str> {
    ICEBERG_TABLES.iter().find(|(d, _)| *d == dialect).map(|(_, t)| *t)
}

/// The columns of the Iceberg table of `dialect`, in the catalog's order.
pub fn iceberg_columns(dialect: &str) -> impl Iterator<Item = &'static Column> + '_ {
    COLUMNS.iter().filter(move |c| c.in_iceberg_table_of(dialect))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_iceberg_table_has_the_unique_key_and_the_envelope() {
        for (dialect, _) in ICEBERG_TABLES {
            let names: Vec<&str> = iceberg_columns(dialect).map(|c| c.name).collect();
            for key in UNIQUE_KEY {
                assert!(names.contains(&key), "{dialect}: {names:?}");
            }
            assert!(names.contains(&"envelope"), "{dialect}: {names:?}");
            assert!(!names.contains(&"rejected"), "{dialect}: {names:?}");
        }
        let v1: Vec<&str> = iceberg_columns("v1").map(|c| c.name).collect();
        assert!(v1.contains(&"url") && !v1.contains(&"traits"), "{v1:?}");
        let segment: Vec<&str> = iceberg_columns("segment").map(|c| c.name).collect();
        assert!(segment.contains(&"traits") && !segment.contains(&"url"), "{segment:?}");
    }

    #[test]
    fn the_setting_names_a_destination_or_is_refused() {
        let read = |v: Option<&str>| {
            let v = v.map(str::to_owned);
            Destination::from_settings(&Settings::new(move |_: &str| v.clone()))
        };
        assert_eq!(read(None).unwrap(), Destination::Json);
        assert_eq!(read(Some("iceberg")).unwrap(), Destination::Iceberg);
        let e = read(Some("parquet")).unwrap_err().to_string();
        assert!(e.contains("DESTINATION") && e.contains("json or iceberg"), "{e}");
        assert_eq!(iceberg_table("v1"), Some("events_v1"));
        assert_eq!(iceberg_table("segment"), Some("events_segment"));
        assert_eq!(iceberg_table("snowplow"), Some("events_snowplow"));
        assert_eq!(iceberg_table("posthog"), Some("events_posthog"));
        assert_eq!(iceberg_table("rudderstack"), None);
    }
}
