//! The Firehose data-transformation function: every event the edge sent is
//! validated; valid ones come out in the shape analysts query, and nothing
//! is lost.
//!
//! Per record (one or more NDJSON envelope lines from the edge):
//!
//! | the record's lines | result | what the destination gets |
//! |---|---|---|
//! | all valid events | `Ok` | one analyst line per event |
//! | no valid event (invalid, quarantined, or not envelopes) | `ProcessingFailed`, no data echoed | nothing: Firehose writes the original bytes under the error prefix |
//! | valid and invalid mixed | `Ok` | the valid events, plus one `rejected` line per invalid piece (its reasons and the original envelope) |
//! | empty | `Dropped` | nothing (there was nothing) |
//!
//! A record cannot be split between the destination and the error prefix,
//! so a mixed record keeps its invalid pieces next to the valid ones, marked:
//! `SELECT * … WHERE rejected IS NOT NULL` finds every one with its reasons.
//!
//! The response stays under Lambda's 6 MB limit: records that would not fit
//! are answered `ProcessingFailed` with no data, so Firehose keeps their
//! original bytes under the error prefix.

use std::collections::{BTreeMap, HashSet};

use base64::Engine as _;
use edgehose_shared::envelope::Envelope;
pub use edgehose_shared::firehose::{TransformEvent, TransformRecord};
use edgehose_shared::judge::quarantined_bot;
use edgehose_shared::label::{Lane, MAIN_TABLE};
use edgehose_shared::limits::Limits;
use edgehose_shared::outcome::{Cell, LineAccount, Outcome, Tally, door_of, minute_of};
use edgehose_shared::rejected::{Rejected, is_rejected_line};
use edgehose_shared::segment::validate::validate_message;
use edgehose_shared::source::{self, Sources};
use edgehose_shared::table::iceberg_table;
use edgehose_shared::timestamp::Timestamp;
use edgehose_shared::validate::{Reason, Violation, validate_event};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::analyst::{PostHogLine, Rfc3339, SegmentLine, SnowplowLine, SourceLine, V1Line, Where};
use crate::iceberg_row;

/// Lambda's limit on a synchronous response: 6 MB
/// (<https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html>).
pub const LAMBDA_MAX_RESPONSE_BYTES: usize = 6_291_556;

/// Room kept under [`LAMBDA_MAX_RESPONSE_BYTES`] for framing and error margin.
const RESPONSE_MARGIN_BYTES: usize = 64 * 1024;

/// A record's outcome, as Firehose spells it
/// (<https://docs.aws.amazon.com/firehose/latest/dev/data-transformation.html>).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RecordResult {
    /// Transformed; the data goes to the destination.
    Ok,
    /// Deliberately discarded.
    Dropped,
    /// Could not be transformed; Firehose keeps the original under the error prefix.
    ProcessingFailed,
}

/// The transformation's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransformResponse {
    /// One per input record, same ids.
    pub records: Vec<TransformedRecord>,
    /// The `rejected` lines (id, reasons, original envelope) of records
    /// answered `ProcessingFailed`: Firehose keeps only their original bytes,
    /// so the handler logs these to keep each reason findable.
    #[serde(skip)]
    pub failed_rejections: Vec<String>,
    /// What became of every line, by the minute the edge received it, its
    /// key and door (`shared::outcome`): `landed`, `rejected` by reason, and
    /// `duplicate` for an id this invocation saw landing before. The handler
    /// prints it as the invocation's receipt line.
    #[serde(skip)]
    pub receipt: Tally,
}

/// One record's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TransformedRecord {
    /// The input record's id.
    pub record_id: String,
    /// The outcome.
    pub result: RecordResult,
    /// The output, base64.
    pub data: Base64Data,
    /// Dynamic-partitioning keys, when enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
}

/// A record's output as base64, kept in its JSON form (quoted) so that the
/// response, most of which is these strings, is written by a copy: serde
/// would otherwise look at every byte for characters to escape, and base64
/// has none.
#[derive(Debug, Clone)]
pub struct Base64Data(Box<RawValue>);

impl PartialEq for Base64Data {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Base64Data {}

impl Base64Data {
    /// Encodes `bytes`.
    pub fn encode(bytes: &[u8]) -> Self {
        let mut quoted = String::with_capacity(bytes.len().div_ceil(3) * 4 + 2);
        quoted.push('"');
        base64::engine::general_purpose::STANDARD.encode_string(bytes, &mut quoted);
        quoted.push('"');
        // A quoted base64 string is always valid JSON; the check is one fast scan.
        Self(RawValue::from_string(quoted).unwrap_or_else(|_| Self::empty().0))
    }

    /// No data.
    pub fn empty() -> Self {
        Self(RawValue::from_string(r#""""#.to_owned()).unwrap_or_else(|_| RawValue::NULL.to_owned()))
    }

    /// The base64 text.
    pub fn as_str(&self) -> &str {
        let quoted = self.0.get();
        quoted.get(1..quoted.len().saturating_sub(1)).unwrap_or_default()
    }

    /// Whether there is no data.
    pub fn is_empty(&self) -> bool {
        self.as_str().is_empty()
    }
}

impl Serialize for Base64Data {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// Record metadata: dynamic-partitioning keys (JSON destination), or the
/// row's routing (Iceberg destination).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// `table`, `event_name` and `event_date` (`YYYY-MM-DD`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub partition_keys: BTreeMap<String, String>,
    /// Which Iceberg table the record's row goes to, and how.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otf_metadata: Option<OtfMetadata>,
}

/// A row's routing as Firehose's Iceberg destination reads it from the
/// transform's answer
/// (<https://docs.aws.amazon.com/firehose/latest/dev/apache-iceberg-format-input-record-different.html>).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OtfMetadata {
    /// The Glue database.
    pub destination_database_name: String,
    /// The table: the event's dialect's (`edgehose_shared::table::ICEBERG_TABLES`).
    pub destination_table_name: String,
    /// [`UPSERT`]: with the table's unique keys, a row whose key is in the
    /// table already replaces it.
    pub operation: &'static str,
}

/// Firehose's operation that inserts a row or, when a row with its unique
/// key is in the table already, replaces that one.
pub const UPSERT: &str = "update";

/// The reason a record's events are counted under when the Iceberg
/// destination was sent a record of several events (the edge and
/// ingest-api send one a record with `DESTINATION = iceberg`): Firehose
/// keeps the record under the error prefix.
pub const ICEBERG_RECORD_OF_MANY: &str = "iceberg_record_of_many_events";

/// An event name as a partition key value: the characters Hive escapes in
/// partition directory names (which Hive's and Athena's `MSCK REPAIR
/// TABLE` unescape) as `%XX` — control characters, `"#%'*/:=?\\{[]^` — everything
/// else as is. A `/` in a name would otherwise add a directory level to the
/// S3 key, and `=` would break `event_name=<value>/`.
pub fn partition_value(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_control() || "\"#%'*/:=?\\{[]^".contains(c) {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// How the transformation runs.
#[derive(Debug, Clone, Default)]
pub struct TransformConfig {
    /// Limits events are validated against.
    pub limits: Limits,
    /// Emit `metadata.partitionKeys` for dynamic partitioning.
    pub partitioning: bool,
    /// Largest response, in bytes (Lambda's limit less a margin by default).
    pub max_response_bytes: Option<usize>,
    /// Per-event-name JSON Schemas, checked after schema v1 (and for a
    /// source's events, by the source's name).
    pub schemas: crate::schemas::Schemas,
    /// What is declared for any-JSON sources (`SOURCES`, as on the edge).
    pub sources: Sources,
    /// Threads records are transformed on; 0 means one per CPU the function
    /// sees (Lambda gives more than one vCPU's worth of CPU above 1,769 MB).
    pub threads: usize,
    /// The Iceberg destination's Glue database, when the destination is
    /// Iceberg: each record's one event becomes a row of its dialect's
    /// table ([`crate::iceberg_row`]), routed with [`OtfMetadata`].
    pub iceberg_database: Option<String>,
}

/// Counts of one invocation, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Valid events delivered.
    pub events_ok: u64,
    /// Invalid events (schema violations).
    pub events_invalid: u64,
    /// Quarantined payloads from the edge and lines that were not envelopes.
    pub events_quarantined: u64,
    /// Records answered `Ok`.
    pub records_ok: u64,
    /// Records answered `ProcessingFailed`.
    pub records_failed: u64,
    /// Records answered `Dropped`.
    pub records_dropped: u64,
    /// Records failed only because the response would have been too large.
    pub records_over_limit: u64,
    /// Events in those records (kept under the error prefix, not delivered).
    pub events_over_limit: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.events_ok += o.events_ok;
        self.events_invalid += o.events_invalid;
        self.events_quarantined += o.events_quarantined;
        self.records_ok += o.records_ok;
        self.records_failed += o.records_failed;
        self.records_dropped += o.records_dropped;
        self.records_over_limit += o.records_over_limit;
        self.events_over_limit += o.events_over_limit;
    }
}

/// The records of a Firehose transformation event, ready for [`transform`].
pub fn inputs(event: &TransformEvent) -> Vec<InputRecord<'_>> {
    event
        .records
        .iter()
        .map(|r| InputRecord {
            id: &r.record_id,
            data: RecordData::Base64(&r.data),
            arrived_ms: r.approximate_arrival_timestamp,
        })
        .collect()
}

/// One input record: its id and data.
#[derive(Debug, Clone)]
pub struct InputRecord<'a> {
    /// `recordId`.
    pub id: &'a str,
    /// The data.
    pub data: RecordData<'a>,
    /// When Firehose received it (ms since the epoch): where a line that
    /// holds no envelope is counted.
    pub arrived_ms: i64,
}

/// A record's data, decoded or as Firehose sends it.
#[derive(Debug, Clone, Copy)]
pub enum RecordData<'a> {
    /// The bytes.
    Bytes(&'a [u8]),
    /// The bytes in base64, decoded when transformed.
    Base64(&'a str),
}

/// Transforms every record; never fails for bad data.
pub fn transform(records: &[InputRecord<'_>], config: &TransformConfig) -> (TransformResponse, Counts) {
    let budget = config
        .max_response_bytes
        .unwrap_or(LAMBDA_MAX_RESPONSE_BYTES - RESPONSE_MARGIN_BYTES);
    let mut counts = Counts::default();
    let mut used = r#"{"records":[]}"#.len();
    let mut out = Vec::with_capacity(records.len());
    let mut failed_rejections = Vec::new();
    // Every record needs an answer: keep room for the smallest answer (failed,
    // no data) of each record not yet answered.
    let minimal: Vec<usize> = records
        .iter()
        .map(|r| answer_size(&failed_without_data(r.id)))
        .collect();
    let mut reserved: usize = minimal.iter().sum();
    let done = on_threads(records, config.threads, |record| {
        let mut counts = Counts::default();
        let mut rejections = Vec::new();
        let mut fates = Fates::default();
        let decoded;
        let bytes = match record.data {
            RecordData::Bytes(b) => b,
            RecordData::Base64(text) => match base64::engine::general_purpose::STANDARD.decode(text) {
                Ok(b) => {
                    decoded = b;
                    &decoded
                }
                Err(e) => {
                    // Firehose never sends this; if it did, it keeps the
                    // original under the error prefix, and the log says why.
                    counts.records_failed += 1;
                    counts.events_quarantined += 1;
                    rejections.extend_from_slice(
                        format!(
                            "{}\n",
                            serde_json::json!({"record_id": record.id, "rejected": [{"reason": "not_base64", "message": e.to_string()}]})
                        )
                        .as_bytes(),
                    );
                    let unknown = LineAccount::of("", Timestamp::from_millis(record.arrived_ms)).cell;
                    fates.0.push((Fate::Rejected("not_base64".to_owned()), unknown));
                    return (failed_without_data(record.id), counts, rejections, fates);
                }
            },
        };
        let arrived = Timestamp::from_millis(record.arrived_ms);
        let (result, data, metadata) =
            transform_record(bytes, config, &mut counts, &mut rejections, (&mut fates, arrived));
        let answer = TransformedRecord {
            record_id: record.id.to_owned(),
            result,
            data: Base64Data::encode(&data),
            metadata,
        };
        (answer, counts, rejections, fates)
    });
    let mut receipt = Tally::new();
    let mut landed_ids: HashSet<String> = HashSet::new();
    for (i, (mut answer, mut local, rejections, fates)) in done.into_iter().enumerate() {
        let record = &records[i];
        reserved -= minimal[i];
        failed_rejections.extend_from_slice(&rejections);
        let mut size = answer_size(&answer);
        if used + size + reserved > budget {
            // Over the response limit: let Firehose keep the original bytes.
            local = Counts {
                records_failed: 1,
                records_over_limit: 1,
                events_over_limit: local.events_ok + local.events_invalid + local.events_quarantined,
                ..Counts::default()
            };
            answer = failed_without_data(record.id);
            size = minimal[i];
            // Firehose keeps the whole record under the error prefix.
            for (_, cell) in fates.0 {
                receipt.add(with_reason(cell, OVER_RESPONSE_LIMIT), Outcome::Rejected, 1);
            }
        } else {
            for (fate, cell) in fates.0 {
                match fate {
                    Fate::Landed(id) => {
                        // Counted landed either way; a second copy is also a duplicate.
                        if !id.is_empty() && !landed_ids.insert(id) {
                            receipt.add(cell.clone(), Outcome::Duplicate, 1);
                        }
                        receipt.add(cell, Outcome::Landed, 1);
                    }
                    Fate::Rejected(reason) => receipt.add(with_reason(cell, &reason), Outcome::Rejected, 1),
                }
            }
        }
        counts.add(&local);
        used += size;
        out.push(answer);
    }
    let failed_rejections = String::from_utf8_lossy(&failed_rejections)
        .lines()
        .map(str::to_owned)
        .collect();
    (
        TransformResponse {
            records: out,
            failed_rejections,
            receipt,
        },
        counts,
    )
}

/// `f` of every item, in order, computed on up to `threads` threads (0: one
/// per CPU) that take the next item as they finish one, so a few large
/// records do not leave the other threads idle.
fn on_threads<T: Sync, R: Send>(items: &[T], threads: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = || {
        let mut out = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(item) = items.get(i) else {
                return out;
            };
            out.push((i, f(item)));
        }
    };
    let mut all: Vec<(usize, R)> = std::thread::scope(|s| {
        let helpers: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        let mut all = work();
        for h in helpers {
            // A panic on a helper thread is the same panic as on this one.
            all.extend(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        }
        all
    });
    all.sort_unstable_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, r)| r).collect()
}

fn failed_without_data(id: &str) -> TransformedRecord {
    TransformedRecord {
        record_id: id.to_owned(),
        result: RecordResult::ProcessingFailed,
        data: Base64Data::empty(),
        metadata: None,
    }
}

/// The bytes `a` adds to the response (its JSON and a comma). The data is
/// counted by its length, not serialised again: base64 is written as is.
fn answer_size(a: &TransformedRecord) -> usize {
    let without_data = TransformedRecord {
        record_id: a.record_id.clone(),
        result: a.result,
        data: Base64Data::empty(),
        metadata: a.metadata.clone(),
    };
    serde_json::to_vec(&without_data).map_or(usize::MAX / 4, |v| v.len() + 1 + a.data.as_str().len())
}

/// The reason a record's events are counted under when the response had
/// no room for it (Firehose keeps it under the error prefix).
pub const OVER_RESPONSE_LIMIT: &str = "over_response_limit";

/// What became of one line.
enum Fate {
    /// Valid, in the destination; its id.
    Landed(String),
    /// Kept as a `rejected` line; the first reason's code.
    Rejected(String),
}

/// The fates of a record's lines, each with where it is counted.
#[derive(Default)]
struct Fates(Vec<(Fate, Cell)>);

fn with_reason(mut cell: Cell, reason: &str) -> Cell {
    cell.reason = reason.to_owned();
    cell
}

fn transform_record(
    data: &[u8],
    config: &TransformConfig,
    counts: &mut Counts,
    failed_rejections: &mut Vec<u8>,
    (fates, arrived): (&mut Fates, Timestamp),
) -> (RecordResult, Vec<u8>, Option<Metadata>) {
    // Valid UTF-8 (always, from the edge) is checked by the fast path;
    // anything else is read lossily and will fail as not-an-envelope.
    let text = match std::str::from_utf8(data) {
        Ok(t) => std::borrow::Cow::Borrowed(t),
        Err(_) => String::from_utf8_lossy(data),
    };
    // Lines are written straight into the output: valid events first, then
    // the rejected pieces (appended at the end).
    let mut out = Output {
        valid: Vec::with_capacity(data.len() + data.len() / 2),
        rejected: Vec::new(),
        names: Vec::new(),
        tables: Vec::new(),
        iceberg: config.iceberg_database.is_some(),
        row_tables: Vec::new(),
    };
    let mut lines = 0usize;
    let mut first_time: Option<i64> = None;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        lines += 1;
        let (line_outcome, fate) = outcome(line, config, &mut out, arrived);
        fates.0.push(fate);
        match line_outcome {
            Line::Valid { received_at } => {
                counts.events_ok += 1;
                first_time.get_or_insert(received_at);
            }
            Line::Invalid => counts.events_invalid += 1,
            Line::Quarantined => counts.events_quarantined += 1,
        }
    }
    if lines == 0 {
        counts.records_dropped += 1;
        return (RecordResult::Dropped, Vec::new(), None);
    }
    if first_time.is_none() {
        counts.records_failed += 1;
        failed_rejections.extend_from_slice(&out.rejected);
        // No data: Firehose writes the original bytes under the error
        // prefix whatever comes back, so an echo would only spend the
        // response's 6 MB on bytes nobody reads.
        return (RecordResult::ProcessingFailed, Vec::new(), None);
    }
    if let Some(database) = &config.iceberg_database {
        return iceberg_answer(database, lines, out, counts, failed_rejections, fates);
    }
    counts.records_ok += 1;
    let metadata = config.partitioning.then(|| {
        let name = match out.names.as_slice() {
            [one] => partition_value(one),
            _ => "_mixed".to_owned(),
        };
        let date = Timestamp::from_millis(first_time.unwrap_or_default()).to_rfc3339()[..10].to_owned();
        // The edge packs each lane in records of its own; a record that
        // mixes them anyway (written by something else) stays in the main
        // table, each event's label kept on its line.
        let table = match out.tables.as_slice() {
            [one] => *one,
            _ => MAIN_TABLE,
        };
        Metadata {
            partition_keys: BTreeMap::from([
                ("table".to_owned(), table.to_owned()),
                ("event_name".to_owned(), name),
                ("event_date".to_owned(), date),
            ]),
            otf_metadata: None,
        }
    });
    let mut bytes = out.valid;
    bytes.extend_from_slice(&out.rejected);
    (RecordResult::Ok, bytes, metadata)
}

/// The answer for a record with at least one valid event, to the Iceberg
/// destination: its one row and where it goes. A record of several lines
/// (which the edge and ingest-api never send with `DESTINATION = iceberg`)
/// cannot be one row: Firehose keeps it whole under the error prefix, and
/// the log and the receipt say why.
fn iceberg_answer(
    database: &str,
    lines: usize,
    out: Output,
    counts: &mut Counts,
    failed_rejections: &mut Vec<u8>,
    fates: &mut Fates,
) -> (RecordResult, Vec<u8>, Option<Metadata>) {
    match out.row_tables.as_slice() {
        [table] if lines == 1 => {
            counts.records_ok += 1;
            let mut row = out.valid;
            if row.last() == Some(&b'\n') {
                row.pop();
            }
            let metadata = Metadata {
                partition_keys: BTreeMap::new(),
                otf_metadata: Some(OtfMetadata {
                    destination_database_name: database.to_owned(),
                    destination_table_name: (*table).to_owned(),
                    operation: UPSERT,
                }),
            };
            (RecordResult::Ok, row, Some(metadata))
        }
        _ => {
            counts.records_failed += 1;
            counts.events_invalid += counts.events_ok;
            counts.events_ok = 0;
            for (fate, _) in &mut fates.0 {
                if let Fate::Landed(_) = fate {
                    *fate = Fate::Rejected(ICEBERG_RECORD_OF_MANY.to_owned());
                }
            }
            let why = serde_json::json!({"rejected": [{
                "reason": ICEBERG_RECORD_OF_MANY,
                "message": format!("a record of {lines} lines to the Iceberg destination, which takes one event a record: give the edge and ingest-api DESTINATION = iceberg"),
            }]});
            failed_rejections.extend_from_slice(format!("{why}\n").as_bytes());
            (RecordResult::ProcessingFailed, Vec::new(), None)
        }
    }
}

/// Where a record's lines go as they are transformed.
struct Output {
    /// Analyst lines of valid events, each ending in a newline.
    valid: Vec<u8>,
    /// `rejected` lines, each ending in a newline.
    rejected: Vec<u8>,
    /// The distinct event names of the valid events.
    names: Vec<String>,
    /// The distinct tables (lanes) of the valid events.
    tables: Vec<&'static str>,
    /// Whether valid events are written as Iceberg rows.
    iceberg: bool,
    /// The Iceberg table of each row written.
    row_tables: Vec<&'static str>,
}

impl Output {
    /// Appends a valid event's analyst line (or its Iceberg row); `name` is
    /// its partition name, `line` the envelope it came in and `dialect` its
    /// door's (`v1`, `segment`, `source`).
    fn push_valid(&mut self, analyst: &impl Serialize, name: &str, (line, dialect): (&str, &str)) {
        if self.iceberg {
            let mut text = Vec::new();
            push_line(&mut text, analyst);
            self.valid.extend_from_slice(&iceberg_row::row(&text, dialect, line));
            self.valid.push(b'\n');
            self.row_tables.extend(iceberg_table(dialect));
        } else {
            push_line(&mut self.valid, analyst);
        }
        if !self.names.iter().any(|n| n == name) {
            self.names.push(name.to_owned());
        }
    }

    fn push_rejected(&mut self, id: &str, received_at: Option<i64>, reasons: &[Violation], line: &str) {
        Rejected::new(id, received_at, reasons, line).write_to(&mut self.rejected);
    }
}

/// Appends `value`'s JSON and a newline.
fn push_line(buf: &mut Vec<u8>, value: &impl Serialize) {
    let len = buf.len();
    if serde_json::to_writer(&mut *buf, value).is_ok() {
        buf.push(b'\n');
    } else {
        // Not reachable for these types (string keys, no maps that can fail);
        // never leave half a line behind.
        buf.truncate(len);
    }
}

enum Line {
    Valid { received_at: i64 },
    Invalid,
    Quarantined,
}

fn outcome(line: &str, config: &TransformConfig, out: &mut Output, arrived: Timestamp) -> (Line, (Fate, Cell)) {
    let rejected = |reason: &str| Fate::Rejected(reason.to_owned());
    let envelope = match Envelope::parse(line) {
        Ok(e) => e,
        // Judged at the edge already, reasons and envelope inside: kept as it is.
        Err(_) if is_rejected_line(line) => {
            out.rejected.extend_from_slice(line.as_bytes());
            out.rejected.push(b'\n');
            let reason = first_reason_of_rejected_line(line);
            return (Line::Invalid, (rejected(&reason), LineAccount::of(line, arrived).cell));
        }
        Err(e) => {
            let reason = [Violation::new(Reason::NotAnEnvelope, "", e.to_string())];
            out.push_rejected("", None, &reason, line);
            let cell = LineAccount::of(line, arrived).cell;
            return (Line::Quarantined, (rejected(Reason::NotAnEnvelope.as_str()), cell));
        }
    };
    let cell = Cell {
        minute: minute_of(Timestamp::from_millis(envelope.received_at)),
        key: envelope.key_id.as_deref().unwrap_or_default().to_owned(),
        door: door_of(envelope.format.as_deref(), envelope.source.as_deref()),
        reason: String::new(),
    };
    let received = Some(envelope.received_at);
    if let Some(q) = &envelope.quarantine {
        let reason = [Violation::new(Reason::Quarantined, "", q.reason.clone())];
        out.push_rejected(&envelope.id, received, &reason, line);
        return (Line::Quarantined, (rejected(Reason::Quarantined.as_str()), cell));
    }
    if let Some(why) = quarantined_bot(envelope.label.as_ref()) {
        out.push_rejected(&envelope.id, received, std::slice::from_ref(&why), line);
        return (Line::Invalid, (rejected(Reason::Bot.as_str()), cell));
    }
    let table = Lane::table(envelope.label.as_ref().and_then(|l| l.lane));
    let Some(raw) = envelope.event.as_ref() else {
        let reason = [Violation::new(Reason::NotAnEnvelope, "", "the envelope holds no event")];
        out.push_rejected(&envelope.id, received, &reason, line);
        return (Line::Quarantined, (rejected(Reason::NotAnEnvelope.as_str()), cell));
    };
    let at = Where {
        id: &envelope.id,
        event_time: Rfc3339::of_millis(envelope.event_time),
        received_at: Rfc3339::of_millis(envelope.received_at),
        key_id: envelope.key_id.as_deref(),
        edge: envelope.edge.as_ref(),
        label: envelope.label.as_ref(),
        network_user_id: envelope.nuid.as_deref(),
    };
    let done = match envelope.format.as_deref() {
        None => validate_event(raw.get(), &config.limits)
            .and_then(|event| source::check_not_a_source(&event.event, &config.sources).map(|()| event))
            .and_then(|event| with_schema(config, &event.event, raw.get()).map(|()| event))
            .map(|event| out.push_valid(&V1Line::new(&at, &event), &event.event, (line, "v1"))),
        Some("segment") => validate_message(raw.get(), envelope.call.as_deref(), &config.limits).and_then(|message| {
            let analyst = SegmentLine::new(&at, &message, envelope.batch_sent_at);
            source::check_not_a_source(analyst.partition_name(), &config.sources)?;
            out.push_valid(&analyst, analyst.partition_name(), (line, "segment"));
            Ok(())
        }),
        Some("snowplow") => edgehose_shared::snowplow::validate::validate(raw.get(), &config.limits).map(|event| {
            out.push_valid(&SnowplowLine::new(&at, &event), &event.name, (line, "snowplow"));
        }),
        Some("posthog") => edgehose_shared::posthog::validate::validate(raw.get(), &config.limits).map(|event| {
            let analyst = PostHogLine::new(&at, &event, envelope.batch_sent_at);
            out.push_valid(&analyst, &event.name, (line, "posthog"));
        }),
        _ => {
            let name = envelope.source.as_deref().unwrap_or_default();
            source::validate_event(raw.get(), config.sources.get(name), &config.limits)
                .and_then(|event| with_schema(config, name, raw.get()).map(|()| event))
                .map(|event| out.push_valid(&SourceLine::new(&at, name, &event), name, (line, "source")))
        }
    };
    match done {
        Err(violations) => {
            out.push_rejected(&envelope.id, received, &violations, line);
            let reason = violations.first().map_or("invalid", |v| v.reason.as_str());
            (Line::Invalid, (rejected(reason), cell))
        }
        Ok(()) => {
            if !out.tables.contains(&table) {
                out.tables.push(table);
            }
            (
                Line::Valid {
                    received_at: envelope.received_at,
                },
                (Fate::Landed(envelope.id.clone().into_owned()), cell),
            )
        }
    }
}

/// The first reason code of a `rejected` line the edge wrote.
fn first_reason_of_rejected_line(line: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Reasons {
        rejected: Vec<ReasonOnly>,
    }
    #[derive(serde::Deserialize)]
    struct ReasonOnly {
        reason: String,
    }
    serde_json::from_str::<Reasons>(line)
        .ok()
        .and_then(|r| r.rejected.into_iter().next())
        .map_or_else(|| "invalid".to_owned(), |r| r.reason)
}

/// Checks an event against the JSON Schema registered for `name`, if any.
fn with_schema(config: &TransformConfig, name: &str, text: &str) -> Result<(), Vec<Violation>> {
    if !config.schemas.has(name) {
        return Ok(());
    }
    let value: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    let violations = config.schemas.check(name, &value);
    if violations.is_empty() { Ok(()) } else { Err(violations) }
}

#[cfg(test)]
mod tests;
