//! The project's benchmarks. Each prints a table of numbers and can rewrite
//! its section of `BENCHMARKS.md`; none of them pass or fail on timings.

pub mod edge;
pub mod load;
pub mod report;
pub mod sink;
pub mod transform;
pub mod workerd;

/// Runs the subcommand named in `args`.
pub fn run(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("edge") => edge::main(&args[1..]),
        Some("transform") => transform::main(&args[1..]),
        Some("transform-run") => transform::run_variant(&args[1..]),
        _ => Err(
            "usage: edgehose-bench edge [--requests N] [--concurrency C] [--build DIR] [--write BENCHMARKS.md]".into(),
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
