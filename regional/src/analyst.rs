//! The analyst line: the one flat JSON line per valid event the destination
//! holds, in the shape analysts query. Each dialect writes its own fields
//! and every line shares the envelope's: `id`, `event_time`, `received_at`,
//! `key_id`, `country`, `colo`, `asn`, and `label` when the edge wrote one
//! (a rate limit passed, a bot verdict: `edgehose_shared::label`).
//!
//! ```text
//! {"id":"m-1","event":"click","event_time":"2024-05-01T12:30:00.000Z",…,"properties":{…}}                 schema v1
//! {"id":"node-…","type":"track","event":"Order Completed",…,"user_id":"u1","properties":{…},"context":{…}}  Segment
//! {"id":"6f1c…","event":"bike","source":"bike","event_time":…,"properties":{…the object as sent…}}        a source
//! {"id":"0193…","event":"$pageview","distinct_id":"u1","session_id":…,"url":…,"properties":{…},"tracker":"web/1.455.2"}  PostHog
//! ```
//!
//! Names are snake_case in every dialect (`user_id`, not Segment's
//! `userId`), so one table holds them all: [`COLUMNS`], written down in
//! `edgehose_shared::table` with their Iceberg types (the Iceberg rows are
//! these lines, `crate::iceberg_row`).

use edgehose_shared::envelope::EdgeMeta;
use edgehose_shared::event::Event;
use edgehose_shared::label::Label;
use edgehose_shared::posthog::validate::Event as PostHogEvent;
use edgehose_shared::segment::Call;
use edgehose_shared::segment::validate::Message;
use edgehose_shared::snowplow::validate::Event as SnowplowEvent;
use edgehose_shared::source::SourceEvent;
pub use edgehose_shared::timestamp::Rfc3339;
use serde::Serialize;
use serde_json::value::RawValue;

pub use edgehose_shared::table::{COLUMNS, Column};

/// What every line takes from the envelope.
pub struct Where<'a> {
    /// The event's id.
    pub id: &'a str,
    /// The skew-corrected event time.
    pub event_time: Rfc3339,
    /// When the edge received it.
    pub received_at: Rfc3339,
    /// The write key's id.
    pub key_id: Option<&'a str>,
    /// Edge metadata.
    pub edge: Option<&'a EdgeMeta<'a>>,
    /// What the edge said of the event's request: a limit, a bot verdict.
    pub label: Option<&'a Label>,
    /// The visitor's network user id (the identity cookie).
    pub network_user_id: Option<&'a str>,
}

impl<'a> Where<'a> {
    fn country(&self) -> Option<&'a str> {
        self.edge.and_then(|e| e.country.as_deref())
    }

    fn colo(&self) -> Option<&'a str> {
        self.edge.and_then(|e| e.colo.as_deref())
    }
}

/// A schema-v1 event.
#[derive(Serialize)]
pub struct V1Line<'a> {
    id: &'a str,
    event: &'a str,
    event_time: Rfc3339,
    received_at: Rfc3339,
    #[serde(skip_serializing_if = "Option::is_none")]
    sent_at: Option<Rfc3339>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    anonymous_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    referrer: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    network_userid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    colo: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    asn: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<&'a Label>,
    #[serde(skip_serializing_if = "Option::is_none")]
    properties: Option<&'a RawValue>,
}

impl<'a> V1Line<'a> {
    /// The line of a valid schema-v1 event.
    pub fn new(at: &Where<'a>, event: &'a Event<'a>) -> Self {
        Self {
            id: at.id,
            event: &event.event,
            event_time: at.event_time,
            received_at: at.received_at,
            sent_at: event.sent_at.map(|t| Rfc3339::of_millis(t.0)),
            message_id: event.message_id.as_deref(),
            anonymous_id: event.anonymous_id.as_deref(),
            user_id: event.user_id.as_deref(),
            url: event.url.as_deref(),
            referrer: event.referrer.as_deref(),
            target: event.target.as_deref(),
            key_id: at.key_id,
            network_userid: at.network_user_id,
            country: at.country(),
            colo: at.colo(),
            asn: at.edge.and_then(|e| e.asn),
            label: at.label,
            properties: event.properties,
        }
    }
}

/// A Segment message.
#[derive(Serialize)]
pub struct SegmentLine<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    call: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    category: Option<&'a str>,
    event_time: Rfc3339,
    received_at: Rfc3339,
    #[serde(skip_serializing_if = "Option::is_none")]
    sent_at: Option<Rfc3339>,
    #[serde(skip_serializing_if = "Option::is_none")]
    original_timestamp: Option<Rfc3339>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    anonymous_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    network_userid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    colo: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    asn: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<&'a Label>,
    #[serde(skip_serializing_if = "Option::is_none")]
    properties: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    traits: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<&'a RawValue>,
}

impl<'a> SegmentLine<'a> {
    /// The line of a valid Segment message; `batch_sent_at` is its batch's
    /// `sentAt`, for a message without its own.
    pub fn new(at: &Where<'a>, m: &'a Message<'a>, batch_sent_at: Option<i64>) -> Self {
        Self {
            id: at.id,
            call: m.call.as_str(),
            event: m.event.as_deref(),
            name: m.name.as_deref(),
            category: m.category.as_deref(),
            event_time: at.event_time,
            received_at: at.received_at,
            sent_at: m.sent_at.map(|t| t.0).or(batch_sent_at).map(Rfc3339::of_millis),
            original_timestamp: m.timestamp.map(|t| Rfc3339::of_millis(t.0)),
            message_id: m.message_id.as_deref(),
            anonymous_id: m.anonymous_id.as_deref(),
            user_id: m.user_id.as_deref(),
            group_id: m.group_id.as_deref(),
            previous_id: m.previous_id.as_deref(),
            key_id: at.key_id,
            network_userid: at.network_user_id,
            country: at.country(),
            colo: at.colo(),
            asn: at.edge.and_then(|e| e.asn),
            label: at.label,
            properties: m.properties,
            traits: m.traits,
            context: m.context,
        }
    }

    /// The name the line is partitioned by: a track call's event name, the
    /// call itself for the others (`page`, `identify`, …).
    pub fn partition_name(&self) -> &str {
        match self.event {
            Some(event) if self.call == Call::Track.as_str() => event,
            _ => self.call,
        }
    }
}

/// An any-JSON source's event.
#[derive(Serialize)]
pub struct SourceLine<'a> {
    id: &'a str,
    event: &'a str,
    source: &'a str,
    event_time: Rfc3339,
    received_at: Rfc3339,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    network_userid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    colo: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    asn: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<&'a Label>,
    properties: &'a RawValue,
}

impl<'a> SourceLine<'a> {
    /// The line of a valid source event: the object as sent is its `properties`.
    pub fn new(at: &Where<'a>, name: &'a str, event: &SourceEvent<'a>) -> Self {
        Self {
            id: at.id,
            event: name,
            source: name,
            event_time: at.event_time,
            received_at: at.received_at,
            key_id: at.key_id,
            network_userid: at.network_user_id,
            country: at.country(),
            colo: at.colo(),
            asn: at.edge.and_then(|e| e.asn),
            label: at.label,
            // Validated as an object already; a RawValue of it cannot fail.
            properties: serde_json::from_str(event.text).unwrap_or(RawValue::NULL),
        }
    }
}

/// A Snowplow event: its fields by the names the other doors use where they
/// mean the same (`user_id`, `url`, `referrer`), Snowplow's own for the
/// rest; the self-describing event's data (or the structured event's
/// fields) as `properties`, its entities as `contexts`.
#[derive(Serialize)]
pub struct SnowplowLine<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    schema: Option<&'a str>,
    event_time: Rfc3339,
    received_at: Rfc3339,
    #[serde(skip_serializing_if = "Option::is_none")]
    sent_at: Option<Rfc3339>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    domain_userid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    network_userid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    referrer: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    colo: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    asn: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<&'a Label>,
    #[serde(skip_serializing_if = "Option::is_none")]
    properties: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    contexts: Option<&'a serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tracker: Option<&'a str>,
}

impl<'a> SnowplowLine<'a> {
    /// The line of a valid Snowplow event.
    pub fn new(at: &Where<'a>, e: &'a SnowplowEvent) -> Self {
        let properties = match (&e.self_describing, e.kind.as_str()) {
            (Some(sd), _) => sd.get("data").cloned(),
            (None, "se") => {
                let fields: serde_json::Map<String, serde_json::Value> = [
                    ("category", "se_ca"),
                    ("action", "se_ac"),
                    ("label", "se_la"),
                    ("property", "se_pr"),
                    ("value", "se_va"),
                ]
                .iter()
                .filter_map(|(name, field)| e.field(field).map(|v| ((*name).to_owned(), v.into())))
                .collect();
                Some(serde_json::Value::Object(fields))
            }
            _ => None,
        };
        let sent_at = e
            .field("stm")
            .and_then(|t| t.parse::<i64>().ok())
            .map(Rfc3339::of_millis);
        Self {
            id: at.id,
            kind: &e.kind,
            event: &e.name,
            schema: e.self_describing.as_ref().and_then(|sd| sd["schema"].as_str()),
            event_time: at.event_time,
            received_at: at.received_at,
            sent_at,
            user_id: e.field("uid"),
            app_id: e.field("aid"),
            platform: e.field("p"),
            domain_userid: e.field("duid"),
            network_userid: e.field("tnuid").or_else(|| e.field("nuid")).or(at.network_user_id),
            session_id: e.field("sid"),
            url: e.field("url"),
            referrer: e.field("refr"),
            name: e.field("page"),
            key_id: at.key_id,
            country: at.country(),
            colo: at.colo(),
            asn: at.edge.and_then(|m| m.asn),
            label: at.label,
            properties,
            contexts: e.entities.as_ref(),
            tracker: e.field("tv"),
        }
    }
}

/// A PostHog event: its name, `distinct_id`, the session, page and referrer
/// its `$`-properties carry (`$session_id`, `$current_url`, `$referrer`),
/// `$set` as `traits`, the library as `tracker`, and its properties as sent.
#[derive(Serialize)]
pub struct PostHogLine<'a> {
    id: &'a str,
    event: &'a str,
    event_time: Rfc3339,
    received_at: Rfc3339,
    #[serde(skip_serializing_if = "Option::is_none")]
    sent_at: Option<Rfc3339>,
    distinct_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    network_userid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    referrer: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    colo: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    asn: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<&'a Label>,
    properties: &'a serde_json::Map<String, serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    traits: Option<&'a serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tracker: Option<String>,
}

impl<'a> PostHogLine<'a> {
    /// The line of a valid PostHog event (`batch_sent_at`: its batch's
    /// `sent_at`, for an event without its own).
    pub fn new(at: &Where<'a>, e: &'a PostHogEvent, batch_sent_at: Option<i64>) -> Self {
        let sent_at = e
            .fields
            .get("sent_at")
            .and_then(edgehose_shared::event::parse_client_time)
            .map(|t| t.as_millis())
            .or(batch_sent_at)
            .map(Rfc3339::of_millis);
        Self {
            id: at.id,
            event: &e.name,
            event_time: at.event_time,
            received_at: at.received_at,
            sent_at,
            distinct_id: &e.distinct_id,
            network_userid: at.network_user_id,
            session_id: e.field(&["$session_id", "session_id"]),
            url: e.field(&["$current_url"]),
            // posthog-js writes `$direct` where there is no referrer.
            referrer: e.field(&["$referrer"]).filter(|r| *r != "$direct"),
            key_id: at.key_id,
            country: at.country(),
            colo: at.colo(),
            asn: at.edge.and_then(|m| m.asn),
            label: at.label,
            properties: &e.properties,
            traits: e.set().filter(|s| s.is_object()),
            tracker: e.library(),
        }
    }
}
