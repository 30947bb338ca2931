//! `edgehose cost`: reads the traffic's shape from the command line and
//! prints each path's whole monthly bill (or JSON, or a chart).

use std::path::PathBuf;

use edgehose_cost::bill::{Bill, Path, bill_to};
use edgehose_cost::destination::{self, Billed, Destination};
use edgehose_cost::flood::{Flood, FloodBill, flood_bill};
use edgehose_cost::measured::Measured;
use edgehose_cost::traffic::Shape;
use edgehose_cost::{chart, chart_title, curve_to, json, render};

/// `edgehose cost`'s options.
#[derive(Debug, clap::Args)]
#[command(
    about = "The whole monthly bill per path, line by line",
    long_about = "\
The whole monthly bill per path, line by line.

Every price comes from one dated table with its source; quantities (records,
5 KB-rounded bytes, calls, queue messages and their 64 KB units) from the
packing code the edge and ingest-api run; CPU and Lambda time from
make bench-cost. Monthly minimums and included allowances are counted.
After the bills, each path's Firehose lines with either destination (JSON
objects in S3, or Iceberg tables: one event a record, no 5 KB rounding,
the transform's added bytes billed), per million events and per GB sent.

  edgehose cost --events-per-month 300000000 --events-per-request 1
  edgehose cost --events-per-request 20 --event-bytes 170 --path edge-direct
  edgehose cost --destination iceberg   (the bills as delivered to Iceberg tables)
  edgehose cost --flood-rps 1000 --flood-budget 1000   (an hour of flood, before and after a limit)"
)]
pub struct CostArgs {
    /// Events a month (1 to 10^15).
    #[arg(long, default_value_t = 100e6, value_parser = events_per_month)]
    events_per_month: f64,
    /// Events in each request.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    events_per_request: u64,
    /// Bytes of each event as the client sends it.
    #[arg(long, default_value_t = 170, value_parser = clap::value_parser!(u64).range(64..=1_000_000))]
    event_bytes: u64,
    /// Requests one edge isolate gathers in a window (1: each alone; see docs/src/modes.md).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    requests_per_window: u64,
    /// Only this path (repeatable): edge-queue, edge-queue-window,
    /// edge-direct, api-gateway, function-url.
    #[arg(long, value_parser = Path::parse)]
    path: Vec<Path>,
    /// Where Firehose delivers: json (NDJSON objects in S3) or iceberg
    /// (Apache Iceberg tables, one event a record).
    #[arg(long, default_value = "json", value_parser = edgehose_cost::destination::parse)]
    destination: Destination,
    /// Measured figures written by make bench-cost (default: the built-in ones).
    #[arg(long)]
    measured: Option<PathBuf>,
    /// Also write an SVG of cost per million against events per request (1 … 200).
    #[arg(long)]
    chart: Option<PathBuf>,
    /// Print the bills as JSON.
    #[arg(long)]
    json: bool,
    /// Instead of a month's bill: what an hour of a flood of this many
    /// requests a second from one key costs, with no limit and with
    /// --flood-budget (requests of --events-per-request events).
    #[arg(long, value_parser = positive)]
    flood_rps: Option<f64>,
    /// The flooded key's RATE_LIMITS budget: events per 10 s window.
    #[arg(long, default_value_t = 1000.0, value_parser = positive)]
    flood_budget: f64,
    /// Cloudflare locations the flood comes through (each counts its own budget).
    #[arg(long, default_value_t = 1.0, value_parser = positive)]
    flood_locations: f64,
}

fn positive(v: &str) -> Result<f64, String> {
    match v.parse::<f64>() {
        Ok(n) if n > 0.0 && n.is_finite() => Ok(n),
        _ => Err(format!("{v}: a number above 0")),
    }
}

fn events_per_month(v: &str) -> Result<f64, String> {
    match v.parse::<f64>() {
        Ok(n) if (1.0..=1e15).contains(&n) => Ok(n),
        _ => Err(format!("{v}: a number between 1 and 10^15")),
    }
}

/// Runs the command.
pub fn run(args: CostArgs) -> Result<(), String> {
    let size = |n: u64| usize::try_from(n).map_err(|e| e.to_string());
    let shape = Shape {
        events_per_request: size(args.events_per_request)?,
        event_bytes: size(args.event_bytes)?,
        requests_per_window: size(args.requests_per_window)?,
    };
    let events = args.events_per_month;
    let measured = match &args.measured {
        Some(file) => {
            Measured::parse(&std::fs::read_to_string(file).map_err(|e| format!("--measured {}: {e}", file.display()))?)?
        }
        None => Measured::built_in()?,
    };
    let paths = if args.path.is_empty() {
        Path::ALL.to_vec()
    } else {
        args.path.clone()
    };
    if let Some(rps) = args.flood_rps {
        let flood = Flood {
            requests_per_second: rps,
            budget_events: args.flood_budget,
            locations: args.flood_locations,
        };
        let bills: Vec<FloodBill> = paths
            .iter()
            .map(|&p| flood_bill(p, flood, shape, &measured, args.destination))
            .collect::<Result<_, _>>()?;
        print!("{}", edgehose_cost::flood::render(&bills, flood, shape));
        return Ok(());
    }
    let bills: Vec<Bill> = paths
        .iter()
        .map(|&p| bill_to(p, events, shape, &measured, args.destination))
        .collect::<Result<_, _>>()?;
    let destinations = destination::compare(&paths, events, shape, &measured)?;
    if args.json {
        let mut value = json(&bills, shape, &measured);
        value["destinations"] = destination::json(&destinations, shape);
        let text = serde_json::to_string_pretty(&value).map_err(|e| format!("JSON: {e}"))?;
        println!("{text}");
    } else {
        print!("{}", render(&bills, shape, &measured));
        print!("{}", destination::render(&destinations, shape));
    }
    if let Some(file) = &args.chart {
        let lines = curve_to(&paths, events, shape, &measured, args.destination)?;
        let mut title = chart_title(events, shape);
        if args.destination != Destination::Json {
            title.push_str(&format!(", delivered to {}", args.destination.describe()));
        }
        chart::write(file, &title, &lines)?;
        eprintln!("wrote {}", file.display());
    }
    Ok(())
}
