//! Segment's wire format: a body read for every route, then each message
//! validated by the spec, as the transform and the edge's judge do.
#![no_main]

use edgehose_shared::limits::Limits;
use edgehose_shared::segment::validate::validate_message;
use edgehose_shared::segment::{self, Call, Route};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [pick, body @ ..] = data else { return };
    let route = match pick % 7 {
        6 => Route::Batch,
        n => Route::Single(Call::ALL[usize::from(n)]),
    };
    let limits = Limits::default();
    if let Ok(request) = segment::parse(body, route, &limits) {
        let call = match route {
            Route::Single(c) => Some(c.as_str()),
            Route::Batch => None,
        };
        for message in &request.messages {
            // A message keeps its text: it is JSON that reads again.
            assert!(
                serde_json::from_str::<&serde_json::value::RawValue>(message).is_ok(),
                "{message}"
            );
            let _ = validate_message(message, call, &limits);
        }
    }
});
