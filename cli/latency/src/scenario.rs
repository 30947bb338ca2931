//! Geography on one machine: a client in a named city, the edge PoP in the
//! same city, the AWS region elsewhere, and both paths run locally behind
//! delay proxies set to those distances.
//!
//! The model, from first principles:
//!
//! | hop | round trip |
//! |---|---|
//! | client ↔ edge PoP (in the client's city) | the last mile |
//! | client ↔ AWS region | the last mile + the backbone from the city's nearest AWS region to the target region |
//! | edge PoP ↔ AWS region | the backbone |
//! | Lambda ↔ Firehose (same region) | the region's own round trip |
//!
//! Backbone and in-region figures are CloudPing.co's medians over a year
//! (<https://www.cloudping.co/>, API `latencies?percentile=p_50&timeframe=1Y`,
//! snapshot of 2025-05-29): TCP connect times, about one round trip, measured
//! every 6 hours from each AWS region to DynamoDB's endpoint in every other
//! (method: <https://github.com/mda590/cloudping.co>). The last mile defaults
//! to 20 ms: Cloudflare states that 95% of the world's Internet-connected
//! population is within 50 ms of one of its data centers and most within
//! 20 ms (<https://www.cloudflare.com/network/>).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::probe::Endpoint;
use super::proxy::{Delay, Proxy, Route, self_signed};
use super::run::Target;
use edgehose_local::aws::api_gateway::ApiGateway;
use edgehose_local::aws::firehose::{self, Config, FirehoseLocal, StreamConfig};
use edgehose_local::cloudflare::miniflare::{Build, Edge, EdgeOptions};
use edgehose_local::faults::FaultPlan;
use edgehose_local::tools;

use crate::error::{Error, Result};

/// A client city: its nearest AWS region and the backbone round trips from
/// there to the regions a deployment can pick (CloudPing p50, ms).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct City {
    /// Name used on the command line.
    pub key: &'static str,
    /// For people.
    pub name: &'static str,
    /// Its country (ISO 3166-1 alpha-2), as Cloudflare reports a client there.
    pub country: &'static str,
    /// The AWS region nearest to it.
    pub nearest_region: &'static str,
    /// Round trip from there to us-east-1.
    pub to_us_east_1: f64,
    /// Round trip from there to eu-central-1.
    pub to_eu_central_1: f64,
}

/// The cities (CloudPing 1-year p50, snapshot of 2025-05-29, from the
/// city's region to the target region).
pub const CITIES: [City; 7] = [
    City {
        key: "frankfurt",
        name: "Frankfurt",
        country: "DE",
        nearest_region: "eu-central-1",
        to_us_east_1: 92.6,
        to_eu_central_1: IN_REGION_EU_CENTRAL_1,
    },
    City {
        key: "london",
        name: "London",
        country: "GB",
        nearest_region: "eu-west-2",
        to_us_east_1: 77.4,
        to_eu_central_1: 17.9,
    },
    City {
        key: "sao-paulo",
        name: "São Paulo",
        country: "BR",
        nearest_region: "sa-east-1",
        to_us_east_1: 115.4,
        to_eu_central_1: 204.9,
    },
    City {
        key: "mumbai",
        name: "Mumbai",
        country: "IN",
        nearest_region: "ap-south-1",
        to_us_east_1: 189.7,
        to_eu_central_1: 128.8,
    },
    City {
        key: "singapore",
        name: "Singapore",
        country: "SG",
        nearest_region: "ap-southeast-1",
        to_us_east_1: 218.6,
        to_eu_central_1: 161.3,
    },
    City {
        key: "tokyo",
        name: "Tokyo",
        country: "JP",
        nearest_region: "ap-northeast-1",
        to_us_east_1: 149.2,
        to_eu_central_1: 227.6,
    },
    City {
        key: "sydney",
        name: "Sydney",
        country: "AU",
        nearest_region: "ap-southeast-2",
        to_us_east_1: 199.7,
        to_eu_central_1: 251.8,
    },
];

/// CloudPing's same-region round trips (p50, ms).
const IN_REGION_US_EAST_1: f64 = 5.3;
const IN_REGION_EU_CENTRAL_1: f64 = 4.0;

/// The regions a scenario can deploy to.
pub const REGIONS: [&str; 2] = ["us-east-1", "eu-central-1"];

/// The residency policy of the routed edge (`--routed`): every city's
/// country to the nearer of the two regions, by the backbone figures
/// (`REGIONS`: `eu` in eu-central-1, `us` in us-east-1, the default).
pub fn routed_policy() -> String {
    let near_eu: Vec<&str> = CITIES
        .iter()
        .filter(|c| c.to_eu_central_1 < c.to_us_east_1)
        .map(|c| c.country)
        .collect();
    format!("eu: {}; us: *", near_eu.join(" "))
}

/// The routed edge's target name.
pub const ROUTED_TARGET: &str = "edge-routed";

/// The default last mile, round trip (ms).
pub const LAST_MILE_MS: f64 = 20.0;

/// One placement of client, PoP and region.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Where the client is.
    pub city: City,
    /// Where the regional half runs.
    pub region: &'static str,
    /// Client ↔ its nearest PoP, round trip.
    pub last_mile: Duration,
}

fn millis(ms: f64) -> Duration {
    Duration::from_secs_f64(ms.max(0.0) / 1000.0)
}

impl Scenario {
    /// `city` (a key of [`CITIES`]) with the regional half in `region`.
    pub fn new(city: &str, region: &str, last_mile_ms: f64) -> Result<Self> {
        let found = CITIES
            .iter()
            .find(|c| c.key == city)
            .ok_or_else(|| Error::config(format!("unknown city {city:?}; one of: {}", keys().join(", "))))?;
        let region = REGIONS
            .iter()
            .find(|r| **r == region)
            .ok_or_else(|| Error::config(format!("unknown region {region:?}; one of: {}", REGIONS.join(", "))))?;
        if !(0.0..=1000.0).contains(&last_mile_ms) {
            return Err(Error::config(format!(
                "--last-mile-ms {last_mile_ms}: between 0 and 1000"
            )));
        }
        Ok(Self {
            city: *found,
            region,
            last_mile: millis(last_mile_ms),
        })
    }

    /// Edge PoP ↔ region, round trip.
    pub fn backbone(&self) -> Duration {
        millis(match self.region {
            "eu-central-1" => self.city.to_eu_central_1,
            _ => self.city.to_us_east_1,
        })
    }

    /// Client ↔ edge PoP, round trip.
    pub fn client_to_pop(&self) -> Duration {
        self.last_mile
    }

    /// Client ↔ region, round trip.
    pub fn client_to_region(&self) -> Duration {
        self.last_mile + self.backbone()
    }

    /// Lambda ↔ Firehose in the region, round trip.
    pub fn in_region(&self) -> Duration {
        millis(match self.region {
            "eu-central-1" => IN_REGION_EU_CENTRAL_1,
            _ => IN_REGION_US_EAST_1,
        })
    }

    /// One line for people.
    pub fn describe(&self) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        format!(
            "a client in {} → edge PoP in {} ({:.0} ms round trip) | → {} ({:.1} ms) | PoP ↔ {} {:.1} ms | in region {:.1} ms",
            self.city.name,
            self.city.name,
            ms(self.client_to_pop()),
            self.region,
            ms(self.client_to_region()),
            self.region,
            ms(self.backbone()),
            ms(self.in_region())
        )
    }
}

fn keys() -> Vec<&'static str> {
    CITIES.iter().map(|c| c.key).collect()
}

/// The table, for `--scenario list`.
pub fn table() -> String {
    let mut t = format!(
        "{:<11} {:<15} {:>13} {:>16}\n",
        "city", "nearest region", "→ us-east-1", "→ eu-central-1"
    );
    for c in CITIES {
        t.push_str(&format!(
            "{:<11} {:<15} {:>10.1} ms {:>13.1} ms\n",
            c.key, c.nearest_region, c.to_us_east_1, c.to_eu_central_1
        ));
    }
    t.push_str(&format!(
        "\nBackbone round trips: CloudPing.co 1-year medians (snapshot 2025-05-29), from the city's AWS region.\n\
         Plus the last mile ({LAST_MILE_MS:.0} ms by default) from the client to its ISP and the edge PoP in its city.\n"
    ));
    t
}

/// A queue write's round trip by default: Cloudflare's Queues resolve a send
/// once the messages are written to the queue's storage, ~60 ms at the
/// median (Cloudflare's blog, 2024-10-24, "Durable Objects aren't just
/// durable, they're fast": median send latency down from ~200 ms to ~60 ms).
/// Cloudflare does not document where that storage is relative to a PoP, so
/// every scenario puts the same figure on it.
pub const QUEUE_WRITE_MS: u64 = 60;

/// How the edge Worker forwards, each measured as its own target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeMode {
    /// Queue mode as deployed: the answer goes at once and the isolate
    /// writes one queue message per window (`QUEUE_WINDOW_MS` 1000) in
    /// `waitUntil`.
    Window,
    /// Queue mode without a window: the answer waits for its queue write.
    Queue,
    /// Direct mode: the answer goes at once and the isolate calls Firehose
    /// itself.
    Direct,
}

impl EdgeMode {
    /// Every mode, the deployed default first (the baseline of the ratios).
    pub const ALL: [EdgeMode; 3] = [EdgeMode::Window, EdgeMode::Queue, EdgeMode::Direct];

    /// Its name on the command line.
    pub fn key(self) -> &'static str {
        match self {
            EdgeMode::Window => "window",
            EdgeMode::Queue => "queue",
            EdgeMode::Direct => "direct",
        }
    }

    /// Its target's name in the report.
    pub fn target(self) -> String {
        format!("edge-{}", self.key())
    }

    /// For people.
    pub fn describe(self) -> &'static str {
        match self {
            EdgeMode::Window => "queue mode as deployed: answers at once, one queue message per isolate window",
            EdgeMode::Queue => "queue mode without a window: answers after its queue write",
            EdgeMode::Direct => "direct mode: answers at once, calls Firehose itself",
        }
    }

    /// The Worker's settings for it (the window as `make dev` and
    /// wrangler.toml run it).
    fn bindings(self) -> [(&'static str, String); 2] {
        let (mode, window) = match self {
            EdgeMode::Window => ("queue", edgehose_local::cloudflare::miniflare::DEFAULT_QUEUE_WINDOW_MS),
            EdgeMode::Queue => ("queue", 0),
            EdgeMode::Direct => ("direct", 0),
        };
        [
            ("FORWARD_MODE", mode.to_owned()),
            ("QUEUE_WINDOW_MS", window.to_string()),
        ]
    }

    /// A comma-separated list of modes (`all`: every one).
    pub fn parse_list(v: &str) -> Result<Vec<EdgeMode>> {
        if v == "all" {
            return Ok(Self::ALL.to_vec());
        }
        let mut out: Vec<EdgeMode> = Vec::new();
        for key in v.split(',') {
            let mode = Self::ALL
                .into_iter()
                .find(|m| m.key() == key)
                .ok_or_else(|| Error::config(format!("--edge-mode {key:?}: window, queue, direct or all")))?;
            if !out.contains(&mode) {
                out.push(mode);
            }
        }
        Ok(out)
    }
}

/// How to run the local stack.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Up to this much more per chunk and direction on every hop.
    pub jitter: Duration,
    /// The edge's modes, each its own Worker and target.
    pub edge_modes: Vec<EdgeMode>,
    /// Each queue write takes this long (its round trip).
    pub queue_write_ms: u64,
    /// Added to every Firehose call (its own service time).
    pub firehose_latency_ms: u64,
    /// Where firehose-local writes.
    pub data_dir: PathBuf,
    /// Also an edge with both regions, routing the client to the nearer
    /// ([`routed_policy`]; target [`ROUTED_TARGET`], queue mode as deployed),
    /// each region a firehose-local of its own at its backbone distance.
    pub routed: bool,
}

/// Both paths running locally at the scenario's distances.
pub struct Stack {
    /// `edge` and `apigw`, through their delay proxies.
    pub targets: Vec<Target>,
    /// The certificate the TLS fronts present, for clients to trust.
    pub ca_pem: String,
    /// Where delivered events land.
    pub data_dir: PathBuf,
    // Dropped in this order: the fronts, the services, firehose-local.
    _fronts: Vec<Proxy>,
    _edges: Vec<Edge>,
    _api: ApiGateway,
    _backs: Vec<Proxy>,
    _firehose: FirehoseLocal,
    _regional: Option<FirehoseLocal>,
}

fn addr_of(url: &str) -> Result<SocketAddr> {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .map_err(|e| Error::config(format!("{url}: {e}")))
}

fn back(upstream: SocketAddr, rtt: Duration, jitter: Duration) -> Result<Proxy> {
    Proxy::start(Route {
        listen: "127.0.0.1:0".into(),
        upstream,
        delay: Delay::rtt(rtt, jitter),
        tunnel: false,
        tls: None,
    })
}

/// Starts firehose-local (running the release `transform`), the API Gateway
/// path (release `ingest-api`), the edge Worker (release build) and the delay
/// proxies between them and in front of them.
pub fn start(s: &Scenario, o: &StackOptions) -> Result<Stack> {
    let transform = tools::release_binary("transform", "make bench-latency")?;
    let ingest_api = tools::release_binary("ingest-api", "make bench-latency")?;
    fresh_data_dir(&o.data_dir)?;

    let stream = "edgehose-events";
    let mut stream_config = StreamConfig::new(stream);
    stream_config.buffer_interval = Duration::from_secs(1);
    let mut config = Config::new(stream, o.data_dir.clone());
    config.streams = vec![stream_config];
    config.transform = Some((transform, Vec::new()));
    config.faults = FaultPlan {
        latency_ms: o.firehose_latency_ms,
        ..FaultPlan::default()
    };
    let firehose = FirehoseLocal::start(config)?;
    let firehose_addr = addr_of(firehose.url())?;
    // The regional side reaches Firehose within its region; the PoP across the backbone.
    let from_region = back(firehose_addr, s.in_region(), o.jitter)?;
    let from_pop = back(firehose_addr, s.backbone(), o.jitter)?;
    let region = firehose::REGION_DEFAULT;

    let endpoint_in_region = format!("http://{}", from_region.addr());
    let api_env = [
        ("FIREHOSE_STREAM", stream),
        ("AWS_REGION", region),
        ("AWS_ACCESS_KEY_ID", firehose::DEV_ACCESS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", firehose::DEV_SECRET_ACCESS_KEY),
        ("FIREHOSE_ENDPOINT", endpoint_in_region.as_str()),
        ("ALLOW_ANONYMOUS", "true"),
    ];
    let api = ApiGateway::start(
        "127.0.0.1:0",
        &ingest_api,
        &api_env,
        Some(&o.data_dir.join("ingest-api.log")),
    )?;

    let endpoint_from_pop = format!("http://{}", from_pop.addr());
    let mut edges = Vec::new();
    for mode in &o.edge_modes {
        let mut options = EdgeOptions::new(&[
            ("FIREHOSE_STREAM", stream),
            ("AWS_REGION", region),
            ("FIREHOSE_ENDPOINT", endpoint_from_pop.as_str()),
            ("AWS_ACCESS_KEY_ID", firehose::DEV_ACCESS_KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", firehose::DEV_SECRET_ACCESS_KEY),
            ("ALLOWED_ORIGINS", "*"),
        ]);
        for (k, v) in mode.bindings() {
            options.bindings.insert(k.to_owned(), v);
        }
        options.build = Build::Release;
        options.queue_write_ms = o.queue_write_ms;
        edges.push((*mode, Edge::start(&options)?));
    }

    // The routed edge: the client's region by its country, each region's
    // Firehose at that region's backbone distance from the PoP.
    let mut backs = vec![from_region, from_pop];
    let mut regional = None;
    let mut routed = None;
    if o.routed {
        let mut eu_config = Config::new(stream, o.data_dir.join("eu"));
        let mut eu_stream = StreamConfig::new(stream);
        eu_stream.buffer_interval = Duration::from_secs(1);
        eu_config.streams = vec![eu_stream];
        eu_config.region = "eu-central-1".to_owned();
        eu_config.transform = Some((tools::release_binary("transform", "make bench-latency")?, Vec::new()));
        eu_config.faults = FaultPlan {
            latency_ms: o.firehose_latency_ms,
            ..FaultPlan::default()
        };
        let eu = FirehoseLocal::start(eu_config)?;
        let to_eu = back(addr_of(eu.url())?, millis(s.city.to_eu_central_1), o.jitter)?;
        let to_us = back(firehose_addr, millis(s.city.to_us_east_1), o.jitter)?;
        let (eu_url, us_url) = (format!("http://{}", to_eu.addr()), format!("http://{}", to_us.addr()));
        let policy = routed_policy();
        let mut options = EdgeOptions::new(&[
            ("REGIONS", policy.as_str()),
            ("EU_AWS_REGION", "eu-central-1"),
            ("EU_FIREHOSE_STREAM", stream),
            ("EU_FIREHOSE_ENDPOINT", eu_url.as_str()),
            ("US_AWS_REGION", region),
            ("US_FIREHOSE_STREAM", stream),
            ("US_FIREHOSE_ENDPOINT", us_url.as_str()),
            ("AWS_ACCESS_KEY_ID", firehose::DEV_ACCESS_KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", firehose::DEV_SECRET_ACCESS_KEY),
            ("ALLOWED_ORIGINS", "*"),
        ]);
        for (k, v) in EdgeMode::Window.bindings() {
            options.bindings.insert(k.to_owned(), v);
        }
        options.build = Build::Release;
        options.queue_write_ms = o.queue_write_ms;
        routed = Some(Edge::start(&options)?);
        backs.extend([to_eu, to_us]);
        regional = Some(eu);
    }

    let mut hosts: Vec<String> = o
        .edge_modes
        .iter()
        .map(|m| format!("{}.edgehose.test", m.target()))
        .collect();
    if routed.is_some() {
        hosts.push(format!("{ROUTED_TARGET}.edgehose.test"));
    }
    hosts.push("apigw.edgehose.test".to_owned());
    let (tls, ca_pem) = self_signed(&hosts.iter().map(String::as_str).collect::<Vec<_>>())?;
    let front = |upstream: SocketAddr, rtt: Duration| {
        Proxy::start(Route {
            listen: "127.0.0.1:0".into(),
            upstream,
            delay: Delay::rtt(rtt, o.jitter),
            tunnel: true,
            tls: Some(tls.clone()),
        })
    };
    let mut fronts = Vec::new();
    for (mode, edge) in &edges {
        fronts.push((mode.target(), front(addr_of(edge.url())?, s.client_to_pop())?));
    }
    if let Some(edge) = &routed {
        fronts.push((
            ROUTED_TARGET.to_owned(),
            front(addr_of(edge.url())?, s.client_to_pop())?,
        ));
    }
    fronts.push(("apigw".to_owned(), front(addr_of(api.url())?, s.client_to_region())?));
    // Cloudflare tells the routed edge the client's country; locally,
    // Miniflare's MF-CF-Blob header does (the answer uncompressed, as asked).
    let blob = serde_json::json!({"country": s.city.country, "clientAcceptEncoding": ""}).to_string();
    let target = |name: &str, host: &str, proxy: &Proxy| -> Result<Target> {
        let url = format!("https://{host}/v1/events");
        let mut endpoint = Endpoint::parse(&url)?;
        endpoint.tunnel = Some(proxy.addr());
        let headers = if name == ROUTED_TARGET {
            vec![("mf-cf-blob".to_owned(), blob.clone())]
        } else {
            Vec::new()
        };
        Ok(Target {
            name: name.to_owned(),
            url,
            endpoint,
            headers,
        })
    };
    let targets = fronts
        .iter()
        .map(|(name, proxy)| target(name, &format!("{name}.edgehose.test"), proxy))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Stack {
        targets,
        ca_pem,
        data_dir: o.data_dir.clone(),
        _fronts: fronts.into_iter().map(|(_, p)| p).collect(),
        _edges: edges.into_iter().map(|(_, e)| e).chain(routed).collect(),
        _api: api,
        _backs: backs,
        _firehose: firehose,
        _regional: regional,
    })
}

/// Where firehose-local writes for a scenario run under `out`.
pub fn data_dir(out: &Path) -> PathBuf {
    out.join("firehose-local-data")
}

/// Marks a data directory as this tool's, so a rerun may empty it.
const MARKER: &str = ".edgehose-latency";

/// Empties `dir` for a new run, but only if an earlier run made it.
fn fresh_data_dir(dir: &Path) -> Result<()> {
    let in_use = std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some());
    if in_use && !dir.join(MARKER).exists() {
        return Err(Error::config(format!(
            "{} exists and was not made by edgehose latency; choose another --out",
            dir.display()
        )));
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| Error::file(dir, e))?;
    std::fs::write(dir.join(MARKER), "").map_err(|e| Error::file(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_routed_edge_sends_each_city_to_the_nearer_region() {
        let policy = routed_policy();
        let p = edgehose_shared::residency::Policy::parse(&policy).unwrap();
        for c in CITIES {
            let nearer = if c.to_eu_central_1 < c.to_us_east_1 { "eu" } else { "us" };
            assert_eq!(p.route(Some(c.country)).name, nearer, "{}", c.name);
        }
        assert_eq!(p.route(Some("DE")).name, "eu");
        assert_eq!(p.route(Some("JP")).name, "us");
    }

    #[test]
    fn every_city_has_figures_for_every_region() {
        for c in CITIES {
            assert!(c.to_us_east_1 > 0.0 && c.to_eu_central_1 > 0.0, "{c:?}");
            assert!(c.to_us_east_1 < 400.0 && c.to_eu_central_1 < 400.0, "{c:?}");
            for r in REGIONS {
                Scenario::new(c.key, r, LAST_MILE_MS).unwrap();
            }
        }
        let mut keys = keys();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), CITIES.len());
    }

    #[test]
    fn the_region_is_the_last_mile_plus_the_backbone_away_and_the_pop_the_last_mile() {
        let s = Scenario::new("tokyo", "us-east-1", 20.0).unwrap();
        assert_eq!(s.client_to_pop(), Duration::from_millis(20));
        assert_eq!(s.backbone(), Duration::from_secs_f64(0.1492));
        assert_eq!(s.client_to_region(), Duration::from_secs_f64(0.1692));
        assert_eq!(s.in_region(), Duration::from_secs_f64(0.0053));
        let home = Scenario::new("frankfurt", "eu-central-1", 20.0).unwrap();
        assert_eq!(home.backbone(), home.in_region());
        assert!(home.describe().contains("Frankfurt"));
    }

    #[test]
    fn a_data_directory_is_emptied_only_if_a_run_made_it() {
        let dir = std::env::temp_dir().join(format!("edgehose-scenario-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("precious"), "x").unwrap();
        assert!(
            fresh_data_dir(&dir)
                .unwrap_err()
                .to_string()
                .contains("not made by edgehose latency")
        );
        assert!(dir.join("precious").exists());
        std::fs::remove_file(dir.join("precious")).unwrap();
        fresh_data_dir(&dir).unwrap();
        std::fs::write(dir.join("object"), "x").unwrap();
        fresh_data_dir(&dir).unwrap();
        assert!(!dir.join("object").exists() && dir.join(MARKER).exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn edge_modes_are_read_from_a_list_and_the_deployed_default_comes_first() {
        assert_eq!(EdgeMode::parse_list("all").unwrap(), EdgeMode::ALL);
        assert_eq!(EdgeMode::ALL[0], EdgeMode::Window);
        assert_eq!(
            EdgeMode::parse_list("direct,queue,direct").unwrap(),
            [EdgeMode::Direct, EdgeMode::Queue]
        );
        assert!(
            EdgeMode::parse_list("queue,fast")
                .unwrap_err()
                .to_string()
                .contains("\"fast\"")
        );
        assert_eq!(EdgeMode::Queue.target(), "edge-queue");
        // Only the window-less queue mode waits for its write.
        assert_eq!(EdgeMode::Queue.bindings()[1], ("QUEUE_WINDOW_MS", "0".to_owned()));
        assert_eq!(
            EdgeMode::Window.bindings(),
            [
                ("FORWARD_MODE", "queue".to_owned()),
                (
                    "QUEUE_WINDOW_MS",
                    edgehose_local::cloudflare::miniflare::DEFAULT_QUEUE_WINDOW_MS.to_string()
                )
            ]
        );
    }

    #[test]
    fn unknown_names_are_refused_with_the_choices() {
        assert!(
            Scenario::new("atlantis", "us-east-1", 20.0)
                .unwrap_err()
                .to_string()
                .contains("tokyo")
        );
        assert!(
            Scenario::new("tokyo", "mars-1", 20.0)
                .unwrap_err()
                .to_string()
                .contains("eu-central-1")
        );
        assert!(Scenario::new("tokyo", "us-east-1", -1.0).is_err());
        assert!(table().contains("sydney") && table().contains("CloudPing"));
    }
}
