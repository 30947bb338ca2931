//! The bill model behind `edgehose cost` and `make bench-cost`: the whole
//! monthly bill of each path, line by line, from
//! the dated price table (`prices.rs`), the quantities the project's own
//! packing code produces (`traffic.rs`) and the times its benchmarks
//! measured (`measured.rs`, rewritten by `make bench-cost`), for JSON objects
//! in S3 or Iceberg tables (`destination.rs`).

pub mod bill;
pub mod chart;
pub mod destination;
pub mod error;
pub mod flood;
pub mod measured;
pub mod prices;
pub mod traffic;

use bill::{Bill, Path, bill_to, count};
use destination::{Billed, Destination};
use measured::Measured;
use traffic::Shape;

/// Events per request the chart is drawn at.
pub const CHART_SIZES: [usize; 8] = [1, 2, 5, 10, 20, 50, 100, 200];

/// Each path's dollars per million at each of [`CHART_SIZES`], delivering
/// JSON objects.
pub fn curve(paths: &[Path], events: f64, shape: Shape, measured: &Measured) -> error::Result<Vec<chart::Line>> {
    curve_to(paths, events, shape, measured, Destination::Json)
}

/// Each path's dollars per million at each of [`CHART_SIZES`], delivering
/// to `destination`.
pub fn curve_to(
    paths: &[Path],
    events: f64,
    shape: Shape,
    measured: &Measured,
    destination: Destination,
) -> error::Result<Vec<chart::Line>> {
    paths
        .iter()
        .map(|&p| {
            let points = CHART_SIZES
                .iter()
                .map(|&k| {
                    let s = Shape {
                        events_per_request: k,
                        ..shape
                    };
                    bill_to(p, events, s, measured, destination).map(|b| (k as f64, b.per_million()))
                })
                .collect::<error::Result<_>>()?;
            Ok((p, points))
        })
        .collect()
}

/// The chart's title.
pub fn chart_title(events: f64, shape: Shape) -> String {
    format!(
        "Whole bill per million {}-byte events, {} events a month, {} request(s) per isolate window",
        shape.event_bytes,
        count(events),
        shape.requests_per_window
    )
}

/// The summary and every path's line items, for people (Markdown tables).
pub fn render(bills: &[Bill], shape: Shape, measured: &Measured) -> String {
    let mut t = format!(
        "{} events a month, {} per request, {} bytes each, {} request(s) per edge isolate window; Firehose destination: {}; prices read {} (AWS us-east-1, Workers Paid); measured {} on {} ({})\n\n",
        bills.first().map_or("0".into(), |b| count(b.events)),
        shape.events_per_request,
        shape.event_bytes,
        shape.requests_per_window,
        bills.first().map_or(Destination::Json, |b| b.destination).describe(),
        prices::READ_ON,
        measured.date,
        measured.machine,
        measured.command
    );
    t.push_str(&summary(bills));
    for b in bills {
        t.push_str(&format!("\n{}: ${:.2} a month\n\n", b.path.describe(), b.total));
        t.push_str("| line | quantity | price | US$ a month | from |\n|---|---|---|---|---|\n");
        for i in &b.items {
            t.push_str(&format!(
                "| {} | {} {} | ${} per {} | {:.2} | {} |\n",
                i.price.item,
                count(i.quantity),
                i.price.unit,
                i.price.usd,
                count(i.price.per),
                i.usd,
                i.from
            ));
        }
        if let Some(usd) = accounting_per_million(b) {
            let share = 100.0 * usd / b.per_million();
            // The target is set for the default mode at 20 requests a window.
            let target = if b.path == Path::EdgeQueueWindow && shape.requests_per_window == 20 {
                format!(
                    "; target under 5% in this mode at 20 requests a window: {}",
                    if share < 5.0 { "met" } else { "missed" }
                )
            } else {
                String::new()
            };
            t.push_str(&format!(
                "\nEvery event accounted for (outcome counts and receipts): ${usd:.4} per million events at list price (before included allowances), {share:.1}% of this path's ${:.3}{target}\n",
                b.per_million()
            ));
        }
    }
    t
}

/// What keeping every event's account costs (the edge's outcome counts,
/// the transform's receipts) per million events at list price, before the
/// plan's included allowances; `None` on paths without it.
pub fn accounting_per_million(b: &Bill) -> Option<f64> {
    let items = [
        prices::ANALYTICS_ENGINE_POINTS.item,
        prices::CLOUDWATCH_LOGS_INGESTION.item,
    ];
    let usd: f64 = b
        .items
        .iter()
        .filter(|i| items.contains(&i.price.item))
        .map(|i| i.price.of(i.quantity))
        .sum();
    b.items
        .iter()
        .any(|i| i.price.item == items[0])
        .then(|| usd / (b.events / 1e6))
}

/// One row per path: the month and the figure per million, against the API Gateway path.
pub fn summary(bills: &[Bill]) -> String {
    let apigw = bills.iter().find(|b| b.path == Path::ApiGateway).map(Bill::per_million);
    let mut t =
        String::from("| path | US$ a month | US$ per million events | ÷ API Gateway path |\n|---|---|---|---|\n");
    for b in bills {
        let ratio = apigw.map_or("–".to_owned(), |a| format!("{:.2}×", b.per_million() / a));
        t.push_str(&format!(
            "| {} | {:.2} | {:.3} | {ratio} |\n",
            b.path.describe(),
            b.total,
            b.per_million()
        ));
    }
    t
}

/// The bills as JSON.
pub fn json(bills: &[Bill], shape: Shape, measured: &Measured) -> serde_json::Value {
    serde_json::json!({
        "prices_read_on": prices::READ_ON,
        "measured": measured,
        "events_per_request": shape.events_per_request,
        "event_bytes": shape.event_bytes,
        "requests_per_window": shape.requests_per_window,
        "destination": bills.first().map_or(Destination::Json, |b| b.destination).key(),
        "paths": bills.iter().map(|b| serde_json::json!({
            "path": b.path.key(),
            "usd_per_month": b.total,
            "usd_per_million_events": b.per_million(),
            "events_per_month": b.events,
            "items": b.items.iter().map(|i| serde_json::json!({
                "item": i.price.item, "quantity": i.quantity, "unit": i.price.unit,
                "usd": i.usd, "from": i.from, "source": i.price.source,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// The price table with sources, for people.
pub fn sources() -> String {
    let mut t = format!(
        "| price | US$ | per | source (read {}) |\n|---|---|---|---|\n",
        prices::READ_ON
    );
    for p in prices::ALL {
        t.push_str(&format!(
            "| {} | {} | {} {} | <{}> |\n",
            p.item,
            p.usd,
            count(p.per),
            p.unit,
            p.source
        ));
    }
    t
}
