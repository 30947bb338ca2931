//! A real browser for the end-to-end tests: Debian's `chromium` (apt, put
//! there by the bootstrap), driven by `puppeteer-core` (npm) through
//! `tests/browser/run.mjs`, and a static server that gives the test pages an
//! origin of their own, as a customer's site is to the edge.
//!
//! The server serves `tests/browser/*.html`, `/lib/analytics-next.js`
//! (Segment's browser SDK from the bootstrap's npm folder, unchanged) and
//! `/lib/edgehose.min.js` (the committed tracker), and a flaky endpoint of
//! its own, `/flaky/<status>x<n>/v1/events`, which answers its first `n`
//! requests with `status` and then 200, and keeps every request it got
//! ([`Pages::hits`]): a same-origin endpoint that misbehaves on purpose.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use edgehose_local::tools;

/// The Chromium binary: `EDGEHOSE_CHROMIUM`, else `chromium` on `PATH`.
pub fn chromium() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("EDGEHOSE_CHROMIUM") {
        return Ok(PathBuf::from(p));
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("chromium"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            "no chromium on PATH: run tools/bootstrap as root where apt-get exists (it installs Debian's chromium), \
             or install Chromium and set EDGEHOSE_CHROMIUM=/path/to/chromium"
                .to_owned()
        })
}

/// One request to the flaky endpoint.
#[derive(Debug, Clone)]
pub struct Hit {
    /// `/flaky/503x3`: which endpoint.
    pub endpoint: String,
    /// What it was answered.
    pub status: u16,
    /// Milliseconds since the server started.
    pub at_ms: u128,
    /// The request body.
    pub body: String,
}

/// A static server for the test pages on `http://127.0.0.1:PORT`.
pub struct Pages {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    origin: String,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Pages {
    /// Serves on a free port.
    pub fn start() -> Result<Self, String> {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").map_err(|e| e.to_string())?);
        let port = server
            .server_addr()
            .to_ip()
            .map(|a| a.port())
            .ok_or("the page server has no TCP address")?;
        let s = server.clone();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let log = hits.clone();
        let thread = std::thread::spawn(move || {
            let start = Instant::now();
            let mut answered: BTreeMap<String, u32> = BTreeMap::new();
            for mut request in s.incoming_requests() {
                let path = request.url().split('?').next().unwrap_or("").to_owned();
                if let Some((endpoint, status, n)) = flaky(&path) {
                    let mut body = String::new();
                    let _ = request.as_reader().read_to_string(&mut body);
                    let seen = answered.entry(endpoint.clone()).or_default();
                    let status = if *seen < n { status } else { 200 };
                    *seen += 1;
                    if let Ok(mut l) = log.lock() {
                        l.push(Hit {
                            endpoint,
                            status,
                            at_ms: start.elapsed().as_millis(),
                            body,
                        });
                    }
                    let _ = request.respond(tiny_http::Response::from_string("{}").with_status_code(status));
                    continue;
                }
                let file = match path.as_str() {
                    "/lib/analytics-next.js" => {
                        Some(tools::cache_dir().join("npm/node_modules/@segment/analytics-next/dist/umd/index.js"))
                    }
                    "/lib/edgehose.min.js" => Some(tools::repo_root().join("tracker/edgehose.min.js")),
                    "/lib/snowplow-browser-tracker.js" => Some(
                        tools::cache_dir().join("npm/node_modules/@snowplow/browser-tracker/dist/index.umd.min.js"),
                    ),
                    "/lib/posthog-js.js" => Some(tools::cache_dir().join("npm/node_modules/posthog-js/dist/array.js")),
                    p if p.ends_with(".html") && !p[1..].contains('/') && !p.contains("..") => {
                        Some(tools::repo_root().join("tests/browser").join(&p[1..]))
                    }
                    _ => None,
                };
                let kind = if path.ends_with(".html") {
                    "text/html; charset=utf-8"
                } else {
                    "text/javascript"
                };
                if path == "/favicon.ico" {
                    let _ = request.respond(tiny_http::Response::empty(204));
                    continue;
                }
                let response = match file.and_then(|f| std::fs::read(f).ok()) {
                    Some(bytes) => tiny_http::Response::from_data(bytes).with_header(
                        tiny_http::Header::from_bytes("content-type", kind).unwrap_or_else(|()| unreachable!()),
                    ),
                    None => tiny_http::Response::from_data(b"not found".to_vec()).with_status_code(404),
                };
                let _ = request.respond(response);
            }
        });
        Ok(Self {
            server,
            thread: Some(thread),
            origin: format!("http://127.0.0.1:{port}"),
            hits,
        })
    }

    /// Every request the flaky endpoints got, in order.
    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().map(|h| h.clone()).unwrap_or_default()
    }

    /// `http://127.0.0.1:PORT`: what the pages' requests carry as `Origin`.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

/// `/flaky/503x3/v1/events` → (`/flaky/503x3`, 503, 3).
fn flaky(path: &str) -> Option<(String, u16, u32)> {
    let spec = path.strip_prefix("/flaky/")?.strip_suffix("/v1/events")?;
    let (status, n) = spec.split_once('x')?;
    Some((format!("/flaky/{spec}"), status.parse().ok()?, n.parse().ok()?))
}

impl Drop for Pages {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs one scenario of `tests/browser/run.mjs` (see there) with `args`
/// and returns what it reported: the scenario's results, and every request
/// to `args.endpoint`, every answer, failure and console line.
pub fn drive(args: &serde_json::Value) -> Result<serde_json::Value, String> {
    let chromium = chromium()?;
    let npm = tools::cache_dir().join("npm");
    if !npm.join("node_modules/puppeteer-core").is_dir() {
        return Err("puppeteer-core is not installed: run tools/bootstrap (make test does)".into());
    }
    let out = Command::new(tools::npm_bin("node")?)
        .arg(tools::repo_root().join("tests/browser/run.mjs"))
        .arg(args.to_string())
        .env("EDGEHOSE_NPM", &npm)
        .env("EDGEHOSE_CHROMIUM", &chromium)
        .output()
        .map_err(|e| format!("starting the browser driver: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(line).map_err(|e| {
        format!(
            "the browser driver said {stdout:?} ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    if let Some(e) = v["error"].as_str() {
        return Err(format!("in the browser: {e}\n{v}"));
    }
    Ok(v)
}
