//! The edge Worker's own Rust work, without the Worker around it: what
//! `api::handle` does for one 177-byte event and what signing one
//! `PutRecordBatch` costs. Each function runs its work `n` times and returns
//! a checksum, so a caller times the loop and not the call into it.
//! `edgehose-bench wasm` calls them natively (this crate as a library) and
//! in V8 (built for wasm32 at each opt-level, through wasm-bindgen).

use edgehose_shared::api::{self, ApiConfig, Body, RequestHead};
use edgehose_shared::aws::Endpoint;
use edgehose_shared::clock::SeededRandom;
use edgehose_shared::envelope::EdgeMeta;
use edgehose_shared::firehose;
use edgehose_shared::sigv4::sign::{self, Credentials, Signer};
use edgehose_shared::timestamp::Timestamp;
use wasm_bindgen::prelude::wasm_bindgen;

/// The event of `make bench-edge`: 177 bytes of realistic telemetry.
pub const EVENT: &str = edgehose_sample::TELEMETRY_177;

const NOW: Timestamp = Timestamp::from_millis(edgehose_sample::SAMPLE_EPOCH_MS);

/// `api::handle` on one `POST /v1/events` of [`EVENT`], `n` times, with the
/// Worker's default settings; returns the events accepted.
#[wasm_bindgen]
pub fn accept(n: u32) -> u32 {
    let config = ApiConfig::default();
    let head = RequestHead {
        method: "POST",
        path: "/v1/events",
        content_length: Some(EVENT.len() as u64),
        ..RequestHead::default()
    };
    let edge = EdgeMeta::default();
    let random = SeededRandom::new(7);
    let mut accepted = 0;
    for _ in 0..n {
        let body = Body {
            bytes: EVENT.as_bytes(),
            content_type: Some("application/json"),
            content_encoding: None,
            inflated: None,
        };
        if let Ok(a) = api::handle(&head, body, &edge, &config, NOW, &random) {
            accepted += a.count as u32;
        }
    }
    accepted
}

/// Builds and signs a `PutRecordBatch` of one envelope line, `n` times, as
/// direct mode does per call, hashing the body here in wasm (the Worker
/// hands that hash to the runtime's native digest); returns the headers
/// written.
#[wasm_bindgen]
pub fn sign(n: u32) -> u32 {
    let Ok(endpoint) = Endpoint::for_region(firehose::SIGNING_SERVICE, "us-east-1") else {
        return 0;
    };
    let credentials = Credentials::new("AKIDBENCHMARK", "bench-secret-not-a-real-key");
    let line = format!("{EVENT}\n");
    let signer = Signer {
        credentials: &credentials,
        region: "us-east-1",
        service: firehose::SIGNING_SERVICE,
        time: NOW,
    };
    let mut headers = 0;
    for _ in 0..n {
        let body = firehose::put_record_batch_body("bench", [line.as_bytes()]);
        if let Ok(signed) =
            sign::signing_headers(&endpoint.target(), &firehose::PUT_RECORD_BATCH_HEADERS, &body, &signer)
        {
            headers += (firehose::PUT_RECORD_BATCH_HEADERS.len() + signed.len()) as u32;
        }
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_work_is_done_every_time() {
        assert_eq!(EVENT.len(), 177);
        assert_eq!(accept(3), 3, "the event is accepted each time");
        // content-type, x-amz-target, x-amz-date, authorization (host comes
        // from the URL, and the payload hash Firehose does not need is not
        // added).
        let per = sign(1);
        assert_eq!(per, 4, "{per} headers");
        assert_eq!(sign(4), 4 * per);
    }
}
