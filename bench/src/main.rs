//! `edgehose-bench`: the project's benchmarks, which print numbers.
//!
//! ```text
//! edgehose-bench edge [--requests N] [--concurrency C] [--build DIR] [--var NAME=VALUE]... [--write BENCHMARKS.md]
//! ```

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = edgehose_bench::run(&args) {
        eprintln!("edgehose-bench: {e}");
        std::process::exit(1);
    }
}
