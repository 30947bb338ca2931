//! The shared crate against a real AWS emulator: requests packed and signed
//! by `edgehose-shared`, sent by a small native client to `moto_server` with
//! signature and IAM checking on, and a least-privilege key.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use edgehose_local::clock::now;
use edgehose_local::http::{Response, send};
use edgehose_sample::ride_sample;
use edgehose_shared::aws::{CallError, Endpoint, PutOutcome};
use edgehose_shared::batch::{Call, PackConfig, pack};
use edgehose_shared::clock::SeededRandom;
use edgehose_shared::decode::decode;
use edgehose_shared::envelope::{EdgeMeta, Envelope, RequestContext, wrap_items};
use edgehose_shared::firehose::{SIGNING_SERVICE, parse_put_record_batch_response, put_record_batch_request};
use edgehose_shared::limits::Limits;
use edgehose_shared::sigv4::sign::{Credentials, sign};
use edgehose_shared::timestamp::Timestamp;
use edgehose_tests::aws::REGION;
use edgehose_tests::sandbox::Sandbox;

fn sandbox() -> Sandbox {
    Sandbox::start().unwrap_or_else(|e| panic!("could not start the moto sandbox: {e}"))
}

/// Envelope lines for a realistic mixed body: good events, a pretty-printed
/// one, and a line that is not JSON (quarantined).
fn lines() -> Vec<String> {
    let mut body = String::new();
    for i in 0..40 {
        body.push_str(&ride_sample("bike-7", i));
        body.push('\n');
    }
    body.push_str("{\"event\": \"page_view\", \"url\": \"https://example.com/\"}\n");
    body.push_str("this is not json\n");
    let mut buf = None;
    let decoded = decode(
        &mut buf,
        body.as_bytes(),
        Some("application/x-ndjson"),
        None,
        &Limits::default(),
    )
    .unwrap();
    let edge = EdgeMeta {
        country: Some("NL".into()),
        colo: Some("AMS".into()),
        asn: Some(1136),
        client_ip: None,
    };
    let ctx = RequestContext {
        received_at: Timestamp::from_millis(1_714_566_660_000),
        key_id: Some("bikes"),
        edge: &edge,
        content_type: Some("application/x-ndjson"),
        dialect: edgehose_shared::envelope::Dialect::V1,
    };
    wrap_items(&ctx, &decoded.items, &SeededRandom::new(11))
}

fn signed_request(sandbox: &Sandbox, stream: &str, call: &Call, creds: &Credentials) -> http::Request<Vec<u8>> {
    let endpoint = Endpoint::parse(&sandbox.moto.endpoint()).unwrap();
    let mut request =
        put_record_batch_request(&endpoint, stream, call.records.iter().map(|r| r.data.as_slice())).unwrap();
    sign(&mut request, creds, REGION, SIGNING_SERVICE, now()).unwrap();
    request
}

fn outcome(response: &Response, sent: usize) -> Result<PutOutcome, CallError> {
    parse_put_record_batch_response(
        response.status,
        response.header("x-amzn-errortype"),
        response.header("date"),
        &response.body,
        sent,
    )
}

#[test]
fn a_packed_and_signed_batch_lands_in_s3_byte_for_byte() {
    let sandbox = sandbox();
    let lines = lines();
    // Small records, so the call carries several.
    let calls = pack(&lines, &sandbox.stream, PackConfig::with_target_record_bytes(2048)).unwrap();
    assert_eq!(calls.len(), 1);
    assert!(calls[0].records.len() > 3, "{} records", calls[0].records.len());

    let response = send(signed_request(&sandbox, &sandbox.stream, &calls[0], &sandbox.edge)).unwrap();
    let result = outcome(&response, calls[0].records.len());
    assert_eq!(
        result,
        Ok(PutOutcome {
            sent: calls[0].records.len(),
            failed: vec![]
        }),
        "moto said {} {}\n{}",
        response.status,
        response.text(),
        sandbox.moto.log()
    );

    let objects = sandbox.objects().unwrap();
    assert_eq!(objects.len(), 1, "one object per PutRecordBatch");
    let packed: Vec<u8> = calls[0].records.iter().flat_map(|r| r.data.iter().copied()).collect();
    assert_eq!(objects[0].1, packed, "the S3 object holds exactly the packed bytes");

    // And those bytes are the envelopes, every one, in order.
    let landed: Vec<Envelope> = std::str::from_utf8(&objects[0].1)
        .unwrap()
        .lines()
        .map(|l| Envelope::parse(l).unwrap())
        .collect();
    assert_eq!(landed.len(), 42);
    assert_eq!(landed[0].id, "bike-7-0");
    assert_eq!(landed.iter().filter(|e| e.quarantine.is_some()).count(), 1);
    assert_eq!(
        landed[41].quarantine.as_ref().unwrap().raw().unwrap(),
        b"this is not json"
    );
}

#[test]
fn a_wrong_secret_or_a_body_changed_after_signing_is_the_typed_signature_error() {
    let sandbox = sandbox();
    let calls = pack(&lines(), &sandbox.stream, PackConfig::default()).unwrap();
    let sent = calls[0].records.len();

    let wrong = Credentials::new(sandbox.edge.access_key_id(), "not-the-secret");
    let response = send(signed_request(&sandbox, &sandbox.stream, &calls[0], &wrong)).unwrap();
    match outcome(&response, sent) {
        Err(e @ CallError::InvalidSignature { .. }) => {
            assert_eq!(e.code(), "SignatureDoesNotMatch");
            assert!(!e.is_retryable());
        }
        other => panic!("wrong secret: {other:?} ({} {})", response.status, response.text()),
    }

    let mut changed = signed_request(&sandbox, &sandbox.stream, &calls[0], &sandbox.edge);
    let body = changed.body_mut();
    let at = body.len() - 4;
    body[at] = if body[at] == b'A' { b'B' } else { b'A' };
    let response = send(changed).unwrap();
    assert!(
        matches!(outcome(&response, sent), Err(CallError::InvalidSignature { .. })),
        "changed body: {} {}",
        response.status,
        response.text()
    );

    assert!(sandbox.objects().unwrap().is_empty(), "nothing was delivered");
}

#[test]
fn the_edge_key_may_put_to_its_own_stream_and_nothing_else() {
    let sandbox = sandbox();
    let calls = pack(&lines(), &sandbox.other_stream, PackConfig::default()).unwrap();
    let sent = calls[0].records.len();

    let response = send(signed_request(
        &sandbox,
        &sandbox.other_stream,
        &calls[0],
        &sandbox.edge,
    ))
    .unwrap();
    assert!(
        matches!(outcome(&response, sent), Err(CallError::AccessDenied { .. })),
        "another stream: {} {}",
        response.status,
        response.text()
    );

    let edge = edgehose_tests::aws::AwsClient::new(sandbox.moto.endpoint(), sandbox.edge.clone());
    let describe = edge
        .json(
            "firehose",
            "Firehose_20150804.DescribeDeliveryStream",
            &serde_json::json!({"DeliveryStreamName": sandbox.stream}),
        )
        .unwrap();
    assert!(
        matches!(outcome(&describe, 0), Err(CallError::AccessDenied { .. })),
        "describe: {} {}",
        describe.status,
        describe.text()
    );

    let unknown = Credentials::new("AKIAUNKNOWNKEY000000", "secret");
    let response = send(signed_request(&sandbox, &sandbox.stream, &calls[0], &unknown)).unwrap();
    assert!(
        matches!(outcome(&response, sent), Err(CallError::UnrecognizedCredentials { .. })),
        "unknown key: {} {}",
        response.status,
        response.text()
    );
}
