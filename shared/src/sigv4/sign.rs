//! Signing requests with AWS Signature Version 4: a pure function of the
//! request, the credentials, the region, the service and the time (always
//! passed in), built on the steps [`crate::sigv4`] computes and checks against
//! AWS's own test suite. The `aws-sigv4` crate signs every request alike in a
//! differential test (`shared/tests/sign_differential.rs`); it is not part of
//! the build, so the Worker carries none of its runtime.

use std::fmt;

use crate::sigv4;
use crate::timestamp::Timestamp;

/// An AWS access key. `Debug` never prints the secret or the session token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
}

impl Credentials {
    /// Long-term credentials (an IAM user's access key).
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: None,
        }
    }

    /// Temporary credentials with their session token.
    pub fn with_session_token(mut self, token: impl Into<String>) -> Self {
        self.session_token = Some(token.into());
        self
    }

    /// The access key id (not secret: it appears in every signed request).
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The secret access key.
    pub fn secret_access_key(&self) -> &str {
        &self.secret_access_key
    }

    /// The session token, for temporary credentials.
    pub fn session_token(&self) -> Option<&str> {
        self.session_token.as_deref()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .field("session_token", &self.session_token.as_ref().map(|_| "** redacted **"))
            .finish()
    }
}

/// Why a request could not be signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// A header value is not visible ASCII, so it cannot be canonicalised.
    #[error("header {0:?} has a value that cannot be signed (not visible ASCII)")]
    Header(String),
    /// The signer refused the request.
    #[error("SigV4 signing failed: {0}")]
    Signing(String),
}

/// Headers left out of the signature, as AWS's SDKs leave them: computed by
/// the signing itself, or changed on the way by proxies (the smallest set
/// the SDKs share).
const UNSIGNED_HEADERS: [&str; 4] = ["authorization", "user-agent", "x-amzn-trace-id", "transfer-encoding"];

/// What SigV4 signs of a request besides its headers and body.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The method, e.g. `POST`.
    pub method: &'a str,
    /// The host signed when the headers hold no `host`: the URL's authority
    /// without the scheme's default port (see [`host_of`]).
    pub host: &'a str,
    /// The path as sent, e.g. `/`.
    pub path: &'a str,
    /// The query as sent, without `?` (empty for none).
    pub query: &'a str,
}

/// Who signs, for which region and service, and when.
#[derive(Debug, Clone, Copy)]
pub struct Signer<'a> {
    /// The access key.
    pub credentials: &'a Credentials,
    /// The region in the scope, e.g. `eu-west-1`.
    pub region: &'a str,
    /// The service in the scope, e.g. `firehose`.
    pub service: &'a str,
    /// The signing time.
    pub time: Timestamp,
}

/// The headers that sign a request to `target` with `headers` (lower-case
/// names) and `body`: `x-amz-date`, for temporary credentials
/// `x-amz-security-token`, for S3 `x-amz-content-sha256`, and
/// `authorization`. A header of `headers` with one of those names is
/// replaced by the returned one. Every other header is signed but
/// `user-agent`, `x-amzn-trace-id` and `transfer-encoding`; `host`, when
/// absent, is signed as `target.host` (not returned: HTTP stacks set it).
///
/// S3 (`service == "s3"`) is signed by its own rules: the path is encoded
/// once and not normalised (object keys may hold `=`, `//` or `..`), and
/// `x-amz-content-sha256` carries the body's hash.
pub fn signing_headers(
    target: &Target<'_>,
    headers: &[(&str, &str)],
    body: &[u8],
    signer: &Signer<'_>,
) -> Result<Vec<(&'static str, String)>, SignError> {
    signing_headers_for_payload(target, headers, &sigv4::sha256_hex(body), signer)
}

/// As [`signing_headers`], for a body whose SHA-256 (lower-case hex) the
/// caller has computed: the edge Worker hashes a call's body with the
/// runtime's native digest rather than in wasm.
pub fn signing_headers_for_payload(
    target: &Target<'_>,
    headers: &[(&str, &str)],
    payload_sha256: &str,
    signer: &Signer<'_>,
) -> Result<Vec<(&'static str, String)>, SignError> {
    if payload_sha256.len() != 64 || !payload_sha256.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(SignError::Signing(format!(
            "the payload hash {payload_sha256:?} is not 64 lower-case hex digits"
        )));
    }
    let payload = payload_sha256.to_owned();
    let s3 = signer.service == "s3";
    let amz_date = signer.time.to_amz_date();
    let mut added: Vec<(&'static str, String)> = vec![("x-amz-date", amz_date.clone())];
    if let Some(token) = &signer.credentials.session_token {
        added.push(("x-amz-security-token", token.clone()));
    }
    if s3 {
        added.push(("x-amz-content-sha256", payload.clone()));
    }
    let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(headers.len() + 4);
    for &(name, value) in headers {
        if added.iter().any(|(a, _)| *a == name) {
            continue;
        }
        if !signable(value) {
            return Err(SignError::Header(name.to_owned()));
        }
        pairs.push((name, value));
    }
    if !headers.iter().any(|(name, _)| *name == "host") {
        pairs.push(("host", target.host));
    }
    pairs.extend(added.iter().map(|(k, v)| (*k, v.as_str())));
    let mut signed: Vec<&str> = pairs
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| !UNSIGNED_HEADERS.contains(k))
        .collect();
    // The same order and set `canonical_request` signs.
    signed.sort_unstable();
    signed.dedup();
    let path = if target.path.is_empty() { "/" } else { target.path };
    let canonical_path = if s3 {
        path.to_owned()
    } else {
        sigv4::canonical_uri(path)
    };
    let canonical =
        sigv4::canonical_request_for_uri(target.method, &canonical_path, target.query, &pairs, &signed, &payload);
    let date = &amz_date[..8];
    let scope = sigv4::scope(date, signer.region, signer.service);
    let to_sign = sigv4::string_to_sign(&amz_date, &scope, &canonical);
    let signature = sigv4::signature(
        &signer.credentials.secret_access_key,
        date,
        signer.region,
        signer.service,
        &to_sign,
    );
    let authorization = format!(
        "{} Credential={}/{scope}, SignedHeaders={}, Signature={signature}",
        sigv4::ALGORITHM,
        signer.credentials.access_key_id,
        signed.join(";")
    );
    added.push(("authorization", authorization));
    if let Some((name, _)) = added.iter().find(|(_, v)| !signable(v)) {
        return Err(SignError::Header((*name).to_owned()));
    }
    Ok(added)
}

/// Whether a header value can be canonicalised and sent: visible ASCII,
/// spaces and tabs (what `http::HeaderValue::to_str` accepts).
fn signable(value: &str) -> bool {
    value.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
}

/// The `host` a request to `scheme://authority` signs: the authority
/// without the scheme's default port (which clients leave out of the header
/// they send).
pub fn host_of<'a>(scheme: &str, authority: &'a str) -> &'a str {
    let default = match scheme {
        "http" => ":80",
        "https" => ":443",
        _ => return authority,
    };
    authority.strip_suffix(default).unwrap_or(authority)
}

/// Signs `request` in place with [`signing_headers`]: adds `x-amz-date`,
/// `authorization` and, for temporary credentials, `x-amz-security-token`
/// (and for S3 `x-amz-content-sha256`). The body is hashed as is; `host`,
/// when absent, is signed as the URI's authority (without a default port)
/// and not added.
#[cfg(feature = "http")]
pub fn sign<B: AsRef<[u8]>>(
    request: &mut http::Request<B>,
    credentials: &Credentials,
    region: &str,
    service: &str,
    time: Timestamp,
) -> Result<(), SignError> {
    let uri = request.uri();
    let authority = uri
        .authority()
        .ok_or_else(|| SignError::Signing("the request URI has no host".into()))?;
    let target = Target {
        method: request.method().as_str(),
        host: host_of(uri.scheme_str().unwrap_or(""), authority.as_str()),
        path: uri.path(),
        query: uri.query().unwrap_or(""),
    };
    let mut headers: Vec<(&str, &str)> = Vec::with_capacity(request.headers().len());
    for (name, value) in request.headers() {
        let value = value
            .to_str()
            .map_err(|_| SignError::Header(name.as_str().to_owned()))?;
        headers.push((name.as_str(), value));
    }
    let signer = Signer {
        credentials,
        region,
        service,
        time,
    };
    let added = signing_headers(&target, &headers, request.body().as_ref(), &signer)?;
    for (name, value) in added {
        let value = http::HeaderValue::from_str(&value).map_err(|_| SignError::Header(name.to_owned()))?;
        request.headers_mut().insert(name, value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sigv4;

    const KEY: (&str, &str) = ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    /// The headers signing a GET of `path?query` from the examples' bucket.
    fn signed_s3_get(path: &str, query: &str, extra: &[(&str, &str)]) -> Vec<(&'static str, String)> {
        let mut headers = vec![("host", "examplebucket.s3.amazonaws.com")];
        headers.extend_from_slice(extra);
        let target = Target {
            method: "GET",
            host: "examplebucket.s3.amazonaws.com",
            path,
            query,
        };
        let credentials = Credentials::new(KEY.0, KEY.1);
        let signer = Signer {
            credentials: &credentials,
            region: "us-east-1",
            service: "s3",
            time: Timestamp::parse_amz_date("20130524T000000Z").unwrap(),
        };
        signing_headers(&target, &headers, b"", &signer).unwrap()
    }

    fn header<'a>(signed: &'a [(&'static str, String)], name: &str) -> &'a str {
        signed
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .unwrap()
    }

    fn signature_of(signed: &[(&'static str, String)]) -> String {
        header(signed, "authorization")
            .rsplit_once("Signature=")
            .unwrap()
            .1
            .to_owned()
    }

    /// The GET Object and ListObjects examples of AWS's S3 SigV4 guide
    /// ("Signature Calculations for the Authorization Header: Transferring
    /// Payload in a Single Chunk").
    #[test]
    fn s3_requests_sign_as_in_the_aws_examples() {
        let get = signed_s3_get("/test.txt", "", &[("range", "bytes=0-9")]);
        assert_eq!(header(&get, "x-amz-content-sha256"), EMPTY_SHA256);
        assert_eq!(
            signature_of(&get),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        let list = signed_s3_get("/", "max-keys=2&prefix=J", &[]);
        assert_eq!(
            signature_of(&list),
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
        );
    }

    /// Firehose's partitioned keys hold `=`: S3 wants the path as sent
    /// (`%3D` once), where other services encode it a second time.
    #[test]
    fn s3_object_keys_are_encoded_once() {
        let path = "/events/event_name%3Dclick/date%3D2024-05-01/s-1.gz";
        let get = signed_s3_get(path, "", &[]);
        let headers = [
            ("host", "examplebucket.s3.amazonaws.com"),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("x-amz-date", "20130524T000000Z"),
        ];
        let names = ["host", "x-amz-content-sha256", "x-amz-date"];
        let canonical = format!(
            "GET\n{path}\n\n{}\n{}\n{EMPTY_SHA256}",
            sigv4::canonical_headers(&headers, &names),
            names.join(";")
        );
        let scope = sigv4::scope("20130524", "us-east-1", "s3");
        let to_sign = sigv4::string_to_sign("20130524T000000Z", &scope, &canonical);
        let expected = sigv4::signature(KEY.1, "20130524", "us-east-1", "s3", &to_sign);
        assert_eq!(signature_of(&get), expected);
    }

    fn firehose_signer(credentials: &Credentials) -> Signer<'_> {
        Signer {
            credentials,
            region: "eu-west-1",
            service: "firehose",
            time: Timestamp::parse_amz_date("20240501T123000Z").unwrap(),
        }
    }

    fn post_to(host: &str) -> Target<'_> {
        Target {
            method: "POST",
            host,
            path: "/",
            query: "",
        }
    }

    #[test]
    fn a_payload_hashed_elsewhere_signs_as_the_body_does() {
        let credentials = Credentials::new(KEY.0, KEY.1);
        let signer = firehose_signer(&credentials);
        let target = post_to("firehose.eu-west-1.amazonaws.com");
        let headers = [("content-type", "application/x-amz-json-1.1")];
        let body = br#"{"DeliveryStreamName":"s","Records":[]}"#;
        assert_eq!(
            signing_headers_for_payload(&target, &headers, &sigv4::sha256_hex(body), &signer).unwrap(),
            signing_headers(&target, &headers, body, &signer).unwrap()
        );
        for bad in ["", "ABC", &"A".repeat(64), &"0".repeat(63)] {
            let e = signing_headers_for_payload(&target, &headers, bad, &signer).unwrap_err();
            assert!(e.to_string().contains("payload hash"), "{e}");
        }
    }

    #[test]
    fn the_default_port_is_not_part_of_the_signed_host() {
        assert_eq!(host_of("https", "h.example:443"), "h.example");
        assert_eq!(host_of("http", "h.example:80"), "h.example");
        assert_eq!(host_of("https", "h.example:80"), "h.example:80");
        assert_eq!(host_of("http", "[::1]:80"), "[::1]");
        assert_eq!(host_of("http", "127.0.0.1:4566"), "127.0.0.1:4566");
    }

    #[test]
    fn a_value_that_cannot_be_sent_is_refused_by_name() {
        let credentials = Credentials::new(KEY.0, KEY.1).with_session_token("bad\ntoken");
        let signer = firehose_signer(&credentials);
        let target = post_to("h");
        let e = signing_headers(&target, &[], b"", &signer).unwrap_err();
        assert!(e.to_string().contains("x-amz-security-token"), "{e}");
        let plain = Credentials::new(KEY.0, KEY.1);
        let signer = Signer {
            credentials: &plain,
            ..signer
        };
        let e = signing_headers(&target, &[("x-custom", "é")], b"", &signer).unwrap_err();
        assert!(e.to_string().contains("x-custom"), "{e}");
    }

    #[test]
    fn debug_never_shows_the_secret_or_the_token() {
        let c =
            Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY").with_session_token("TOKEN123");
        let shown = format!("{c:?}");
        assert!(shown.contains("AKIDEXAMPLE"));
        assert!(!shown.contains("wJalr") && !shown.contains("TOKEN123"), "{shown}");
    }
}
