//! Residency routing at the edge: two regions, each a firehose-local of its
//! own (its stream, transform and destination), the built Worker in workerd
//! routing by `REGIONS` on `request.cf.country` (set per request the way
//! Miniflare lets a test set it). A German and a French visitor's events
//! land in the EU region only, without what the EU's policy strips and with
//! what it hashes; an American visitor's land in the US region as sent.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use edgehose_tests::regions::{Regions, cf_blob};
use edgehose_tests::requests::request;

const POLICY: &str = "eu: EEA; us: *";

fn track(id: &str, user: &str) -> String {
    format!(
        r#"{{"type":"track","event":"Checkout","messageId":"{id}","userId":"{user}","context":{{"ip":"203.0.113.9","locale":"de-DE"}},"properties":{{"total":9.5}}}}"#
    )
}

fn run(mode: &str) {
    let p = Regions::start(
        &format!("residency-{mode}"),
        &[("eu", "eu-central-1"), ("us", "us-east-1")],
        POLICY,
        &[
            ("FORWARD_MODE", mode),
            ("EU_STRIP", "context.ip"),
            ("EU_HASH", "userId"),
            ("EU_HASH_SECRET", "a-region-secret-0123456789"),
        ],
    );
    let url = format!("{}/v1/track", p.edge.url());
    let visitors = [
        ("de", "DE"),
        ("fr", "FR"),
        ("no", "NO"),
        ("us", "US"),
        ("unknown", "T1"),
    ];
    for (who, country) in visitors {
        let blob = cf_blob(country);
        let r = request(
            "POST",
            &url,
            &[("content-type", "application/json"), ("mf-cf-blob", &blob)],
            track(&format!("{mode}-{who}"), &format!("user-{who}")).as_bytes(),
        );
        assert_eq!(r.status, 200, "{who}: {}", r.text());
    }
    let home = |who: &str| if matches!(who, "de" | "fr" | "no") { "eu" } else { "us" };
    let d = p.settle(|d| {
        visitors
            .iter()
            .all(|(who, _)| d[home(who)].delivered.contains_key(&format!("{mode}-{who}")))
    });
    for (who, _) in visitors {
        let id = format!("{mode}-{who}");
        let (here, other) = if home(who) == "eu" { ("eu", "us") } else { ("us", "eu") };
        let copies = d[here].delivered.get(&id).unwrap_or_else(|| {
            panic!(
                "{id} is not in region {here}: {:?}; eu holds {:?}, us {:?}\n{}",
                d[here].reasons(&id),
                d["eu"].delivered.keys().collect::<Vec<_>>(),
                d["us"].delivered.keys().collect::<Vec<_>>(),
                p.edge.log()
            )
        });
        assert_eq!(copies.len(), 1, "{id} landed {} times", copies.len());
        assert!(
            !d[other].delivered.contains_key(&id),
            "{id} left its region for {other}"
        );
        assert!(!d[other].rejected.contains_key(&id), "{id} left its region for {other}");
        let line = &copies[0];
        if here == "eu" {
            // What the EU's policy takes out never leaves the edge; the user id
            // leaves only as its keyed hash, the same for every event of the user.
            assert!(line["context"].get("ip").is_none(), "{line}");
            assert_eq!(line["context"]["locale"], "de-DE", "{line}");
            let hashed = line["user_id"].as_str().unwrap();
            assert!(hashed.len() == 64 && hashed != format!("user-{who}"), "{line}");
        } else {
            assert_eq!(line["context"]["ip"], "203.0.113.9", "{line}");
            assert_eq!(line["user_id"], format!("user-{who}"), "{line}");
        }
    }
    for region in ["eu", "us"] {
        assert!(
            d[region].dead_letters.is_empty(),
            "{region}: {:?}",
            d[region].dead_letters
        );
    }
    p.remove();
}

#[test]
fn each_visitor_s_events_land_in_their_region_only_as_its_policy_allows() {
    // Queue mode (each region's own queues) and direct mode (one isolate's
    // window of both regions, split at the flush), side by side.
    std::thread::scope(|s| {
        let queue = s.spawn(|| run("queue"));
        let direct = s.spawn(|| run("direct"));
        queue.join().unwrap();
        direct.join().unwrap();
    });
}

#[test]
fn a_regions_dead_letters_stay_in_its_archive_and_redrive_brings_them_back_to_it() {
    let admin = "admin-key-residency-0123456789";
    let p = Regions::start(
        "residency-dead-letters",
        &[("eu", "eu-west-1"), ("us", "us-east-1")],
        POLICY,
        &[
            ("ADMIN_KEY", admin),
            ("QUEUE_DELIVERY_ATTEMPTS", "1"),
            ("RETRY_BUDGET_MS", "2000"),
        ],
    );
    // The EU region's Firehose fails every call; the US one is well.
    p.region("eu")
        .firehose
        .set_faults(edgehose_local::faults::FaultPlan {
            errors: 1.0,
            ..Default::default()
        })
        .unwrap();
    let url = format!("{}/v1/track", p.edge.url());
    for (id, country) in [("dl-de", "DE"), ("dl-us", "US")] {
        let blob = cf_blob(country);
        let r = request(
            "POST",
            &url,
            &[("content-type", "application/json"), ("mf-cf-blob", &blob)],
            track(id, "u1").as_bytes(),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let archived =
        |d: &std::collections::BTreeMap<String, edgehose_tests::local::Destination>, region: &str, id: &str| {
            d[region]
                .dead_letters
                .iter()
                .any(|l| l.contains(&format!(r#""id":"{id}""#)))
        };
    let d = p.settle(|d| archived(d, "eu", "dl-de") && d["us"].delivered.contains_key("dl-us"));
    assert!(archived(&d, "eu", "dl-de"), "the EU event is in the EU archive: {d:?}");
    assert!(!archived(&d, "us", "dl-de"), "and in no other");
    assert!(d["us"].dead_letters.is_empty(), "{:?}", d["us"].dead_letters);

    // The EU region is back: redrive sends its archive to its own sink.
    p.region("eu").firehose.set_faults(Default::default()).unwrap();
    let auth = format!("Bearer {admin}");
    let redrive = format!("{}/v1/redrive", p.edge.url());
    let mut left = u64::MAX;
    for _ in 0..10 {
        let r = request("POST", &redrive, &[("authorization", &auth)], b"");
        assert_eq!(r.status, 200, "{}", r.text());
        let v: serde_json::Value = serde_json::from_str(&r.text()).unwrap();
        assert!(v["regions"]["eu"].is_object(), "each region's figures: {v}");
        left = v["archived_objects"].as_u64().unwrap();
        if left == 0 {
            break;
        }
    }
    assert_eq!(left, 0);
    let d = p.settle(|d| d["eu"].delivered.contains_key("dl-de"));
    assert_eq!(d["eu"].delivered["dl-de"].len(), 1);
    assert!(
        !d["us"].delivered.contains_key("dl-de"),
        "redriven to its own region only"
    );
    p.remove();
}

/// Posts one event of `id` from `country`.
fn visit(p: &Regions, id: &str, country: &str) {
    let blob = cf_blob(country);
    let r = request(
        "POST",
        &format!("{}/v1/track", p.edge.url()),
        &[("content-type", "application/json"), ("mf-cf-blob", &blob)],
        track(id, "u1").as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn a_failing_region_fails_over_to_its_standby_in_the_eu_and_returns_losing_nothing() {
    use edgehose_local::faults::FaultPlan;
    let p = Regions::start(
        "residency-failover",
        &[("eu", "eu-central-1"), ("eu2", "eu-west-1"), ("us", "us-east-1")],
        "eu: EEA; eu2: ; us: *",
        &[
            ("EU_STANDBY", "eu2"),
            ("EU_FAILOVER_AFTER_MS", "2000"),
            ("EU_PROBE_MS", "1000"),
            ("RETRY_BUDGET_MS", "1000"),
        ],
    );
    let down = FaultPlan {
        errors: 1.0,
        ..Default::default()
    };
    let every = std::time::Duration::from_millis(250);
    let mut sent: Vec<String> = Vec::new();
    let mut send = |phase: &str, n: usize| {
        let ids: Vec<String> = (0..n).map(|k| format!("{phase}-{k}")).collect();
        for id in &ids {
            visit(&p, id, "DE");
            std::thread::sleep(every);
        }
        sent.extend(ids.iter().cloned());
        ids
    };
    let home = send("before", 3);
    let landed_once = |d: &std::collections::BTreeMap<String, edgehose_tests::local::Destination>, id: &str| {
        d["eu"].delivered.get(id).map_or(0, Vec::len) + d["eu2"].delivered.get(id).map_or(0, Vec::len) == 1
    };
    p.settle(|d| home.iter().all(|id| d["eu"].delivered.contains_key(id)));
    // The EU region's Firehose fails for longer than FAILOVER_AFTER_MS.
    p.region("eu").firehose.set_faults(down.clone()).unwrap();
    send("outage", 24);
    // It answers again: a probe finds it, and the isolate comes back.
    p.region("eu").firehose.set_faults(FaultPlan::default()).unwrap();
    send("recovered", 12);
    let after = send("after", 4);
    let d = p.settle(|d| sent.iter().all(|id| landed_once(d, id)));
    for id in &sent {
        assert!(
            landed_once(&d, id),
            "{id}: eu {:?}, eu2 {:?}",
            d["eu"].delivered.get(id),
            d["eu2"].delivered.get(id)
        );
        assert!(!d["us"].delivered.contains_key(id), "{id} left the EU");
    }
    let on_standby = sent.iter().filter(|id| d["eu2"].delivered.contains_key(*id)).count();
    assert!(on_standby > 0, "nothing went to the standby\n{}", p.edge.log());
    for id in &after {
        assert!(
            d["eu"].delivered.contains_key(id),
            "{id} is not home after the return\n{}",
            p.edge.log()
        );
    }
    let log = p.edge.log();
    assert!(log.contains("sends its events to the standby (firehose)"), "{log}");
    assert!(log.contains("its sink answers again: back home"), "{log}");
    // It moved once home had failed for the threshold, within one consumer
    // window more (a batch's wait and one send's retry budget, 1 s each),
    // with slack for a busy machine.
    let failing_ms: u64 = log
        .split("its sink has failed for ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no failover line: {log}"));
    assert!(
        (2_000..2_000 + 5_000).contains(&failing_ms),
        "failed over after {failing_ms} ms\n{log}"
    );
    // The receipts show where they landed: the region, or its standby.
    let out = std::process::Command::new(edgehose_tests::workspace_binary("edgehose"))
        .args([
            "receipts",
            "--url",
            p.edge.url(),
            "--since",
            "20m",
            "--settle",
            "0s",
            "--json",
        ])
        .args([
            "--logs-endpoint",
            p.region("eu").firehose.url(),
            "--region",
            "eu-central-1",
        ])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("receipts: {e}: {}", String::from_utf8_lossy(&out.stderr)));
    let delivered = |reason: &str| -> u64 {
        report["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["reasons"]["delivered"][reason].as_u64().unwrap_or(0))
            .sum()
    };
    assert!(delivered("standby:eu2") >= on_standby as u64, "{report}");
    assert!(delivered("eu") >= (sent.len() - on_standby) as u64, "{report}");

    // Every EU sink down: an EU visitor's event waits in the EU (on its
    // queue) rather than go anywhere else, and lands once one is back.
    p.region("eu").firehose.set_faults(down.clone()).unwrap();
    p.region("eu2").firehose.set_faults(down).unwrap();
    visit(&p, "stranded", "DE");
    std::thread::sleep(std::time::Duration::from_secs(5));
    let d = p.destinations();
    assert!(!d["us"].delivered.contains_key("stranded") && !landed_once(&d, "stranded"));
    p.region("eu").firehose.set_faults(FaultPlan::default()).unwrap();
    p.region("eu2").firehose.set_faults(FaultPlan::default()).unwrap();
    let d = p.settle(|d| landed_once(d, "stranded"));
    assert!(landed_once(&d, "stranded") && !d["us"].delivered.contains_key("stranded"));
    p.remove();
}
