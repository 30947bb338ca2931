//! One delivery stream: the buffer that collects acknowledged records, the
//! spool that keeps them on disk until they are delivered, and the delivery
//! itself — the transformation Lambda, then the destination or the
//! `processing-failed` error prefix.
//!
//! What firehose-local promises: a record is written to the stream's spool
//! (one file per buffer, named for this run) before its call is answered,
//! and the spool file is removed only after every record in it is in the
//! destination or the error prefix. A write that fails part way retires its
//! file (its torn last line is skipped when read back) so the next record
//! starts a new one. Only other runs' files are leftovers, whenever they are
//! listed. A process that is killed loses nothing it acknowledged: the next
//! start delivers what the spool holds first. Delivery is at least once: a
//! crash between writing an object and removing its spool delivers that
//! buffer again. The spool is not fsynced per call, so an operating-system
//! crash or power loss can lose the last moments (Firehose itself keeps
//! records in memory across its own availability zones; this is one disk).

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use edgehose_shared::firehose::{TransformEvent, TransformRecord};
use edgehose_shared::timestamp::Timestamp;
use serde::Serialize;

use super::StreamConfig;
use super::store::{self, Store, hour_path, object_name};
use crate::clock::now;
use crate::runtime_api::{Function, RawOutcome, RuntimeApi};

/// One acknowledged record.
#[derive(Debug, Clone)]
pub struct Record {
    /// The id returned to the client.
    pub id: String,
    /// When it arrived (ms since the epoch).
    pub arrival_ms: i64,
    /// Its bytes.
    pub data: Vec<u8>,
}

/// Counters of one firehose-local, shown by `edgehose dev` and `GET /_edgehose/stats`.
#[derive(Debug, Default)]
pub struct Counters {
    /// Accepted calls.
    pub calls: AtomicU64,
    /// Calls refused (bad signature, limits, unknown stream, injected faults).
    pub refused_calls: AtomicU64,
    /// Records acknowledged.
    pub records_received: AtomicU64,
    /// Bytes acknowledged.
    pub bytes_received: AtomicU64,
    /// Lines (envelopes, from the edge) in the records acknowledged.
    pub lines_received: AtomicU64,
    /// Records answered `Ok` by the transform (or delivered as is without one).
    pub records_delivered: AtomicU64,
    /// Records answered `Dropped`.
    pub records_dropped: AtomicU64,
    /// Records written to the error prefix.
    pub records_failed: AtomicU64,
    /// Lines written to the destination.
    pub lines_delivered: AtomicU64,
    /// Objects written (destination and error prefix).
    pub objects: AtomicU64,
    /// Transform invocations, and those that failed (before retries).
    pub invocations: AtomicU64,
    /// Failed transform invocations.
    pub invocation_errors: AtomicU64,
}

/// The transformation function, run for real behind a Runtime API.
pub struct Transform {
    /// Declared before `api` so it is dropped (killed) first: a function that
    /// outlived its Runtime API would be refused its next event and panic in
    /// `lambda_runtime`, as no real Lambda sandbox ever sees.
    function: Mutex<Option<Function>>,
    api: RuntimeApi,
    binary: PathBuf,
    env: Vec<(String, String)>,
    log_file: Option<PathBuf>,
    /// Retries after a failed invocation (Firehose's `NumberOfRetries`, default 3).
    pub retries: u32,
    /// How long one invocation may take.
    pub timeout: Duration,
    /// The function's ARN, as written in error records.
    pub arn: String,
}

impl Transform {
    /// Starts the function binary.
    pub fn start(
        binary: PathBuf,
        env: Vec<(String, String)>,
        log_file: Option<PathBuf>,
        retries: u32,
        timeout: Duration,
    ) -> Result<Self, String> {
        let api = RuntimeApi::start()?;
        let mut env = env;
        if !env.iter().any(|(k, _)| k == "AWS_LAMBDA_LOG_FORMAT") {
            // Lambda's JSON log format: one JSON object per line.
            env.push(("AWS_LAMBDA_LOG_FORMAT".into(), "JSON".into()));
        }
        let name = binary
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "transform".into());
        let t = Self {
            api,
            arn: format!(
                "arn:aws:lambda:{}:{}:function:{name}",
                super::REGION_DEFAULT,
                super::ACCOUNT
            ),
            binary,
            env,
            log_file,
            function: Mutex::new(None),
            retries,
            timeout,
        };
        t.ensure_running()?;
        Ok(t)
    }

    /// What the function printed recently.
    pub fn log(&self) -> String {
        self.function
            .lock()
            .ok()
            .and_then(|f| f.as_ref().map(Function::log))
            .unwrap_or_default()
    }

    /// (Re)starts the process if it is not running, as Lambda starts a new
    /// execution environment after one crashed.
    fn ensure_running(&self) -> Result<(), String> {
        let mut f = self.function.lock().map_err(|_| "poisoned")?;
        if f.as_mut().is_some_and(Function::is_running) {
            return Ok(());
        }
        self.api.clear_init_error();
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        *f = Some(
            self.api
                .spawn_logged(&self.binary, "edgehose-transform", &env, self.log_file.as_deref())?,
        );
        Ok(())
    }

    fn invoke(&self, event: String) -> Result<String, String> {
        self.ensure_running()?;
        match self.api.invoke_raw(event, self.timeout)? {
            RawOutcome::Response(body) => Ok(body),
            RawOutcome::Error(body) => Err(format!("the function returned an error: {body}")),
        }
    }
}

/// The buffer being filled.
struct Buffer {
    records: Vec<Record>,
    bytes: usize,
    opened: Option<Instant>,
    /// The spool file being appended to.
    spool: Option<Spool>,
    /// Spool files of this buffer retired after a failed write: removed with
    /// the buffer once it is delivered.
    retired: Vec<PathBuf>,
}

/// An open spool file.
struct Spool {
    path: PathBuf,
    file: Box<dyn Write + Send>,
}

/// A delivery stream and its delivery thread's state.
pub struct Stream {
    /// Its settings.
    pub config: StreamConfig,
    /// Its ARN.
    pub arn: String,
    /// When it was created (seconds since the epoch), for DescribeDeliveryStream.
    pub created: f64,
    /// Names this run's spool files, so a listing of leftovers never takes one.
    run: String,
    buffer: Mutex<Buffer>,
    wake: Condvar,
    flush_now: std::sync::atomic::AtomicBool,
    delivering: Mutex<()>,
}

impl Stream {
    /// A stream with an empty buffer.
    pub fn new(config: StreamConfig, arn: String) -> Self {
        Self {
            config,
            arn,
            created: now().as_millis() as f64 / 1000.0,
            run: store::uuid(),
            buffer: Mutex::new(Buffer {
                records: Vec::new(),
                bytes: 0,
                opened: None,
                spool: None,
                retired: Vec::new(),
            }),
            wake: Condvar::new(),
            flush_now: std::sync::atomic::AtomicBool::new(false),
            delivering: Mutex::new(()),
        }
    }

    /// Acknowledges records: spooled to disk, then buffered. The caller
    /// answers the client only after this returns `Ok`.
    pub fn accept(&self, store: &Store, records: Vec<Record>) -> Result<(), String> {
        let mut b = self.buffer.lock().map_err(|_| "poisoned")?;
        if b.spool.is_none() {
            let dir = store.spool_dir(&self.config.name);
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let path = dir.join(format!(
                "{:020}-{}-{}.ndjson",
                now().as_millis(),
                self.run,
                store::uuid()
            ));
            let file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            b.spool = Some(Spool {
                path,
                file: Box::new(file),
            });
        }
        let mut lines = String::new();
        for r in &records {
            lines.push_str(&spool_line(r));
        }
        if let Some(spool) = &mut b.spool
            && let Err(e) = spool.file.write_all(lines.as_bytes()).and_then(|()| spool.file.flush())
        {
            // Part of a line may be on disk: nothing more goes after it.
            let path = spool.path.clone();
            b.spool = None;
            b.retired.push(path.clone());
            return Err(format!("{}: {e}", path.display()));
        }
        b.opened.get_or_insert_with(Instant::now);
        for r in records {
            b.bytes += r.data.len();
            b.records.push(r);
        }
        if b.bytes >= self.config.buffer_bytes {
            self.wake.notify_all();
        }
        Ok(())
    }

    /// Asks the delivery thread to deliver what is buffered now.
    pub fn request_flush(&self) {
        self.flush_now.store(true, Ordering::SeqCst);
        self.wake.notify_all();
    }

    /// Records buffered and not yet delivered.
    pub fn buffered(&self) -> usize {
        self.buffer.lock().map(|b| b.records.len()).unwrap_or(0)
    }

    /// Spool files of earlier runs in `store`, oldest first.
    pub fn leftovers(&self, store: &Store) -> Vec<PathBuf> {
        let ours = format!("-{}-", self.run);
        let mut files: Vec<PathBuf> = std::fs::read_dir(store.spool_dir(&self.config.name))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.retain(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().contains(&ours)));
        files.sort();
        files
    }

    /// Waits until the buffer is due (size or interval hint, a flush request,
    /// or `stop`), then takes it with its spool files.
    fn take_when_due(&self, stop: &std::sync::atomic::AtomicBool) -> Option<(Vec<Record>, Vec<PathBuf>)> {
        let mut b = self.buffer.lock().ok()?;
        loop {
            let stopping = stop.load(Ordering::SeqCst);
            let forced = self.flush_now.swap(false, Ordering::SeqCst);
            let due = b.bytes >= self.config.buffer_bytes
                || b.opened.is_some_and(|o| o.elapsed() >= self.config.buffer_interval);
            if !b.records.is_empty() && (due || forced || stopping) {
                let records = std::mem::take(&mut b.records);
                let mut spools = std::mem::take(&mut b.retired);
                spools.extend(b.spool.take().map(|s| s.path));
                b.bytes = 0;
                b.opened = None;
                return Some((records, spools));
            }
            if stopping {
                return None;
            }
            b = self.wake.wait_timeout(b, Duration::from_millis(50)).ok()?.0;
        }
    }
}

fn spool_line(r: &Record) -> String {
    format!(
        "{}\n",
        serde_json::json!({"id": r.id, "t": r.arrival_ms, "d": B64.encode(&r.data)})
    )
}

/// Reads a spool file written by [`Stream::accept`]; a torn last line (the
/// process died mid-write, before the call was answered) is skipped.
pub fn read_spool(path: &std::path::Path) -> Vec<Record> {
    let Ok(f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    std::io::BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| {
            let v: serde_json::Value = serde_json::from_str(&line).ok()?;
            Some(Record {
                id: v["id"].as_str()?.to_owned(),
                arrival_ms: v["t"].as_i64()?,
                data: B64.decode(v["d"].as_str()?).ok()?,
            })
        })
        .collect()
}

/// Runs a stream's delivery loop until `stop`, delivering what is left
/// before returning. Spool files from an earlier run are delivered first.
pub fn run(
    stream: &Stream,
    store: &Store,
    transform: Option<&Transform>,
    counters: &Counters,
    stop: &std::sync::atomic::AtomicBool,
) {
    for path in stream.leftovers(store) {
        let records = read_spool(&path);
        if !records.is_empty() {
            eprintln!(
                "firehose-local: delivering {} records spooled by an earlier run ({})",
                records.len(),
                path.display()
            );
            deliver_and_release(stream, store, transform, counters, records, vec![path]);
        } else {
            let _ = std::fs::remove_file(&path);
        }
    }
    while let Some((records, spool)) = stream.take_when_due(stop) {
        deliver_and_release(stream, store, transform, counters, records, spool);
    }
}

fn deliver_and_release(
    stream: &Stream,
    store: &Store,
    transform: Option<&Transform>,
    counters: &Counters,
    records: Vec<Record>,
    spools: Vec<PathBuf>,
) {
    let _one_at_a_time = stream.delivering.lock();
    loop {
        match deliver(stream, store, transform, counters, &records) {
            Ok(()) => break,
            // Like Firehose with S3 unavailable: keep retrying, never drop.
            Err(e) => {
                eprintln!(
                    "firehose-local: delivery to {} failed, retrying: {e}",
                    store.root().display()
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
    lambda_arn: &'a str,
}

/// Delivers one buffer: transformed (when a function is configured) into
/// one destination object and one error object.
fn deliver(
    stream: &Stream,
    store: &Store,
    transform: Option<&Transform>,
    counters: &Counters,
    records: &[Record],
) -> Result<(), String> {
    let oldest = Timestamp::from_millis(records.iter().map(|r| r.arrival_ms).min().unwrap_or_default());
    let c = &stream.config;
    // Delivered bytes by object key prefix: one prefix, or one per partition.
    let mut outs: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let plain = format!("{}{}", c.prefix, hour_path(oldest));
    let mut errors: Vec<u8> = Vec::new();
    let (mut delivered, mut dropped, mut failed, mut lines) = (0u64, 0u64, 0u64, 0u64);
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
                        (Some(template), Answer::Ok { data, keys }) => match partition_key(template, &keys) {
                            Ok(prefix) => {
                                lines += data.iter().filter(|&&b| b == b'\n').count() as u64;
                                outs.entry(prefix).or_default().extend_from_slice(&data);
                                delivered += 1;
                                continue;
                            }
                            Err(missing) => Answer::Failed {
                                code: "DynamicPartitioning.MetadataExtractionFailed",
                                message: format!("the record's metadata has no partition key {missing:?}"),
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
                            let e = ErrorRecord {
                                attempts_made: attempts,
                                arrival_timestamp: r.arrival_ms,
                                error_code: code,
                                error_message: &message,
                                attempt_ending_timestamp: now().as_millis(),
                                raw_data: B64.encode(&r.data),
                                lambda_arn: &t.arn,
                            };
                            errors.extend_from_slice(&serde_json::to_vec(&e).map_err(|e| e.to_string())?);
                            errors.push(b'\n');
                            failed += 1;
                        }
                    }
                }
            }
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
/// record's key NAME; the first key it lacks is the error.
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
        out.push_str(keys.get(name).ok_or_else(|| name.to_owned())?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).map_err(|e| e.to_string())?;
    e.finish().map_err(|e| e.to_string())
}

/// Splits a buffer into invocations of at most `max_bytes` of record data
/// (Firehose's processor buffer size), at least one record each.
fn invocations(records: &[Record], max_bytes: usize) -> Vec<&[Record]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, r) in records.iter().enumerate() {
        if i > start && bytes + r.data.len() > max_bytes {
            out.push(&records[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += r.data.len();
    }
    if start < records.len() {
        out.push(&records[start..]);
    }
    out
}

/// One record's fate.
#[derive(Debug)]
enum Answer {
    Ok {
        data: Vec<u8>,
        /// `metadata.partitionKeys`.
        keys: BTreeMap<String, String>,
    },
    Dropped,
    Failed {
        code: &'static str,
        message: String,
        attempts: u32,
    },
}

fn invoke_with_retries(stream: &Stream, t: &Transform, counters: &Counters, records: &[Record]) -> Vec<Answer> {
    let event = TransformEvent {
        invocation_id: store::uuid(),
        delivery_stream_arn: stream.arn.clone(),
        region: super::REGION_DEFAULT.to_owned(),
        records: records
            .iter()
            .map(|r| TransformRecord {
                record_id: r.id.clone(),
                approximate_arrival_timestamp: r.arrival_ms,
                data: B64.encode(&r.data),
            })
            .collect(),
    };
    let event = serde_json::to_string(&event).unwrap_or_default();
    let mut last = String::new();
    let attempts = t.retries + 1;
    for attempt in 1..=attempts {
        counters.invocations.fetch_add(1, Ordering::Relaxed);
        match t.invoke(event.clone()) {
            Ok(body) => match apply(records, &body) {
                Ok(answers) => return answers,
                // A malformed answer is the function's fault, not the record's:
                // every record fails with the reason, as Firehose does.
                Err((code, message)) => {
                    return records
                        .iter()
                        .map(|_| Answer::Failed {
                            code,
                            message: message.clone(),
                            attempts: attempt,
                        })
                        .collect();
                }
            },
            Err(e) => {
                counters.invocation_errors.fetch_add(1, Ordering::Relaxed);
                eprintln!("firehose-local: transform invocation {attempt} of {attempts} failed: {e}");
                last = e;
                if attempt < attempts {
                    std::thread::sleep(Duration::from_millis(200 * u64::from(attempt)));
                }
            }
        }
    }
    records
        .iter()
        .map(|_| Answer::Failed {
            code: "Lambda.FunctionError",
            message: format!("The Lambda function was invoked {attempts} times and failed: {last}"),
            attempts,
        })
        .collect()
}

/// Reads the function's answer the way Firehose checks it
/// (<https://docs.aws.amazon.com/firehose/latest/dev/data-transformation-status-model.html>).
fn apply(records: &[Record], body: &str) -> Result<Vec<Answer>, (&'static str, String)> {
    let v: serde_json::Value = serde_json::from_str(body).map_err(|e| {
        (
            "Lambda.JsonProcessingException",
            format!("the response is not JSON: {e}"),
        )
    })?;
    let answers = v["records"].as_array().ok_or((
        "Lambda.JsonProcessingException",
        "the response has no records array".to_owned(),
    ))?;
    let mut by_id: HashMap<&str, &serde_json::Value> = HashMap::new();
    for a in answers {
        let id = a["recordId"].as_str().ok_or((
            "Lambda.MissingRecordId",
            "a record in the response has no recordId".to_owned(),
        ))?;
        if by_id.insert(id, a).is_some() {
            return Err(("Lambda.DuplicatedRecordId", format!("recordId {id} is answered twice")));
        }
    }
    if by_id.len() != records.len() {
        return Err((
            "Lambda.ProcessedRecordsCountMismatch",
            format!("{} records sent, {} answered", records.len(), by_id.len()),
        ));
    }
    records
        .iter()
        .map(|r| {
            let a = by_id.get(r.id.as_str()).ok_or((
                "Lambda.MissingRecordId",
                format!("recordId {} is not in the response", r.id),
            ))?;
            Ok(match a["result"].as_str() {
                Some("Ok") => {
                    let data = B64.decode(a["data"].as_str().unwrap_or_default()).map_err(|e| {
                        (
                            "Lambda.InvalidBase64",
                            format!("recordId {}: data is not base64: {e}", r.id),
                        )
                    })?;
                    let keys = crate::tools::string_members(&a["metadata"]["partitionKeys"]);
                    Answer::Ok { data, keys }
                }
                Some("Dropped") => Answer::Dropped,
                Some("ProcessingFailed") => Answer::Failed {
                    code: "Lambda.ProcessingFailed",
                    message: "The Lambda function returned ProcessingFailed for this record.".into(),
                    attempts: 1,
                },
                other => {
                    return Err((
                        "Lambda.InvalidRecordResult",
                        format!(
                            "recordId {}: result {other:?} is not Ok, Dropped or ProcessingFailed",
                            r.id
                        ),
                    ));
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, n: usize) -> Record {
        Record {
            id: id.into(),
            arrival_ms: 0,
            data: vec![b'x'; n],
        }
    }

    #[test]
    fn invocations_stay_under_the_processor_buffer_and_keep_every_record() {
        let records: Vec<Record> = (0..10).map(|i| rec(&i.to_string(), 400)).collect();
        let chunks = invocations(&records, 1000);
        assert_eq!(chunks.iter().map(|c| c.len()).collect::<Vec<_>>(), [2, 2, 2, 2, 2]);
        // A record larger than the buffer still goes, alone.
        let big = [rec("a", 5000), rec("b", 1)];
        assert_eq!(invocations(&big, 1000).len(), 2);
    }

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
        assert_eq!(
            partition_key("x/!{partitionKeyFromLambda:region}/", &keys).unwrap_err(),
            "region"
        );
        let body = r#"{"records":[{"recordId":"a","result":"Ok","data":"aGkK","metadata":{"partitionKeys":{"event_name":"e"}}}]}"#;
        let a = apply(&[rec("a", 1)], body).unwrap();
        assert!(matches!(&a[0], Answer::Ok { keys, .. } if keys["event_name"] == "e"));
    }

    #[test]
    fn answers_are_matched_by_record_id_and_checked_like_firehose() {
        let records = [rec("a", 1), rec("b", 1), rec("c", 1)];
        let body = r#"{"records":[
            {"recordId":"c","result":"ProcessingFailed","data":""},
            {"recordId":"a","result":"Ok","data":"aGkK"},
            {"recordId":"b","result":"Dropped","data":""}]}"#;
        let a = apply(&records, body).unwrap();
        assert!(matches!(&a[0], Answer::Ok { data, keys } if data == b"hi\n" && keys.is_empty()));
        assert!(matches!(a[1], Answer::Dropped));
        assert!(matches!(
            a[2],
            Answer::Failed {
                code: "Lambda.ProcessingFailed",
                ..
            }
        ));

        let missing = r#"{"records":[{"recordId":"a","result":"Ok","data":""}]}"#;
        assert_eq!(
            apply(&records, missing).unwrap_err().0,
            "Lambda.ProcessedRecordsCountMismatch"
        );
        let twice = r#"{"records":[{"recordId":"a","result":"Ok","data":""},{"recordId":"a","result":"Ok","data":""},{"recordId":"b","result":"Ok","data":""}]}"#;
        assert_eq!(apply(&records, twice).unwrap_err().0, "Lambda.DuplicatedRecordId");
        let bad = r#"{"records":[{"recordId":"a","result":"Fine","data":""},{"recordId":"b","result":"Ok","data":""},{"recordId":"c","result":"Ok","data":""}]}"#;
        assert_eq!(apply(&records, bad).unwrap_err().0, "Lambda.InvalidRecordResult");
        assert_eq!(apply(&records, "nope").unwrap_err().0, "Lambda.JsonProcessingException");
    }

    #[test]
    fn a_spool_file_reads_back_and_a_torn_last_line_is_skipped() {
        let dir = std::env::temp_dir().join(format!("edgehose-spool-{}", store::uuid()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.ndjson");
        let a = Record {
            id: "1".into(),
            arrival_ms: 5,
            data: b"{\"x\":1}\n".to_vec(),
        };
        std::fs::write(&path, format!("{}{{\"id\":\"2\",\"t\":", spool_line(&a))).unwrap();
        let back = read_spool(&path);
        assert_eq!(back.len(), 1);
        assert_eq!(
            (back[0].id.as_str(), back[0].arrival_ms, back[0].data.as_slice()),
            ("1", 5, a.data.as_slice())
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn stream_in(dir: &std::path::Path) -> (Store, Stream) {
        let store = Store::open(dir).unwrap();
        let stream = Stream::new(StreamConfig::new("s"), "arn".into());
        (store, stream)
    }

    fn spooled(store: &Store) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(store.spool_dir("s"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort();
        let mut ids: Vec<String> = files.iter().flat_map(|p| read_spool(p)).map(|r| r.id).collect();
        ids.sort();
        ids
    }

    #[test]
    fn only_other_runs_spool_files_are_leftovers_whenever_they_are_listed() {
        let dir = std::env::temp_dir().join(format!("edgehose-spool-{}", store::uuid()));
        let (store, earlier) = stream_in(&dir);
        earlier.accept(&store, vec![rec("old", 3)]).unwrap();
        let (_, now) = stream_in(&dir);
        // A call acknowledged before the listing: its file is this run's.
        now.accept(&store, vec![rec("new", 3)]).unwrap();
        let leftovers = now.leftovers(&store);
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
        assert_eq!(read_spool(&leftovers[0])[0].id, "old");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Writes half of what it is given to the real file, then fails.
    struct HalfThenFail(std::fs::File);

    impl Write for HalfThenFail {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.write_all(&buf[..buf.len() / 2])?;
            Err(std::io::Error::other("disk full"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_write_that_fails_half_way_does_not_swallow_the_next_record() {
        let dir = std::env::temp_dir().join(format!("edgehose-spool-{}", store::uuid()));
        let (store, stream) = stream_in(&dir);
        stream.accept(&store, vec![rec("1", 3)]).unwrap();
        {
            let mut b = stream.buffer.lock().unwrap();
            let spool = b.spool.as_mut().unwrap();
            let file = std::fs::OpenOptions::new().append(true).open(&spool.path).unwrap();
            spool.file = Box::new(HalfThenFail(file));
        }
        assert!(stream.accept(&store, vec![rec("2", 3)]).is_err());
        stream.accept(&store, vec![rec("3", 3)]).unwrap();
        // "2" was refused (its caller was told); "1" and "3" are both kept.
        assert_eq!(spooled(&store), ["1", "3"]);
        // Both files go with the buffer once it is delivered.
        let stop = std::sync::atomic::AtomicBool::new(true);
        let (records, spools) = stream.take_when_due(&stop).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(spools.len(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
