use super::*;
use crate::kinesis::MAX_RECORD_BYTES;

fn entry<'a>(data: &'a [u8], key: &'a str, hash: Option<&'a str>) -> Entry<'a> {
    Entry {
        data,
        partition_key: key,
        explicit_hash_key: hash,
    }
}

#[test]
fn the_body_carries_base64_data_escaped_keys_and_explicit_hash_keys() {
    let entries = [
        entry(b"{\"a\":1}\n", "anon-1", None),
        entry(b"x", "class \"7\"\n", Some("170141183460469231731687303715884105728")),
    ];
    let body = put_records_body("rides", &entries);
    assert_eq!(
        std::str::from_utf8(&body).unwrap(),
        r#"{"StreamName":"rides","Records":[{"Data":"eyJhIjoxfQo=","PartitionKey":"anon-1"},{"Data":"eA==","PartitionKey":"class \"7\"\n","ExplicitHashKey":"170141183460469231731687303715884105728"}]}"#
    );
    // The sizes packing counts are the body's, exactly.
    let counted = body_overhead("rides") + entries.iter().map(entry_body_bytes).sum::<usize>() + entries.len() - 1;
    assert_eq!(counted, body.len());
    let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(parsed["Records"][1]["PartitionKey"], "class \"7\"\n");
}

#[test]
fn records_are_checked_against_the_documented_limits() {
    assert_eq!(entry(b"x", "k", None).check(), Ok(()));
    assert_eq!(
        entry(b"x", "", None).check(),
        Err(RecordError::PartitionKey { chars: 0 })
    );
    let long = "ü".repeat(MAX_PARTITION_KEY_CHARS);
    assert_eq!(entry(b"x", &long, None).check(), Ok(()), "256 characters, 512 bytes");
    let longer = "a".repeat(MAX_PARTITION_KEY_CHARS + 1);
    assert!(entry(b"x", &longer, None).check().is_err());
    // 1 MiB counts the data before base64 and the key.
    let data = vec![b'a'; MAX_RECORD_BYTES - 2];
    assert_eq!(entry(&data, "kk", None).check(), Ok(()));
    assert_eq!(
        entry(&data, "kkk", None).check(),
        Err(RecordError::TooLarge {
            bytes: MAX_RECORD_BYTES + 1
        })
    );
    for bad in ["", "-1", "1.5", "340282366920938463463374607431768211456", "0x10", " 1"] {
        assert!(check_explicit_hash_key(bad).is_err(), "{bad}");
    }
    assert!(check_explicit_hash_key("340282366920938463463374607431768211455").is_ok());
    assert!(check_stream_name(&"s".repeat(128)).is_ok());
    assert!(check_stream_name(&"s".repeat(129)).is_err());
    assert!(check_stream_name("a/b").is_err());
}

#[test]
fn failed_records_are_read_by_position_with_their_codes() {
    // The shape of AWS's documented example response, one record throttled.
    let body = br#"{"FailedRecordCount":1,"Records":[
        {"SequenceNumber":"49543463076548007577105092703039560359975228518395019266","ShardId":"shardId-000000000000"},
        {"ErrorCode":"ProvisionedThroughputExceededException","ErrorMessage":"Rate exceeded for shard shardId-000000000001 in stream exampleStreamName under account 111111111111."},
        {"SequenceNumber":"49543463076570308322303623326179887152428262250726293522","ShardId":"shardId-000000000002"}
    ]}"#;
    let outcome = parse_put_records_response(200, None, None, body, 3).unwrap();
    assert_eq!(outcome.sent, 3);
    assert_eq!(outcome.failed.len(), 1);
    assert_eq!(
        (outcome.failed[0].index, outcome.failed[0].code.as_str()),
        (1, "ProvisionedThroughputExceededException")
    );
    // A record with neither a sequence number nor a code still failed.
    let odd = br#"{"FailedRecordCount":1,"Records":[{}]}"#;
    assert_eq!(
        parse_put_records_response(200, None, None, odd, 1).unwrap().failed[0].code,
        "InternalFailure"
    );
}

#[test]
fn an_answer_without_the_optional_failed_record_count_is_read_from_its_records() {
    // FailedRecordCount is optional in PutRecordsOutput: its absence is no failure.
    let all_in = br#"{"Records":[{"SequenceNumber":"1","ShardId":"shardId-000000000000"}]}"#;
    let outcome = parse_put_records_response(200, None, None, all_in, 1).unwrap();
    assert!(outcome.failed.is_empty(), "{outcome:?}");
    let one_out = br#"{"Records":[{"SequenceNumber":"1"},{"ErrorCode":"InternalFailure"}]}"#;
    let outcome = parse_put_records_response(200, None, None, one_out, 2).unwrap();
    assert_eq!(outcome.failed.iter().map(|f| f.index).collect::<Vec<_>>(), [1]);
}

#[test]
fn inconsistent_answers_are_unexpected_and_errors_are_classified() {
    let short = br#"{"FailedRecordCount":0,"Records":[]}"#;
    assert!(matches!(
        parse_put_records_response(200, None, None, short, 1),
        Err(CallError::Unexpected { .. })
    ));
    let miscount = br#"{"FailedRecordCount":0,"Records":[{"ErrorCode":"InternalFailure"}]}"#;
    assert!(matches!(
        parse_put_records_response(200, None, None, miscount, 1),
        Err(CallError::Unexpected { .. })
    ));
    let missing =
        br#"{"__type":"ResourceNotFoundException","message":"Stream rides under account 123456789012 not found."}"#;
    let e = parse_put_records_response(400, None, None, missing, 1).unwrap_err();
    assert!(
        matches!(e, CallError::ResourceNotFound { .. }) && !e.is_retryable(),
        "{e:?}"
    );
    let throttled = br#"{"__type":"ProvisionedThroughputExceededException","message":"Rate exceeded"}"#;
    let e = parse_put_records_response(400, None, None, throttled, 1).unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
}
