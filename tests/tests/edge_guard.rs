//! The public write path under abuse, in the real runtime: Miniflare's own
//! Rate Limiting binding behind the built Worker, firehose-local running the
//! transform with the template's partitioned prefixes. A flood from one key
//! and address is refused 429 (or labelled `limited` into its own table)
//! while other addresses' events all land; the window resets; bot signals
//! from `request.cf` (set as Miniflare lets a test set it, the `MF-CF-Blob`
//! header) and from user agents label events and route them; every limited
//! and labelled event is counted and found where its lane leads.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::collections::BTreeMap;
use std::time::Duration;

use edgehose_local::faults::FaultPlan;
use edgehose_local::http::Response;
use edgehose_shared::rate_limit::PERIOD_S;
use edgehose_tests::events::{at_a_window_start, post};
use edgehose_tests::local::Local;

const WEB: &str = "wk_web_guard_0123";
const APP: &str = "wk_app_guard_0123";
const ADMIN: &str = "admin-key-guard-0123456789";

fn start(name: &str) -> Local {
    Local::start(
        name,
        FaultPlan::default(),
        &[
            ("PARTITIONING", "true"),
            ("WRITE_KEYS", &format!("web:{WEB},app:{APP}")),
            ("ADMIN_KEY", ADMIN),
            (
                "RATE_LIMITS",
                r#"{"web":{"address":{"events":20}},"app":{"address":{"events":20},"over":"label"}}"#,
            ),
            ("BOT_ROUTES", r#"{"web":{"bot":"bots","tool":"quarantine"}}"#),
        ],
    )
}

fn send(l: &Local, key: &str, id: &str, headers: &[(&str, &str)]) -> Response {
    let body = format!(r#"{{"event":"guard","message_id":"{id}"}}"#);
    let mut all = vec![("x-edgehose-key", key), ("content-type", "application/json")];
    all.extend_from_slice(headers);
    post(l.edge.url(), body.as_bytes(), &all)
}

/// The isolate's outcome totals (`/healthz` with the admin key).
fn outcomes(l: &Local) -> serde_json::Value {
    let request = http::Request::get(format!("{}/healthz", l.edge.url().trim_end_matches('/')))
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Vec::new())
        .unwrap();
    let r = edgehose_local::http::send(request).unwrap();
    serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["isolate"]["outcomes"].clone()
}

/// Every object's lines by the table (the prefix's first folder) it lies under.
fn tables(l: &Local) -> BTreeMap<String, Vec<serde_json::Value>> {
    let mut out: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    for path in edgehose_local::aws::firehose::store::objects(&l.dir) {
        let rel = path.strip_prefix(&l.dir).unwrap().to_string_lossy().into_owned();
        let table = rel.split('/').next().unwrap_or_default().to_owned();
        if rel.starts_with('.') || rel.ends_with(".log") || table == "processing-failed" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines = text.lines().filter_map(|line| serde_json::from_str(line).ok());
        out.entry(table).or_default().extend(lines);
    }
    out
}

#[test]
fn a_flood_from_one_address_is_refused_or_labelled_while_everyone_else_lands_and_the_window_resets() {
    let l = start("limits");
    at_a_window_start();
    // The flood: 30 one-event requests from one address, with each key,
    // against a budget of 20 events a window; a second address
    let mut web = Vec::new();
    let (mut app, mut other) = (Vec::new(), Vec::new());
    for i in 0..30 {
        web.push(send(
            &l,
            WEB,
            &format!("web-flood-{i}"),
            &[("cf-connecting-ip", "203.0.113.1")],
        ));
        app.push(send(
            &l,
            APP,
            &format!("app-flood-{i}"),
            &[("cf-connecting-ip", "203.0.113.3")],
        ));
        if i % 3 == 0 {
            other.push(send(
                &l,
                WEB,
                &format!("web-other-{i}"),
                &[("cf-connecting-ip", "203.0.113.2")],
            ));
        }
    }
    let statuses = |rs: &[Response]| rs.iter().map(|r| r.status).collect::<Vec<_>>();
    let web_ok = web.iter().take_while(|r| r.status == 200).count();
    assert_eq!(web_ok, 20, "{:?}\n{}", statuses(&web), l.edge.log());
    assert!(web[20..].iter().all(|r| r.status == 429), "{:?}", statuses(&web));
    let refusal: serde_json::Value = serde_json::from_slice(&web[29].body).unwrap();
    assert_eq!(refusal["code"], "rate_limited");
    let message = refusal["message"].as_str().unwrap();
    assert!(
        message.starts_with("rate limit: more than 20 events per 10 s from one address (RATE_LIMITS.web.address)"),
        "{message}"
    );
    let retry_after: u64 = web[29].header("retry-after").unwrap().parse().unwrap();
    assert!((1..=PERIOD_S).contains(&retry_after), "{retry_after}");
    assert!(statuses(&app).iter().all(|&s| s == 200), "{:?}", statuses(&app));
    assert!(statuses(&other).iter().all(|&s| s == 200), "{:?}", statuses(&other));
    // The next window takes the flooding address's events again.
    std::thread::sleep(Duration::from_secs(retry_after));
    assert_eq!(
        send(&l, WEB, "web-after", &[("cf-connecting-ip", "203.0.113.1")]).status,
        200
    );

    // Everything answered 200 lands; past the limit, the labelling key's
    // events land in the limited table, labelled.
    let accepted = 20 + 30 + other.len() + 1;
    let d = l.settle(|d| d.delivered.len() >= accepted);
    assert_eq!(d.delivered.len(), accepted, "{}", l.edge.log());
    assert!((20..30).all(|i| !d.delivered.contains_key(&format!("web-flood-{i}"))));
    let t = tables(&l);
    let limited = &t["limited"];
    assert_eq!(limited.len(), 10, "{:?}", t.keys().collect::<Vec<_>>());
    assert!(
        limited
            .iter()
            .all(|v| v["id"].as_str().unwrap().starts_with("app-flood-"))
    );
    assert!(limited.iter().all(|v| v["label"]["limited"] == "address"));
    assert_eq!(t["events"].len(), accepted - 10);

    // Counted: the 429s as refused, the labelled as limited.
    let o = outcomes(&l);
    assert_eq!(o["refused"], 10, "{o}");
    assert_eq!(o["limited"], 10, "{o}");
    assert_eq!(o["accepted"], accepted, "{o}");
    l.remove();
}

/// A request's extra headers.
type Headers = Vec<(&'static str, String)>;

#[test]
fn bot_signals_from_cloudflare_and_user_agents_label_events_and_the_keys_routes_send_them_their_way() {
    let l = start("bots");
    let cf = |blob: &str| [("mf-cf-blob", blob.to_owned())];
    let bot = cf(r#"{"botManagement":{"score":2,"verifiedBot":false},"country":"DE","colo":"FRA"}"#);
    let verified =
        cf(r#"{"botManagement":{"score":95,"verifiedBot":true},"verifiedBotCategory":"Search Engine Crawler"}"#);
    let human = cf(r#"{"botManagement":{"score":90,"verifiedBot":false}}"#);
    let h = |pairs: &[(&'static str, String)]| -> Headers { pairs.to_vec() };
    let cases: Vec<(&str, &str, Headers)> = vec![
        ("web-bot", WEB, h(&bot)),
        ("web-verified", WEB, h(&verified)),
        ("web-human", WEB, h(&human)),
        ("web-curl", WEB, vec![("user-agent", "curl/8.5.0".to_owned())]),
        (
            "web-headless",
            WEB,
            vec![(
                "user-agent",
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36"
                    .to_owned(),
            )],
        ),
        // The app key routes nothing: its bots are kept, labelled.
        ("app-curl", APP, vec![("user-agent", "curl/8.5.0".to_owned())]),
    ];
    for (id, key, headers) in &cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = send(&l, key, id, &headers);
        assert_eq!(r.status, 200, "{id}: {}", r.text());
    }
    let d = l.settle(|d| d.delivered.len() + d.rejected.len() >= cases.len());
    let t = tables(&l);
    let in_table = |table: &str, id: &str| {
        t.get(table)
            .into_iter()
            .flatten()
            .find(|v| v["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} is not in {table}: {t:?}"))
    };
    let v = in_table("bots", "web-bot");
    assert_eq!(
        (v["label"]["bot"].as_str(), v["label"]["score"].as_u64()),
        (Some("bot"), Some(2))
    );
    assert_eq!(v["label"]["signal"], "cf.bot_score");
    assert_eq!(
        in_table("bots", "web-headless")["label"]["signal"],
        "user_agent:headless_chrome"
    );
    assert_eq!(in_table("events", "web-verified")["label"]["bot"], "verified");
    assert_eq!(in_table("events", "web-human").get("label"), None);
    assert_eq!(in_table("events", "app-curl")["label"]["bot"], "tool");
    // Quarantined: under the error prefix as a rejected line, reason bot.
    assert_eq!(d.reasons("web-curl"), ["bot"], "{d:?}");
    assert!(!d.delivered.contains_key("web-curl"));
    let o = outcomes(&l);
    assert_eq!(o["labelled"], 5, "{o}");
    assert_eq!(o["accepted"], cases.len(), "{o}");
    l.remove();
}
