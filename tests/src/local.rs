//! The whole pipeline as `make dev` runs it — the built edge Worker in
//! workerd (queue mode, Miniflare's Queues), firehose-local verifying SigV4
//! and running the real `transform` binary — and what its destination holds,
//! by event id.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use edgehose_local::aws::firehose::{self, Config, FirehoseLocal};
use edgehose_local::cloudflare::miniflare::{Edge, EdgeOptions};
use edgehose_local::faults::FaultPlan;

use crate::events::wait_for;
use crate::workspace_binary;

/// A running local pipeline; everything stops when it is dropped.
pub struct Local {
    /// The Firehose stand-in, running the transform.
    pub firehose: FirehoseLocal,
    /// The edge Worker.
    pub edge: Edge,
    /// Where the destination's objects are written.
    pub dir: PathBuf,
    /// With `DESTINATION=iceberg`: the Glue database of the Iceberg tables.
    pub iceberg: Option<String>,
}

/// The Glue database the pipeline's Iceberg tables are in.
pub const ICEBERG_DATABASE: &str = "edgehose";

impl Local {
    /// Starts firehose-local (a 1 s buffer, `faults`) and the edge in queue
    /// mode in front of it, with `bindings` added to the edge's settings;
    /// `SOURCES` and `PARTITIONING` there are given to the transform too, as
    /// a deployment does (and `PARTITIONING=true` partitions the stream as
    /// the template does; `DESTINATION=iceberg` writes the stream's rows to
    /// Iceberg tables of [`ICEBERG_DATABASE`]).
    pub fn start(name: &str, faults: FaultPlan, bindings: &[(&str, &str)]) -> Self {
        Self::start_with(name, faults, bindings, |_| {})
    }

    /// [`Local::start`], with the edge's options changed by `edit` last.
    pub fn start_with(
        name: &str,
        faults: FaultPlan,
        bindings: &[(&str, &str)],
        edit: impl FnOnce(&mut EdgeOptions),
    ) -> Self {
        let dir = std::env::temp_dir().join(format!("edgehose-pipeline-{name}-{}", uuid::Uuid::new_v4()));
        let mut config = Config::new("clicks", dir.clone());
        let mut transform_env: Vec<(String, String)> = bindings
            .iter()
            .filter(|(k, _)| matches!(*k, "SOURCES" | "PARTITIONING" | "DESTINATION"))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if bindings.contains(&("PARTITIONING", "true")) {
            config.streams[0].partition_prefix = Some(firehose::PARTITION_PREFIX.to_owned());
        }
        let iceberg = bindings
            .contains(&("DESTINATION", "iceberg"))
            .then(|| ICEBERG_DATABASE.to_owned());
        if let Some(database) = &iceberg {
            config.streams[0].iceberg = Some(database.clone());
            transform_env.push(("DATABASE_NAME".to_owned(), database.clone()));
        }
        config.transform = Some((workspace_binary("transform"), transform_env));
        config.faults = faults;
        config.seed = 42;
        config.streams[0].buffer_interval = Duration::from_secs(1);
        let firehose = FirehoseLocal::start(config).unwrap_or_else(|e| panic!("could not start firehose-local: {e}"));
        let mut pairs = vec![
            ("FIREHOSE_STREAM", "clicks"),
            ("AWS_REGION", "us-east-1"),
            ("FORWARD_MODE", "queue"),
            ("AWS_ACCESS_KEY_ID", firehose::DEV_ACCESS_KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", firehose::DEV_SECRET_ACCESS_KEY),
            ("FIREHOSE_ENDPOINT", firehose.url()),
            // What did not land goes back on the queue for a second or two, not minutes.
            ("QUEUE_RETRY_BASE_SECONDS", "1"),
            ("QUEUE_RETRY_MAX_SECONDS", "2"),
        ];
        pairs.extend_from_slice(bindings);
        let mut options = EdgeOptions::new(&pairs);
        options.max_retries = 20;
        options.max_batch_size = 20;
        edit(&mut options);
        let edge = Edge::start(&options).unwrap_or_else(|e| panic!("could not start the edge Worker: {e}"));
        Self {
            firehose,
            edge,
            dir,
            iceberg,
        }
    }

    /// Every row of the Iceberg table `table`, as pyiceberg reads it.
    pub fn iceberg_rows(&self, table: &str) -> Vec<serde_json::Value> {
        let database = self.iceberg.as_deref().unwrap_or(ICEBERG_DATABASE);
        firehose::iceberg::read_table(&self.dir.join(firehose::ICEBERG_DIR), database, table)
            .unwrap_or_else(|e| panic!("could not read {database}.{table}: {e}"))
    }

    /// Stops the pipeline (firehose-local delivers what it still buffers),
    /// then removes its data directory.
    pub fn remove(self) {
        let dir = self.dir.clone();
        drop(self);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// What the destination holds now (with `DESTINATION=iceberg`, the rows
    /// of every Iceberg table as the delivered events), and the edge's dead
    /// letters.
    pub fn destination(&self) -> Destination {
        let mut d = Destination::read(&self.dir, &self.firehose.transform_log());
        if self.iceberg.is_some() {
            for (_, table) in edgehose_shared::table::ICEBERG_TABLES {
                for row in self.iceberg_rows(table) {
                    let id = row["id"].as_str().unwrap_or_default().to_owned();
                    d.delivered.entry(id).or_default().push(row);
                }
            }
        }
        d.dead_letters = self
            .edge
            .dead_letters()
            .unwrap_or_else(|e| panic!("could not read the edge's dead letters: {e}"));
        d
    }

    /// Waits (delivering buffers as it goes) until `done` holds of the
    /// destination, or two minutes pass; returns the last reading.
    pub fn settle(&self, mut done: impl FnMut(&Destination) -> bool) -> Destination {
        let mut last = Destination::default();
        wait_for(Duration::from_secs(120), || {
            let _ = self.firehose.flush(Duration::from_secs(30));
            last = self.destination();
            done(&last)
        });
        last
    }
}

/// Every event in a data directory, by its id.
#[derive(Debug, Default)]
pub struct Destination {
    /// Analyst lines of valid events: id → each copy.
    pub delivered: BTreeMap<String, Vec<serde_json::Value>>,
    /// Invalid events: id → each `rejected` line (its reasons and original
    /// envelope), from the destination or, for records that failed whole,
    /// from the transform's log.
    pub rejected: BTreeMap<String, Vec<serde_json::Value>>,
    /// Envelope lines kept under the error prefix.
    pub failed: Vec<serde_json::Value>,
    /// Lines the edge archived as dead letters (its `DEAD_LETTERS` bucket).
    pub dead_letters: Vec<String>,
}

impl Destination {
    /// Reads `dir` (Firehose's S3 layout) and the transform's log.
    pub fn read(dir: &std::path::Path, transform_log: &str) -> Self {
        let mut d = Self::default();
        for path in firehose::store::objects(dir) {
            let Ok(rel) = path.strip_prefix(dir) else { continue };
            let rel = rel.to_string_lossy().into_owned();
            if rel.starts_with('.') || rel.ends_with(".log") || rel.starts_with(firehose::ICEBERG_DIR) {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if rel.starts_with("processing-failed/") {
                for line in text.lines() {
                    let Ok(e) = serde_json::from_str::<serde_json::Value>(line) else {
                        continue;
                    };
                    let raw = e["rawData"].as_str().unwrap_or_default();
                    let raw = base64::engine::general_purpose::STANDARD
                        .decode(raw)
                        .unwrap_or_default();
                    d.failed.extend(
                        String::from_utf8_lossy(&raw)
                            .lines()
                            .filter_map(|l| serde_json::from_str(l).ok()),
                    );
                }
            } else {
                for line in text.lines() {
                    let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                        continue;
                    };
                    let id = v["id"].as_str().unwrap_or_default().to_owned();
                    if v.get("rejected").is_some() {
                        d.rejected.entry(id).or_default().push(v);
                    } else {
                        d.delivered.entry(id).or_default().push(v);
                    }
                }
            }
        }
        for line in transform_log.lines() {
            let Some(rejected) = serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v["fields"]["rejected"].as_str().map(str::to_owned))
                .and_then(|r| serde_json::from_str::<serde_json::Value>(&r).ok())
            else {
                continue;
            };
            let id = rejected["id"].as_str().unwrap_or_default().to_owned();
            d.rejected.entry(id).or_default().push(rejected);
        }
        d
    }

    /// The reasons (`reason` codes) an event was rejected for.
    pub fn reasons(&self, id: &str) -> Vec<String> {
        self.rejected
            .get(id)
            .into_iter()
            .flatten()
            .flat_map(|r| r["rejected"].as_array().cloned().unwrap_or_default())
            .filter_map(|v| v["reason"].as_str().map(str::to_owned))
            .collect()
    }
}
