//! The HTTP API end to end on one request: every door (schema v1, Segment,
//! a source, Snowplow, PostHog), every body form and encoding. Whatever comes in is answered,
//! never a panic; what is accepted is envelopes that read back, and judging
//! each one (as the edge does before packing) never fails either.
#![no_main]

use edgehose_shared::api::{self, ApiConfig, Body, RequestHead};
use edgehose_shared::clock::SeededRandom;
use edgehose_shared::envelope::{EdgeMeta, Envelope};
use edgehose_shared::judge::{Rules, judge};
use edgehose_shared::settings::Settings;
use edgehose_shared::timestamp::Timestamp;
use libfuzzer_sys::fuzz_target;

const PATHS: [&str; 12] = [
    "/v1/events",
    "/v1/batch",
    "/v1/track",
    "/v1/t",
    "/v1/ingest/bike",
    "/v1/import",
    "/com.snowplowanalytics.snowplow/tp2",
    "/i",
    "/e/",
    "/batch/",
    "/i/v0/e/",
    "/i/v1/analytics/events",
];
const TYPES: [Option<&str>; 6] = [
    None,
    Some("application/json"),
    Some("application/x-ndjson"),
    Some("text/plain;charset=UTF-8"),
    Some("application/xml"),
    Some("application/x-www-form-urlencoded"),
];
const ENCODINGS: [Option<&str>; 3] = [None, Some("gzip"), Some("br")];

fuzz_target!(|data: &[u8]| {
    let [route, kind, encoding, strict, body @ ..] = data else {
        return;
    };
    let settings = [
        ("STRICT", if strict & 1 == 1 { "true" } else { "false" }),
        (
            "SOURCES",
            r#"{"bike": {"id_field": "uuid", "time_field": "ts", "time_format": "epoch_ms"}}"#,
        ),
        ("MAX_BODY_BYTES", "200000"),
        // No write keys: a deployment must say it takes anonymous events.
        ("ALLOW_ANONYMOUS", "true"),
    ];
    let s = Settings::new(|name: &str| settings.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()));
    let Ok(config) = ApiConfig::from_settings(&s) else {
        return;
    };
    let at = Timestamp::from_millis(1_714_566_600_250);
    let head = RequestHead {
        method: "POST",
        path: PATHS[usize::from(*route) % PATHS.len()],
        query: None,
        origin: None,
        key_header: None,
        authorization: None,
        content_length: Some(body.len() as u64),
        sdk_info: None,
        received_at: at,
    };
    let body = Body {
        bytes: body,
        content_type: TYPES[usize::from(*kind) % TYPES.len()],
        content_encoding: ENCODINGS[usize::from(*encoding) % ENCODINGS.len()],
        inflated: None,
    };
    let edge = EdgeMeta::default();
    match api::handle(&head, body, &edge, &config, at, &SeededRandom::new(1)) {
        Ok(accepted) => {
            let rules = Rules {
                limits: &config.limits,
                sources: &config.sources,
            };
            for line in &accepted.lines {
                Envelope::parse(line).unwrap_or_else(|e| panic!("an accepted line does not read back: {e}: {line}"));
                let _ = judge(line, rules);
            }
        }
        Err(reply) => assert!((400..600).contains(&reply.status), "{reply:?}"),
    }
});
