//! What the benchmarks share: a Worker in raw workerd ([`workerd`]), a
//! minimal HTTP load client ([`load`]), a sink that stands in for Firehose
//! ([`sink`]), the bootstrap's Node ([`node`]), and writing a section of
//! BENCHMARKS.md with the date and machine ([`report`]).

pub mod load;
pub mod node;
pub mod report;
pub mod sink;
pub mod workerd;
