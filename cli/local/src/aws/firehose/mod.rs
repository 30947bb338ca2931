//! firehose-local: a Firehose stand-in for development and tests that speaks
//! Firehose's JSON 1.1 protocol (`PutRecordBatch`, `PutRecord`,
//! `DescribeDeliveryStream`, `ListDeliveryStreams`), checks SigV4 like AWS,
//! buffers like Firehose, runs the real transformation Lambda and writes the
//! result in the S3 key layout Firehose uses.
//!
//! Besides the AWS API at `POST /`, it serves a small control API:
//!
//! | request | what it does |
//! |---|---|
//! | `GET /_edgehose/stats` | counters (records received, delivered, failed…) |
//! | `GET`/`PUT /_edgehose/faults` | the fault plan ([`FaultPlan`] as JSON) |
//! | `POST /_edgehose/flush` | delivers every buffer now |

mod counters;
mod delivery;
pub mod iceberg;
mod kinesis_source;
mod protocol;
pub mod spool;
pub mod store;
mod stream;
mod transform;
mod transform_answer;

pub use kinesis_source::KinesisSource;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::faults::{self, FaultPlan, FaultStats};
pub use counters::Counters;
use store::Store;
pub use stream::Record;
pub use transform::Transform;

/// The account id in ARNs and error messages.
pub const ACCOUNT: &str = "000000000000";
/// The region firehose-local answers for unless told otherwise.
pub const REGION_DEFAULT: &str = "us-east-1";
/// The access key firehose-local accepts unless told otherwise.
pub const DEV_ACCESS_KEY_ID: &str = "AKIDEDGEHOSELOCAL";
/// Its secret (a local stand-in: not a secret, never an AWS credential).
pub const DEV_SECRET_ACCESS_KEY: &str = "edgehose-local-secret";

/// The object prefix the SAM template gives a partitioned stream
/// (`DynamicPartitioning=true`): by the transform's table (`events`, or a
/// labelled lane's: `limited`, `bots`), event name and day.
pub const PARTITION_PREFIX: &str = "!{partitionKeyFromLambda:table}/event_name=!{partitionKeyFromLambda:event_name}/date=!{partitionKeyFromLambda:event_date}/";

/// Where the Iceberg destination's catalog is, under the data directory
/// (as the template's tables are under the bucket's `iceberg/`).
pub const ICEBERG_DIR: &str = "iceberg";

/// One delivery stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamConfig {
    /// Its name.
    pub name: String,
    /// Key prefix of delivered objects (S3 `Prefix`).
    pub prefix: String,
    /// Key prefix of records that failed processing (S3 `ErrorOutputPrefix`).
    pub error_prefix: String,
    /// Buffering hint: deliver once this many bytes are buffered.
    pub buffer_bytes: usize,
    /// Buffering hint: deliver once the oldest buffered record is this old.
    pub buffer_interval: Duration,
    /// Gzip delivered objects (`CompressionFormat: GZIP`, keys end in `.gz`).
    pub gzip: bool,
    /// Record bytes per transform invocation (the processor's buffer size).
    pub processor_bytes: usize,
    /// Dynamic partitioning: the key prefix of delivered objects, with
    /// `!{partitionKeyFromLambda:NAME}` standing for the partition key the
    /// transform returned in each record's metadata (S3 `Prefix` with
    /// `DynamicPartitioningConfiguration` enabled). Replaces `prefix` and the
    /// time prefix; one object per partition per buffer.
    pub partition_prefix: Option<String>,
    /// A Kinesis data stream this stream reads instead of taking direct puts
    /// (`KinesisStreamAsSource`).
    pub kinesis_source: Option<KinesisSource>,
    /// The Iceberg destination (`IcebergDestinationConfiguration`): the Glue
    /// database whose tables each transformed record's row goes to, in the
    /// catalog under `<data dir>/iceberg/` ([`iceberg`]); `None` writes S3
    /// objects.
    pub iceberg: Option<String>,
}

impl StreamConfig {
    /// A stream with Firehose's defaults for a Lambda-processed S3 destination,
    /// except a shorter interval (60 s is long to wait for on a laptop).
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            prefix: String::new(),
            error_prefix: "processing-failed/".to_owned(),
            buffer_bytes: 5 * 1024 * 1024,
            buffer_interval: Duration::from_secs(5),
            gzip: false,
            processor_bytes: 1024 * 1024,
            partition_prefix: None,
            kinesis_source: None,
            iceberg: None,
        }
    }
}

/// How firehose-local runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// `host:port` to listen on (`127.0.0.1:0` for any free port).
    pub listen: String,
    /// The region requests must be signed for.
    pub region: String,
    /// Access key id → secret. Every call must be signed with one of them.
    pub credentials: BTreeMap<String, String>,
    /// The streams.
    pub streams: Vec<StreamConfig>,
    /// Where objects land.
    pub data_dir: PathBuf,
    /// The transformation function's binary, with its environment.
    pub transform: Option<(PathBuf, Vec<(String, String)>)>,
    /// Retries after a failed transform invocation.
    pub transform_retries: u32,
    /// Faults from the start.
    pub faults: FaultPlan,
    /// Seed of the fault draws.
    pub seed: u64,
    /// HTTP worker threads.
    pub threads: usize,
}

impl Config {
    /// One stream, the development credentials, no transform, no faults.
    pub fn new(stream: &str, data_dir: PathBuf) -> Self {
        Self {
            listen: "127.0.0.1:0".into(),
            region: REGION_DEFAULT.into(),
            credentials: BTreeMap::from([(DEV_ACCESS_KEY_ID.to_owned(), DEV_SECRET_ACCESS_KEY.to_owned())]),
            streams: vec![StreamConfig::new(stream)],
            data_dir,
            transform: None,
            transform_retries: 3,
            faults: FaultPlan::default(),
            seed: 1,
            threads: 4,
        }
    }
}

/// Everything the HTTP threads share.
pub(crate) struct Inner {
    config: Config,
    streams: BTreeMap<String, Arc<stream::Stream>>,
    store: Store,
    transform: Option<Transform>,
    iceberg: Option<iceberg::Iceberg>,
    faults: Mutex<faults::Faults>,
    counters: Counters,
    /// Stops the HTTP threads.
    stop: AtomicBool,
    /// Stops the delivery threads (after the HTTP threads are gone).
    stop_delivery: AtomicBool,
}

/// A snapshot of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Accepted calls.
    pub calls: u64,
    /// Refused calls.
    pub refused_calls: u64,
    /// Records acknowledged.
    pub records_received: u64,
    /// Bytes acknowledged.
    pub bytes_received: u64,
    /// Lines (envelopes, from the edge) in the records acknowledged.
    pub lines_received: u64,
    /// Records delivered to the destination.
    pub records_delivered: u64,
    /// Records dropped by the transform.
    pub records_dropped: u64,
    /// Records written to the error prefix.
    pub records_failed: u64,
    /// Lines (events) in the delivered objects.
    pub lines_delivered: u64,
    /// Objects written.
    pub objects: u64,
    /// Records buffered, not yet delivered.
    pub records_buffered: u64,
    /// Transform invocations.
    pub invocations: u64,
    /// Transform invocations that failed.
    pub invocation_errors: u64,
    /// Injected faults.
    pub faults: FaultStats,
}

/// A running firehose-local; stops (delivering what it buffered) when dropped.
pub struct FirehoseLocal {
    url: String,
    inner: Arc<Inner>,
    threads: Vec<JoinHandle<()>>,
    deliverers: Vec<JoinHandle<()>>,
}

impl FirehoseLocal {
    /// Starts the server, the delivery threads and the transform.
    pub fn start(config: Config) -> Result<Self> {
        config.faults.check()?;
        for s in &config.streams {
            edgehose_shared::firehose::check_stream_name(&s.name).map_err(|e| Error::config(e.to_string()))?;
        }
        let store = Store::open(&config.data_dir)?;
        let transform = match &config.transform {
            Some((binary, env)) => Some(Transform::start(
                binary.clone(),
                env.clone(),
                Some(config.data_dir.join("transform.log")),
                config.transform_retries,
                Duration::from_secs(60),
            )?),
            None => None,
        };
        let databases: std::collections::BTreeSet<&String> =
            config.streams.iter().filter_map(|s| s.iceberg.as_ref()).collect();
        let iceberg = match databases.into_iter().collect::<Vec<_>>().as_slice() {
            [] => None,
            [database] => Some(iceberg::Iceberg::open(&config.data_dir.join(ICEBERG_DIR), database)?),
            several => {
                return Err(Error::config(format!(
                    "streams write to Iceberg databases {several:?}: firehose-local's catalog holds one"
                )));
            }
        };
        let server = tiny_http::Server::http(&config.listen).map_err(|e| Error::listen(&config.listen, e))?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| Error::config("firehose-local listens on a non-IP address"))?;
        let streams = config
            .streams
            .iter()
            .map(|s| {
                let arn = format!("arn:aws:firehose:{}:{ACCOUNT}:deliverystream/{}", config.region, s.name);
                (s.name.clone(), Arc::new(stream::Stream::new(s.clone(), arn)))
            })
            .collect();
        let inner = Arc::new(Inner {
            faults: Mutex::new(faults::Faults::new(config.faults.clone(), config.seed)),
            config,
            streams,
            store,
            transform,
            iceberg,
            counters: Counters::default(),
            stop: AtomicBool::new(false),
            stop_delivery: AtomicBool::new(false),
        });
        let server = Arc::new(server);
        let mut threads = Vec::new();
        let mut deliverers = Vec::new();
        for _ in 0..inner.config.threads.max(1) {
            let (server, inner) = (server.clone(), inner.clone());
            threads.push(std::thread::spawn(move || {
                while !inner.stop.load(Ordering::SeqCst) {
                    if let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(100)) {
                        protocol::serve(&inner, request);
                    }
                }
            }));
        }
        for stream in inner.streams.values() {
            if let Some(source) = stream.config.kinesis_source.clone() {
                let (stream, inner) = (stream.clone(), inner.clone());
                threads.push(std::thread::spawn(move || {
                    source.run(&inner.stop, |datas| inner.accept_read(&stream, datas));
                }));
            }
            let (stream, inner) = (stream.clone(), inner.clone());
            deliverers.push(std::thread::spawn(move || {
                delivery::run(
                    &stream,
                    &inner.store,
                    inner.transform.as_ref(),
                    inner.iceberg.as_ref(),
                    &inner.counters,
                    &inner.stop_delivery,
                );
            }));
        }
        Ok(Self {
            url: format!("http://{addr}"),
            inner,
            threads,
            deliverers,
        })
    }

    /// `http://127.0.0.1:PORT`: the endpoint clients use.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        self.inner.store.root()
    }

    /// The counters now.
    pub fn stats(&self) -> Stats {
        self.inner.stats()
    }

    /// Replaces the fault plan (an outage starts now).
    pub fn set_faults(&self, plan: FaultPlan) -> Result<()> {
        plan.check()?;
        self.inner
            .faults
            .lock()
            .map_err(|_| Error::Poisoned("the fault plan"))?
            .set(plan);
        Ok(())
    }

    /// Delivers every buffer now and waits until nothing is buffered.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        self.inner.flush(timeout)
    }

    /// What the transform printed recently.
    pub fn transform_log(&self) -> String {
        self.inner.transform.as_ref().map(Transform::log).unwrap_or_default()
    }
}

impl Inner {
    /// Takes records read from a source stream as a put would, counted alike.
    fn accept_read(&self, stream: &stream::Stream, datas: Vec<Vec<u8>>) {
        let arrival_ms = crate::clock::now().as_millis();
        let lines = datas
            .iter()
            .map(|d| d.iter().filter(|&&b| b == b'\n').count() as u64)
            .sum::<u64>();
        let bytes = datas.iter().map(|d| d.len() as u64).sum::<u64>();
        let n = datas.len() as u64;
        let records = datas
            .into_iter()
            .map(|data| stream::Record {
                id: protocol::record_id(),
                arrival_ms,
                data,
            })
            .collect();
        if let Err(e) = stream.accept(&self.store, records) {
            eprintln!("firehose-local: could not spool records read from Kinesis: {e}");
            return;
        }
        let c = &self.counters;
        c.records_received.fetch_add(n, Ordering::Relaxed);
        c.bytes_received.fetch_add(bytes, Ordering::Relaxed);
        c.lines_received.fetch_add(lines, Ordering::Relaxed);
    }

    fn stats(&self) -> Stats {
        let c = &self.counters;
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            calls: get(&c.calls),
            refused_calls: get(&c.refused_calls),
            records_received: get(&c.records_received),
            bytes_received: get(&c.bytes_received),
            lines_received: get(&c.lines_received),
            records_delivered: get(&c.records_delivered),
            records_dropped: get(&c.records_dropped),
            records_failed: get(&c.records_failed),
            lines_delivered: get(&c.lines_delivered),
            objects: get(&c.objects),
            records_buffered: self.streams.values().map(|s| s.buffered() as u64).sum(),
            invocations: get(&c.invocations),
            invocation_errors: get(&c.invocation_errors),
            faults: self
                .faults
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .stats,
        }
    }

    fn flush(&self, timeout: Duration) -> Result<()> {
        let start = std::time::Instant::now();
        for s in self.streams.values() {
            s.request_flush();
        }
        loop {
            let s = self.stats();
            let settled = s.records_delivered + s.records_dropped + s.records_failed;
            if s.records_buffered == 0 && settled >= s.records_received {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(Error::timeout(format!(
                    "records still undelivered after {timeout:?}: {s:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for FirehoseLocal {
    fn drop(&mut self) {
        // No new calls first; then the delivery threads take their buffers
        // one last time and deliver them.
        self.inner.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        self.inner.stop_delivery.store(true, Ordering::SeqCst);
        for t in self.deliverers.drain(..) {
            let _ = t.join();
        }
    }
}
