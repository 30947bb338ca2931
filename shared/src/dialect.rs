//! The dialects an event can arrive in — schema v1, Segment's Tracking API,
//! an any-JSON source — and what each says about an event's own id and
//! times, which the envelope keeps.
//!
//! | dialect | id | client time | sent at |
//! |---|---|---|---|
//! | schema v1 (`/v1/events`) | `message_id` | `ts` | `sent_at` |
//! | Segment (`/v1/track`, `/v1/batch`, …) | `messageId` | `timestamp` (else `originalTimestamp`) | the message's `sentAt`, else the batch's |
//! | Snowplow (`/com.snowplowanalytics.snowplow/tp2`, `/i`) | `eid` | `ttm`, else `dtm` | `stm` (none with `ttm`) |
//! | PostHog (`/e/`, `/batch/`, `/i/v1/analytics/events`, …) | `uuid` | `timestamp` (else `offset` ms before the collector) | the event's `sent_at`, else the batch's (`created_at` on v1); none with `$ignore_sent_at` |
//! | source (`/v1/ingest/<name>`) | the declared `id_field` | the declared `time_field` | — |
//!
//! An id is used when it is a string of 1..=100 characters (a source's may
//! also be a whole number); otherwise the envelope makes one.

use serde_json::Value;

use crate::event::{MAX_MESSAGE_ID_CHARS, parse_client_time};
use crate::json::Members;
use crate::source::Source;
use crate::timestamp::Timestamp;

/// How one request's events are written: the door they came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect<'a> {
    /// Schema v1, `POST /v1/events`. The envelope writes no `format`.
    #[default]
    V1,
    /// Segment's Tracking API.
    Segment {
        /// The call the route implies (`track` for `/v1/track`), written as
        /// the envelope's `type`; `None` on the batch routes, where each
        /// message names its own.
        call: Option<&'a str>,
        /// The batch's own `sentAt`, for messages that carry none.
        sent_at: Option<Timestamp>,
    },
    /// Snowplow's tracker protocol (`crate::snowplow`).
    Snowplow,
    /// PostHog's capture (`crate::posthog`).
    PostHog {
        /// The batch's `sent_at` (v1: `created_at`), for events without their own.
        sent_at: Option<Timestamp>,
    },
    /// An any-JSON source, `POST /v1/ingest/<name>`.
    Source {
        /// The source's name, which is also its events' name.
        name: &'a str,
        /// What the deployment declared for it, if anything.
        settings: Option<&'a Source>,
    },
}

/// What an event says about itself that its envelope keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stamp {
    /// The event's own id, when it has a usable one.
    pub id: Option<String>,
    /// When it happened, by the client's clock.
    pub time: Option<Timestamp>,
    /// When the client sent it, by the same clock.
    pub sent_at: Option<Timestamp>,
}

impl Dialect<'_> {
    /// The envelope's `format` member: `None` for schema v1.
    pub fn format(&self) -> Option<&'static str> {
        match self {
            Self::V1 => None,
            Self::Segment { .. } => Some("segment"),
            Self::Snowplow => Some("snowplow"),
            Self::PostHog { .. } => Some("posthog"),
            Self::Source { .. } => Some("source"),
        }
    }

    /// Reads an event's id and times by this dialect's rules. Anything
    /// unreadable is left out here and reported by validation downstream.
    pub fn stamp(&self, event: &str) -> Stamp {
        let Ok(members) = Members::parse(event) else {
            return Stamp::default();
        };
        match self {
            Self::V1 => Stamp {
                id: string_id(&members, "message_id"),
                time: client_time(&members, "ts"),
                sent_at: client_time(&members, "sent_at"),
            },
            Self::Segment { sent_at, .. } => Stamp {
                id: string_id(&members, "messageId"),
                time: client_time(&members, "timestamp").or_else(|| client_time(&members, "originalTimestamp")),
                sent_at: client_time(&members, "sentAt").or(*sent_at),
            },
            Self::Snowplow => crate::snowplow::stamp(&members),
            Self::PostHog { sent_at } => crate::posthog::stamp(&members, *sent_at),
            Self::Source { settings, .. } => match settings {
                Some(s) => Stamp {
                    id: s.id_of(&members),
                    time: s.time_of(&members),
                    sent_at: None,
                },
                None => Stamp::default(),
            },
        }
    }
}

fn string_id(members: &Members<'_>, name: &str) -> Option<String> {
    members
        .str(name)
        .filter(|s| !s.is_empty() && s.chars().count() <= MAX_MESSAGE_ID_CHARS)
        .map(|s| s.into_owned())
}

fn client_time(members: &Members<'_>, name: &str) -> Option<Timestamp> {
    let raw = members.get(name)?;
    let value: Value = serde_json::from_str(raw.get()).ok()?;
    parse_client_time(&value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Sources;

    #[test]
    fn each_dialect_reads_its_own_members() {
        let v1 =
            Dialect::V1.stamp(r#"{"event":"a","message_id":"m1","ts":1714566600000,"sent_at":"2024-05-01T12:30:01Z"}"#);
        assert_eq!(v1.id.as_deref(), Some("m1"));
        assert_eq!(v1.time, Some(Timestamp(1_714_566_600_000)));
        assert_eq!(v1.sent_at, Some(Timestamp(1_714_566_601_000)));

        let batch_sent = Some(Timestamp(1_714_566_609_000));
        let seg = Dialect::Segment {
            call: None,
            sent_at: batch_sent,
        };
        let s = seg.stamp(r#"{"type":"track","messageId":"node-1","timestamp":"2024-05-01T12:30:00.000Z"}"#);
        assert_eq!(
            (s.id.as_deref(), s.time, s.sent_at),
            (Some("node-1"), Some(Timestamp(1_714_566_600_000)), batch_sent)
        );
        let own = seg.stamp(r#"{"originalTimestamp":"2024-05-01T12:30:00Z","sentAt":"2024-05-01T12:30:02Z"}"#);
        assert_eq!(
            (own.time, own.sent_at),
            (Some(Timestamp(1_714_566_600_000)), Some(Timestamp(1_714_566_602_000)))
        );
        // A v1 field means nothing to Segment, and the other way round.
        assert_eq!(seg.stamp(r#"{"message_id":"m1"}"#).id, None);
        assert_eq!(Dialect::V1.stamp(r#"{"messageId":"m1"}"#).id, None);

        let sources =
            Sources::parse(r#"{"gps":{"id_field":"ident","time_field":"timestamp","time_format":"epoch_s"}}"#).unwrap();
        let gps = Dialect::Source {
            name: "gps",
            settings: sources.get("gps"),
        };
        let g = gps.stamp(r#"{"ident":"352093081","timestamp":1683200000.12}"#);
        assert_eq!(
            (g.id.as_deref(), g.time),
            (Some("352093081"), Some(Timestamp(1_683_200_000_120)))
        );
        assert_eq!(
            Dialect::Source {
                name: "x",
                settings: None
            }
            .stamp(r#"{"ident":"1"}"#),
            Stamp::default()
        );
        assert_eq!(Dialect::V1.stamp("not json"), Stamp::default());
        assert_eq!(
            Dialect::V1
                .stamp(&format!(r#"{{"message_id":"{}"}}"#, "m".repeat(101)))
                .id,
            None
        );
    }
}
