//! A Firehose sandbox in moto, set up as production should be: an S3 bucket,
//! DirectPut delivery streams into it, and an edge IAM user whose only
//! permission is `firehose:PutRecordBatch` on the stream (and a second, for
//! sharding) it writes to. Signature and
//! IAM checking are on once it is built.

use edgehose_shared::sigv4::sign::Credentials;

use crate::aws::{AwsClient, REGION, xml_values};
use edgehose_local::aws::moto::{Moto, expect_ok};

/// The account moto uses.
pub const ACCOUNT: &str = "123456789012";

/// The running emulator, its resources and keys.
pub struct Sandbox {
    /// The emulator (stopped when the sandbox is dropped).
    pub moto: Moto,
    /// The bucket the stream delivers to.
    pub bucket: String,
    /// The stream the edge may write to.
    pub stream: String,
    /// A second stream the edge may write to, for sharding.
    pub second_stream: String,
    /// Another stream in the same account, which the edge may not touch.
    pub other_stream: String,
    /// The edge's key: `firehose:PutRecordBatch` on `stream`, nothing else.
    pub edge: Credentials,
    /// A key that may read the bucket, for checking what landed.
    pub reader: Credentials,
}

impl Sandbox {
    /// Starts moto and builds the sandbox.
    pub fn start() -> Result<Self, String> {
        let moto = Moto::start()?;
        let setup = AwsClient::new(moto.endpoint(), Credentials::new("setup", "setup"));
        let bucket = "edgehose-sink".to_owned();
        let (stream, second_stream, other_stream) = ("clicks".to_owned(), "clicks-2".to_owned(), "other".to_owned());

        expect_ok(&setup.s3("PUT", &format!("/{bucket}"), Vec::new())?, "CreateBucket")?;
        for name in [&stream, &second_stream, &other_stream] {
            let body = serde_json::json!({
                "DeliveryStreamName": name,
                "DeliveryStreamType": "DirectPut",
                "ExtendedS3DestinationConfiguration": {
                    "RoleARN": format!("arn:aws:iam::{ACCOUNT}:role/edgehose-firehose"),
                    "BucketARN": format!("arn:aws:s3:::{bucket}"),
                    "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60}
                }
            });
            let r = setup.json("firehose", "Firehose_20150804.CreateDeliveryStream", &body)?;
            expect_ok(&r, "CreateDeliveryStream")?;
        }

        let arn = |name: &str| format!("arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/{name}");
        let edge_policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "firehose:PutRecordBatch", "Resource": [arn(&stream), arn(&second_stream)]}]
        });
        let edge = create_user(&setup, "edgehose-edge", &edge_policy)?;
        let reader_policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:GetObject"],
                "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")]
            }]
        });
        let reader = create_user(&setup, "edgehose-test-reader", &reader_policy)?;
        moto.enable_auth()?;
        Ok(Self {
            moto,
            bucket,
            stream,
            second_stream,
            other_stream,
            edge,
            reader,
        })
    }

    /// Every object in the bucket, `(key, bytes)`, in key order.
    pub fn objects(&self) -> Result<Vec<(String, Vec<u8>)>, String> {
        let reader = AwsClient::new(self.moto.endpoint(), self.reader.clone());
        let list = reader.s3("GET", &format!("/{}?list-type=2", self.bucket), Vec::new())?;
        expect_ok(&list, "ListObjectsV2")?;
        let mut keys = xml_values(&list.text(), "Key");
        keys.sort();
        keys.into_iter()
            .map(|key| {
                let r = reader.s3("GET", &format!("/{}/{key}", self.bucket), Vec::new())?;
                expect_ok(&r, "GetObject")?;
                Ok((key, r.body))
            })
            .collect()
    }
}

/// Creates an IAM user with one inline policy and returns its new access key.
pub(crate) fn create_user(iam: &AwsClient, name: &str, policy: &serde_json::Value) -> Result<Credentials, String> {
    const V: (&str, &str) = ("Version", "2010-05-08");
    expect_ok(
        &iam.query("iam", &[("Action", "CreateUser"), ("UserName", name), V])?,
        "CreateUser",
    )?;
    let doc = policy.to_string();
    let put = iam.query(
        "iam",
        &[
            ("Action", "PutUserPolicy"),
            ("UserName", name),
            ("PolicyName", "edgehose"),
            ("PolicyDocument", &doc),
            V,
        ],
    )?;
    expect_ok(&put, "PutUserPolicy")?;
    let key = iam.query("iam", &[("Action", "CreateAccessKey"), ("UserName", name), V])?;
    expect_ok(&key, "CreateAccessKey")?;
    let text = key.text();
    match (
        xml_values(&text, "AccessKeyId").pop(),
        xml_values(&text, "SecretAccessKey").pop(),
    ) {
        (Some(id), Some(secret)) => Ok(Credentials::new(id, secret)),
        _ => Err(format!("CreateAccessKey: no key in {text}")),
    }
}
