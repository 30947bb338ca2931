//! The built edge Worker running in Miniflare (workerd from npm, with its
//! Queues), for as long as the handle lives.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::tools;

/// Queue mode's window, as wrangler.toml deploys it.
pub const DEFAULT_QUEUE_WINDOW_MS: u64 = 1000;

/// Which build of the Worker to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// The production build (`tools/build-edge`), the one wrangler deploys.
    Release,
    /// The same, with the `panic-probe` feature (`POST /__panic`).
    PanicProbe,
}

impl Build {
    /// Where `make test` put this build (`EDGEHOSE_EDGE_BUILD` /
    /// `EDGEHOSE_EDGE_PROBE_BUILD` override).
    pub fn dir(self) -> Result<PathBuf> {
        let (var, default) = match self {
            Build::Release => ("EDGEHOSE_EDGE_BUILD", "edge/build"),
            Build::PanicProbe => ("EDGEHOSE_EDGE_PROBE_BUILD", "edge/build-probe"),
        };
        let dir = std::env::var(var)
            .ok()
            .map(PathBuf::from)
            .unwrap_or_else(|| tools::repo_root().join(default));
        if dir.join("worker/shim.mjs").exists() {
            Ok(dir)
        } else {
            Err(Error::missing(format!(
                "{} has no built Worker: run `make test` (it builds the edge first)",
                dir.display()
            )))
        }
    }
}

/// How to run the Worker.
#[derive(Debug, Clone)]
pub struct EdgeOptions {
    /// Which build.
    pub build: Build,
    /// `[vars]` and secrets.
    pub bindings: BTreeMap<String, String>,
    /// The queue consumer's `max_retries`.
    pub max_retries: u32,
    /// The queue consumer's `max_batch_size`.
    pub max_batch_size: u32,
    /// Whether the `DEAD_LETTERS` R2 bucket binding exists (where the Worker
    /// archives dead letters, as deployed).
    pub dead_letters_bucket: bool,
    /// Cloudflare's faults to start with (`PUT /_edgehose/faults` on the
    /// Worker's URL changes them at run time): see [`CloudflareFaults`].
    pub cloudflare_faults: CloudflareFaults,
    /// Where Miniflare keeps that bucket across restarts (in memory when `None`).
    pub persist: Option<PathBuf>,
    /// Whether the `DEAD_LETTER_QUEUE` binding exists.
    pub dead_letter_queue: bool,
    /// Events queues: `EVENTS_QUEUE`, `EVENTS_QUEUE_1`, …, each with its
    /// consumer (the Worker's `QUEUE_SHARDS` is set to match).
    pub queue_shards: usize,
    /// Queue bindings whose every write throws, as a queue over its limits does.
    pub refuse_queues: Vec<String>,
    /// Whether the `EVENTS_QUEUE` binding exists (without it every queue
    /// write fails, as in a Queues outage).
    pub events_queue: bool,
    /// Each queue write takes this long, as a write to Cloudflare's
    /// Queues storage does (~60 ms at the median); Miniflare's resolve at once.
    pub queue_write_ms: u64,
    /// Residency regions (`REGIONS`, read from the bindings by
    /// [`EdgeOptions::new`]): each gets its own events queues
    /// (`EU_EVENTS_QUEUE`, …), dead-letter queue and `EU_DEAD_LETTERS`
    /// bucket, as a deployment's wrangler.toml gives them.
    pub regions: Vec<String>,
    /// The port to serve on (any free one, chosen by Miniflare, when `None`).
    pub port: Option<u16>,
    /// The Worker's DevTools inspector on this port (0: any free one); off when `None`.
    pub inspector_port: Option<u16>,
    /// Where the Worker's log (its `console` lines, Miniflare's) is appended
    /// as it comes; [`Edge::log`] then keeps only its last [`LOG_TAIL_BYTES`].
    /// `None`: all of it is kept in memory (tests read it whole).
    pub log_file: Option<PathBuf>,
}

/// What [`Edge::log`] keeps of a log that also goes to a file.
pub const LOG_TAIL_BYTES: usize = 1 << 20;

impl EdgeOptions {
    /// The release build with these settings; without `WRITE_KEYS` among
    /// them, anonymous (`ALLOW_ANONYMOUS = "true"`), as a local run says.
    pub fn new(bindings: &[(&str, &str)]) -> Self {
        let mut bindings: BTreeMap<String, String> =
            bindings.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        if !bindings.contains_key("WRITE_KEYS") {
            bindings.insert("ALLOW_ANONYMOUS".to_owned(), "true".to_owned());
        }
        let regions = bindings
            .get(edgehose_shared::residency::Policy::SETTING)
            .and_then(|text| edgehose_shared::residency::Policy::parse(text).ok())
            .map(|p| p.regions().iter().map(|r| r.name.clone()).collect())
            .unwrap_or_default();
        Self {
            build: Build::Release,
            bindings,
            max_retries: 3,
            max_batch_size: 100,
            dead_letters_bucket: true,
            cloudflare_faults: CloudflareFaults::default(),
            persist: None,
            dead_letter_queue: true,
            events_queue: true,
            queue_shards: 1,
            refuse_queues: Vec::new(),
            queue_write_ms: 0,
            regions,
            port: None,
            inspector_port: None,
            log_file: None,
        }
    }
}

/// A running Worker.
pub struct Edge {
    child: Child,
    stdin: Option<ChildStdin>,
    url: String,
    control: String,
    inspector: Option<String>,
    log: Arc<Mutex<Log>>,
    regions: Vec<String>,
}

/// The Worker's log: appended to a file as it comes when there is one (then
/// only its tail is kept here), else kept whole.
struct Log {
    text: String,
    file: Option<std::fs::File>,
}

impl Log {
    fn push(&mut self, line: &str) {
        if let Some(f) = &mut self.file {
            // A log that cannot be written is not worth stopping the Worker for.
            let _ = writeln!(f, "{line}");
            if self.text.len() > LOG_TAIL_BYTES {
                let mut cut = self.text.len() - LOG_TAIL_BYTES / 2;
                while !self.text.is_char_boundary(cut) {
                    cut += 1;
                }
                self.text.drain(..cut);
            }
        }
        self.text.push_str(line);
        self.text.push('\n');
    }
}

impl Edge {
    /// Starts Miniflare with the built Worker and waits until it serves.
    pub fn start(options: &EdgeOptions) -> Result<Self> {
        let build = options.build.dir()?;
        let node = tools::npm_bin("node")?;
        let script = tools::repo_root().join("cli/local/js/miniflare.mjs");
        let mut bindings = options.bindings.clone();
        bindings
            .entry("QUEUE_SHARDS".to_owned())
            .or_insert_with(|| options.queue_shards.to_string());
        let config = serde_json::json!({
            // 0: Miniflare binds a free port itself, so no other process can
            // take it between choosing and binding (it prints the URL).
            "port": options.port.unwrap_or(0),
            "bindings": bindings,
            "maxRetries": options.max_retries,
            "maxBatchSize": options.max_batch_size,
            "deadLettersBucket": options.dead_letters_bucket,
            "cloudflareFaults": options.cloudflare_faults,
            "queueWriteTimeoutMs": edgehose_shared::limits::QUEUE_WRITE_TIMEOUT_MS,
            "persist": options.persist,
            "deadLetterQueue": options.dead_letter_queue,
            "eventsQueue": options.events_queue,
            "queueWriteMs": options.queue_write_ms,
            "queueShards": options.queue_shards,
            "refuseQueues": options.refuse_queues,
            "regions": options.regions,
            "inspectorPort": options.inspector_port,
            // Miniflare's own Rate Limiting binding, as wrangler.toml's [[ratelimits]] sets it.
            "rateLimiter": {
                "limit": edgehose_shared::rate_limit::UNITS,
                "period": edgehose_shared::rate_limit::PERIOD_S,
            },
        });
        let mut command = Command::new(node);
        // A process group of its own: a terminal's Ctrl-C reaches only the
        // command that started it, which drains the queue before it stops this.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command
            .arg(&script)
            .arg(&build)
            .arg(config.to_string())
            .current_dir(tools::cache_dir().join("npm"))
            .env("EDGEHOSE_NPM", tools::cache_dir().join("npm"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::process("starting Miniflare", e))?;
        let file = tools::append_to(options.log_file.as_deref())?;
        let log = Arc::new(Mutex::new(Log {
            text: String::new(),
            file,
        }));
        let (tx, rx) = mpsc::channel();
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(Error::protocol("Miniflare started without the output pipes asked for"));
        };
        let out_log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(urls) = serde_json::from_str::<serde_json::Value>(&line).ok().and_then(|v| {
                    let inspector = v["inspector"].as_str().map(str::to_owned);
                    Some((
                        v["url"].as_str()?.to_owned(),
                        v["control"].as_str()?.to_owned(),
                        inspector,
                    ))
                }) {
                    let _ = tx.send(urls);
                } else if let Ok(mut l) = out_log.lock() {
                    l.push(&line);
                }
            }
        });
        let err_log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(mut l) = err_log.lock() {
                    l.push(&line);
                }
            }
        });
        let stdin = child.stdin.take();
        let mut edge = Self {
            child,
            stdin,
            url: String::new(),
            control: String::new(),
            inspector: None,
            log,
            regions: options.regions.clone(),
        };
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok((url, control, inspector)) => {
                edge.url = url.trim_end_matches('/').to_owned();
                edge.control = control;
                edge.inspector = inspector;
            }
            Err(_) => {
                return Err(Error::timeout(format!(
                    "Miniflare did not start within 60 s:\n{}",
                    edge.log()
                )));
            }
        }
        Ok(edge)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The runner's control URL: `POST {control}/queues/<BINDING>` sends
    /// its body to that queue as one message (as bytes when the content type
    /// is `application/octet-stream`), as another producer might.
    pub fn control_url(&self) -> &str {
        &self.control
    }

    /// The Worker's DevTools inspector, `ws://127.0.0.1:PORT/edgehose`, when
    /// [`EdgeOptions::inspector_port`] opened one.
    pub fn inspector_url(&self) -> Option<&str> {
        self.inspector.as_deref()
    }

    /// The Miniflare runner's process id (workerd runs as its child).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the Worker and Miniflare logged so far.
    pub fn log(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .text
            .clone()
    }
}

/// Cloudflare's side failing, as the runner's entry module makes it fail
/// around the unchanged Worker (`cli/local/js/miniflare.mjs`). Every field is
/// optional in `PUT /_edgehose/faults`; a share is from 0 to 1.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CloudflareFaults {
    /// The share of queue writes (`send`, `sendBatch`) that throw "Too Many
    /// Requests", as a queue past its 5,000 messages a second does.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub queue_refuse: f64,
    /// Every queue write throws for this many seconds from when it is set.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub queue_outage_secs: u64,
    /// Each queue write takes this much longer (a brownout).
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub queue_stall_ms: u64,
    /// Only these queue bindings fail (all of them when `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queues: Option<Vec<String>>,
    /// The share of R2 puts that throw, as in an R2 incident.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub r2_fail: f64,
    /// Every R2 put throws for this many seconds from when it is set.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub r2_outage_secs: u64,
    /// Each R2 put takes this much longer.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub r2_stall_ms: u64,
    /// The ceiling the Worker's wasm memory is held against, in MB (128 unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_ceiling_mb: Option<u64>,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

/// What Cloudflare's faults did so far (`GET /_edgehose/faults`).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
pub struct CloudflareStats {
    /// Queue writes tried.
    pub queue_writes: u64,
    /// Queue writes refused.
    pub queue_refused: u64,
    /// R2 puts tried.
    pub r2_puts: u64,
    /// R2 puts failed.
    pub r2_failed: u64,
    /// Promises handed to `waitUntil`.
    pub wait_until: u64,
    /// Of those, still pending now.
    pub wait_until_pending: u64,
    /// Of those, pending past 30 s after their response: production would have cut them.
    pub wait_until_cut: u64,
    /// The longest any took to settle, in ms.
    pub wait_until_longest_ms: u64,
    /// The Worker's wasm memory when last read.
    pub wasm_memory_bytes: u64,
    /// The most it was when read.
    pub wasm_memory_most_bytes: u64,
    /// Readings past the memory ceiling.
    pub over_memory_ceiling: u64,
    /// The longest a queue write took to answer, in ms.
    pub queue_write_longest_ms: u64,
    /// Calls to the sink (`fetch`) the Worker made.
    pub sink_calls: u64,
    /// Of those, abandoned when their time ran out: the sink may still
    /// have kept their records, which then land twice.
    pub sink_calls_abandoned: u64,
    /// Queue writes that landed after the edge had stopped waiting for them
    /// (`QUEUE_WRITE_TIMEOUT_MS`): each may have sent its lines twice.
    pub queue_writes_landed_late: u64,
    /// Analytics Engine data points the Worker wrote (its outcome counts).
    pub analytics_points: u64,
    /// Data points refused: past an invocation's 250.
    pub analytics_refused: u64,
}

/// One object of the Worker's `DEAD_LETTERS` bucket.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Archived {
    /// Its key.
    pub key: String,
    /// Its text.
    pub text: String,
    /// Its custom metadata (`redrive_failures`).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

impl Edge {
    /// Changes Cloudflare's faults now (`PUT /_edgehose/faults`); fields left
    /// out keep their values.
    pub fn set_faults(&self, faults: &serde_json::Value) -> Result<()> {
        let request = http::Request::put(format!("{}/_edgehose/faults", self.url))
            .header("content-type", "application/json")
            .body(faults.to_string().into_bytes())?;
        let response = crate::http::send(request)?;
        if response.status != 200 {
            return Err(Error::protocol(format!("PUT /_edgehose/faults: {}", response.text())));
        }
        Ok(())
    }

    /// What Cloudflare's faults did so far.
    pub fn cloudflare_stats(&self) -> Result<CloudflareStats> {
        let body = crate::tools::http_get(&format!("{}/_edgehose/faults", self.url))?;
        let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| Error::json("GET /_edgehose/faults", e))?;
        serde_json::from_value(v["stats"].clone()).map_err(|e| Error::json("GET /_edgehose/faults", e))
    }

    /// The `DEAD_LETTERS` bucket's objects under `prefix`, with their text.
    pub fn archived(&self, prefix: &str) -> Result<Vec<Archived>> {
        self.archived_in("DEAD_LETTERS", prefix)
    }

    /// [`Edge::archived`] in the bucket bound as `bucket` (a region's
    /// `EU_DEAD_LETTERS`).
    pub fn archived_in(&self, bucket: &str, prefix: &str) -> Result<Vec<Archived>> {
        // Reading a whole bucket can take longer than a probe's two seconds.
        let request =
            http::Request::get(format!("{}/_edgehose/r2?bucket={bucket}&prefix={prefix}", self.url)).body(Vec::new())?;
        let body = crate::http::send_within(request, Duration::from_secs(30))?.text();
        serde_json::from_str(&body).map_err(|e| Error::json(format!("GET /_edgehose/r2: {body}"), e))
    }

    /// Stores an object in the `DEAD_LETTERS` bucket, as an operator (or an
    /// older version) might have left it.
    pub fn put_archived(&self, key: &str, text: &str) -> Result<()> {
        let request =
            http::Request::put(format!("{}/_edgehose/r2?key={key}", self.url)).body(text.as_bytes().to_vec())?;
        let response = crate::http::send_within(request, Duration::from_secs(30))?;
        if response.status != 200 {
            return Err(Error::protocol(format!("PUT /_edgehose/r2: {}", response.text())));
        }
        Ok(())
    }

    /// Every line archived as a dead letter (set aside by redrive or not).
    pub fn dead_letters(&self) -> Result<Vec<String>> {
        let mut lines = Vec::new();
        for bucket in self.buckets() {
            for prefix in ["dead-letters/", "dead-letters-set-aside/"] {
                for o in self.archived_in(&bucket, prefix)? {
                    lines.extend(o.text.lines().filter(|l| !l.is_empty()).map(str::to_owned));
                }
            }
        }
        Ok(lines)
    }

    /// The dead-letter buckets: `DEAD_LETTERS`, or each region's.
    pub fn buckets(&self) -> Vec<String> {
        if self.regions.is_empty() {
            vec!["DEAD_LETTERS".to_owned()]
        } else {
            self.regions
                .iter()
                .map(|r| format!("{}DEAD_LETTERS", edgehose_shared::residency::prefix_of(r)))
                .collect()
        }
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.flush();
        }
        // Closing stdin asks the runner to dispose Miniflare; give it a moment.
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(40));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
