//! `edgehose latency` against a deployment as a user runs it: the API
//! Gateway path (the real `ingest-api` binary behind the local API Gateway)
//! putting to Firehose in moto, and the event-to-sink watch reading moto's
//! S3 bucket with a read-only key, SigV4 and IAM checked. The binary is run
//! as a user would, with its key in the environment.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::path::PathBuf;
use std::process::{Command, Output};

use edgehose_local::aws::api_gateway::ApiGateway;
use edgehose_shared::sigv4::sign::Credentials;
use edgehose_tests::sandbox::Sandbox;
use edgehose_tests::workspace_binary;

fn latency(args: &[&str], key: &Credentials, out: &PathBuf) -> Output {
    Command::new(workspace_binary("edgehose"))
        .arg("latency")
        .args(args)
        .arg("--out")
        .arg(out)
        .env("AWS_ACCESS_KEY_ID", key.access_key_id())
        .env("AWS_SECRET_ACCESS_KEY", key.secret_access_key())
        .env_remove("AWS_SESSION_TOKEN")
        .output()
        .unwrap()
}

#[test]
fn every_event_is_found_in_the_bucket_and_a_key_that_cannot_read_it_is_refused_up_front() {
    let sandbox = Sandbox::start().unwrap_or_else(|e| panic!("could not start the moto sandbox: {e}"));
    let moto = sandbox.moto.endpoint();
    let edge_secret = sandbox.edge.secret_access_key().to_owned();
    let api = ApiGateway::start(
        "127.0.0.1:0",
        &workspace_binary("ingest-api"),
        &[
            ("FIREHOSE_STREAM", sandbox.stream.as_str()),
            ("AWS_REGION", "us-east-1"),
            ("FIREHOSE_ENDPOINT", moto.as_str()),
            ("AWS_ACCESS_KEY_ID", sandbox.edge.access_key_id()),
            ("AWS_SECRET_ACCESS_KEY", edge_secret.as_str()),
            ("ALLOW_ANONYMOUS", "true"),
        ],
        None,
    )
    .unwrap();
    let target = format!("apigw={}/v1/events", api.url());
    let sink = format!("s3://{}/", sandbox.bucket);
    let out = std::env::temp_dir().join(format!("edgehose-latency-sink-{}", uuid::Uuid::new_v4()));
    let run = |key: &Credentials| {
        latency(
            &[
                "--target",
                &target,
                "--requests",
                "4",
                "--warmup",
                "1",
                "--sink",
                &sink,
                "--sink-endpoint",
                &moto,
                "--sink-timeout",
                "60",
            ],
            key,
            &out,
        )
    };

    // The edge's key may only put records: the watch cannot list the
    // bucket, and that is said before a single request is measured.
    let refused = run(&sandbox.edge);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains("S3 answered 403") && stderr.contains("s3:ListBucket"),
        "{stderr}"
    );
    assert_eq!(api.accepted_events(), 0, "nothing is sent when the sink cannot be read");

    let ok = run(&sandbox.reader);
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&ok.stderr),
        api.log()
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("latency.json")).unwrap()).unwrap();
    let samples = json["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 8, "4 requests in each of the two modes");
    for s in samples {
        assert_eq!(s["status"], 200, "{s}");
        let secs = s["sink"]["secs"].as_u64().expect("every event was seen in the bucket");
        assert!(secs < 60, "{s}");
    }
    for mode in json["report"]["modes"].as_array().unwrap() {
        let t = &mode["targets"][0];
        assert_eq!(
            (t["ok"].as_u64(), t["missing_from_sink"].as_u64()),
            (Some(4), Some(0)),
            "{t}"
        );
        assert_eq!(t["metrics"]["sink"]["count"], 4, "{t}");
    }
    assert!(stdout.contains("sink"), "{stdout}");
    let _ = std::fs::remove_dir_all(&out);
}
