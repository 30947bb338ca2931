//! Clicks come from browsers: a real Chromium (Debian's, driven by
//! puppeteer-core) loads pages from an origin of their own, and Segment's
//! browser SDK (`@segment/analytics-next`, unchanged), Snowplow's
//! (`@snowplow/browser-tracker`, unchanged) and the project's own
//! tracker (`tracker/edgehose.min.js`) post to the built edge Worker in
//! workerd, in front of the whole local pipeline (queue mode, firehose-local,
//! the real `transform`). Every event is looked up in the destination: each
//! lands exactly once, under its id, including those queued when the page
//! went away.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use edgehose_local::faults::FaultPlan;
use edgehose_local::tools;
use edgehose_tests::browser::{Pages, drive};
use edgehose_tests::local::{Destination, Local};
use serde_json::json;

const WRITE_KEY: &str = "wk_web_0123456789";

fn run_id() -> String {
    uuid::Uuid::new_v4().to_string()[..8].to_owned()
}

/// The pipeline, with `origin` the only one allowed to post.
fn local(name: &str, origin: &str) -> Local {
    Local::start(
        name,
        FaultPlan::default(),
        &[("WRITE_KEYS", &format!("web:{WRITE_KEY}")), ("ALLOWED_ORIGINS", origin)],
    )
}

/// Delivered lines whose `properties.run` is `run`, by their `n`.
fn by_run<'a>(d: &'a Destination, run: &str) -> Vec<(&'a String, &'a serde_json::Value)> {
    d.delivered
        .iter()
        .flat_map(|(id, copies)| copies.iter().map(move |c| (id, c)))
        .filter(|(_, c)| c["properties"]["run"] == run || c["traits"]["run"] == run)
        .collect()
}

fn statuses(seen: &serde_json::Value, method: &str) -> Vec<(String, u64)> {
    seen["responses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == method)
        .map(|r| {
            let url = r["url"].as_str().unwrap();
            let path = url
                .split("127.0.0.1:")
                .nth(1)
                .and_then(|r| r.find('/').map(|i| &r[i..]))
                .unwrap_or(url);
            (
                path.split('?').next().unwrap().to_owned(),
                r["status"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn segment_s_browser_sdk_delivers_track_page_and_identify_exactly_once() {
    let pages = Pages::start().unwrap();
    let p = local("analytics-next", pages.origin());
    let edge = p.edge.url().to_owned();
    let api_host = format!("{}/v1", edge.trim_start_matches("http://"));
    let mut sent = Vec::new();
    for strategy in ["standard", "batching"] {
        let run = run_id();
        let seen = drive(&json!({
            "scenario": "analytics-next",
            "endpoint": edge,
            "page": format!("{}/analytics-next.html?apiHost={api_host}&writeKey={WRITE_KEY}&run={run}&strategy={strategy}", pages.origin()),
        }))
        .unwrap();
        let calls = seen["calls"].as_array().unwrap();
        let types: Vec<&str> = calls.iter().map(|c| c["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["track", "page", "identify"], "{seen}");
        let posts = statuses(&seen, "POST");
        if strategy == "standard" {
            // One request per call on its short path, each answered 200
            // with CORS headers (the browser would report an error and the
            // SDK retry otherwise), after a preflight for its Authorization.
            for path in ["/v1/t", "/v1/p", "/v1/i"] {
                assert_eq!(
                    posts.iter().filter(|(p, s)| p == path && *s == 200).count(),
                    1,
                    "{path}: {seen}"
                );
            }
            assert!(statuses(&seen, "OPTIONS").iter().all(|(_, s)| *s == 204), "{seen}");
            // Its own usage metrics (`/m`, every second here) are answered too.
            assert!(posts.contains(&("/v1/m".to_owned(), 204)), "{seen}");
        } else {
            // Nothing was sent while the page was open: the batch left with
            // the page, in the SDK's keepalive flush on pagehide.
            assert_eq!(seen["sent_before_close"], 0, "{seen}");
        }
        // Nothing failed, but a metrics post the browser's shutdown cut off.
        let failed: Vec<&serde_json::Value> = seen["failed"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| !(f["url"].as_str().unwrap().ends_with("/v1/m") && f["error"] == "net::ERR_ABORTED"))
            .collect();
        assert!(failed.is_empty(), "{seen}");
        let errors: Vec<&serde_json::Value> = seen["console"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l.as_str().unwrap().starts_with("error"))
            .collect();
        assert!(errors.is_empty(), "the browser logged errors: {errors:?}");
        for c in calls {
            sent.push((
                strategy,
                c["type"].as_str().unwrap().to_owned(),
                c["id"].as_str().unwrap().to_owned(),
            ));
        }
    }
    let d = p.settle(|d| sent.iter().all(|(_, _, id)| d.delivered.contains_key(id)));
    for (strategy, call, id) in &sent {
        let copies = d.delivered.get(id).unwrap_or_else(|| {
            panic!(
                "{strategy} {call} {id} is not in the destination; rejected: {:?}",
                d.reasons(id)
            )
        });
        assert_eq!(copies.len(), 1, "{strategy} {call} {id} landed {} times", copies.len());
        let line = &copies[0];
        assert_eq!(
            (
                line["type"].as_str(),
                line["key_id"].as_str(),
                line["message_id"].as_str()
            ),
            (Some(call.as_str()), Some("web"), Some(id.as_str())),
            "{line}"
        );
        assert!(line["sent_at"].is_string(), "{line}");
        if call == "page" {
            assert!(
                line["context"]["page"]["url"]
                    .as_str()
                    .unwrap()
                    .starts_with(pages.origin()),
                "{line}"
            );
        }
    }
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
}

#[test]
fn the_tracker_delivers_every_event_once_including_those_left_at_unload() {
    let pages = Pages::start().unwrap();
    let p = local("tracker", pages.origin());
    let edge = p.edge.url().to_owned();
    let run = run_id();
    // A long interval: what is queued when the page closes is still queued.
    let page = format!(
        "{}/tracker.html?endpoint={edge}&writeKey={WRITE_KEY}&interval=60000",
        pages.origin()
    );
    let seen = drive(&json!({
        "scenario": "tracker",
        "endpoint": edge,
        "run": run,
        "page": page,
        "next": format!("{}/tracker.html", pages.origin()),
    }))
    .unwrap();
    assert_eq!(seen["flushed"], true, "{seen}");
    // The flushed three went in one fetch, with no preflight: text/plain,
    // the key in the query string, no custom header.
    assert_eq!(statuses(&seen, "POST"), [("/v1/events".to_owned(), 200)], "{seen}");
    assert!(statuses(&seen, "OPTIONS").is_empty(), "{seen}");
    // The two left at close went by beacon.
    assert!(seen["next"]["beacons"].as_u64().unwrap() >= 1, "{seen}");
    let anonymous_id = seen["next"]["anonymous_id"].as_str().unwrap().to_owned();
    assert_eq!(seen["next"]["user_id"], format!("user-{run}"), "{seen}");

    let d = p.settle(|d| by_run(d, &run).len() >= 5);
    let mut lines = by_run(&d, &run);
    lines.sort_by_key(|(_, l)| l["properties"]["n"].as_u64());
    let ns: Vec<u64> = lines
        .iter()
        .map(|(_, l)| l["properties"]["n"].as_u64().unwrap())
        .collect();
    assert_eq!(ns, [1, 2, 3, 4, 5], "every event exactly once: {lines:?}");
    let events: Vec<&str> = lines.iter().map(|(_, l)| l["event"].as_str().unwrap()).collect();
    assert_eq!(
        events,
        ["signup_click", "page", "identify", "pricing_view", "checkout_click"]
    );
    for (id, l) in &lines {
        // The tracker's own id is the event's id; one browser id throughout;
        // the user from identify on; the send time beside the event time.
        assert_eq!(l["message_id"].as_str(), Some(id.as_str()), "{l}");
        assert_eq!(id.len(), 36, "a UUID: {l}");
        assert_eq!(l["anonymous_id"], anonymous_id.as_str(), "{l}");
        assert_eq!(l["key_id"], "web", "{l}");
        assert!(l["sent_at"].is_string(), "{l}");
        let n = l["properties"]["n"].as_u64().unwrap();
        assert_eq!(l["user_id"].is_string(), n >= 3, "{l}");
    }
    let page_view = lines[1].1;
    assert_eq!(page_view["url"], page, "{page_view}");
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
}

#[test]
fn a_disallowed_origin_is_refused_and_the_tracker_does_not_retry() {
    let allowed = Pages::start().unwrap();
    let other = Pages::start().unwrap();
    let p = local("tracker-refused", allowed.origin());
    let edge = p.edge.url().to_owned();
    let run = run_id();
    let seen = drive(&json!({
        "scenario": "tracker-refused",
        "endpoint": edge,
        "run": run,
        "page": format!("{}/tracker.html?endpoint={edge}&writeKey={WRITE_KEY}", other.origin()),
        "wait_ms": 5000,
    }))
    .unwrap();
    assert_eq!(
        (&seen["flushed"], &seen["flushed_after"]),
        (&json!(false), &json!(false)),
        "{seen}"
    );
    // One request, refused with a 403 the page could read; then nothing,
    // for five seconds and after another event.
    assert_eq!(statuses(&seen, "POST"), [("/v1/events".to_owned(), 403)], "{seen}");
    let requests = seen["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 1, "{seen}");
    assert!(
        seen["console"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().contains("answered 403")),
        "{seen}"
    );
    // Nothing of it is anywhere in the pipeline.
    let _ = p.firehose.flush(std::time::Duration::from_secs(10));
    let d = p.destination();
    assert!(by_run(&d, &run).is_empty(), "{:?}", by_run(&d, &run));
    assert_eq!(p.firehose.stats().lines_received, 0);
}

/// The `message_id`s of the events in the bodies the flaky endpoint
/// answered 200, and how often each came.
fn delivered_ids(hits: &[edgehose_tests::browser::Hit]) -> std::collections::BTreeMap<String, usize> {
    let mut ids = std::collections::BTreeMap::new();
    for h in hits.iter().filter(|h| h.status == 200) {
        let batch: Vec<serde_json::Value> = serde_json::from_str(&h.body).unwrap();
        for e in batch {
            *ids.entry(e["message_id"].as_str().unwrap().to_owned()).or_insert(0) += 1;
        }
    }
    ids
}

#[test]
fn the_tracker_retries_one_batch_at_a_time_with_backoff_and_never_after_a_4xx() {
    let pages = Pages::start().unwrap();
    let origin = pages.origin().to_owned();
    // An endpoint that answers its first three requests 503: 25 events in
    // batches of 10 wait behind one batch's backoff, never all at once.
    let endpoint = format!("{origin}/flaky/503x3");
    let seen = drive(&json!({
        "scenario": "tracker-events",
        "endpoint": endpoint,
        "run": run_id(),
        "count": 25,
        "page": format!("{origin}/tracker.html?endpoint={endpoint}&interval=500&batch=10"),
        "wait_ms": 12000,
    }))
    .unwrap();
    let hits: Vec<_> = pages
        .hits()
        .into_iter()
        .filter(|h| h.endpoint == "/flaky/503x3")
        .collect();
    let statuses: Vec<u16> = hits.iter().map(|h| h.status).collect();
    assert_eq!(statuses, [503, 503, 503, 200, 200, 200], "{hits:?}\n{seen}");
    assert_eq!(seen["max_in_flight"], 1, "one request at a time: {seen}");
    // The failed attempts carried the same batch; it waited longer each
    // time on average (full jitter, so no single gap is bounded below).
    assert!(
        hits[..4].windows(2).all(|w| w[0].body.len() == w[1].body.len()),
        "{hits:?}"
    );
    let ids = delivered_ids(&hits);
    assert_eq!(ids.len(), 25, "{ids:?}");
    assert!(ids.values().all(|&n| n == 1), "each event once: {ids:?}");
    // A batch retried keeps its events' ids but carries a new `sent_at`.
    let first: Vec<serde_json::Value> = serde_json::from_str(&hits[0].body).unwrap();
    let landed: Vec<serde_json::Value> = serde_json::from_str(&hits[3].body).unwrap();
    assert_eq!(first[0]["message_id"], landed[0]["message_id"]);
    assert!(first[0]["sent_at"].as_str() < landed[0]["sent_at"].as_str());

    // A 400: dropped at once, never retried; flush says not everything landed.
    let endpoint = format!("{origin}/flaky/400x99");
    let seen = drive(&json!({
        "scenario": "tracker-events",
        "endpoint": endpoint,
        "run": run_id(),
        "count": 3,
        "flush": true,
        "page": format!("{origin}/tracker.html?endpoint={endpoint}&interval=500"),
        "wait_ms": 4000,
    }))
    .unwrap();
    assert_eq!(seen["flushed"], false, "{seen}");
    let hits: Vec<_> = pages
        .hits()
        .into_iter()
        .filter(|h| h.endpoint == "/flaky/400x99")
        .collect();
    assert_eq!(hits.len(), 1, "{hits:?}");
}

/// The statuses the edge gave a page's posts to `path`, in order.
fn answers(seen: &serde_json::Value, path: &str) -> Vec<u64> {
    statuses(seen, "POST")
        .into_iter()
        .filter(|(p, _)| p == path)
        .map(|(_, s)| s)
        .collect()
}

#[test]
fn both_browser_sdks_post_with_a_signed_token_and_wait_out_a_429_instead_of_dropping() {
    let pages = Pages::start().unwrap();
    let origin = pages.origin().to_owned();
    let secret = "browser-token-secret-0123456789-abcdef";
    let p = Local::start(
        "token-429",
        FaultPlan::default(),
        &[
            ("WRITE_KEYS", &format!("web:{WRITE_KEY}")),
            ("ALLOWED_ORIGINS", &origin),
            ("TOKEN_SECRETS", secret),
            ("TOKEN_REQUIRED_KEYS", "web"),
            ("RATE_LIMITS", r#"{"web":{"address":{"events":2}}}"#),
        ],
    );
    let edge = p.edge.url().to_owned();
    let expiry = edgehose_shared::timestamp::Timestamp::from_millis(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
            + 3_600_000,
    );
    let token = edgehose_shared::token::mint(secret.as_bytes(), "web", &origin, expiry);
    let api_host = format!("{}/v1", edge.trim_start_matches("http://"));
    // analytics-next, its writeKey the token: three calls in one window
    // whose budget is two events; the third is answered 429 and sent again
    // once Retry-After has passed.
    let run = run_id();
    let window_ms = edgehose_shared::rate_limit::PERIOD_S * 1000;
    let next = drive(&json!({
        "scenario": "analytics-next",
        "align_ms": window_ms,
        "endpoint": edge,
        "page": format!("{origin}/analytics-next.html?apiHost={api_host}&writeKey={token}&run={run}&strategy=standard"),
        "wait_ms": 12000,
    }))
    .unwrap();
    assert_eq!(
        (
            answers(&next, "/v1/t"),
            answers(&next, "/v1/p"),
            answers(&next, "/v1/i")
        ),
        (vec![200], vec![200], vec![429, 200]),
        "{next}"
    );
    // edgehose.js, its writeKey the token: three one-event batches in a
    // window of two; the third waits out the 429.
    let tracker_run = run_id();
    let tracker = drive(&json!({
        "scenario": "tracker-events",
        "align_ms": window_ms,
        "endpoint": edge,
        "run": tracker_run,
        "count": 3,
        "flush": true,
        "page": format!("{origin}/tracker.html?endpoint={edge}&writeKey={token}&interval=200&batch=1"),
        "wait_ms": 12000,
    }))
    .unwrap();
    assert_eq!(answers(&tracker, "/v1/events"), [200, 200, 429, 200], "{tracker}");
    // The 429 named its wait where the page may read it, and the tracker
    // sent again only once that had passed.
    let posts: Vec<&serde_json::Value> = tracker["responses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == "POST")
        .collect();
    assert_eq!(posts[2]["expose"], "retry-after", "{tracker}");
    let wait_ms = posts[2]["retry_after"].as_str().unwrap().parse::<i64>().unwrap() * 1000;
    let waited = posts[3]["at"].as_i64().unwrap() - posts[2]["at"].as_i64().unwrap();
    assert!(
        waited >= wait_ms - 1000,
        "waited {waited} ms of a Retry-After of {wait_ms} ms: {tracker}"
    );
    let ids: Vec<String> = next["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    let d = p.settle(|d| ids.iter().all(|id| d.delivered.contains_key(id)) && by_run(d, &tracker_run).len() == 3);
    for id in &ids {
        assert_eq!(d.delivered.get(id).map(Vec::len), Some(1), "{id}: {:?}", d.reasons(id));
    }
    let tracked = by_run(&d, &tracker_run);
    assert_eq!(tracked.len(), 3, "{tracked:?}");
    assert!(tracked.iter().all(|(_, line)| line["key_id"] == "web"), "{tracked:?}");
}

#[test]
fn the_committed_tracker_is_the_build_of_its_source() {
    let out = std::env::temp_dir().join(format!("edgehose-tracker-{}.min.js", run_id()));
    let status = std::process::Command::new(tools::repo_root().join("tools/build-tracker"))
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let built = std::fs::read(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    let committed = std::fs::read(tools::repo_root().join("tracker/edgehose.min.js")).unwrap();
    assert!(
        built == committed,
        "tracker/edgehose.min.js is not the build of tracker/edgehose.js: run tools/build-tracker"
    );
}

#[test]
fn snowplow_s_browser_tracker_delivers_its_events_once_with_one_visitor_id_and_the_one_at_unload() {
    let pages = Pages::start().unwrap();
    let p = Local::start(
        "snowplow-browser",
        FaultPlan::default(),
        &[
            ("WRITE_KEYS", &format!("web:{WRITE_KEY}")),
            ("ALLOWED_ORIGINS", pages.origin()),
            ("IDENTITY_COOKIE_DAYS", "30"),
        ],
    );
    let edge = p.edge.url().to_owned();
    let run = run_id();
    let seen = drive(&json!({
        "scenario": "snowplow",
        "endpoint": edge,
        "page": format!("{}/snowplow.html?collector={edge}&writeKey={WRITE_KEY}&run={run}", pages.origin()),
    }))
    .unwrap();
    // The tracker posts its events with a preflight (a JSON body and a
    // custom header), each answered 2xx: nothing for it to send again.
    let posts = statuses(&seen, "POST");
    assert!(!posts.is_empty(), "{seen}");
    assert!(
        posts
            .iter()
            .all(|(path, status)| path == "/com.snowplowanalytics.snowplow/tp2" && *status == 200),
        "{posts:?}\n{seen}"
    );
    let user = format!("user-{run}");
    let d = p.settle(|d| {
        let mine = d
            .delivered
            .values()
            .flatten()
            .filter(|l| l["user_id"] == user.as_str())
            .count();
        mine >= 4
    });
    let mine: Vec<(&String, &serde_json::Value)> = d
        .delivered
        .iter()
        .flat_map(|(id, copies)| copies.iter().map(move |c| (id, c)))
        .filter(|(_, l)| l["user_id"] == user.as_str())
        .collect();
    let mut events: Vec<&str> = mine.iter().map(|(_, l)| l["event"].as_str().unwrap()).collect();
    events.sort_unstable();
    assert_eq!(
        events,
        ["add-to-basket", "checkout", "leave", "page_view"],
        "{mine:#?}\n{seen}"
    );
    for (id, copies) in d.delivered.iter().filter(|(_, c)| c[0]["user_id"] == user.as_str()) {
        assert_eq!(copies.len(), 1, "{id} landed {} times", copies.len());
    }
    // The browser kept the cookie from the first answer and sent it back:
    // every event of the visit carries one id.
    let visitor: std::collections::BTreeSet<&str> = mine
        .iter()
        .map(|(_, l)| l["network_userid"].as_str().unwrap_or("none"))
        .collect();
    assert_eq!(visitor.len(), 1, "{visitor:?}");
    assert!(!visitor.contains("none"), "{mine:#?}");
    let (_, checkout) = mine.iter().find(|(_, l)| l["event"] == "checkout").unwrap();
    assert_eq!(checkout["properties"]["total"], 9.5, "{checkout}");
    let basket = checkout["contexts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["schema"] == "iglu:com.acme/basket/jsonschema/1-0-0");
    assert_eq!(basket.map(|e| &e["data"]["items"]), Some(&json!(3)), "{checkout}");
    p.remove();
}

#[test]
fn posthog_js_delivers_its_events_once_through_its_remote_configuration_and_the_ones_at_unload() {
    let pages = Pages::start().unwrap();
    let p = Local::start(
        "posthog-browser",
        FaultPlan::default(),
        &[
            ("WRITE_KEYS", &format!("web:{WRITE_KEY}")),
            ("ALLOWED_ORIGINS", pages.origin()),
        ],
    );
    let edge = p.edge.url().to_owned();
    let run = run_id();
    let seen = drive(&json!({
        "scenario": "posthog",
        "endpoint": edge,
        "page": format!("{}/posthog.html?collector={edge}&token={WRITE_KEY}&run={run}", pages.origin()),
    }))
    .unwrap();
    // posthog-js loads its configuration from the collector and asks for
    // flags, then posts its batches to /e/ (gzip-js, as the configuration
    // asks), each answered 200: nothing for it to send again.
    let gets = statuses(&seen, "GET");
    assert!(
        gets.contains(&(format!("/array/{WRITE_KEY}/config"), 200)),
        "{gets:?}\n{seen}"
    );
    let posts = statuses(&seen, "POST");
    assert!(posts.iter().any(|(path, _)| path == "/e/"), "{seen}");
    assert!(
        posts
            .iter()
            .all(|(path, status)| (path == "/e/" || path == "/flags/") && *status == 200),
        "{posts:?}\n{seen}"
    );
    // Its console stays quiet: no request failed, nothing dropped.
    assert_eq!(seen["failed"], json!([]), "{seen}");
    let mine = |d: &edgehose_tests::local::Destination| -> Vec<(String, serde_json::Value)> {
        d.delivered
            .iter()
            .flat_map(|(id, copies)| copies.iter().map(move |c| (id.clone(), c.clone())))
            .filter(|(_, l)| l["properties"]["run"] == run.as_str())
            .collect()
    };
    let expected = [
        "$identify",
        "$pageleave",
        "$pageview",
        "add to basket",
        "checkout",
        "leave",
    ];
    let d = p.settle(|d| mine(d).len() >= expected.len());
    let mine = mine(&d);
    let mut events: Vec<&str> = mine.iter().map(|(_, l)| l["event"].as_str().unwrap()).collect();
    events.sort_unstable();
    assert_eq!(events, expected, "{mine:#?}\n{seen}");
    for (id, l) in &mine {
        assert_eq!(d.delivered[id].len(), 1, "{id} landed {} times", d.delivered[id].len());
        assert_eq!(l["key_id"], "web", "{l}");
        assert!(l["tracker"].as_str().is_some_and(|t| t.starts_with("web/")), "{l}");
        assert!(l["url"].as_str().is_some_and(|u| u.contains("/posthog.html")), "{l}");
        assert!(l["session_id"].is_string(), "{l}");
        assert!(
            l["properties"].get("token").is_none(),
            "the token is the write key, never kept: {l}"
        );
    }
    // The visitor's events before identify carry its anonymous id; after, its user id.
    let line = |event: &str| &mine.iter().find(|(_, l)| l["event"] == event).unwrap().1;
    assert_eq!(line("checkout")["distinct_id"], format!("user-{run}"));
    assert_eq!(line("$identify")["traits"]["plan"], "pro", "{}", line("$identify"));
    assert_ne!(line("add to basket")["distinct_id"], format!("user-{run}"));
    assert_eq!(line("add to basket")["properties"]["total"], 9.5);
    assert_eq!(d.rejected.len(), 0, "{:?}", d.rejected);
    p.remove();
}
