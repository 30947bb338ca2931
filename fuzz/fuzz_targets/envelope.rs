//! Reading an envelope line, and judging it as the edge does before packing:
//! a rejected line always reads back as one, with the line inside unchanged.
#![no_main]

use edgehose_shared::envelope::Envelope;
use edgehose_shared::judge::{Rules, Verdict, judge};
use edgehose_shared::limits::Limits;
use edgehose_shared::rejected::is_rejected_line;
use edgehose_shared::source::Sources;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else { return };
    if let Ok(envelope) = Envelope::parse(line)
        && let Some(q) = &envelope.quarantine
    {
        let _ = q.raw();
    }
    let (limits, sources) = (Limits::default(), Sources::default());
    let rules = Rules {
        limits: &limits,
        sources: &sources,
    };
    if let Verdict::Rejected(rejected) = judge(line, rules) {
        assert!(is_rejected_line(&rejected), "{rejected}");
        assert_eq!(judge(&rejected, rules), Verdict::Rejected(rejected.clone()));
        if !is_rejected_line(line) {
            // The original is kept: as its text, or as the JSON object it
            // was, byte for byte (a number serde_json's Value would refuse,
            // 1e999, is still JSON and is kept as sent).
            #[derive(serde::Deserialize)]
            struct Kept<'a> {
                #[serde(borrow)]
                envelope: &'a serde_json::value::RawValue,
            }
            let kept: Kept<'_> = serde_json::from_str(&rejected).expect("a rejected line is JSON");
            let raw = kept.envelope.get();
            if raw.starts_with('"') {
                assert_eq!(serde_json::from_str::<String>(raw).expect("a JSON string"), line);
            } else {
                assert_eq!(raw, line.trim_matches([' ', '\t', '\n', '\r']), "{line}");
            }
        }
    }
});
