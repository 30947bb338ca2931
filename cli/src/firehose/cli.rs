//! `edgehose firehose-local`: firehose-local on its own, for any Firehose client.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{Config, FaultPlan, FirehoseLocal, StreamConfig};
use crate::args::{Args, Flag, help};

/// The flags of `edgehose firehose-local`.
pub const FLAGS: &[Flag] = &[
    ("listen", true, "host:port (127.0.0.1:4573)"),
    (
        "stream",
        true,
        "delivery stream name; repeat with commas (edgehose-events)",
    ),
    (
        "data-dir",
        true,
        "where objects land ($EDGEHOSE_DATA_DIR, else .edgehose/data)",
    ),
    ("region", true, "region requests are signed for (us-east-1)"),
    ("access-key-id", true, "accepted access key id (AKIDEDGEHOSELOCAL)"),
    ("secret-access-key", true, "its secret (edgehose-local-secret)"),
    (
        "transform",
        true,
        "the transformation Lambda's binary (none: records land as sent)",
    ),
    ("transform-retries", true, "retries after a failed invocation (3)"),
    ("prefix", true, "key prefix of delivered objects ('')"),
    (
        "error-prefix",
        true,
        "key prefix of failed records (processing-failed/)",
    ),
    (
        "partition-prefix",
        true,
        "dynamic partitioning: object prefix with !{partitionKeyFromLambda:NAME} (off)",
    ),
    ("buffer-mb", true, "buffering hint, MiB (5)"),
    ("buffer-secs", true, "buffering hint, seconds (5)"),
    ("gzip", false, "gzip delivered objects"),
    ("throttle", true, "share of calls throttled (0..1)"),
    ("partial", true, "share of calls with failed records (0..1)"),
    ("errors", true, "share of calls answered 500 (0..1)"),
    ("latency-ms", true, "added to each Put call"),
    (
        "outage-secs",
        true,
        "refuse every Put call for this long from the start",
    ),
    ("seed", true, "seed of the fault draws (1)"),
    ("help", false, "this help"),
];

/// Runs until Ctrl-C or SIGTERM, then delivers what is buffered.
pub fn main(raw: &[String]) -> Result<(), String> {
    let args = Args::parse(raw, FLAGS)?;
    if args.switch("help") {
        println!(
            "edgehose firehose-local: PutRecordBatch, PutRecord, DescribeDeliveryStream, ListDeliveryStreams\n\n{}",
            help(FLAGS)
        );
        return Ok(());
    }
    let data_dir = data_dir(&args);
    let names: Vec<&str> = args.get("stream").unwrap_or("edgehose-events").split(',').collect();
    let mut config = Config::new(names[0], data_dir);
    config.listen = args.get("listen").unwrap_or("127.0.0.1:4573").to_owned();
    config.region = args.get("region").unwrap_or(super::REGION_DEFAULT).to_owned();
    if let Some(key) = args.get("access-key-id") {
        let secret = args
            .get("secret-access-key")
            .ok_or("--access-key-id needs --secret-access-key")?;
        config.credentials = [(key.to_owned(), secret.to_owned())].into();
    }
    let mut streams = Vec::new();
    for name in names {
        let mut s = StreamConfig::new(name.trim());
        s.prefix = args.get("prefix").unwrap_or("").to_owned();
        s.error_prefix = args.get("error-prefix").unwrap_or("processing-failed/").to_owned();
        s.partition_prefix = args.get("partition-prefix").map(str::to_owned);
        s.buffer_bytes = args.parsed("buffer-mb", 5usize)?.clamp(1, 128) * 1024 * 1024;
        s.buffer_interval = Duration::from_secs(args.parsed("buffer-secs", 5u64)?.clamp(1, 900));
        s.gzip = args.switch("gzip");
        streams.push(s);
    }
    config.streams = streams;
    config.transform = args.get("transform").map(|t| (PathBuf::from(t), Vec::new()));
    config.transform_retries = args.parsed("transform-retries", 3u32)?;
    config.faults = FaultPlan {
        throttle: args.parsed("throttle", 0.0)?,
        partial: args.parsed("partial", 0.0)?,
        errors: args.parsed("errors", 0.0)?,
        latency_ms: args.parsed("latency-ms", 0)?,
        outage_secs: args.parsed("outage-secs", 0)?,
    };
    config.seed = args.parsed("seed", 1u64)?;
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    ctrlc::set_handler(move || s.store(true, Ordering::SeqCst)).map_err(|e| format!("signal handler: {e}"))?;
    let local = FirehoseLocal::start(config)?;
    println!(
        "firehose-local: {} (signing region {}, data in {})",
        local.url(),
        local.inner.config.region,
        local.data_dir().display()
    );
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("firehose-local: stopping, delivering what is buffered…");
    drop(local);
    Ok(())
}

/// `--data-dir`, else `$EDGEHOSE_DATA_DIR`, else `.edgehose/data`.
pub fn data_dir(args: &Args) -> PathBuf {
    args.get("data-dir")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("EDGEHOSE_DATA_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(".edgehose/data"))
}
