//! What can be judged of an envelope line before it is packed, by the rules
//! both sides share: whether its event is valid (schema v1, Segment's spec,
//! a source's declaration) and, if it is, the partition it belongs to (its
//! event name and the day it arrived, as the transform partitions).
//!
//! The edge judges every line off the request path (in the queue consumer
//! or direct mode's flush) so that rejected events travel in records of
//! their own: the transform fails those whole, Firehose writes them under
//! the error prefix, and the destination holds events and nothing else.
//! With partitioning on, valid lines are grouped by partition too (their
//! table — a labelled lane's own, [`crate::label`] — name and day), so each
//! record belongs to one. An event its label quarantines is rejected here
//! (reason `bot`). Per-name JSON Schemas are the regional side's
//! alone: what they reject still rides in a mixed record, marked.

use std::borrow::Cow;

use crate::envelope::Envelope;
use crate::label::{Label, Lane};
use crate::limits::Limits;
use crate::rejected::{Rejected, is_rejected_line};
use crate::segment::Call;
use crate::segment::validate::validate_message;
use crate::source::{self, Sources};
use crate::timestamp::Timestamp;
use crate::validate::{Reason, Violation, validate_event};

/// The rules the edge knows.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    /// The deployment's limits.
    pub limits: &'a Limits,
    /// The declared sources.
    pub sources: &'a Sources,
}

/// The partition a valid event belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Partition {
    /// Its table: [`crate::label::MAIN_TABLE`], or a labelled lane's.
    pub table: &'static str,
    /// Its name: a v1 event's `event`, a Segment track's event name or the
    /// call for the other types, a source's name.
    pub name: String,
    /// The UTC day the edge received it, `YYYY-MM-DD`.
    pub date: String,
}

impl Partition {
    /// The partition of an event named `name`, received at `received_at_ms`.
    pub fn new(name: &str, received_at_ms: i64) -> Self {
        let day = Timestamp::from_millis(received_at_ms).rfc3339_bytes();
        Self {
            table: crate::label::MAIN_TABLE,
            name: name.to_owned(),
            date: String::from_utf8_lossy(&day[..10]).into_owned(),
        }
    }
}

/// What became of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict<'l> {
    /// A valid event: the line goes on as it is.
    Event(Partition),
    /// Rejected: the line to keep in its place, with every reason.
    Rejected(Cow<'l, str>),
}

/// Judges one envelope line.
pub fn judge<'l>(line: &'l str, rules: Rules<'_>) -> Verdict<'l> {
    if is_rejected_line(line) {
        // Judged before (a redriven dead letter): it stays rejected.
        return Verdict::Rejected(Cow::Borrowed(line));
    }
    let reject = |id: &str, at: Option<i64>, reasons: &[Violation]| {
        Verdict::Rejected(Cow::Owned(Rejected::new(id, at, reasons, line).to_line()))
    };
    let envelope = match Envelope::parse(line) {
        Ok(e) => e,
        Err(e) => return reject("", None, &[Violation::new(Reason::NotAnEnvelope, "", e.to_string())]),
    };
    let at = Some(envelope.received_at);
    if let Some(q) = &envelope.quarantine {
        return reject(
            &envelope.id,
            at,
            &[Violation::new(Reason::Quarantined, "", q.reason.clone())],
        );
    }
    let lane = envelope.label.as_ref().and_then(|l| l.lane);
    if let Some(why) = quarantined_bot(envelope.label.as_ref()) {
        return reject(&envelope.id, at, &[why]);
    }
    let Some(raw) = envelope.event.as_ref() else {
        let reason = Violation::new(Reason::NotAnEnvelope, "", "the envelope holds no event");
        return reject(&envelope.id, at, &[reason]);
    };
    let name = match envelope.format.as_deref() {
        None => validate_event(raw.get(), rules.limits)
            .map(|e| e.event.into_owned())
            .and_then(|name| source::check_not_a_source(&name, rules.sources).map(|()| name)),
        Some("segment") => validate_message(raw.get(), envelope.call.as_deref(), rules.limits)
            .map(|m| match m.event {
                Some(event) if m.call == Call::Track => event.into_owned(),
                _ => m.call.as_str().to_owned(),
            })
            .and_then(|name| source::check_not_a_source(&name, rules.sources).map(|()| name)),
        Some("snowplow") => crate::snowplow::validate::validate(raw.get(), rules.limits).map(|e| e.name),
        Some("posthog") => crate::posthog::validate::validate(raw.get(), rules.limits).map(|e| e.name),
        _ => {
            let name = envelope.source.as_deref().unwrap_or_default();
            source::validate_event(raw.get(), rules.sources.get(name), rules.limits).map(|_| name.to_owned())
        }
    };
    match name {
        Ok(name) => Verdict::Event(Partition {
            table: Lane::table(lane),
            ..Partition::new(&name, envelope.received_at)
        }),
        Err(reasons) => reject(&envelope.id, at, &reasons),
    }
}

/// The violation of an event whose label sends it to the quarantine lane.
pub fn quarantined_bot(label: Option<&Label>) -> Option<Violation> {
    let label = label.filter(|l| l.lane == Some(Lane::Quarantine))?;
    let detail = format!(
        "bot verdict {} by {}, quarantined by BOT_ROUTES",
        label.bot.as_deref().unwrap_or("?"),
        label.signal.as_deref().unwrap_or("?")
    );
    Some(Violation::new(Reason::Bot, "", detail))
}

/// Which records a line may share: rejected lines only with each other;
/// valid ones with each other, or only within their partition when the
/// stream is partitioned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Group {
    /// Rejected lines.
    Rejected,
    /// Valid events (of one partition, when partitioning).
    Events(Option<Partition>),
}

/// Judges every line: what to pack in each one's place (the line itself,
/// or its rejected line) and its [`Group`], for `batch::pack_grouped`.
pub fn triage<'l, L: AsRef<str>>(
    lines: &'l [L],
    rules: Rules<'_>,
    partitioning: bool,
) -> (Vec<Cow<'l, str>>, Vec<Group>) {
    lines
        .iter()
        .map(|line| {
            let line = line.as_ref();
            match judge(line, rules) {
                Verdict::Event(p) => (Cow::Borrowed(line), Group::Events(partitioning.then_some(p))),
                Verdict::Rejected(r) => (r, Group::Rejected),
            }
        })
        .unzip()
}

#[cfg(test)]
mod tests;
