//! AWS's side on this machine: each service edgehose talks to, played by a
//! stand-in that checks what AWS checks.
//!
//! - [`firehose`]: firehose-local, Firehose's JSON 1.1 API with SigV4,
//!   buffering, the real transform and the S3 layout it writes;
//! - [`lambda_runtime`]: the Lambda Runtime API the real function binaries
//!   poll;
//! - [`api_gateway`]: API Gateway's HTTP API in front of `ingest-api`;
//! - [`cloudwatch_logs`]: the functions' log lines as CloudWatch Logs'
//!   `FilterLogEvents` serves them;
//! - [`moto`]: moto's server (Kinesis, SQS, IAM, S3), started from the
//!   bootstrap's Python;
//! - [`json_call`]: one signed call in AWS's JSON protocol.

pub mod api_gateway;
pub mod cloudwatch_logs;
pub mod firehose;
pub mod json_call;
pub mod lambda_runtime;
pub mod moto;
