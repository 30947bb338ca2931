//! A golden signed `PutRecordBatch`: packed by `batch`, framed by `firehose`,
//! signed by `sign`, compared byte for byte with a request signed
//! independently.
//!
//! The expected `Authorization` was produced with botocore 1.43.11's
//! `SigV4Auth(Credentials("AKIDEXAMPLE", "wJalr…EXAMPLEKEY"), "firehose",
//! "eu-west-1").add_auth(...)` on the same URL, headers and body, with its
//! clock fixed at 2024-05-01T12:30:00Z.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use edgehose_shared::aws::Endpoint;
use edgehose_shared::batch::{PackConfig, pack};
use edgehose_shared::firehose::{SIGNING_SERVICE, put_record_batch_request};
use edgehose_shared::sigv4;
use edgehose_shared::sigv4::sign::{Credentials, sign};
use edgehose_shared::timestamp::Timestamp;

const BOTOCORE_AUTHORIZATION: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240501/eu-west-1/firehose/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=b1ac779ad20ee48827de938ad77eaf1760acabd8704d3e8564a930f7a3b7dc82";

#[test]
fn a_packed_and_signed_put_record_batch_matches_botocore() {
    let calls = pack(&[r#"{"event":"click"}"#], "clicks", PackConfig::default()).unwrap();
    let endpoint = Endpoint::for_region(SIGNING_SERVICE, "eu-west-1").unwrap();
    let mut request =
        put_record_batch_request(&endpoint, "clicks", calls[0].records.iter().map(|r| r.data.as_slice())).unwrap();
    assert_eq!(
        request.body().as_slice(),
        br#"{"DeliveryStreamName":"clicks","Records":[{"Data":"eyJldmVudCI6ImNsaWNrIn0K"}]}"#
    );
    let time = Timestamp::parse_rfc3339("2024-05-01T12:30:00Z").unwrap();
    let creds = Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    sign(&mut request, &creds, "eu-west-1", SIGNING_SERVICE, time).unwrap();
    assert_eq!(request.headers()["x-amz-date"], "20240501T123000Z");
    assert_eq!(request.headers()["authorization"], BOTOCORE_AUTHORIZATION);

    // And the verifier agrees, until the body changes.
    let lookup = |id: &str| (id == "AKIDEXAMPLE").then(|| creds.secret_access_key().to_owned());
    assert!(sigv4::verify::verify(&request, lookup, time).is_ok());
    request.body_mut().push(b' ');
    assert_eq!(
        sigv4::verify::verify(&request, lookup, time),
        Err(sigv4::verify::VerifyError::SignatureDoesNotMatch)
    );
}

#[test]
fn temporary_credentials_sign_their_session_token() {
    let endpoint = Endpoint::for_region(SIGNING_SERVICE, "eu-west-1").unwrap();
    let mut request = put_record_batch_request(&endpoint, "clicks", [&b"x\n"[..]]).unwrap();
    let creds = Credentials::new("AKIDEXAMPLE", "secret").with_session_token("session-token");
    sign(
        &mut request,
        &creds,
        "eu-west-1",
        SIGNING_SERVICE,
        Timestamp(1_714_566_600_000),
    )
    .unwrap();
    assert_eq!(request.headers()["x-amz-security-token"], "session-token");
    let authz = request.headers()["authorization"].to_str().unwrap();
    assert!(authz.contains("x-amz-security-token"), "{authz}");
    assert!(sigv4::verify::verify(&request, |_| Some("secret".into()), Timestamp(1_714_566_600_000)).is_ok());
}
