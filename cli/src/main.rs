//! `edgehose`: run the pipeline locally.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("dev") => edgehose_cli::dev::main(&args[1..]),
        Some("firehose-local") => edgehose_cli::firehose::cli::main(&args[1..]),
        Some("cost") => edgehose_cli::cost::main(&args[1..]),
        Some("latency") => edgehose_cli::latency::main(&args[1..]),
        Some("redrive") => edgehose_cli::redrive::main(&args[1..]),
        Some("delay-proxy") => edgehose_cli::latency::proxy::main(&args[1..]),
        None | Some("help" | "--help" | "-h") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command {other:?}\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("edgehose: {e}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "\
edgehose: global, low-latency event ingestion into AWS Firehose

usage:
  edgehose dev [flags]             the whole pipeline on this machine (make dev)
  edgehose firehose-local [flags]  a Firehose stand-in that runs the real transform
  edgehose redrive [flags]         archived dead letters back through the normal path
  edgehose cost [flags]            the whole monthly bill per path, line by line
  edgehose latency [flags]         time to acknowledge a click: edge against API Gateway
  edgehose delay-proxy [flags]     put a local service at a distance (latency, jitter, TLS)

Each command takes --help.";
