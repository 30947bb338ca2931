//! The one HTTP client of the stand-ins, the tests and the tools: blocking,
//! for loopback services and AWS emulators ([`send`], [`send_within`]), and
//! [`raw`] for the requests no client library will send.

use std::sync::OnceLock;
use std::time::Duration;

use crate::error::{Error, Result};

/// A response with its body read.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: http::HeaderMap,
    /// The whole body.
    pub body: Vec<u8>,
}

impl Response {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as (lossy) text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(60)))
                .build(),
        )
    })
}

/// Sends `request` exactly as built (headers and body untouched) and reads
/// the response, within a minute.
pub fn send(request: http::Request<Vec<u8>>) -> Result<Response> {
    read(request, agent())
}

/// [`send`], allowing `timeout` for the whole exchange.
pub fn send_within(request: http::Request<Vec<u8>>, timeout: Duration) -> Result<Response> {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .build(),
    );
    read(request, &agent)
}

fn read(request: http::Request<Vec<u8>>, agent: &ureq::Agent) -> Result<Response> {
    let uri = request.uri().to_string();
    let response = agent.run(request).map_err(|e| Error::http(&uri, e))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_vec()
        .map_err(|e| Error::http(format!("{uri} (reading the body)"), e))?;
    Ok(Response { status, headers, body })
}

/// What came back on a raw connection: the status line's code and
/// everything after the head, as text (`status` is 0 when nothing came).
#[derive(Debug, Clone)]
pub struct RawAnswer {
    /// HTTP status, 0 when no answer came in time.
    pub status: u16,
    /// The whole answer as (lossy) text, head included.
    pub text: String,
}

/// Writes `head`, then each of `chunks` (from a thread of its own, so a
/// server that stops reading cannot block the caller), to `base`'s host and
/// port over plain TCP, and returns whatever answer arrives within `wait`.
/// For requests no HTTP client library will send: control bytes in header
/// values, bodies that never end.
pub fn raw(base: &str, head: Vec<u8>, chunks: Vec<Vec<u8>>, wait: Duration) -> Result<RawAnswer> {
    use std::io::{Read, Write};
    let authority = base.trim_start_matches("http://").trim_end_matches('/');
    let mut stream =
        std::net::TcpStream::connect(authority).map_err(|e| Error::network(format!("connecting to {authority}"), e))?;
    let mut writer = stream.try_clone().map_err(|e| Error::network(authority, e))?;
    std::thread::spawn(move || {
        if writer.write_all(&head).is_err() {
            return;
        }
        for c in chunks {
            if writer.write_all(&c).is_err() {
                return;
            }
        }
        // Keep the connection open: the body may be unfinished on purpose.
        std::thread::sleep(Duration::from_secs(120));
    });
    let deadline = std::time::Instant::now() + wait;
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    while std::time::Instant::now() < deadline {
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .map_err(|e| Error::network(authority, e))?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                if answer_complete(&got) {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok(RawAnswer { status, text })
}

/// Whether `got` holds a head and as much body as its `Content-Length` says.
fn answer_complete(got: &[u8]) -> bool {
    let text = String::from_utf8_lossy(got);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok());
    length.is_some_and(|n| body.len() >= n)
}
