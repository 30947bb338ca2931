//! `aws-sdk-firehose`, an independent client, against firehose-local: good
//! calls succeed, and a wrong secret is refused with the error type AWS
//! returns, which the SDK models.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use aws_sdk_firehose::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::Record;
use edgehose_local::aws::firehose::{self, Config, FirehoseLocal};

fn sdk(url: &str, secret: &str) -> aws_sdk_firehose::Client {
    let config = aws_sdk_firehose::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            firehose::DEV_ACCESS_KEY_ID,
            secret,
            None,
            None,
            "test",
        ))
        .endpoint_url(url)
        .retry_config(aws_sdk_firehose::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_firehose::Client::from_conf(config)
}

#[tokio::test]
async fn the_aws_sdk_puts_describes_and_is_refused_a_wrong_secret_like_aws() {
    let dir = std::env::temp_dir().join(format!("edgehose-sdk-{}", uuid::Uuid::new_v4()));
    let local = FirehoseLocal::start(Config::new("clicks", dir.clone())).unwrap();
    let client = sdk(local.url(), firehose::DEV_SECRET_ACCESS_KEY);

    let records: Vec<Record> = ["sdk-1\n", "sdk-2\n"]
        .iter()
        .map(|d| Record::builder().data(Blob::new(d.as_bytes())).build().unwrap())
        .collect();
    let out = client
        .put_record_batch()
        .delivery_stream_name("clicks")
        .set_records(Some(records))
        .send()
        .await
        .unwrap();
    assert_eq!(out.failed_put_count(), 0);
    assert_eq!(out.request_responses().len(), 2);
    assert!(out.request_responses().iter().all(|r| r.record_id().is_some()));

    let d = client
        .describe_delivery_stream()
        .delivery_stream_name("clicks")
        .send()
        .await
        .unwrap();
    let desc = d.delivery_stream_description().unwrap();
    assert_eq!(desc.delivery_stream_name(), "clicks");
    assert_eq!(desc.delivery_stream_status().as_str(), "ACTIVE");

    let err = client
        .put_record()
        .delivery_stream_name("nope")
        .record(Record::builder().data(Blob::new("x")).build().unwrap())
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");

    let wrong = sdk(local.url(), "not-the-secret");
    let err = wrong
        .list_delivery_streams()
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    use aws_sdk_firehose::error::ProvideErrorMetadata;
    assert_eq!(err.code(), Some("InvalidSignatureException"), "{err:?}");

    local.flush(std::time::Duration::from_secs(10)).unwrap();
    let landed: String = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .flat_map(|year| walk(&year))
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    assert_eq!(landed, "sdk-1\nsdk-2\n");
    drop(local);
    let _ = std::fs::remove_dir_all(&dir);
}

fn walk(p: &std::path::Path) -> Vec<std::path::PathBuf> {
    if p.is_dir() {
        std::fs::read_dir(p)
            .unwrap()
            .flatten()
            .flat_map(|e| walk(&e.path()))
            .collect()
    } else {
        vec![p.to_path_buf()]
    }
}
