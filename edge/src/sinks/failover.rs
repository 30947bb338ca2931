//! This isolate's view of each region's home sink (`shared::failover`
//! decides): where a send goes, what home answered, and each turn logged
//! and counted (`GET /healthz` shows them under `failover`).

use std::cell::RefCell;
use std::collections::BTreeMap;

use edgehose_shared::failover::{FailoverPolicy, Health, Target, Turn};
use worker::console_error;

use crate::clock::now;

/// A region's state here, and its turns so far.
#[derive(Default)]
struct Region {
    health: Health,
    failed_over: u64,
    returned: u64,
}

thread_local! {
    static REGIONS: RefCell<BTreeMap<String, Region>> = const { RefCell::new(BTreeMap::new()) };
}

/// Where a send of `region`'s events goes now.
pub fn target(region: &str, policy: FailoverPolicy) -> Target {
    let now_ms = now().as_millis();
    REGIONS.with(|r| {
        r.borrow()
            .get(region)
            .map_or(Target::Home, |s| s.health.target(now_ms, policy))
    })
}

/// Records what `region`'s home answered (`landed`: all of a send); logs
/// and counts a turn. Whether this isolate is failed over after it.
pub fn record(region: &str, policy: FailoverPolicy, landed: bool, standby: &str) -> bool {
    let now_ms = now().as_millis();
    REGIONS.with(|r| {
        let mut regions = r.borrow_mut();
        let state = regions.entry(region.to_owned()).or_default();
        match state.health.record_home(landed, now_ms, policy) {
            Some(Turn::FailedOver { failing_ms }) => {
                state.failed_over += 1;
                console_error!(
                    "edgehose: region {region}: its sink has failed for {failing_ms} ms (FAILOVER_AFTER_MS {}): this isolate sends its events to the standby ({standby}), trying home every {} ms",
                    policy.after_ms,
                    policy.probe_ms
                );
            }
            Some(Turn::Returned { away_ms }) => {
                state.returned += 1;
                console_error!("edgehose: region {region}: its sink answers again: back home after {away_ms} ms on the standby");
            }
            None => {}
        }
        state.health.failed_over()
    })
}

/// Each region's state in this isolate, as JSON members for `GET /healthz`:
/// `"eu":{"on":"standby","failed_over":1,"returned":0}`.
pub fn report() -> String {
    REGIONS.with(|r| {
        r.borrow()
            .iter()
            .map(|(name, s)| {
                let on = if s.health.failed_over() { "standby" } else { "home" };
                format!(
                    r#""{name}":{{"on":"{on}","failed_over":{},"returned":{}}}"#,
                    s.failed_over, s.returned
                )
            })
            .collect::<Vec<_>>()
            .join(",")
    })
}
