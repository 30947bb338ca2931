//! What the transform logs of an invalid event in a record Firehose keeps
//! under the error prefix: its id, its reasons and a bounded excerpt of the
//! envelope, never the whole envelope. CloudWatch bills every byte logged,
//! anyone can post broken bodies, and an envelope can hold personal data:
//! the error prefix keeps the event itself, the log only says where to look.
//! At most [`MOST_LINES`] lines an invocation, then one line counting the rest.

use serde_json::{Value, json};

/// The most rejected events one invocation logs one by one.
pub const MOST_LINES: usize = 20;

/// The longest excerpt of an envelope (bytes) and of a reason's message kept.
pub const EXCERPT_BYTES: usize = 200;

/// A `rejected` line, bounded: `{"id", "rejected": [{reason, field,
/// message}], "excerpt", "envelope_bytes"}`.
pub fn summary(rejected_line: &str) -> String {
    let Ok(v) = serde_json::from_str::<Value>(rejected_line) else {
        return json!({"id": "", "rejected": [], "excerpt": cut(rejected_line), "envelope_bytes": rejected_line.len()})
            .to_string();
    };
    let reasons: Vec<Value> = v["rejected"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            json!({
                "reason": r["reason"],
                "field": r["field"],
                "message": cut(r["message"].as_str().unwrap_or_default()),
            })
        })
        .collect();
    let envelope = match &v["envelope"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    json!({
        "id": v["id"],
        "rejected": reasons,
        "excerpt": cut(&envelope),
        "envelope_bytes": envelope.len(),
    })
    .to_string()
}

/// The first [`EXCERPT_BYTES`] of `s`, cut at a character boundary, with
/// `…` when something was left out.
fn cut(s: &str) -> String {
    if s.len() <= EXCERPT_BYTES {
        return s.to_owned();
    }
    let mut end = EXCERPT_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::{EXCERPT_BYTES, summary};

    #[test]
    fn a_summary_keeps_the_id_and_reasons_and_only_an_excerpt_of_the_envelope() {
        let secret = "é".repeat(5_000);
        let line = serde_json::json!({
            "id": "ev-1",
            "received_at": "2026-12-07T08:00:00.000Z",
            "rejected": [{"reason": "missing_field", "field": "event", "message": "x".repeat(1_000)}],
            "envelope": {"v": 1, "id": "ev-1", "event": {"email": secret}},
        })
        .to_string();
        let s: serde_json::Value = serde_json::from_str(&summary(&line)).unwrap();
        assert_eq!(s["id"], "ev-1");
        assert_eq!(s["rejected"][0]["reason"], "missing_field");
        assert_eq!(s["rejected"][0]["field"], "event");
        assert!(s["rejected"][0]["message"].as_str().unwrap().len() <= EXCERPT_BYTES + 3);
        let excerpt = s["excerpt"].as_str().unwrap();
        assert!(
            excerpt.len() <= EXCERPT_BYTES + 3 && excerpt.ends_with('…'),
            "{excerpt}"
        );
        assert!(s["envelope_bytes"].as_u64().unwrap() > 10_000);
        assert!(summary(&line).len() < 1_000, "{}", summary(&line).len());
        // Not even JSON: an excerpt of it.
        let odd: serde_json::Value = serde_json::from_str(&summary(&"{".repeat(900))).unwrap();
        assert_eq!(odd["excerpt"].as_str().unwrap().len(), EXCERPT_BYTES + 3);
    }
}
