//! The line a rejected event is kept as: its id, when it arrived, every
//! reason, and the envelope as received. Both sides write it: the edge for
//! what it can judge before packing (its records then hold nothing else, so
//! they land under the error prefix), the transform for what only it can
//! judge (a mixed record's invalid pieces). Read one back with
//! [`is_rejected_line`].

use serde::Serialize;
use serde_json::value::RawValue;

use crate::timestamp::Rfc3339;
use crate::validate::Violation;

/// A piece that could not be delivered as an event, with its reasons.
#[derive(Serialize)]
pub struct Rejected<'a> {
    /// The envelope's id (empty when the line was no envelope).
    pub id: &'a str,
    /// When the edge received it, when known.
    pub received_at: Option<Rfc3339>,
    /// Every reason.
    pub rejected: &'a [Violation],
    /// The line as received.
    pub envelope: Original<'a>,
}

/// The line as received: its JSON when it is a JSON object (as an envelope
/// is), else its text, so a reader can always tell which it was.
#[derive(Serialize)]
#[serde(untagged)]
pub enum Original<'a> {
    /// The line's JSON object, byte for byte.
    Json(&'a RawValue),
    /// A line that is not JSON, as a string.
    Text(&'a str),
}

impl<'a> Rejected<'a> {
    /// The rejected line for `line` (an envelope, or what stood in its place).
    pub fn new(id: &'a str, received_at_ms: Option<i64>, reasons: &'a [Violation], line: &'a str) -> Self {
        Self {
            id,
            received_at: received_at_ms.map(Rfc3339::of_millis),
            rejected: reasons,
            envelope: serde_json::from_str::<&RawValue>(line)
                .ok()
                .filter(|raw| raw.get().starts_with('{'))
                .map_or(Original::Text(line), Original::Json),
        }
    }

    /// Appends the line and a newline to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let len = out.len();
        if serde_json::to_writer(&mut *out, self).is_ok() {
            out.push(b'\n');
        } else {
            // Not reachable for these types (string keys, no maps that can
            // fail); never leave half a line behind.
            out.truncate(len);
        }
    }

    /// The line, without its newline.
    pub fn to_line(&self) -> String {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out.pop();
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Whether `line` is a rejected line already (written by the edge): an
/// object whose first member is `id` and that has `rejected` and `envelope`.
/// Envelopes begin with `v`, so the two never mix.
pub fn is_rejected_line(line: &str) -> bool {
    line.starts_with(r#"{"id":"#)
        && serde_json::from_str::<Shape<'_>>(line).is_ok_and(|s| s.rejected.is_some() && s.envelope.is_some())
}

#[derive(serde::Deserialize)]
struct Shape<'a> {
    #[serde(borrow)]
    rejected: Option<&'a RawValue>,
    #[serde(borrow)]
    envelope: Option<&'a RawValue>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::Reason;

    #[test]
    fn a_rejected_line_keeps_the_envelope_byte_for_byte_and_reads_back_as_one() {
        let envelope = r#"{"v":1,"id":"e1","received_at":5,"event_time":5,"event":{"event":""}}"#;
        let reasons = [Violation::new(Reason::Empty, "event", "event is empty")];
        let line = Rejected::new("e1", Some(0), &reasons, envelope).to_line();
        assert_eq!(
            line,
            format!(
                r#"{{"id":"e1","received_at":"1970-01-01T00:00:00.000Z","rejected":[{{"reason":"empty","field":"event","message":"event is empty"}}],"envelope":{envelope}}}"#
            )
        );
        assert!(is_rejected_line(&line));
        assert!(!is_rejected_line(envelope));
        let text = Rejected::new("", None, &reasons, "not json").to_line();
        assert!(text.ends_with(r#""envelope":"not json"}"#), "{text}");
        assert!(is_rejected_line(&text));
        assert!(!is_rejected_line(r#"{"id":"x","rejected":[]}"#));
    }

    #[test]
    fn a_line_that_is_json_but_no_object_is_kept_as_its_text() {
        // Found by `make fuzz` (envelope): embedded as JSON, the string
        // "~" could not be told from the text ~.
        let reasons = [Violation::new(Reason::NotAnEnvelope, "", "not an envelope")];
        let line = "\n\n\"~\"";
        let kept = Rejected::new("", None, &reasons, line).to_line();
        let v: serde_json::Value = serde_json::from_str(&kept).unwrap();
        assert_eq!(v["envelope"], serde_json::Value::String(line.to_owned()));
        for scalar in ["12", "null", "[1]"] {
            let kept = Rejected::new("", None, &reasons, scalar).to_line();
            let v: serde_json::Value = serde_json::from_str(&kept).unwrap();
            assert_eq!(v["envelope"], serde_json::Value::String(scalar.to_owned()));
        }
    }
}
