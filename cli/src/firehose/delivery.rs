//! One delivery stream: the buffer that collects acknowledged records, the
//! spool that keeps them on disk until they are delivered, and the delivery
//! itself — the transformation Lambda, then the destination or the
//! `processing-failed` error prefix.
//!
//! What firehose-local promises: a record is written to the stream's spool
//! (one file per buffer) before its call is answered, and the spool file is
//! removed only after every record in it is in the destination or the error
//! prefix. A process that is killed loses nothing it acknowledged: the next
//! start delivers what the spool holds first. Delivery is at least once: a
//! crash between writing an object and removing its spool delivers that
//! buffer again. The spool is not fsynced per call, so an operating-system
//! crash or power loss can lose the last moments (Firehose itself keeps
//! records in memory across its own availability zones; this is one disk).

use std::collections::HashMap;
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

use super::store::{self, Store, hour_path, object_name};
use super::{StreamConfig, now};
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
    spool: Option<(PathBuf, std::fs::File)>,
}

/// A delivery stream and its delivery thread's state.
pub struct Stream {
    /// Its settings.
    pub config: StreamConfig,
    /// Its ARN.
    pub arn: String,
    /// When it was created (seconds since the epoch), for DescribeDeliveryStream.
    pub created: f64,
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
            buffer: Mutex::new(Buffer {
                records: Vec::new(),
                bytes: 0,
                opened: None,
                spool: None,
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
            let path = dir.join(format!("{:020}-{}.ndjson", now().as_millis(), store::uuid()));
            let file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            b.spool = Some((path, file));
        }
        let mut lines = String::new();
        for r in &records {
            lines.push_str(&spool_line(r));
        }
        if let Some((path, file)) = &mut b.spool {
            file.write_all(lines.as_bytes())
                .map_err(|e| format!("{}: {e}", path.display()))?;
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

    /// Waits until the buffer is due (size or interval hint, a flush request,
    /// or `stop`), then takes it.
    fn take_when_due(&self, stop: &std::sync::atomic::AtomicBool) -> Option<(Vec<Record>, Option<PathBuf>)> {
        let mut b = self.buffer.lock().ok()?;
        loop {
            let stopping = stop.load(Ordering::SeqCst);
            let forced = self.flush_now.swap(false, Ordering::SeqCst);
            let due = b.bytes >= self.config.buffer_bytes
                || b.opened.is_some_and(|o| o.elapsed() >= self.config.buffer_interval);
            if !b.records.is_empty() && (due || forced || stopping) {
                let records = std::mem::take(&mut b.records);
                let spool = b.spool.take().map(|(p, _)| p);
                b.bytes = 0;
                b.opened = None;
                return Some((records, spool));
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
    let mut leftovers: Vec<PathBuf> = std::fs::read_dir(store.spool_dir(&stream.config.name))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    leftovers.sort();
    // The stream's own current spool file is not among them: it is created
    // on the first call, after this listing.
    for path in leftovers {
        let records = read_spool(&path);
        if !records.is_empty() {
            eprintln!(
                "firehose-local: delivering {} records spooled by an earlier run ({})",
                records.len(),
                path.display()
            );
            deliver_and_release(stream, store, transform, counters, records, Some(path));
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
    spool: Option<PathBuf>,
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
    if let Some(path) = spool {
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
    let mut out: Vec<u8> = Vec::new();
    let mut errors: Vec<u8> = Vec::new();
    let (mut delivered, mut dropped, mut failed, mut lines) = (0u64, 0u64, 0u64, 0u64);
    match transform {
        None => {
            for r in records {
                out.extend_from_slice(&r.data);
                lines += r.data.iter().filter(|&&b| b == b'\n').count() as u64;
            }
            delivered = records.len() as u64;
        }
        Some(t) => {
            for chunk in invocations(records, stream.config.processor_bytes) {
                let results = invoke_with_retries(stream, t, counters, chunk);
                for (r, result) in chunk.iter().zip(results) {
                    match result {
                        Answer::Ok(data) => {
                            lines += data.iter().filter(|&&b| b == b'\n').count() as u64;
                            out.extend_from_slice(&data);
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
    let oldest = Timestamp::from_millis(records.iter().map(|r| r.arrival_ms).min().unwrap_or_default());
    let c = &stream.config;
    if !out.is_empty() {
        let (bytes, suffix) = if c.gzip { (gzip(&out)?, ".gz") } else { (out, "") };
        let key = format!(
            "{}{}{}{suffix}",
            c.prefix,
            hour_path(oldest),
            object_name(&c.name, oldest)
        );
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
    Ok(Vec<u8>),
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
                    Answer::Ok(data)
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
    fn answers_are_matched_by_record_id_and_checked_like_firehose() {
        let records = [rec("a", 1), rec("b", 1), rec("c", 1)];
        let body = r#"{"records":[
            {"recordId":"c","result":"ProcessingFailed","data":""},
            {"recordId":"a","result":"Ok","data":"aGkK"},
            {"recordId":"b","result":"Dropped","data":""}]}"#;
        let a = apply(&records, body).unwrap();
        assert!(matches!(&a[0], Answer::Ok(d) if d == b"hi\n"));
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
}
