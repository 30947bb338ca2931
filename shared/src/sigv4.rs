//! The receiving side of SigV4: canonical request, string to sign and
//! signature computed from a request as received, and [`verify`], which
//! checks a request's `Authorization` the way AWS does.
//!
//! [`crate::sign`] signs with these same steps, which the AWS test suite
//! checks one by one; a local Firehose stand-in verifies with them. Rules: <https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html>.

use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};

#[cfg(feature = "http")]
use crate::timestamp::Timestamp;

/// The only algorithm this module verifies.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// How far a request's time may be from the verifier's clock: AWS allows 5
/// minutes into the past and 15 into the future.
pub const MAX_AGE_MS: i64 = 5 * 60_000;
/// See [`MAX_AGE_MS`].
pub const MAX_FUTURE_MS: i64 = 15 * 60_000;

/// Hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// RFC 3986 encoding as SigV4 wants it: unreserved characters kept, every
/// other byte as `%XX` in upper case; `/` kept when `keep_slash`.
pub fn uri_encode(input: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(input.len());
    for &b in input {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `name=value` pairs joined with `&`, each side encoded by [`uri_encode`]:
/// a query string, or a form body, that signs the same on both ends.
pub fn query_string(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                uri_encode(k.as_bytes(), false),
                uri_encode(v.as_bytes(), false)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Decodes `%XX` escapes (anything malformed is kept as is).
pub(crate) fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex_val(b[i + 1]), hex_val(b[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn hex_val(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// The canonical URI of a path as it appears in the request line: dot
/// segments resolved, empty segments removed, then each byte encoded (so a
/// path already percent-encoded on the wire is encoded a second time, as AWS
/// does for every service but S3).
pub fn canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::from("/");
    out.push_str(
        &segments
            .iter()
            .map(|s| uri_encode(s.as_bytes(), false))
            .collect::<Vec<_>>()
            .join("/"),
    );
    if !segments.is_empty() && (path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..")) {
        out.push('/');
    }
    out
}

/// The canonical query string: each name and value decoded then encoded
/// strictly, sorted by name then value, `name=value` joined with `&`.
pub fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k), false),
                uri_encode(&percent_decode(v), false),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The canonical headers block (each `name:value\n`) and the signed-headers
/// list, for the headers named in `signed` (lower case). Values of a header
/// sent more than once are joined with `,` in order; each value is trimmed
/// and its inner runs of spaces folded to one.
pub fn canonical_headers(headers: &[(&str, &str)], signed: &[&str]) -> String {
    let mut out = String::new();
    let mut names: Vec<String> = signed.iter().map(|s| s.to_ascii_lowercase()).collect();
    names.sort();
    names.dedup();
    for name in &names {
        let values: Vec<String> = headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out
}

/// The canonical request (SigV4 step 1).
pub fn canonical_request(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    signed: &[&str],
    payload_sha256: &str,
) -> String {
    canonical_request_for_uri(method, &canonical_uri(path), query, headers, signed, payload_sha256)
}

/// [`canonical_request`] with the canonical URI given as it is (S3 signs
/// the path as sent, neither normalised nor encoded again).
pub fn canonical_request_for_uri(
    method: &str,
    canonical_uri: &str,
    query: &str,
    headers: &[(&str, &str)],
    signed: &[&str],
    payload_sha256: &str,
) -> String {
    let mut names: Vec<String> = signed.iter().map(|s| s.to_ascii_lowercase()).collect();
    names.sort();
    names.dedup();
    format!(
        "{method}\n{canonical_uri}\n{}\n{}\n{}\n{payload_sha256}",
        canonical_query(query),
        canonical_headers(headers, signed),
        names.join(";")
    )
}

/// The credential scope: `YYYYMMDD/region/service/aws4_request`.
pub fn scope(date: &str, region: &str, service: &str) -> String {
    format!("{date}/{region}/{service}/aws4_request")
}

/// The string to sign (SigV4 step 2).
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so construction cannot fail.
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The hex signature of a string to sign (SigV4 steps 3 and 4).
pub fn signature(secret: &str, date: &str, region: &str, service: &str, string_to_sign: &str) -> String {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    let k_signing = hmac(&k_service, b"aws4_request");
    hex::encode(hmac(&k_signing, string_to_sign.as_bytes()))
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 …` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The access key id.
    pub access_key_id: String,
    /// `YYYYMMDD` of the scope.
    pub date: String,
    /// Region of the scope.
    pub region: String,
    /// Service of the scope.
    pub service: String,
    /// The signed headers, lower case, as listed.
    pub signed_headers: Vec<String>,
    /// The hex signature.
    pub signature: String,
}

impl Authorization {
    /// Parses the header value.
    pub fn parse(value: &str) -> Result<Self, VerifyError> {
        let incomplete = |what: &str| VerifyError::IncompleteSignature(format!("Authorization header {what}"));
        let rest = value
            .trim()
            .strip_prefix(ALGORITHM)
            .ok_or_else(|| incomplete("must start with AWS4-HMAC-SHA256"))?;
        let (mut credential, mut signed, mut sig) = (None, None, None);
        for part in rest.split(',') {
            let part = part.trim();
            if let Some(v) = part.strip_prefix("Credential=") {
                credential = Some(v);
            } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
                signed = Some(v);
            } else if let Some(v) = part.strip_prefix("Signature=") {
                sig = Some(v);
            }
        }
        let credential = credential.ok_or_else(|| incomplete("lacks Credential="))?;
        let signed = signed.ok_or_else(|| incomplete("lacks SignedHeaders="))?;
        let sig = sig.ok_or_else(|| incomplete("lacks Signature="))?;
        let c: Vec<&str> = credential.split('/').collect();
        if c.len() != 5 || c[4] != "aws4_request" || c.iter().any(|p| p.is_empty()) {
            return Err(incomplete("has a malformed Credential scope"));
        }
        Ok(Self {
            access_key_id: c[0].to_owned(),
            date: c[1].to_owned(),
            region: c[2].to_owned(),
            service: c[3].to_owned(),
            signed_headers: signed.split(';').map(str::to_ascii_lowercase).collect(),
            signature: sig.to_owned(),
        })
    }
}

/// Why a request's signature was not accepted, with the code and message AWS
/// JSON services answer (all with HTTP 400, except where noted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// No `Authorization` header.
    #[error("Missing Authentication Token")]
    MissingAuthentication,
    /// An `Authorization` header that is not complete SigV4.
    #[error("{0}")]
    IncompleteSignature(String),
    /// An access key the verifier does not know.
    #[error("The security token included in the request is invalid.")]
    UnknownAccessKey(String),
    /// The signature is not the one the secret gives.
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    )]
    SignatureDoesNotMatch,
    /// The request's time is too far in the past.
    #[error("Signature expired: {request_time} is now earlier than {earliest} ({now} - 5 min.)")]
    Expired {
        /// The request's `X-Amz-Date`.
        request_time: String,
        /// The earliest accepted time.
        earliest: String,
        /// The verifier's time.
        now: String,
    },
    /// `x-amz-content-sha256` is not the hash of the body that came.
    #[error(
        "The provided 'x-amz-content-sha256' header does not match what was computed ({claimed} is not {computed})."
    )]
    ContentSha256Mismatch {
        /// The header's value.
        claimed: String,
        /// The body's SHA-256.
        computed: String,
    },
    /// The request's time is too far in the future.
    #[error("Signature not yet current: {request_time} is still later than {latest} ({now} + 15 min.)")]
    NotYetValid {
        /// The request's `X-Amz-Date`.
        request_time: String,
        /// The latest accepted time.
        latest: String,
        /// The verifier's time.
        now: String,
    },
}

impl VerifyError {
    /// The AWS error code for this failure.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingAuthentication => "MissingAuthenticationTokenException",
            Self::IncompleteSignature(_) => "IncompleteSignatureException",
            Self::UnknownAccessKey(_) => "UnrecognizedClientException",
            Self::SignatureDoesNotMatch
            | Self::ContentSha256Mismatch { .. }
            | Self::Expired { .. }
            | Self::NotYetValid { .. } => "InvalidSignatureException",
        }
    }

    /// The HTTP status AWS JSON services use for it.
    pub fn status(&self) -> u16 {
        match self {
            Self::MissingAuthentication => 403,
            _ => 400,
        }
    }
}

/// What a verified request was signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The access key that signed it.
    pub access_key_id: String,
    /// The region in its scope.
    pub region: String,
    /// The service in its scope.
    pub service: String,
}

/// Checks a received request's SigV4 signature (with the `http` feature). `secret_for` returns the
/// secret of a known access key; `now` is the verifier's clock.
#[cfg(feature = "http")]
pub fn verify<B: AsRef<[u8]>>(
    request: &http::Request<B>,
    secret_for: impl Fn(&str) -> Option<String>,
    now: Timestamp,
) -> Result<Verified, VerifyError> {
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
    let auth = Authorization::parse(header("authorization").ok_or(VerifyError::MissingAuthentication)?)?;
    let amz_date = header("x-amz-date")
        .ok_or_else(|| VerifyError::IncompleteSignature("the request has no X-Amz-Date header".into()))?;
    let request_time = Timestamp::parse_amz_date(amz_date).ok_or_else(|| {
        VerifyError::IncompleteSignature(format!("X-Amz-Date {amz_date:?} is not YYYYMMDD'T'HHMMSS'Z'"))
    })?;
    if !amz_date.starts_with(&auth.date) {
        return Err(VerifyError::IncompleteSignature(
            "the Credential scope date does not match X-Amz-Date".into(),
        ));
    }
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(VerifyError::IncompleteSignature(
            "the host header must be signed".into(),
        ));
    }
    let secret =
        secret_for(&auth.access_key_id).ok_or_else(|| VerifyError::UnknownAccessKey(auth.access_key_id.clone()))?;
    if request_time.millis_since(now) < -MAX_AGE_MS {
        return Err(VerifyError::Expired {
            request_time: amz_date.to_owned(),
            earliest: now.add_millis(-MAX_AGE_MS).to_amz_date(),
            now: now.to_amz_date(),
        });
    }
    if request_time.millis_since(now) > MAX_FUTURE_MS {
        return Err(VerifyError::NotYetValid {
            request_time: amz_date.to_owned(),
            latest: now.add_millis(MAX_FUTURE_MS).to_amz_date(),
            now: now.to_amz_date(),
        });
    }
    let headers: Vec<(&str, &str)> = request
        .headers()
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)))
        .collect();
    // The body is hashed here, whatever the header claims: a signature over
    // a claimed hash says nothing about a body that does not have it.
    let payload = sha256_hex(request.body().as_ref());
    if let Some(claimed) = header("x-amz-content-sha256")
        && !claimed.eq_ignore_ascii_case(&payload)
    {
        return Err(VerifyError::ContentSha256Mismatch {
            claimed: claimed.to_owned(),
            computed: payload,
        });
    }
    let signed: Vec<&str> = auth.signed_headers.iter().map(String::as_str).collect();
    let creq = canonical_request(
        request.method().as_str(),
        request.uri().path(),
        request.uri().query().unwrap_or(""),
        &headers,
        &signed,
        &payload,
    );
    let sts = string_to_sign(amz_date, &scope(&auth.date, &auth.region, &auth.service), &creq);
    let expected = signature(&secret, &auth.date, &auth.region, &auth.service, &sts);
    if !constant_time_eq(expected.as_bytes(), auth.signature.as_bytes()) {
        return Err(VerifyError::SignatureDoesNotMatch);
    }
    Ok(Verified {
        access_key_id: auth.access_key_id,
        region: auth.region,
        service: auth.service,
    })
}

/// Compares without stopping at the first difference, so timing does not
/// reveal how much of a guessed signature was right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
