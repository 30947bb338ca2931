//! The `edgehose` command: the whole pipeline on one machine.
//!
//! - [`firehose`]: firehose-local, a Firehose stand-in that runs the real
//!   transformation Lambda and writes Firehose's S3 layout to a directory;
//! - [`runtime_api`]: a Lambda Runtime API host that runs the real function
//!   binaries;
//! - [`apigw`]: the API Gateway (HTTP API) front of the `ingest-api` function;
//! - [`edge`]: the built edge Worker in workerd (through Miniflare, for Queues);
//! - [`dev`]: all of them together, with progress;
//! - [`redrive`]: archived dead letters back through the normal path;
//! - [`latency`]: the latency comparison of the edge and API Gateway paths,
//!   with the delay proxy that puts local services at a distance.
//!
//! ```no_run
//! use edgehose_cli::firehose::{Config, FirehoseLocal};
//! let local = FirehoseLocal::start(Config::new("clicks", ".edgehose/data".into()))?;
//! println!("Firehose endpoint: {}", local.url());
//! # Ok::<(), String>(())
//! ```

pub mod apigw;
pub mod args;
pub mod aws_json;
pub mod cost;
pub mod dev;
pub mod edge;
pub mod firehose;
pub mod http;
pub mod latency;
pub mod moto;
pub mod redrive;
pub mod runtime_api;
pub mod tools;
