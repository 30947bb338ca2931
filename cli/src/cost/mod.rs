//! `edgehose cost`: the whole monthly bill of each path, line by line, from
//! the dated price table (`prices.rs`), the quantities the project's own
//! packing code produces (`traffic.rs`) and the times its benchmarks
//! measured (`measured.rs`, rewritten by `make bench-cost`).

pub mod bill;
pub mod chart;
pub mod measured;
pub mod prices;
pub mod traffic;

use std::path::PathBuf;

use crate::args::{Args, Flag};
use bill::{Bill, Path, bill, count};
use measured::Measured;
use traffic::Shape;

const FLAGS: &[Flag] = &[
    ("events-per-month", true, "events a month (100000000)"),
    ("events-per-request", true, "events in each request (1)"),
    ("event-bytes", true, "bytes of each event as the client sends it (170)"),
    (
        "requests-per-window",
        true,
        "requests one edge isolate gathers in a window (1: each alone; see the README)",
    ),
    (
        "path",
        true,
        "only this path (repeatable): edge-queue, edge-queue-window, edge-direct, api-gateway, function-url",
    ),
    (
        "measured",
        true,
        "measured figures written by make bench-cost (default: the built-in ones)",
    ),
    (
        "chart",
        true,
        "also write an SVG of cost per million against events per request (1 … 100)",
    ),
    ("json", false, "print the bills as JSON"),
    ("help", false, "this help"),
];

const HELP: &str = "\
edgehose cost: the whole monthly bill per path, line by line

Every price comes from one dated table with its source; quantities (records,
5 KB-rounded bytes, calls, queue messages and their 64 KB units) from the
packing code the edge and ingest-api run; CPU and Lambda time from
make bench-cost. Monthly minimums and included allowances are counted.

  edgehose cost --events-per-month 300000000 --events-per-request 1
  edgehose cost --events-per-request 20 --event-bytes 170 --path edge-direct
";

/// Runs the command.
pub fn main(raw: &[String]) -> Result<(), String> {
    let args = Args::parse(raw, FLAGS)?;
    if args.switch("help") {
        println!("{HELP}\n{}", crate::args::help(FLAGS));
        return Ok(());
    }
    let events: f64 = args.parsed("events-per-month", 100e6)?;
    if !(1.0..=1e15).contains(&events) {
        return Err(format!("--events-per-month {events}: between 1 and 10^15"));
    }
    let shape = Shape {
        events_per_request: bounded(&args, "events-per-request", 1, 1, 10_000)?,
        event_bytes: bounded(&args, "event-bytes", 170, 64, 1_000_000)?,
        requests_per_window: bounded(&args, "requests-per-window", 1, 1, 10_000)?,
    };
    let measured = match args.get("measured") {
        Some(file) => Measured::parse(&std::fs::read_to_string(file).map_err(|e| format!("--measured {file}: {e}"))?)?,
        None => Measured::built_in()?,
    };
    let paths: Vec<Path> = match args.all("path") {
        v if v.is_empty() => Path::ALL.to_vec(),
        v => v.into_iter().map(Path::parse).collect::<Result<_, _>>()?,
    };
    let bills: Vec<Bill> = paths
        .iter()
        .map(|&p| bill(p, events, shape, &measured))
        .collect::<Result<_, _>>()?;
    if args.switch("json") {
        println!(
            "{}",
            serde_json::to_string_pretty(&json(&bills, shape, &measured)).unwrap_or_default()
        );
    } else {
        print!("{}", render(&bills, shape, &measured));
    }
    if let Some(file) = args.get("chart") {
        let file = PathBuf::from(file);
        let lines = curve(&paths, events, shape, &measured)?;
        chart::write(&file, &chart_title(events, shape), &lines)?;
        eprintln!("wrote {}", file.display());
    }
    Ok(())
}

fn bounded(args: &Args, name: &str, default: usize, min: usize, max: usize) -> Result<usize, String> {
    let v: usize = args.parsed(name, default)?;
    if !(min..=max).contains(&v) {
        return Err(format!("--{name} {v}: between {min} and {max}"));
    }
    Ok(v)
}

/// Events per request the chart is drawn at.
pub const CHART_SIZES: [usize; 8] = [1, 2, 5, 10, 20, 50, 100, 200];

/// Each path's dollars per million at each of [`CHART_SIZES`].
pub fn curve(paths: &[Path], events: f64, shape: Shape, measured: &Measured) -> Result<Vec<chart::Line>, String> {
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
                    bill(p, events, s, measured).map(|b| (k as f64, b.per_million()))
                })
                .collect::<Result<_, String>>()?;
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
        "{} events a month, {} per request, {} bytes each, {} request(s) per edge isolate window; prices read {} (AWS us-east-1, Workers Paid); measured {} on {} ({})\n\n",
        bills.first().map_or("0".into(), |b| count(b.events)),
        shape.events_per_request,
        shape.event_bytes,
        shape.requests_per_window,
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
    }
    t
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
