//! Verdicts on request: a client that adds `?verdicts=1` to its request gets,
//! in the answer, one verdict per event it sent, judged by the same rules
//! the edge applies off the request path (`judge.rs`):
//!
//! ```text
//! {"accepted":3,
//!  "results":{"m-1":{"index":0,"result":"ok"},
//!             "m-2":{"index":1,"result":"rejected","details":[{"reason":"missing_field","field":"event","message":"…"}]},
//!             "0193…":{"index":2,"result":"quarantined","details":{"reason":"…"}}},
//!  "ok_means":"…"}
//! ```
//!
//! PostHog's `results` shape, keyed by the event's id (the client's own when
//! it sent one; the envelope's otherwise, with `index` its place in the
//! request). `ok` is what the edge can say when it answers, and `ok_means`
//! says what that is in the running mode: checked, and held or stored. A
//! request that does not ask is answered as it always was, and nothing is
//! judged on its path.

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::envelope::Envelope;
use crate::judge::{Rules, Verdict, judge};

/// What `ok` means unless the shell says more: the edge's own rules passed.
pub const OK_MEANS_CHECKED: &str = "valid by the edge's rules (limits, Segment's spec, the declared sources); a JSON Schema the transform applies may still reject it";

/// The query parameter that asks for verdicts.
pub const QUERY_PARAM: &str = "verdicts";

/// Whether the query asks for verdicts: `verdicts=1` or `true` asks,
/// `0`/`false` (or no such parameter) does not; anything else is an error
/// naming the parameter.
pub fn asked(query: Option<&str>) -> Result<bool, String> {
    let Some(query) = query else { return Ok(false) };
    let mut asked = false;
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name != QUERY_PARAM {
            continue;
        }
        asked = match value {
            "1" | "true" | "" => true,
            "0" | "false" => false,
            other => {
                return Err(format!(
                    "the query parameter {QUERY_PARAM} takes 1 or true (verdicts in the answer) or 0 or false, not {other:?}"
                ));
            }
        };
    }
    Ok(asked)
}

/// One event's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Judged {
    /// Its place in the request (a quarantined payload's parts share one).
    pub index: usize,
    /// `ok`, `rejected` or `quarantined`.
    pub result: &'static str,
    /// Why, for `rejected` (every violation) and `quarantined` (the reason).
    #[serde(skip_serializing_if = "Value::is_null")]
    pub details: Value,
}

/// The verdict of every accepted envelope line, keyed by id.
pub fn results<S: AsRef<str>>(lines: &[S], rules: Rules<'_>) -> Map<String, Value> {
    let mut out = Map::new();
    let mut index = 0usize;
    let mut last_id: Option<String> = None;
    for line in lines {
        let line = line.as_ref();
        let Ok(envelope) = Envelope::parse(line) else {
            continue; // every line the edge writes is an envelope
        };
        let id = envelope.id.clone().into_owned();
        // The parts of one quarantined payload share its id and its verdict.
        if last_id.as_deref() == Some(id.as_str()) {
            continue;
        }
        let judged = match (&envelope.quarantine, judge(line, rules)) {
            (Some(q), _) => Judged {
                index,
                result: "quarantined",
                details: json!({"reason": q.reason}),
            },
            (None, Verdict::Event(_)) => Judged {
                index,
                result: "ok",
                details: Value::Null,
            },
            (None, Verdict::Rejected(rejected)) => Judged {
                index,
                result: "rejected",
                details: violations(&rejected),
            },
        };
        out.insert(id.clone(), serde_json::to_value(judged).unwrap_or(Value::Null));
        last_id = Some(id);
        index += 1;
    }
    out
}

/// The violations a `rejected` line carries, as JSON.
fn violations(rejected_line: &str) -> Value {
    serde_json::from_str::<Value>(rejected_line).map_or(Value::Null, |mut v| v["rejected"].take())
}

/// Adds `results` and `ok_means` to an answer's JSON object.
pub fn add_to_answer(body: &str, results: Map<String, Value>, ok_means: &str) -> String {
    let mut answer: Map<String, Value> = serde_json::from_str(body).unwrap_or_default();
    answer.insert("results".into(), Value::Object(results));
    answer.insert("ok_means".into(), Value::String(ok_means.to_owned()));
    Value::Object(answer).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_asks_or_does_not_and_a_wrong_value_is_named() {
        assert_eq!(asked(None), Ok(false));
        assert_eq!(asked(Some("key=k")), Ok(false));
        assert_eq!(asked(Some("key=k&verdicts=1")), Ok(true));
        assert_eq!(asked(Some("verdicts=true")), Ok(true));
        assert_eq!(asked(Some("verdicts")), Ok(true));
        assert_eq!(asked(Some("verdicts=0")), Ok(false));
        assert!(asked(Some("verdicts=maybe")).unwrap_err().contains("verdicts"));
    }
}
