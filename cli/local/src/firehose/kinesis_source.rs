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

use crate::aws_json;
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
    /// data to `accept` in shard order; a failed call is logged and made
    /// again a second later.
    pub fn run(&self, stop: &AtomicBool, mut accept: impl FnMut(Vec<Vec<u8>>)) {
        let mut iterators: Vec<Option<String>> = Vec::new();
        while !stop.load(Ordering::SeqCst) {
            if iterators.is_empty() {
                match self.shard_iterators() {
                    Ok(found) => iterators = found.into_iter().map(Some).collect(),
                    Err(e) => {
                        eprintln!("firehose-local: reading Kinesis stream {}: {e}", self.stream);
                        std::thread::sleep(Duration::from_secs(1));
                        continue;
                    }
                }
            }
            let mut read_any = false;
            for slot in &mut iterators {
                let Some(iterator) = slot.clone() else { continue };
                match self.call("GetRecords", &json!({"ShardIterator": iterator, "Limit": 1000})) {
                    Ok(page) => {
                        let datas = user_records(&page);
                        read_any |= !datas.is_empty();
                        if !datas.is_empty() {
                            accept(datas);
                        }
                        *slot = page["NextShardIterator"].as_str().map(str::to_owned);
                    }
                    Err(e) => {
                        eprintln!("firehose-local: GetRecords on {}: {e}", self.stream);
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
            }
            if !read_any {
                std::thread::sleep(IDLE);
            }
        }
    }

    /// An iterator at the start of every shard.
    fn shard_iterators(&self) -> Result<Vec<String>> {
        let shards = self.call("ListShards", &json!({"StreamName": self.stream}))?;
        shards["Shards"]
            .as_array()
            .ok_or_else(|| Error::protocol(format!("ListShards: no Shards in {shards}")))?
            .iter()
            .map(|shard| {
                let body = json!({"StreamName": self.stream, "ShardId": shard["ShardId"], "ShardIteratorType": "TRIM_HORIZON"});
                let it = self.call("GetShardIterator", &body)?;
                it["ShardIterator"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| Error::protocol(format!("GetShardIterator: no iterator in {it}")))
            })
            .collect()
    }

    /// One signed Kinesis call.
    fn call(&self, operation: &str, body: &Value) -> Result<Value> {
        let credentials = Credentials::new(self.access_key_id.clone(), self.secret_access_key.clone());
        aws_json::call(
            &self.endpoint,
            aws_json::KINESIS,
            operation,
            body,
            &self.region,
            &credentials,
        )
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
