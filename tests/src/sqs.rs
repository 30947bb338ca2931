//! An SQS sandbox in moto, set up as production should be: a standard queue
//! and a FIFO queue, an edge IAM user whose only permission is
//! `sqs:SendMessage` (which `SendMessageBatch` needs) on those two, and a
//! reader. Signature and IAM checking are on once it is built. What landed
//! is read as a consumer would (`tests/sqs/read.py`: boto3's
//! `ReceiveMessage`, each message deleted once read).

use std::sync::Mutex;

use edgehose_shared::sigv4::sign::Credentials;

use crate::aws::{AwsClient, REGION, xml_values};
use crate::moto::read_with;
use crate::sandbox::{ACCOUNT, create_user};
use edgehose_local::aws::moto::{Moto, expect_ok};

/// One message read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Its body.
    pub body: String,
    /// Its group id, from a FIFO queue.
    pub group_id: Option<String>,
    /// Its deduplication id, from a FIFO queue.
    pub deduplication_id: Option<String>,
}

/// The running emulator, the queues and the keys.
pub struct SqsSandbox {
    /// The emulator (stopped when the sandbox is dropped).
    pub moto: Moto,
    /// The standard queue's URL.
    pub queue: String,
    /// A second standard queue the edge may send to, for sharding.
    pub second_queue: String,
    /// The FIFO queue's URL.
    pub fifo_queue: String,
    /// A queue the edge may not send to.
    pub other_queue: String,
    /// The edge's key: `sqs:SendMessage` on the two queues, nothing else.
    pub edge: Credentials,
    /// A key that may receive and delete.
    pub reader: Credentials,
    received: Mutex<Vec<(String, Received)>>,
}

impl SqsSandbox {
    /// Starts moto and builds the sandbox.
    pub fn start() -> Result<Self, String> {
        let moto = Moto::start()?;
        let setup = AwsClient::new(moto.endpoint(), Credentials::new("setup", "setup"));
        let create = |name: &str, fifo: bool| -> Result<String, String> {
            let mut params = vec![
                ("Action", "CreateQueue"),
                ("QueueName", name),
                ("Version", "2012-11-05"),
            ];
            if fifo {
                params.extend([("Attribute.1.Name", "FifoQueue"), ("Attribute.1.Value", "true")]);
            }
            let r = setup.query("sqs", &params)?;
            expect_ok(&r, "CreateQueue")?;
            xml_values(&r.text(), "QueueUrl")
                .pop()
                .ok_or(format!("CreateQueue: no QueueUrl in {}", r.text()))
        };
        let queue = create("rides", false)?;
        let second_queue = create("rides-2", false)?;
        let fifo_queue = create("rides.fifo", true)?;
        let other_queue = create("other-rides", false)?;
        let arn = |name: &str| format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}");
        let edge_policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": [arn("rides"), arn("rides-2"), arn("rides.fifo")]}]
        });
        let edge = create_user(&setup, "edgehose-edge-sqs", &edge_policy)?;
        let reader_policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                "Resource": [arn("rides"), arn("rides-2"), arn("rides.fifo")]
            }]
        });
        let reader = create_user(&setup, "edgehose-sqs-reader", &reader_policy)?;
        moto.enable_auth()?;
        Ok(Self {
            moto,
            queue,
            second_queue,
            fifo_queue,
            other_queue,
            edge,
            reader,
            received: Mutex::new(Vec::new()),
        })
    }

    /// Every message read from `queue_url` so far: reads what arrived since
    /// the last call (and deletes it), and returns it with what was read before.
    pub fn received(&self, queue_url: &str) -> Result<Vec<Received>, String> {
        let rows = read_with(&self.reader, "sqs/read.py", &[&self.moto.endpoint(), queue_url])?;
        let mut all = self.received.lock().map_err(|e| e.to_string())?;
        for r in rows {
            let text = |k: &str| r[k].as_str().map(str::to_owned);
            all.push((
                queue_url.to_owned(),
                Received {
                    body: text("body").ok_or(format!("read.py: no body in {r}"))?,
                    group_id: text("group_id"),
                    deduplication_id: text("deduplication_id"),
                },
            ));
        }
        Ok(all
            .iter()
            .filter(|(q, _)| q == queue_url)
            .map(|(_, m)| m.clone())
            .collect())
    }
}
