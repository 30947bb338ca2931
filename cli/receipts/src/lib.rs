//! `edgehose receipts`: every accepted event accounted for, per write key
//! and minute, from the edge's outcome counts (Workers Analytics Engine, or
//! the stand-in under `make dev`), the transform's receipts (CloudWatch
//! Logs, or firehose-local's) and, verified, what the destination holds
//! (`ledger.rs` says how they add up); and `edgehose trace`, where one id is
//! (`trace.rs`).

pub mod analytics;
pub mod destination;
pub mod error;
pub mod html;
pub mod ledger;
pub mod logs;
pub mod metrics;
pub mod report;
pub mod trace;

use std::path::PathBuf;

use edgehose_shared::timestamp::Timestamp;
use serde::Serialize;

use crate::analytics::Analytics;
use crate::error::Result;
use crate::ledger::{Line, Sources, Window};
use crate::logs::Logs;

/// What to read, and which minutes.
pub struct Options {
    /// The first moment (ms since the epoch) whose events are accounted.
    pub since_ms: i64,
    /// Now (ms since the epoch).
    pub now_ms: i64,
    /// A minute that began less than this long ago is still in flight.
    pub settle_ms: i64,
    /// One key only.
    pub key: Option<String>,
    /// The edge's counts.
    pub analytics: Analytics,
    /// The transform's receipts.
    pub logs: Logs,
    /// Where to count what landed, read line by line.
    pub destination: Option<Destination>,
}

/// A destination to count.
pub enum Destination {
    /// A data directory (firehose-local's) and the stream's name.
    Dir(PathBuf, String),
    /// A bucket on S3, the stream's prefix and its error prefix.
    S3(Box<edgehose_latency::s3::Bucket>, String, String),
}

/// The ledger and where it was read from.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Each key's minutes.
    pub lines: Vec<Line>,
    /// What was read, in words.
    pub read_from: Vec<String>,
    /// Why the check fails (empty: it passes).
    pub failures: Vec<String>,
}

/// Reads every source and balances them.
pub fn read(o: &mut Options) -> Result<Report> {
    let edge = o.analytics.read(o.since_ms.div_euclid(1000))?;
    let receipts = o.logs.read(o.since_ms, o.now_ms + 60_000)?;
    let mut read_from = vec![
        format!(
            "edge outcome counts from {} (dataset {}; {})",
            o.analytics.sql_url,
            o.analytics.dataset,
            if edge.most_sampled > 1 {
                format!(
                    "sampled, up to 1 point in {} kept: counts carry a bound",
                    edge.most_sampled
                )
            } else {
                "unsampled: exact".to_owned()
            }
        ),
        format!(
            "{} transform receipts from log group {} at {} (stream {})",
            receipts.lines, o.logs.group, o.logs.endpoint, o.logs.stream
        ),
    ];
    let destination = match &mut o.destination {
        Some(Destination::Dir(dir, stream)) => {
            let held = destination::read_dir(dir, stream)?;
            read_from.push(format!(
                "{} objects of stream {stream} in {}, line by line",
                held.objects,
                dir.display()
            ));
            Some(held.tally)
        }
        Some(Destination::S3(bucket, prefix, error_prefix)) => {
            let (from, to) = (Timestamp::from_millis(o.since_ms), Timestamp::from_millis(o.now_ms));
            let held = destination::read_s3(bucket, (prefix, error_prefix), from, to)?;
            read_from.push(format!(
                "{} objects under s3 {prefix} and {error_prefix}processing-failed/, line by line",
                held.objects
            ));
            Some(held.tally)
        }
        None => None,
    };
    let window = Window {
        from_minute: o.since_ms.div_euclid(60_000),
        // A minute settles `settle` after it began: the events received in
        // it have had at least that long.
        settled_before: (o.now_ms - o.settle_ms).div_euclid(60_000) + 1,
        key: o.key.clone(),
    };
    let sources = Sources {
        edge: Some(&edge),
        receipts: Some(&receipts.tally),
        destination: destination.as_ref(),
    };
    let lines = ledger::balance(&sources, &window);
    let failures = ledger::failures(&lines);
    Ok(Report {
        lines,
        read_from,
        failures,
    })
}
