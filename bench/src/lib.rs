//! The project's benchmarks. Each prints a table of numbers and can rewrite
//! its section of `BENCHMARKS.md`; none of them pass or fail on timings.

pub mod all;
pub mod cost;
pub mod edge;
pub mod fuzz;
pub mod isolate_profile;
pub mod latency;
pub mod load;
pub mod packing;
pub mod pipeline;
pub mod report;
pub mod sink;
pub mod soak;
pub mod tracker;
pub mod transform;
pub mod wasm;
pub mod worker_size;
pub mod workerd;

/// Runs the subcommand named in `args`.
pub fn run(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("edge") => edge::main(&args[1..]),
        Some("transform") => transform::main(&args[1..]),
        Some("transform-run") => transform::run_variant(&args[1..]),
        Some("pipeline") => pipeline::main(&args[1..]),
        Some("latency") => latency::main(&args[1..]),
        Some("packing") => packing::main(&args[1..]),
        Some("cost") => cost::main(&args[1..]),
        Some("fuzz") => fuzz::main(&args[1..]),
        Some("soak") => soak::main(&args[1..]),
        Some("tracker") => tracker::main(&args[1..]),
        Some("wasm") => wasm::main(&args[1..]),
        Some("all") => all::main(&args[1..]),
        Some("headline") => all::headline().and_then(|t| report::publish("headline", &t, None, flag(args, "--write"))),
        _ => Err(
            "usage: edgehose-bench all|edge|wasm|transform|pipeline|latency|packing|cost|fuzz|soak|tracker|headline [options] [--write BENCHMARKS.md]\n\
             \x20 edge [--rounds N] [--requests N] [--concurrency C] [--build DIR] [--var NAME=VALUE]...\n\
             \x20 wasm [--rounds N]\n\
             \x20 transform\n\
             \x20 cost [--rounds N] [--requests N] [--from MEASURED.json]\n\
             \x20 pipeline [--seconds S] [--connections C] [--scenarios queue:1,queue:10,direct:10]\n\
             \x20 latency [--requests N] [--scenarios tokyo:us-east-1,frankfurt:eu-central-1]\n\
             \x20 fuzz [--secs N] [--targets ingest,segment]\n\
             \x20 soak [--secs S] [--connections C] [--mode queue|direct] [--per-request N] [--throttle F] [--partial F] [--errors F] [--outage-every S] [--outage-secs S] [--hostile true|false]"
                .into(),
        ),
    }
}

pub use edgehose_tests::tools::{cache_dir, repo_root};

/// `--name value` from an argument list.
pub fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}
