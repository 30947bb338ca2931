//! The receiving side: a request's `Authorization` parsed and its signature
//! recomputed from the request as received, as AWS checks it.

use super::ALGORITHM;
#[cfg(feature = "http")]
use super::{MAX_AGE_MS, MAX_FUTURE_MS, canonical_request, scope, sha256_hex, signature, string_to_sign};
#[cfg(feature = "http")]
use crate::timestamp::Timestamp;

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
