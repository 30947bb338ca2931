//! `edgehose-bench`: the project's benchmarks, which print numbers.
//!
//! ```text
//! edgehose-bench edge [--requests N] [--concurrency C] [--build DIR] [--var NAME=VALUE]... [--write BENCHMARKS.md]
//! edgehose-bench --help
//! ```

use clap::Parser;

/// edgehose-bench: benchmarks that print numbers and can rewrite their
/// section of BENCHMARKS.md; none of them pass or fail on timings.
#[derive(Debug, Parser)]
#[command(name = "edgehose-bench")]
struct Cli {
    #[command(subcommand)]
    bench: edgehose_bench::Bench,
}

fn main() {
    if let Err(e) = edgehose_bench::run(Cli::parse().bench) {
        eprintln!("edgehose-bench: {e}");
        std::process::exit(1);
    }
}
