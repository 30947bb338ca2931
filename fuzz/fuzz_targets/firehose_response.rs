//! Firehose's answers to `PutRecordBatch`: any status, error type, date and
//! body is read into an outcome or a typed error, and failed indices never
//! point past what was sent.
#![no_main]

use edgehose_shared::firehose::parse_put_record_batch_response;
use libfuzzer_sys::fuzz_target;

const TYPES: [Option<&str>; 4] = [
    None,
    Some("ServiceUnavailableException:http://internal.amazon.com/coral/com.amazon.coral.service/"),
    Some("InvalidSignatureException"),
    Some("ResourceNotFoundException"),
];

fuzz_target!(|data: &[u8]| {
    let [a, b, t, sent, body @ ..] = data else { return };
    let status = [200u16, 400, 403, 404, 413, 500, 503][usize::from(*a) % 7];
    let date = (b & 2 == 2).then_some("Wed, 02 Dec 2026 01:00:00 GMT");
    let sent = usize::from(*sent);
    if let Ok(outcome) = parse_put_record_batch_response(status, TYPES[usize::from(*t) % 4], date, body, sent) {
        assert!(outcome.failed.iter().all(|f| f.index < sent), "{outcome:?}");
    }
});
