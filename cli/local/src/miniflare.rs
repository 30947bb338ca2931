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
    /// Where dead-lettered messages are posted; `None`: the Worker archives
    /// them in its `DEAD_LETTERS` bucket (Miniflare's R2), as deployed.
    pub dlq_sink: Option<String>,
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
    /// The port to serve on (any free one, chosen by Miniflare, when `None`).
    pub port: Option<u16>,
    /// The Worker's DevTools inspector on this port (0: any free one); off when `None`.
    pub inspector_port: Option<u16>,
}

impl EdgeOptions {
    /// The release build with these settings.
    pub fn new(bindings: &[(&str, &str)]) -> Self {
        Self {
            build: Build::Release,
            bindings: bindings.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            max_retries: 3,
            max_batch_size: 100,
            dlq_sink: None,
            persist: None,
            dead_letter_queue: true,
            events_queue: true,
            queue_shards: 1,
            refuse_queues: Vec::new(),
            queue_write_ms: 0,
            port: None,
            inspector_port: None,
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
    log: Arc<Mutex<String>>,
}

impl Edge {
    /// Starts Miniflare with the built Worker and waits until it serves.
    pub fn start(options: &EdgeOptions) -> Result<Self> {
        let build = options.build.dir()?;
        let node = tools::npm_bin("node")?;
        let script = tools::repo_root().join("cli/local/js/miniflare.mjs");
        // The Worker dead-letters a message's last delivery itself: it must
        // know which delivery is the last, as wrangler.toml tells it.
        let mut bindings = options.bindings.clone();
        bindings
            .entry("QUEUE_MAX_RETRIES".to_owned())
            .or_insert_with(|| options.max_retries.to_string());
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
            "dlqSink": options.dlq_sink,
            "persist": options.persist,
            "deadLetterQueue": options.dead_letter_queue,
            "eventsQueue": options.events_queue,
            "queueWriteMs": options.queue_write_ms,
            "queueShards": options.queue_shards,
            "refuseQueues": options.refuse_queues,
            "inspectorPort": options.inspector_port,
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
        let log = Arc::new(Mutex::new(String::new()));
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
                    l.push_str(&line);
                    l.push('\n');
                }
            }
        });
        let err_log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(mut l) = err_log.lock() {
                    l.push_str(&line);
                    l.push('\n');
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
            .clone()
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
