//! The latency harness behind `edgehose latency` and `make bench-latency`:
//! how long a click takes to be acknowledged by the edge Worker and by the
//! API Gateway path, phase by phase, against real deployments or against
//! local ones (from `edgehose-local`) placed at a distance by the delay
//! proxy ([`proxy`], also `edgehose delay-proxy` and the cost bench's).
//!
//! ```text
//! edgehose latency --target edge=https://edgehose.example.workers.dev/v1/events \
//!                  --target apigw=https://abc.execute-api.us-east-1.amazonaws.com/v1/events
//! edgehose latency --scenario tokyo --region us-east-1
//! ```

pub mod chart;
pub mod error;
pub mod probe;
pub mod proxy;
pub mod run;
pub mod s3;
pub mod scenario;
pub mod sink;
pub mod stats;
