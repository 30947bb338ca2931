use super::*;
use crate::api::{Body, RequestHead, handle};
use crate::bot::Signals;
use crate::clock::SeededRandom;
use crate::envelope::{EdgeMeta, Envelope};
use crate::rate_limit::Windows;
use crate::settings::Settings;
use crate::timestamp::Timestamp;

fn config(pairs: &[(&str, &str)]) -> ApiConfig {
    let owned: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    ApiConfig::from_settings(&Settings::new(move |n: &str| {
        owned.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())
    }))
    .unwrap()
}

const NOW: u64 = 1_714_566_600_000;

/// One request through the API and the guard, the counters held in `windows`
/// as the binding would: the answer's status, its body, and the lines.
fn post(
    cfg: &ApiConfig,
    body: &str,
    signals: &Signals<'_>,
    (memory, windows): (&mut Memory, &mut Windows),
    now: u64,
) -> Result<Accepted, Reply> {
    let head = RequestHead {
        method: "POST",
        path: "/v1/events",
        key_header: Some("k-web-secret"),
        received_at: Timestamp::from_millis(now as i64),
        ..RequestHead::default()
    };
    let body = Body {
        bytes: body.as_bytes(),
        content_type: Some("application/json"),
        content_encoding: None,
        inflated: None,
    };
    let random = SeededRandom::new(now);
    let accepted = handle(&head, body, &EdgeMeta::default(), cfg, head.received_at, &random)?;
    let over = match limit(&accepted, cfg, Some("203.0.113.9"), memory, now, &random) {
        Limit::Within => None,
        Limit::Over(scope) => Some(scope),
        Limit::Ask(calls) => ask_local(&calls, windows, memory, now),
    };
    settle(accepted, cfg, crate::bot::judge(signals).as_ref(), over, now)
}

#[test]
fn past_a_refusing_limit_the_answer_is_429_naming_it_with_retry_after_until_the_window_ends() {
    let cfg = config(&[
        ("WRITE_KEYS", "web:k-web-secret"),
        ("RATE_LIMITS", r#"{"web":{"address":{"events":10}}}"#),
    ]);
    let (mut memory, mut windows) = (Memory::default(), Windows::default());
    let body = r#"[{"event":"a"},{"event":"b"}]"#;
    let mut statuses = Vec::new();
    for i in 0..8 {
        statuses.push(
            match post(&cfg, body, &Signals::default(), (&mut memory, &mut windows), NOW + i) {
                Ok(_) => 200,
                Err(r) => r.status,
            },
        );
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
    let r = post(
        &cfg,
        body,
        &Signals::default(),
        (&mut memory, &mut windows),
        NOW + 2_500,
    )
    .unwrap_err();
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["code"], "rate_limited");
    assert_eq!(
        v["message"],
        "rate limit: more than 10 events per 10 s from one address (RATE_LIMITS.web.address); retry after 8 s"
    );
    assert!(r.headers.contains(&("retry-after", "8".to_owned())));
    // Known spent, the next is refused before its body is read.
    let early = refuse_early(&cfg, Some("web"), Some("203.0.113.9"), &[], &memory, NOW + 3_000).unwrap();
    assert_eq!(early.status, 429);
    assert!(refuse_early(&cfg, Some("web"), Some("203.0.113.10"), &[], &memory, NOW + 3_000).is_none());
    // The next window takes events again.
    assert!(
        post(
            &cfg,
            body,
            &Signals::default(),
            (&mut memory, &mut windows),
            NOW + 10_000
        )
        .is_ok()
    );
    assert!(refuse_early(&cfg, Some("web"), Some("203.0.113.9"), &[], &memory, NOW + 10_000).is_none());
}

#[test]
fn past_a_labelling_limit_events_are_accepted_into_the_limited_lane() {
    let cfg = config(&[
        ("WRITE_KEYS", "web:k-web-secret"),
        ("RATE_LIMITS", r#"{"web":{"user":{"events":2},"over":"label"}}"#),
    ]);
    let (mut memory, mut windows) = (Memory::default(), Windows::default());
    let body = r#"{"event":"a","anonymous_id":"anon-1"}"#;
    let a = post(&cfg, body, &Signals::default(), (&mut memory, &mut windows), NOW).unwrap();
    assert!(a.label.is_empty());
    assert!(Envelope::parse(&a.lines[0]).unwrap().label.is_none());
    post(&cfg, body, &Signals::default(), (&mut memory, &mut windows), NOW).unwrap();
    let a = post(&cfg, body, &Signals::default(), (&mut memory, &mut windows), NOW).unwrap();
    assert_eq!(a.reply.status, 200);
    assert_eq!(a.label.limited.as_deref(), Some("user"));
    let env = Envelope::parse(&a.lines[0]).unwrap();
    assert_eq!(env.label.unwrap().lane, Some(Lane::Limited));
    // Another anonymous id is within its own budget.
    let other = r#"{"event":"a","anonymous_id":"anon-2"}"#;
    assert!(
        post(&cfg, other, &Signals::default(), (&mut memory, &mut windows), NOW)
            .unwrap()
            .label
            .is_empty()
    );
}

#[test]
fn bot_verdicts_label_events_and_the_keys_routes_pick_their_lane() {
    let cfg = config(&[
        ("WRITE_KEYS", "web:k-web-secret"),
        ("BOT_ROUTES", r#"{"web":{"tool":"quarantine","bot":"bots"}}"#),
    ]);
    let (mut memory, mut windows) = (Memory::default(), Windows::default());
    let mut send = |signals: Signals<'_>| {
        let a = post(&cfg, r#"{"event":"a"}"#, &signals, (&mut memory, &mut windows), NOW).unwrap();
        Envelope::parse(&a.lines[0]).unwrap().label.unwrap_or_default()
    };
    let l = send(Signals {
        user_agent: Some("curl/8.5.0"),
        ..Signals::default()
    });
    assert_eq!((l.lane, l.bot.as_deref()), (Some(Lane::Quarantine), Some("tool")));
    let l = send(Signals {
        score: Some(3),
        ..Signals::default()
    });
    assert_eq!(
        (l.lane, l.bot.as_deref(), l.score),
        (Some(Lane::Bots), Some("bot"), Some(3))
    );
    let l = send(Signals {
        verified_bot: true,
        ..Signals::default()
    });
    assert_eq!((l.lane, l.bot.as_deref()), (None, Some("verified")));
    assert!(send(Signals::default()).is_empty());
}

#[test]
fn limits_and_routes_may_only_name_keys_that_exist() {
    for (setting, value) in [
        ("RATE_LIMITS", r#"{"ios":{"key":{"events":5}}}"#),
        ("BOT_ROUTES", r#"{"ios":{"bot":"bots"}}"#),
    ] {
        let owned = [("WRITE_KEYS", "web:k-web-secret"), (setting, value)];
        let e = ApiConfig::from_settings(&Settings::new(|n: &str| {
            owned.iter().find(|(k, _)| *k == n).map(|(_, v)| v.to_string())
        }))
        .unwrap_err();
        assert_eq!(e.name, setting);
        assert!(e.to_string().contains("\"ios\""), "{e}");
    }
}

#[test]
fn a_request_larger_than_the_whole_budget_passes_into_a_fresh_window_only() {
    let cfg = config(&[
        ("WRITE_KEYS", "web:k-web-secret"),
        ("RATE_LIMITS", r#"{"web":{"address":{"events":3}}}"#),
    ]);
    let (mut memory, mut windows) = (Memory::default(), Windows::default());
    let batch = r#"[{"event":"a"},{"event":"b"},{"event":"c"},{"event":"d"},{"event":"e"}]"#;
    let status = |r: Result<Accepted, Reply>| r.map_or_else(|r| r.status, |a| a.reply.status);
    let mut send = |body: &str, at: u64| status(post(&cfg, body, &Signals::default(), (&mut memory, &mut windows), at));
    assert_eq!(send(batch, NOW), 200);
    assert_eq!(send(r#"{"event":"a"}"#, NOW + 1), 429);
    assert_eq!(send(r#"{"event":"a"}"#, NOW + 10_000), 200);
    assert_eq!(send(batch, NOW + 10_001), 429);
    assert_eq!(send(batch, NOW + 20_000), 200);
}
