//! firehose-local reading a Kinesis data stream as its source, as a delivery
//! stream with `KinesisStreamAsSource` does: every shard read from its
//! start with `GetRecords`, aggregated records split into their user
//! records (Firehose de-aggregates before the transform sees them), each
//! user record handed on as one record. The edge's `SINK = "kinesis"` then
//! runs locally end to end: edge → stream (moto) → here → transform → disk.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use edgehose_shared::kinesis::aggregate::{MAGIC, deaggregate};
use edgehose_shared::sigv4::sign::Credentials;
use serde_json::{Value, json};

use crate::aws::json_call;
use crate::error::{Error, Result};

/// Where the records come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KinesisSource {
    /// The Kinesis endpoint (moto's, locally).
    pub endpoint: String,
    /// The data stream.
    pub stream: String,
    /// The region calls are signed for.
    pub region: String,
    /// A key allowed to read the stream: its id…
    pub access_key_id: String,
    /// …and secret.
    pub secret_access_key: String,
}

/// How long an empty shard is left before it is read again.
const IDLE: Duration = Duration::from_millis(200);

impl KinesisSource {
    /// Reads every shard until `stop`, handing each batch of user records'
    /// data to `accept` in shard order. A failed call is logged and made
    /// again a second later; a `GetRecords` that fails (an iterator expires
    /// five minutes after it was issued, or the stream was busy) gets a
    /// fresh iterator just after the last record read, so nothing is read
    /// twice or skipped.
    pub fn run(&self, stop: &AtomicBool, mut accept: impl FnMut(Vec<Vec<u8>>)) {
        let mut shards: Vec<Shard> = Vec::new();
        while !stop.load(Ordering::SeqCst) {
            if shards.is_empty() {
                match self.shards() {
                    Ok(found) => shards = found,
                    Err(e) => {
                        eprintln!("firehose-local: reading Kinesis stream {}: {e}", self.stream);
                        std::thread::sleep(Duration::from_secs(1));
                        continue;
                    }
                }
            }
            let mut read_any = false;
            for shard in &mut shards {
                if shard.iterator.is_none() && !shard.closed {
                    match self.call("GetShardIterator", &shard.iterator_request(&self.stream)) {
                        Ok(it) => shard.iterator = it["ShardIterator"].as_str().map(str::to_owned),
                        Err(e) => {
                            eprintln!("firehose-local: GetShardIterator on {}: {e}", self.stream);
                            std::thread::sleep(Duration::from_secs(1));
                            continue;
                        }
                    }
                }
                let Some(iterator) = shard.iterator.clone() else {
                    continue;
                };
                match self.call("GetRecords", &json!({"ShardIterator": iterator, "Limit": 1000})) {
                    Ok(page) => {
                        let datas = user_records(&page);
                        read_any |= !datas.is_empty();
                        if !datas.is_empty() {
                            accept(datas);
                        }
                        shard.read(&page);
                    }
                    Err(e) => {
                        eprintln!(
                            "firehose-local: GetRecords on {}: {e}; asking for a fresh iterator",
                            self.stream
                        );
                        shard.iterator = None;
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
            }
            if !read_any {
                std::thread::sleep(IDLE);
            }
        }
    }

    /// Every shard of the stream, to be read from its start.
    fn shards(&self) -> Result<Vec<Shard>> {
        let shards = self.call("ListShards", &json!({"StreamName": self.stream}))?;
        Ok(shards["Shards"]
            .as_array()
            .ok_or_else(|| Error::protocol(format!("ListShards: no Shards in {shards}")))?
            .iter()
            .filter_map(|shard| shard["ShardId"].as_str())
            .map(|id| Shard {
                id: id.to_owned(),
                iterator: None,
                after: None,
                closed: false,
            })
            .collect())
    }

    /// One signed Kinesis call.
    fn call(&self, operation: &str, body: &Value) -> Result<Value> {
        let credentials = Credentials::new(self.access_key_id.clone(), self.secret_access_key.clone());
        json_call::call(
            &self.endpoint,
            json_call::KINESIS,
            operation,
            body,
            &self.region,
            &credentials,
        )
    }
}

/// Where reading one shard stands.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shard {
    id: String,
    /// The iterator for the next `GetRecords`; `None`: ask for one.
    iterator: Option<String>,
    /// The sequence number of the last record read.
    after: Option<String>,
    /// The shard was closed (split or merged) and read to its end.
    closed: bool,
}

impl Shard {
    /// The `GetShardIterator` body: just after the last record read, or
    /// the shard's start when nothing was read yet.
    fn iterator_request(&self, stream: &str) -> Value {
        match &self.after {
            Some(seq) => {
                json!({"StreamName": stream, "ShardId": self.id, "ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": seq})
            }
            None => json!({"StreamName": stream, "ShardId": self.id, "ShardIteratorType": "TRIM_HORIZON"}),
        }
    }

    /// Notes a `GetRecords` page: its last record and the next iterator.
    fn read(&mut self, page: &Value) {
        if let Some(seq) = page["Records"]
            .as_array()
            .and_then(|r| r.last())
            .and_then(|r| r["SequenceNumber"].as_str())
        {
            self.after = Some(seq.to_owned());
        }
        self.iterator = page["NextShardIterator"].as_str().map(str::to_owned);
        self.closed = self.iterator.is_none();
    }
}

/// The data of every user record in a `GetRecords` page: an aggregated
/// record's user records in order, any other record as it is.
fn user_records(page: &Value) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for record in page["Records"].as_array().into_iter().flatten() {
        let Some(data) = record["Data"].as_str().and_then(|d| STANDARD.decode(d).ok()) else {
            continue;
        };
        if data.starts_with(&MAGIC)
            && let Ok(users) = deaggregate(&data)
        {
            out.extend(users.into_iter().map(|u| u.data.to_vec()));
            continue;
        }
        out.push(data);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgehose_shared::kinesis::aggregate::{Aggregate, UserRecord};

    #[test]
    fn a_fresh_iterator_starts_just_after_the_last_record_read() {
        let mut shard = Shard {
            id: "shardId-000000000000".into(),
            iterator: Some("it-1".into()),
            after: None,
            closed: false,
        };
        assert_eq!(shard.iterator_request("s")["ShardIteratorType"], "TRIM_HORIZON");
        shard
            .read(&json!({"Records": [{"SequenceNumber": "7"}, {"SequenceNumber": "9"}], "NextShardIterator": "it-2"}));
        assert_eq!(
            (shard.iterator.as_deref(), shard.after.as_deref()),
            (Some("it-2"), Some("9"))
        );
        // An empty page keeps the place; a failed call drops the iterator.
        shard.read(&json!({"Records": [], "NextShardIterator": "it-3"}));
        shard.iterator = None;
        let again = shard.iterator_request("s");
        assert_eq!(
            (
                again["ShardIteratorType"].as_str(),
                again["StartingSequenceNumber"].as_str()
            ),
            (Some("AFTER_SEQUENCE_NUMBER"), Some("9"))
        );
        // A closed shard, read to its end, is not asked for again.
        shard.read(&json!({"Records": []}));
        assert!(shard.closed && shard.iterator.is_none());
    }

    #[test]
    fn aggregated_records_are_split_and_the_rest_kept_whole() {
        let mut a = Aggregate::new();
        for data in [&b"{\"n\":1}\n"[..], b"{\"n\":2}\n"] {
            a.push(UserRecord {
                partition_key: "k",
                explicit_hash_key: None,
                data,
            });
        }
        let page = json!({"Records": [
            {"Data": STANDARD.encode(a.encode().unwrap()), "PartitionKey": "k", "SequenceNumber": "1"},
            {"Data": STANDARD.encode(b"{\"n\":3}\n"), "PartitionKey": "k", "SequenceNumber": "2"},
            {"Data": "not base64!", "PartitionKey": "k", "SequenceNumber": "3"},
        ]});
        assert_eq!(
            user_records(&page),
            [
                b"{\"n\":1}\n".to_vec(),
                b"{\"n\":2}\n".to_vec(),
                b"{\"n\":3}\n".to_vec()
            ]
        );
    }
}
