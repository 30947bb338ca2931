//! A Lambda Runtime API host (the interface AWS's runtime speaks to a
//! function process, <https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html>),
//! so the real function binaries can run in tests as they run in Lambda:
//! the binary long-polls `/next`, gets an event, posts a response or error.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const PREFIX: &str = "/2018-06-01/runtime";

/// What an invocation ended with.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The function's response body.
    Response(serde_json::Value),
    /// The function's error report.
    Error(serde_json::Value),
}

#[derive(Default)]
struct Shared {
    queue: Vec<(String, String)>,
    outcomes: HashMap<String, Outcome>,
    init_error: Option<String>,
}

/// The Runtime API host.
pub struct RuntimeApi {
    addr: String,
    state: Arc<(Mutex<Shared>, Condvar)>,
    next_id: AtomicU64,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RuntimeApi {
    /// Starts the host on a free loopback port.
    pub fn start() -> Result<Self, String> {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").map_err(|e| e.to_string())?);
        let addr = server
            .server_addr()
            .to_ip()
            .map(|a| a.to_string())
            .ok_or("no address")?;
        let state = Arc::new((Mutex::new(Shared::default()), Condvar::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, stp) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stp.load(Ordering::Relaxed) {
                if let Ok(Some(req)) = server.recv_timeout(Duration::from_millis(50)) {
                    let (st, stp) = (st.clone(), stp.clone());
                    std::thread::spawn(move || serve(req, &st, &stp));
                }
            }
        });
        Ok(Self {
            addr,
            state,
            next_id: AtomicU64::new(1),
            stop,
            thread: Some(thread),
        })
    }

    /// `host:port`, for `AWS_LAMBDA_RUNTIME_API`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Starts a function binary against this host with the environment Lambda sets.
    pub fn spawn(&self, binary: &Path, name: &str, env: &[(&str, &str)]) -> Result<Function, String> {
        let mut cmd = Command::new(binary);
        cmd.env("AWS_LAMBDA_RUNTIME_API", &self.addr)
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
            .env("AWS_REGION", "us-east-1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().map_err(|e| format!("starting {}: {e}", binary.display()))?;
        Ok(Function::new(child))
    }

    /// Queues an event and waits for the function's answer.
    pub fn invoke(&self, event: &serde_json::Value, timeout: Duration) -> Result<Outcome, String> {
        let id = format!("req-{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        let (lock, cvar) = &*self.state;
        let mut s = lock.lock().map_err(|_| "poisoned")?;
        s.queue.push((id.clone(), event.to_string()));
        cvar.notify_all();
        let start = Instant::now();
        loop {
            if let Some(o) = s.outcomes.remove(&id) {
                return Ok(o);
            }
            if let Some(e) = &s.init_error {
                return Err(format!("the function failed to initialise: {e}"));
            }
            let left = timeout
                .checked_sub(start.elapsed())
                .ok_or_else(|| format!("no answer to {id} within {timeout:?}"))?;
            s = cvar
                .wait_timeout(s, left.min(Duration::from_millis(100)))
                .map_err(|_| "poisoned")?
                .0;
        }
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.state.1.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(mut req: tiny_http::Request, state: &(Mutex<Shared>, Condvar), stop: &AtomicBool) {
    let url = req.url().to_owned();
    let mut body = String::new();
    let _ = req.as_reader().read_to_string(&mut body);
    let (lock, cvar) = state;
    let ok = |req: tiny_http::Request| {
        let _ = req.respond(tiny_http::Response::from_string("{\"status\":\"OK\"}").with_status_code(202));
    };
    if url == format!("{PREFIX}/invocation/next") {
        let Ok(mut s) = lock.lock() else { return };
        loop {
            if !s.queue.is_empty() {
                let (id, event) = s.queue.remove(0);
                drop(s);
                let deadline = (std::time::SystemTime::now() + Duration::from_secs(60))
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis())
                    .unwrap_or_default();
                let mut resp = tiny_http::Response::from_string(event);
                for (k, v) in [
                    ("Lambda-Runtime-Aws-Request-Id", id.as_str()),
                    ("Lambda-Runtime-Deadline-Ms", &deadline.to_string()),
                    (
                        "Lambda-Runtime-Invoked-Function-Arn",
                        "arn:aws:lambda:us-east-1:123456789012:function:test",
                    ),
                    ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000"),
                    ("Content-Type", "application/json"),
                ] {
                    if let Ok(h) = tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()) {
                        resp = resp.with_header(h);
                    }
                }
                let _ = req.respond(resp);
                return;
            }
            if stop.load(Ordering::Relaxed) {
                return;
            }
            s = match cvar.wait_timeout(s, Duration::from_millis(100)) {
                Ok((g, _)) => g,
                Err(_) => return,
            };
        }
    }
    let parts: Vec<&str> = url.trim_start_matches(PREFIX).split('/').collect();
    // ["", "invocation", id, "response" | "error"] or ["", "init", "error"]
    match parts.as_slice() {
        ["", "invocation", id, kind @ ("response" | "error")] => {
            let value: serde_json::Value = serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
            if let Ok(mut s) = lock.lock() {
                let outcome = if *kind == "response" {
                    Outcome::Response(value)
                } else {
                    Outcome::Error(value)
                };
                s.outcomes.insert((*id).to_owned(), outcome);
                cvar.notify_all();
            }
            ok(req);
        }
        ["", "init", "error"] => {
            if let Ok(mut s) = lock.lock() {
                s.init_error = Some(body);
                cvar.notify_all();
            }
            ok(req);
        }
        _ => {
            let _ = req.respond(tiny_http::Response::from_string("not found").with_status_code(404));
        }
    }
}

/// A running function process; killed when dropped.
pub struct Function {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Function {
    fn new(mut child: Child) -> Self {
        let log = Arc::new(Mutex::new(String::new()));
        for stream in [
            child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
            child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let log = log.clone();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Ok(mut l) = log.lock() {
                        l.push_str(&line);
                        l.push('\n');
                    }
                }
            });
        }
        Self { child, log }
    }

    /// Everything the function printed so far (structured logs, EMF lines).
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The OS process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `timeout` for the process to exit by itself (as Lambda sees
    /// a function that fails during init).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the log readers drain what it printed last.
                std::thread::sleep(Duration::from_millis(100));
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
