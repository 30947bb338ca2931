//! Packing envelope lines into Firehose records and `PutRecordBatch` calls.
//!
//! Lines are NDJSON: each is written followed by `\n`, and consecutive lines
//! share a record until it would pass the target size, so a record is always
//! whole lines (Firehose concatenates records in S3 with no separator). Calls
//! take records in order until the next would pass 500 records or 4 MiB of
//! request body, base64 growth and JSON framing counted exactly. Order is kept
//! and nothing is dropped or repeated.

use std::ops::Range;

use crate::firehose;
use crate::limits::{
    FIREHOSE_BILLING_INCREMENT_BYTES, FIREHOSE_MAX_CALL_BYTES, FIREHOSE_MAX_RECORD_BYTES,
    FIREHOSE_MAX_RECORDS_PER_CALL, QUEUE_MAX_BATCH_BYTES, QUEUE_MAX_BATCH_MESSAGES,
};
use crate::settings::{SettingError, Settings};
use crate::table::Destination;

/// How records are filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackConfig {
    target_record_bytes: usize,
}

impl Default for PackConfig {
    /// Records filled up to Firehose's maximum: the fewest records and the
    /// least 5 KB rounding on the bill.
    fn default() -> Self {
        Self {
            target_record_bytes: FIREHOSE_MAX_RECORD_BYTES,
        }
    }
}

impl PackConfig {
    /// Records of at most `target` bytes (clamped to `1..=`
    /// [`FIREHOSE_MAX_RECORD_BYTES`]); a line longer than the target still
    /// gets a record of its own. `1` means one line per record.
    pub fn with_target_record_bytes(target: usize) -> Self {
        Self {
            target_record_bytes: target.clamp(1, FIREHOSE_MAX_RECORD_BYTES),
        }
    }

    /// The target record size in force.
    pub fn target_record_bytes(&self) -> usize {
        self.target_record_bytes
    }

    /// Reads `RECORD_TARGET_BYTES` and `DESTINATION`: records as full as
    /// the target for the JSON destination; one line each for Iceberg,
    /// whose Firehose destination reads one JSON object a record (and bills
    /// by the byte, not in 5 KB steps, so a small record costs no more).
    pub fn from_settings<F: Fn(&str) -> Option<String>>(s: &Settings<F>) -> Result<Self, SettingError> {
        match Destination::from_settings(s)? {
            Destination::Json => Ok(Self::with_target_record_bytes(
                s.usize_or("RECORD_TARGET_BYTES", FIREHOSE_MAX_RECORD_BYTES)?,
            )),
            Destination::Iceberg => match s.get("RECORD_TARGET_BYTES") {
                Some(v) if v.trim() != "1" => Err(SettingError::new(
                    "RECORD_TARGET_BYTES",
                    format!(
                        "= {v} cannot be set with DESTINATION = iceberg: Firehose's Iceberg destination reads one event a record"
                    ),
                )),
                _ => Ok(Self::for_destination(Destination::Iceberg)),
            },
        }
    }

    /// Records as the destination wants them by default: as full as
    /// Firehose takes for JSON, one line each for Iceberg.
    pub fn for_destination(destination: Destination) -> Self {
        match destination {
            Destination::Json => Self::default(),
            Destination::Iceberg => Self::with_target_record_bytes(1),
        }
    }
}

/// One Firehose record: whole lines, each ending in `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The record's bytes, as Firehose will store them.
    pub data: Vec<u8>,
    /// Which input lines it holds (indices into the packed slice).
    pub lines: Range<usize>,
}

/// One `PutRecordBatch` call's worth of records.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Call {
    /// The records, in input order.
    pub records: Vec<Record>,
    /// The exact size of this call's request body, in bytes.
    pub body_bytes: usize,
}

/// Why lines could not be packed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PackError {
    /// A line (plus its newline) is larger than a Firehose record may be.
    #[error("line {index} is {size} bytes with its newline; a Firehose record holds at most {limit} bytes")]
    LineTooLarge {
        /// The line's index.
        index: usize,
        /// Its size including the newline.
        size: usize,
        /// [`FIREHOSE_MAX_RECORD_BYTES`].
        limit: usize,
    },
    /// The delivery stream name is not one Firehose accepts.
    #[error(transparent)]
    StreamName(#[from] crate::aws::ConfigError),
}

/// Packs `lines` (without newlines) into records, then records into calls for
/// the named stream.
pub fn pack<L: AsRef<[u8]>>(lines: &[L], stream: &str, config: PackConfig) -> Result<Vec<Call>, PackError> {
    firehose::check_stream_name(stream)?;
    Ok(pack_calls(pack_records(lines, config)?, stream))
}

/// Packs lines into records only.
pub fn pack_records<L: AsRef<[u8]>>(lines: &[L], config: PackConfig) -> Result<Vec<Record>, PackError> {
    let mut records = Vec::new();
    let mut current = Record {
        data: Vec::new(),
        lines: 0..0,
    };
    for (index, line) in lines.iter().enumerate() {
        let line = line.as_ref();
        let size = line.len() + 1;
        if size > FIREHOSE_MAX_RECORD_BYTES {
            return Err(PackError::LineTooLarge {
                index,
                size,
                limit: FIREHOSE_MAX_RECORD_BYTES,
            });
        }
        if !current.data.is_empty() && current.data.len() + size > config.target_record_bytes {
            let next = Record {
                data: Vec::new(),
                lines: index..index,
            };
            records.push(std::mem::replace(&mut current, next));
        }
        current.data.extend_from_slice(line);
        current.data.push(b'\n');
        current.lines.end = index + 1;
    }
    if !current.data.is_empty() {
        records.push(current);
    }
    Ok(records)
}

/// Lines packed so that no record mixes two groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grouped {
    /// The records; each one's `lines` index [`Grouped::order`].
    pub records: Vec<Record>,
    /// The input lines in packing order: group by group (groups in order of
    /// first appearance), input order within one. `order[k]` is the input
    /// index of the `k`-th packed line.
    pub order: Vec<usize>,
}

/// Packs `lines` into records of one group each: `groups[i]` is line `i`'s.
/// Each group fills its own records (so a group of a few lines costs a
/// record of its own); nothing is dropped or repeated.
pub fn pack_grouped<L: AsRef<[u8]>, G: std::hash::Hash + Eq>(
    lines: &[L],
    groups: &[G],
    config: PackConfig,
) -> Result<Grouped, PackError> {
    let mut rank_of: std::collections::HashMap<&G, usize> = std::collections::HashMap::new();
    let ranks: Vec<usize> = groups
        .iter()
        .map(|g| {
            let next = rank_of.len();
            *rank_of.entry(g).or_insert(next)
        })
        .collect();
    let mut order: Vec<usize> = (0..lines.len().min(ranks.len())).collect();
    order.sort_by_key(|&i| ranks[i]);
    let mut records = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let rank = ranks[order[start]];
        let end = order[start..]
            .iter()
            .position(|&i| ranks[i] != rank)
            .map_or(order.len(), |n| start + n);
        let segment: Vec<&[u8]> = order[start..end].iter().map(|&i| lines[i].as_ref()).collect();
        let packed = pack_records(&segment, config).map_err(|e| match e {
            PackError::LineTooLarge { index, size, limit } => PackError::LineTooLarge {
                index: order[start + index],
                size,
                limit,
            },
            other => other,
        })?;
        records.extend(packed.into_iter().map(|mut r| {
            r.lines = r.lines.start + start..r.lines.end + start;
            r
        }));
        start = end;
    }
    Ok(Grouped { records, order })
}

/// Groups records into calls of at most 500 records and 4 MiB of body.
pub fn pack_calls(records: Vec<Record>, stream: &str) -> Vec<Call> {
    let empty_body = firehose::body_overhead(stream);
    let mut calls = Vec::new();
    let mut call = Call {
        records: Vec::new(),
        body_bytes: empty_body,
    };
    for record in records {
        let entry = firehose::record_entry_bytes(record.data.len());
        let separator = usize::from(!call.records.is_empty());
        if !call.records.is_empty()
            && (call.records.len() == FIREHOSE_MAX_RECORDS_PER_CALL
                || call.body_bytes + separator + entry > FIREHOSE_MAX_CALL_BYTES)
        {
            calls.push(std::mem::replace(
                &mut call,
                Call {
                    records: Vec::new(),
                    body_bytes: empty_body,
                },
            ));
        }
        call.body_bytes += usize::from(!call.records.is_empty()) + entry;
        call.records.push(record);
    }
    if !call.records.is_empty() {
        calls.push(call);
    }
    calls
}

/// Joins lines into messages of whole lines separated by `\n`, each at most
/// `max_bytes` unless a single line is longer (it then travels alone).
/// For Cloudflare Queues: pass at most [`crate::limits::QUEUE_MAX_MESSAGE_BYTES`].
pub fn group_lines<L: AsRef<str>>(lines: &[L], max_bytes: usize) -> Vec<String> {
    let mut groups = Vec::new();
    let mut current = String::new();
    for line in lines {
        let line = line.as_ref();
        if !current.is_empty() && current.len() + 1 + line.len() > max_bytes {
            groups.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(line);
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}

/// Splits messages of the given sizes into consecutive `sendBatch` calls of
/// at most [`QUEUE_MAX_BATCH_MESSAGES`] messages and [`QUEUE_MAX_BATCH_BYTES`].
pub fn queue_batches(sizes: &[usize]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, &size) in sizes.iter().enumerate() {
        if i > start && (i - start == QUEUE_MAX_BATCH_MESSAGES || bytes + size > QUEUE_MAX_BATCH_BYTES) {
            out.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < sizes.len() {
        out.push(start..sizes.len());
    }
    out
}

/// The bytes Firehose bills for one record: its size rounded up to the next
/// 5 KB ([`FIREHOSE_BILLING_INCREMENT_BYTES`]).
pub fn billed_record_bytes(size: usize) -> u64 {
    (size.max(1).div_ceil(FIREHOSE_BILLING_INCREMENT_BYTES) * FIREHOSE_BILLING_INCREMENT_BYTES) as u64
}

/// What a packing costs and carries, for comparing packing choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PackingStats {
    /// Lines packed.
    pub lines: usize,
    /// Records made.
    pub records: usize,
    /// `PutRecordBatch` calls made.
    pub calls: usize,
    /// Payload bytes (lines plus newlines).
    pub payload_bytes: u64,
    /// Bytes Firehose bills: each record rounded up to the next 5 KB.
    pub billed_bytes: u64,
    /// Request body bytes sent, base64 and framing included.
    pub wire_bytes: u64,
}

impl PackingStats {
    /// Adds `other` (another packing) to these.
    pub fn add(&mut self, other: &Self) {
        self.lines += other.lines;
        self.records += other.records;
        self.calls += other.calls;
        self.payload_bytes += other.payload_bytes;
        self.billed_bytes += other.billed_bytes;
        self.wire_bytes += other.wire_bytes;
    }

    /// Adds up a packing.
    pub fn of(calls: &[Call]) -> Self {
        let mut s = Self {
            calls: calls.len(),
            ..Self::default()
        };
        for call in calls {
            s.wire_bytes += call.body_bytes as u64;
            for r in &call.records {
                s.records += 1;
                s.lines += r.lines.len();
                s.payload_bytes += r.data.len() as u64;
                s.billed_bytes += billed_record_bytes(r.data.len());
            }
        }
        s
    }
}

#[cfg(test)]
mod tests;
