use super::*;
use crate::clock::SeededRandom;

fn limits(text: &str) -> KeyLimits {
    *RateLimits::parse(text).unwrap().of(Some("web")).unwrap()
}

fn usage(events: u64, bytes: u64) -> Usage {
    Usage {
        events,
        bytes,
        users: Vec::new(),
    }
}

/// Drives one request's plan through the isolate's memory and a counter
/// store with the binding's semantics, as the edge does: `true` if within.
fn admit(charges: Vec<Charge>, memory: &mut Memory, windows: &mut Windows, now: u64) -> Result<(), Scope> {
    if let Some(scope) = memory.spent(&charges, now) {
        return Err(scope);
    }
    for c in &charges {
        for _ in 0..c.calls {
            if !windows.limit(&c.counter, now) {
                memory.spend(&c.counter, now);
                return Err(c.scope);
            }
        }
    }
    Ok(())
}

#[test]
fn limits_are_per_key_with_a_default_and_bad_ones_are_named() {
    let all = RateLimits::parse(
        r#"{"web":{"address":{"events":200,"bytes":262144},"over":"label"},"*":{"key":{"events":1000}}}"#,
    )
    .unwrap();
    assert!(all.is_enabled());
    let web = all.of(Some("web")).unwrap();
    assert_eq!(web.over, Over::Label);
    assert_eq!(web.describe(Scope::Address), "200 events or 262144 bytes");
    assert_eq!(all.of(Some("server")).unwrap().over, Over::Refuse);
    assert_eq!(all.of(None).unwrap().key.unwrap().events, Some(1000));
    assert!(!RateLimits::parse("{}").unwrap().is_enabled());
    for (bad, names) in [
        (r#"{"web":{"over":"label"}}"#, "web: names no budget"),
        (r#"{"web":{"key":{"events":0}}}"#, "above 0"),
        (r#"{"web":{"key":{}}}"#, "above 0"),
        (r#"{"web":{"key":{"event":5}}}"#, "web.key: unknown member \"event\""),
        (r#"{"web":{"keys":{"events":5}}}"#, "web: unknown member \"keys\""),
        (
            r#"{"web":{"key":{"events":-5}}}"#,
            "web.key.events: is not a whole number",
        ),
        (r#"{"web":{"key":{"events":5},"over":"drop"}}"#, "web.over"),
        ("[]", "is not a JSON object"),
    ] {
        let e = RateLimits::parse(bad).unwrap_err();
        assert!(e.contains(names), "{bad}: {e}");
    }
}

#[test]
fn the_expected_calls_are_the_share_of_the_budget_used() {
    let l = limits(r#"{"web":{"address":{"events":400,"bytes":100000}}}"#);
    let random = SeededRandom::new(7);
    let mut memory = Memory::default();
    let mut total = 0u64;
    let n = 20_000u64;
    for _ in 0..n {
        // One event of 500 bytes: max(1/400, 500/100000) = 0.005 → 0.5 calls.
        let c = plan(&l, Some("web"), Some("192.0.2.1"), &usage(1, 500), &mut memory, &random);
        total += c.iter().map(|c| u64::from(c.calls)).sum::<u64>();
    }
    let mean = total as f64 / n as f64;
    assert!((mean - 0.5).abs() < 0.02, "mean calls {mean}");
    // A request of half the budget: 50 calls, always.
    let at = Some("192.0.2.1");
    let c = plan(&l, Some("web"), at, &usage(200, 1000), &mut memory, &random);
    assert_eq!(c.iter().map(|c| c.calls).collect::<Vec<_>>(), [50]);
    // Larger than the whole budget: it costs the whole budget, no more.
    for big in [usage(401, 10), usage(1, 100_001), usage(5000, 10)] {
        let c = plan(&l, Some("web"), at, &big, &mut memory, &random);
        assert_eq!(c.iter().map(|c| c.calls).collect::<Vec<_>>(), [UNITS]);
    }
}

#[test]
fn a_flood_of_small_requests_is_held_to_the_budget_and_the_window_resets_it() {
    let l = limits(r#"{"web":{"address":{"events":300}}}"#);
    let random = SeededRandom::new(11);
    let (mut memory, mut windows) = (Memory::default(), Windows::default());
    let start = 1_700_000_000_000u64; // a window boundary
    let mut admitted = 0u64;
    for i in 0..3000u64 {
        let p = plan(
            &l,
            Some("web"),
            Some("198.51.100.7"),
            &usage(1, 300),
            &mut memory,
            &random,
        );
        if admit(p, &mut memory, &mut windows, start + i).is_ok() {
            admitted += 1;
        }
    }
    // 300 events a window, counted in 100 units of 3 events: within one unit.
    assert!((295..=305).contains(&admitted), "admitted {admitted} of 3000");
    // Another address with the same key is not held back.
    let p = plan(
        &l,
        Some("web"),
        Some("198.51.100.8"),
        &usage(1, 300),
        &mut memory,
        &random,
    );
    assert!(admit(p, &mut memory, &mut windows, start + 3001).is_ok());
    // The next window starts afresh.
    let next = window_end_ms(start + 3001);
    let p = plan(
        &l,
        Some("web"),
        Some("198.51.100.7"),
        &usage(100, 300),
        &mut memory,
        &random,
    );
    assert!(admit(p, &mut memory, &mut windows, next).is_ok());
    assert_eq!(retry_after_s(next), PERIOD_S);
    assert_eq!(retry_after_s(next + 9_001), 1);
}

#[test]
fn users_are_charged_by_their_ids_and_addresses_by_their_network() {
    let line = |event: &str| format!(r#"{{"v":1,"id":"x","received_at":1,"event_time":1,"event":{event}}}"#);
    let lines = vec![
        line(r#"{"event":"a","anonymous_id":"anon-1"}"#),
        line(r#"{"type":"track","anonymousId":"anon-2","userId":"u"}"#),
        line(r#"{"event":"a","anonymous_id":"anon-1"}"#),
        line(r#"{"event":"a"}"#),
    ];
    let u = Usage::of(&lines, true);
    assert_eq!(u.events, 4);
    assert_eq!(
        u.users.iter().map(|(id, n, _)| (id.as_str(), *n)).collect::<Vec<_>>(),
        vec![("anon-1", 2), ("anon-2", 1)]
    );
    assert!(Usage::of(&lines, false).users.is_empty());
    let l = limits(r#"{"web":{"user":{"events":2}}}"#);
    assert_eq!(
        plan(&l, Some("web"), None, &u, &mut Memory::default(), &SeededRandom::new(1)),
        vec![
            Charge {
                scope: Scope::User,
                counter: format!("u:web:{}", digest("anon-1")),
                calls: 100
            },
            Charge {
                scope: Scope::User,
                counter: format!("u:web:{}", digest("anon-2")),
                calls: 50
            },
        ]
    );
    assert_eq!(address_group("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
    assert_eq!(address_group("2001:db8:1:2:bbbb::9"), "2001:db8:1:2::/64");
    assert_eq!(address_group("::ffff:192.0.2.1"), "192.0.2.1");
    assert_eq!(address_group("192.0.2.1"), "192.0.2.1");
    let m = message(&l, Some("web"), Scope::User);
    assert_eq!(
        m,
        "rate limit: more than 2 events per 10 s for one anonymous or user id (RATE_LIMITS.web.user)"
    );
}

#[test]
fn an_isolate_forgets_spent_counters_when_their_window_ends_and_stays_bounded() {
    let mut d = Memory::default();
    d.spend("a", 5_000);
    assert!(d.is_spent("a", 9_999));
    assert!(!d.is_spent("a", 10_000));
    for i in 0..(DENIALS_KEPT + 10) {
        d.spend(&format!("c{i}"), 20_000);
    }
    assert!(d.until.len() <= DENIALS_KEPT);
}
