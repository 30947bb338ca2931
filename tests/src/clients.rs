//! The real client SDKs from npm and PyPI, unchanged, driven by the scripts
//! in `tests/sdk/` (one of each of their calls, then a flush), and a capture
//! server that records what they send.
//!
//! The bootstrap installs them: `@segment/analytics-node`,
//! `@snowplow/node-tracker` and `posthog-node` into its npm folder,
//! `segment-analytics-python`, `rudder-sdk-python` and `posthog` into its
//! Python environment. A missing one fails with how to install it.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use base64::Engine as _;

use edgehose_local::tools::{self, free_port};

/// A client this harness can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sdk {
    /// `@segment/analytics-node` (npm).
    AnalyticsNode,
    /// `segment-analytics-python` (PyPI).
    AnalyticsPython,
    /// `rudder-sdk-python` (PyPI), which gzips its batches by default.
    RudderPython,
    /// `@snowplow/node-tracker` (npm).
    SnowplowNode,
    /// `posthog-node` (npm), which gzips its batches.
    PostHogNode,
    /// `posthog` (PyPI).
    PostHogPython,
}

impl Sdk {
    /// The Segment-compatible clients (Segment's Tracking API).
    pub const SEGMENT: [Sdk; 3] = [Sdk::AnalyticsNode, Sdk::AnalyticsPython, Sdk::RudderPython];

    /// Every driven client.
    pub const ALL: [Sdk; 6] = [
        Sdk::AnalyticsNode,
        Sdk::AnalyticsPython,
        Sdk::RudderPython,
        Sdk::SnowplowNode,
        Sdk::PostHogNode,
        Sdk::PostHogPython,
    ];

    /// A short name (the corpus file's name).
    pub fn name(self) -> &'static str {
        match self {
            Self::AnalyticsNode => "analytics-node",
            Self::AnalyticsPython => "analytics-python",
            Self::RudderPython => "rudder-python",
            Self::SnowplowNode => "snowplow-node",
            Self::PostHogNode => "posthog-node",
            Self::PostHogPython => "posthog-python",
        }
    }

    /// What edgehose answers each of its requests on success.
    pub fn answer(self) -> &'static str {
        match self {
            Self::SnowplowNode => edgehose_shared::snowplow::POST_ANSWER,
            Self::PostHogNode | Self::PostHogPython => edgehose_shared::posthog::CAPTURE_ANSWER,
            _ => r#"{"success":true}"#,
        }
    }

    /// How many calls its script makes.
    pub fn calls(self) -> usize {
        match self {
            Self::SnowplowNode => 4,
            Self::PostHogNode | Self::PostHogPython => 5,
            _ => 7,
        }
    }

    /// Runs the client against `host` (`http://127.0.0.1:PORT`): one of each
    /// call under run id `run`, then a flush. Returns `(call, id)` of every
    /// call the client reports sent (Segment's type and messageId, Snowplow's
    /// e and eid, PostHog's event and uuid); an error if it reported a failure.
    pub fn run(self, host: &str, write_key: &str, run: &str) -> Result<Vec<(String, String)>, String> {
        let script = tools::repo_root().join("tests/sdk");
        let node = |file: &str| -> Result<Command, String> {
            let mut c = Command::new(tools::npm_bin("node")?);
            c.arg(script.join(file))
                .env("NODE_PATH", tools::cache_dir().join("npm/node_modules"))
                .env("EDGEHOSE_HOST", host)
                .env("EDGEHOSE_WRITE_KEY", write_key)
                .env("EDGEHOSE_TOKEN", write_key)
                .env("EDGEHOSE_RUN", run)
                .env("POSTHOG_CAPTURE_MODE", "v0");
            Ok(c)
        };
        let mut cmd = match self {
            Self::SnowplowNode => node("snowplow-node.cjs")?,
            Self::PostHogNode => node("posthog-node.cjs")?,
            Self::PostHogPython => {
                let mut c = Command::new(tools::python()?);
                c.arg(script.join("posthog_python.py"))
                    .env("EDGEHOSE_HOST", host)
                    .env("EDGEHOSE_TOKEN", write_key)
                    .env("EDGEHOSE_RUN", run)
                    .env("POSTHOG_CAPTURE_MODE", "v0");
                c
            }
            Self::AnalyticsNode => {
                let mut c = Command::new(tools::npm_bin("node")?);
                c.arg(script.join("segment-node.cjs"))
                    .env("NODE_PATH", tools::cache_dir().join("npm/node_modules"))
                    .env("EDGEHOSE_HOST", host)
                    .env("EDGEHOSE_WRITE_KEY", write_key)
                    .env("EDGEHOSE_RUN", run);
                c
            }
            Self::AnalyticsPython | Self::RudderPython => {
                let mut c = Command::new(tools::python()?);
                let sdk = if self == Self::AnalyticsPython {
                    "segment"
                } else {
                    "rudder"
                };
                c.arg(script.join("segment-python.py"))
                    .args([sdk, host, write_key, run]);
                c
            }
        };
        let out = cmd.output().map_err(|e| format!("{}: {e}", self.name()))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "{} failed ({}): {}{}\n(run `make test`: its bootstrap installs the SDKs)",
                self.name(),
                out.status,
                stdout,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| {
                [("type", "messageId"), ("e", "eid"), ("event", "uuid")]
                    .iter()
                    .find_map(|(call, id)| Some((v[*call].as_str()?.to_owned(), v[*id].as_str()?.to_owned())))
            })
            .collect())
    }
}

/// One request as a client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// The method.
    pub method: String,
    /// The path and query.
    pub path: String,
    /// The headers that decide how edgehose reads it (lower-case names):
    /// `content-type`, `content-encoding`, `authorization`, `user-agent`.
    pub headers: BTreeMap<String, String>,
    /// The body, byte for byte (still gzip if it was sent so).
    pub body: Vec<u8>,
}

/// The headers a capture keeps.
pub const CAPTURED_HEADERS: [&str; 5] = [
    "content-type",
    "content-encoding",
    "authorization",
    "user-agent",
    "x-edgehose-key",
];

impl Captured {
    /// As JSON, the body in base64.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "method": self.method,
            "path": self.path,
            "headers": self.headers,
            "body_base64": base64::engine::general_purpose::STANDARD.encode(&self.body),
        })
    }

    /// Read back from [`Captured::to_json`].
    pub fn from_json(v: &serde_json::Value) -> Result<Self, String> {
        let text = |k: &str| v[k].as_str().map(str::to_owned).ok_or(format!("{k} is missing"));
        let headers = v["headers"]
            .as_object()
            .map(|h| {
                h.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        let body = base64::engine::general_purpose::STANDARD
            .decode(text("body_base64")?)
            .map_err(|e| e.to_string())?;
        Ok(Self {
            method: text("method")?,
            path: text("path")?,
            headers,
            body,
        })
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// A loopback server that records every request and answers as the Segment
/// routes do on success (`200 {"success":true}`).
pub struct Capture {
    server: Arc<tiny_http::Server>,
    requests: Arc<Mutex<Vec<Captured>>>,
    thread: Option<JoinHandle<()>>,
    url: String,
}

impl Capture {
    /// Starts on a free port.
    pub fn start() -> Result<Self, String> {
        let port = free_port()?;
        let server = Arc::new(tiny_http::Server::http(("127.0.0.1", port)).map_err(|e| e.to_string())?);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (s, r) = (server.clone(), requests.clone());
        let thread = std::thread::spawn(move || {
            for mut req in s.incoming_requests() {
                let mut body = Vec::new();
                let _ = req.as_reader().read_to_end(&mut body);
                let headers = req
                    .headers()
                    .iter()
                    .map(|h| {
                        (
                            h.field.as_str().as_str().to_ascii_lowercase(),
                            h.value.as_str().to_owned(),
                        )
                    })
                    .filter(|(k, _)| CAPTURED_HEADERS.contains(&k.as_str()))
                    .collect();
                if let Ok(mut all) = r.lock() {
                    all.push(Captured {
                        method: req.method().as_str().to_owned(),
                        path: req.url().to_owned(),
                        headers,
                        body,
                    });
                }
                let json = tiny_http::Header::from_bytes("content-type", "application/json").ok();
                let mut answer = tiny_http::Response::from_string(r#"{"success":true}"#);
                if let Some(h) = json {
                    answer = answer.with_header(h);
                }
                let _ = req.respond(answer);
            }
        });
        Ok(Self {
            server,
            requests,
            thread: Some(thread),
            url: format!("http://127.0.0.1:{port}"),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Everything recorded so far, in arrival order.
    pub fn requests(&self) -> Vec<Captured> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
