//! The local stand-ins for AWS and Cloudflare that `edgehose dev`, the
//! end-to-end tests (`tests/`), the benchmarks (`bench/`) and the latency
//! harness run the real edgehose pieces inside:
//!
//! - [`firehose`]: firehose-local, a Firehose stand-in that runs the real
//!   transformation Lambda and writes Firehose's S3 layout to a directory;
//! - [`runtime_api`]: a Lambda Runtime API host that runs the real function
//!   binaries;
//! - [`apigw`]: the API Gateway (HTTP API) front of the `ingest-api` function;
//! - [`miniflare`]: the built edge Worker in workerd, through Miniflare (for
//!   Queues and R2);
//! - [`moto`]: moto's server, for Kinesis, SQS, IAM and S3;
//! - [`faults`]: the one fault engine (throttling, partial failures, 500s,
//!   lost answers, hangs, outages) firehose-local draws from, and
//!   [`fault_proxy`], which puts it in front of another emulator;
//! - [`redrive`]: the edge Worker's redrive API from outside;
//! - [`aws_json`], [`clock`], [`http`], [`tools`]: an AWS JSON-protocol call,
//!   the wall clock, one HTTP client, and where the bootstrap's tools are;
//! - [`error`]: what can go wrong, by kind.
//!
//! ```no_run
//! use edgehose_local::firehose::{Config, FirehoseLocal};
//! let local = FirehoseLocal::start(Config::new("clicks", ".edgehose/data".into()))?;
//! println!("Firehose endpoint: {}", local.url());
//! # Ok::<(), edgehose_local::error::Error>(())
//! ```

pub mod apigw;
pub mod aws_json;
pub mod clock;
pub mod error;
pub mod fault_proxy;
pub mod faults;
pub mod firehose;
pub mod http;
pub mod log_group;
pub mod miniflare;
pub mod moto;
pub mod redrive;
pub mod runtime_api;
pub mod tools;
