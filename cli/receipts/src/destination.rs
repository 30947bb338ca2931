//! What the destination itself holds, counted: every object under the
//! delivery stream's prefixes read line by line, valid events counted
//! `landed` and `rejected` lines `rejected` (each id once, so a copy that
//! landed twice counts once), and Firehose's error records (their
//! `rawData`, the record as sent) `rejected` line by line. This is how
//! `edgehose receipts --verify` sees objects that were deleted or never
//! written after the transform answered; locally it reads the data
//! directory firehose-local writes.

use std::collections::HashSet;
use std::io::Read as _;
use std::path::Path;

use base64::Engine as _;
use edgehose_shared::outcome::{LineAccount, Outcome, Tally};
use edgehose_shared::rejected::is_rejected_line;
use edgehose_shared::timestamp::Timestamp;

use crate::error::{Error, Result};

/// What the destination's objects hold, counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Held {
    /// `landed` and `rejected` per cell (doors are not kept in analyst lines: every cell's door is empty).
    pub tally: Tally,
    /// Objects read.
    pub objects: usize,
}

/// Counts the objects of `stream` in a local data directory
/// (firehose-local's; Firehose names each object `<stream>-1-…`).
pub fn read_dir(root: &Path, stream: &str) -> Result<Held> {
    let mut counter = Counter::default();
    let prefix = format!("{stream}-1-");
    for path in edgehose_local::aws::firehose::store::objects(root) {
        if !path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
        {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(|e| Error::Answer(format!("{}: {e}", path.display())))?;
        counter.object(&bytes);
    }
    Ok(counter.held)
}

/// The bucket of an `s3://bucket/prefix/` URL in `region`, read with AWS's
/// variables, and the prefix.
pub fn open_s3(url: &str, region: &str) -> Result<(edgehose_latency::s3::Bucket, String)> {
    use edgehose_latency::s3::{Bucket, Location, credentials_from_env};
    let answer = |e: edgehose_latency::error::Error| Error::Config(e.to_string());
    let location = Location::parse(url).map_err(answer)?;
    let tls = edgehose_latency::probe::tls_config(None).map_err(answer)?;
    let bucket = Bucket::new(
        &location.bucket,
        region,
        None,
        credentials_from_env().map_err(answer)?,
        tls,
        std::time::Duration::from_secs(30),
    )
    .map_err(answer)?;
    Ok((bucket, location.prefix))
}

/// Counts the objects of a destination on S3 delivered from `from` to
/// `to`: the stream's `prefix` hour by hour (`YYYY/MM/DD/HH/`, Firehose's
/// delivery time) and `error_prefix`'s `processing-failed/` day by day.
pub fn read_s3(
    bucket: &mut edgehose_latency::s3::Bucket,
    (prefix, error_prefix): (&str, &str),
    from: Timestamp,
    to: Timestamp,
) -> Result<Held> {
    let hours = edgehose_shared::dead_letter::hours_between(from, to);
    let mut days: Vec<String> = hours.iter().map(|h| h[..11].to_owned()).collect();
    days.dedup();
    let prefixes = hours
        .iter()
        .map(|h| format!("{prefix}{h}"))
        .chain(days.iter().map(|d| format!("{error_prefix}processing-failed/{d}")));
    let mut counter = Counter::default();
    for p in prefixes {
        let objects = bucket
            .list(&p)
            .map_err(|e| Error::Answer(format!("listing s3 {p}: {e}")))?;
        for o in objects {
            let bytes = bucket
                .get(&o.key)
                .map_err(|e| Error::Answer(format!("reading s3 {}: {e}", o.key)))?;
            counter.object(&bytes);
        }
    }
    Ok(counter.held)
}

/// Counts objects as they are read.
#[derive(Default)]
pub struct Counter {
    held: Held,
    landed: HashSet<String>,
    rejected: HashSet<String>,
}

impl Counter {
    /// Counts one object's lines (gzip objects inflated).
    pub fn object(&mut self, bytes: &[u8]) {
        self.held.objects += 1;
        let inflated;
        let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            if flate2::read::MultiGzDecoder::new(bytes).read_to_end(&mut out).is_err() {
                return;
            }
            inflated = out;
            &inflated
        } else {
            bytes
        };
        for line in String::from_utf8_lossy(bytes)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
        {
            self.line(line);
        }
    }

    fn line(&mut self, line: &str) {
        #[derive(serde::Deserialize)]
        struct ErrorRecord {
            #[serde(rename = "rawData")]
            raw_data: String,
        }
        if line.contains("\"rawData\"")
            && let Ok(record) = serde_json::from_str::<ErrorRecord>(line)
        {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(record.raw_data)
                .unwrap_or_default();
            for inner in String::from_utf8_lossy(&raw)
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
            {
                self.count(inner, Outcome::Rejected);
            }
            return;
        }
        let outcome = if is_rejected_line(line) {
            Outcome::Rejected
        } else {
            Outcome::Landed
        };
        self.count(line, outcome);
    }

    fn count(&mut self, line: &str, outcome: Outcome) {
        let mut account = LineAccount::of(line, Timestamp::from_millis(0));
        let seen = match outcome {
            Outcome::Landed => &mut self.landed,
            _ => &mut self.rejected,
        };
        if !account.id.is_empty() && !seen.insert(account.id) {
            return;
        }
        account.cell.door = String::new();
        self.held.tally.add(account.cell, outcome, 1);
    }

    /// What was counted.
    pub fn held(self) -> Held {
        self.held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_counted_once_per_id_by_fate_and_error_records_line_by_line() {
        let t = "2024-05-01T12:30:00.250Z";
        let landed = format!(r#"{{"id":"a","event":"x","event_time":"{t}","received_at":"{t}","key_id":"web"}}"#);
        let envelope =
            r#"{"v":1,"id":"b","received_at":1714566600250,"event_time":1714566600250,"key_id":"web","event":{}}"#;
        let reasons = [edgehose_shared::validate::Violation::new(
            edgehose_shared::validate::Reason::Quarantined,
            "",
            "q",
        )];
        let mut rejected = Vec::new();
        edgehose_shared::rejected::Rejected::new("b", Some(1_714_566_600_250), &reasons, envelope)
            .write_to(&mut rejected);
        let rejected = String::from_utf8(rejected).unwrap();
        let failed =
            r#"{"v":1,"id":"c","received_at":1714566600250,"event_time":1714566600250,"key_id":"ios","event":{}}"#;
        let error_record =
            serde_json::json!({"attemptsMade": 1, "rawData": base64::engine::general_purpose::STANDARD.encode(failed)})
                .to_string();
        let mut c = Counter::default();
        c.object(format!("{landed}\n{landed}\n{rejected}").as_bytes());
        c.object(error_record.as_bytes());
        let held = c.held();
        assert_eq!(held.objects, 2);
        assert_eq!(
            held.tally.total(Outcome::Landed),
            1,
            "the copy that landed twice counts once"
        );
        assert_eq!(held.tally.total(Outcome::Rejected), 2);
        let minute = 1_714_566_600_250 / 60_000;
        assert!(
            held.tally
                .cells()
                .all(|(cell, _)| cell.minute == minute && cell.door.is_empty())
        );
    }
}
