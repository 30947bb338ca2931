use super::*;
use crate::aws::FailedRecord;
use crate::timestamp::Timestamp;

#[test]
fn stream_names_follow_the_firehose_pattern() {
    assert!(check_stream_name("clicks-prod_1.v2").is_ok());
    assert!(check_stream_name(&"a".repeat(64)).is_ok());
    for bad in ["", "has space", "quote\"", &"a".repeat(65), "ümlaut"] {
        assert!(check_stream_name(bad).is_err(), "{bad}");
    }
}

#[cfg(feature = "http")]
#[test]
fn the_request_carries_the_json_1_1_protocol_headers_and_base64_records() {
    let endpoint = Endpoint::for_region(SIGNING_SERVICE, "us-east-1").unwrap();
    let req = put_record_batch_request(&endpoint, "clicks", [&b"{\"a\":1}\n"[..], b"x\n"]).unwrap();
    assert_eq!(req.method(), http::Method::POST);
    assert_eq!(req.uri().to_string(), "https://firehose.us-east-1.amazonaws.com/");
    assert_eq!(req.headers()["host"], "firehose.us-east-1.amazonaws.com");
    assert_eq!(req.headers()["content-type"], "application/x-amz-json-1.1");
    assert_eq!(req.headers()["x-amz-target"], "Firehose_20150804.PutRecordBatch");
    assert_eq!(
        std::str::from_utf8(req.body()).unwrap(),
        r#"{"DeliveryStreamName":"clicks","Records":[{"Data":"eyJhIjoxfQo="},{"Data":"eAo="}]}"#
    );
    let v: serde_json::Value = serde_json::from_slice(req.body()).unwrap();
    assert_eq!(v["Records"].as_array().unwrap().len(), 2);
}

#[test]
fn body_size_formula_matches_the_body() {
    for n in 0..10 {
        let records: Vec<Vec<u8>> = (0..n).map(|i| vec![b'z'; i * 7 + 1]).collect();
        let body = put_record_batch_body("s.t-r_e", records.iter().map(Vec::as_slice));
        let expected = body_overhead("s.t-r_e")
            + records.iter().map(|r| record_entry_bytes(r.len())).sum::<usize>()
            + n.saturating_sub(1);
        assert_eq!(body.len(), expected);
    }
}

#[test]
fn a_full_success_has_no_failures() {
    let body = br#"{"FailedPutCount":0,"Encrypted":false,"RequestResponses":[{"RecordId":"a"},{"RecordId":"b"}]}"#;
    let out = parse_put_record_batch_response(200, None, None, body, 2).unwrap();
    assert!(out.all_delivered());
    assert_eq!(out.sent, 2);
}

#[test]
fn partial_failures_are_aligned_with_the_request_order() {
    let body = br#"{"FailedPutCount":2,"RequestResponses":[
        {"RecordId":"a"},
        {"ErrorCode":"ServiceUnavailableException","ErrorMessage":"Slow down."},
        {"RecordId":"c"},
        {"ErrorCode":"InternalFailure","ErrorMessage":"oops"}]}"#;
    let out = parse_put_record_batch_response(200, None, None, body, 4).unwrap();
    assert_eq!(
        out.failed,
        [
            FailedRecord {
                index: 1,
                code: "ServiceUnavailableException".into(),
                message: "Slow down.".into()
            },
            FailedRecord {
                index: 3,
                code: "InternalFailure".into(),
                message: "oops".into()
            },
        ]
    );
}

#[test]
fn a_response_that_does_not_add_up_is_unexpected() {
    let short = br#"{"FailedPutCount":0,"RequestResponses":[{"RecordId":"a"}]}"#;
    assert!(matches!(
        parse_put_record_batch_response(200, None, None, short, 2),
        Err(CallError::Unexpected { .. })
    ));
    let miscounted = br#"{"FailedPutCount":0,"RequestResponses":[{"ErrorCode":"InternalFailure"}]}"#;
    assert!(matches!(
        parse_put_record_batch_response(200, None, None, miscounted, 1),
        Err(CallError::Unexpected { .. })
    ));
    assert!(matches!(
        parse_put_record_batch_response(200, None, None, b"<html>", 1),
        Err(CallError::Unexpected { .. })
    ));
}

fn err(status: u16, error_type: Option<&str>, body: &str) -> CallError {
    parse_put_record_batch_response(
        status,
        error_type,
        Some("Sun, 30 Aug 2015 12:41:00 GMT"),
        body.as_bytes(),
        1,
    )
    .unwrap_err()
}

#[test]
fn throttling_is_retryable() {
    let e = err(
        400,
        None,
        r#"{"__type":"ServiceUnavailableException","message":"Slow down."}"#,
    );
    assert!(matches!(&e, CallError::Throttled { code, .. } if code == "ServiceUnavailableException"));
    assert!(e.is_retryable());
    let e = err(
        400,
        Some("LimitExceededException:http://internal.amazon.com/coral/"),
        "{}",
    );
    assert!(matches!(e, CallError::Throttled { .. }));
    assert!(err(503, None, "").is_retryable());
}

#[test]
fn an_unknown_stream_is_resource_not_found_and_final() {
    let e = err(
        400,
        None,
        r#"{"__type":"com.amazonaws.firehose.v20150804#ResourceNotFoundException","message":"Firehose clicks under account 1 not found."}"#,
    );
    assert_eq!(
        e,
        CallError::ResourceNotFound {
            message: "Firehose clicks under account 1 not found.".into()
        }
    );
    assert!(!e.is_retryable());
}

#[test]
fn signature_errors_are_typed_in_json_and_in_xml() {
    let e = err(
        400,
        None,
        r#"{"__type":"InvalidSignatureException","message":"The request signature we calculated does not match"}"#,
    );
    assert!(matches!(&e, CallError::InvalidSignature { code, .. } if code == "InvalidSignatureException"));
    assert!(!e.is_retryable());
    // What an emulator sends: XML with text/html.
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ErrorResponse><Errors><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key &amp; signing method.</Message></Error></Errors><RequestId>x</RequestId></ErrorResponse>"#;
    let e = err(403, None, xml);
    assert_eq!(
        e,
        CallError::InvalidSignature {
            code: "SignatureDoesNotMatch".into(),
            message: "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key & signing method.".into()
        }
    );
    let e = err(
        403,
        None,
        "<ErrorResponse><Error><Code>InvalidClientTokenId</Code><Message>The security token included in the request is invalid.</Message></Error></ErrorResponse>",
    );
    assert!(matches!(e, CallError::UnrecognizedCredentials { .. }));
}

#[test]
fn an_expired_signature_carries_the_server_time_from_the_date_header() {
    let e = err(
        400,
        None,
        r#"{"__type":"InvalidSignatureException","message":"Signature expired: 20150830T123600Z is now earlier than 20150830T123600Z (20150830T124100Z - 5 min.)"}"#,
    );
    assert_eq!(
        e,
        CallError::SignatureExpired {
            message:
                "Signature expired: 20150830T123600Z is now earlier than 20150830T123600Z (20150830T124100Z - 5 min.)"
                    .into(),
            server_time: Timestamp::parse_rfc3339("2015-08-30T12:41:00Z"),
        }
    );
    assert!(e.is_retryable());
    let e = err(
        400,
        None,
        r#"{"__type":"InvalidSignatureException","message":"Signature not yet current: 20150830T130000Z is still later than 20150830T125500Z (20150830T124100Z + 15 min.)"}"#,
    );
    assert!(matches!(e, CallError::SignatureExpired { .. }));
}

#[test]
fn access_denied_invalid_arguments_and_server_errors_are_told_apart() {
    assert!(matches!(
        err(400, None, r#"{"__type":"AccessDeniedException","Message":"no"}"#),
        CallError::AccessDenied { .. }
    ));
    let e = err(
        400,
        None,
        r#"{"__type":"InvalidArgumentException","message":"Records size exceeds 4 MB limit"}"#,
    );
    assert!(
        matches!(&e, CallError::InvalidRequest { code, message } if code == "InvalidArgumentException" && message.contains("4 MB"))
    );
    assert!(!e.is_retryable());
    let e = err(500, None, r#"{"__type":"InternalFailure"}"#);
    assert!(matches!(&e, CallError::Server { status: 500, .. }));
    assert_eq!(e.code(), "InternalFailure");
    assert!(e.is_retryable());
    let e = err(502, None, "<html>Bad Gateway</html>");
    assert!(matches!(e, CallError::Server { status: 502, .. }));
}

#[test]
fn a_transform_event_reads_and_writes_the_field_names_firehose_uses() {
    let text = r#"{"invocationId":"inv-1","deliveryStreamArn":"arn:aws:firehose:eu-west-1:123456789012:deliverystream/clicks","region":"eu-west-1","records":[{"recordId":"r1","approximateArrivalTimestamp":1714566600250,"data":"aGkK","kinesisRecordMetadata":{"shardId":"x"}}]}"#;
    let event: TransformEvent = serde_json::from_str(text).unwrap();
    assert_eq!(
        event.records,
        [TransformRecord {
            record_id: "r1".into(),
            approximate_arrival_timestamp: 1_714_566_600_250,
            data: "aGkK".into(),
        }]
    );
    assert_eq!(
        (event.invocation_id.as_str(), event.region.as_str()),
        ("inv-1", "eu-west-1")
    );
    let written: serde_json::Value = serde_json::to_value(&event).unwrap();
    assert_eq!(written["records"][0]["recordId"], "r1");
    assert_eq!(
        written["records"][0]["approximateArrivalTimestamp"],
        1_714_566_600_250i64
    );
    assert_eq!(
        written["deliveryStreamArn"],
        "arn:aws:firehose:eu-west-1:123456789012:deliverystream/clicks"
    );
    assert_eq!(serde_json::from_value::<TransformEvent>(written).unwrap(), event);
}

/// The call as the edge Worker makes it (no `http` crate: the endpoint's
/// target, the protocol headers, the body) signs exactly as botocore signs
/// it; `tests/firehose_golden.rs` says how the expected value was made.
#[test]
fn the_call_signed_from_its_parts_matches_botocore() {
    use crate::sigv4::sign::{Credentials, Signer, signing_headers};
    let endpoint = Endpoint::for_region(SIGNING_SERVICE, "eu-west-1").unwrap();
    check_stream_name("clicks").unwrap();
    let body = put_record_batch_body("clicks", [&b"{\"event\":\"click\"}\n"[..]]);
    let credentials = Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    let signer = Signer {
        credentials: &credentials,
        region: "eu-west-1",
        service: SIGNING_SERVICE,
        time: Timestamp::parse_rfc3339("2024-05-01T12:30:00Z").unwrap(),
    };
    let signed = signing_headers(&endpoint.target(), &PUT_RECORD_BATCH_HEADERS, &body, &signer).unwrap();
    assert_eq!(
        signed,
        [
            ("x-amz-date", "20240501T123000Z".to_owned()),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240501/eu-west-1/firehose/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=b1ac779ad20ee48827de938ad77eaf1760acabd8704d3e8564a930f7a3b7dc82".to_owned()
            ),
        ]
    );
}
