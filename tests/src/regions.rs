//! The pipeline in several residency regions on one machine: one
//! firehose-local per region (each its own stream, data directory and
//! transform, as each region's stack is deployed), and one edge Worker
//! routing between them by `REGIONS`, with each region's queues and
//! dead-letter archive. A request says where it comes from with
//! Miniflare's `MF-CF-Blob` header, which sets `request.cf` as Cloudflare
//! does in production.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use edgehose_local::aws::firehose::{self, Config, FirehoseLocal};
use edgehose_local::cloudflare::miniflare::{Edge, EdgeOptions};
use edgehose_local::faults::FaultPlan;

use crate::events::wait_for;
use crate::local::Destination;
use crate::workspace_binary;

/// One region: its name, its firehose-local and where it writes.
pub struct Region {
    /// As `REGIONS` names it (`eu`).
    pub name: String,
    /// Its Firehose stand-in.
    pub firehose: FirehoseLocal,
    /// Its destination's directory.
    pub dir: PathBuf,
}

/// The regions and the edge in front of them; everything stops when dropped.
pub struct Regions {
    /// Each region, in the order given.
    pub regions: Vec<Region>,
    /// The edge Worker.
    pub edge: Edge,
}

impl Regions {
    /// Starts a firehose-local for each `(name, aws_region)` and the edge
    /// with `REGIONS = policy` (queue mode unless `bindings` says otherwise),
    /// each region's stream, AWS region and endpoint set under its prefix,
    /// and `bindings` added.
    pub fn start(test: &str, regions: &[(&str, &str)], policy: &str, bindings: &[(&str, &str)]) -> Self {
        let mut started = Vec::new();
        let mut pairs: Vec<(String, String)> = vec![
            ("REGIONS".into(), policy.into()),
            ("FORWARD_MODE".into(), "queue".into()),
            ("AWS_ACCESS_KEY_ID".into(), firehose::DEV_ACCESS_KEY_ID.into()),
            ("AWS_SECRET_ACCESS_KEY".into(), firehose::DEV_SECRET_ACCESS_KEY.into()),
            ("QUEUE_RETRY_BASE_SECONDS".into(), "1".into()),
            ("QUEUE_RETRY_MAX_SECONDS".into(), "2".into()),
        ];
        for (name, aws_region) in regions {
            let dir = std::env::temp_dir().join(format!("edgehose-{test}-{name}-{}", uuid::Uuid::new_v4()));
            let stream = format!("clicks-{name}");
            let mut config = Config::new(&stream, dir.clone());
            config.transform = Some((workspace_binary("transform"), Vec::new()));
            // It checks that requests are signed for its own region, as Firehose does.
            config.region = (*aws_region).to_owned();
            config.faults = FaultPlan::default();
            config.seed = 42;
            config.streams[0].buffer_interval = Duration::from_secs(1);
            let firehose =
                FirehoseLocal::start(config).unwrap_or_else(|e| panic!("could not start firehose-local {name}: {e}"));
            let prefix = edgehose_shared::residency::prefix_of(name);
            pairs.push((format!("{prefix}AWS_REGION"), (*aws_region).to_owned()));
            pairs.push((format!("{prefix}FIREHOSE_STREAM"), stream));
            pairs.push((format!("{prefix}FIREHOSE_ENDPOINT"), firehose.url().to_owned()));
            started.push(Region {
                name: (*name).to_owned(),
                firehose,
                dir,
            });
        }
        for (k, v) in bindings {
            pairs.retain(|(name, _)| name != k);
            pairs.push(((*k).to_owned(), (*v).to_owned()));
        }
        let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut options = EdgeOptions::new(&borrowed);
        options.max_retries = 20;
        options.max_batch_size = 20;
        let edge = Edge::start(&options).unwrap_or_else(|e| panic!("could not start the edge Worker: {e}"));
        Self { regions: started, edge }
    }

    /// The region named `name`.
    pub fn region(&self, name: &str) -> &Region {
        self.regions
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("no region {name}"))
    }

    /// What each region's destination holds now, by region name; the
    /// edge's dead letters in each region's own.
    pub fn destinations(&self) -> BTreeMap<String, Destination> {
        let mut out = BTreeMap::new();
        for r in &self.regions {
            let mut d = Destination::read(&r.dir, &r.firehose.transform_log());
            let bucket = format!("{}DEAD_LETTERS", edgehose_shared::residency::prefix_of(&r.name));
            for prefix in ["dead-letters/", "dead-letters-set-aside/"] {
                let archived = self
                    .edge
                    .archived_in(&bucket, prefix)
                    .unwrap_or_else(|e| panic!("could not read {bucket}: {e}"));
                for o in archived {
                    d.dead_letters
                        .extend(o.text.lines().filter(|l| !l.is_empty()).map(str::to_owned));
                }
            }
            out.insert(r.name.clone(), d);
        }
        out
    }

    /// Waits (delivering buffers as it goes) until `done` holds, or two
    /// minutes pass; returns the last reading.
    pub fn settle(
        &self,
        mut done: impl FnMut(&BTreeMap<String, Destination>) -> bool,
    ) -> BTreeMap<String, Destination> {
        let mut last = BTreeMap::new();
        wait_for(Duration::from_secs(120), || {
            for r in &self.regions {
                let _ = r.firehose.flush(Duration::from_secs(30));
            }
            last = self.destinations();
            done(&last)
        });
        last
    }

    /// Stops everything, then removes each region's data directory.
    pub fn remove(self) {
        let dirs: Vec<PathBuf> = self.regions.iter().map(|r| r.dir.clone()).collect();
        drop(self);
        for dir in dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The `MF-CF-Blob` header value that makes Miniflare set `request.cf` to
/// a request from `country` (with the fields Cloudflare sets beside it).
pub fn cf_blob(country: &str) -> String {
    let eu = edgehose_shared::residency::EU_COUNTRIES.contains(&country);
    let mut cf = serde_json::json!({
        "country": country,
        "colo": "LOC",
        "asn": 64500,
        // Miniflare compresses an answer unless the blob says what the client accepts.
        "clientAcceptEncoding": "",
    });
    if eu {
        cf["isEUCountry"] = serde_json::json!("1");
    }
    cf.to_string()
}
