//! One vocabulary of outcomes: what happened to accepted events at each
//! stage, counted per minute of acceptance, write key, door and reason.
//!
//! Every stage counts events by the minute the edge *received* them (the
//! envelope's `received_at`), not the minute the stage ran, so the counts of
//! every stage for one minute and key add up to what the edge accepted then:
//!
//! ```text
//! accepted = landed + rejected + dead_lettered + archived + lost − redriven + in flight
//! ```
//!
//! - the edge: `accepted` (and of them `quarantined`, `limited` past a rate
//!   limit by scope, `labelled` by a bot signal by verdict), `refused`
//!   (requests, by status: nothing of them was accepted; 429 past a limit), `enqueued`, `delivered` to the
//!   sink, `dead_lettered` to the R2 archive (by reason), `archived` by the
//!   dead-letter queue's consumer, `redriven` out of the archive, `lost`
//!   where the platform left no way (logged LOST with every id);
//! - the transform: `landed` (valid, in the destination), `rejected` (by
//!   reason: in the destination as `rejected` lines, or under the error
//!   prefix), and `duplicate`: ids seen twice in one invocation.
//!
//! `enqueued` and `delivered` are progress, not fates: they say how far the
//! events in flight have come. A [`Tally`] adds counts up; a stage writes it
//! out once per window (the edge) or invocation (the transform) as
//! [`Row`]s, the one shape every reader and writer shares.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::json;
use crate::timestamp::Timestamp;

/// What happened to events at one stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// Accepted by the edge and answered 2xx (quarantined pieces included).
    Accepted,
    /// Of the accepted, kept as quarantine envelopes (not decodable as events).
    Quarantined,
    /// Requests answered with an error (counted in requests, by status).
    Refused,
    /// Written to an events queue.
    Enqueued,
    /// Acknowledged by the sink (Firehose, Kinesis, SQS).
    Delivered,
    /// Written to the dead-letter archive (by reason).
    DeadLettered,
    /// Written to the archive by the dead-letter queue's consumer.
    Archived,
    /// Brought back out of the archive and delivered.
    Redriven,
    /// Kept nowhere: logged LOST with every id.
    Lost,
    /// Valid and in the destination.
    Landed,
    /// Invalid: kept as a `rejected` line (by reason).
    Rejected,
    /// An id seen a second time at a stage.
    Duplicate,
    /// Of the accepted, past a rate limit and labelled `limited` (by scope).
    Limited,
    /// Of the accepted, labelled by a bot signal (by verdict).
    Labelled,
}

/// The reasons a stage gives for `dead_lettered`, `archived` and `lost`
/// (`refused` gives the status; `rejected` the validation's reason code).
pub mod why {
    /// The sink refused the lines for good (or they could not be packed).
    pub const REFUSED_BY_SINK: &str = "refused_by_sink";
    /// Their time ran out (`waitUntil`'s 30 s, a retry budget).
    pub const OUT_OF_TIME: &str = "out_of_time";
    /// The queue consumer tried them `QUEUE_DELIVERY_ATTEMPTS` times.
    pub const TRIES_EXHAUSTED: &str = "tries_exhausted";
    /// The queue would not take them back for another try.
    pub const NOT_REQUEUED: &str = "not_requeued";
    /// A queue message that was not text (not this Worker's).
    pub const NOT_TEXT: &str = "not_text";
    /// The edge judged them invalid (kept as `rejected` lines).
    pub const INVALID: &str = "invalid";
    /// Cloudflare moved their message to the dead-letter queue after its `max_retries`.
    pub const MAX_RETRIES: &str = "max_retries";
    /// Neither the archive nor a queue took them.
    pub const NOWHERE: &str = "archive_and_queue_failed";
    /// The sink's answer was lost or late and they were sent again.
    pub const RESENT: &str = "resent";
}

/// How many outcomes there are.
pub const OUTCOMES: usize = 14;
const _: () = assert!(
    OUTCOMES <= crate::limits::ANALYTICS_DOUBLES,
    "one data point holds every count"
);

impl Outcome {
    /// Every outcome, in the order of their columns.
    pub const ALL: [Outcome; OUTCOMES] = [
        Outcome::Accepted,
        Outcome::Quarantined,
        Outcome::Refused,
        Outcome::Enqueued,
        Outcome::Delivered,
        Outcome::DeadLettered,
        Outcome::Archived,
        Outcome::Redriven,
        Outcome::Lost,
        Outcome::Landed,
        Outcome::Rejected,
        Outcome::Duplicate,
        Outcome::Limited,
        Outcome::Labelled,
    ];

    /// Its name in rows, columns and reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Quarantined => "quarantined",
            Outcome::Refused => "refused",
            Outcome::Enqueued => "enqueued",
            Outcome::Delivered => "delivered",
            Outcome::DeadLettered => "dead_lettered",
            Outcome::Archived => "archived",
            Outcome::Redriven => "redriven",
            Outcome::Lost => "lost",
            Outcome::Landed => "landed",
            Outcome::Rejected => "rejected",
            Outcome::Duplicate => "duplicate",
            Outcome::Limited => "limited",
            Outcome::Labelled => "labelled",
        }
    }

    /// Its column (its place in [`Outcome::ALL`]).
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The outcome named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == name)
    }
}

/// Counts of one cell, one per outcome.
pub type Counts = [u64; OUTCOMES];

/// What a count is kept under: the minute the edge received the events
/// (minutes since the epoch), the write key's id (empty: anonymous or not
/// known), the door (`v1`, `segment`, `source:<name>`; `http` for a
/// refused request's route) and a reason (empty for outcomes without one).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Cell {
    /// Minutes since the Unix epoch of the edge's `received_at`.
    pub minute: i64,
    /// The write key's id.
    #[serde(default)]
    pub key: String,
    /// The door the events came through.
    #[serde(default)]
    pub door: String,
    /// Why, for `refused`, `dead_lettered`, `rejected`, `lost`, `duplicate`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// The minute (since the epoch) of `at`.
pub fn minute_of(at: Timestamp) -> i64 {
    at.as_millis().div_euclid(60_000)
}

/// The door an envelope came through, from its `format` and `source`.
pub fn door_of(format: Option<&str>, source: Option<&str>) -> String {
    match format {
        None => "v1".to_owned(),
        Some("source") => format!("source:{}", source.unwrap_or_default()),
        Some(other) => other.to_owned(),
    }
}

/// What the accounting needs of one line (an envelope, or a `rejected`
/// line holding one): its id and its cell but for the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineAccount {
    /// The envelope's id (empty when the line holds no envelope).
    pub id: String,
    /// Its cell, reason empty.
    pub cell: Cell,
}

#[derive(Deserialize)]
struct Head<'a> {
    #[serde(default, borrow, deserialize_with = "json::borrow::opt_str")]
    id: Option<Cow<'a, str>>,
    #[serde(default)]
    received_at: Option<serde_json::Value>,
    #[serde(default, borrow, deserialize_with = "json::borrow::opt_str")]
    key_id: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "json::borrow::opt_str")]
    format: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "json::borrow::opt_str")]
    source: Option<Cow<'a, str>>,
    /// A `rejected` line's envelope.
    #[serde(default, borrow)]
    envelope: Option<&'a RawValue>,
}

impl LineAccount {
    /// Reads `line`'s id, receive minute, key and door; a `rejected` line is
    /// read through to the envelope it holds. A line that holds no
    /// envelope (or no receive time) is counted under `fallback`'s minute,
    /// with no key, door `?` (its `id` kept when it has one).
    pub fn of(line: &str, fallback: Timestamp) -> Self {
        let unknown = || LineAccount {
            id: String::new(),
            cell: Cell {
                minute: minute_of(fallback),
                key: String::new(),
                door: "?".to_owned(),
                reason: String::new(),
            },
        };
        let Ok(head) = serde_json::from_str::<Head<'_>>(line) else {
            return unknown();
        };
        if let Some(inner) = head.envelope.filter(|raw| raw.get().starts_with('{')) {
            let mut account = Self::of(inner.get(), fallback);
            if account.id.is_empty() {
                account.id = head.id.map(Cow::into_owned).unwrap_or_default();
            }
            return account;
        }
        let received = match &head.received_at {
            Some(serde_json::Value::Number(n)) => n.as_i64().map(Timestamp::from_millis),
            Some(serde_json::Value::String(s)) => Timestamp::parse_rfc3339(s),
            _ => None,
        };
        let Some(received) = received else {
            return LineAccount {
                id: head.id.map(Cow::into_owned).unwrap_or_default(),
                ..unknown()
            };
        };
        LineAccount {
            id: head.id.map(Cow::into_owned).unwrap_or_default(),
            cell: Cell {
                minute: minute_of(received),
                key: head.key_id.map(Cow::into_owned).unwrap_or_default(),
                door: door_of(head.format.as_deref(), head.source.as_deref()),
                reason: String::new(),
            },
        }
    }
}

/// Counts added up by cell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    cells: BTreeMap<Cell, Counts>,
}

impl Tally {
    /// An empty tally.
    pub const fn new() -> Self {
        Self { cells: BTreeMap::new() }
    }

    /// Counts `n` events (or requests, for `refused`) of `outcome` in `cell`.
    pub fn add(&mut self, cell: Cell, outcome: Outcome, n: u64) {
        if n == 0 {
            return;
        }
        self.cells.entry(cell).or_insert([0; OUTCOMES])[outcome.index()] += n;
    }

    /// Counts each line as one event of `outcome` (with `reason`) in its
    /// own cell; lines holding no envelope count under `now`'s minute.
    pub fn add_lines<S: AsRef<str>>(&mut self, lines: &[S], outcome: Outcome, reason: &str, now: Timestamp) {
        for line in lines {
            let mut cell = LineAccount::of(line.as_ref(), now).cell;
            cell.reason.push_str(reason);
            self.add(cell, outcome, 1);
        }
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Tally) {
        for (cell, counts) in &other.cells {
            let mine = self.cells.entry(cell.clone()).or_insert([0; OUTCOMES]);
            for (m, o) in mine.iter_mut().zip(counts) {
                *m += o;
            }
        }
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// The counts so far, leaving this tally empty.
    pub fn take(&mut self) -> Tally {
        std::mem::take(self)
    }

    /// Every cell with its counts.
    pub fn cells(&self) -> impl Iterator<Item = (&Cell, &Counts)> {
        self.cells.iter()
    }

    /// The count of `outcome` summed over every cell.
    pub fn total(&self, outcome: Outcome) -> u64 {
        self.cells.values().map(|c| c[outcome.index()]).sum()
    }

    /// The tally as rows, one per cell.
    pub fn rows(&self) -> Vec<Row> {
        self.cells
            .iter()
            .map(|(cell, counts)| Row {
                cell: cell.clone(),
                counts: Outcome::ALL
                    .into_iter()
                    .filter(|o| counts[o.index()] > 0)
                    .map(|o| (o.as_str().to_owned(), counts[o.index()]))
                    .collect(),
            })
            .collect()
    }

    /// A tally of rows (an unknown outcome's name is an error).
    pub fn from_rows(rows: &[Row]) -> Result<Tally, String> {
        let mut tally = Tally::new();
        for row in rows {
            for (name, n) in &row.counts {
                let outcome = Outcome::parse(name).ok_or_else(|| format!("no outcome is called {name:?}"))?;
                tally.add(row.cell.clone(), outcome, *n);
            }
        }
        Ok(tally)
    }
}

/// One cell's counts as written and read: the cell's fields, then each
/// outcome counted there by name (`{"minute":…,"key":"web","door":"v1","landed":12}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The cell.
    pub cell: Cell,
    /// Counts by outcome name.
    pub counts: BTreeMap<String, u64>,
}

impl Serialize for Row {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let reason = !self.cell.reason.is_empty();
        let mut map = serializer.serialize_map(Some(3 + usize::from(reason) + self.counts.len()))?;
        map.serialize_entry("minute", &self.cell.minute)?;
        map.serialize_entry("key", &self.cell.key)?;
        map.serialize_entry("door", &self.cell.door)?;
        if reason {
            map.serialize_entry("reason", &self.cell.reason)?;
        }
        for (name, n) in &self.counts {
            map.serialize_entry(name, n)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Row {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let map = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        let mut row = Row {
            cell: Cell::default(),
            counts: BTreeMap::new(),
        };
        for (name, value) in map {
            let text = || {
                value
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| D::Error::custom(format!("{name} is not a string")))
            };
            match name.as_str() {
                "minute" => {
                    row.cell.minute = value
                        .as_i64()
                        .ok_or_else(|| D::Error::custom("minute is not a whole number"))?
                }
                "key" => row.cell.key = text()?,
                "door" => row.cell.door = text()?,
                "reason" => row.cell.reason = text()?,
                _ => {
                    let n = value
                        .as_u64()
                        .ok_or_else(|| D::Error::custom(format!("{name} is not a count")))?;
                    row.counts.insert(name, n);
                }
            }
        }
        Ok(row)
    }
}

/// The marker of a receipt line among other log lines.
pub const RECEIPT_FIELD: &str = "edgehose_receipt";

/// One stage's counts as one JSON line:
/// `{"edgehose_receipt":"<stage>","stream":"<where>","rows":[…]}`, `stream`
/// naming what the stage served (the transform: its delivery stream). The
/// transform prints one per invocation, where CloudWatch Logs keeps it.
pub fn receipt_line(stage: &str, stream: &str, tally: &Tally) -> String {
    serde_json::json!({ RECEIPT_FIELD: stage, "stream": stream, "rows": tally.rows() }).to_string()
}

/// A receipt line, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The stage that printed it.
    pub stage: String,
    /// What it served.
    pub stream: String,
    /// Its counts.
    pub tally: Tally,
}

/// The receipt a line holds; `None` for any other line.
pub fn parse_receipt_line(line: &str) -> Option<Receipt> {
    #[derive(Deserialize)]
    struct Line {
        edgehose_receipt: String,
        #[serde(default)]
        stream: String,
        rows: Vec<Row>,
    }
    let line = line.trim();
    if !line.contains(RECEIPT_FIELD) {
        return None;
    }
    let r: Line = match serde_json::from_str(line) {
        Ok(r) => r,
        // A log pipeline that wraps each printed line as a JSON `message`.
        Err(_) => {
            #[derive(Deserialize)]
            struct Wrapped {
                message: String,
            }
            return parse_receipt_line(&serde_json::from_str::<Wrapped>(line).ok()?.message);
        }
    };
    Some(Receipt {
        stage: r.edgehose_receipt,
        stream: r.stream,
        tally: Tally::from_rows(&r.rows).ok()?,
    })
}

#[cfg(test)]
mod tests;
