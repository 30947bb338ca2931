//! A Kinesis sandbox in moto, set up as production should be: a data stream
//! of two shards, an edge IAM user whose only permission is
//! `kinesis:PutRecords` on that one stream, and a reader. Signature and IAM
//! checking are on once it is built. What landed is read back as a consumer
//! would (`tests/kinesis/read.py`: boto3's `GetRecords`, de-aggregated by
//! awslabs' `aws-kinesis-agg`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use edgehose_shared::sigv4::sign::Credentials;

use crate::aws::{AwsClient, REGION};
use crate::moto::read_with;
use crate::sandbox::{ACCOUNT, create_user};
use edgehose_local::aws::moto::{Moto, expect_ok};

/// One user record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The shard it was read from.
    pub shard: String,
    /// Its Kinesis record's sequence number.
    pub sequence: String,
    /// Its partition key.
    pub partition_key: String,
    /// Whether it came out of an aggregated record.
    pub aggregated: bool,
    /// Its data.
    pub data: Vec<u8>,
}

/// The running emulator, the stream and the keys.
pub struct StreamSandbox {
    /// The emulator (stopped when the sandbox is dropped).
    pub moto: Moto,
    /// The stream the edge may write to.
    pub stream: String,
    /// A second stream the edge may write to, for sharding.
    pub second_stream: String,
    /// Another stream in the same account, which the edge may not touch.
    pub other_stream: String,
    /// The edge's key: `kinesis:PutRecords` on `stream`, nothing else.
    pub edge: Credentials,
    /// A key that may read the stream.
    pub reader: Credentials,
}

impl StreamSandbox {
    /// Starts moto and builds the sandbox.
    pub fn start() -> Result<Self, String> {
        let moto = Moto::start()?;
        let setup = AwsClient::new(moto.endpoint(), Credentials::new("setup", "setup"));
        let (stream, second_stream, other_stream) =
            ("rides".to_owned(), "rides-2".to_owned(), "other-rides".to_owned());
        for name in [&stream, &second_stream, &other_stream] {
            let body = serde_json::json!({"StreamName": name, "ShardCount": 2});
            expect_ok(
                &setup.json("kinesis", "Kinesis_20131202.CreateStream", &body)?,
                "CreateStream",
            )?;
        }
        let arn = |name: &str| format!("arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}");
        let edge_policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "kinesis:PutRecords", "Resource": [arn(&stream), arn(&second_stream)]}]
        });
        let edge = create_user(&setup, "edgehose-edge-kinesis", &edge_policy)?;
        let reader_policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Action": ["kinesis:ListShards", "kinesis:GetShardIterator", "kinesis:GetRecords", "kinesis:DescribeStream"],
                // GetRecords names a shard iterator, not a stream: moto checks it against "*".
                "Resource": "*"
            }]
        });
        let reader = create_user(&setup, "edgehose-kinesis-reader", &reader_policy)?;
        moto.enable_auth()?;
        Ok(Self {
            moto,
            stream,
            second_stream,
            other_stream,
            edge,
            reader,
        })
    }

    /// Every user record in the stream, shard by shard in sequence order.
    pub fn records(&self) -> Result<Vec<UserRecord>, String> {
        self.records_of(&self.stream)
    }

    /// Every user record in `stream`, shard by shard in sequence order.
    pub fn records_of(&self, stream: &str) -> Result<Vec<UserRecord>, String> {
        let rows = read_with(&self.reader, "kinesis/read.py", &[&self.moto.endpoint(), stream])?;
        rows.iter()
            .map(|r| {
                let text = |k: &str| {
                    r[k].as_str()
                        .map(str::to_owned)
                        .ok_or(format!("read.py: no {k} in {r}"))
                };
                Ok(UserRecord {
                    shard: text("shard")?,
                    sequence: text("sequence")?,
                    partition_key: text("partition_key")?,
                    aggregated: r["aggregated"].as_bool().unwrap_or(false),
                    data: STANDARD.decode(text("data")?).map_err(|e| e.to_string())?,
                })
            })
            .collect()
    }
}
