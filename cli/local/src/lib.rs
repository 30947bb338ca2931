//! The local stand-ins for AWS and Cloudflare that `edgehose dev`, the
//! end-to-end tests (`tests/`), the benchmarks (`bench/`) and the latency
//! harness run the real edgehose pieces inside:
//!
//! - [`aws`]: AWS's side — firehose-local (a Firehose that runs the real
//!   transformation Lambda and writes Firehose's S3 layout to a directory),
//!   a Lambda Runtime API host for the real function binaries, the API
//!   Gateway (HTTP API) front of `ingest-api`, CloudWatch Logs' reading of
//!   the functions' logs, moto's server (Kinesis, SQS, IAM, S3) and a signed
//!   AWS JSON-protocol call;
//! - [`cloudflare`]: Cloudflare's side — the built edge Worker in workerd
//!   through Miniflare (Queues, R2, Analytics Engine, the platform's faults,
//!   in `js/miniflare.mjs`) and the Worker's admin API (redrive) from outside;
//! - [`faults`]: the one fault engine (throttling, partial failures, 500s,
//!   lost answers, hangs, outages) firehose-local draws from, and
//!   [`faults::proxy`], which puts it in front of another emulator;
//! - [`clock`], [`http`], [`tools`]: the wall clock, one HTTP client, and
//!   where the bootstrap's tools are;
//! - [`error`]: what can go wrong, by kind.
//!
//! ```no_run
//! use edgehose_local::aws::firehose::{Config, FirehoseLocal};
//! let local = FirehoseLocal::start(Config::new("clicks", ".edgehose/data".into()))?;
//! println!("Firehose endpoint: {}", local.url());
//! # Ok::<(), edgehose_local::error::Error>(())
//! ```

pub mod aws;
pub mod clock;
pub mod cloudflare;
pub mod error;
pub mod faults;
pub mod http;
pub mod tools;
