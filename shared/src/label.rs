//! Labels: what the edge says of an accepted event beyond the event itself —
//! that it came past a rate limit ([`crate::rate_limit`]), or that a bot
//! signal fired on its request ([`crate::bot`]) — and the lane the owner's
//! settings send it down. One envelope member, written only when there is
//! something to say:
//!
//! ```text
//! {"v":1,"label":{"lane":"limited","limited":"address"},"id":"…",…}
//! {"v":1,"label":{"bot":"tool","signal":"user_agent:curl","lane":"bots"},"id":"…",…}
//! {"v":1,"label":{"bot":"verified","signal":"cf.verified_bot"},"id":"…",…}
//! ```
//!
//! | lane | where the event goes |
//! |---|---|
//! | none | the destination, beside every other event (the label kept as a column) |
//! | `limited` | its own table: with dynamic partitioning the `limited/` prefix |
//! | `bots` | its own table: `bots/` |
//! | `quarantine` | kept as a `rejected` line (reason `bot`): under the error prefix |
//!
//! Nothing a label marks is dropped: it is counted (`limited`, `labelled`
//! in [`crate::outcome`]) and findable where its lane leads.

use serde::{Deserialize, Serialize};

/// Where labelled events go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    /// Past a rate limit, accepted because the key's owner said label.
    Limited,
    /// A bot signal fired and the owner routes such events to their own table.
    Bots,
    /// A bot signal fired and the owner quarantines such events.
    Quarantine,
}

impl Lane {
    /// Its name in envelopes, settings and partition keys.
    pub const fn as_str(self) -> &'static str {
        match self {
            Lane::Limited => "limited",
            Lane::Bots => "bots",
            Lane::Quarantine => "quarantine",
        }
    }

    /// The table (the first partition key, the prefix's first folder) its
    /// events land in; unlabelled events land in [`MAIN_TABLE`].
    pub fn table(lane: Option<Lane>) -> &'static str {
        match lane {
            None => MAIN_TABLE,
            Some(l) => l.as_str(),
        }
    }
}

/// The table unlabelled events land in: the prefix they always had.
pub const MAIN_TABLE: &str = "events";

/// What the edge says of an event's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Label {
    /// Where the event goes; `None`: with every other event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lane: Option<Lane>,
    /// The rate limit it came past: `key`, `address` or `user`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limited: Option<String>,
    /// The bot verdict: `verified`, `bot` or `tool` ([`crate::bot::Verdict`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot: Option<String>,
    /// Which signal gave the verdict (`cf.bot_score`, `cf.verified_bot`,
    /// `user_agent:<rule>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// Cloudflare's bot score (1 automated … 99 human), when the plan gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<u8>,
}

/// Read through `serde_json::Value`, whose parser the Worker carries anyway:
/// a derived deserializer added ≈ 4 KB of its own to the wasm, for a member
/// most envelopes lack.
impl<'de> Deserialize<'de> for Label {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let serde_json::Value::Object(m) = serde_json::Value::deserialize(d)? else {
            return Err(D::Error::custom("a label is an object"));
        };
        let text = |name: &str| m.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        let lane = match m.get("lane").and_then(|v| v.as_str()) {
            None => None,
            Some("limited") => Some(Lane::Limited),
            Some("bots") => Some(Lane::Bots),
            Some("quarantine") => Some(Lane::Quarantine),
            Some(other) => return Err(D::Error::custom(format!("unknown lane {other:?}"))),
        };
        Ok(Label {
            lane,
            limited: text("limited"),
            bot: text("bot"),
            signal: text("signal"),
            score: m
                .get("score")
                .and_then(|v| v.as_u64())
                .and_then(|s| u8::try_from(s).ok()),
        })
    }
}

impl Label {
    /// Nothing to say: no member set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Its JSON, as the envelope carries it.
    pub fn to_json(&self) -> String {
        // A struct of strings and small integers always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The envelope's first member, after which a label is written.
const ENVELOPE_HEAD: &str = r#"{"v":1,"#;

/// Writes `label` into each envelope line, as its second member. The edge
/// decides a request's label only once its events are read (a rate limit
/// counts them), so the lines it already wrote are labelled in place: one
/// copy of each line, and only for a labelled request. A line that is not
/// an envelope the edge wrote (it does not start `{"v":1,`) is left as it is.
pub fn apply(lines: &mut [String], label: &Label) {
    if label.is_empty() {
        return;
    }
    insert_member(lines, &format!(r#""label":{},"#, label.to_json()));
}

/// Writes `member` (`"name":value,`) into each envelope line as its second
/// member; lines that are not envelopes are left as they are.
pub(crate) fn insert_member(lines: &mut [String], member: &str) {
    for line in lines.iter_mut() {
        if line.starts_with(ENVELOPE_HEAD) {
            line.insert_str(ENVELOPE_HEAD.len(), member);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Envelope;

    #[test]
    fn a_label_is_written_into_each_envelope_and_read_back() {
        let mut lines = vec![
            r#"{"v":1,"id":"a","received_at":1,"event_time":1,"event":{"event":"x"}}"#.to_owned(),
            "not an envelope".to_owned(),
        ];
        let label = Label {
            lane: Some(Lane::Bots),
            bot: Some("tool".into()),
            signal: Some("user_agent:curl".into()),
            ..Label::default()
        };
        apply(&mut lines, &label);
        assert_eq!(
            lines[0],
            r#"{"v":1,"label":{"lane":"bots","bot":"tool","signal":"user_agent:curl"},"id":"a","received_at":1,"event_time":1,"event":{"event":"x"}}"#
        );
        assert_eq!(lines[1], "not an envelope");
        let env = Envelope::parse(&lines[0]).unwrap();
        assert_eq!(env.label, Some(label));
        assert_eq!(env.event.unwrap().get(), r#"{"event":"x"}"#);
    }

    #[test]
    fn an_empty_label_changes_nothing_and_lanes_name_their_tables() {
        let mut lines = vec![r#"{"v":1,"id":"a"}"#.to_owned()];
        apply(&mut lines, &Label::default());
        assert_eq!(lines[0], r#"{"v":1,"id":"a"}"#);
        assert_eq!(Lane::table(None), "events");
        assert_eq!(Lane::table(Some(Lane::Limited)), "limited");
        assert_eq!(Lane::table(Some(Lane::Bots)), "bots");
    }
}
