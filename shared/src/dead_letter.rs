//! Where dead letters are kept: one NDJSON object per set of lines in the
//! R2 archive, under a key made from the lines themselves, so writing the
//! same lines twice (a retried write whose first answer was lost, a
//! consumer run repeated by the queue) stores one object, not two, and
//! redrive cannot send them twice.
//!
//! ```
//! use edgehose_shared::dead_letter::{archive_key, PREFIX};
//! use edgehose_shared::timestamp::Timestamp;
//!
//! let lines = [r#"{"v":1,"id":"a","received_at":1714566600000}"#];
//! let key = archive_key(&lines, Timestamp::from_millis(0));
//! assert!(key.starts_with(&format!("{PREFIX}2024/05/01/12/")));
//! assert_eq!(key, archive_key(&lines, Timestamp::from_millis(99)));
//! ```

use crate::timestamp::Timestamp;

/// Where archived dead letters are kept in the bucket.
pub const PREFIX: &str = "dead-letters/";

/// Where redrive sets aside an object that failed to land
/// [`REDRIVE_MAX_ATTEMPTS`] times, so it no longer blocks the rest.
pub const SET_ASIDE_PREFIX: &str = "dead-letters-set-aside/";

/// Where redrive notes what it brought back: one object per archived object
/// it emptied, `redriven/YYYY/MM/DD/HH/` of the redrive, holding one
/// `{"id":…,"from":"<archive key>","at":<ms>}` line per event, so `edgehose
/// trace` can say an event was dead-lettered and redriven.
pub const REDRIVEN_PREFIX: &str = "redriven/";

/// Redrive rounds an archived object may fail before it is set aside.
pub const REDRIVE_MAX_ATTEMPTS: u32 = 5;

/// The object's body: the lines, one per line.
pub fn archive_body<S: AsRef<str>>(lines: &[S]) -> String {
    let mut out = String::with_capacity(lines.iter().map(|l| l.as_ref().len() + 1).sum());
    for l in lines {
        out.push_str(l.as_ref());
        out.push('\n');
    }
    out
}

/// The key of the object holding `lines`: `dead-letters/YYYY/MM/DD/HH/`
/// of the earliest receive time among them (`now` when none says), then
/// the SHA-256 of its body. The same lines always get the same key; keys
/// sort oldest first, as redrive takes them.
pub fn archive_key<S: AsRef<str>>(lines: &[S], now: Timestamp) -> String {
    let earliest = lines
        .iter()
        .filter_map(|l| received_at(l.as_ref()))
        .min()
        .map_or(now, Timestamp::from_millis);
    let digest = crate::sigv4::sha256_hex(archive_body(lines).as_bytes());
    format!("{PREFIX}{}{digest}.ndjson", hour_path(earliest))
}

/// The key of the note that the lines of `from` were redriven at `at`.
pub fn redriven_key(from: &str, at: Timestamp) -> String {
    let digest = crate::sigv4::sha256_hex(from.as_bytes());
    format!("{REDRIVEN_PREFIX}{}{digest}.ndjson", hour_path(at))
}

/// The note's body: one line per id.
pub fn redriven_body<S: AsRef<str>>(ids: &[S], from: &str, at: Timestamp) -> String {
    let mut out = String::new();
    for id in ids {
        out.push_str(&serde_json::json!({"id": id.as_ref(), "from": from, "at": at.as_millis()}).to_string());
        out.push('\n');
    }
    out
}

/// The hour paths (`YYYY/MM/DD/HH/`) from `from`'s hour to `to`'s, oldest first.
pub fn hours_between(from: Timestamp, to: Timestamp) -> Vec<String> {
    const HOUR_MS: i64 = 3_600_000;
    let mut out = Vec::new();
    let mut h = from.as_millis().div_euclid(HOUR_MS);
    while h <= to.as_millis().div_euclid(HOUR_MS) {
        out.push(hour_path(Timestamp::from_millis(h * HOUR_MS)));
        h += 1;
    }
    out
}

/// The lines of an object's text whose event id is `id` (an envelope's
/// `id`, a `rejected` line's envelope's, a redrive note's), with their
/// line numbers from 1.
pub fn lines_with_id<'t>(text: &'t str, id: &str) -> Vec<(usize, &'t str)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.contains(id))
        .filter(|(_, l)| crate::outcome::LineAccount::of(l, Timestamp::from_millis(0)).id == id)
        .map(|(n, l)| (n + 1, l))
        .collect()
}

/// `YYYY/MM/DD/HH/` of `t`, UTC.
pub fn hour_path(t: Timestamp) -> String {
    let b = t.rfc3339_bytes();
    let s = String::from_utf8_lossy(&b);
    format!("{}/{}/{}/{}/", &s[0..4], &s[5..7], &s[8..10], &s[11..13])
}

/// An envelope line's `received_at`, if it has one.
fn received_at(line: &str) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct At {
        received_at: i64,
    }
    serde_json::from_str::<At>(line).ok().map(|a| a.received_at)
}

#[cfg(test)]
mod tests {
    use super::{PREFIX, archive_body, archive_key};
    use crate::timestamp::Timestamp;

    #[test]
    fn hours_run_oldest_first_and_an_id_is_found_by_its_line_not_its_text() {
        let from = Timestamp::from_millis(1_714_566_600_000); // 12:30
        let hours = super::hours_between(from, from.add_millis(2 * 3_600_000));
        assert_eq!(hours, ["2024/05/01/12/", "2024/05/01/13/", "2024/05/01/14/"]);
        let text = "{\"v\":1,\"id\":\"a\",\"received_at\":1,\"event\":{\"ref\":\"b\"}}\n{\"v\":1,\"id\":\"b\",\"received_at\":1}\n";
        assert_eq!(
            super::lines_with_id(text, "b")
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>(),
            [2]
        );
        let note = super::redriven_body(&["b"], "dead-letters/x", from);
        assert_eq!(super::lines_with_id(&note, "b").len(), 1);
        assert!(super::redriven_key("dead-letters/x", from).starts_with("redriven/2024/05/01/12/"));
    }

    #[test]
    fn the_same_lines_get_the_same_key_and_other_lines_another() {
        let a = [
            r#"{"id":"a","received_at":1714566600000}"#,
            r#"{"id":"b","received_at":1714560000000}"#,
        ];
        let b = [r#"{"id":"a","received_at":1714566600000}"#];
        let now = Timestamp::from_millis(1_800_000_000_000);
        assert_eq!(archive_key(&a, now), archive_key(&a, Timestamp::from_millis(0)));
        assert_ne!(archive_key(&a, now), archive_key(&b, now));
        // The earliest receive time names the hour.
        assert!(archive_key(&a, now).starts_with(&format!("{PREFIX}2024/05/01/10/")));
        // Lines that say no time are filed under now.
        assert!(archive_key(&["not json"], now).starts_with(&format!("{PREFIX}2027/01/15/08/")));
        assert_eq!(archive_body(&b), format!("{}\n", b[0]));
    }
}
