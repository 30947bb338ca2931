//! Packing envelope lines into Kinesis records and `PutRecords` calls.
//!
//! Each line becomes a user record (the line and its `\n`, so a Firehose
//! stream reading the stream writes NDJSON to S3). Lines of one partition
//! key, in input order, share aggregated records ([`super::aggregate`]) up
//! to the target size; lines with no key share records under a random key
//! each. Without aggregation every line is a Kinesis record of its own.
//! Calls take records in order up to 500 records and 5 MiB, counted as AWS
//! counts them (data before base64 and partition keys). Nothing is dropped
//! or repeated, and every record knows the input lines it carries.

use std::collections::HashMap;

use super::aggregate::{Aggregate, UserRecord};
use super::partition::random_key;
use super::put_records::{self, Entry, RecordError};
use super::{MAX_BYTES_PER_CALL, MAX_RECORD_BYTES, MAX_RECORDS_PER_CALL, PUT_PAYLOAD_UNIT_BYTES};
use crate::aws::ConfigError;
use crate::clock::RandomSource;
use crate::settings::{SettingError, Settings};

/// How records are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackConfig {
    /// Whether lines share aggregated records (`KINESIS_AGGREGATE`, on by default).
    pub aggregate: bool,
    /// An aggregated record is closed before it would pass this many bytes
    /// (`KINESIS_RECORD_TARGET_BYTES`; default two PUT payload units, the
    /// KPL's default size; at most 1 MiB less the partition key).
    pub target_record_bytes: usize,
    /// One explicit hash key for every record (`KINESIS_EXPLICIT_HASH_KEY`):
    /// pins the stream's writes to the shard whose range holds it.
    pub explicit_hash_key: Option<String>,
}

impl Default for PackConfig {
    fn default() -> Self {
        Self {
            aggregate: true,
            target_record_bytes: DEFAULT_TARGET_RECORD_BYTES,
            explicit_hash_key: None,
        }
    }
}

/// Two PUT payload units: an aggregate this full is billed for no air.
pub const DEFAULT_TARGET_RECORD_BYTES: usize = 2 * PUT_PAYLOAD_UNIT_BYTES;

impl PackConfig {
    /// Reads `KINESIS_AGGREGATE`, `KINESIS_RECORD_TARGET_BYTES` and
    /// `KINESIS_EXPLICIT_HASH_KEY`.
    pub fn from_settings<F: Fn(&str) -> Option<String>>(s: &Settings<F>) -> Result<Self, SettingError> {
        let target = s.usize_or("KINESIS_RECORD_TARGET_BYTES", DEFAULT_TARGET_RECORD_BYTES)?;
        if !(1..=MAX_RECORD_BYTES).contains(&target) {
            return Err(SettingError::new(
                "KINESIS_RECORD_TARGET_BYTES",
                format!("= {target} is invalid: a Kinesis record holds 1 to {MAX_RECORD_BYTES} bytes"),
            ));
        }
        let explicit_hash_key = s.get("KINESIS_EXPLICIT_HASH_KEY");
        if let Some(h) = &explicit_hash_key {
            put_records::check_explicit_hash_key(h).map_err(|e| SettingError::new("KINESIS_EXPLICIT_HASH_KEY", e))?;
        }
        Ok(Self {
            aggregate: s.bool_or("KINESIS_AGGREGATE", true)?,
            target_record_bytes: target,
            explicit_hash_key,
        })
    }
}

/// One Kinesis record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its data: an aggregated record, or one line and its `\n`.
    pub data: Vec<u8>,
    /// Its partition key.
    pub partition_key: String,
    /// Its explicit hash key, if the configuration gives one.
    pub explicit_hash_key: Option<String>,
    /// The input lines it carries, ascending.
    pub lines: Vec<usize>,
}

impl Record {
    /// The record as `PutRecords` sends it.
    pub fn entry(&self) -> Entry<'_> {
        Entry {
            data: &self.data,
            partition_key: &self.partition_key,
            explicit_hash_key: self.explicit_hash_key.as_deref(),
        }
    }
}

/// One `PutRecords` call's worth of records.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Call {
    /// The records, keys in order of first appearance.
    pub records: Vec<Record>,
    /// What AWS counts against the call's 5 MiB.
    pub counted_bytes: usize,
    /// The exact size of the request body.
    pub body_bytes: usize,
}

impl Call {
    /// The records as `PutRecords` sends them.
    pub fn entries(&self) -> Vec<Entry<'_>> {
        self.records.iter().map(Record::entry).collect()
    }
}

/// Why lines could not be packed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PackError {
    /// A line cannot be a Kinesis record even alone.
    #[error("line {index} cannot be sent to Kinesis: {error}")]
    Line {
        /// The line's index.
        index: usize,
        /// What AWS would refuse.
        error: RecordError,
    },
    /// The stream name is not one Kinesis accepts.
    #[error(transparent)]
    StreamName(#[from] ConfigError),
}

/// Packs `lines` (without newlines) for `stream`: `keys[i]` is line `i`'s
/// partition key, `None` for any shard.
pub fn pack<L: AsRef<[u8]>>(
    lines: &[L],
    keys: &[Option<String>],
    stream: &str,
    config: &PackConfig,
    random: &dyn RandomSource,
) -> Result<Vec<Call>, PackError> {
    put_records::check_stream_name(stream)?;
    let records = pack_records(lines, keys, config, random)?;
    Ok(pack_calls(records, stream))
}

/// Packs lines into records only, keys in order of first appearance.
pub fn pack_records<L: AsRef<[u8]>>(
    lines: &[L],
    keys: &[Option<String>],
    config: &PackConfig,
    random: &dyn RandomSource,
) -> Result<Vec<Record>, PackError> {
    let with_newline: Vec<Vec<u8>> = lines
        .iter()
        .map(|l| {
            let mut v = Vec::with_capacity(l.as_ref().len() + 1);
            v.extend_from_slice(l.as_ref());
            v.push(b'\n');
            v
        })
        .collect();
    // Groups by key, in order of first appearance; keyless lines are one group.
    let mut group_of: HashMap<Option<&str>, usize> = HashMap::new();
    let mut groups: Vec<(Option<&str>, Vec<usize>)> = Vec::new();
    for (i, key) in keys.iter().enumerate().take(lines.len()) {
        let key = key.as_deref();
        let g = *group_of.entry(key).or_insert_with(|| {
            groups.push((key, Vec::new()));
            groups.len() - 1
        });
        groups[g].1.push(i);
    }
    let hash = config.explicit_hash_key.as_deref();
    let mut records = Vec::new();
    for (key, members) in groups {
        let key_for_record = |random: &dyn RandomSource| key.map_or_else(|| random_key(random), str::to_owned);
        if !config.aggregate {
            for i in members {
                let record = Record {
                    data: with_newline[i].clone(),
                    partition_key: key_for_record(random),
                    explicit_hash_key: hash.map(str::to_owned),
                    lines: vec![i],
                };
                record
                    .entry()
                    .check()
                    .map_err(|error| PackError::Line { index: i, error })?;
                records.push(record);
            }
            continue;
        }
        // Random keys are all 32 characters: the sizes come out the same
        // whichever is drawn, so the records are cut first and keyed after.
        let sizing_key = key.map_or_else(|| "0".repeat(32), str::to_owned);
        for lines in cut(&members, &with_newline, &sizing_key, hash, config.target_record_bytes)? {
            let partition_key = key_for_record(random);
            let mut aggregate = Aggregate::new();
            for &i in &lines {
                aggregate.push(UserRecord {
                    partition_key: &partition_key,
                    explicit_hash_key: hash,
                    data: &with_newline[i],
                });
            }
            records.push(Record {
                // Not empty: every cut holds a line.
                data: aggregate.encode().unwrap_or_default(),
                explicit_hash_key: hash.map(str::to_owned),
                partition_key,
                lines,
            });
        }
    }
    Ok(records)
}

/// Cuts one key's lines into aggregated records: each closes before it
/// would pass `target` bytes (or 1 MiB with its key); a line too large for a
/// record alone is an error.
fn cut(
    members: &[usize],
    data: &[Vec<u8>],
    key: &str,
    hash: Option<&str>,
    target: usize,
) -> Result<Vec<Vec<usize>>, PackError> {
    let limit = target.min(MAX_RECORD_BYTES - key.len());
    let mut cuts = Vec::new();
    let mut aggregate = Aggregate::new();
    let mut held = Vec::new();
    for &i in members {
        let user = UserRecord {
            partition_key: key,
            explicit_hash_key: hash,
            data: &data[i],
        };
        if !aggregate.is_empty() && aggregate.encoded_len_with(&user) > limit {
            cuts.push(std::mem::take(&mut held));
            aggregate = Aggregate::new();
        }
        if aggregate.is_empty() {
            let alone = aggregate.encoded_len_with(&user) + key.len();
            if alone > MAX_RECORD_BYTES {
                let error = RecordError::TooLarge { bytes: alone };
                return Err(PackError::Line { index: i, error });
            }
        }
        aggregate.push(user);
        held.push(i);
    }
    if !held.is_empty() {
        cuts.push(held);
    }
    Ok(cuts)
}

/// Puts records into calls, in order: a call closes before it would pass
/// 500 records or 5 MiB.
pub fn pack_calls(records: Vec<Record>, stream: &str) -> Vec<Call> {
    let empty_body = put_records::body_overhead(stream);
    let mut calls = Vec::new();
    let mut call = Call {
        body_bytes: empty_body,
        ..Call::default()
    };
    for record in records {
        let entry = record.entry();
        let counted = entry.counted_bytes();
        let body = put_records::entry_body_bytes(&entry);
        if !call.records.is_empty()
            && (call.records.len() == MAX_RECORDS_PER_CALL || call.counted_bytes + counted > MAX_BYTES_PER_CALL)
        {
            calls.push(std::mem::replace(
                &mut call,
                Call {
                    body_bytes: empty_body,
                    ..Call::default()
                },
            ));
        }
        call.body_bytes += body + usize::from(!call.records.is_empty());
        call.counted_bytes += counted;
        call.records.push(record);
    }
    if !call.records.is_empty() {
        calls.push(call);
    }
    calls
}

#[cfg(test)]
mod tests;
