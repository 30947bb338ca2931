//! `edgehose dev`: the whole pipeline on one machine, every piece for real —
//! the built edge Worker in workerd, firehose-local running the real
//! `transform` binary, and the `ingest-api` function behind a local API
//! Gateway — with a line of progress per second and an orderly stop on
//! Ctrl-C. `--sink kinesis` puts a Kinesis stream (moto) between the edge
//! and firehose-local, which reads it as a delivery stream with the stream
//! as its source does; `--sink sqs` has the edge write to a queue (moto).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use edgehose_local::aws::api_gateway::ApiGateway;
use edgehose_local::aws::firehose::{self, Config, FirehoseLocal, KinesisSource, StreamConfig};
use edgehose_local::aws::json_call;
use edgehose_local::aws::moto::Moto;
use edgehose_local::cloudflare::admin::DEV_ADMIN_KEY;
use edgehose_local::cloudflare::miniflare::{Build, DEFAULT_QUEUE_WINDOW_MS, Edge, EdgeOptions};
use edgehose_local::tools;

/// `edgehose dev`'s options.
#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// The edge Worker's port.
    #[arg(long, default_value_t = 8787)]
    port: u16,
    /// firehose-local's port.
    #[arg(long, default_value_t = 4573)]
    firehose_port: u16,
    /// The API Gateway path's port.
    #[arg(long, default_value_t = 8788)]
    api_port: u16,
    /// Where data lands.
    #[arg(long, env = "EDGEHOSE_DATA_DIR", default_value = ".edgehose/data")]
    data_dir: PathBuf,
    /// The delivery stream's name.
    #[arg(long, default_value = "edgehose-events")]
    stream: String,
    /// How the edge forwards: through its queue, or directly after answering.
    #[arg(long, value_enum, default_value_t = Mode::Queue)]
    mode: Mode,
    /// Where the edge writes: firehose; kinesis (a stream in moto, read by
    /// firehose-local); sqs (a queue in moto).
    #[arg(long, value_enum, default_value_t = Sink::Firehose)]
    sink: Sink,
    /// Queue mode: answer at once and write one message per window of this
    /// many ms (as wrangler.toml); 0 answers after the queue write.
    #[arg(long, default_value_t = DEFAULT_QUEUE_WINDOW_MS, value_parser = clap::value_parser!(u64).range(0..=1000))]
    queue_window_ms: u64,
    /// Queue mode: the longest the consumer waits before trying undelivered
    /// events again, seconds (QUEUE_RETRY_MAX_SECONDS; wrangler.toml's 300 by default).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=43_200))]
    queue_retry_max_secs: u64,
    /// firehose-local's buffering interval, seconds.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=900))]
    buffer_secs: u64,
    /// gzip delivered objects.
    #[arg(long)]
    gzip: bool,
    /// Partition by event name and day, as the template's DynamicPartitioning.
    #[arg(long, env = "PARTITIONING")]
    partitioning: bool,
    /// Where firehose-local writes, as the template's Destination: json (S3
    /// objects in the data directory) or iceberg (Iceberg tables, unique on
    /// key id and id, in a catalog under the data directory's iceberg/).
    #[arg(long, value_enum, default_value_t = DestinationArg::Json, conflicts_with = "partitioning")]
    destination: DestinationArg,
    /// The edge answers 400 to payloads that do not decode.
    #[arg(long)]
    strict: bool,
    /// WRITE_KEYS for both paths, `id:key,…` (none: no key needed).
    #[arg(long, env = "WRITE_KEYS", default_value = "", hide_default_value = true)]
    write_keys: String,
    /// SOURCES for both paths and the transform, JSON (docs/src/sources.md, "Declaring a source").
    #[arg(long, env = "SOURCES", default_value = "", hide_default_value = true)]
    sources: String,
    /// The edge Worker's admin key (`edgehose redrive`'s).
    #[arg(long, env = "ADMIN_KEY", default_value = DEV_ADMIN_KEY, hide_env_values = true)]
    admin_key: String,
    #[command(flatten)]
    faults: crate::fault_flags::FaultFlags,
    #[command(flatten)]
    cloudflare: crate::cloudflare_flags::CloudflareFlags,
    /// Residency regions (docs/src/regions.md): a REGIONS policy (`"eu: EEA; us: *"`), or names alone
    /// (`eu,us`: the first serves the EEA, the last every other country).
    /// The region marked `*` uses firehose-local at --firehose-port; each
    /// other gets one of its own on a free port (the banner says which), writing under
    /// `<data-dir>/<region>/`. Requests say their country with Miniflare's
    /// `MF-CF-Blob` header ({"country":"DE"}), as Cloudflare's request.cf.
    #[arg(long, conflicts_with = "sink")]
    regions: Option<String>,
    /// The edge Worker's DevTools inspector on this port, e.g. 9229 (off).
    #[arg(long)]
    inspector_port: Option<u16>,
    /// No progress lines.
    #[arg(long)]
    quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Mode {
    Queue,
    Direct,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum DestinationArg {
    Json,
    Iceberg,
}

/// The Glue database firehose-local's Iceberg tables are in under `make dev`
/// (the template's DatabaseName default).
const DEV_DATABASE: &str = "edgehose";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Sink {
    Firehose,
    Kinesis,
    Sqs,
}

/// Where the pieces were built (`make dev` builds them first).
struct Binaries {
    transform: PathBuf,
    ingest_api: PathBuf,
}

fn binaries() -> Result<Binaries, String> {
    Ok(Binaries {
        transform: tools::release_binary("transform", "make dev")?,
        ingest_api: tools::release_binary("ingest-api", "make dev")?,
    })
}

/// Runs until Ctrl-C (SIGINT) or SIGTERM.
pub fn run(args: DevArgs) -> Result<(), String> {
    let stop = crate::signals::stop_flag()?;

    let data_dir = args.data_dir.clone();
    let stream = args.stream.clone();
    let mode = match args.mode {
        Mode::Queue => "queue",
        Mode::Direct => "direct",
    };
    let queue_window_ms = args.queue_window_ms.to_string();
    let queue_retry_max = args.queue_retry_max_secs.to_string();
    // The first delay doubles from 5 s, or from the longest when that is shorter.
    let queue_retry_base = args.queue_retry_max_secs.min(5).to_string();
    let sink = args.sink;
    let faults = args.faults.plan()?;
    let bins = binaries()?;

    let mut stream_config = StreamConfig::new(&stream);
    stream_config.buffer_interval = Duration::from_secs(args.buffer_secs);
    stream_config.gzip = args.gzip;
    let partitioning = args.partitioning;
    if partitioning {
        stream_config.partition_prefix = Some(firehose::PARTITION_PREFIX.to_owned());
    }
    let partitioning = if partitioning { "true" } else { "false" };
    let iceberg = args.destination == DestinationArg::Iceberg;
    let destination = if iceberg { "iceberg" } else { "json" };
    if iceberg {
        stream_config.iceberg = Some(DEV_DATABASE.to_owned());
    }
    let mut config = Config::new(&stream, data_dir.clone());
    config.listen = format!("127.0.0.1:{}", args.firehose_port);
    // Kinesis and SQS live in moto; with a stream between, the delivery
    // stream reads it. The API Gateway path always puts to a delivery stream
    // of its own, so `edgehose receipts` accounts for the edge's events alone.
    let region = firehose::REGION_DEFAULT;
    let moto = if sink == Sink::Firehose {
        None
    } else {
        Some(Moto::start()?)
    };
    let dev_key =
        edgehose_shared::sigv4::sign::Credentials::new(firehose::DEV_ACCESS_KEY_ID, firehose::DEV_SECRET_ACCESS_KEY);
    let api_stream = format!("{stream}-apigw");
    let mut sink_env: Vec<(&str, String)> = Vec::new();
    match (sink, &moto) {
        (Sink::Kinesis, Some(moto)) => {
            let create = serde_json::json!({"StreamName": stream, "ShardCount": 2});
            json_call::call(
                &moto.endpoint(),
                json_call::KINESIS,
                "CreateStream",
                &create,
                region,
                &dev_key,
            )?;
            stream_config.kinesis_source = Some(KinesisSource {
                endpoint: moto.endpoint(),
                stream: stream.clone(),
                region: region.to_owned(),
                access_key_id: firehose::DEV_ACCESS_KEY_ID.to_owned(),
                secret_access_key: firehose::DEV_SECRET_ACCESS_KEY.to_owned(),
            });
            sink_env.extend([
                ("SINK", "kinesis".to_owned()),
                ("KINESIS_STREAM", stream.clone()),
                ("KINESIS_ENDPOINT", moto.endpoint()),
            ]);
        }
        (Sink::Sqs, Some(moto)) => {
            let create = serde_json::json!({"QueueName": stream});
            let made = json_call::call(
                &moto.endpoint(),
                json_call::SQS,
                "CreateQueue",
                &create,
                region,
                &dev_key,
            )?;
            let url = made["QueueUrl"]
                .as_str()
                .ok_or(format!("CreateQueue: no QueueUrl in {made}"))?;
            sink_env.extend([
                ("SINK", "sqs".to_owned()),
                ("SQS_QUEUE_URL", url.to_owned()),
                ("SQS_ENDPOINT", moto.endpoint()),
            ]);
        }
        _ => sink_env.push(("FIREHOSE_STREAM", stream.clone())),
    }
    let mut api_stream_config = stream_config.clone();
    api_stream_config.name = api_stream.clone();
    api_stream_config.kinesis_source = None;
    config.streams = vec![stream_config, api_stream_config];
    config.faults = faults;
    let (write_keys, sources) = (args.write_keys.clone(), args.sources.clone());
    let mut transform_env = transform_env();
    transform_env.push(("SOURCES".to_owned(), sources.clone()));
    transform_env.push(("PARTITIONING".to_owned(), partitioning.to_owned()));
    transform_env.push(("DESTINATION".to_owned(), destination.to_owned()));
    transform_env.push(("DATABASE_NAME".to_owned(), DEV_DATABASE.to_owned()));
    config.transform = Some((bins.transform.clone(), transform_env));
    let firehose = FirehoseLocal::start(config)?;
    let policy = args.regions.as_deref().map(regions_policy).transpose()?;
    let regional = match &policy {
        Some(policy) => start_regions(policy, &args, &stream, &bins, &firehose)?,
        None => Vec::new(),
    };

    // The request-facing settings both paths read alike, so they answer alike.
    let strict = if args.strict { "true" } else { "false" };
    // No keys given: a local run is anonymous, and says so (a deployment
    // without WRITE_KEYS refuses to start unless ALLOW_ANONYMOUS says it too).
    let anonymous = if write_keys.trim().is_empty() { "true" } else { "false" };
    let api_settings = [
        ("STRICT", strict),
        ("ALLOWED_ORIGINS", "*"),
        ("WRITE_KEYS", write_keys.as_str()),
        ("ALLOW_ANONYMOUS", anonymous),
        ("SOURCES", sources.as_str()),
        ("DESTINATION", destination),
    ];
    let mut api_env = vec![
        ("FIREHOSE_STREAM", api_stream.as_str()),
        ("AWS_REGION", region),
        ("AWS_ACCESS_KEY_ID", firehose::DEV_ACCESS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", firehose::DEV_SECRET_ACCESS_KEY),
        ("FIREHOSE_ENDPOINT", firehose.url()),
    ];
    api_env.extend(api_settings);
    let api = ApiGateway::start(
        &format!("127.0.0.1:{}", args.api_port),
        &bins.ingest_api,
        &api_env,
        Some(&data_dir.join("ingest-api.log")),
    )?;

    let mut edge_env = vec![
        ("AWS_REGION", region),
        ("FIREHOSE_ENDPOINT", firehose.url()),
        ("AWS_ACCESS_KEY_ID", firehose::DEV_ACCESS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", firehose::DEV_SECRET_ACCESS_KEY),
        ("FORWARD_MODE", mode),
        ("QUEUE_WINDOW_MS", queue_window_ms.as_str()),
        ("QUEUE_RETRY_BASE_SECONDS", queue_retry_base.as_str()),
        ("QUEUE_RETRY_MAX_SECONDS", queue_retry_max.as_str()),
        ("PARTITIONING", partitioning),
    ];
    edge_env.extend(api_settings);
    edge_env.extend(sink_env.iter().map(|(k, v)| (*k, v.as_str())));
    edge_env.push(("ADMIN_KEY", args.admin_key.as_str()));
    let region_env: Vec<(String, String)> = regional.iter().flat_map(|r| r.env.clone()).collect();
    if let Some(policy) = &policy {
        edge_env.push(("REGIONS", policy.as_str()));
        edge_env.extend(region_env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    }
    let mut options = EdgeOptions::new(&edge_env);
    options.port = Some(args.port);
    options.max_retries = 10;
    // Dead letters are archived by the Worker itself, as deployed, in a
    // bucket kept across restarts; `edgehose redrive` brings them back.
    options.persist = Some(data_dir.join(".miniflare"));
    options.build = Build::Release;
    options.inspector_port = args.inspector_port;
    options.cloudflare_faults = args.cloudflare.faults();
    // The Worker's console (dead letters, LOST lines, refusals) beside the functions' logs.
    options.log_file = Some(data_dir.join("edge.log"));
    let edge = Edge::start(&options)?;

    banner(edge.url(), api.url(), firehose.url(), &data_dir, &stream, mode);
    match (sink, &moto) {
        (Sink::Kinesis, Some(moto)) => println!(
            "  sink kinesis: the edge writes to Kinesis stream {stream} in moto ({}); firehose-local reads it, de-aggregated, into the transform\n  (the API Gateway path puts to its own delivery stream, {api_stream})\n",
            moto.endpoint()
        ),
        (Sink::Sqs, Some(moto)) => println!(
            "  sink sqs: the edge writes to SQS queue {stream} in moto ({}); read it with any SQS client, e.g.\n    aws --endpoint-url {} sqs receive-message --queue-url {}\n",
            moto.endpoint(),
            moto.endpoint(),
            sink_env
                .iter()
                .find(|(k, _)| *k == "SQS_QUEUE_URL")
                .map_or("", |(_, v)| v.as_str())
        ),
        _ => {}
    }
    if iceberg {
        let warehouse = data_dir.join(firehose::ICEBERG_DIR);
        println!(
            "  destination iceberg: rows land in Iceberg tables {db}.events_v1, {db}.events_segment, {db}.events_source
  (a catalog on disk, {w}), one row per event (key_id, id): a resent event updates its row. Read one with pyiceberg:
    {py} cli/local/py/iceberg_read.py --warehouse {w} {db}.events_v1
",
            db = DEV_DATABASE,
            w = warehouse.display(),
            py = tools::python().map_or_else(|_| "python3".to_owned(), |p| p.display().to_string()),
        );
    }
    if !regional.is_empty() {
        println!("  regions ({}):", policy.as_deref().unwrap_or_default());
        for r in &regional {
            println!(
                "    {:<4} {:<14} firehose-local {}  data {}",
                r.name,
                r.aws_region,
                r.url,
                r.dir.display()
            );
        }
        println!(
            "  say where a request comes from as Cloudflare would: curl -H 'MF-CF-Blob: {{\"country\":\"DE\",\"clientAcceptEncoding\":\"\"}}' …\n"
        );
    }
    if anonymous == "true" {
        println!(
            "  anonymous: no WRITE_KEYS, so any client may post (ALLOW_ANONYMOUS); WRITE_KEYS=id:key,… make dev requires keys\n"
        );
    } else {
        println!("  write keys required on both paths (WRITE_KEYS); a request without one is answered 401\n");
    }
    if let Some(inspector) = edge.inspector_url() {
        println!("  DevTools for the edge Worker (chrome://inspect, or a CDP client): {inspector}\n");
    }
    let quiet = args.quiet;
    let mut last = (
        edge_accepted(edge.url(), &args.admin_key),
        api.accepted_events(),
        firehose.stats(),
    );
    let mut tick = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
        if tick.elapsed() < Duration::from_secs(1) {
            continue;
        }
        tick = Instant::now();
        let now = (
            edge_accepted(edge.url(), &args.admin_key),
            api.accepted_events(),
            firehose.stats(),
        );
        if !quiet && let Some(line) = progress(&last, &now) {
            println!("{line}");
        }
        last = now;
    }
    let stopping = Instant::now();
    println!("\nstopping: draining the edge's queue into firehose-local…");
    // With sink sqs the edge's events stay in the queue, not in firehose-local.
    let edge_url = if sink == Sink::Sqs { None } else { Some(edge.url()) };
    let left = drain(edge_url, &args.admin_key, &api, &firehose, Duration::from_secs(30));
    if left > 0 {
        println!(
            "  {left} events the edge accepted are not in firehose-local after 30 s (Firehose refusing them? see the dead letters: edgehose redrive --count)"
        );
    }
    println!("  then the edge, the API Gateway path, and firehose-local (delivering what it buffered)…");
    drop(edge);
    drop(api);
    // Deliver every buffer first, so the counts below are the final ones.
    if let Err(e) = firehose.flush(Duration::from_secs(60)) {
        println!("  firehose-local: {e}");
    }
    let s = firehose.stats();
    drop(firehose);
    println!("  stopped in {:.1} s", stopping.elapsed().as_secs_f64());
    println!(
        "stopped. {} records received, {} delivered, {} failed, {} dropped; data is in {}",
        s.records_received,
        s.records_delivered,
        s.records_failed,
        s.records_dropped,
        data_dir.display()
    );
    Ok(())
}

/// The transform's environment: the JSON Schemas shipped in the repository.
fn transform_env() -> Vec<(String, String)> {
    let schemas = tools::repo_root().join("regional/schemas");
    let mut env = Vec::new();
    if schemas.is_dir() {
        env.push(("SCHEMA_DIR".to_owned(), schemas.display().to_string()));
    }
    env
}

/// Waits until every event either path accepted is in firehose-local (the
/// edge's queue drained: nothing new arrives for two of its batch windows),
/// or `timeout` passes; returns how many are still missing.
fn drain(edge: Option<&str>, admin_key: &str, api: &ApiGateway, firehose: &FirehoseLocal, timeout: Duration) -> u64 {
    let start = Instant::now();
    let (mut last, mut still_since) = (u64::MAX, Instant::now());
    loop {
        // Read the paths first: an event accepted later is counted next time.
        let accepted = edge.map_or(0, |url| edge_accepted(url, admin_key)) + api.accepted_events();
        let received = firehose.stats().lines_received;
        if received != last {
            (last, still_since) = (received, Instant::now());
        }
        let quiet = still_since.elapsed() > Duration::from_secs(2);
        if (received >= accepted && quiet) || start.elapsed() > timeout {
            return accepted.saturating_sub(received);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Events the edge isolate accepted so far (its `/healthz` counters, shown
/// for the admin key).
fn edge_accepted(url: &str, admin_key: &str) -> u64 {
    tools::healthz(url, admin_key)
        .ok()
        .and_then(|v| v["isolate"]["accepted_events"].as_u64())
        .unwrap_or(0)
}

fn banner(edge: &str, api: &str, firehose: &str, data: &std::path::Path, stream: &str, mode: &str) {
    let data = data.display();
    println!(
        "\
edgehose dev is running. Ctrl-C stops everything.

  edge Worker (workerd, {mode} mode)  {edge}/v1/events
  API Gateway path (ingest-api)       {api}/v1/events
  firehose-local (stream {stream})     {firehose}   stats: {firehose}/_edgehose/stats
  every event accounted for           edgehose receipts --since 10m (per key and minute)
  Segment / RudderStack SDKs: host (dataPlaneUrl) {edge}; devices: {edge}/v1/ingest/<name>

Try:
  curl -s {edge}/v1/events -H 'content-type: application/json' \\
       -d '{{\"event\":\"click\",\"message_id\":\"m-1\",\"url\":\"https://shop.example/\",\"properties\":{{\"price\":9.5}}}}'

Data lands in {data}/ (Firehose's S3 layout, every ~5 s):
  {data}/YYYY/MM/DD/HH/{stream}-1-…          validated events, one JSON per line
  {data}/processing-failed/YYYY/MM/DD/HH/…  records with no valid event, in AWS's error format
  dead letters (what the edge gave up on)   archived in the Worker's DEAD_LETTERS bucket: edgehose redrive
  {data}/edge.log                            the edge Worker's log (dead letters, LOST lines, faults)
  {data}/transform.log, ingest-api.log       the functions' logs
Break something:
  curl -s -X PUT {firehose}/_edgehose/faults -d '{{\"partial\":0.3,\"outage_secs\":5}}'      Firehose's side
  curl -s -X PUT {edge}/_edgehose/faults -d '{{\"queue_outage_secs\":20,\"r2_fail\":0.5}}'   Cloudflare's side
"
    );
}

type Snapshot = (u64, u64, firehose::Stats);

fn progress(before: &Snapshot, after: &Snapshot) -> Option<String> {
    let (e0, a0, f0) = before;
    let (e1, a1, f1) = after;
    if e1 == e0 && a1 == a0 && f1 == f0 {
        return None;
    }
    let d = |x: u64, y: u64| y.saturating_sub(x);
    let t = edgehose_local::clock::now().to_rfc3339();
    Some(format!(
        "{} edge +{} accepted | api-gw +{} | firehose +{} records in, +{} delivered ({} events), +{} failed, {} buffered, {} refused calls",
        &t[11..19],
        d(*e0, *e1),
        d(*a0, *a1),
        d(f0.records_received, f1.records_received),
        d(f0.records_delivered, f1.records_delivered),
        d(f0.lines_delivered, f1.lines_delivered),
        d(f0.records_failed, f1.records_failed),
        f1.records_buffered,
        d(f0.refused_calls, f1.refused_calls),
    ))
}

/// `--regions`: a REGIONS policy, or names alone (`eu,us`: the first the
/// EEA's, the last every other country's).
fn regions_policy(arg: &str) -> Result<String, String> {
    let text = if arg.contains(':') {
        arg.to_owned()
    } else {
        let names: Vec<&str> = arg.split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
        match names.as_slice() {
            [first, .., last] => {
                let middle = names[1..names.len() - 1]
                    .iter()
                    .map(|n| format!("{n}: ; "))
                    .collect::<String>();
                format!("{first}: EEA; {middle}{last}: *")
            }
            _ => {
                return Err(format!(
                    "--regions {arg:?}: give two region names (eu,us) or a REGIONS policy"
                ));
            }
        }
    };
    edgehose_shared::residency::Policy::parse(&text).map_err(|e| format!("--regions: REGIONS {e}"))?;
    Ok(text)
}

/// One region of `--regions`: where its firehose-local listens and writes,
/// its AWS region, and the edge's settings for it.
struct DevRegion {
    name: String,
    aws_region: String,
    url: String,
    dir: PathBuf,
    env: Vec<(String, String)>,
    /// Its own firehose-local (`None`: the default region's is the main one).
    _firehose: Option<FirehoseLocal>,
}

/// Starts a firehose-local for each region but the default one (which uses
/// `main`), and the edge's settings for every region. A region serving
/// EU/EEA countries is put in eu-central-1, the standby of such a region
/// in eu-west-1, the rest in us-east-1. Each region's policy settings are
/// taken from the environment as the Worker names them (`EU_STANDBY=eu2`,
/// `EU_FAILOVER_AFTER_MS`, `EU_PROBE_MS`, `EU_STRIP`, `EU_HASH`,
/// `EU_HASH_SECRET`).
fn start_regions(
    policy: &str,
    args: &DevArgs,
    stream: &str,
    bins: &Binaries,
    main: &FirehoseLocal,
) -> Result<Vec<DevRegion>, String> {
    let policy = edgehose_shared::residency::Policy::parse(policy).map_err(|e| format!("--regions: {e}"))?;
    let eea = edgehose_shared::residency::group("EEA").unwrap_or_default();
    let in_eu = |r: &edgehose_shared::residency::Region| r.countries.iter().any(|c| eea.contains(&c.as_str()));
    let env = |name: String| {
        std::env::var(&name)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(|v| (name, v))
    };
    let standby_of_eu = |name: &str| {
        policy.regions().iter().any(|r| {
            in_eu(r)
                && std::env::var(format!("{}STANDBY", r.prefix())).is_ok_and(|s| s.trim().eq_ignore_ascii_case(name))
        })
    };
    let mut out = Vec::new();
    for region in policy.regions() {
        let aws_region = if in_eu(region) {
            "eu-central-1"
        } else if standby_of_eu(&region.name) {
            "eu-west-1"
        } else {
            firehose::REGION_DEFAULT
        };
        let (url, dir, own) = if region.default && aws_region == firehose::REGION_DEFAULT {
            (main.url().to_owned(), args.data_dir.clone(), None)
        } else {
            let dir = args.data_dir.join(&region.name);
            // `listen` is any free port by default: the banner names it.
            let mut config = Config::new(stream, dir.clone());
            // It checks that requests are signed for its own region, as Firehose does.
            config.region = aws_region.to_owned();
            config.streams[0].buffer_interval = Duration::from_secs(args.buffer_secs);
            config.streams[0].gzip = args.gzip;
            config.transform = Some((bins.transform.clone(), transform_env()));
            let started = FirehoseLocal::start(config)?;
            (started.url().to_owned(), dir, Some(started))
        };
        let prefix = region.prefix();
        let mut settings = vec![
            (format!("{prefix}AWS_REGION"), aws_region.to_owned()),
            (format!("{prefix}FIREHOSE_STREAM"), stream.to_owned()),
            (format!("{prefix}FIREHOSE_ENDPOINT"), url.clone()),
        ];
        for setting in [
            "STANDBY",
            "FAILOVER_AFTER_MS",
            "PROBE_MS",
            "STRIP",
            "HASH",
            "HASH_SECRET",
        ] {
            settings.extend(env(format!("{prefix}{setting}")));
        }
        out.push(DevRegion {
            name: region.name.clone(),
            aws_region: aws_region.to_owned(),
            url,
            dir,
            env: settings,
            _firehose: own,
        });
    }
    Ok(out)
}
