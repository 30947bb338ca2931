//! `edgehose`: the command line. Each command is a file here that reads its
//! options (clap) and calls the libraries: `edgehose-local` (the local AWS
//! and Cloudflare stand-ins), `edgehose-latency`, `edgehose-cost`,
//! `edgehose-receipts`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cloudflare_flags;
mod cost;
mod delay_proxy;
mod dev;
mod duration;
mod fault_flags;
mod firehose_local;
mod latency;
mod receipts;
mod redrive;
mod signals;
mod token;
mod trace;

/// edgehose: global, low-latency event ingestion into AWS.
#[derive(Debug, Parser)]
#[command(name = "edgehose", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The whole pipeline on this machine (make dev).
    Dev(dev::DevArgs),
    /// A Firehose stand-in that runs the real transform.
    FirehoseLocal(firehose_local::FirehoseLocalArgs),
    /// Archived dead letters back through the normal path.
    Redrive(redrive::RedriveArgs),
    /// Every accepted event accounted for, per key and minute.
    Receipts(receipts::ReceiptsArgs),
    /// Every place one event id is.
    Trace(trace::TraceArgs),
    /// Mint a signed ingest token for a write key.
    Token(token::TokenArgs),
    /// The whole monthly bill per path, line by line.
    Cost(cost::CostArgs),
    /// Time to acknowledge a click: edge against API Gateway.
    Latency(latency::LatencyArgs),
    /// Put a local service at a distance (latency, jitter, TLS).
    DelayProxy(delay_proxy::DelayProxyArgs),
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Dev(a) => dev::run(a),
        Command::FirehoseLocal(a) => firehose_local::run(a),
        Command::Redrive(a) => redrive::run(a),
        Command::Receipts(a) => receipts::run(a),
        Command::Trace(a) => trace::run(a),
        Command::Token(a) => token::run(a),
        Command::Cost(a) => cost::run(a),
        Command::Latency(a) => latency::run(a),
        Command::DelayProxy(a) => delay_proxy::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("edgehose: {e}");
            ExitCode::FAILURE
        }
    }
}
