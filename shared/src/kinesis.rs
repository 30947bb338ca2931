//! Kinesis Data Streams: the limits of `PutRecords`, its wire format
//! ([`put_records`]), the partition key each event is given ([`partition`]),
//! the aggregated record format ([`aggregate`]) that packs many small events
//! into one Kinesis record, and packing lines into calls ([`pack`]).
//!
//! Limits: <https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html>
//! and <https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html>.

pub mod aggregate;
pub mod pack;
pub mod partition;
pub mod put_records;

/// Records in one `PutRecords` call.
pub const MAX_RECORDS_PER_CALL: usize = 500;
/// Bytes in one `PutRecords` call: every record's data and partition key.
pub const MAX_BYTES_PER_CALL: usize = 5 * 1024 * 1024;
/// Bytes of one record: its data (before base64) and its partition key.
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;
/// Characters of a partition key (Unicode, at least one).
pub const MAX_PARTITION_KEY_CHARS: usize = 256;
/// A shard's write quota: records per second.
pub const SHARD_RECORDS_PER_SECOND: usize = 1_000;
/// A shard's write quota: bytes per second.
pub const SHARD_BYTES_PER_SECOND: usize = 1024 * 1024;
/// On-demand and provisioned streams bill PUTs in units of this many bytes.
pub const PUT_PAYLOAD_UNIT_BYTES: usize = 25 * 1024;
