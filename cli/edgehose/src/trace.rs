//! `edgehose trace <id>`: every place one event is — landed, rejected,
//! under the error prefix, dead-lettered, set aside, redriven, still
//! buffered or queued — and every place looked. Under `make dev` the
//! defaults read the local pipeline; `--bucket` reads the destination on
//! S3 (AWS's variables), the Worker searches its own archive either way.

use std::path::PathBuf;
use std::time::Duration;

use edgehose_local::aws::firehose::REGION_DEFAULT;
use edgehose_local::clock::now;
use edgehose_local::cloudflare::admin::DEV_ADMIN_KEY;
use edgehose_receipts::destination::open_s3;
use edgehose_receipts::trace::{Options, S3Destination, Worker, text, trace, uuid_v7_time};

use crate::duration::span;

/// How far around a UUIDv7's time the destination is searched: events land
/// after they were received (queue retries, Firehose's buffer, a redrive).
const AFTER_RECEIPT: Duration = Duration::from_secs(6 * 3600);

/// `edgehose trace`'s options.
#[derive(Debug, clap::Args)]
#[command(about = "Find every place one event id is")]
pub struct TraceArgs {
    /// The event's id (the client's message id, or the envelope's UUIDv7).
    id: String,
    /// Search events received this far back (default: around a UUIDv7's
    /// own time; 24h for any other id).
    #[arg(long, value_parser = span)]
    since: Option<Duration>,
    /// The edge Worker (make dev's by default), which searches its archive.
    #[arg(long, default_value = "http://127.0.0.1:8787")]
    url: String,
    /// Its ADMIN_KEY secret (make dev's when unset).
    #[arg(long, env = "ADMIN_KEY", default_value = DEV_ADMIN_KEY, hide_default_value = true, hide_env_values = true)]
    admin_key: String,
    /// make dev's data directory (searched unless --bucket is given).
    #[arg(long, env = "EDGEHOSE_DATA_DIR", default_value = ".edgehose/data")]
    data_dir: PathBuf,
    /// The delivery stream.
    #[arg(long, default_value = "edgehose-events")]
    stream: String,
    /// The destination on S3 (s3://bucket/prefix/, the stream's Prefix), read with AWS's variables.
    #[arg(long)]
    bucket: Option<String>,
    /// The stream's ErrorOutputPrefix up to the output type.
    #[arg(long, default_value = "errors/")]
    error_prefix: String,
    /// The bucket's region.
    #[arg(long, env = "AWS_REGION", default_value = REGION_DEFAULT)]
    region: String,
    /// Print the answer as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs the command.
pub fn run(args: TraceArgs) -> Result<(), String> {
    let now_ms = now().as_millis();
    let (from_ms, to_ms) = match (args.since, uuid_v7_time(&args.id)) {
        (Some(since), _) => (now_ms - since.as_millis() as i64, now_ms),
        (None, Some(t)) => (
            t.as_millis() - 60_000,
            (t.as_millis() + AFTER_RECEIPT.as_millis() as i64).min(now_ms),
        ),
        (None, None) => (now_ms - 24 * 3_600_000, now_ms),
    };
    let s3 = match &args.bucket {
        Some(url) => {
            let (bucket, prefix) = open_s3(url, &args.region).map_err(|e| e.to_string())?;
            Some(S3Destination {
                bucket,
                prefix,
                error_prefix: args.error_prefix.clone(),
            })
        }
        None => None,
    };
    let local = s3.is_none().then(|| (args.data_dir.clone(), args.stream.clone()));
    let mut options = Options {
        id: args.id.clone(),
        from_ms,
        to_ms,
        worker: Worker {
            url: args.url.clone(),
            admin_key: args.admin_key.clone(),
        },
        local,
        s3,
    };
    let found = trace(&mut options).map_err(|e| e.to_string())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&found).map_err(|e| e.to_string())?);
    } else {
        print!("{}", text(&found));
    }
    Ok(())
}
