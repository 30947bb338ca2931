//! One signed call to an AWS JSON API from the Worker, whichever the sink:
//! made once the isolate's cap on calls in flight allows (`in_flight.rs`),
//! the body hashed (natively when the runtime can), signed with SigV4 at the
//! clock corrected by the skew AWS last reported, posted with a deadline.

use std::cell::Cell;

use edgehose_shared::aws::{CallError, Endpoint, PutOutcome};
use edgehose_shared::retry::ClockSkew;
use edgehose_shared::sigv4;
use edgehose_shared::sigv4::sign::{Signer, signing_headers_for_payload};

use crate::clock::now;
use crate::config::EdgeConfig;
use crate::js::{self, Answer};
use crate::sinks::in_flight;

thread_local! {
    /// Clock skew learned from AWS, for every later signature in this isolate.
    static SKEW: Cell<ClockSkew> = Cell::new(ClockSkew::default());
}

/// POSTs `body` to `endpoint` with the protocol `headers`, signed for
/// `service`, abandoned after `timeout_ms`.
async fn call(
    config: &EdgeConfig,
    endpoint: &Endpoint,
    service: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout_ms: u64,
) -> Result<Answer, CallError> {
    // The isolate's cap on calls in flight: the wait is part of the call's time.
    let asked = now();
    let Some(_permit) = in_flight::acquire(config.max_in_flight_calls, timeout_ms).await else {
        return Err(CallError::TimedOut { after_ms: timeout_ms });
    };
    let waited = now().millis_since(asked).max(0) as u64;
    let Some(timeout_ms) = timeout_ms.checked_sub(waited).filter(|left| *left > 0) else {
        return Err(CallError::TimedOut { after_ms: timeout_ms });
    };
    // Hashed natively off the wasm (tens of KB per window); in wasm only if
    // the runtime refuses.
    let payload = match js::native_sha256_hex(body).await {
        Some(hex) => hex,
        None => sigv4::sha256_hex(body),
    };
    let time = SKEW.with(|s| s.get().corrected(now()));
    let signer = Signer {
        credentials: &config.credentials,
        region: &config.region,
        service,
        time,
    };
    // "host" comes from the URL (the Workers runtime refuses to set it), and
    // is signed as the endpoint's.
    let signature = signing_headers_for_payload(&endpoint.target(), headers, &payload, &signer)
        .map_err(|e| CallError::Request(e.to_string()))?;
    let all: Vec<(&str, &str)> = headers
        .iter()
        .copied()
        .chain(signature.iter().map(|(k, v)| (*k, v.as_str())))
        .collect();
    js::post(endpoint.url(), &all, body, timeout_ms)
        .await
        .map_err(CallError::Transport)?
        .ok_or(CallError::TimedOut { after_ms: timeout_ms })
}

/// Reads the answer to a call putting many records: status,
/// `x-amzn-ErrorType`, `Date`, body, and how many records were sent.
pub type ReadAnswer = fn(u16, Option<&str>, Option<&str>, &[u8], usize) -> Result<PutOutcome, CallError>;

/// The protocol of one call that puts many records: its signing service,
/// headers, and the reader of its answer (status, `x-amzn-ErrorType`,
/// `Date`, body, records sent).
pub struct PutProtocol {
    /// The SigV4 service name.
    pub service: &'static str,
    /// The JSON protocol's headers.
    pub headers: &'static [(&'static str, &'static str)],
    /// Reads the answer.
    pub read: ReadAnswer,
}

/// One signed call putting `sent` records, its answer read, the clock skew
/// learned from an answer that says the signature's time was off.
pub async fn put(
    config: &EdgeConfig,
    endpoint: &Endpoint,
    protocol: &PutProtocol,
    body: &[u8],
    sent: usize,
    timeout_ms: u64,
) -> Result<PutOutcome, CallError> {
    let result = call(config, endpoint, protocol.service, protocol.headers, body, timeout_ms)
        .await
        .and_then(|a| (protocol.read)(a.status, a.error_type.as_deref(), a.date.as_deref(), &a.body, sent));
    learn_skew(&result);
    result
}

/// Learns the clock skew from an answer that says the signature's time was off.
fn learn_skew<T>(result: &Result<T, CallError>) {
    if let Err(e) = result {
        SKEW.with(|s| {
            let mut skew = s.get();
            if skew.learn_from(e, now()) {
                s.set(skew);
            }
        });
    }
}
