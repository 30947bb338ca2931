//! The project's benchmarks. Each prints a table of numbers and can rewrite
//! its section of `BENCHMARKS.md`; none of them pass or fail on timings.
//! One file (or folder) per benchmark, named as `make bench-<name>` names
//! it — [`edge`] (with its cold start, size and isolate profile), [`wasm`],
//! [`transform`], [`pipeline`], [`latency`], [`packing`], [`cost`],
//! [`tracker`], [`fuzz`], [`soak`] — and [`all`] (`make bench`) running
//! them in turn; what they share is in [`harness`].

pub mod all;
pub mod cost;
pub mod edge;
pub mod fuzz;
pub mod harness;
pub mod latency;
pub mod packing;
pub mod pipeline;
pub mod soak;
pub mod tracker;
pub mod transform;
pub mod wasm;

use harness::report;

/// One benchmark and its options.
#[derive(Debug, clap::Subcommand)]
pub enum Bench {
    /// Every benchmark in turn, then the headline table (make bench).
    All(report::Write),
    /// The headline table from the last run of each benchmark.
    Headline(report::Write),
    /// The edge Worker against the runtime floor and a JavaScript peer.
    Edge(edge::Options),
    /// The edge's own Rust work, native and as wasm.
    Wasm(wasm::Options),
    /// The transformation Lambda: events per second, cold starts.
    Transform(transform::Options),
    /// One in-process transform run (started by `transform`).
    #[command(hide = true)]
    TransformRun(transform::RunVariant),
    /// The whole local pipeline under load, every event id checked.
    Pipeline(pipeline::Options),
    /// The latency scenarios (edgehose latency --scenario).
    Latency(latency::Options),
    /// Records, billed bytes and calls per million events, by sink.
    Packing(report::Write),
    /// The whole bill per path, with measured CPU and Lambda time.
    Cost(cost::Options),
    /// The fuzz targets for a while each.
    Fuzz(fuzz::Options),
    /// edgehose dev under faults and hostile traffic for minutes.
    Soak(soak::Settings),
    /// The browser tracker's size and cost.
    Tracker(report::Write),
}

/// Runs one benchmark.
pub fn run(bench: Bench) -> Result<(), String> {
    match bench {
        Bench::All(w) => all::main(w),
        Bench::Headline(w) => all::headline().and_then(|t| report::publish("headline", &t, None, w.file())),
        Bench::Edge(o) => edge::main(o),
        Bench::Wasm(o) => wasm::main(o),
        Bench::Transform(o) => transform::main(o),
        Bench::TransformRun(r) => transform::run_variant(r),
        Bench::Pipeline(o) => pipeline::main(o),
        Bench::Latency(o) => latency::main(o),
        Bench::Packing(w) => packing::main(w),
        Bench::Cost(o) => cost::main(o),
        Bench::Fuzz(o) => fuzz::main(o),
        Bench::Soak(s) => soak::main(s),
        Bench::Tracker(w) => tracker::main(w),
    }
}

pub use edgehose_local::tools::{cache_dir, repo_root};
