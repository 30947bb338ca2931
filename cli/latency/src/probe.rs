//! One HTTP request, timed phase by phase the way browsers and `curl -w`
//! report them: name resolution, TCP connect (through a `CONNECT` tunnel when
//! one is given, as a browser behind a proxy), TLS handshake, waiting for the
//! first byte of the answer, and reading the rest.
//!
//! The socket is driven here (std TCP, rustls, httparse) rather than through
//! an HTTP client library, because none of them says when each phase ended.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;

use crate::error::{Error, Result};

/// Largest response head read.
const MAX_HEAD: usize = 64 * 1024;
/// Largest response body kept by default (the rest is read and dropped).
const MAX_BODY_KEPT: usize = 64 * 1024;

/// Where requests go.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `https` or `http`.
    pub tls: bool,
    /// Host name as in the URL (TLS server name, `Host` header).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Path and query.
    pub path: String,
    /// Open connections with `CONNECT host:port` through this proxy.
    pub tunnel: Option<SocketAddr>,
}

impl Endpoint {
    /// Reads `http[s]://host[:port]/path`.
    pub fn parse(url: &str) -> Result<Self> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| Error::config(format!("{url:?} is not a URL: {e}")))?;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => {
                return Err(Error::config(format!(
                    "{url:?}: the URL must start with https:// or http://"
                )));
            }
        };
        let host = uri
            .host()
            .ok_or_else(|| Error::config(format!("{url:?} has no host")))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        Ok(Self {
            tls,
            port: uri.port_u16().unwrap_or(if tls { 443 } else { 80 }),
            host,
            path: uri.path_and_query().map_or("/".into(), |p| p.as_str().to_owned()),
            tunnel: None,
        })
    }
}

/// How long each phase of one request took. Phases a reused connection
/// skipped are zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Phases {
    /// Name resolution.
    pub dns: Duration,
    /// TCP connect (and the `CONNECT` tunnel, when there is one).
    pub connect: Duration,
    /// TLS handshake.
    pub tls: Duration,
    /// From the first byte of the request sent to the first byte of the answer.
    pub wait: Duration,
    /// From the first byte of the answer to its last.
    pub download: Duration,
}

impl Phases {
    /// Time to first byte: everything up to the answer's first byte.
    pub fn ttfb(&self) -> Duration {
        self.dns + self.connect + self.tls + self.wait
    }

    /// The whole request.
    pub fn total(&self) -> Duration {
        self.ttfb() + self.download
    }
}

/// Reads one phase of [`Phases`].
pub type PhaseOf = fn(&Phases) -> Duration;

/// The phases in order: key (JSON, tables), label (charts), reader.
pub const PHASES: [(&str, &str, PhaseOf); 5] = [
    ("dns", "DNS", |p| p.dns),
    ("connect", "TCP connect", |p| p.connect),
    ("tls", "TLS handshake", |p| p.tls),
    ("wait", "request → first byte", |p| p.wait),
    ("download", "rest of the answer", |p| p.download),
];

/// One answered request.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The phases.
    pub phases: Phases,
    /// HTTP status.
    pub status: u16,
    /// The headers, names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body (up to the client's limit, 64 KiB unless set).
    pub body: Vec<u8>,
    /// Whether the connection was reused.
    pub reused: bool,
}

impl Answer {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// A client for one endpoint that keeps its connection between requests
/// unless told not to.
pub struct Client {
    endpoint: Endpoint,
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
    body_limit: usize,
    conn: Option<Stream>,
}

impl Client {
    /// A client trusting `tls`'s roots.
    pub fn new(endpoint: Endpoint, tls: Arc<rustls::ClientConfig>, timeout: Duration) -> Self {
        Self {
            endpoint,
            tls,
            timeout,
            body_limit: MAX_BODY_KEPT,
            conn: None,
        }
    }

    /// Keeps up to `bytes` of each answer's body instead of 64 KiB.
    pub fn with_body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// The endpoint requests go to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Sends `POST` to the endpoint's path with a JSON `body` and `headers`;
    /// `fresh` opens a new connection for it (and closes it after), otherwise
    /// an open one is reused when there is one.
    pub fn post(&mut self, body: &[u8], headers: &[(String, String)], fresh: bool) -> Result<Answer> {
        let mut all = vec![("Content-Type".to_owned(), "application/json".to_owned())];
        all.extend_from_slice(headers);
        let path = self.endpoint.path.clone();
        self.request("POST", &path, &all, body, fresh)
    }

    /// Sends `method path_and_query` with `headers` (`Host`, `User-Agent`
    /// and, for a body or a `POST`, `Content-Length` are added) and `body`;
    /// `fresh` as for [`Client::post`].
    pub fn request(
        &mut self,
        method: &str,
        path_and_query: &str,
        headers: &[(String, String)],
        body: &[u8],
        fresh: bool,
    ) -> Result<Answer> {
        let outgoing = Outgoing {
            method,
            path_and_query,
            headers,
            body,
        };
        let reusing = !fresh && self.conn.is_some();
        match self.exchange(&outgoing, fresh) {
            // A kept-alive connection the server has since closed (nothing
            // came back at all): a browser sends the request again on a new
            // one, and so does this. Anything else is the answer.
            Err(Error::Closed(_)) if reusing => self.exchange(&outgoing, fresh),
            other => other,
        }
    }

    fn exchange(&mut self, outgoing: &Outgoing, fresh: bool) -> Result<Answer> {
        let Outgoing {
            method,
            path_and_query,
            headers,
            body,
        } = *outgoing;
        let mut phases = Phases::default();
        if fresh {
            self.conn = None;
        }
        let reused = self.conn.is_some();
        let mut stream = match self.conn.take() {
            Some(s) => s,
            None => self.open(&mut phases)?,
        };
        let mut request = format!(
            "{method} {path_and_query} HTTP/1.1\r\nHost: {}\r\nUser-Agent: edgehose-latency\r\n",
            host_header(&self.endpoint),
        );
        if !body.is_empty() || method == "POST" {
            request.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        for (k, v) in headers {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        if fresh {
            request.push_str("Connection: close\r\n");
        }
        request.push_str("\r\n");
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(body);
        let sent = Instant::now();
        stream
            .write_all(&bytes)
            .and_then(|()| stream.flush())
            .map_err(|e| Error::Closed(format!(": sending the request: {e}")))?;
        let head_only = method == "HEAD";
        let (status, headers, body, keep, first) = read_response(&mut stream, self.body_limit, head_only)?;
        phases.wait = first.duration_since(sent);
        phases.download = first.elapsed();
        if keep && !fresh {
            self.conn = Some(stream);
        }
        Ok(Answer {
            phases,
            status,
            headers,
            body,
            reused,
        })
    }

    fn open(&self, phases: &mut Phases) -> Result<Stream> {
        let ep = &self.endpoint;
        let start = Instant::now();
        let addr = match ep.tunnel {
            Some(proxy) => proxy,
            None => (ep.host.as_str(), ep.port)
                .to_socket_addrs()
                .map_err(|e| Error::network(format!("resolving {}", ep.host), e))?
                .next()
                .ok_or_else(|| Error::config(format!("{} has no address", ep.host)))?,
        };
        let resolved = Instant::now();
        phases.dns = resolved - start;
        let mut tcp = TcpStream::connect_timeout(&addr, self.timeout)
            .map_err(|e| Error::network(format!("connecting to {addr}"), e))?;
        let set = |e| Error::network(format!("setting up the connection to {addr}"), e);
        tcp.set_nodelay(true).map_err(set)?;
        tcp.set_read_timeout(Some(self.timeout)).map_err(set)?;
        tcp.set_write_timeout(Some(self.timeout)).map_err(set)?;
        if ep.tunnel.is_some() {
            tunnel(&mut tcp, ep)?;
        }
        let connected = Instant::now();
        phases.connect = connected - resolved;
        if !ep.tls {
            return Ok(Stream::Plain(tcp));
        }
        let name = ServerName::try_from(ep.host.clone()).map_err(|e| Error::tls(&ep.host, e))?;
        let mut conn = rustls::ClientConnection::new(self.tls.clone(), name).map_err(|e| Error::tls(&ep.host, e))?;
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp)
                .map_err(|e| Error::tls(&ep.host, format!("the handshake: {e}")))?;
        }
        phases.tls = connected.elapsed();
        Ok(Stream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp))))
    }
}

/// The `Host` header for `ep`: the port only when it is not the scheme's own.
pub fn host_header(ep: &Endpoint) -> String {
    let authority = format!("{}:{}", host_header_name(ep), ep.port);
    edgehose_shared::sigv4::sign::host_of(if ep.tls { "https" } else { "http" }, &authority).to_owned()
}

/// Opens a `CONNECT` tunnel on `tcp` to the endpoint.
fn tunnel(tcp: &mut TcpStream, ep: &Endpoint) -> Result<()> {
    let authority = format!("{}:{}", host_header_name(ep), ep.port);
    write!(tcp, "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n")
        .map_err(|e| Error::network(format!("CONNECT {authority}"), e))?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > MAX_HEAD {
            return Err(Error::protocol("the proxy's answer to CONNECT has no end"));
        }
        match tcp.read(&mut byte) {
            Ok(0) => return Err(Error::protocol("the proxy closed the connection during CONNECT")),
            Ok(_) => head.push(byte[0]),
            Err(e) => return Err(Error::network(format!("CONNECT {authority}"), e)),
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(&head) {
        Ok(httparse::Status::Complete(_)) if response.code == Some(200) => Ok(()),
        _ => Err(Error::protocol(format!(
            "the proxy refused CONNECT {authority}: {}",
            String::from_utf8_lossy(&head).lines().next().unwrap_or_default()
        ))),
    }
}

/// A request as [`Client::request`] was given it.
struct Outgoing<'a> {
    method: &'a str,
    path_and_query: &'a str,
    headers: &'a [(String, String)],
    body: &'a [u8],
}

fn host_header_name(ep: &Endpoint) -> String {
    if ep.host.contains(':') {
        format!("[{}]", ep.host)
    } else {
        ep.host.clone()
    }
}

/// What [`read_response`] gives: status, headers, body, whether the
/// connection stays open, and when the answer's first byte arrived.
type Response = (u16, Vec<(String, String)>, Vec<u8>, bool, Instant);

/// Reads one response, keeping up to `limit` bytes of its body; an answer to
/// `HEAD` (`head_only`) has none.
fn read_response<S: Read>(s: &mut S, limit: usize, head_only: bool) -> Result<Response> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 16 * 1024];
    let mut first = None;
    // Set when what is already buffered may hold a whole head (after an
    // interim answer was taken off it), so it is parsed before reading more.
    let mut parse_first = false;
    let (status, headers, head_len, framing, keep) = loop {
        if !std::mem::take(&mut parse_first) {
            let n = match s.read(&mut chunk) {
                Ok(n) => n,
                Err(e) if first.is_none() && stale(&e) => return Err(Error::Closed(format!(": {e}"))),
                Err(e) => return Err(Error::network("reading the answer", e)),
            };
            if n == 0 {
                return Err(if first.is_none() {
                    Error::Closed(String::new())
                } else {
                    Error::answer("the connection closed inside the answer's head")
                });
            }
            first.get_or_insert_with(Instant::now);
            buf.extend_from_slice(&chunk[..n]);
        }
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&buf) {
            Ok(httparse::Status::Complete(len))
                if matches!(response.code, Some(100..=199)) && response.code != Some(101) =>
            {
                // An interim answer (100 Continue, 103 Early Hints): the
                // final one follows on the same connection.
                buf.drain(..len);
                parse_first = !buf.is_empty();
                continue;
            }
            Ok(httparse::Status::Complete(len)) => {
                let status = response.code.unwrap_or(0);
                let header = |name: &str| {
                    response
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
                };
                let framing = if head_only || status < 200 || status == 204 || status == 304 {
                    // No body, whatever the headers say (RFC 9112 §6.3).
                    Framing::Length(0)
                } else if header("transfer-encoding").is_some_and(|v| v.ends_with("chunked")) {
                    Framing::Chunked
                } else if let Some(n) = header("content-length") {
                    Framing::Length(
                        n.parse()
                            .map_err(|_| Error::answer(format!("bad content-length {n:?}")))?,
                    )
                } else {
                    Framing::UntilClose
                };
                let keep = response.version == Some(1)
                    && !header("connection").is_some_and(|v| v.contains("close"))
                    && framing != Framing::UntilClose;
                let headers = response
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(h.value).trim().to_owned(),
                        )
                    })
                    .collect();
                break (status, headers, len, framing, keep);
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => continue,
            Ok(httparse::Status::Partial) => return Err(Error::answer("the answer's head is over 64 KiB")),
            Err(e) => return Err(Error::answer(format!("not an HTTP answer: {e}"))),
        }
    };
    let first = first.unwrap_or_else(Instant::now);
    let mut body = Body {
        pending: buf.split_off(head_len),
        stream: s,
        kept: Vec::new(),
        limit,
    };
    match framing {
        Framing::Length(n) => body.exactly(n)?,
        Framing::Chunked => body.chunked()?,
        Framing::UntilClose => body.until_close()?,
    }
    Ok((status, headers, body.kept, keep, first))
}

/// Errors of a connection the other side had already closed.
fn stale(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
    matches!(
        e.kind(),
        BrokenPipe | ConnectionAborted | ConnectionReset | UnexpectedEof
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

/// A response body being read: bytes already read past the head, then the stream.
struct Body<'a, S> {
    pending: Vec<u8>,
    stream: &'a mut S,
    kept: Vec<u8>,
    limit: usize,
}

impl<S: Read> Body<'_, S> {
    fn fill(&mut self) -> Result<bool> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self
            .stream
            .read(&mut chunk)
            .map_err(|e| Error::network("reading the answer", e))?;
        self.pending.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    fn keep(&mut self, bytes: &[u8]) {
        let room = self.limit.saturating_sub(self.kept.len());
        self.kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn exactly(&mut self, mut n: usize) -> Result<()> {
        while n > 0 {
            if self.pending.is_empty() && !self.fill()? {
                return Err(Error::answer(format!("the answer ended {n} bytes short")));
            }
            let take = n.min(self.pending.len());
            let taken: Vec<u8> = self.pending.drain(..take).collect();
            self.keep(&taken);
            n -= take;
        }
        Ok(())
    }

    fn line(&mut self) -> Result<String> {
        loop {
            if let Some(i) = self.pending.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.pending.drain(..i + 2).collect();
                return Ok(String::from_utf8_lossy(&line[..i]).into_owned());
            }
            if self.pending.len() > MAX_HEAD || !self.fill()? {
                return Err(Error::answer("a chunked answer ended inside a chunk header"));
            }
        }
    }

    fn chunked(&mut self) -> Result<()> {
        loop {
            let line = self.line()?;
            let size = line.split(';').next().unwrap_or_default().trim();
            let size =
                usize::from_str_radix(size, 16).map_err(|_| Error::answer(format!("bad chunk size {size:?}")))?;
            if size == 0 {
                // Trailers, up to the empty line.
                while !self.line()?.is_empty() {}
                return Ok(());
            }
            self.exactly(size)?;
            if !self.line()?.is_empty() {
                return Err(Error::answer("a chunk did not end with CRLF"));
            }
        }
    }

    fn until_close(&mut self) -> Result<()> {
        loop {
            let pending = std::mem::take(&mut self.pending);
            self.keep(&pending);
            if !self.fill()? {
                return Ok(());
            }
        }
    }
}

/// TLS settings trusting the system's roots plus `extra_pem` (the delay
/// proxy's self-signed certificate, in local runs).
pub fn tls_config(extra_pem: Option<&str>) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(pem) = extra_pem {
        for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(pem.as_bytes()) {
            let cert: rustls::pki_types::CertificateDer<'static> =
                cert.map_err(|e| Error::config(format!("certificate: {e:?}")))?;
            roots
                .add(cert)
                .map_err(|e| Error::config(format!("certificate: {e}")))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::tls("any server", e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests;
