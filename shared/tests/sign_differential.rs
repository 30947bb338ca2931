//! The crate's own SigV4 signer against the `aws-sigv4` crate, AWS's signer
//! for Rust: random requests (methods, paths with encoded and dot segments,
//! queries, repeated and padded headers, bodies, session tokens, S3 and
//! other services, any time) must come out with the same `x-amz-date`,
//! `x-amz-security-token`, `x-amz-content-sha256` and `authorization`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings, UriPathNormalizationMode,
    sign as reference_sign,
};
use aws_sigv4::sign::v4::SigningParams;
use edgehose_shared::sigv4::sign::{Credentials, sign};
use edgehose_shared::timestamp::Timestamp;
use proptest::prelude::*;

/// Signs with `aws-sigv4`, with the settings AWS's SDKs use for `service`.
fn reference(request: &mut http::Request<Vec<u8>>, key: &Credentials, region: &str, service: &str, time: Timestamp) {
    let identity = aws_credential_types::Credentials::new(
        key.access_key_id(),
        key.secret_access_key(),
        key.session_token().map(str::to_owned),
        None,
        "test",
    )
    .into();
    let mut settings = SigningSettings::default();
    if service == "s3" {
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    let params = SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time.to_system_time())
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let headers: Vec<(&str, &str)> = request
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str(), v.to_str().unwrap()))
        .collect();
    let signable = SignableRequest::new(
        request.method().as_str(),
        request.uri().to_string(),
        headers.into_iter(),
        SignableBody::Bytes(request.body()),
    )
    .unwrap();
    let (instructions, _) = reference_sign(signable, &params).unwrap().into_parts();
    instructions.apply_to_request_http1x(request);
}

const SIGNED: [&str; 4] = [
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
    "authorization",
];

fn signed_headers(r: &http::Request<Vec<u8>>) -> Vec<(String, Option<String>)> {
    SIGNED
        .iter()
        .map(|h| {
            (
                h.to_string(),
                r.headers().get(*h).map(|v| v.to_str().unwrap().to_owned()),
            )
        })
        .collect()
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_.~-]{1,12}",
        Just(".".to_owned()),
        Just("..".to_owned()),
        Just(String::new()),
        "[a-z]{1,4}%3D[a-z0-9]{1,4}",
        "%[0-9A-F]{2}[a-z]{0,3}",
    ]
}

prop_compose! {
    fn request()(
        method in prop_oneof![Just("GET"), Just("POST"), Just("PUT")],
        https in any::<bool>(),
        port in prop_oneof![Just(None), Just(Some(443u16)), Just(Some(80u16)), Just(Some(4573u16))],
        segments in proptest::collection::vec(segment(), 0..5),
        trailing in any::<bool>(),
        query in proptest::collection::vec(("[a-zA-Z0-9_.~-]{1,6}", "[a-zA-Z0-9_.~%-]{0,6}"), 0..4),
        headers in proptest::collection::vec((
            prop_oneof![Just("content-type".to_owned()), Just("x-amz-target".to_owned()), Just("user-agent".to_owned()), "x-[a-z]{1,8}"],
            "[ ]{0,2}[!-~]{1,10}( {1,3}[!-~]{1,6})?[ ]{0,2}",
        ), 0..5),
        explicit_host in any::<bool>(),
        body in proptest::collection::vec(any::<u8>(), 0..64),
    ) -> http::Request<Vec<u8>> {
        let scheme = if https { "https" } else { "http" };
        let authority = match port {
            Some(p) => format!("firehose.us-east-1.amazonaws.com:{p}"),
            None => "firehose.us-east-1.amazonaws.com".to_owned(),
        };
        let mut path = format!("/{}", segments.join("/"));
        if trailing && !segments.is_empty() {
            path.push('/');
        }
        let q: Vec<String> = query.iter().map(|(k, v)| format!("{k}={}", v.replace('%', "%25"))).collect();
        let uri = if q.is_empty() {
            format!("{scheme}://{authority}{path}")
        } else {
            format!("{scheme}://{authority}{path}?{}", q.join("&"))
        };
        let mut b = http::Request::builder().method(method).uri(uri);
        if explicit_host {
            b = b.header("host", authority.as_str());
        }
        for (k, v) in &headers {
            b = b.header(k.as_str(), v.as_str());
        }
        b.body(body).unwrap()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_request_signs_as_aws_sigv4_signs_it(
        template in request(),
        service in prop_oneof![Just("firehose"), Just("s3"), Just("kinesis"), Just("sqs")],
        region in prop_oneof![Just("us-east-1"), Just("eu-central-1"), Just("ap-northeast-1")],
        token in proptest::option::of("[A-Za-z0-9/+=]{8,40}"),
        ms in 0i64..4_102_444_800_000,
    ) {
        let mut key = Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
        if let Some(t) = token {
            key = key.with_session_token(t);
        }
        let time = Timestamp::from_millis(ms - ms % 1000);
        let (mut ours, mut theirs) = (template.clone(), template);
        sign(&mut ours, &key, region, service, time).unwrap();
        reference(&mut theirs, &key, region, service, time);
        prop_assert_eq!(signed_headers(&ours), signed_headers(&theirs), "{:?}", ours);
    }
}
