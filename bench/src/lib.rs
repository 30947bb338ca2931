//! The project's benchmarks. Each prints a table of numbers and can rewrite
//! its section of `BENCHMARKS.md`; none of them pass or fail on timings.

pub mod edge;
pub mod load;
pub mod report;
pub mod sink;
pub mod transform;
pub mod workerd;

use std::path::PathBuf;

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

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// The bootstrap's cache (`EDGEHOSE_CACHE`, else `~/.cache/edgehose`).
pub fn cache_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("EDGEHOSE_CACHE")
        && !dir.is_empty()
    {
        return PathBuf::from(dir);
    }
    let base = std::env::var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/tmp".into())).join(".cache"));
    base.join("edgehose")
}

/// `--name value` from an argument list.
pub fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}
