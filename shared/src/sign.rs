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

/// Signs `request` in place: adds `x-amz-date`, `authorization` and, for
/// temporary credentials, `x-amz-security-token`. The body is hashed as is.
/// Every other header is signed but `user-agent`, `x-amzn-trace-id` and
/// `transfer-encoding`; `host`, when absent, is signed as the URI's
/// authority (without a default port) and not added.
///
/// S3 (`service == "s3"`) is signed by its own rules: the path is encoded
/// once and not normalised (object keys may hold `=`, `//` or `..`), and
/// `x-amz-content-sha256` carries the body's hash.
pub fn sign<B: AsRef<[u8]>>(
    request: &mut http::Request<B>,
    credentials: &Credentials,
    region: &str,
    service: &str,
    time: Timestamp,
) -> Result<(), SignError> {
    let s3 = service == "s3";
    let amz_date = time.to_amz_date();
    let payload = sigv4::sha256_hex(request.body().as_ref());
    let mut added: Vec<(&'static str, String)> = vec![("x-amz-date", amz_date.clone())];
    if let Some(token) = &credentials.session_token {
        added.push(("x-amz-security-token", token.clone()));
    }
    if s3 {
        added.push(("x-amz-content-sha256", payload.clone()));
    }
    let mut headers: Vec<(String, String)> = Vec::with_capacity(request.headers().len() + 3);
    for (name, value) in request.headers() {
        let name = name.as_str();
        if added.iter().any(|(a, _)| *a == name) {
            continue;
        }
        let value = value.to_str().map_err(|_| SignError::Header(name.to_owned()))?;
        headers.push((name.to_owned(), value.to_owned()));
    }
    if !request.headers().contains_key(http::header::HOST) {
        headers.push(("host".to_owned(), host_of(request.uri())?));
    }
    headers.extend(added.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    let pairs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut signed: Vec<&str> = pairs
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| !UNSIGNED_HEADERS.contains(k))
        .collect();
    // The same order and set `canonical_request` signs.
    signed.sort_unstable();
    signed.dedup();
    let uri = request.uri();
    let path = if uri.path().is_empty() { "/" } else { uri.path() };
    let canonical_path = if s3 {
        path.to_owned()
    } else {
        sigv4::canonical_uri(path)
    };
    let canonical = sigv4::canonical_request_for_uri(
        request.method().as_str(),
        &canonical_path,
        uri.query().unwrap_or(""),
        &pairs,
        &signed,
        &payload,
    );
    let date = &amz_date[..8];
    let scope = sigv4::scope(date, region, service);
    let to_sign = sigv4::string_to_sign(&amz_date, &scope, &canonical);
    let signature = sigv4::signature(&credentials.secret_access_key, date, region, service, &to_sign);
    let authorization = format!(
        "{} Credential={}/{scope}, SignedHeaders={}, Signature={signature}",
        sigv4::ALGORITHM,
        credentials.access_key_id,
        signed.join(";")
    );
    added.push(("authorization", authorization));
    for (name, value) in added {
        let value = http::HeaderValue::from_str(&value).map_err(|_| SignError::Header(name.to_owned()))?;
        request.headers_mut().insert(name, value);
    }
    Ok(())
}

/// The `host` a request to `uri` signs: its authority, without the
/// scheme's default port (which clients leave out of the header they send).
fn host_of(uri: &http::Uri) -> Result<String, SignError> {
    let authority = uri
        .authority()
        .ok_or_else(|| SignError::Signing("the request URI has no host".into()))?;
    let default = match uri.scheme_str() {
        Some("http") => Some(80),
        Some("https") => Some(443),
        _ => None,
    };
    Ok(if authority.port_u16().is_some() && authority.port_u16() == default {
        authority.host().to_owned()
    } else {
        authority.as_str().to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sigv4;

    const KEY: (&str, &str) = ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn signed_s3_get(uri: &str, extra: &[(&str, &str)]) -> http::Request<Vec<u8>> {
        let mut builder = http::Request::get(uri).header("host", "examplebucket.s3.amazonaws.com");
        for (k, v) in extra {
            builder = builder.header(*k, *v);
        }
        let mut request = builder.body(Vec::new()).unwrap();
        let time = Timestamp::parse_amz_date("20130524T000000Z").unwrap();
        sign(&mut request, &Credentials::new(KEY.0, KEY.1), "us-east-1", "s3", time).unwrap();
        request
    }

    fn signature_of(request: &http::Request<Vec<u8>>) -> String {
        let auth = request.headers()["authorization"].to_str().unwrap();
        auth.rsplit_once("Signature=").unwrap().1.to_owned()
    }

    /// The GET Object and ListObjects examples of AWS's S3 SigV4 guide
    /// ("Signature Calculations for the Authorization Header: Transferring
    /// Payload in a Single Chunk").
    #[test]
    fn s3_requests_sign_as_in_the_aws_examples() {
        let get = signed_s3_get(
            "https://examplebucket.s3.amazonaws.com/test.txt",
            &[("range", "bytes=0-9")],
        );
        assert_eq!(get.headers()["x-amz-content-sha256"], EMPTY_SHA256);
        assert_eq!(
            signature_of(&get),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        let list = signed_s3_get("https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J", &[]);
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
        let get = signed_s3_get(&format!("https://examplebucket.s3.amazonaws.com{path}"), &[]);
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

    #[test]
    fn debug_never_shows_the_secret_or_the_token() {
        let c =
            Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY").with_session_token("TOKEN123");
        let shown = format!("{c:?}");
        assert!(shown.contains("AKIDEXAMPLE"));
        assert!(!shown.contains("wJalr") && !shown.contains("TOKEN123"), "{shown}");
    }
}
