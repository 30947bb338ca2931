//! The AWS SigV4 test suite (vendored in `fixtures/sigv4-suite`, origin in its
//! README): every case's canonical request, string to sign and signature are
//! checked separately, then the `aws-sigv4` signer and the verifier are run on
//! every case an `http::Request` can carry.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::path::{Path, PathBuf};

use edgehose_shared::sigv4::sign::{Credentials, sign};
use edgehose_shared::sigv4::{
    self,
    verify::{Authorization, VerifyError},
};
use edgehose_shared::timestamp::Timestamp;

const ACCESS_KEY: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const REGION: &str = "us-east-1";
const SERVICE: &str = "service";
const AMZ_DATE: &str = "20150830T123600Z";

struct Case {
    name: String,
    dir: PathBuf,
}

impl Case {
    fn read(&self, ext: &str) -> String {
        let file = self
            .dir
            .join(format!("{}.{ext}", self.dir.file_name().unwrap().to_str().unwrap()));
        std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
    }
}

fn cases() -> Vec<Case> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<Case>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                let name = path.file_name().unwrap().to_str().unwrap().to_owned();
                if path.join(format!("{name}.req")).exists() {
                    out.push(Case {
                        name: path.strip_prefix(root).unwrap().display().to_string(),
                        dir: path.clone(),
                    });
                }
                walk(&path, root, out);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sigv4-suite");
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// A `.req` file: request line, headers (a line starting with whitespace
/// continues the previous header and counts as another value of it, as this
/// suite's canonical requests expect), blank line, body.
struct RawRequest {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn parse_req(text: &str) -> RawRequest {
    let (head, body) = match text.split_once("\n\n") {
        Some((h, b)) => (h, b.as_bytes().to_vec()),
        None => (text, Vec::new()),
    };
    let mut lines = head.lines();
    let request_line = lines.next().unwrap();
    let method = request_line.split(' ').next().unwrap().to_owned();
    let target = request_line[method.len() + 1..request_line.len() - " HTTP/1.1".len()].to_owned();
    let (path, query) = target
        .split_once('?')
        .map_or((target.clone(), String::new()), |(p, q)| (p.into(), q.into()));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with(' ') || line.starts_with('\t') {
            let name = headers.last().unwrap().0.clone();
            headers.push((name, line.trim().to_owned()));
        } else {
            let (k, v) = line.split_once(':').unwrap();
            headers.push((k.to_owned(), v.to_owned()));
        }
    }
    RawRequest {
        method,
        path,
        query,
        headers,
        body,
    }
}

fn as_http(req: &RawRequest, skip: &[&str]) -> Option<http::Request<Vec<u8>>> {
    let target = if req.query.is_empty() {
        req.path.clone()
    } else {
        format!("{}?{}", req.path, req.query)
    };
    let uri: http::Uri = format!("https://example.amazonaws.com{target}").parse().ok()?;
    let mut b = http::Request::builder().method(req.method.as_str()).uri(uri);
    for (k, v) in &req.headers {
        if skip.iter().any(|s| k.eq_ignore_ascii_case(s)) {
            continue;
        }
        b = b.header(k.as_str(), http::HeaderValue::from_str(v).ok()?);
    }
    b.body(req.body.clone()).ok()
}

fn suite_time() -> Timestamp {
    Timestamp::parse_amz_date(AMZ_DATE).unwrap()
}

#[test]
fn every_case_matches_canonical_request_string_to_sign_and_signature() {
    let cases = cases();
    assert!(cases.len() >= 31, "found {} cases", cases.len());
    for case in &cases {
        let req = parse_req(&case.read("req"));
        let auth = Authorization::parse(&case.read("authz")).unwrap();
        assert_eq!(
            (auth.access_key_id.as_str(), auth.region.as_str(), auth.service.as_str()),
            (ACCESS_KEY, REGION, SERVICE)
        );
        let headers: Vec<(&str, &str)> = req.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let signed: Vec<&str> = auth.signed_headers.iter().map(String::as_str).collect();
        let creq = sigv4::canonical_request(
            &req.method,
            &req.path,
            &req.query,
            &headers,
            &signed,
            &sigv4::sha256_hex(&req.body),
        );
        assert_eq!(creq, case.read("creq"), "{}: canonical request", case.name);
        let sts = sigv4::string_to_sign(AMZ_DATE, &sigv4::scope(&auth.date, REGION, SERVICE), &creq);
        assert_eq!(sts, case.read("sts"), "{}: string to sign", case.name);
        let sig = sigv4::signature(SECRET, &auth.date, REGION, SERVICE, &sts);
        assert_eq!(sig, auth.signature, "{}: signature", case.name);
    }
}

#[test]
fn the_aws_sigv4_signer_reproduces_each_representable_case() {
    let mut checked = Vec::new();
    for case in cases() {
        // The token in this case is added after signing: not something a signer does.
        if case.name.ends_with("post-sts-header-after") {
            continue;
        }
        let req = parse_req(&case.read("req"));
        let Some(mut request) = as_http(&req, &["x-amz-date", "x-amz-security-token"]) else {
            continue; // a raw space or non-ASCII byte in the path: not a valid URI
        };
        let mut creds = Credentials::new(ACCESS_KEY, SECRET);
        if let Some((_, token)) = req
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("x-amz-security-token"))
        {
            creds = creds.with_session_token(token.clone());
        }
        sign(&mut request, &creds, REGION, SERVICE, suite_time()).unwrap();
        let authz = request.headers()["authorization"].to_str().unwrap();
        assert_eq!(authz, case.read("authz"), "{}", case.name);
        checked.push(case.name);
    }
    assert!(
        checked.len() >= 25,
        "only {} cases were representable: {checked:?}",
        checked.len()
    );
}

#[test]
fn the_verifier_accepts_each_signed_request_and_rejects_it_once_changed() {
    let lookup = |id: &str| (id == ACCESS_KEY).then(|| SECRET.to_owned());
    let mut checked = 0;
    for case in cases() {
        let sreq = parse_req(&case.read("sreq"));
        let Some(request) = as_http(&sreq, &[]) else { continue };
        sigv4::verify::verify(&request, lookup, suite_time()).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        checked += 1;

        let mut changed = request.clone();
        changed
            .headers_mut()
            .insert("x-amz-date", "20150830T123601Z".parse().unwrap());
        assert_eq!(
            sigv4::verify::verify(&changed, lookup, suite_time()),
            Err(VerifyError::SignatureDoesNotMatch),
            "{}",
            case.name
        );
        let wrong_secret = |id: &str| (id == ACCESS_KEY).then(|| "not-the-secret".to_owned());
        assert_eq!(
            sigv4::verify::verify(&request, wrong_secret, suite_time()),
            Err(VerifyError::SignatureDoesNotMatch)
        );
    }
    assert!(checked >= 25, "only {checked} cases were representable");
}

#[test]
fn the_verifier_hashes_the_body_rather_than_trusting_the_header_that_claims_its_hash() {
    let lookup = |id: &str| (id == ACCESS_KEY).then(|| SECRET.to_owned());
    let body = br#"{"DeliveryStreamName":"s","Records":[]}"#.to_vec();
    let mut request = http::Request::post("https://firehose.us-east-1.amazonaws.com/")
        .header("content-type", "application/x-amz-json-1.1")
        .header("host", "firehose.us-east-1.amazonaws.com")
        .header("x-amz-content-sha256", sigv4::sha256_hex(&body))
        .body(body)
        .unwrap();
    sign(
        &mut request,
        &Credentials::new(ACCESS_KEY, SECRET),
        REGION,
        SERVICE,
        suite_time(),
    )
    .unwrap();
    sigv4::verify::verify(&request, lookup, suite_time()).unwrap();
    // The same signed head on another body: the header still names the old hash.
    let tampered = request.map(|_| br#"{"DeliveryStreamName":"other","Records":[]}"#.to_vec());
    let err = sigv4::verify::verify(&tampered, lookup, suite_time()).unwrap_err();
    assert!(matches!(err, VerifyError::ContentSha256Mismatch { .. }), "{err:?}");
    assert_eq!(err.code(), "InvalidSignatureException");
    assert!(err.to_string().contains("x-amz-content-sha256"), "{err}");
}

#[test]
fn the_verifier_names_unknown_keys_stale_times_and_missing_headers_like_aws() {
    let case = cases().into_iter().find(|c| c.name == "get-vanilla").unwrap();
    let request = as_http(&parse_req(&case.read("sreq")), &[]).unwrap();
    let lookup = |id: &str| (id == ACCESS_KEY).then(|| SECRET.to_owned());

    let err = sigv4::verify::verify(&request, |_| None, suite_time()).unwrap_err();
    assert_eq!(
        (err.code(), err.to_string().as_str()),
        (
            "UnrecognizedClientException",
            "The security token included in the request is invalid."
        )
    );

    let err = sigv4::verify::verify(&request, lookup, suite_time().add_millis(5 * 60_000 + 1000)).unwrap_err();
    assert_eq!(err.code(), "InvalidSignatureException");
    assert_eq!(
        err.to_string(),
        "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z (20150830T124101Z - 5 min.)"
    );
    let err = sigv4::verify::verify(&request, lookup, suite_time().add_millis(-16 * 60_000)).unwrap_err();
    assert!(err.to_string().starts_with("Signature not yet current"), "{err}");

    let mut unsigned = request.clone();
    unsigned.headers_mut().remove("authorization");
    let err = sigv4::verify::verify(&unsigned, lookup, suite_time()).unwrap_err();
    assert_eq!((err,), (VerifyError::MissingAuthentication,));

    let mut partial = request.clone();
    partial.headers_mut().insert(
        "authorization",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"
            .parse()
            .unwrap(),
    );
    assert_eq!(
        sigv4::verify::verify(&partial, lookup, suite_time())
            .unwrap_err()
            .code(),
        "IncompleteSignatureException"
    );
}
