//! AWS Signature Version 4: the steps — canonical request, string to sign,
//! signature — that both halves use, checked one by one against AWS's own
//! test suite: [`sign`] signs a request (the edge, the tools), [`verify`]
//! checks one as AWS does (firehose-local). Rules: <https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html>.

use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};

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
pub fn percent_decode(s: &str) -> Vec<u8> {
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

pub mod sign;
pub mod verify;
