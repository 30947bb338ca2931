//! The SigV4 verifier firehose-local runs: any request head and body is
//! verified or refused with AWS's error, never a panic; and a request is
//! never accepted unless the secret signed it.
#![no_main]

use edgehose_shared::sigv4::{self, verify::Authorization};
use edgehose_shared::timestamp::Timestamp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let Some(first) = lines.next() else { return };
    // "GET /path HTTP/1.1", as the SigV4 suite writes requests.
    let mut words = first.split_whitespace();
    let (method, path) = (words.next().unwrap_or("POST"), words.next().unwrap_or("/"));
    let mut builder = http::Request::builder()
        .method(method)
        .uri(if path.starts_with('/') { path } else { "/" });
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            builder = builder.header(k.trim(), v.trim());
        }
    }
    let Ok(request) = builder.body(body.as_bytes().to_vec()) else {
        return;
    };
    if let Some(auth) = request.headers().get("authorization").and_then(|v| v.to_str().ok()) {
        let _ = Authorization::parse(auth);
    }
    let now = Timestamp::parse_amz_date("20150830T123600Z").unwrap_or(Timestamp::from_millis(0));
    let known = |id: &str| (id == "AKIDEXAMPLE").then(|| "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned());
    let _ = sigv4::verify::verify(&request, known, now);
    // Nothing passes for a key the verifier does not know.
    assert!(sigv4::verify::verify(&request, |_| None, now).is_err());
});
