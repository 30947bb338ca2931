//! Schema v1 validation of one event, under the default limits and tight
//! ones (so the size and depth limits are met often).
#![no_main]

use edgehose_shared::limits::Limits;
use edgehose_shared::settings::Settings;
use edgehose_shared::validate::validate_event;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = validate_event(text, &Limits::default());
    let tight = [("MAX_EVENT_BYTES", "256"), ("MAX_DEPTH", "4")];
    let s = Settings::new(|name: &str| tight.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()));
    if let Ok(limits) = Limits::from_settings(&s)
        && let Ok(event) = validate_event(text, &limits)
    {
        assert!(text.len() <= 256, "over max_event_bytes yet valid");
        assert!(!event.event.is_empty());
    }
});
