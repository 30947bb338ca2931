//! `edgehose receipts`: per key and minute, the events the edge accepted
//! against where they ended (landed, rejected, dead-lettered, lost) and what
//! is still in flight. Under `make dev` it reads the local stand-ins (the
//! defaults); given a Cloudflare account it reads Workers Analytics Engine
//! and CloudWatch Logs, with AWS's credentials from the environment.

use std::path::PathBuf;
use std::time::Duration;

use edgehose_local::aws::firehose::{DEV_ACCESS_KEY_ID, DEV_SECRET_ACCESS_KEY, REGION_DEFAULT};
use edgehose_local::aws::json_call::credentials_from_env;
use edgehose_local::clock::now;
use edgehose_receipts::analytics::Analytics;
use edgehose_receipts::destination::open_s3;
use edgehose_receipts::logs::{Logs, TRANSFORM_LOG_GROUP};
use edgehose_receipts::{Destination, Options, html, metrics, read, report};
use edgehose_shared::sigv4::sign::Credentials;

use crate::duration::span;

/// `edgehose receipts`' options.
#[derive(Debug, clap::Args)]
#[command(about = "Account for every accepted event, per key and minute")]
pub struct ReceiptsArgs {
    /// How far back (90s, 15m, 1h, 7d).
    #[arg(long, default_value = "1h", value_parser = span)]
    since: Duration,
    /// One write key's id only.
    #[arg(long)]
    key: Option<String>,
    /// A minute that began less than this long ago is still in flight (a
    /// queue's retries, Firehose's buffer); older ones must balance.
    #[arg(long, default_value = "15m", value_parser = span)]
    settle: Duration,
    /// Exit non-zero when a settled minute misses events past its bound,
    /// or any event was LOST (for cron and alarms).
    #[arg(long)]
    check: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// The edge Worker under make dev, whose stand-in keeps its outcome counts.
    #[arg(long, default_value = "http://127.0.0.1:8787")]
    url: String,
    /// Read Cloudflare's Workers Analytics Engine for this account instead.
    #[arg(long, env = "CLOUDFLARE_ACCOUNT_ID")]
    account_id: Option<String>,
    /// An API token allowed to read the account's analytics.
    #[arg(long, env = "CLOUDFLARE_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
    /// CloudWatch Logs' endpoint (firehose-local's under make dev; AWS's with --account-id).
    #[arg(long)]
    logs_endpoint: Option<String>,
    /// The region of the transform's log group.
    #[arg(long, env = "AWS_REGION", default_value = REGION_DEFAULT)]
    region: String,
    /// The transform's log group.
    #[arg(long, default_value = TRANSFORM_LOG_GROUP)]
    log_group: String,
    /// The delivery stream the edge writes to.
    #[arg(long, default_value = "edgehose-events")]
    stream: String,
    /// Count what the destination holds too: make dev's data directory, or
    /// the stream's S3 prefix (s3://bucket/events/, read with AWS's variables).
    #[arg(long)]
    verify: Option<String>,
    /// With --verify s3://…: the stream's ErrorOutputPrefix up to the output type.
    #[arg(long, default_value = "errors/")]
    error_prefix: String,
    /// Also write the report as a page with a per-minute chart of each key.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Publish the window's dead letters, LOST and missing events to
    /// CloudWatch (namespace edgehose), where the template's alarms watch them.
    #[arg(long)]
    put_metrics: bool,
    /// CloudWatch's endpoint for --put-metrics (AWS's in --region by default).
    #[arg(long)]
    metrics_endpoint: Option<String>,
}

/// Runs the command.
pub fn run(args: ReceiptsArgs) -> Result<(), String> {
    let (analytics, logs_endpoint, credentials) = match (&args.account_id, &args.api_token) {
        (Some(account), Some(token)) => (
            Analytics::cloudflare(account, token),
            args.logs_endpoint
                .clone()
                .unwrap_or_else(|| format!("https://logs.{}.amazonaws.com", args.region)),
            credentials_from_env().map_err(|e| e.to_string())?,
        ),
        (Some(_), None) => {
            return Err("--account-id needs --api-token (CLOUDFLARE_API_TOKEN) to read Analytics Engine".into());
        }
        _ => (
            Analytics::local(&args.url),
            args.logs_endpoint
                .clone()
                .unwrap_or_else(|| "http://127.0.0.1:4573".to_owned()),
            Credentials::new(DEV_ACCESS_KEY_ID, DEV_SECRET_ACCESS_KEY),
        ),
    };
    let now_ms = now().as_millis();
    let destination = match &args.verify {
        Some(url) if url.starts_with("s3://") => {
            let (bucket, prefix) = open_s3(url, &args.region).map_err(|e| e.to_string())?;
            Some(Destination::S3(Box::new(bucket), prefix, args.error_prefix.clone()))
        }
        Some(dir) => Some(Destination::Dir(PathBuf::from(dir), args.stream.clone())),
        None => None,
    };
    let mut options = Options {
        since_ms: now_ms - args.since.as_millis() as i64,
        now_ms,
        settle_ms: args.settle.as_millis() as i64,
        key: args.key.clone(),
        analytics,
        logs: Logs {
            endpoint: logs_endpoint,
            region: args.region.clone(),
            credentials,
            group: args.log_group.clone(),
            stream: args.stream.clone(),
        },
        destination,
    };
    let report = read(&mut options).map_err(|e| e.to_string())?;
    if let Some(path) = &args.html {
        let title = format!("edgehose receipts, the last {}", describe(args.since));
        std::fs::write(path, html::page(&report, &title)).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if args.put_metrics {
        let endpoint = args
            .metrics_endpoint
            .clone()
            .unwrap_or_else(|| format!("https://monitoring.{}.amazonaws.com", args.region));
        // AWS's variables; under make dev (a local stand-in) the dev key when they are unset.
        let credentials = match (credentials_from_env(), &args.account_id) {
            (Ok(c), _) => c,
            (Err(_), None) => Credentials::new(DEV_ACCESS_KEY_ID, DEV_SECRET_ACCESS_KEY),
            (Err(e), Some(_)) => return Err(e.to_string()),
        };
        metrics::put(&report, &endpoint, &args.region, &credentials).map_err(|e| e.to_string())?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?);
    } else {
        print!("{}", report::text(&report));
    }
    if args.check && !report.failures.is_empty() {
        return Err(format!("receipts do not balance: {}", report.failures.join("; ")));
    }
    Ok(())
}

/// `90 s`, `15 min`, `2 h`.
fn describe(d: Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(3600) && s > 0 {
        format!("{} h", s / 3600)
    } else if s.is_multiple_of(60) && s > 0 {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}
