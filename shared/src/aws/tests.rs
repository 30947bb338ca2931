use super::*;

#[test]
fn regional_endpoints_follow_the_aws_pattern() {
    assert_eq!(
        Endpoint::for_region("firehose", "eu-west-1").unwrap().url(),
        "https://firehose.eu-west-1.amazonaws.com/"
    );
    assert_eq!(
        Endpoint::for_region("kinesis", "cn-north-1").unwrap().url(),
        "https://kinesis.cn-north-1.amazonaws.com.cn/"
    );
    for bad in ["", "EU-WEST-1", "eu west 1", "useast1", "eu-west-1.evil.com/"] {
        assert_eq!(
            Endpoint::for_region("sqs", bad),
            Err(ConfigError::Region(bad.into())),
            "{bad}"
        );
    }
}

#[test]
fn endpoint_overrides_must_be_absolute_http_urls() {
    let e = Endpoint::parse("http://127.0.0.1:4566").unwrap();
    assert_eq!(e.url(), "http://127.0.0.1:4566/");
    assert_eq!(
        (e.scheme(), e.authority(), e.path(), e.host()),
        ("http", "127.0.0.1:4566", "/", "127.0.0.1:4566")
    );
    let v6 = Endpoint::parse("https://[::1]:443/firehose").unwrap();
    assert_eq!(
        (v6.authority(), v6.host(), v6.path()),
        ("[::1]:443", "[::1]", "/firehose")
    );
    assert_eq!(Endpoint::parse("http://localhost:80").unwrap().host(), "localhost");
    // As fetch sends them: lower case, a plain port, a canonical IPv6 address.
    let loud = Endpoint::parse("HTTPS://VPCE-1.Firehose.EU-WEST-1.vpce.amazonaws.com:0443/").unwrap();
    assert_eq!(loud.url(), "https://vpce-1.firehose.eu-west-1.vpce.amazonaws.com:443/");
    assert_eq!(loud.host(), "vpce-1.firehose.eu-west-1.vpce.amazonaws.com");
    assert_eq!(
        Endpoint::parse("http://[0:0::1]:4566").unwrap().authority(),
        "[::1]:4566"
    );
    for bad in [
        "127.0.0.1:4566",
        "ftp://x/",
        "/relative",
        "",
        "http://",
        "http://:4566/",
        "http://h:99999/",
        "http://h:port/",
        "http://h:+80/",
        "http://h:/",
        "http://user@h/",
        "http://h/?q=1",
        "http://h/#f",
        "http://[::1/",
        "http://[nope]/",
        "http://h/a b",
    ] {
        assert!(Endpoint::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn every_sinks_throttling_is_retried_and_a_missing_queue_is_not() {
    let throttled = [
        ("ProvisionedThroughputExceededException", 400),
        ("KMSThrottlingException", 400),
        ("com.amazonaws.sqs#RequestThrottled", 400),
        ("ServiceUnavailableException", 503),
    ];
    for (code, status) in throttled {
        let body = format!(r#"{{"__type":"{code}","message":"slow down"}}"#);
        let e = error_from_response(status, None, None, body.as_bytes());
        assert!(matches!(e, CallError::Throttled { .. }), "{code}: {e:?}");
        assert!(e.is_retryable());
    }
    let gone = error_from_response(
        400,
        Some("AWS.SimpleQueueService.NonExistentQueue;Sender"),
        None,
        br#"{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"The specified queue does not exist."}"#,
    );
    assert!(matches!(gone, CallError::ResourceNotFound { .. }), "{gone:?}");
    assert!(!gone.is_retryable());
    let kms = error_from_response(
        400,
        None,
        None,
        br#"{"__type":"KMSDisabledException","message":"key disabled"}"#,
    );
    assert!(
        matches!(&kms, CallError::InvalidRequest { code, .. } if code == "KMSDisabledException"),
        "{kms:?}"
    );
    assert!(!kms.is_retryable());
}
