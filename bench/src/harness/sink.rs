//! A fast local Firehose sink: answers every `PutRecordBatch` with success for
//! each record, and counts calls, records and the NDJSON lines (events) in them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// A running sink.
pub struct Sink {
    url: String,
    calls: Arc<AtomicU64>,
    records: Arc<AtomicU64>,
    lines: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Sink {
    /// Starts the sink with `threads` handler threads.
    pub fn start(threads: usize) -> Result<Self, String> {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").map_err(|e| e.to_string())?);
        let port = server.server_addr().to_ip().map(|a| a.port()).ok_or("no port")?;
        let (calls, records, lines) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..threads)
            .map(|_| {
                let (server, calls, records, lines, stop) = (
                    server.clone(),
                    calls.clone(),
                    records.clone(),
                    lines.clone(),
                    stop.clone(),
                );
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let Ok(Some(mut req)) = server.recv_timeout(Duration::from_millis(50)) else {
                            continue;
                        };
                        let mut body = Vec::new();
                        let _ = req.as_reader().read_to_end(&mut body);
                        let (n, events) = count_records(&body);
                        calls.fetch_add(1, Ordering::Relaxed);
                        records.fetch_add(n as u64, Ordering::Relaxed);
                        lines.fetch_add(events, Ordering::Relaxed);
                        let entries = vec![r#"{"RecordId":"r"}"#; n].join(",");
                        let reply =
                            format!(r#"{{"FailedPutCount":0,"Encrypted":false,"RequestResponses":[{entries}]}}"#);
                        let _ = req.respond(tiny_http::Response::from_string(reply));
                    }
                })
            })
            .collect();
        Ok(Self {
            url: format!("http://127.0.0.1:{port}/"),
            calls,
            records,
            lines,
            stop,
            threads,
        })
    }

    /// Its URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `PutRecordBatch` calls, records and events (NDJSON lines) received so far.
    pub fn counts(&self) -> (u64, u64, u64) {
        (
            self.calls.load(Ordering::Relaxed),
            self.records.load(Ordering::Relaxed),
            self.lines.load(Ordering::Relaxed),
        )
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Records in a `PutRecordBatch` body and the newline-terminated lines in them.
fn count_records(body: &[u8]) -> (usize, u64) {
    use base64::Engine;
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return (0, 0);
    };
    let records = v["Records"].as_array().cloned().unwrap_or_default();
    let lines = records
        .iter()
        .filter_map(|r| r["Data"].as_str())
        .filter_map(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
        .map(|bytes| bytes.iter().filter(|&&b| b == b'\n').count() as u64)
        .sum();
    (records.len(), lines)
}
