//! Published list prices, in one dated table: every figure the cost model
//! multiplies by, with the page it was read from and the day it was read.
//! Prices are AWS us-east-1 and Cloudflare's Workers Paid plan, first tier,
//! in US dollars; free tiers that end after a year are left out.

/// The day every price below was read.
pub const READ_ON: &str = "2026-12-02";

/// One published price: `usd` per `per` `unit`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    /// What is billed.
    pub item: &'static str,
    /// Dollars …
    pub usd: f64,
    /// … per this many units.
    pub per: f64,
    /// The unit, for people.
    pub unit: &'static str,
    /// Where the price is published.
    pub source: &'static str,
}

impl Price {
    /// The cost of `units`.
    pub fn of(&self, units: f64) -> f64 {
        units * self.usd / self.per
    }
}

const WORKERS: &str = "https://developers.cloudflare.com/workers/platform/pricing/";
const QUEUES: &str = "https://developers.cloudflare.com/queues/platform/pricing/";
const FIREHOSE: &str = "https://aws.amazon.com/firehose/pricing/";
const API_GATEWAY: &str = "https://aws.amazon.com/api-gateway/pricing/";
const LAMBDA: &str = "https://aws.amazon.com/lambda/pricing/";
const S3: &str = "https://aws.amazon.com/s3/pricing/";
const ANALYTICS_ENGINE: &str = "https://developers.cloudflare.com/analytics/analytics-engine/pricing/";
const CLOUDWATCH: &str = "https://aws.amazon.com/cloudwatch/pricing/";

/// The Workers Paid plan's monthly minimum.
pub const WORKERS_MONTHLY: Price = Price {
    item: "Workers Paid plan",
    usd: 5.0,
    per: 1.0,
    unit: "month",
    source: WORKERS,
};
/// Requests the monthly minimum includes.
pub const WORKERS_INCLUDED_REQUESTS: f64 = 10e6;
/// CPU milliseconds the monthly minimum includes.
pub const WORKERS_INCLUDED_CPU_MS: f64 = 30e6;
/// Workers requests beyond the included ones.
pub const WORKERS_REQUESTS: Price = Price {
    item: "Workers requests",
    usd: 0.30,
    per: 1e6,
    unit: "requests",
    source: WORKERS,
};
/// Workers CPU time beyond the included.
pub const WORKERS_CPU: Price = Price {
    item: "Workers CPU time",
    usd: 0.02,
    per: 1e6,
    unit: "CPU ms",
    source: WORKERS,
};
/// Queues operations: each 64 KB written, read or deleted.
pub const QUEUES_OPERATIONS: Price = Price {
    item: "Queues operations",
    usd: 0.40,
    per: 1e6,
    unit: "operations (64 KB each)",
    source: QUEUES,
};
/// Operations the Workers Paid plan includes each month.
pub const QUEUES_INCLUDED_OPERATIONS: f64 = 1e6;
/// Firehose Direct PUT ingestion, each record rounded up to 5 KB.
pub const FIREHOSE_INGESTION: Price = Price {
    item: "Firehose ingestion (5 KB increments)",
    usd: 0.029,
    per: 1.0,
    unit: "GB billed (2³⁰ bytes)",
    source: FIREHOSE,
};
/// Firehose delivering to Apache Iceberg tables from a Direct PUT source:
/// per GB ingested, each record counted by its own bytes ("billed per GB
/// ingested with no 5KB increments"). First tier (250 TB a month),
/// us-east-1. AWS's Game Analytics Pipeline guidance prices the same
/// (<https://github.com/aws-solutions-library-samples/guidance-for-game-analytics-pipeline-on-aws>:
/// 259.2 GB through Direct PUT to Iceberg, $19.44 a month).
pub const FIREHOSE_ICEBERG_INGESTION: Price = Price {
    item: "Firehose to Iceberg, Direct PUT (no 5 KB increments)",
    usd: 0.075,
    per: 1.0,
    unit: "GB ingested (2³⁰ bytes)",
    source: FIREHOSE,
};
/// Firehose delivering to Apache Iceberg tables: bytes the transform
/// (custom Lambda processing) adds before delivery, beyond those ingested,
/// "billed at the same rate as shown in Kinesis Data Streams as a source to
/// Apache Iceberg tables as a destination for all sources of ingestion
/// including Direct PUT". First tier, us-east-1; the guidance above prices
/// the same (259.2 GB from Kinesis Data Streams to Iceberg, $11.67 a month).
pub const FIREHOSE_ICEBERG_PROCESSED: Price = Price {
    item: "Firehose to Iceberg, bytes added by the transform",
    usd: 0.045,
    per: 1.0,
    unit: "GB beyond those ingested (2³⁰ bytes)",
    source: FIREHOSE,
};
/// HTTP API requests (each 512 KB of a request counts as one).
pub const API_GATEWAY_REQUESTS: Price = Price {
    item: "API Gateway HTTP API requests",
    usd: 1.00,
    per: 1e6,
    unit: "requests (512 KB each)",
    source: API_GATEWAY,
};
/// The size API Gateway meters an HTTP API request in.
pub const API_GATEWAY_METERING_BYTES: usize = 512 * 1024;
/// Lambda invocations.
pub const LAMBDA_REQUESTS: Price = Price {
    item: "Lambda requests",
    usd: 0.20,
    per: 1e6,
    unit: "invocations",
    source: LAMBDA,
};
/// Lambda duration on Arm (Graviton), which the template deploys.
pub const LAMBDA_ARM_DURATION: Price = Price {
    item: "Lambda duration (arm64)",
    usd: 0.000_013_333_4,
    per: 1.0,
    unit: "GB-seconds",
    source: LAMBDA,
};
/// S3 Standard PUT requests (one per object Firehose writes).
pub const S3_PUTS: Price = Price {
    item: "S3 PUT requests",
    usd: 0.005,
    per: 1000.0,
    unit: "PUTs",
    source: S3,
};

/// Workers Analytics Engine data points written (the edge's outcome counts).
pub const ANALYTICS_ENGINE_POINTS: Price = Price {
    item: "Analytics Engine data points (outcome counts)",
    usd: 0.25,
    per: 1e6,
    unit: "data points",
    source: ANALYTICS_ENGINE,
};
/// Data points the Workers Paid plan includes each month.
pub const ANALYTICS_ENGINE_INCLUDED_POINTS: f64 = 10e6;
/// CloudWatch Logs ingestion (the transform's receipt lines).
pub const CLOUDWATCH_LOGS_INGESTION: Price = Price {
    item: "CloudWatch Logs ingestion (receipts)",
    usd: 0.50,
    per: 1.0,
    unit: "GB",
    source: CLOUDWATCH,
};

/// A gigabyte as AWS bills data: 2³⁰ bytes.
pub const GB: f64 = 1_073_741_824.0;

/// Every price, for the sources table.
pub const ALL: [Price; 13] = [
    WORKERS_MONTHLY,
    WORKERS_REQUESTS,
    WORKERS_CPU,
    QUEUES_OPERATIONS,
    FIREHOSE_INGESTION,
    FIREHOSE_ICEBERG_INGESTION,
    FIREHOSE_ICEBERG_PROCESSED,
    API_GATEWAY_REQUESTS,
    LAMBDA_REQUESTS,
    LAMBDA_ARM_DURATION,
    S3_PUTS,
    ANALYTICS_ENGINE_POINTS,
    CLOUDWATCH_LOGS_INGESTION,
];
