//! The aggregated record format of the Kinesis Producer Library (KPL): many
//! user records, each with its partition key (and optionally an explicit hash
//! key), in one Kinesis record, so a 170-byte event does not take a whole
//! record of a shard's 1,000 per second, nor a whole 25 KB PUT payload unit.
//!
//! Layout: the magic bytes `F3 89 9A C2`, a protobuf `AggregatedRecord`, and
//! the MD5 of that protobuf:
//!
//! ```text
//! message AggregatedRecord {
//!   repeated string partition_key_table     = 1;
//!   repeated string explicit_hash_key_table = 2;
//!   repeated Record records                 = 3;
//! }
//! message Record {
//!   required uint64 partition_key_index     = 1;
//!   optional uint64 explicit_hash_key_index = 2;
//!   required bytes  data                    = 3;
//!   repeated Tag    tags                    = 4;   // never written here
//! }
//! ```
//!
//! Consumers that know the format (the KCL, `aws-kinesis-agg`, Firehose
//! reading from a stream) split it back into the user records; the encoding
//! here is checked byte for byte against `aws-kinesis-agg`'s aggregator and
//! decoded by its de-aggregator in `tests/tests/kinesis_aggregation.rs`.

use std::collections::HashMap;

use md5::{Digest, Md5};

/// The four bytes every aggregated record starts with.
pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];
/// The MD5 digest that ends it.
pub const DIGEST_BYTES: usize = 16;

/// One user record inside an aggregated record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord<'a> {
    /// Its partition key (chooses the shard unless an explicit hash key does).
    pub partition_key: &'a str,
    /// Its explicit hash key, a decimal 128-bit number, if any.
    pub explicit_hash_key: Option<&'a str>,
    /// Its data.
    pub data: &'a [u8],
}

/// Builds aggregated records one user record at a time, knowing the size
/// each addition makes, so a caller can stop before a limit.
#[derive(Debug, Clone, Default)]
pub struct Aggregate<'a> {
    keys: Vec<&'a str>,
    hash_keys: Vec<&'a str>,
    /// Where each key sits in its table, so adding stays linear in records.
    key_index: HashMap<&'a str, usize>,
    hash_index: HashMap<&'a str, usize>,
    /// (partition key index, explicit hash key index, data)
    records: Vec<(usize, Option<usize>, &'a [u8])>,
    /// Bytes of the protobuf message so far.
    message_bytes: usize,
}

impl<'a> Aggregate<'a> {
    /// An empty aggregate.
    pub fn new() -> Self {
        Self::default()
    }

    /// User records in it.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Bytes of the aggregated record [`Self::encode`] would make now.
    pub fn encoded_len(&self) -> usize {
        MAGIC.len() + self.message_bytes + DIGEST_BYTES
    }

    /// Bytes the aggregated record would have with `record` added.
    pub fn encoded_len_with(&self, record: &UserRecord<'_>) -> usize {
        self.encoded_len() + self.growth(record)
    }

    /// Adds `record`; partition and explicit hash keys already in the tables
    /// are referred to, not repeated.
    pub fn push(&mut self, record: UserRecord<'a>) {
        self.message_bytes += self.growth(&record);
        let key = index_of(&mut self.keys, &mut self.key_index, record.partition_key);
        let hash = record
            .explicit_hash_key
            .map(|h| index_of(&mut self.hash_keys, &mut self.hash_index, h));
        self.records.push((key, hash, record.data));
    }

    /// The aggregated record: magic, protobuf, MD5; `None` when empty (magic
    /// and digest alone are no aggregate to any consumer: send nothing).
    pub fn encode(&self) -> Option<Vec<u8>> {
        if self.is_empty() {
            return None;
        }
        let mut message = Vec::with_capacity(self.message_bytes);
        for key in &self.keys {
            bytes_field(&mut message, 1, key.as_bytes());
        }
        for key in &self.hash_keys {
            bytes_field(&mut message, 2, key.as_bytes());
        }
        for &(key, hash, data) in &self.records {
            let mut inner = Vec::with_capacity(record_bytes(key, hash, data.len()));
            varint_field(&mut inner, 1, key as u64);
            if let Some(h) = hash {
                varint_field(&mut inner, 2, h as u64);
            }
            bytes_field(&mut inner, 3, data);
            bytes_field(&mut message, 3, &inner);
        }
        debug_assert_eq!(message.len(), self.message_bytes);
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&message);
        out.extend_from_slice(&Md5::digest(&message));
        Some(out)
    }

    /// The partition key the aggregated record is sent with: its first user
    /// record's (the KPL's choice), or `None` when empty.
    pub fn partition_key(&self) -> Option<&'a str> {
        self.keys.first().copied()
    }

    /// The explicit hash key the aggregated record is sent with: its first
    /// user record's, if it has one (the KPL's choice); the stream then
    /// routes the aggregate by it rather than by the partition key's MD5.
    pub fn explicit_hash_key(&self) -> Option<&'a str> {
        let (_, hash, _) = self.records.first()?;
        hash.map(|h| self.hash_keys[h])
    }

    /// Bytes `record` adds to the protobuf message.
    fn growth(&self, record: &UserRecord<'_>) -> usize {
        let (key, mut table) = match self.key_index.get(record.partition_key) {
            Some(&i) => (i, 0),
            None => (self.keys.len(), field_bytes(record.partition_key.len())),
        };
        let hash = record.explicit_hash_key.map(|h| match self.hash_index.get(h) {
            Some(&i) => i,
            None => {
                table += field_bytes(h.len());
                self.hash_keys.len()
            }
        });
        table + field_bytes(record_bytes(key, hash, record.data.len()))
    }
}

/// Why bytes are not an aggregated record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AggregateError {
    /// No magic bytes, or too short to hold a digest: a plain record.
    #[error("not an aggregated record (no magic bytes or too short)")]
    NotAggregated,
    /// The MD5 does not match the message.
    #[error("the aggregated record's MD5 does not match its contents")]
    Digest,
    /// The protobuf is malformed.
    #[error("the aggregated record's protobuf is malformed: {0}")]
    Malformed(&'static str),
}

/// Splits an aggregated record back into its user records (the local
/// stand-ins and the tests read streams with it).
pub fn deaggregate<'a>(bytes: &'a [u8]) -> Result<Vec<UserRecord<'a>>, AggregateError> {
    let body = bytes
        .strip_prefix(&MAGIC[..])
        .filter(|b| b.len() > DIGEST_BYTES)
        .ok_or(AggregateError::NotAggregated)?;
    let (message, digest) = body.split_at(body.len() - DIGEST_BYTES);
    if Md5::digest(message).as_slice() != digest {
        return Err(AggregateError::Digest);
    }
    let (mut keys, mut hash_keys, mut raw) = (Vec::new(), Vec::new(), Vec::new());
    let mut at = 0;
    while at < message.len() {
        let (tag, value) = field(message, &mut at)?;
        match (tag, value) {
            (1, Value::Bytes(b)) => keys.push(utf8(b)?),
            (2, Value::Bytes(b)) => hash_keys.push(utf8(b)?),
            (3, Value::Bytes(b)) => raw.push(b),
            (_, _) => {} // unknown fields are skipped, as protobuf does
        }
    }
    raw.into_iter()
        .map(|r| {
            let (mut key, mut hash, mut data) = (None, None, None);
            let mut at = 0;
            while at < r.len() {
                match field(r, &mut at)? {
                    (1, Value::Varint(v)) => key = Some(v),
                    (2, Value::Varint(v)) => hash = Some(v),
                    (3, Value::Bytes(b)) => data = Some(b),
                    _ => {}
                }
            }
            let key = key.ok_or(AggregateError::Malformed("a record without a partition key index"))?;
            let table = |t: &[&'a str], i: u64| {
                usize::try_from(i)
                    .ok()
                    .and_then(|i| t.get(i).copied())
                    .ok_or(AggregateError::Malformed("a key index past its table"))
            };
            Ok(UserRecord {
                partition_key: table(&keys, key)?,
                explicit_hash_key: hash.map(|h| table(&hash_keys, h)).transpose()?,
                data: data.ok_or(AggregateError::Malformed("a record without data"))?,
            })
        })
        .collect()
}

fn index_of<'a>(table: &mut Vec<&'a str>, index: &mut HashMap<&'a str, usize>, key: &'a str) -> usize {
    *index.entry(key).or_insert_with(|| {
        table.push(key);
        table.len() - 1
    })
}

/// Bytes of a `Record` message body.
fn record_bytes(key: usize, hash: Option<usize>, data: usize) -> usize {
    1 + varint_len(key as u64) + hash.map_or(0, |h| 1 + varint_len(h as u64)) + field_bytes(data)
}

/// Bytes of a length-delimited field with a one-byte tag and `len` bytes.
fn field_bytes(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_field(out: &mut Vec<u8>, number: u8, v: u64) {
    out.push(number << 3);
    varint(out, v);
}

fn bytes_field(out: &mut Vec<u8>, number: u8, bytes: &[u8]) {
    out.push((number << 3) | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    /// A fixed-width field (wire types 1 and 5), skipped.
    Fixed,
}

fn read_varint(bytes: &[u8], at: &mut usize) -> Result<u64, AggregateError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes
            .get(*at)
            .ok_or(AggregateError::Malformed("a varint runs past the end"))?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(AggregateError::Malformed("a varint is too long"))
}

fn field<'a>(bytes: &'a [u8], at: &mut usize) -> Result<(u64, Value<'a>), AggregateError> {
    let key = read_varint(bytes, at)?;
    match key & 7 {
        0 => Ok((key >> 3, Value::Varint(read_varint(bytes, at)?))),
        2 => {
            let len = usize::try_from(read_varint(bytes, at)?)
                .map_err(|_| AggregateError::Malformed("a length too large"))?;
            let end = at
                .checked_add(len)
                .filter(|e| *e <= bytes.len())
                .ok_or(AggregateError::Malformed("a field runs past the end"))?;
            let value = &bytes[*at..end];
            *at = end;
            Ok((key >> 3, Value::Bytes(value)))
        }
        wire @ (1 | 5) => {
            let width = if wire == 1 { 8 } else { 4 };
            *at = at
                .checked_add(width)
                .filter(|e| *e <= bytes.len())
                .ok_or(AggregateError::Malformed("a field runs past the end"))?;
            Ok((key >> 3, Value::Fixed))
        }
        _ => Err(AggregateError::Malformed("an unknown wire type")),
    }
}

fn utf8(b: &[u8]) -> Result<&str, AggregateError> {
    std::str::from_utf8(b).map_err(|_| AggregateError::Malformed("a key that is not UTF-8"))
}

#[cfg(test)]
mod tests;
