//! `edgehose delay-proxy`: one delay proxy from the command line, until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use edgehose_latency::proxy::{Delay, Proxy, Route, self_signed};

use crate::duration::millis;

/// `edgehose delay-proxy`'s options.
#[derive(Debug, clap::Args)]
#[command(
    about = "Put a local service at a distance (latency, jitter, TLS)",
    after_help = "Connection errors (the client's business) are printed only when EDGEHOSE_PROXY_DEBUG is set."
)]
pub struct DelayProxyArgs {
    /// HOST:PORT of the service behind it.
    #[arg(long)]
    upstream: SocketAddr,
    /// Where to listen (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Round trip to add, half each way, ms.
    #[arg(long, default_value = "0", value_parser = millis)]
    rtt_ms: Duration,
    /// Client → service delay, ms, instead of half the round trip.
    #[arg(long, value_parser = millis)]
    up_ms: Option<Duration>,
    /// Service → client delay, ms, instead of half the round trip.
    #[arg(long, value_parser = millis)]
    down_ms: Option<Duration>,
    /// Up to this much more per chunk and direction, ms.
    #[arg(long, default_value = "0", value_parser = millis)]
    jitter_ms: Duration,
    /// Clients open connections with CONNECT (charged a round trip).
    #[arg(long)]
    connect: bool,
    /// Terminate TLS in front of the service (self-signed certificate).
    #[arg(long)]
    tls: bool,
    /// With --tls: write the certificate (PEM) here for clients to trust.
    #[arg(long, requires = "tls")]
    cert_out: Option<PathBuf>,
    /// With --tls: the certificate's host name.
    #[arg(long, default_value = "localhost")]
    name: String,
}

/// Runs one proxy until Ctrl-C.
pub fn run(args: DelayProxyArgs) -> Result<(), String> {
    let half = Delay::rtt(args.rtt_ms, Duration::ZERO);
    let delay = Delay {
        up: args.up_ms.unwrap_or(half.up),
        down: args.down_ms.unwrap_or(half.down),
        jitter: args.jitter_ms,
    };
    let tls = if args.tls {
        let (config, pem) = self_signed(&[&args.name])?;
        if let Some(path) = &args.cert_out {
            std::fs::write(path, &pem).map_err(|e| format!("--cert-out {}: {e}", path.display()))?;
        }
        Some(config)
    } else {
        None
    };
    let proxy = Proxy::start(Route {
        listen: args.listen.clone(),
        upstream: args.upstream,
        delay,
        tunnel: args.connect,
        tls,
    })?;
    println!(
        "delay proxy on {} → {}: +{:?} up, +{:?} down, jitter up to {:?}{}{}; Ctrl-C stops it",
        proxy.addr(),
        args.upstream,
        delay.up,
        delay.down,
        delay.jitter,
        if args.connect { ", CONNECT" } else { "" },
        if args.tls { ", TLS" } else { "" }
    );
    crate::signals::wait_for_stop()?;
    Ok(())
}
