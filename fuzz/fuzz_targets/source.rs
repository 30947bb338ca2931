//! Any-JSON sources: their declarations (`SOURCES`) and their events,
//! validated by a declaration that names an id and a time in each format.
#![no_main]

use edgehose_shared::limits::Limits;
use edgehose_shared::source::{Sources, validate_event};
use libfuzzer_sys::fuzz_target;

const DECLARED: &str = r#"{
  "ms": {"id_field": "uuid", "time_field": "ts", "time_format": "epoch_ms"},
  "s": {"id_field": "id", "time_field": "t", "time_format": "epoch_s"},
  "rfc": {"time_field": "at", "time_format": "rfc3339"}
}"#;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // As a declaration: refused with a reason, or read.
    let _ = Sources::parse(text);
    let sources = Sources::parse(DECLARED).expect("the fixed declaration reads");
    let limits = Limits::default();
    for name in ["ms", "s", "rfc"] {
        let _ = validate_event(text, sources.get(name), &limits);
    }
    let _ = validate_event(text, None, &limits);
});
