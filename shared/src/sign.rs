//! Signing requests with AWS Signature Version 4, through the `aws-sigv4`
//! crate: a pure function of the request, the credentials, the region, the
//! service and the time. The time is always passed in.

use std::fmt;

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings, UriPathNormalizationMode,
    sign as sigv4_sign,
};
use aws_sigv4::sign::v4::SigningParams;

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

/// Signs `request` in place: adds `x-amz-date`, `authorization` and, for
/// temporary credentials, `x-amz-security-token`. The body is hashed as is.
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
    let identity = aws_credential_types::Credentials::new(
        credentials.access_key_id.clone(),
        credentials.secret_access_key.clone(),
        credentials.session_token.clone(),
        None,
        "edgehose",
    )
    .into();
    let params = SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time.to_system_time())
        .settings(settings(service))
        .build()
        .map_err(|e| SignError::Signing(e.to_string()))?
        .into();
    let headers = request
        .headers()
        .iter()
        .map(|(k, v)| {
            v.to_str()
                .map(|v| (k.as_str(), v))
                .map_err(|_| SignError::Header(k.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let signable = SignableRequest::new(
        request.method().as_str(),
        request.uri().to_string(),
        headers.into_iter(),
        SignableBody::Bytes(request.body().as_ref()),
    )
    .map_err(|e| SignError::Signing(e.to_string()))?;
    let (instructions, _signature) = sigv4_sign(signable, &params)
        .map_err(|e| SignError::Signing(e.to_string()))?
        .into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}

/// The signer's settings for `service`.
fn settings(service: &str) -> SigningSettings {
    let mut settings = SigningSettings::default();
    if service == "s3" {
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    settings
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
