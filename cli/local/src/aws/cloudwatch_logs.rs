//! A CloudWatch Logs log group, as the local stand-ins keep one: every line
//! a Lambda function prints, stamped when it was printed, read back by
//! `FilterLogEvents` (firehose-local serves it for its transform) the way
//! `edgehose receipts` reads the real one. It keeps the most recent
//! [`KEEP_BYTES`] of messages; CloudWatch keeps them as long as the group's
//! retention says.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::clock::now;

/// The most message bytes a group keeps; older events are dropped first.
pub const KEEP_BYTES: usize = 128 * 1024 * 1024;

/// The most events one `FilterLogEvents` answer carries (CloudWatch's own
/// ceiling is 10,000 events or 1 MB).
pub const PAGE_EVENTS: usize = 10_000;

/// One log event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    /// Its place in the group, which a page token names.
    pub seq: u64,
    /// When it was printed, ms since the epoch.
    pub timestamp: i64,
    /// The line.
    pub message: String,
}

/// A log group.
#[derive(Debug)]
pub struct LogGroup {
    /// `/aws/lambda/<function>`.
    pub name: String,
    events: Mutex<(VecDeque<LogEvent>, usize, u64)>,
}

/// Why a filter could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PatternError(String);

impl LogGroup {
    /// An empty group.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            events: Mutex::new((VecDeque::new(), 0, 0)),
        }
    }

    /// Keeps one printed line, stamped now.
    pub fn push(&self, message: &str) {
        let mut guard = self.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (events, bytes, seq) = &mut *guard;
        *seq += 1;
        *bytes += message.len();
        events.push_back(LogEvent {
            seq: *seq,
            timestamp: now().as_millis(),
            message: message.to_owned(),
        });
        while *bytes > KEEP_BYTES {
            match events.pop_front() {
                Some(e) => *bytes -= e.message.len(),
                None => break,
            }
        }
    }

    /// The events stamped in `[start, end)` whose message matches
    /// `pattern`, from after event `after` on, at most [`PAGE_EVENTS`]; and
    /// the last one's place when more may follow.
    ///
    /// `pattern` is CloudWatch's term syntax: empty matches everything;
    /// otherwise every term (a bare word or a "quoted phrase") must appear.
    /// JSON and metric patterns are refused, not misread.
    pub fn filter(
        &self,
        (start, end): (i64, i64),
        pattern: &str,
        after: u64,
    ) -> Result<(Vec<LogEvent>, Option<u64>), PatternError> {
        let terms = terms(pattern)?;
        let guard = self.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = Vec::new();
        for e in guard.0.iter().filter(|e| e.seq > after) {
            if out.len() == PAGE_EVENTS {
                return Ok((out, Some(e.seq - 1)));
            }
            if (start..end).contains(&e.timestamp) && terms.iter().all(|t| e.message.contains(t.as_str())) {
                out.push(e.clone());
            }
        }
        Ok((out, None))
    }
}

/// The terms of a filter pattern.
fn terms(pattern: &str) -> Result<Vec<String>, PatternError> {
    let pattern = pattern.trim();
    if pattern.starts_with('{') || pattern.starts_with('[') || pattern.starts_with('%') {
        return Err(PatternError(format!(
            "the local log group reads term patterns only (words, \"quoted phrases\"), not {pattern:?}"
        )));
    }
    let mut out = Vec::new();
    let mut rest = pattern;
    while let Some(c) = rest.chars().next() {
        if c.is_whitespace() {
            rest = &rest[c.len_utf8()..];
        } else if c == '"' {
            let Some(end) = rest[1..].find('"') else {
                return Err(PatternError(format!("unclosed quote in {pattern:?}")));
            };
            out.push(rest[1..=end].to_owned());
            rest = &rest[end + 2..];
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            out.push(rest[..end].to_owned());
            rest = &rest[end..];
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_finds_lines_by_their_terms_within_the_time_range_a_page_at_a_time() {
        let g = LogGroup::new("/aws/lambda/t");
        g.push(r#"{"edgehose_receipt":"transform","rows":[]}"#);
        g.push("START RequestId: 1");
        g.push(r#"{"edgehose_receipt":"transform","rows":[{"minute":1}]}"#);
        let all = (0, i64::MAX);
        let (found, more) = g.filter(all, r#""edgehose_receipt""#, 0).unwrap();
        assert_eq!((found.len(), more), (2, None));
        assert_eq!(g.filter(all, "", 0).unwrap().0.len(), 3);
        assert_eq!(g.filter(all, "START 1", 0).unwrap().0.len(), 1);
        assert_eq!(g.filter(all, "", found[0].seq).unwrap().0.len(), 2, "after the first");
        assert!(
            g.filter((0, 1), "", 0).unwrap().0.is_empty(),
            "nothing was printed in 1970"
        );
        assert!(g.filter(all, "{ $.level = \"ERROR\" }", 0).is_err());
        assert!(g.filter(all, "\"open", 0).is_err());
    }
}
