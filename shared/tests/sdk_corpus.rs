//! The golden corpus: requests captured from the real SDKs — Segment's and
//! RudderStack's, Snowplow's Node tracker, PostHog's Node and Python SDKs
//! (`fixtures/sdk-corpus/`, one file per SDK, written by
//! `EDGEHOSE_UPDATE_CORPUS=1 cargo test -p edgehose-tests --test sdk_corpus`),
//! replayed through the real API code with the clock and randomness fixed.
//! Each must still be answered as it was and give the same envelopes, and
//! every message must pass its dialect's validation: a change that
//! breaks a real client fails here, not in a deployment.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::path::PathBuf;

use base64::Engine as _;
use edgehose_shared::api::{self, ApiConfig, Body, RequestHead};
use edgehose_shared::clock::SeededRandom;
use edgehose_shared::envelope::{EdgeMeta, Envelope};
use edgehose_shared::judge::{Rules, Verdict, judge};
use edgehose_shared::settings::Settings;
use edgehose_shared::timestamp::Timestamp;

fn corpus() -> Vec<(PathBuf, serde_json::Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sdk-corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let v = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            (p, v)
        })
        .collect()
}

#[test]
fn every_captured_request_is_answered_and_enveloped_as_recorded() {
    let files = corpus();
    assert!(files.len() >= 6, "the corpus holds a file per SDK");
    for (path, file) in files {
        let settings: Vec<(String, String)> = file["settings"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        let config = ApiConfig::from_settings(&Settings::new(move |n: &str| {
            settings.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())
        }))
        .unwrap();
        let received_at = Timestamp::from_millis(file["received_at"].as_i64().unwrap());
        let requests = file["requests"].as_array().unwrap();
        assert!(!requests.is_empty(), "{}", path.display());
        let mut messages = 0;
        for (i, r) in requests.iter().enumerate() {
            let header = |name: &str| r["headers"][name].as_str();
            let body = base64::engine::general_purpose::STANDARD
                .decode(r["body_base64"].as_str().unwrap())
                .unwrap();
            let full = r["path"].as_str().unwrap();
            let (path_only, query) = full.split_once('?').map_or((full, None), |(p, q)| (p, Some(q)));
            let head = RequestHead {
                method: r["method"].as_str().unwrap(),
                path: path_only,
                query,
                origin: header("origin"),
                key_header: header("x-edgehose-key"),
                authorization: header("authorization"),
                content_length: Some(body.len() as u64),
                ..RequestHead::default()
            };
            let body = Body {
                bytes: &body,
                content_type: header("content-type"),
                content_encoding: header("content-encoding"),
                inflated: None,
            };
            let random = SeededRandom::new(i as u64 + 1);
            let got = api::handle(&head, body, &EdgeMeta::default(), &config, received_at, &random);
            let expected = &r["expected"];
            let what = format!("{} request {i}", path.display());
            let (status, reply, lines) = match &got {
                Ok(a) => (a.reply.status, a.reply.body.as_str(), a.lines.clone()),
                Err(reply) => (reply.status, reply.body.as_str(), Vec::new()),
            };
            assert_eq!(status, expected["status"].as_u64().unwrap() as u16, "{what}: {reply}");
            assert_eq!(reply, expected["body"].as_str().unwrap(), "{what}");
            let want: Vec<&str> = expected["lines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l.as_str().unwrap())
                .collect();
            assert_eq!(lines, want, "{what}");
            for line in &lines {
                let env = Envelope::parse(line).unwrap();
                assert_eq!(
                    env.key_id.as_deref(),
                    Some("server"),
                    "{what}: the key came from the request"
                );
                // Valid by its dialect's rules, as the transform checks it.
                let rules = Rules {
                    limits: &config.limits,
                    sources: &config.sources,
                };
                let verdict = judge(line, rules);
                assert!(matches!(verdict, Verdict::Event(_)), "{what}: {verdict:?}");
                messages += 1;
            }
        }
        assert!(messages >= 4, "{}: one of each call was captured", path.display());
    }
}
