//! Signed ingest tokens: short-lived stand-ins for a write key that a
//! customer's backend mints for its pages, bound to the key, an origin and
//! an expiry, signed with a secret the Worker holds (`TOKEN_SECRETS`), so
//! checking one needs no lookup at the edge.
//!
//! ```text
//! et1.<key id>.<origin, base64url>.<expiry, Unix seconds>.<HMAC-SHA256, base64url>
//! ```
//!
//! The MAC covers `et1|<key id>|<origin>|<expiry>`. The origin is the page's
//! `Origin` exactly (`https://shop.example`), or `*` for a token any caller
//! may use until it expires (a server, a device). A page posts the token
//! wherever it would post the key (`x-edgehose-key`, `Authorization: Bearer`,
//! Basic's user as Segment's SDKs send it, `?key=`, a Segment body's
//! `writeKey`).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::sigv4::verify::constant_time_eq;
use crate::timestamp::Timestamp;

/// What every token begins with.
pub const PREFIX: &str = "et1.";

/// How far a token's expiry may be past, or its lifetime past
/// [`MAX_LIFETIME_S`], before it is refused: clocks disagree by this much.
pub const CLOCK_SKEW_S: i64 = 60;

/// The longest a token may live: a day. A longer one is refused, so a
/// leaked token is worth a day at most.
pub const MAX_LIFETIME_S: i64 = 24 * 3600;

/// The shortest secret accepted: 32 bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not five dot-separated parts of the right kinds.
    #[error("the ingest token is malformed ({0})")]
    Malformed(&'static str),
    /// Its signature is not one of ours.
    #[error(
        "the ingest token's signature does not verify (forged, or signed with a secret this service does not hold)"
    )]
    Forged,
    /// Past its expiry (and the clock skew allowed).
    #[error("the ingest token expired at {0} (Unix seconds); mint a new one")]
    Expired(i64),
    /// It would live longer than a token may.
    #[error("the ingest token expires at {0}, more than a day from now; tokens live a day at most")]
    TooLongLived(i64),
    /// Used from another origin than the one it is bound to.
    #[error("the ingest token is bound to origin {bound:?}, and was sent from {sent:?}")]
    WrongOrigin {
        /// The origin it is bound to.
        bound: String,
        /// The request's `Origin` (empty: none).
        sent: String,
    },
    /// The key it names is not configured.
    #[error("the ingest token names key {0:?}, which WRITE_KEYS does not define")]
    UnknownKey(String),
    /// No secret is configured to check it with.
    #[error("ingest tokens are not accepted here: TOKEN_SECRETS is not set")]
    NotAccepted,
}

impl TokenError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "token_malformed",
            Self::Forged => "token_forged",
            Self::Expired(_) => "token_expired",
            Self::TooLongLived(_) => "token_too_long_lived",
            Self::WrongOrigin { .. } => "token_wrong_origin",
            Self::UnknownKey(_) => "token_unknown_key",
            Self::NotAccepted => "tokens_not_accepted",
        }
    }
}

fn mac(secret: &[u8], key_id: &str, origin: &str, expiry: i64) -> Vec<u8> {
    let mut m =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    m.update(format!("et1|{key_id}|{origin}|{expiry}").as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// A token for `key_id`, bound to `origin` (`*`: any), expiring at `expiry`.
pub fn mint(secret: &[u8], key_id: &str, origin: &str, expiry: Timestamp) -> String {
    let expiry = expiry.as_millis().div_euclid(1000);
    format!(
        "{PREFIX}{key_id}.{}.{expiry}.{}",
        B64.encode(origin.as_bytes()),
        B64.encode(mac(secret, key_id, origin, expiry))
    )
}

/// Whether `presented` is a token (rather than a bare key).
pub fn is_token(presented: &str) -> bool {
    presented.starts_with(PREFIX)
}

/// The key id a valid token names, checked with any of `secrets` (the
/// first mints; the others are kept while they rotate out) against the
/// request's `origin` and the time `now`.
pub fn verify(
    secrets: &[Vec<u8>],
    presented: &str,
    origin: Option<&str>,
    now: Timestamp,
) -> Result<String, TokenError> {
    let rest = presented
        .strip_prefix(PREFIX)
        .ok_or(TokenError::Malformed("it does not begin et1."))?;
    let parts: Vec<&str> = rest.split('.').collect();
    let [key_id, origin_b64, expiry, sig] = parts.as_slice() else {
        return Err(TokenError::Malformed(
            "it is not et1.<key>.<origin>.<expiry>.<signature>",
        ));
    };
    if key_id.is_empty() {
        return Err(TokenError::Malformed("it names no key"));
    }
    let bound = B64
        .decode(origin_b64)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or(TokenError::Malformed("its origin is not base64url text"))?;
    let expiry: i64 = expiry
        .parse()
        .map_err(|_| TokenError::Malformed("its expiry is not Unix seconds"))?;
    let sig = B64
        .decode(sig)
        .map_err(|_| TokenError::Malformed("its signature is not base64url"))?;
    if secrets.is_empty() {
        return Err(TokenError::NotAccepted);
    }
    if !secrets
        .iter()
        .any(|s| constant_time_eq(&mac(s, key_id, &bound, expiry), &sig))
    {
        return Err(TokenError::Forged);
    }
    let now_s = now.as_millis().div_euclid(1000);
    if now_s > expiry + CLOCK_SKEW_S {
        return Err(TokenError::Expired(expiry));
    }
    if expiry > now_s + MAX_LIFETIME_S + CLOCK_SKEW_S {
        return Err(TokenError::TooLongLived(expiry));
    }
    if bound != "*" && origin != Some(bound.as_str()) {
        return Err(TokenError::WrongOrigin {
            bound,
            sent: origin.unwrap_or_default().to_owned(),
        });
    }
    Ok((*key_id).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);

    #[test]
    fn a_minted_token_verifies_for_its_key_origin_and_lifetime() {
        let t = mint(SECRET, "web", "https://shop.example", NOW.add_millis(3_600_000));
        assert!(is_token(&t));
        let ok = verify(&[SECRET.to_vec()], &t, Some("https://shop.example"), NOW);
        assert_eq!(ok, Ok("web".to_owned()));
    }

    #[test]
    fn expired_forged_and_elsewhere_each_say_which() {
        let secrets = [SECRET.to_vec()];
        let origin = Some("https://shop.example");
        let exp = NOW.add_millis(600_000);
        let t = mint(SECRET, "web", "https://shop.example", exp);
        // The expiry, with the skew on either side of it.
        let at = |s: i64| NOW.add_millis(600_000 + s * 1000);
        assert!(verify(&secrets, &t, origin, at(CLOCK_SKEW_S)).is_ok());
        assert_eq!(
            verify(&secrets, &t, origin, at(CLOCK_SKEW_S + 1)).unwrap_err().code(),
            "token_expired"
        );
        let other = mint(b"another secret, of thirty-two b!", "web", "https://shop.example", exp);
        assert_eq!(
            verify(&secrets, &other, origin, NOW).unwrap_err().code(),
            "token_forged"
        );
        let tampered = t.replacen("et1.web.", "et1.ios.", 1);
        assert_eq!(
            verify(&secrets, &tampered, origin, NOW).unwrap_err().code(),
            "token_forged"
        );
        let e = verify(&secrets, &t, Some("https://evil.example"), NOW).unwrap_err();
        assert_eq!(e.code(), "token_wrong_origin");
        assert!(e.to_string().contains("evil.example"), "{e}");
        assert_eq!(
            verify(&secrets, &t, None, NOW).unwrap_err().code(),
            "token_wrong_origin"
        );
        let any = mint(SECRET, "srv", "*", exp);
        assert!(verify(&secrets, &any, None, NOW).is_ok());
        let long = mint(
            SECRET,
            "web",
            "*",
            NOW.add_millis((MAX_LIFETIME_S + 2 * CLOCK_SKEW_S) * 1000),
        );
        assert_eq!(
            verify(&secrets, &long, None, NOW).unwrap_err().code(),
            "token_too_long_lived"
        );
        for bad in [
            "et1.",
            "et1.web.x.y",
            "et1..Kg.1.AA",
            "et1.web.@@.1.AA",
            "et1.web.Kg.soon.AA",
        ] {
            assert_eq!(
                verify(&secrets, bad, origin, NOW).unwrap_err().code(),
                "token_malformed",
                "{bad}"
            );
        }
        assert_eq!(verify(&[], &t, origin, NOW).unwrap_err().code(), "tokens_not_accepted");
        // A rotated-out secret still verifies while it is listed.
        let rotated = [b"the new secret, thirty-two bytes".to_vec(), SECRET.to_vec()];
        assert!(verify(&rotated, &t, origin, NOW).is_ok());
    }
}
