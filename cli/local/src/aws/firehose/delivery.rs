//! Delivery: each buffer taken when due, through the transformation Lambda
//! (when one is configured), into one destination object per prefix (or,
//! to the Iceberg destination, one write per table) and one error object
//! under the `processing-failed` prefix; retried until it lands, and only
//! then is its spool removed.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use edgehose_shared::timestamp::Timestamp;
use serde::Serialize;

use super::counters::Counters;
use super::iceberg::{Iceberg, Route};
use super::spool::read_spool;
use super::store::{Store, hour_path, object_name};
use super::stream::{Record, Stream};
use super::transform::{Transform, invocations, invoke_with_retries};
use super::transform_answer::Answer;
use crate::clock::now;
use crate::error::{Error, Result};

/// Runs a stream's delivery loop until `stop`, delivering what is left
/// before returning. Spool files from an earlier run are delivered first.
pub fn run(
    stream: &Stream,
    store: &Store,
    transform: Option<&Transform>,
    iceberg: Option<&Iceberg>,
    counters: &Counters,
    stop: &std::sync::atomic::AtomicBool,
) {
    let to = Destination { store, iceberg };
    for path in stream.leftovers(store) {
        let records = read_spool(&path);
        if !records.is_empty() {
            eprintln!(
                "firehose-local: delivering {} records spooled by an earlier run ({})",
                records.len(),
                path.display()
            );
            deliver_and_release(stream, &to, transform, counters, records, vec![path], stop);
        } else {
            let _ = std::fs::remove_file(&path);
        }
    }
    while let Some((records, spool)) = stream.take_when_due(stop) {
        deliver_and_release(stream, &to, transform, counters, records, spool, stop);
    }
}

/// Where a stream delivers: the data directory, and the Iceberg catalog.
struct Destination<'a> {
    store: &'a Store,
    iceberg: Option<&'a Iceberg>,
}

fn deliver_and_release(
    stream: &Stream,
    to: &Destination<'_>,
    transform: Option<&Transform>,
    counters: &Counters,
    records: Vec<Record>,
    spools: Vec<PathBuf>,
    stop: &std::sync::atomic::AtomicBool,
) {
    let _one_at_a_time = stream.delivering.lock();
    loop {
        match deliver(stream, to, transform, counters, &records) {
            Ok(()) => break,
            // Stopping: the records stay in their spool files, and the next
            // run over this directory delivers them first.
            Err(e) if stop.load(Ordering::SeqCst) => {
                eprintln!(
                    "firehose-local: stopping with {} records undelivered ({e}); they stay spooled in {} for the next run",
                    records.len(),
                    to.store.spool_dir(&stream.config.name).display()
                );
                return;
            }
            // Like Firehose with S3 unavailable: keep retrying, never drop.
            Err(e) => {
                eprintln!(
                    "firehose-local: delivery to {} failed, retrying: {e}",
                    to.store.root().display()
                );
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
    for path in spools {
        let _ = std::fs::remove_file(path);
    }
}

/// A record Firehose could not transform, as it writes it under the error prefix
/// (<https://docs.aws.amazon.com/firehose/latest/dev/data-transformation-failure-handling.html>).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorRecord<'a> {
    attempts_made: u32,
    arrival_timestamp: i64,
    error_code: &'a str,
    error_message: &'a str,
    attempt_ending_timestamp: i64,
    raw_data: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    lambda_arn: Option<&'a str>,
}

/// Delivers one buffer: transformed (when a function is configured) into
/// one destination object and one error object.
fn deliver(
    stream: &Stream,
    to: &Destination<'_>,
    transform: Option<&Transform>,
    counters: &Counters,
    records: &[Record],
) -> Result<()> {
    let store = to.store;
    // A buffer is taken only when it holds records.
    debug_assert!(!records.is_empty(), "an empty buffer was delivered");
    let oldest = records
        .iter()
        .map(|r| r.arrival_ms)
        .min()
        .map_or_else(now, Timestamp::from_millis);
    let c = &stream.config;
    // Delivered bytes by object key prefix: one prefix, or one per partition.
    let mut outs: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let plain = format!("{}{}", c.prefix, hour_path(oldest));
    let mut errors: Vec<u8> = Vec::new();
    let (mut delivered, mut dropped, mut failed, mut lines) = (0u64, 0u64, 0u64, 0u64);
    // To the Iceberg destination: rows by table, each with its record.
    let mut routed: BTreeMap<Route, Vec<(&Record, serde_json::Value)>> = BTreeMap::new();
    let mut error = |r: &Record, code: &str, message: &str, attempts: u32, lambda_arn: Option<&str>| {
        let e = ErrorRecord {
            attempts_made: attempts,
            arrival_timestamp: r.arrival_ms,
            error_code: code,
            error_message: message,
            attempt_ending_timestamp: now().as_millis(),
            raw_data: B64.encode(&r.data),
            lambda_arn,
        };
        errors.extend_from_slice(&serde_json::to_vec(&e).map_err(|e| Error::json("an error record", e))?);
        errors.push(b'\n');
        Ok::<(), Error>(())
    };
    match transform {
        None => {
            for r in records {
                outs.entry(plain.clone()).or_default().extend_from_slice(&r.data);
                lines += r.data.iter().filter(|&&b| b == b'\n').count() as u64;
            }
            delivered = records.len() as u64;
        }
        Some(t) => {
            for chunk in invocations(records, stream.config.processor_bytes) {
                let results = invoke_with_retries(stream, t, counters, chunk);
                for (r, result) in chunk.iter().zip(results) {
                    let result = match (&c.partition_prefix, result) {
                        (Some(template), Answer::Ok { data, keys, .. }) => match partition_key(template, &keys) {
                            Ok(prefix) => {
                                lines += data.iter().filter(|&&b| b == b'\n').count() as u64;
                                outs.entry(prefix).or_default().extend_from_slice(&data);
                                delivered += 1;
                                continue;
                            }
                            Err(message) => Answer::Failed {
                                code: "DynamicPartitioning.MetadataExtractionFailed",
                                message,
                                attempts: 1,
                            },
                        },
                        (_, other) => other,
                    };
                    let result = match (c.iceberg.is_some(), result) {
                        (true, Answer::Ok { data, route, .. }) => match row_of(&data, route) {
                            Ok((route, row)) => {
                                routed.entry(route).or_default().push((r, row));
                                continue;
                            }
                            Err((code, message)) => Answer::Failed {
                                code,
                                message,
                                attempts: 1,
                            },
                        },
                        (_, other) => other,
                    };
                    match result {
                        Answer::Ok { data, .. } => {
                            lines += data.iter().filter(|&&b| b == b'\n').count() as u64;
                            outs.entry(plain.clone()).or_default().extend_from_slice(&data);
                            delivered += 1;
                        }
                        Answer::Dropped => dropped += 1,
                        Answer::Failed {
                            code,
                            message,
                            attempts,
                        } => {
                            error(r, code, &message, attempts, Some(&t.arn))?;
                            failed += 1;
                        }
                    }
                }
            }
        }
    }
    if !routed.is_empty() {
        let iceberg = to
            .iceberg
            .ok_or_else(|| Error::config("an Iceberg stream without a catalog"))?;
        for (route, batch) in &routed {
            let rows: Vec<serde_json::Value> = batch.iter().map(|(_, row)| row.clone()).collect();
            // Fails as a whole (the writer gone): the buffer is delivered
            // again, and every row upserted again leaves one row.
            let written = iceberg.write(route, &rows)?;
            for (i, code, message) in &written.refused {
                if let Some((r, _)) = batch.get(*i) {
                    error(r, code, message, 1, None)?;
                    failed += 1;
                }
            }
            delivered += batch.len() as u64 - written.refused.len() as u64;
            lines += written.rows;
        }
    }
    for (prefix, out) in outs {
        if out.is_empty() {
            continue;
        }
        let (bytes, suffix) = if c.gzip { (gzip(&out)?, ".gz") } else { (out, "") };
        let key = format!("{prefix}{}{suffix}", object_name(&c.name, oldest));
        store.put(&key, &bytes)?;
        counters.objects.fetch_add(1, Ordering::Relaxed);
    }
    if !errors.is_empty() {
        let key = format!(
            "{}{}{}",
            c.error_prefix,
            hour_path(oldest),
            object_name(&c.name, oldest)
        );
        store.put(&key, &errors)?;
        counters.objects.fetch_add(1, Ordering::Relaxed);
    }
    counters.records_delivered.fetch_add(delivered, Ordering::Relaxed);
    counters.records_dropped.fetch_add(dropped, Ordering::Relaxed);
    counters.records_failed.fetch_add(failed, Ordering::Relaxed);
    counters.lines_delivered.fetch_add(lines, Ordering::Relaxed);
    Ok(())
}

/// `template` with each `!{partitionKeyFromLambda:NAME}` replaced by the
/// record's key NAME; the error names the first key it lacks, or one whose
/// value would climb out of the data directory (`..`, `.`, a leading `/`:
/// harmless in an S3 key, a path traversal on a disk).
fn partition_key(template: &str, keys: &BTreeMap<String, String>) -> Result<String, String> {
    const OPEN: &str = "!{partitionKeyFromLambda:";
    let mut out = String::new();
    let mut rest = template;
    while let Some(at) = rest.find(OPEN) {
        out.push_str(&rest[..at]);
        let after = &rest[at + OPEN.len()..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[at..]);
            return Ok(out);
        };
        let name = &after[..end];
        let value = keys
            .get(name)
            .ok_or_else(|| format!("the record's metadata has no partition key {name:?}"))?;
        if value.starts_with('/') || value.split('/').any(|part| part == ".." || part == ".") {
            return Err(format!(
                "partition key {name:?} = {value:?} would leave the destination's prefix"
            ));
        }
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A transformed record as the Iceberg destination reads it: one JSON
/// object, routed by its `otfMetadata`; else the error code Firehose files
/// the record under.
fn row_of(data: &[u8], route: Option<Route>) -> Result<(Route, serde_json::Value), (&'static str, String)> {
    let Some(route) = route else {
        return Err((
            "Iceberg.MissingRoutingInformation",
            "the record has no otfMetadata (destinationDatabaseName, destinationTableName) and the stream has several tables".to_owned(),
        ));
    };
    match serde_json::from_slice::<serde_json::Value>(data) {
        Ok(row @ serde_json::Value::Object(_)) => Ok((route, row)),
        Ok(_) => Err(("Iceberg.InvalidRecord", "the record is not one JSON object".to_owned())),
        Err(e) => Err((
            "Iceberg.InvalidRecord",
            format!("the record is not one JSON object: {e}"),
        )),
    }
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let failed = |e| Error::process("gzip", e);
    e.write_all(bytes).map_err(failed)?;
    e.finish().map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_prefixes_take_each_key_from_the_records_metadata() {
        let keys = BTreeMap::from([
            ("event_name".to_owned(), "checkout".to_owned()),
            ("event_date".to_owned(), "2026-12-01".to_owned()),
        ]);
        let template =
            "events/event_name=!{partitionKeyFromLambda:event_name}/date=!{partitionKeyFromLambda:event_date}/";
        assert_eq!(
            partition_key(template, &keys).unwrap(),
            "events/event_name=checkout/date=2026-12-01/"
        );
        assert!(
            partition_key("x/!{partitionKeyFromLambda:region}/", &keys)
                .unwrap_err()
                .contains("no partition key \"region\"")
        );
    }

    #[test]
    fn a_partition_key_cannot_climb_out_of_the_data_directory() {
        for bad in ["..", "../../etc", "a/../../b", "/etc", "."] {
            let keys = BTreeMap::from([("event_name".to_owned(), bad.to_owned())]);
            let e = partition_key("events/event_name=!{partitionKeyFromLambda:event_name}/", &keys).unwrap_err();
            assert!(e.contains("would leave"), "{bad}: {e}");
        }
        let fine = BTreeMap::from([("event_name".to_owned(), "a..b".to_owned())]);
        assert!(partition_key("e/!{partitionKeyFromLambda:event_name}/", &fine).is_ok());
    }
}
