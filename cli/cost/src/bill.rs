//! The whole monthly bill of each path, line by line: quantities from
//! [`super::traffic`], times from [`super::measured`],
//! prices from [`super::prices`]. Monthly minimums and included
//! allowances are counted, so the figure per million events is what a month
//! at that volume costs divided by its millions. Firehose's own lines depend
//! on where it delivers ([`Destination`]).

use super::destination::{Billed, Destination};
use super::measured::Measured;
use super::prices::{self, Price};
use super::traffic::{self, Quantities, Shape};

/// Firehose's buffer before it invokes the transform (the template's
/// `ProcessingConfiguration`: 3 MB or 60 s).
pub const TRANSFORM_BUFFER_BYTES: f64 = 3.0 * 1024.0 * 1024.0;
/// Firehose's buffer before it writes an S3 object (the template's
/// `BufferingHints` defaults: 64 MB or 60 s).
pub const S3_BUFFER_BYTES: f64 = 64.0 * 1024.0 * 1024.0;
/// Both buffers' interval, seconds.
pub const BUFFER_INTERVAL_S: f64 = 60.0;
/// A month of 30 days, seconds.
pub const MONTH_S: f64 = 30.0 * 86_400.0;
/// Bytes of the transform's receipt line for one invocation of one key,
/// door and minute (`shared::outcome::receipt_line`, measured: 120 to 170).
pub const RECEIPT_LINE_BYTES: f64 = 170.0;

/// One way events reach the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// The edge, queue mode answering once the queue holds the request's
    /// events: a message per request.
    EdgeQueue,
    /// The edge, queue mode with `QUEUE_WINDOW_MS`: the answer at once, a
    /// message per isolate window.
    EdgeQueueWindow,
    /// The edge, direct mode: a `PutRecordBatch` per isolate window.
    EdgeDirect,
    /// API Gateway HTTP API → `ingest-api` → Firehose.
    ApiGateway,
    /// A Lambda function URL → `ingest-api` → Firehose.
    FunctionUrl,
}

impl Path {
    /// Every path, in table order.
    pub const ALL: [Path; 5] = [
        Path::EdgeQueue,
        Path::EdgeQueueWindow,
        Path::EdgeDirect,
        Path::ApiGateway,
        Path::FunctionUrl,
    ];

    /// Its name on the command line.
    pub fn key(self) -> &'static str {
        match self {
            Path::EdgeQueue => "edge-queue",
            Path::EdgeQueueWindow => "edge-queue-window",
            Path::EdgeDirect => "edge-direct",
            Path::ApiGateway => "api-gateway",
            Path::FunctionUrl => "function-url",
        }
    }

    /// For people.
    pub fn describe(self) -> &'static str {
        match self {
            Path::EdgeQueue => "edge, queue mode (answer after the queue write)",
            Path::EdgeQueueWindow => "edge, queue mode with a window (answer at once)",
            Path::EdgeDirect => "edge, direct mode",
            Path::ApiGateway => "API Gateway HTTP API → Lambda → Firehose",
            Path::FunctionUrl => "Lambda function URL → Firehose",
        }
    }

    /// The path named `key`.
    pub fn parse(key: &str) -> crate::error::Result<Self> {
        Self::ALL.into_iter().find(|p| p.key() == key).ok_or_else(|| {
            let keys: Vec<&str> = Self::ALL.iter().map(|p| p.key()).collect();
            crate::error::Error::UnknownPath {
                given: key.to_owned(),
                known: keys.join(", "),
            }
        })
    }

    /// Whether it is one of the edge's modes.
    pub fn is_edge(self) -> bool {
        matches!(self, Path::EdgeQueue | Path::EdgeQueueWindow | Path::EdgeDirect)
    }
}

/// One line of a bill.
#[derive(Debug, Clone, PartialEq)]
pub struct LineItem {
    /// What is billed and at what price.
    pub price: Price,
    /// How many units, this month (before any included allowance).
    pub quantity: f64,
    /// Dollars this month.
    pub usd: f64,
    /// Where the quantity comes from.
    pub from: String,
}

/// A month on one path.
#[derive(Debug, Clone, PartialEq)]
pub struct Bill {
    /// The path.
    pub path: Path,
    /// Every line.
    pub items: Vec<LineItem>,
    /// The month's total, dollars.
    pub total: f64,
    /// Events that month.
    pub events: f64,
    /// Where Firehose delivered them.
    pub destination: Destination,
}

impl Bill {
    /// Dollars per million events.
    pub fn per_million(&self) -> f64 {
        self.total / (self.events / 1e6)
    }
}

/// The month's quantities for `path`, delivering JSON objects.
pub fn quantities(path: Path, shape: Shape) -> crate::error::Result<Quantities> {
    quantities_to(path, shape, Destination::Json)
}

/// The month's quantities for `path`, delivering to `destination`.
pub fn quantities_to(path: Path, shape: Shape, destination: Destination) -> crate::error::Result<Quantities> {
    match path {
        Path::EdgeQueue => traffic::edge_queue(
            Shape {
                requests_per_window: 1,
                ..shape
            },
            destination,
        ),
        Path::EdgeQueueWindow => traffic::edge_queue(shape, destination),
        Path::EdgeDirect => traffic::edge_direct(shape, destination),
        Path::ApiGateway | Path::FunctionUrl => traffic::per_request(shape, destination),
    }
}

/// The bill for `events_per_month` events on `path`, delivering JSON objects.
pub fn bill(path: Path, events_per_month: f64, shape: Shape, measured: &Measured) -> crate::error::Result<Bill> {
    bill_to(path, events_per_month, shape, measured, Destination::Json)
}

/// The bill for `events_per_month` events on `path`, Firehose delivering
/// to `destination`.
pub fn bill_to(
    path: Path,
    events_per_month: f64,
    shape: Shape,
    measured: &Measured,
    destination: Destination,
) -> crate::error::Result<Bill> {
    let q = quantities_to(path, shape, destination)?;
    let scale = q.per(events_per_month);
    let k = shape.events_per_request.max(1);
    let requests = q.requests as f64 * scale;
    let mut items = Vec::new();
    let mut line = |price: Price, quantity: f64, billable: f64, from: String| {
        items.push(LineItem {
            price,
            quantity,
            usd: price.of(billable.max(0.0)),
            from,
        });
    };
    if path.is_edge() {
        // Consumer runs are Worker invocations too (and their CPU is in the
        // per-request figure, measured with forwarding included).
        let batches = q.consumer_batches as f64 * scale;
        let invocations = requests + batches;
        let cpu_ms = requests * measured.edge_cpu_us_per_request.at(k) / 1000.0;
        line(prices::WORKERS_MONTHLY, 1.0, 1.0, "the plan's minimum".into());
        line(
            prices::WORKERS_REQUESTS,
            invocations,
            invocations - prices::WORKERS_INCLUDED_REQUESTS,
            format!(
                "{} requests + {} consumer batches, beyond the {:.0} M included",
                count(requests),
                count(batches),
                prices::WORKERS_INCLUDED_REQUESTS / 1e6
            ),
        );
        line(
            prices::WORKERS_CPU,
            cpu_ms,
            cpu_ms - prices::WORKERS_INCLUDED_CPU_MS,
            format!(
                "{:.0} µs per {k}-event request (make bench-cost), beyond the {:.0} M ms included",
                measured.edge_cpu_us_per_request.at(k),
                prices::WORKERS_INCLUDED_CPU_MS / 1e6
            ),
        );
    }
    if path.is_edge() {
        // One data point per flush and cell (here one key and door): each
        // window's flush, each consumer batch's. Write-first answers are
        // counted by an isolate's 10 s timer, taken here to gather as many
        // requests as a window would.
        let windows = requests / shape.requests_per_window.max(1) as f64;
        let batches = q.consumer_batches as f64 * scale;
        let points = windows + batches;
        line(
            prices::ANALYTICS_ENGINE_POINTS,
            points,
            points - prices::ANALYTICS_ENGINE_INCLUDED_POINTS,
            format!(
                "{} window flushes ({} requests a window) + {} consumer batches, beyond the {:.0} M included",
                count(windows),
                shape.requests_per_window.max(1),
                count(batches),
                prices::ANALYTICS_ENGINE_INCLUDED_POINTS / 1e6
            ),
        );
    }
    if matches!(path, Path::EdgeQueue | Path::EdgeQueueWindow) {
        let ops = 3.0 * q.queue_units as f64 * scale;
        line(
            prices::QUEUES_OPERATIONS,
            ops,
            ops - prices::QUEUES_INCLUDED_OPERATIONS,
            format!(
                "{} messages × (write + read + delete) × {:.2} 64 KB units, beyond the {:.0} M included",
                count(q.queue_messages as f64 * scale),
                q.queue_units as f64 / q.queue_messages.max(1) as f64,
                prices::QUEUES_INCLUDED_OPERATIONS / 1e6
            ),
        );
    }
    if matches!(path, Path::ApiGateway) {
        let per_request = (q.body_bytes as f64 / q.requests.max(1) as f64 / prices::API_GATEWAY_METERING_BYTES as f64)
            .ceil()
            .max(1.0);
        line(
            prices::API_GATEWAY_REQUESTS,
            requests * per_request,
            requests * per_request,
            format!("{} requests", count(requests)),
        );
    }
    if matches!(path, Path::ApiGateway | Path::FunctionUrl) {
        let ms = measured.ingest_api_billed_ms.at(k);
        let gb = measured.ingest_api_memory_mb / 1024.0;
        line(
            prices::LAMBDA_REQUESTS,
            requests,
            requests,
            "ingest-api, one invocation per request".into(),
        );
        line(
            prices::LAMBDA_ARM_DURATION,
            requests * ms / 1000.0 * gb,
            requests * ms / 1000.0 * gb,
            format!(
                "{ms:.1} billed ms per {k}-event invocation at {:.0} MB (make bench-cost)",
                measured.ingest_api_memory_mb
            ),
        );
    }
    for f in destination.firehose_lines(&q.firehose, scale) {
        line(f.price, f.quantity, f.quantity, f.from);
    }
    let payload = q.firehose.payload_bytes as f64 * scale;
    let records = q.firehose.records as f64 * scale;
    // Firehose fills a buffer until its size or its interval, whichever comes
    // first; traffic is taken as spread evenly over the month.
    let flushes = |buffer: f64| (payload / buffer).max((MONTH_S / BUFFER_INTERVAL_S).min(records));
    let invocations = flushes(TRANSFORM_BUFFER_BYTES);
    let events = q.events as f64 * scale;
    let per_invocation_ms =
        (events / invocations.max(1.0) * measured.transform_seconds_per_event_in_lambda() * 1000.0).ceil();
    let gb = measured.transform_memory_mb / 1024.0;
    line(
        prices::LAMBDA_REQUESTS,
        invocations,
        invocations,
        "the transform: one invocation per 3 MB or 60 s buffer".into(),
    );
    line(
        prices::LAMBDA_ARM_DURATION,
        invocations * per_invocation_ms / 1000.0 * gb,
        invocations * per_invocation_ms / 1000.0 * gb,
        format!(
            "the transform: {:.2} µs per event here on one thread, ×{:.1} for {:.0} MB's CPU share",
            measured.transform_us_per_event,
            super::measured::LAMBDA_MB_PER_VCPU / measured.transform_memory_mb,
            measured.transform_memory_mb
        ),
    );
    if path.is_edge() {
        let gb = invocations * RECEIPT_LINE_BYTES / prices::GB;
        line(
            prices::CLOUDWATCH_LOGS_INGESTION,
            gb,
            gb,
            format!("the transform's receipt, {RECEIPT_LINE_BYTES:.0} bytes an invocation"),
        );
    }
    // The Iceberg tables' own writes (data files, manifests, commits) are
    // left out with their storage and upkeep.
    if destination.counts_s3_puts() {
        let objects = flushes(S3_BUFFER_BYTES);
        line(
            prices::S3_PUTS,
            objects,
            objects,
            "one object per 64 MB or 60 s buffer".into(),
        );
    }
    let total = items.iter().map(|i| i.usd).sum();
    Ok(Bill {
        path,
        items,
        total,
        events,
        destination,
    })
}

/// `1.2 M`, `340 k`, `12`.
pub fn count(n: f64) -> String {
    if n >= 1e9 {
        format!("{:.2} G", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.2} M", n / 1e6)
    } else if n >= 1e4 {
        format!("{:.0} k", n / 1e3)
    } else {
        format!("{n:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measured::BySize;

    fn measured() -> Measured {
        Measured {
            date: "2026-12-02".into(),
            machine: "test".into(),
            command: "test".into(),
            edge_cpu_us_per_request: BySize {
                points: vec![(1, 250.0), (50, 1500.0)],
            },
            ingest_api_billed_ms: BySize {
                points: vec![(1, 8.0), (50, 12.0)],
            },
            ingest_api_memory_mb: 512.0,
            transform_us_per_event: 2.0,
            transform_memory_mb: 512.0,
        }
    }

    fn shape(k: usize, per_window: usize) -> Shape {
        Shape {
            events_per_request: k,
            event_bytes: 170,
            requests_per_window: per_window,
        }
    }

    fn usd(b: &Bill, item: &str) -> f64 {
        b.items.iter().filter(|i| i.price.item == item).map(|i| i.usd).sum()
    }

    #[test]
    fn a_message_per_click_costs_three_queue_operations() {
        let b = bill(Path::EdgeQueue, 100e6, shape(1, 10), &measured()).unwrap();
        // 300 M operations less the included million, at $0.40 per million.
        let queues = usd(&b, prices::QUEUES_OPERATIONS.item);
        assert!((queues - 299.0 * 0.40).abs() < 0.01, "{queues}");
        // A window does not apply to the message per request.
        let w1 = bill(Path::EdgeQueueWindow, 100e6, shape(1, 1), &measured()).unwrap();
        assert!((usd(&w1, prices::QUEUES_OPERATIONS.item) - queues).abs() < 0.01);
        let w10 = bill(Path::EdgeQueueWindow, 100e6, shape(1, 10), &measured()).unwrap();
        assert!((usd(&w10, prices::QUEUES_OPERATIONS.item) - 29.0 * 0.40).abs() < 0.01);
    }

    #[test]
    fn outcome_counts_are_a_data_point_per_window_and_consumer_batch_and_only_at_the_edge() {
        let b = bill(Path::EdgeQueueWindow, 1e9, shape(1, 20), &measured()).unwrap();
        let item = b
            .items
            .iter()
            .find(|i| i.price.item == prices::ANALYTICS_ENGINE_POINTS.item)
            .unwrap();
        // 1 G requests in windows of 20, and one batch per 100 messages.
        assert!((item.quantity - (50e6 + 0.5e6)).abs() < 1e3, "{}", item.quantity);
        assert!((item.usd - (50.5e6 - 10e6) / 1e6 * 0.25).abs() < 0.01, "{}", item.usd);
        let apigw = bill(Path::ApiGateway, 1e9, shape(1, 20), &measured()).unwrap();
        assert_eq!(usd(&apigw, prices::ANALYTICS_ENGINE_POINTS.item), 0.0);
        assert!(crate::accounting_per_million(&apigw).is_none());
        let per_million = crate::accounting_per_million(&b).unwrap();
        assert!((per_million - 50.5 * 0.25 / 1000.0).abs() < 1e-3, "{per_million}");
    }

    #[test]
    fn the_api_gateway_path_pays_per_request_and_per_5_kb_record() {
        let b = bill(Path::ApiGateway, 100e6, shape(1, 1), &measured()).unwrap();
        assert!((usd(&b, prices::API_GATEWAY_REQUESTS.item) - 100.0).abs() < 1e-6);
        let firehose = usd(&b, prices::FIREHOSE_INGESTION.item);
        let expected = 100e6 * 5.0 * 1024.0 / prices::GB * 0.029;
        assert!((firehose - expected).abs() < 0.01, "{firehose} vs {expected}");
        let url = bill(Path::FunctionUrl, 100e6, shape(1, 1), &measured()).unwrap();
        assert!((b.total - url.total - 100.0).abs() < 1e-6);
    }

    #[test]
    fn iceberg_changes_only_firehose_s_lines_and_drops_the_s3_puts() {
        let json = bill(Path::ApiGateway, 100e6, shape(1, 1), &measured()).unwrap();
        let iceberg = bill_to(Path::ApiGateway, 100e6, shape(1, 1), &measured(), Destination::Iceberg).unwrap();
        assert_eq!(json.destination, Destination::Json);
        assert_eq!(iceberg.destination, Destination::Iceberg);
        // Firehose: the payload unrounded at $0.075, and 1.1 times it again
        // (the transform's growth) at $0.045; no 5 KB line, no S3 PUTs.
        let q = quantities_to(Path::ApiGateway, shape(1, 1), Destination::Iceberg).unwrap();
        let payload_gb = q.firehose.payload_bytes as f64 * q.per(100e6) / prices::GB;
        let ingestion = usd(&iceberg, prices::FIREHOSE_ICEBERG_INGESTION.item);
        let processed = usd(&iceberg, prices::FIREHOSE_ICEBERG_PROCESSED.item);
        assert!((ingestion - payload_gb * 0.075).abs() < 1e-9, "{ingestion}");
        assert!((processed - payload_gb * 1.1 * 0.045).abs() < 1e-9, "{processed}");
        assert_eq!(usd(&iceberg, prices::FIREHOSE_INGESTION.item), 0.0);
        assert!(iceberg.items.iter().all(|i| i.price != prices::S3_PUTS));
        assert_eq!(usd(&json, prices::FIREHOSE_ICEBERG_INGESTION.item), 0.0);
        // Everything else is the same bill: at 100 M events both destinations'
        // transform runs once a minute.
        let firehose = |b: &Bill| crate::destination::firehose_usd(b);
        let delta = iceberg.total - json.total;
        let expected = firehose(&iceberg) - firehose(&json) - usd(&json, prices::S3_PUTS.item);
        assert!((delta - expected).abs() < 1e-9, "{delta} vs {expected}");
        // One 5 KB-rounded record per event costs more than the bytes at
        // Iceberg's price.
        assert!(firehose(&iceberg) < firehose(&json));
    }

    #[test]
    fn the_workers_minimum_and_allowances_count() {
        let small = bill(Path::EdgeDirect, 1e6, shape(1, 1), &measured()).unwrap();
        assert!(small.total >= 5.0);
        assert_eq!(usd(&small, prices::WORKERS_REQUESTS.item), 0.0);
        let big = bill(Path::EdgeDirect, 110e6, shape(1, 1), &measured()).unwrap();
        let requests = usd(&big, prices::WORKERS_REQUESTS.item);
        assert!((requests - 100.0 * 0.30).abs() < 0.01, "{requests}");
    }

    #[test]
    fn paths_parse_by_key() {
        for p in Path::ALL {
            assert_eq!(Path::parse(p.key()).ok(), Some(p));
        }
        assert!(
            Path::parse("carrier-pigeon")
                .unwrap_err()
                .to_string()
                .contains("edge-direct")
        );
    }

    #[test]
    fn the_buffers_are_the_templates() {
        let template =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../regional/template.yaml")).unwrap();
        let after = |key: &str| {
            let i = template.find(key).unwrap_or_else(|| panic!("{key} in the template"));
            template[i..].lines().take(3).collect::<Vec<_>>().join(" ")
        };
        assert!(after("BufferSizeMBs:").contains("Default: 64"));
        assert!(after("BufferIntervalSeconds:").contains("Default: 60"));
        assert!(after("ParameterName: BufferSizeInMBs").contains("\"3\""));
        assert!(after("ParameterName: BufferIntervalInSeconds").contains("\"60\""));
        assert!(template.contains("MemorySize: 512"));
        assert!(template.contains("Architectures: [arm64]"));
    }
}
