//! A Lambda Runtime API host (the interface AWS's runtime speaks to a
//! function process, <https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html>),
//! so the real function binaries run locally as they run in Lambda: the
//! binary long-polls `/next`, gets an event, posts a response or error.
//! firehose-local invokes the transform through it, `edgehose dev` serves the
//! API Gateway function through it, and the tests drive both.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::aws::cloudwatch_logs::LogGroup;
use crate::error::{Error, Result};

const PREFIX: &str = "/2018-06-01/runtime";

/// How much of a function's output [`Function::log`] keeps in memory.
const LOG_KEEP_BYTES: usize = 4 * 1024 * 1024;

/// What an invocation ended with.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The function's response body.
    Response(serde_json::Value),
    /// The function's error report.
    Error(serde_json::Value),
}

/// What an invocation ended with, as the function wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawOutcome {
    /// The function's response body.
    Response(String),
    /// The function's error report.
    Error(String),
}

#[derive(Default)]
struct Shared {
    queue: Vec<(String, String)>,
    outcomes: HashMap<String, RawOutcome>,
    init_error: Option<String>,
    /// When each invocation in progress was handed to the function.
    started: HashMap<String, Instant>,
    billing: Billing,
}

/// What Lambda would bill for the invocations so far: each one's duration
/// from the event handed out on `/next` to its response or error, rounded
/// up to the next millisecond as Lambda rounds it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Billing {
    /// Invocations that answered.
    pub invocations: u64,
    /// Their billed durations added up, ms.
    pub billed_ms: u64,
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
    pub fn start() -> Result<Self> {
        let net = |e| Error::network("the Runtime API's listener on 127.0.0.1", e);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(net)?;
        listener.set_nonblocking(true).map_err(net)?;
        let addr = listener.local_addr().map_err(net)?.to_string();
        let state = Arc::new((Mutex::new(Shared::default()), Condvar::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, stp) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stp.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (st, stp) = (st.clone(), stp.clone());
                        std::thread::spawn(move || connection(conn, &st, &stp));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
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
    pub fn spawn(&self, binary: &Path, name: &str, env: &[(&str, &str)]) -> Result<Function> {
        self.spawn_logged(binary, name, env, None, None)
    }

    /// The same, also appending everything the function prints to `log_file`
    /// (what CloudWatch Logs would hold) and, with a `group`, keeping every
    /// line there for `FilterLogEvents`.
    pub fn spawn_logged(
        &self,
        binary: &Path,
        name: &str,
        env: &[(&str, &str)],
        log_file: Option<&Path>,
        group: Option<&Arc<LogGroup>>,
    ) -> Result<Function> {
        let mut cmd = Command::new(binary);
        // A process group of its own: a terminal's Ctrl-C reaches only the
        // command that started it, which stops it in order.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd.env("AWS_LAMBDA_RUNTIME_API", &self.addr)
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .env("AWS_REGION", "us-east-1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let file = crate::tools::append_to(log_file)?;
        let child = cmd
            .spawn()
            .map_err(|e| Error::process(format!("starting {}", binary.display()), e))?;
        Ok(Function::new(child, file, group.cloned()))
    }

    /// Queues an event and waits for the function's answer.
    pub fn invoke(&self, event: &serde_json::Value, timeout: Duration) -> Result<Outcome> {
        let parse = |body: String| serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
        Ok(match self.invoke_raw(event.to_string(), timeout)? {
            RawOutcome::Response(b) => Outcome::Response(parse(b)),
            RawOutcome::Error(b) => Outcome::Error(parse(b)),
        })
    }

    /// The same with the event already serialised (multi-MB Firehose batches).
    pub fn invoke_raw(&self, event: String, timeout: Duration) -> Result<RawOutcome> {
        let id = format!("req-{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        let (lock, cvar) = &*self.state;
        let mut s = lock.lock().map_err(|_| Error::Poisoned("the Runtime API's queue"))?;
        s.queue.push((id.clone(), event));
        cvar.notify_all();
        let start = Instant::now();
        loop {
            if let Some(o) = s.outcomes.remove(&id) {
                return Ok(o);
            }
            if let Some(e) = &s.init_error {
                return Err(Error::protocol(format!("the function failed to initialise: {e}")));
            }
            let Some(left) = timeout.checked_sub(start.elapsed()) else {
                // Never hand a timed-out event to a later /next.
                s.queue.retain(|(queued, _)| queued != &id);
                return Err(Error::timeout(format!("no answer to {id} within {timeout:?}")));
            };
            s = cvar
                .wait_timeout(s, left.min(Duration::from_millis(100)))
                .map_err(|_| Error::Poisoned("the Runtime API's queue"))?
                .0;
        }
    }

    /// Billed durations so far (see [`Billing`]).
    pub fn billing(&self) -> Billing {
        self.state
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .billing
    }

    /// Forgets an earlier initialisation error (before starting a new process).
    pub fn clear_init_error(&self) {
        if let Ok(mut s) = self.state.0.lock() {
            s.init_error = None;
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

/// Serves one keep-alive connection. Plain TCP with `TCP_NODELAY` and each
/// response written at once, so the host adds no Nagle or delayed-ACK stalls
/// to what a cold-start measurement sees.
fn connection(conn: std::net::TcpStream, state: &(Mutex<Shared>, Condvar), stop: &AtomicBool) {
    use std::io::{BufRead, BufReader, Write};
    let _ = conn.set_nodelay(true);
    let _ = conn.set_nonblocking(false);
    let Ok(mut writer) = conn.try_clone() else { return };
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split(' ').nth(1).unwrap_or_default().to_owned();
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (status, headers, reply) = route(&path, String::from_utf8_lossy(&body).into_owned(), state, stop);
        let mut out = format!("HTTP/1.1 {status} OK\r\ncontent-length: {}\r\n", reply.len());
        for (k, v) in headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        out.push_str(&reply);
        if writer.write_all(out.as_bytes()).is_err() {
            return;
        }
    }
}

fn route(
    path: &str,
    body: String,
    state: &(Mutex<Shared>, Condvar),
    stop: &AtomicBool,
) -> (u16, Vec<(String, String)>, String) {
    let (lock, cvar) = state;
    let accepted = (202, Vec::new(), "{\"status\":\"OK\"}".to_owned());
    if path == format!("{PREFIX}/invocation/next") {
        let Ok(mut s) = lock.lock() else {
            return (500, Vec::new(), String::new());
        };
        loop {
            if !s.queue.is_empty() {
                let (id, event) = s.queue.remove(0);
                s.started.insert(id.clone(), Instant::now());
                let deadline = crate::clock::now().add_millis(60_000).as_millis();
                let headers = vec![
                    ("lambda-runtime-aws-request-id".to_owned(), id),
                    ("lambda-runtime-deadline-ms".to_owned(), deadline.to_string()),
                    (
                        "lambda-runtime-invoked-function-arn".to_owned(),
                        "arn:aws:lambda:us-east-1:123456789012:function:test".to_owned(),
                    ),
                    (
                        "lambda-runtime-trace-id".to_owned(),
                        "Root=1-00000000-000000000000000000000000".to_owned(),
                    ),
                    ("content-type".to_owned(), "application/json".to_owned()),
                ];
                return (200, headers, event);
            }
            if stop.load(Ordering::Relaxed) {
                return (410, Vec::new(), String::new());
            }
            s = match cvar.wait_timeout(s, Duration::from_millis(100)) {
                Ok((g, _)) => g,
                Err(_) => return (500, Vec::new(), String::new()),
            };
        }
    }
    let parts: Vec<&str> = path.trim_start_matches(PREFIX).split('/').collect();
    // ["", "invocation", id, "response" | "error"] or ["", "init", "error"]
    match parts.as_slice() {
        ["", "invocation", id, kind @ ("response" | "error")] => {
            if let Ok(mut s) = lock.lock() {
                let outcome = if *kind == "response" {
                    RawOutcome::Response(body)
                } else {
                    RawOutcome::Error(body)
                };
                if let Some(start) = s.started.remove(*id) {
                    s.billing.invocations += 1;
                    s.billing.billed_ms += start.elapsed().as_micros().div_ceil(1000) as u64;
                }
                s.outcomes.insert((*id).to_owned(), outcome);
                cvar.notify_all();
            }
            accepted
        }
        ["", "init", "error"] => {
            if let Ok(mut s) = lock.lock() {
                s.init_error = Some(body);
                cvar.notify_all();
            }
            accepted
        }
        _ => (404, Vec::new(), "not found".to_owned()),
    }
}

/// A running function process; killed when dropped.
pub struct Function {
    child: Child,
    log: Arc<Mutex<String>>,
    /// The threads copying stdout and stderr into `log`.
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Function {
    fn new(mut child: Child, file: Option<std::fs::File>, group: Option<Arc<LogGroup>>) -> Self {
        let log = Arc::new(Mutex::new(String::new()));
        let file = file.map(|f| Arc::new(Mutex::new(f)));
        let mut readers = Vec::new();
        for stream in [
            child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
            child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let (log, file, group) = (log.clone(), file.clone(), group.clone());
            readers.push(std::thread::spawn(move || {
                use std::io::{BufRead, Write};
                for line in std::io::BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Some(g) = &group {
                        g.push(&line);
                    }
                    if let Some(f) = &file
                        && let Ok(mut f) = f.lock()
                    {
                        let _ = writeln!(f, "{line}");
                    }
                    if let Ok(mut l) = log.lock() {
                        // Keep the recent past only: a long `edgehose dev` run
                        // must not grow without bound.
                        if l.len() > LOG_KEEP_BYTES {
                            let cut = l.len() - LOG_KEEP_BYTES / 2;
                            let cut = (cut..l.len()).find(|&i| l.is_char_boundary(i)).unwrap_or(l.len());
                            l.drain(..cut);
                        }
                        l.push_str(&line);
                        l.push('\n');
                    }
                }
            }));
        }
        Self { child, log, readers }
    }

    /// What the function printed (structured logs, EMF lines): everything,
    /// or the last few MB of a long run.
    pub fn log(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
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
                // The pipes close with the process: once both readers reach
                // their end, the log holds everything it printed. A second at
                // most, in case something it started still holds a pipe.
                let exited = Instant::now();
                while exited.elapsed() < Duration::from_secs(1) && !self.readers.iter().all(|r| r.is_finished()) {
                    std::thread::sleep(Duration::from_millis(5));
                }
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
