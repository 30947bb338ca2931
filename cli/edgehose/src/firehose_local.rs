//! `edgehose firehose-local`: firehose-local on its own, for any Firehose
//! client, until Ctrl-C; then it delivers what is buffered.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use edgehose_local::aws::firehose::{self, Config, FirehoseLocal, StreamConfig};

/// `edgehose firehose-local`'s options.
#[derive(Debug, clap::Args)]
#[command(
    about = "A Firehose stand-in that runs the real transform: PutRecordBatch, PutRecord, DescribeDeliveryStream, ListDeliveryStreams"
)]
pub struct FirehoseLocalArgs {
    /// host:port to listen on.
    #[arg(long, default_value = "127.0.0.1:4573")]
    listen: String,
    /// Delivery stream names, comma-separated.
    #[arg(long, default_value = "edgehose-events", value_delimiter = ',')]
    stream: Vec<String>,
    /// Where objects land.
    #[arg(long, env = "EDGEHOSE_DATA_DIR", default_value = ".edgehose/data")]
    data_dir: PathBuf,
    /// The region requests are signed for.
    #[arg(long, default_value = firehose::REGION_DEFAULT)]
    region: String,
    /// The accepted access key id (else make dev's, AKIDEDGEHOSELOCAL).
    #[arg(long, requires = "secret_access_key")]
    access_key_id: Option<String>,
    /// Its secret.
    #[arg(long, requires = "access_key_id")]
    secret_access_key: Option<String>,
    /// The transformation Lambda's binary (none: records land as sent).
    #[arg(long)]
    transform: Option<PathBuf>,
    /// Retries after a failed invocation.
    #[arg(long, default_value_t = 3)]
    transform_retries: u32,
    /// Key prefix of delivered objects.
    #[arg(long, default_value = "")]
    prefix: String,
    /// Key prefix of failed records.
    #[arg(long, default_value = "processing-failed/")]
    error_prefix: String,
    /// Dynamic partitioning: object prefix with !{partitionKeyFromLambda:NAME} (off).
    #[arg(long)]
    partition_prefix: Option<String>,
    /// The Iceberg destination: each transformed record is a row of a table
    /// of this Glue database, in a catalog under the data directory's iceberg/ (the
    /// transform is given DESTINATION=iceberg and DATABASE_NAME).
    #[arg(long, value_name = "DATABASE", conflicts_with = "partition_prefix")]
    iceberg: Option<String>,
    /// Buffering hint, MiB.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=128))]
    buffer_mb: u64,
    /// Buffering hint, seconds.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=900))]
    buffer_secs: u64,
    /// gzip delivered objects.
    #[arg(long)]
    gzip: bool,
    #[command(flatten)]
    faults: crate::fault_flags::FaultFlags,
    /// Seed of the fault draws.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Runs until Ctrl-C or SIGTERM, then delivers what is buffered.
pub fn run(args: FirehoseLocalArgs) -> Result<(), String> {
    let mut config = Config::new(args.stream[0].trim(), args.data_dir.clone());
    config.listen = args.listen.clone();
    config.region = args.region.clone();
    if let (Some(key), Some(secret)) = (&args.access_key_id, &args.secret_access_key) {
        config.credentials = [(key.clone(), secret.clone())].into();
    }
    config.streams = args
        .stream
        .iter()
        .map(|name| {
            let mut s = StreamConfig::new(name.trim());
            s.prefix = args.prefix.clone();
            s.error_prefix = args.error_prefix.clone();
            s.partition_prefix = args.partition_prefix.clone();
            s.buffer_bytes = (args.buffer_mb as usize) * 1024 * 1024;
            s.buffer_interval = Duration::from_secs(args.buffer_secs);
            s.gzip = args.gzip;
            s.iceberg = args.iceberg.clone();
            s
        })
        .collect();
    let transform_env: Vec<(String, String)> = match &args.iceberg {
        Some(database) => vec![
            ("DESTINATION".to_owned(), "iceberg".to_owned()),
            ("DATABASE_NAME".to_owned(), database.clone()),
        ],
        None => Vec::new(),
    };
    config.transform = args.transform.clone().map(|t| (t, transform_env));
    config.transform_retries = args.transform_retries;
    config.faults = args.faults.plan()?;
    config.seed = args.seed;
    let stop = crate::signals::stop_flag()?;
    let local = FirehoseLocal::start(config)?;
    println!(
        "firehose-local: {} (signing region {}, data in {})",
        local.url(),
        args.region,
        local.data_dir().display()
    );
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("firehose-local: stopping, delivering what is buffered…");
    drop(local);
    Ok(())
}
