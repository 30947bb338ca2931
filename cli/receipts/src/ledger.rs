//! The balance, per write key and minute of acceptance (`shared::outcome`):
//!
//! ```text
//! accepted = landed + rejected + dead-lettered + lost + in flight
//! ```
//!
//! `accepted`, `dead-lettered` (written to the archive by the edge or the
//! dead-letter queue's consumer, less what was redriven out of it) and
//! `lost` are the edge's counts; `landed` and `rejected` the transform's
//! receipts (less the ids an invocation saw twice), or, verified, what the
//! destination holds. What remains is in flight while the minute is younger
//! than the settling time (a queue's retries, Firehose's buffer), and after
//! that a gap: missing when positive, a surplus (events landed twice, or an
//! isolate that never wrote its counts) when negative. Each gap has a bound:
//! three standard deviations of the sampling's estimate (0 when Analytics
//! Engine kept every point). A minute fails the check when it misses more
//! than its bound, or lost any event.

use std::collections::BTreeMap;

use edgehose_shared::outcome::{Cell, Outcome, Tally};
use serde::Serialize;

use crate::analytics::EdgeCounts;

/// One key's minute.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Line {
    /// Minutes since the epoch.
    pub minute: i64,
    /// The write key's id (empty: anonymous).
    pub key: String,
    /// Accepted by the edge.
    pub accepted: u64,
    /// Of those, quarantined.
    pub quarantined: u64,
    /// Requests refused (not part of the balance; 429s past a rate limit among them).
    pub refused: u64,
    /// Of the accepted, past a rate limit and labelled `limited` (in their own table).
    pub limited: u64,
    /// Of the accepted, labelled by a bot signal.
    pub labelled: u64,
    /// Valid, in the destination.
    pub landed: u64,
    /// Kept as `rejected` lines.
    pub rejected: u64,
    /// Written to the dead-letter archive.
    pub dead_lettered: u64,
    /// Of those, brought back out of it (and counted again where they landed).
    pub redriven: u64,
    /// Kept nowhere.
    pub lost: u64,
    /// `accepted` less everything settled (negative: a surplus).
    pub open: i64,
    /// How far the sampled counts may be off.
    pub bound: u64,
    /// `in_flight`, `balanced`, `missing` or `surplus`.
    pub status: Status,
    /// The transform's `landed` when the destination was verified (more
    /// than the destination's when a copy landed in two invocations, or an
    /// object went missing: the balance tells which).
    pub receipted_landed: Option<u64>,
    /// Breakdowns: `rejected`, `dead_lettered`, `refused` by reason,
    /// `limited` by scope, `labelled` by bot verdict.
    pub reasons: BTreeMap<String, BTreeMap<String, u64>>,
}

/// A minute's state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Younger than the settling time: what is open may still land.
    #[default]
    InFlight,
    /// Everything accounted for, within the bound.
    Balanced,
    /// Fewer events accounted for than accepted, past the bound.
    Missing,
    /// More accounted for than accepted, past the bound.
    Surplus,
}

/// What the ledger is made of.
#[derive(Debug, Clone, Default)]
pub struct Sources<'a> {
    /// The edge's counts.
    pub edge: Option<&'a EdgeCounts>,
    /// The transform's receipts.
    pub receipts: Option<&'a Tally>,
    /// What the destination holds, when verified.
    pub destination: Option<&'a Tally>,
}

/// Which minutes, and which key.
#[derive(Debug, Clone)]
pub struct Window {
    /// The first minute (since the epoch).
    pub from_minute: i64,
    /// Minutes from this one on are still in flight.
    pub settled_before: i64,
    /// One key only.
    pub key: Option<String>,
}

/// The balance of every key and minute in the window, in order.
pub fn balance(sources: &Sources<'_>, window: &Window) -> Vec<Line> {
    let mut lines: BTreeMap<(String, i64), Line> = BTreeMap::new();
    let mut variance: BTreeMap<(String, i64), f64> = BTreeMap::new();
    let keep = |cell: &Cell| cell.minute >= window.from_minute && window.key.as_ref().is_none_or(|k| *k == cell.key);
    fn line<'a>(lines: &'a mut BTreeMap<(String, i64), Line>, cell: &Cell) -> &'a mut Line {
        lines.entry((cell.key.clone(), cell.minute)).or_insert_with(|| Line {
            minute: cell.minute,
            key: cell.key.clone(),
            ..Line::default()
        })
    }
    let reason = |l: &mut Line, outcome: Outcome, cell: &Cell, n: u64| {
        if n > 0 && !cell.reason.is_empty() {
            *l.reasons
                .entry(outcome.as_str().to_owned())
                .or_default()
                .entry(cell.reason.clone())
                .or_default() += n;
        }
    };
    if let Some(edge) = sources.edge {
        for (cell, counts) in edge.tally.cells().filter(|(c, _)| keep(c)) {
            let n = |o: Outcome| counts[o.index()];
            let l = line(&mut lines, cell);
            l.accepted += n(Outcome::Accepted);
            l.quarantined += n(Outcome::Quarantined);
            l.refused += n(Outcome::Refused);
            l.limited += n(Outcome::Limited);
            l.labelled += n(Outcome::Labelled);
            reason(l, Outcome::Limited, cell, n(Outcome::Limited));
            reason(l, Outcome::Labelled, cell, n(Outcome::Labelled));
            // With residency regions, what the sinks took, by the region it
            // landed in (`eu`, or `standby:eu2` while failed over).
            reason(l, Outcome::Delivered, cell, n(Outcome::Delivered));
            l.dead_lettered += n(Outcome::DeadLettered) + n(Outcome::Archived);
            l.redriven += n(Outcome::Redriven);
            l.lost += n(Outcome::Lost);
            reason(l, Outcome::Refused, cell, n(Outcome::Refused));
            reason(
                l,
                Outcome::DeadLettered,
                cell,
                n(Outcome::DeadLettered) + n(Outcome::Archived),
            );
            if let Some(v) = edge.variance.get(cell) {
                let sampled: f64 = [
                    Outcome::Accepted,
                    Outcome::DeadLettered,
                    Outcome::Archived,
                    Outcome::Redriven,
                    Outcome::Lost,
                ]
                .iter()
                .map(|o| v[o.index()])
                .sum();
                *variance.entry((cell.key.clone(), cell.minute)).or_default() += sampled;
            }
        }
    }
    // What landed and was rejected: the destination's own count when it
    // was read, else the receipts'. The reasons are always the receipts'.
    let verified = sources.destination.is_some();
    for (tally, counted) in [(sources.destination, true), (sources.receipts, !verified)] {
        let Some(tally) = tally else { continue };
        for (cell, counts) in tally.cells().filter(|(c, _)| keep(c)) {
            let l = line(&mut lines, cell);
            let landed = counts[Outcome::Landed.index()].saturating_sub(counts[Outcome::Duplicate.index()]);
            let rejected = counts[Outcome::Rejected.index()];
            if counted {
                l.landed += landed;
                l.rejected += rejected;
            }
            if tally_is_receipts(sources, tally) {
                reason(l, Outcome::Rejected, cell, rejected);
                if verified {
                    *l.receipted_landed.get_or_insert(0) += landed;
                }
            }
        }
    }
    let mut out: Vec<Line> = lines.into_values().collect();
    for l in &mut out {
        let settled = l.landed + l.rejected + l.dead_lettered.saturating_sub(l.redriven) + l.lost;
        l.open = l.accepted as i64 - settled as i64;
        let v = variance.get(&(l.key.clone(), l.minute)).copied().unwrap_or(0.0);
        l.bound = (3.0 * v.max(0.0).sqrt()).ceil() as u64;
        l.status = if l.minute >= window.settled_before {
            Status::InFlight
        } else if l.open > l.bound as i64 {
            Status::Missing
        } else if -l.open > l.bound as i64 {
            Status::Surplus
        } else {
            Status::Balanced
        };
    }
    out
}

fn tally_is_receipts(sources: &Sources<'_>, tally: &Tally) -> bool {
    sources.receipts.is_some_and(|r| std::ptr::eq(r, tally))
}

/// Why the check fails, one sentence per minute that fails it; empty when it passes.
pub fn failures(lines: &[Line]) -> Vec<String> {
    let mut out = Vec::new();
    for l in lines {
        let key = if l.key.is_empty() { "(no key)" } else { &l.key };
        let at = minute_text(l.minute);
        if l.status == Status::Missing {
            out.push(format!(
                "key {key}, minute {at}: {} of {} accepted events are not accounted for (bound {})",
                l.open, l.accepted, l.bound
            ));
        }
        if l.lost > 0 {
            out.push(format!(
                "key {key}, minute {at}: {} events LOST (the edge's log names their ids)",
                l.lost
            ));
        }
    }
    out
}

/// `YYYY-MM-DD HH:MM` (UTC) of a minute since the epoch.
pub fn minute_text(minute: i64) -> String {
    let t = edgehose_shared::timestamp::Timestamp::from_millis(minute * 60_000).to_rfc3339();
    format!("{} {}", &t[..10], &t[11..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(minute: i64, key: &str, reason: &str) -> Cell {
        Cell {
            minute,
            key: key.into(),
            door: "v1".into(),
            reason: reason.into(),
        }
    }

    fn window(settled_before: i64) -> Window {
        Window {
            from_minute: 0,
            settled_before,
            key: None,
        }
    }

    #[test]
    fn a_minute_balances_when_every_accepted_event_has_a_fate() {
        let mut edge = EdgeCounts::default();
        edge.tally.add(cell(10, "web", ""), Outcome::Accepted, 10);
        edge.tally.add(cell(10, "web", "out_of_time"), Outcome::DeadLettered, 3);
        edge.tally.add(cell(10, "web", ""), Outcome::Redriven, 2);
        edge.tally
            .add(cell(10, "web", "archive_and_queue_failed"), Outcome::Lost, 1);
        let mut receipts = Tally::new();
        receipts.add(cell(10, "web", ""), Outcome::Landed, 8);
        receipts.add(cell(10, "web", ""), Outcome::Duplicate, 1);
        receipts.add(cell(10, "web", "schema"), Outcome::Rejected, 1);
        let sources = Sources {
            edge: Some(&edge),
            receipts: Some(&receipts),
            destination: None,
        };
        let lines = balance(&sources, &window(11));
        let l = &lines[0];
        assert_eq!((l.accepted, l.landed, l.rejected, l.lost), (10, 7, 1, 1));
        assert_eq!((l.dead_lettered, l.redriven), (3, 2));
        assert_eq!((l.open, l.status), (0, Status::Balanced));
        assert_eq!(l.reasons["rejected"]["schema"], 1);
        assert_eq!((l.limited, l.labelled), (0, 0));
        assert_eq!(
            failures(&lines).len(),
            1,
            "a LOST event fails the check: {:?}",
            failures(&lines)
        );
    }

    #[test]
    fn limited_and_labelled_events_are_shown_by_reason_inside_the_accepted_and_429s_among_the_refused() {
        let mut edge = EdgeCounts::default();
        edge.tally.add(cell(10, "web", ""), Outcome::Accepted, 10);
        edge.tally.add(cell(10, "web", "address"), Outcome::Limited, 4);
        edge.tally.add(cell(10, "web", "tool"), Outcome::Labelled, 2);
        edge.tally.add(cell(10, "web", "429"), Outcome::Refused, 7);
        let mut receipts = Tally::new();
        receipts.add(cell(10, "web", ""), Outcome::Landed, 9);
        receipts.add(cell(10, "web", "bot"), Outcome::Rejected, 1);
        let sources = Sources {
            edge: Some(&edge),
            receipts: Some(&receipts),
            destination: None,
        };
        let l = &balance(&sources, &window(11))[0];
        assert_eq!((l.limited, l.labelled, l.refused), (4, 2, 7));
        assert_eq!((l.open, l.status), (0, Status::Balanced));
        assert_eq!(
            (
                l.reasons["limited"]["address"],
                l.reasons["labelled"]["tool"],
                l.reasons["refused"]["429"]
            ),
            (4, 2, 7)
        );
        assert_eq!(l.reasons["rejected"]["bot"], 1);
    }

    #[test]
    fn an_open_count_is_in_flight_until_the_minute_settles_then_missing_past_its_bound() {
        let mut edge = EdgeCounts::default();
        edge.tally.add(cell(10, "web", ""), Outcome::Accepted, 10);
        let mut receipts = Tally::new();
        receipts.add(cell(10, "web", ""), Outcome::Landed, 6);
        let sources = Sources {
            edge: Some(&edge),
            receipts: Some(&receipts),
            destination: None,
        };
        assert_eq!(balance(&sources, &window(10))[0].status, Status::InFlight);
        let settled = balance(&sources, &window(11));
        assert_eq!((settled[0].open, settled[0].status), (4, Status::Missing));
        assert_eq!(failures(&settled).len(), 1);
        // Sampled counts carry a bound: a gap inside it is no failure.
        edge.variance.insert(cell(10, "web", ""), {
            let mut v = [0.0; edgehose_shared::outcome::OUTCOMES];
            v[Outcome::Accepted.index()] = 4.0;
            v
        });
        let sources = Sources {
            edge: Some(&edge),
            receipts: Some(&receipts),
            destination: None,
        };
        let sampled = balance(&sources, &window(11));
        assert_eq!((sampled[0].bound, sampled[0].status), (6, Status::Balanced));
    }

    #[test]
    fn verified_the_destination_decides_what_landed_and_a_deleted_object_fails_the_check() {
        let mut edge = EdgeCounts::default();
        edge.tally.add(cell(10, "web", ""), Outcome::Accepted, 5);
        edge.tally.add(cell(10, "ios", ""), Outcome::Accepted, 2);
        let mut receipts = Tally::new();
        receipts.add(cell(10, "web", ""), Outcome::Landed, 5);
        receipts.add(cell(10, "ios", ""), Outcome::Landed, 2);
        let mut destination = Tally::new();
        destination.add(cell(10, "web", ""), Outcome::Landed, 3);
        destination.add(cell(10, "ios", ""), Outcome::Landed, 2);
        let sources = Sources {
            edge: Some(&edge),
            receipts: Some(&receipts),
            destination: Some(&destination),
        };
        let lines = balance(&sources, &window(11));
        let web = lines.iter().find(|l| l.key == "web").unwrap();
        assert_eq!(
            (web.landed, web.receipted_landed, web.status),
            (3, Some(5), Status::Missing)
        );
        assert_eq!(failures(&lines).len(), 1, "{:?}", failures(&lines));
        let only_ios = Window {
            key: Some("ios".into()),
            ..window(11)
        };
        let ios = balance(&sources, &only_ios);
        assert_eq!(ios.len(), 1);
        assert!(failures(&ios).is_empty());
    }
}
