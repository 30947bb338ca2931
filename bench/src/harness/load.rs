//! A minimal HTTP/1.1 load client over plain TCP: one request at a time per
//! connection, keep-alive, per-request latency from the first byte written to
//! the last byte of the response read. Kept this small so the client adds as
//! little as possible to what is measured.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Latencies of one run and how long it took.
#[derive(Debug, Clone, Default)]
pub struct Run {
    /// Every request's latency.
    pub latencies: Vec<Duration>,
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// Responses that were not 200.
    pub errors: usize,
}

/// Percentiles and throughput of a run, in microseconds and requests/s.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    /// Requests made.
    pub requests: usize,
    /// Median latency, µs.
    pub p50: f64,
    /// 90th percentile, µs.
    pub p90: f64,
    /// 99th percentile, µs.
    pub p99: f64,
    /// Slowest, µs.
    pub max: f64,
    /// Requests per second over the run.
    pub rps: f64,
    /// Non-200 responses.
    pub errors: usize,
}

impl Run {
    /// Summarises: percentiles from `edgehose_latency::stats` (HdrHistogram).
    pub fn summary(&self) -> Summary {
        let m = edgehose_latency::stats::micros(&self.latencies);
        Summary {
            requests: self.latencies.len(),
            p50: m.p50 as f64,
            p90: m.p90 as f64,
            p99: m.p99 as f64,
            max: m.max as f64,
            rps: self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(1e-9),
            errors: self.errors,
        }
    }
}

/// `n` requests, one after another, on one keep-alive connection.
pub fn sequential(addr: SocketAddr, request: &[u8], n: usize) -> Result<Run, String> {
    let mut conn = Conn::open(addr)?;
    let mut run = Run {
        latencies: Vec::with_capacity(n),
        ..Run::default()
    };
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        let status = conn.exchange(request)?;
        run.latencies.push(t.elapsed());
        run.errors += usize::from(status != 200);
    }
    run.elapsed = start.elapsed();
    Ok(run)
}

/// `connections` keep-alive connections in parallel, `per_connection`
/// sequential requests each.
pub fn concurrent(addr: SocketAddr, request: &[u8], connections: usize, per_connection: usize) -> Result<Run, String> {
    let start = Instant::now();
    let handles: Vec<_> = (0..connections)
        .map(|_| {
            let request = request.to_vec();
            std::thread::spawn(move || sequential(addr, &request, per_connection))
        })
        .collect();
    let mut run = Run::default();
    for h in handles {
        let r = h.join().map_err(|_| "a load thread panicked".to_owned())??;
        run.latencies.extend(r.latencies);
        run.errors += r.errors;
    }
    run.elapsed = start.elapsed();
    Ok(run)
}

/// One keep-alive HTTP/1.1 connection.
pub struct Conn {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
    line: String,
    body: Vec<u8>,
}

impl Conn {
    /// Connects (`TCP_NODELAY`, 30 s read timeout).
    pub fn open(addr: SocketAddr) -> Result<Self, String> {
        let stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        let reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
        Ok(Self {
            writer: stream,
            reader,
            line: String::new(),
            body: Vec::new(),
        })
    }

    /// Writes one request and reads its whole response; returns the status.
    pub fn exchange(&mut self, request: &[u8]) -> Result<u16, String> {
        self.writer.write_all(request).map_err(|e| format!("write: {e}"))?;
        self.line.clear();
        self.reader
            .read_line(&mut self.line)
            .map_err(|e| format!("read: {e}"))?;
        let status: u16 = self
            .line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {:?}", self.line))?;
        let (mut length, mut chunked) = (0usize, false);
        loop {
            self.line.clear();
            self.reader
                .read_line(&mut self.line)
                .map_err(|e| format!("read: {e}"))?;
            let l = self.line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                } else if k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked") {
                    chunked = true;
                }
            }
        }
        if chunked {
            loop {
                self.line.clear();
                self.reader
                    .read_line(&mut self.line)
                    .map_err(|e| format!("read: {e}"))?;
                let size = usize::from_str_radix(self.line.trim(), 16).map_err(|_| "bad chunk size".to_owned())?;
                self.body.resize(size + 2, 0);
                self.reader
                    .read_exact(&mut self.body)
                    .map_err(|e| format!("read: {e}"))?;
                if size == 0 {
                    break;
                }
            }
        } else {
            self.body.resize(length, 0);
            self.reader
                .read_exact(&mut self.body)
                .map_err(|e| format!("read: {e}"))?;
        }
        Ok(status)
    }

    /// The body of the last response (chunk framing included when chunked).
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_summarises_to_rate_and_percentiles() {
        let run = Run {
            latencies: (1..=1000).map(Duration::from_micros).collect(),
            elapsed: Duration::from_millis(500),
            errors: 2,
        };
        let s = run.summary();
        assert_eq!(
            (s.requests, s.p50, s.p99, s.max, s.errors),
            (1000, 500.0, 990.0, 1000.0, 2)
        );
        assert!((s.rps - 2000.0).abs() < 1e-6);
    }
}
