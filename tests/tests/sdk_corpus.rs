//! The golden corpus (`shared/tests/fixtures/sdk-corpus/`) kept true to the
//! real SDKs: each one runs, unchanged, against a capture server. What it
//! sends today must be accepted by the API code with every message valid,
//! and must have the same shape (routes, headers, body and message members)
//! as the captures the corpus holds; the shared crate's `sdk_corpus` test
//! replays those byte for byte.
//!
//! `EDGEHOSE_UPDATE_CORPUS=1 cargo test -p edgehose-tests --test sdk_corpus`
//! rewrites the corpus from a fresh capture, with the answers and envelopes
//! the API gives it today (review the diff before committing).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::collections::BTreeSet;
use std::io::Read;
use std::path::PathBuf;

use edgehose_local::tools;
use edgehose_sample::RECEIVED_AT_MS; // when the replay says each request arrived
use edgehose_shared::api::{self, ApiConfig, Body, RequestHead};
use edgehose_shared::clock::SeededRandom;
use edgehose_shared::envelope::EdgeMeta;
use edgehose_shared::judge::{self, Rules, Verdict};
use edgehose_shared::settings::Settings;
use edgehose_shared::timestamp::Timestamp;
use edgehose_tests::clients::{Capture, Captured, Sdk};

/// The deployment the corpus is replayed against.
const WRITE_KEYS: &str = "server:wk_corpus_0123456789";
const WRITE_KEY: &str = "wk_corpus_0123456789";

fn config() -> ApiConfig {
    ApiConfig::from_settings(&Settings::new(|n: &str| {
        (n == "WRITE_KEYS").then(|| WRITE_KEYS.to_owned())
    }))
    .unwrap()
}

fn corpus_file(sdk: Sdk) -> PathBuf {
    tools::repo_root().join(format!("shared/tests/fixtures/sdk-corpus/{}.json", sdk.name()))
}

/// The API's answer to a captured request: status, body, envelope lines.
fn replay(r: &Captured, index: usize, config: &ApiConfig) -> (u16, String, Vec<String>) {
    let (path, query) = r
        .path
        .split_once('?')
        .map_or((r.path.as_str(), None), |(p, q)| (p, Some(q)));
    let head = RequestHead {
        method: &r.method,
        path,
        query,
        origin: r.header("origin"),
        key_header: r.header("x-edgehose-key"),
        authorization: r.header("authorization"),
        content_length: Some(r.body.len() as u64),
        ..RequestHead::default()
    };
    let body = Body {
        bytes: &r.body,
        content_type: r.header("content-type"),
        content_encoding: r.header("content-encoding"),
        inflated: None,
    };
    let at = Timestamp::from_millis(RECEIVED_AT_MS);
    let random = SeededRandom::new(index as u64 + 1);
    match api::handle(&head, body, &EdgeMeta::default(), config, at, &random) {
        Ok(a) => (a.reply.status, a.reply.body, a.lines),
        Err(reply) => (reply.status, reply.body, Vec::new()),
    }
}

/// What a set of requests looks like, without its values: each route,
/// header value that matters, body member and message member with its JSON
/// type, by call.
fn shape(requests: &[Captured]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for r in requests {
        out.insert(format!("{} {}", r.method, r.path));
        for (k, v) in &r.headers {
            let v = match k.as_str() {
                "authorization" => v.split(' ').next().unwrap_or_default().to_owned(),
                "user-agent" => v.split('/').next().unwrap_or_default().to_owned(),
                _ => v.clone(),
            };
            out.insert(format!("header {k}: {v}"));
        }
        let body = match r.header("content-encoding") {
            Some("gzip") => {
                let mut inflated = Vec::new();
                flate2::read::GzDecoder::new(r.body.as_slice())
                    .read_to_end(&mut inflated)
                    .unwrap();
                inflated
            }
            _ => r.body.clone(),
        };
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        // Segment's and PostHog's batches, Snowplow's payload_data.
        let batch = body
            .get("batch")
            .or_else(|| body.get("data"))
            .and_then(|b| b.as_array());
        let messages = match batch {
            Some(batch) => {
                for k in body.as_object().unwrap().keys() {
                    out.insert(format!("body.{k}"));
                }
                batch.clone()
            }
            None => vec![body],
        };
        for m in messages {
            let call = ["type", "e", "event"]
                .iter()
                .find_map(|k| m[*k].as_str())
                .unwrap_or("?")
                .to_owned();
            for (k, v) in m.as_object().unwrap() {
                out.insert(format!("{call}.{k}: {}", kind(v)));
            }
        }
    }
    out
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

#[test]
fn the_corpus_holds_what_each_real_sdk_sends_today() {
    let update = std::env::var_os("EDGEHOSE_UPDATE_CORPUS").is_some();
    let config = config();
    for sdk in Sdk::ALL {
        let capture = Capture::start().unwrap();
        let sent = sdk.run(capture.url(), WRITE_KEY, "corpus").unwrap();
        let requests = capture.requests();
        assert!(!requests.is_empty(), "{} sent nothing", sdk.name());

        // Every call the SDK reported sent is in a captured request, and the
        // API accepts each request with every message valid by the spec.
        let mut answered = Vec::new();
        let mut ids = BTreeSet::new();
        for (i, r) in requests.iter().enumerate() {
            let (status, body, lines) = replay(r, i, &config);
            assert_eq!((status, body.as_str()), (200, sdk.answer()), "{}: {r:?}", sdk.name());
            let rules = Rules {
                limits: &config.limits,
                sources: &config.sources,
            };
            for line in &lines {
                let env = edgehose_shared::envelope::Envelope::parse(line).unwrap();
                ids.insert(env.id.to_string());
                // Valid by its dialect's rules, as the transform checks it.
                let verdict = judge::judge(line, rules);
                assert!(matches!(verdict, Verdict::Event(_)), "{}: {verdict:?}", sdk.name());
            }
            answered.push((status, body, lines));
        }
        for (call, id) in &sent {
            assert!(
                ids.contains(id),
                "{}: the {call} call's id {id} was not captured",
                sdk.name()
            );
        }
        assert_eq!(sent.len(), sdk.calls(), "{}: one of each of its calls", sdk.name());

        let file = corpus_file(sdk);
        if update {
            let requests_json: Vec<serde_json::Value> = requests
                .iter()
                .zip(&answered)
                .map(|(r, (status, body, lines))| {
                    let mut v = r.to_json();
                    v["expected"] = serde_json::json!({"status": status, "body": body, "lines": lines});
                    v
                })
                .collect();
            let doc = serde_json::json!({
                "client": sdk.name(),
                "captured_by": "EDGEHOSE_UPDATE_CORPUS=1 cargo test -p edgehose-tests --test sdk_corpus (tests/sdk/ drives the SDK)",
                "settings": {"WRITE_KEYS": WRITE_KEYS},
                "received_at": RECEIVED_AT_MS,
                "requests": requests_json,
            });
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
            continue;
        }
        let committed: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display())))
                .unwrap();
        let committed: Vec<Captured> = committed["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| Captured::from_json(v).unwrap())
            .collect();
        let (now, then) = (shape(&requests), shape(&committed));
        assert!(
            now == then,
            "{} sends something the corpus does not hold (re-capture with EDGEHOSE_UPDATE_CORPUS=1):\nnew: {:#?}\ngone: {:#?}",
            sdk.name(),
            now.difference(&then).collect::<Vec<_>>(),
            then.difference(&now).collect::<Vec<_>>()
        );
    }
}
