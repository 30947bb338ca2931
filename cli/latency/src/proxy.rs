//! A delay proxy: makes a service on this machine look as far away as a
//! city on another continent, in user space (Linux netem needs privileges
//! these machines do not have).
//!
//! Every byte that crosses the proxy waits a configurable one-way delay per
//! direction (plus random jitter that never reorders bytes), so anything that
//! takes round trips pays them for real:
//!
//! - **connect**: a client that opens the connection with an HTTP `CONNECT`
//!   (as browsers do through a proxy) waits for `200 Connection established`,
//!   which crosses both delays: one round trip, like TCP's SYN / SYN-ACK;
//! - **TLS**: with a TLS front, the handshake is terminated by the proxy
//!   *after* the delays, so TLS 1.3 costs its real round trip and TLS 1.2 two;
//! - **requests**: each request and its answer cross the delays once.
//!
//! The delayed bytes are then handed to the local service, in plain TCP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use edgehose_shared::clock::{RandomSource, SeededRandom};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::error::{Error, Result};

/// The answer to a `CONNECT`.
const TUNNEL_OPEN: &[u8] = b"HTTP/1.1 200 Connection established\r\n\r\n";
/// Largest `CONNECT` request head read.
const MAX_CONNECT_HEAD: usize = 8 * 1024;
/// Bytes read at a time, and chunks in flight per direction (bounding the
/// memory a fast sender can make the proxy hold to 16 MiB per direction).
const CHUNK: usize = 16 * 1024;
const CHUNKS_IN_FLIGHT: usize = 1024;

/// One-way delays.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Delay {
    /// Client → service.
    pub up: Duration,
    /// Service → client.
    pub down: Duration,
    /// Up to this much more, drawn per chunk, on each direction.
    pub jitter: Duration,
}

impl Delay {
    /// A round trip of `rtt` split evenly, with `jitter`.
    pub fn rtt(rtt: Duration, jitter: Duration) -> Self {
        Self {
            up: rtt / 2,
            down: rtt - rtt / 2,
            jitter,
        }
    }
}

/// What one proxy does.
#[derive(Clone)]
pub struct Route {
    /// Where to listen (`127.0.0.1:0` for any free port).
    pub listen: String,
    /// The service behind it.
    pub upstream: SocketAddr,
    /// The delays.
    pub delay: Delay,
    /// Clients open each connection with `CONNECT host:port`.
    pub tunnel: bool,
    /// Terminate TLS with this certificate in front of the service.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// A running proxy; stops when dropped.
pub struct Proxy {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    /// Starts serving `route` on a thread of its own.
    pub fn start(route: Route) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::network("the delay proxy's runtime", e))?;
        let listener = runtime
            .block_on(TcpListener::bind(&route.listen))
            .map_err(|e| Error::network(format!("the delay proxy listening on {}", route.listen), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::network(format!("the delay proxy on {}", route.listen), e))?;
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(format!("delay-proxy-{addr}"))
            .spawn(move || runtime.block_on(serve(listener, Arc::new(route), stopped)))
            .map_err(|e| Error::network(format!("the delay proxy's thread for {addr}"), e))?;
        Ok(Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve(listener: TcpListener, route: Arc<Route>, mut stopped: oneshot::Receiver<()>) {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(7, |d| d.as_nanos() as u64);
    let mut n = 0u64;
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                n += 1;
                let route = route.clone();
                tokio::spawn(async move {
                    if let Err(e) = connection(client, &route, seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)).await {
                        tracing_line(&format!("delay proxy: connection closed: {e}"));
                    }
                });
            }
        }
    }
}

/// Connection problems are the client's business; they are only shown when
/// `EDGEHOSE_PROXY_DEBUG` is set.
fn tracing_line(line: &str) {
    if std::env::var_os("EDGEHOSE_PROXY_DEBUG").is_some() {
        eprintln!("{line}");
    }
}

async fn connection(client: TcpStream, route: &Route, seed: u64) -> Result<()> {
    let _ = client.set_nodelay(true);
    // `near` carries the client's bytes once they have crossed the delays;
    // the proxy works on `far` as if it were the client's socket.
    let (near, mut far) = tokio::io::duplex(CHUNK * 4);
    let (client_read, client_write) = client.into_split();
    let (near_read, near_write) = tokio::io::split(near);
    let rng = SeededRandom::new(seed);
    let jitter_up = Jitter::new(route.delay.jitter, rng.next_u64());
    let jitter_down = Jitter::new(route.delay.jitter, rng.next_u64());
    tokio::spawn(delayed(client_read, near_write, route.delay.up, jitter_up));
    tokio::spawn(delayed(near_read, client_write, route.delay.down, jitter_down));

    if route.tunnel {
        read_connect(&mut far).await?;
        far.write_all(TUNNEL_OPEN)
            .await
            .map_err(|e| Error::network("answering CONNECT", e))?;
    }
    let upstream = TcpStream::connect(route.upstream)
        .await
        .map_err(|e| Error::network(format!("connecting to {}", route.upstream), e))?;
    let _ = upstream.set_nodelay(true);
    match &route.tls {
        Some(config) => {
            let tls = tokio_rustls::TlsAcceptor::from(config.clone())
                .accept(far)
                .await
                .map_err(|e| Error::tls("the delay proxy", format!("the handshake: {e}")))?;
            pipe(tls, upstream).await;
        }
        None => pipe(far, upstream).await,
    }
    Ok(())
}

/// Copies both ways until both sides are done. Each direction ends on its
/// own (end of stream, or an error such as a TLS client that hangs up
/// without `close_notify`), closing only its half, so an answer still on
/// its way to the client is delivered.
async fn pipe<S: AsyncRead + AsyncWrite + Unpin>(client: S, upstream: TcpStream) {
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let (mut upstream_read, mut upstream_write) = upstream.into_split();
    let up = async {
        let _ = tokio::io::copy(&mut client_read, &mut upstream_write).await;
        let _ = upstream_write.shutdown().await;
    };
    let down = async {
        let _ = tokio::io::copy(&mut upstream_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    };
    tokio::join!(up, down);
}

/// Reads a `CONNECT host:port HTTP/1.1` head, byte by byte so nothing after
/// it (the TLS handshake) is taken.
async fn read_connect<S: AsyncRead + Unpin>(s: &mut S) -> Result<()> {
    let mut head = Vec::with_capacity(256);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_CONNECT_HEAD {
            return Err(Error::protocol(format!("CONNECT head over {MAX_CONNECT_HEAD} bytes")));
        }
        let b = s.read_u8().await.map_err(|e| Error::network("reading CONNECT", e))?;
        head.push(b);
    }
    if head.starts_with(b"CONNECT ") {
        Ok(())
    } else {
        Err(Error::protocol(format!(
            "expected CONNECT, got {:?}",
            String::from_utf8_lossy(&head[..head.len().min(40)])
        )))
    }
}

/// Random extra delay, up to a bound.
struct Jitter {
    max: Duration,
    rng: SeededRandom,
}

impl Jitter {
    fn new(max: Duration, seed: u64) -> Self {
        Self {
            max,
            rng: SeededRandom::new(seed),
        }
    }

    fn draw(&self) -> Duration {
        if self.max.is_zero() {
            return Duration::ZERO;
        }
        let unit = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        self.max.mul_f64(unit)
    }
}

/// Copies `from` to `to`, each chunk released `delay` (plus jitter) after it
/// was read, never before the chunk ahead of it: bytes stay in order, as on
/// one TCP connection. End of stream crosses the same delay.
async fn delayed<R, W>(mut from: R, mut to: W, delay: Duration, jitter: Jitter)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (tx, mut rx) = mpsc::channel::<(Instant, Option<Vec<u8>>)>(CHUNKS_IN_FLIGHT);
    let reader = async move {
        let mut last = Instant::now();
        loop {
            let mut buf = vec![0u8; CHUNK];
            let n = from.read(&mut buf).await.unwrap_or(0);
            let at = (Instant::now() + delay + jitter.draw()).max(last);
            last = at;
            buf.truncate(n);
            let done = n == 0;
            if tx.send((at, (!done).then_some(buf))).await.is_err() || done {
                return;
            }
        }
    };
    let writer = async move {
        while let Some((at, chunk)) = rx.recv().await {
            wait_until(at).await;
            match chunk {
                Some(bytes) => {
                    if to.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
                None => {
                    let _ = to.shutdown().await;
                    return;
                }
            }
        }
    };
    tokio::join!(reader, writer);
}

/// Sleeps until `at` to within a fraction of a millisecond: tokio's timer
/// ticks in whole milliseconds (and rounds up), which alone would add up to
/// a millisecond to every crossing, so the last stretch is a thread sleep.
async fn wait_until(at: Instant) {
    const TIMER_TICKS: Duration = Duration::from_millis(2);
    let now = Instant::now();
    if at <= now {
        return;
    }
    if at - now > TIMER_TICKS {
        tokio::time::sleep_until(at - TIMER_TICKS).await;
    }
    let rest = at.saturating_duration_since(Instant::now());
    if !rest.is_zero() {
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(rest)).await;
    }
}

/// A self-signed certificate for `names`, as a TLS server configuration for
/// the proxy and the PEM clients need to trust it.
pub fn self_signed(names: &[&str]) -> Result<(Arc<rustls::ServerConfig>, String)> {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let cert = rcgen::generate_simple_self_signed(names).map_err(|e| Error::config(format!("certificate: {e}")))?;
    let pem = cert.cert.pem();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::tls("the delay proxy", e))?
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .map_err(|e| Error::config(format!("certificate: {e}")))?;
    Ok((Arc::new(config), pem))
}

#[cfg(test)]
mod tests;
