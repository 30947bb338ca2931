//! The Worker's typed configuration, read once per isolate from `[vars]`,
//! secrets and bindings and kept for the isolate's life ([`isolate`]). A bad
//! or missing setting is named in a 500 answer and in the log; secrets never
//! are.

use std::cell::RefCell;
use std::rc::Rc;

use edgehose_shared::api::{ApiConfig, ApiError};
use edgehose_shared::aws::Endpoint;
use edgehose_shared::batch::PackConfig;
use edgehose_shared::failover::FailoverPolicy;
use edgehose_shared::firehose;
use edgehose_shared::judge::Rules;
use edgehose_shared::kinesis::pack::PackConfig as KinesisPackConfig;
use edgehose_shared::kinesis::partition::{self, PartitionKeys};
use edgehose_shared::kinesis::put_records as kinesis;
use edgehose_shared::limits::{MAX_BODY_BYTES, MAX_HELD_BYTES};
use edgehose_shared::requeue::RequeuePolicy;
use edgehose_shared::residency::{self, Policy};
use edgehose_shared::retry::RetryPolicy;
use edgehose_shared::settings::{SettingError, Settings};
use edgehose_shared::sigv4::sign::Credentials;
use edgehose_shared::sqs::pack::PackConfig as SqsPackConfig;
use edgehose_shared::sqs::{QueueUrl, send_message_batch as sqs};
use wasm_bindgen::JsValue;
use worker::{Env, console_error};

/// The queue binding for queue mode: the first shard's.
pub const EVENTS_QUEUE: &str = "EVENTS_QUEUE";
/// The most events queues one Worker shards over (`QUEUE_SHARDS`): 1M
/// one-event requests a second need 200 at 5,000 messages a second each.
pub const MAX_QUEUE_SHARDS: usize = 256;

/// The binding of events queue shard `k`: `EVENTS_QUEUE`, then
/// `EVENTS_QUEUE_1`, `EVENTS_QUEUE_2`, …
pub fn events_queue_binding(k: usize) -> String {
    if k == 0 {
        EVENTS_QUEUE.to_owned()
    } else {
        format!("{EVENTS_QUEUE}_{k}")
    }
}
/// The least `MAX_HELD_BYTES` may be: one request's largest body, so any
/// request an empty isolate accepts can be held.
pub const MIN_HELD_BYTES: usize = 2 * MAX_BODY_BYTES;

/// The largest envelope line an accepted event of `max_event_bytes` makes:
/// the event as sent, an id taken from it (at most as long), and 1 KiB for
/// the envelope's own fields (times, key id, edge metadata, door).
pub fn largest_line_bytes(max_event_bytes: usize) -> usize {
    2 * max_event_bytes + 1024
}

/// The dead-letter queue's name when `DEAD_LETTER_QUEUE_NAME` is unset.
pub const DEFAULT_DEAD_LETTER_QUEUE_NAME: &str = "edgehose-events-dlq";

/// The dead-letter queues' names and the binding prefix of the region each
/// belongs to, read alone (`DEAD_LETTER_QUEUE_NAME`; with `REGIONS`, each
/// region's `<NAME>_DEAD_LETTER_QUEUE_NAME`, by default
/// `edgehose-events-dlq-<name>`): their batches are archived, in their
/// region's archive, even when the rest of the configuration is broken.
pub fn dead_letter_queues(env: &Env) -> Vec<(String, String)> {
    let var = |name: &str| {
        env.var(name)
            .map(|v| v.to_string())
            .ok()
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let regions = var(Policy::SETTING).and_then(|text| Policy::parse(&text).ok());
    match regions {
        None => vec![(
            var("DEAD_LETTER_QUEUE_NAME").unwrap_or_else(|| DEFAULT_DEAD_LETTER_QUEUE_NAME.to_owned()),
            String::new(),
        )],
        Some(policy) => policy
            .regions()
            .iter()
            .map(|r| {
                let prefix = r.prefix();
                let name = var(&format!("{prefix}DEAD_LETTER_QUEUE_NAME"))
                    .unwrap_or_else(|| format!("{DEFAULT_DEAD_LETTER_QUEUE_NAME}-{}", r.name));
                (name, prefix)
            })
            .collect(),
    }
}

/// The settings that say where a region's events are stored: each region
/// sets its own (`EU_AWS_REGION`, `EU_FIREHOSE_STREAM`, …), never inherits
/// the unprefixed one, so no event can land in another region's stream
/// because a setting was left out.
pub const REGION_OWN_SETTINGS: &[&str] = &[
    "AWS_REGION",
    "FIREHOSE_STREAM",
    "FIREHOSE_ENDPOINT",
    "KINESIS_STREAM",
    "KINESIS_ENDPOINT",
    "SQS_QUEUE_URL",
    "SQS_ENDPOINT",
    "DEAD_LETTER_QUEUE_NAME",
];

/// How accepted events travel to Firehose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `waitUntil` + one signed `PutRecordBatch` per request.
    Direct,
    /// A Cloudflare Queue, drained by this Worker's queue consumer in batches.
    Queue,
}

/// Where events are delivered (`SINK`), with that sink's own settings.
#[derive(Debug, Clone)]
pub enum SinkConfig {
    /// A Firehose delivery stream (`SINK = "firehose"`, the default):
    /// `PutRecordBatch`, records of NDJSON lines.
    Firehose {
        /// The delivery streams (`FIREHOSE_STREAM`, comma-separated: each
        /// call goes to one, a retry to the next, so N streams take N times
        /// one stream's quotas).
        streams: Vec<String>,
        /// Where `PutRecordBatch` goes (`FIREHOSE_ENDPOINT`, else the region's).
        endpoint: Endpoint,
        /// How records are filled (`RECORD_TARGET_BYTES`; one line each with `DESTINATION = iceberg`).
        pack: PackConfig,
        /// The stream partitions dynamically (`PARTITIONING`, as the
        /// template's `DynamicPartitioning`): each record then holds one partition.
        partitioning: bool,
    },
    /// A Kinesis data stream (`SINK = "kinesis"`): `PutRecords`, lines in
    /// aggregated records under partition keys.
    Kinesis {
        /// The streams (`KINESIS_STREAM`, comma-separated: each key's events
        /// go to the one its hash picks).
        streams: Vec<String>,
        /// Where `PutRecords` goes (`KINESIS_ENDPOINT`, else the region's).
        endpoint: Endpoint,
        /// Aggregation, record size, explicit hash key (`KINESIS_*`).
        pack: KinesisPackConfig,
        /// How each event's partition key is chosen (`KINESIS_PARTITION_KEY`).
        keys: PartitionKeys,
    },
    /// An SQS queue (`SINK = "sqs"`): `SendMessageBatch`, lines in messages
    /// of up to `SQS_MESSAGE_TARGET_BYTES`.
    Sqs {
        /// The queues (`SQS_QUEUE_URL`, comma-separated: each FIFO group, or
        /// else each line, goes to the one its hash picks); a FIFO queue's
        /// name ends in `.fifo`, and all of them are FIFO or none.
        queues: Vec<QueueUrl>,
        /// Where `SendMessageBatch` goes (`SQS_ENDPOINT`, else the region's).
        endpoint: Endpoint,
        /// How messages are filled.
        pack: SqsPackConfig,
        /// A FIFO queue's message groups (`SQS_MESSAGE_GROUP`, chosen as
        /// Kinesis partition keys are).
        groups: PartitionKeys,
    },
}

impl SinkConfig {
    /// `firehose`, `kinesis` or `sqs`, for logs and dead-letter reasons.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Firehose { .. } => "firehose",
            Self::Kinesis { .. } => "kinesis",
            Self::Sqs { .. } => "sqs",
        }
    }

    /// Refuses a record or message size that an accepted event's line could
    /// outgrow: such a line could never be packed, and would go to the dead
    /// letters however often it is sent. A line is the event as sent, an id
    /// taken from it and the envelope's own fields: at most
    /// [`largest_line_bytes`] of `max_event_bytes`. (A quarantined malformed
    /// body can be larger; the one line that cannot be packed is then
    /// dead-lettered alone.)
    fn check_fits(&self, max_event_bytes: usize) -> Result<(), SettingError> {
        let largest = largest_line_bytes(max_event_bytes);
        // Firehose and Kinesis send a line larger than their target alone
        // (up to the service's 1,000 KiB / 1 MiB); an SQS message cannot pass its target.
        let (name, size) = match self {
            Self::Firehose { .. } | Self::Kinesis { .. } => return Ok(()),
            Self::Sqs { pack, .. } => ("SQS_MESSAGE_TARGET_BYTES", pack.message_target_bytes),
        };
        if size < largest {
            return Err(SettingError::new(
                name,
                format!(
                    "= {size} is smaller than the largest line an accepted event can make ({largest} bytes for MAX_EVENT_BYTES = {max_event_bytes}): raise it, or lower MAX_EVENT_BYTES"
                ),
            ));
        }
        Ok(())
    }

    /// Reads `SINK` and the chosen sink's settings.
    fn from_settings<F: Fn(&str) -> Option<String>>(s: &Settings<F>, region: &str) -> Result<Self, SettingError> {
        let endpoint = |name: &str, service: &str| match s.get(name) {
            Some(url) => Endpoint::parse(&url).map_err(|e| SettingError::new(name, e)),
            None => Endpoint::for_region(service, region).map_err(|e| SettingError::new("AWS_REGION", e)),
        };
        match s.get("SINK").as_deref().unwrap_or("firehose") {
            "firehose" => {
                s.required("FIREHOSE_STREAM")?;
                let streams = s.list("FIREHOSE_STREAM");
                for stream in &streams {
                    firehose::check_stream_name(stream).map_err(|e| SettingError::new("FIREHOSE_STREAM", e))?;
                }
                Ok(Self::Firehose {
                    streams,
                    endpoint: endpoint("FIREHOSE_ENDPOINT", firehose::SIGNING_SERVICE)?,
                    pack: PackConfig::from_settings(s)?,
                    partitioning: s.bool_or("PARTITIONING", false)?,
                })
            }
            "kinesis" => {
                s.required("KINESIS_STREAM")?;
                let streams = s.list("KINESIS_STREAM");
                for stream in &streams {
                    kinesis::check_stream_name(stream).map_err(|e| SettingError::new("KINESIS_STREAM", e))?;
                }
                Ok(Self::Kinesis {
                    streams,
                    endpoint: endpoint("KINESIS_ENDPOINT", kinesis::SIGNING_SERVICE)?,
                    pack: KinesisPackConfig::from_settings(s)?,
                    keys: PartitionKeys::from_setting(s, partition::SETTING)?,
                })
            }
            "sqs" => {
                s.required("SQS_QUEUE_URL")?;
                let queues = s
                    .list("SQS_QUEUE_URL")
                    .iter()
                    .map(|url| QueueUrl::parse(url).map_err(|e| SettingError::new("SQS_QUEUE_URL", e)))
                    .collect::<Result<Vec<_>, _>>()?;
                if queues.iter().any(QueueUrl::is_fifo) && !queues.iter().all(QueueUrl::is_fifo) {
                    return Err(SettingError::new(
                        "SQS_QUEUE_URL",
                        "mixes FIFO and standard queues: give all FIFO queues (names ending in .fifo) or none",
                    ));
                }
                Ok(Self::Sqs {
                    queues,
                    endpoint: endpoint("SQS_ENDPOINT", sqs::SIGNING_SERVICE)?,
                    pack: SqsPackConfig::from_settings(s)?,
                    groups: PartitionKeys::from_setting(s, "SQS_MESSAGE_GROUP")?,
                })
            }
            other => Err(SettingError::new(
                "SINK",
                format!("= {other:?} is invalid: expected firehose, kinesis or sqs"),
            )),
        }
    }
}

/// `ADMIN_KEY`, a secret: its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminKey(String);

impl AdminKey {
    /// The key itself, to compare a presented one with.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AdminKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminKey(** redacted **)")
    }
}

/// Everything the Worker needs, checked.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// HTTP API settings (limits, keys, origins, strictness).
    pub api: ApiConfig,
    /// Forwarding mode.
    pub mode: Mode,
    /// Where events are delivered.
    pub sink: SinkConfig,
    /// The sink's region (also the SigV4 signing region).
    pub region: String,
    /// The key allowed to put records to the sink and nothing else.
    pub credentials: Credentials,
    /// Retries in direct mode (inside `waitUntil`'s 30 s).
    pub retry: RetryPolicy,
    /// Retries inside one queue-consumer run, before the queue's own redelivery.
    pub consumer_retry: RetryPolicy,
    /// Direct mode: how long an isolate gathers requests into one
    /// `PutRecordBatch` (0: one call per request).
    pub direct_flush_ms: u64,
    /// Queue mode: 0 answers once the queue holds the request's events;
    /// more (`QUEUE_WINDOW_MS`) answers at once and writes one message per
    /// isolate window in `waitUntil`, delivering directly if the queue refuses.
    pub queue_window_ms: u64,
    /// The longest one call to the sink may take before it is abandoned
    /// (and, within the retry budget, made again).
    pub call_timeout_ms: u64,
    /// Calls to the sink one isolate may have in flight at once
    /// (`MAX_IN_FLIGHT_CALLS`; 0, the default: no cap). More wait their turn,
    /// the wait counted against the call's time.
    pub max_in_flight_calls: usize,
    /// `ADMIN_KEY` (a secret): the bearer token `/v1/redrive` takes; unset,
    /// redrive is off.
    pub admin_key: Option<AdminKey>,
    /// Events queues written to (`QUEUE_SHARDS`, 1 to 256; each a binding of
    /// [`events_queue_binding`] with its consumer): each takes about 5,000
    /// messages a second, so N of them take N times that.
    pub queue_shards: usize,
    /// How often and how long the queue consumer tries lines before it
    /// dead-letters them (`QUEUE_DELIVERY_ATTEMPTS`,
    /// `QUEUE_RETRY_BASE_SECONDS`, `QUEUE_RETRY_MAX_SECONDS`).
    pub requeue: RequeuePolicy,
    /// The most bytes of accepted envelopes one isolate holds before it
    /// hands a request to the queue or answers 503 (`MAX_HELD_BYTES`, at
    /// most [`edgehose_shared::limits::MAX_HELD_BYTES`]).
    pub max_held_bytes: usize,
    /// The residency region this configuration sends to (`REGIONS`), or
    /// `None` without regions.
    pub residency: Option<residency::Region>,
    /// With `REGIONS`: the policy, and every region's configuration (this
    /// one is the default region's, with these added).
    pub regions: Option<Regions>,
    /// The region's standby (`<NAME>_STANDBY`): the sink its events go to
    /// while home is failing ([`edgehose_shared::failover`]).
    pub standby: Option<Box<EdgeConfig>>,
    /// When to fail over and how often to try home again.
    pub failover: FailoverPolicy,
}

/// Every region's configuration, and which countries go to which.
#[derive(Debug, Clone)]
pub struct Regions {
    /// `REGIONS` and each region's policy.
    pub policy: Policy,
    /// Each region's configuration, in the policy's order.
    pub configs: Vec<std::rc::Rc<EdgeConfig>>,
}

impl EdgeConfig {
    /// Whether a request is answered as soon as it is checked (direct mode,
    /// and queue mode with a window), its events gathered in the isolate
    /// until the window closes.
    pub fn answers_at_once(&self) -> bool {
        self.mode == Mode::Direct || self.queue_window_ms > 0
    }

    /// How long an isolate gathers requests before sending them on.
    pub fn window_ms(&self) -> u64 {
        match self.mode {
            Mode::Direct => self.direct_flush_ms,
            Mode::Queue => self.queue_window_ms,
        }
    }

    /// The prefix of this region's bindings (`EU_` before `EVENTS_QUEUE`,
    /// `DEAD_LETTERS`); empty without regions.
    pub fn binding_prefix(&self) -> String {
        self.residency
            .as_ref()
            .map(residency::Region::prefix)
            .unwrap_or_default()
    }

    /// The binding of events queue shard `k` of this region.
    pub fn queue_binding(&self, k: usize) -> String {
        format!("{}{}", self.binding_prefix(), events_queue_binding(k))
    }

    /// The configuration of the region named `name` (a line's `region`):
    /// this one without regions or for a line without one (an event
    /// accepted before regions were set goes to the default region);
    /// `None` for a region this deployment does not have.
    pub fn for_region(&self, name: Option<&str>) -> Option<&EdgeConfig> {
        let Some(regions) = &self.regions else {
            return Some(self);
        };
        match name {
            None => Some(self),
            Some(name) => regions
                .configs
                .iter()
                .find(|c| c.residency.as_ref().is_some_and(|r| r.name == name))
                .map(|c| &**c),
        }
    }

    /// Every region's configuration (this one alone without regions).
    pub fn each_region(&self) -> Vec<&EdgeConfig> {
        match &self.regions {
            None => vec![self],
            Some(regions) => regions.configs.iter().map(|c| &**c).collect(),
        }
    }

    /// The places of `lines` grouped by the region each names (its
    /// envelope's `region`), with that region's configuration: `None` for
    /// a region this deployment does not have. Without regions, all of
    /// them, with this configuration.
    pub fn by_region<S: AsRef<str>>(&self, lines: &[S]) -> Vec<(Option<&EdgeConfig>, Vec<usize>)> {
        if self.regions.is_none() {
            return vec![(Some(self), (0..lines.len()).collect())];
        }
        let mut groups: Vec<(Option<String>, Vec<usize>)> = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let region = edgehose_shared::envelope::region_of(line.as_ref());
            match groups.iter_mut().find(|(r, _)| *r == region) {
                Some((_, members)) => members.push(i),
                None => groups.push((region, vec![i])),
            }
        }
        groups
            .into_iter()
            .map(|(region, members)| (self.for_region(region.as_deref()), members))
            .collect()
    }

    /// The configuration for a request from `country`, and its region.
    pub fn route(&self, country: Option<&str>) -> &EdgeConfig {
        match &self.regions {
            None => self,
            Some(regions) => {
                let name = &regions.policy.route(country).name;
                self.for_region(Some(name)).unwrap_or(self)
            }
        }
    }

    /// The rules lines are judged by before they are packed.
    pub fn rules(&self) -> Rules<'_> {
        Rules {
            limits: &self.api.limits,
            sources: &self.api.sources,
        }
    }

    /// Reads and checks every setting.
    pub fn from_env(env: &Env) -> Result<Self, SettingError> {
        let s = Settings::new(|name: &str| {
            env.var(name)
                .map(|v| v.to_string())
                .or_else(|_| env.secret(name).map(|v| v.to_string()))
                .ok()
        });
        Self::from_settings(&s)
    }

    /// Reads and checks every setting from a lookup: without `REGIONS` as
    /// they are; with it, each region's from its own prefixed settings
    /// (others it may share with the unprefixed ones, but never those of
    /// [`REGION_OWN_SETTINGS`]), the default region's as this one.
    pub fn from_settings<F: Fn(&str) -> Option<String>>(s: &Settings<F>) -> Result<Self, SettingError> {
        let Some(policy) = Policy::from_settings(s)? else {
            return Self::read(s, None);
        };
        let mut configs: Vec<EdgeConfig> = Vec::new();
        for region in policy.regions() {
            let prefix = region.prefix();
            let view = Settings::new(|name: &str| {
                s.get(&format!("{prefix}{name}"))
                    .or_else(|| (!REGION_OWN_SETTINGS.contains(&name)).then(|| s.get(name)).flatten())
            });
            let config = Self::read(&view, Some(region.clone())).map_err(|e| {
                let prefixed = format!("{prefix}{}", e.name);
                let own = REGION_OWN_SETTINGS.contains(&e.name.as_str())
                    || s.get(&prefixed).is_some()
                    || s.get(&e.name).is_none();
                SettingError::new(if own { &prefixed } else { &e.name }, e.problem)
            })?;
            check_residency(region, &config.region)?;
            let mut config = config;
            config.failover = FailoverPolicy::from_settings(s, &prefix)?;
            configs.push(config);
        }
        // Each standby, checked to keep its home's events in their jurisdiction.
        for i in 0..configs.len() {
            let Some(name) = configs[i].residency.as_ref().and_then(|r| r.standby.clone()) else {
                continue;
            };
            let home = &configs[i];
            let prefix = home.binding_prefix();
            let Some(standby) = configs
                .iter()
                .find(|c| c.residency.as_ref().is_some_and(|r| r.name == name))
            else {
                continue; // Policy::from_settings refused a standby that is no region
            };
            let (from, to) = (
                residency::jurisdiction_of(&home.region),
                residency::jurisdiction_of(&standby.region),
            );
            if from != to {
                return Err(SettingError::new(
                    &format!("{prefix}STANDBY"),
                    format!(
                        "= {name:?} keeps events in {} ({to}), outside {} ({from}), where this region's are kept: a standby must be in the same jurisdiction",
                        standby.region, home.region
                    ),
                ));
            }
            let mut standby = standby.clone();
            standby.standby = None;
            configs[i].standby = Some(Box::new(standby));
        }
        let configs: Vec<std::rc::Rc<EdgeConfig>> = configs.into_iter().map(std::rc::Rc::new).collect();
        let default = policy
            .regions()
            .iter()
            .position(|r| r.default)
            .unwrap_or_else(|| unreachable!("a parsed policy has its default region"));
        let mut base = (*configs[default]).clone();
        base.regions = Some(Regions { policy, configs });
        Ok(base)
    }

    /// Reads and checks every setting of one region (or of the one sink).
    fn read<F: Fn(&str) -> Option<String>>(
        s: &Settings<F>,
        residency: Option<residency::Region>,
    ) -> Result<Self, SettingError> {
        let api = ApiConfig::from_settings(s)?;
        let mode = match s.get("FORWARD_MODE").as_deref().unwrap_or("queue") {
            "direct" => Mode::Direct,
            "queue" => Mode::Queue,
            other => {
                return Err(SettingError::new(
                    "FORWARD_MODE",
                    format!("= {other:?} is invalid: expected queue or direct"),
                ));
            }
        };
        let region = s.required("AWS_REGION")?;
        let sink = SinkConfig::from_settings(s, &region)?;
        sink.check_fits(api.limits.max_event_bytes)?;
        let mut credentials = Credentials::new(s.required("AWS_ACCESS_KEY_ID")?, s.required("AWS_SECRET_ACCESS_KEY")?);
        if let Some(token) = s.get("AWS_SESSION_TOKEN") {
            credentials = credentials.with_session_token(token);
        }
        // waitUntil work is cut off 30 s after the response: stay well inside.
        let retry = RetryPolicy::from_settings(s, 25_000)?;
        let consumer_retry = RetryPolicy {
            max_attempts: retry.max_attempts.min(4),
            budget_ms: retry.budget_ms.min(10_000),
            ..retry
        };
        // Longer windows mean fewer calls but later delivery; 1 s is plenty.
        let direct_flush_ms = s.usize_or("DIRECT_FLUSH_MS", 20)?.min(1000) as u64;
        let queue_window_ms = s.usize_or("QUEUE_WINDOW_MS", 0)?.min(1000) as u64;
        // CALL_TIMEOUT_MS, or its earlier name FIREHOSE_TIMEOUT_MS.
        let timeout_name = if s.get("CALL_TIMEOUT_MS").is_some() {
            "CALL_TIMEOUT_MS"
        } else {
            "FIREHOSE_TIMEOUT_MS"
        };
        let call_timeout_ms = s.usize_or(timeout_name, 10_000)?.clamp(100, 25_000) as u64;
        let max_in_flight_calls = s.usize_or("MAX_IN_FLIGHT_CALLS", 0)?;
        let requeue = RequeuePolicy::from_settings(s)?;
        let max_held_bytes = s.usize_or("MAX_HELD_BYTES", MAX_HELD_BYTES)?;
        if !(MIN_HELD_BYTES..=MAX_HELD_BYTES).contains(&max_held_bytes) {
            return Err(SettingError::new(
                "MAX_HELD_BYTES",
                format!(
                    "= {max_held_bytes} is invalid: expected {MIN_HELD_BYTES} to {MAX_HELD_BYTES} bytes (a quarter of an isolate's 128 MB, as each held line is copied while it is sent)"
                ),
            ));
        }
        let queue_shards = s.usize_or("QUEUE_SHARDS", 1)?;
        if !(1..=MAX_QUEUE_SHARDS).contains(&queue_shards) {
            return Err(SettingError::new(
                "QUEUE_SHARDS",
                format!("= {queue_shards} is invalid: expected 1 to {MAX_QUEUE_SHARDS} events queues"),
            ));
        }
        let admin_key = s.get("ADMIN_KEY").filter(|k| !k.is_empty());
        if let Some(k) = &admin_key
            && k.len() < 16
        {
            return Err(SettingError::new("ADMIN_KEY", "is shorter than 16 characters"));
        }
        let admin_key = admin_key.map(AdminKey);
        let mut api = api;
        api.ok_means = ok_means(mode, direct_flush_ms, queue_window_ms);
        Ok(Self {
            api,
            mode,
            sink,
            region,
            credentials,
            retry,
            consumer_retry,
            direct_flush_ms,
            queue_window_ms,
            call_timeout_ms,
            max_in_flight_calls,
            admin_key,
            queue_shards,
            requeue,
            max_held_bytes,
            residency,
            regions: None,
            standby: None,
            failover: FailoverPolicy::default(),
        })
    }
}

/// Refuses a region that serves countries of the EU or the EEA with a sink
/// outside the EU ([`residency::AWS_EU_REGIONS`]): the promise of residency
/// routing is that those visitors' events never leave it.
fn check_residency(region: &residency::Region, aws_region: &str) -> Result<(), SettingError> {
    let eea = residency::group("EEA").unwrap_or_default();
    let serves = region.countries.iter().filter(|c| eea.contains(&c.as_str())).count();
    if serves > 0 && residency::jurisdiction_of(aws_region) != "eu" {
        return Err(SettingError::new(
            &format!("{}AWS_REGION", region.prefix()),
            format!(
                "= {aws_region:?} is outside the EU, and region {:?} serves {serves} EU/EEA countries: give it one of {}",
                region.name,
                residency::AWS_EU_REGIONS.join(", ")
            ),
        ));
    }
    Ok(())
}

/// What an `ok` verdict means in `mode` (`shared::verdicts`): the event
/// passed the edge's rules, and where it is when the answer leaves.
fn ok_means(mode: Mode, direct_flush_ms: u64, queue_window_ms: u64) -> String {
    let now = match mode {
        Mode::Direct => format!(
            "this isolate holds it and sends it to the sink within {direct_flush_ms} ms (DIRECT_FLUSH_MS); what the sink does not take by its deadline goes to the dead-letter archive"
        ),
        Mode::Queue if queue_window_ms > 0 => format!(
            "this isolate holds it for up to {queue_window_ms} ms (QUEUE_WINDOW_MS) until the events queue stores it (what the queue refuses goes straight to the sink)"
        ),
        Mode::Queue => "the events queue stores it".to_owned(),
    };
    format!("{}; {now}", edgehose_shared::verdicts::OK_MEANS_CHECKED)
}

/// The Rate Limiting binding `RATE_LIMITS` is counted on (`[[ratelimits]]`
/// in wrangler.toml, its `simple.limit` and `period` those of
/// `edgehose_shared::rate_limit`).
pub const RATE_LIMITER_BINDING: &str = "RATE_LIMITER";

thread_local! {
    /// The configuration, read once per isolate; a bad one is logged once and
    /// answered 500 from then on (a fixed deploy starts new isolates).
    static CONFIG: RefCell<Option<Result<Rc<EdgeConfig>, SettingError>>> = const { RefCell::new(None) };
}

/// This isolate's configuration: read and checked on its first request or
/// queue batch, the same answer (or error) from then on.
pub fn isolate(env: &Env) -> Result<Rc<EdgeConfig>, ApiError> {
    if let Some(c) = CONFIG.with(|c| c.borrow().clone()) {
        return c.map_err(ApiError::Misconfigured);
    }
    let read = EdgeConfig::from_env(env).and_then(|c| {
        if c.api.rate_limits.is_enabled() && rate_limiter(env).is_none() {
            return Err(SettingError::new(
                "RATE_LIMITS",
                format!(
                    "is set and the Worker has no {RATE_LIMITER_BINDING} binding ([[ratelimits]] in wrangler.toml)"
                ),
            ));
        }
        Ok(Rc::new(c))
    });
    if let Err(e) = &read {
        // Once per isolate: the same error on every request says nothing new.
        console_error!("edgehose: misconfigured, answering 500 to every request: {e}");
    }
    CONFIG.with(|slot| *slot.borrow_mut() = Some(read.clone()));
    read.map_err(ApiError::Misconfigured)
}

/// The Rate Limiting binding, when the Worker has one.
pub fn rate_limiter(env: &Env) -> Option<JsValue> {
    crate::js::binding(env, RATE_LIMITER_BINDING)
}

#[cfg(test)]
mod tests {
    use edgehose_shared::settings::Settings;

    use super::EdgeConfig;

    fn read(pairs: &[(&str, &str)]) -> Result<EdgeConfig, edgehose_shared::settings::SettingError> {
        let owned: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        EdgeConfig::from_settings(&Settings::new(move |n: &str| {
            owned.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())
        }))
    }

    const BASE: [(&str, &str); 5] = [
        ("FIREHOSE_STREAM", "clicks"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "a-secret-never-shown"),
        ("WRITE_KEYS", "web:wk_a-write-key-never-shown"),
    ];

    #[test]
    fn debug_shows_no_secret() {
        let mut pairs = BASE.to_vec();
        pairs.push(("ADMIN_KEY", "an-admin-key-never-shown"));
        let shown = format!("{:?}", read(&pairs).unwrap());
        for secret in [
            "a-secret-never-shown",
            "wk_a-write-key-never-shown",
            "an-admin-key-never-shown",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("AdminKey(** redacted **)"), "{shown}");
    }

    #[test]
    fn without_write_keys_the_worker_is_refused_unless_anonymous_is_written_down() {
        let without: Vec<_> = BASE.iter().copied().filter(|(k, _)| *k != "WRITE_KEYS").collect();
        assert_eq!(read(&without).unwrap_err().name, "WRITE_KEYS");
        let mut anonymous = without.clone();
        anonymous.push(("ALLOW_ANONYMOUS", "true"));
        assert!(read(&anonymous).is_ok());
    }

    #[test]
    fn a_record_or_message_smaller_than_an_events_line_is_refused_at_start() {
        let sqs = |target: &str, max_event: &str| {
            let mut pairs: Vec<(&str, &str)> = BASE.iter().copied().filter(|(k, _)| *k != "FIREHOSE_STREAM").collect();
            pairs.extend([
                ("SINK", "sqs"),
                ("SQS_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/q"),
                ("SQS_MESSAGE_TARGET_BYTES", target),
                ("MAX_EVENT_BYTES", max_event),
            ]);
            read(&pairs)
        };
        let e = sqs("1024", "32768").unwrap_err();
        assert!(
            e.name == "SQS_MESSAGE_TARGET_BYTES" && e.problem.contains("MAX_EVENT_BYTES"),
            "{e}"
        );
        assert!(sqs("3072", "1024").is_ok());
        // Kinesis sends a line past its target alone: any target fits.
        let mut kinesis: Vec<(&str, &str)> = BASE.iter().copied().filter(|(k, _)| *k != "FIREHOSE_STREAM").collect();
        kinesis.extend([
            ("SINK", "kinesis"),
            ("KINESIS_STREAM", "s"),
            ("KINESIS_RECORD_TARGET_BYTES", "5000"),
        ]);
        assert!(read(&kinesis).is_ok());
    }

    #[test]
    fn with_the_iceberg_destination_each_firehose_record_holds_one_line() {
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut pairs = BASE.to_vec();
            pairs.extend_from_slice(extra);
            read(&pairs)
        };
        let target = |c: EdgeConfig| match c.sink {
            super::SinkConfig::Firehose { pack, .. } => pack.target_record_bytes(),
            _ => unreachable!("BASE is a Firehose sink"),
        };
        assert_eq!(
            target(with(&[]).unwrap()),
            edgehose_shared::limits::FIREHOSE_MAX_RECORD_BYTES
        );
        assert_eq!(target(with(&[("DESTINATION", "iceberg")]).unwrap()), 1);
        let e = with(&[("DESTINATION", "iceberg"), ("RECORD_TARGET_BYTES", "4096")]).unwrap_err();
        assert!(
            e.name == "RECORD_TARGET_BYTES" && e.problem.contains("one event a record"),
            "{e}"
        );
        let e = with(&[("DESTINATION", "orc")]).unwrap_err();
        assert_eq!(e.name, "DESTINATION");
    }

    #[test]
    fn the_held_bytes_ceiling_is_checked_against_an_isolates_memory() {
        let mut pairs = BASE.to_vec();
        pairs.push(("MAX_HELD_BYTES", "999999999"));
        let e = read(&pairs).unwrap_err();
        assert!(e.name == "MAX_HELD_BYTES" && e.problem.contains("128 MB"), "{e}");
        assert_eq!(
            read(&BASE).unwrap().max_held_bytes,
            edgehose_shared::limits::MAX_HELD_BYTES
        );
    }

    /// [`BASE`] without its sink: each region names its own.
    fn without_a_sink() -> Vec<(&'static str, &'static str)> {
        BASE.iter()
            .copied()
            .filter(|(k, _)| !matches!(*k, "FIREHOSE_STREAM" | "AWS_REGION"))
            .collect()
    }

    #[test]
    fn each_region_reads_its_own_sink_and_never_another_regions() {
        let regions = |extra: &[(&'static str, &'static str)]| {
            let mut pairs = without_a_sink();
            pairs.extend([
                ("REGIONS", "eu: EEA; us: *"),
                ("EU_AWS_REGION", "eu-central-1"),
                ("EU_FIREHOSE_STREAM", "clicks-eu"),
                ("US_AWS_REGION", "us-east-1"),
                ("US_FIREHOSE_STREAM", "clicks-us"),
            ]);
            pairs.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
            pairs.extend_from_slice(extra);
            read(&pairs)
        };
        let c = regions(&[]).unwrap();
        assert_eq!(c.region, "us-east-1", "the default region's is the base");
        assert_eq!(c.route(Some("DE")).region, "eu-central-1");
        assert_eq!(c.route(Some("US")).region, "us-east-1");
        assert_eq!(c.route(None).region, "us-east-1");
        assert_eq!(c.route(Some("DE")).queue_binding(0), "EU_EVENTS_QUEUE");
        assert_eq!(c.route(Some("DE")).queue_binding(2), "EU_EVENTS_QUEUE_2");
        assert_eq!(c.each_region().len(), 2);
        assert!(c.for_region(Some("ap")).is_none());
        // A region's own stream is never the unprefixed one.
        let mut pairs: Vec<(&str, &str)> = BASE.to_vec();
        pairs.extend([
            ("REGIONS", "eu: EEA; us: *"),
            ("EU_AWS_REGION", "eu-central-1"),
            ("US_AWS_REGION", "us-east-1"),
            ("US_FIREHOSE_STREAM", "clicks-us"),
        ]);
        let e = read(&pairs).unwrap_err();
        assert_eq!(e.name, "EU_FIREHOSE_STREAM", "{e}");
        // EU and EEA visitors' events stay in AWS regions in the EU.
        let e = regions(&[("EU_AWS_REGION", "eu-west-2")]).unwrap_err();
        assert!(e.name == "EU_AWS_REGION" && e.problem.contains("outside the EU"), "{e}");
        let e = regions(&[("EU_AWS_REGION", "us-east-1")]).unwrap_err();
        assert_eq!(e.name, "EU_AWS_REGION");
        // Shared settings fall back; a region may set its own.
        let c = regions(&[("EU_MAX_HELD_BYTES", "3000000")]).unwrap();
        assert_eq!(c.route(Some("FR")).max_held_bytes, 3_000_000);
        assert_eq!(
            c.route(Some("US")).max_held_bytes,
            edgehose_shared::limits::MAX_HELD_BYTES
        );
        let e = regions(&[("EU_MAX_HELD_BYTES", "1")]).unwrap_err();
        assert_eq!(e.name, "EU_MAX_HELD_BYTES");
    }

    #[test]
    fn a_standby_must_keep_its_homes_events_in_their_jurisdiction() {
        let with = |standby_region: &'static str| {
            let mut pairs = without_a_sink();
            pairs.extend([
                ("REGIONS", "eu: EEA; eu2: ; us: *"),
                ("EU_AWS_REGION", "eu-central-1"),
                ("EU_FIREHOSE_STREAM", "clicks"),
                ("EU2_AWS_REGION", standby_region),
                ("EU2_FIREHOSE_STREAM", "clicks"),
                ("US_AWS_REGION", "us-east-1"),
                ("US_FIREHOSE_STREAM", "clicks"),
                ("EU_STANDBY", "eu2"),
                ("EU_FAILOVER_AFTER_MS", "30000"),
            ]);
            read(&pairs)
        };
        let c = with("eu-west-1").unwrap();
        let eu = c.route(Some("DE"));
        assert_eq!(eu.standby.as_ref().map(|s| s.region.as_str()), Some("eu-west-1"));
        assert_eq!(eu.failover.after_ms, 30_000);
        assert!(c.route(Some("US")).standby.is_none());
        for outside in ["eu-west-2", "us-east-1", "eu-central-2"] {
            let e = with(outside).unwrap_err();
            assert!(
                e.name == "EU_STANDBY" && e.problem.contains("jurisdiction"),
                "{outside}: {e}"
            );
        }
    }
}
