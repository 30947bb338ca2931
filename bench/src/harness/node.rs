//! Running a Node.js harness script once and reading the JSON it prints:
//! how the wasm benchmarks time V8 (compile time, µs per call).

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Runs `node FLAGS HARNESS ARGS…` and reads its standard output as JSON;
/// a failed run is an error with what it printed on standard error.
pub fn run_json(node: &Path, flags: &[&str], harness: &Path, args: &[&OsStr]) -> Result<Value, String> {
    let out = Command::new(node)
        .args(flags)
        .arg(harness)
        .args(args)
        .output()
        .map_err(|e| format!("{}: {e}", node.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} {}: {}",
            harness.display(),
            args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("{}: {e}", harness.display()))
}

/// The number `field` of a harness's answer.
pub fn number(v: &Value, field: &str, harness: &Path) -> Result<f64, String> {
    v[field]
        .as_f64()
        .ok_or_else(|| format!("{}: no {field} in {v}", harness.display()))
}
