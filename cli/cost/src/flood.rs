//! What a flood costs: `N` requests a second from one write key, sustained
//! for an hour, on each path — with no limit (or `"over":"label"`, which
//! accepts it all), and with a key budget of `B` events per rate-limit window
//! answering the rest 429 (`RATE_LIMITS`, `shared::rate_limit`).
//!
//! What is let through is billed as any traffic is ([`bill_to`]: the whole
//! path, Firehose and the transform included), as the difference between a
//! month of it and an idle month, per hour. A refused request costs on the
//! edge a Worker request and its CPU (taken as a whole request's measured
//! CPU, an upper bound: a refusal reads no body and forwards nothing); on
//! the API Gateway path an API request and an `ingest-api` invocation
//! refusing it (its stage throttle answers 429 before Lambda when the flood
//! is past `ApiThrottleRate` for every client together); on a function URL
//! an invocation. The binding's counters are per Cloudflare location: a
//! flood from `L` locations gets `L` budgets.

use crate::bill::{MONTH_S, Path, bill_to};
use crate::destination::{Billed, Destination};
use crate::error::Result;
use crate::measured::Measured;
use crate::prices;
use crate::traffic::Shape;
use edgehose_shared::rate_limit::PERIOD_S;

/// Hours in the month the bill model uses.
const MONTH_HOURS: f64 = MONTH_S / 3600.0;

/// Billed milliseconds of an `ingest-api` invocation that only refuses
/// (Lambda bills whole milliseconds, at least one).
const REFUSAL_BILLED_MS: f64 = 1.0;

/// The flood.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Flood {
    /// Requests a second.
    pub requests_per_second: f64,
    /// The key's budget: events per rate-limit window ([`PERIOD_S`]).
    pub budget_events: f64,
    /// Cloudflare locations the flood reaches (each counts its own budget).
    pub locations: f64,
}

/// One path's hour of flood.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FloodBill {
    /// The path.
    pub path: Path,
    /// Dollars an hour with no limit (or `"over":"label"`).
    pub unlimited: f64,
    /// Dollars an hour with the budget, the rest refused.
    pub limited: f64,
    /// Of `limited`, what the refusals cost.
    pub refusals: f64,
    /// Requests refused an hour.
    pub refused_requests: f64,
    /// Events let through an hour.
    pub events_through: f64,
    /// Where Firehose delivers them.
    pub destination: Destination,
}

/// Dollars an hour of `events_per_hour` events through `path`, over an idle month's bill.
fn per_hour(path: Path, events_per_hour: f64, shape: Shape, measured: &Measured, to: Destination) -> Result<f64> {
    if events_per_hour <= 0.0 {
        return Ok(0.0);
    }
    let busy = bill_to(path, events_per_hour * MONTH_HOURS, shape, measured, to)?.total;
    let idle = bill_to(path, 1.0, shape, measured, to)?.total;
    Ok((busy - idle).max(0.0) / MONTH_HOURS)
}

/// The hour's bill of `flood` on `path`, Firehose delivering to `destination`.
pub fn flood_bill(
    path: Path,
    flood: Flood,
    shape: Shape,
    measured: &Measured,
    destination: Destination,
) -> Result<FloodBill> {
    let k = shape.events_per_request.max(1) as f64;
    let requests = flood.requests_per_second * 3600.0;
    let unlimited = per_hour(path, requests * k, shape, measured, destination)?;
    // Within the budget: at most a window's events per window and location;
    // a request larger than the budget still passes once a window.
    let budget_requests = (flood.budget_events / k).floor().max(1.0);
    let through_requests = requests.min(budget_requests * flood.locations * 3600.0 / PERIOD_S as f64);
    let events_through = through_requests * k;
    let refused_requests = requests - through_requests;
    let one = match path {
        p if p.is_edge() => {
            prices::WORKERS_REQUESTS.of(1.0)
                + prices::WORKERS_CPU.of(measured.edge_cpu_us_per_request.at(shape.events_per_request) / 1000.0)
        }
        Path::ApiGateway | Path::FunctionUrl => {
            let gb = measured.ingest_api_memory_mb / 1024.0;
            let lambda =
                prices::LAMBDA_REQUESTS.of(1.0) + prices::LAMBDA_ARM_DURATION.of(REFUSAL_BILLED_MS / 1000.0 * gb);
            lambda
                + if path == Path::ApiGateway {
                    prices::API_GATEWAY_REQUESTS.of(1.0)
                } else {
                    0.0
                }
        }
        _ => 0.0,
    };
    let refusals = refused_requests * one;
    Ok(FloodBill {
        path,
        unlimited,
        limited: per_hour(path, events_through, shape, measured, destination)? + refusals,
        refusals,
        refused_requests,
        events_through,
        destination,
    })
}

/// The table, for people.
pub fn render(bills: &[FloodBill], flood: Flood, shape: Shape) -> String {
    let mut t = format!(
        "A flood of {} requests a second from one key, {} event(s) of {} bytes each, for an hour; the key's budget {} events per {PERIOD_S} s window at each of {} Cloudflare location(s), the rest answered 429; Firehose destination: {}\n\n",
        flood.requests_per_second,
        shape.events_per_request,
        shape.event_bytes,
        flood.budget_events,
        flood.locations,
        bills.first().map_or(Destination::Json, |b| b.destination).describe(),
    );
    t.push_str("| path | no limit (or \"over\": \"label\") $/hour | with the limit $/hour | of it, the 429s | events let through | requests refused |\n|---|---|---|---|---|---|\n");
    for b in bills {
        t.push_str(&format!(
            "| {} | {:.2} | {:.2} | {:.2} | {} | {} |\n",
            b.path.key(),
            b.unlimited,
            b.limited,
            b.refusals,
            crate::bill::count(b.events_through),
            crate::bill::count(b.refused_requests),
        ));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> Shape {
        Shape {
            events_per_request: 1,
            event_bytes: 170,
            requests_per_window: 1,
        }
    }

    #[test]
    fn a_limit_lets_a_budget_through_and_the_rest_costs_only_its_refusals() {
        let m = Measured::built_in().unwrap();
        let flood = Flood {
            requests_per_second: 1000.0,
            budget_events: 1000.0,
            locations: 1.0,
        };
        for path in Path::ALL {
            let b = flood_bill(path, flood, shape(), &m, Destination::Json).unwrap();
            // 100 events a second get through: a tenth of the flood.
            assert!((b.events_through - 360_000.0).abs() < 1.0, "{b:?}");
            assert!((b.refused_requests - 3_240_000.0).abs() < 1.0, "{b:?}");
            assert!(b.limited < b.unlimited, "{b:?}");
            assert!(b.refusals > 0.0 && b.refusals < b.limited, "{b:?}");
        }
        // Under the budget, nothing is refused and the bill is the same.
        let calm = Flood {
            requests_per_second: 10.0,
            ..flood
        };
        let b = flood_bill(Path::EdgeDirect, calm, shape(), &m, Destination::Json).unwrap();
        assert_eq!(b.refused_requests, 0.0);
        assert!((b.limited - b.unlimited).abs() < 1e-9);
    }

    #[test]
    fn each_location_counts_its_own_budget() {
        let m = Measured::built_in().unwrap();
        let flood = |locations| Flood {
            requests_per_second: 10_000.0,
            budget_events: 100.0,
            locations,
        };
        let one = flood_bill(Path::EdgeQueue, flood(1.0), shape(), &m, Destination::Iceberg).unwrap();
        let ten = flood_bill(Path::EdgeQueue, flood(10.0), shape(), &m, Destination::Iceberg).unwrap();
        assert!((ten.events_through - 10.0 * one.events_through).abs() < 1.0);
    }
}
