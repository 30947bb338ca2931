use super::*;

fn queue() -> QueueUrl {
    QueueUrl::parse("https://sqs.us-east-1.amazonaws.com/123456789012/rides.fifo").unwrap()
}

#[test]
fn the_body_names_the_queue_and_numbers_the_entries() {
    let entries = [
        Entry {
            body: "{\"a\":\"x\"}\n{\"b\":2}",
            group_id: Some("bike-1"),
            deduplication_id: Some("d1"),
        },
        Entry {
            body: "{}",
            group_id: None,
            deduplication_id: None,
        },
    ];
    let body = send_message_batch_body(&queue(), &entries);
    assert_eq!(
        std::str::from_utf8(&body).unwrap(),
        r#"{"QueueUrl":"https://sqs.us-east-1.amazonaws.com/123456789012/rides.fifo","Entries":[{"Id":"0","MessageBody":"{\"a\":\"x\"}\n{\"b\":2}","MessageGroupId":"bike-1","MessageDeduplicationId":"d1"},{"Id":"1","MessageBody":"{}"}]}"#
    );
}

#[test]
fn answers_are_matched_back_by_id() {
    let body = br#"{"Successful":[{"Id":"0","MessageId":"m0","MD5OfMessageBody":"x"},{"Id":"2","MessageId":"m2","MD5OfMessageBody":"y"}],
        "Failed":[{"Id":"1","SenderFault":false,"Code":"InternalError","Message":"try again"}]}"#;
    let outcome = parse_send_message_batch_response(200, None, None, body, 4).unwrap();
    let failed: Vec<(usize, &str)> = outcome.failed.iter().map(|f| (f.index, f.code.as_str())).collect();
    assert_eq!(
        failed,
        [(1, "InternalError"), (3, "InternalFailure")],
        "entry 3 was in neither list"
    );
    let all = br#"{"Successful":[{"Id":"0","MessageId":"m0"}]}"#;
    assert!(
        parse_send_message_batch_response(200, None, None, all, 1)
            .unwrap()
            .all_delivered()
    );
}

#[test]
fn sqs_errors_are_classified() {
    let missing =
        br#"{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"The specified queue does not exist."}"#;
    let e = parse_send_message_batch_response(400, None, None, missing, 1).unwrap_err();
    assert!(matches!(e, CallError::ResourceNotFound { .. }), "{e:?}");
    let long = br#"{"__type":"com.amazonaws.sqs#BatchRequestTooLong","message":"Batch requests cannot be longer than 1048576 bytes."}"#;
    let e = parse_send_message_batch_response(400, None, None, long, 1).unwrap_err();
    assert!(
        matches!(&e, CallError::InvalidRequest { code, .. } if code == "BatchRequestTooLong"),
        "{e:?}"
    );
    assert!(!e.is_retryable());
}

#[test]
fn characters_sqs_refuses_become_json_escapes() {
    assert!(matches!(sqs_safe(r#"{"a":"é"}"#), Cow::Borrowed(_)));
    let raw = "{\"a\":\"x\u{ffff}y\u{fffe}\"}";
    let safe = sqs_safe(raw);
    assert_eq!(safe, r#"{"a":"x\uffffy\ufffe"}"#);
    let a: serde_json::Value = serde_json::from_str(raw).unwrap();
    let b: serde_json::Value = serde_json::from_str(&safe).unwrap();
    assert_eq!(a, b, "the same JSON value");
}
