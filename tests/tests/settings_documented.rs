//! Every setting the code reads is documented where it is set — the edge
//! Worker's in `wrangler.toml` (its one settings reference, vars and
//! secrets), the Lambdas' in the SAM template or the book — and every
//! setting `wrangler.toml` sets is one the code reads. Checked against the
//! source, so a new setting cannot land undocumented, nor a removed one
//! stay documented.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The non-test Rust sources under `dir`.
fn sources(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") && path.file_name().is_some_and(|n| n != "tests.rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                // Unit tests sit at the end of a file, after `#[cfg(test)]`.
                let code = text.split("#[cfg(test)]").next().unwrap_or_default();
                out.push(code.to_owned());
            }
        }
    }
    out
}

fn is_name(s: &str) -> bool {
    s.len() > 2
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// Names passed as literals to the settings reader (`s.get("X")`,
/// `s.usize_or("X", …)`, …).
fn read_settings(dirs: &[&str]) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for dir in dirs {
        for code in sources(&root().join(dir)) {
            for call in [".get(\"", ".required(\"", ".usize_or(\"", ".bool_or(\"", ".list(\""] {
                for (at, _) in code.match_indices(call) {
                    let rest = &code[at + call.len()..];
                    let name = &rest[..rest.find('"').unwrap_or(0)];
                    if is_name(name) {
                        names.insert(name.to_owned());
                    }
                }
            }
        }
    }
    names
}

/// Every `"NAME"` literal in the sources: what the code can read, directly
/// or through a variable (`CALL_TIMEOUT_MS` or its older name).
fn literals(dirs: &[&str]) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for dir in dirs {
        for code in sources(&root().join(dir)) {
            for piece in code.split('"').skip(1).step_by(2) {
                if is_name(piece) {
                    names.insert(piece.to_owned());
                }
            }
        }
    }
    names
}

fn words(file: &str) -> BTreeSet<String> {
    std::fs::read_to_string(root().join(file))
        .unwrap()
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| is_name(w))
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_setting_the_edge_reads_is_in_wrangler_toml() {
    let read = read_settings(&["edge/src", "shared/src"]);
    assert!(read.len() > 30 && read.contains("FIREHOSE_STREAM"), "{read:?}");
    let documented = words("wrangler.toml");
    let missing: Vec<&String> = read.iter().filter(|n| !documented.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "read by the edge but not in wrangler.toml: {missing:?}"
    );
}

#[test]
fn every_setting_wrangler_toml_sets_is_read_by_the_edge() {
    let text = std::fs::read_to_string(root().join("wrangler.toml")).unwrap();
    let vars = text.split("[vars]").nth(1).expect("a [vars] table");
    let vars = vars.split("\n[").next().unwrap_or(vars);
    let set: BTreeSet<String> = vars
        .lines()
        .map(|l| l.trim_start_matches('#').trim())
        .filter_map(|l| l.split_once(" = ").map(|(k, _)| k.trim().to_owned()))
        .filter(|k| is_name(k))
        .collect();
    assert!(set.contains("FORWARD_MODE"), "{set:?}");
    let known = literals(&["edge/src", "shared/src"]);
    let unread: Vec<&String> = set.iter().filter(|n| !known.contains(*n)).collect();
    assert!(
        unread.is_empty(),
        "set in wrangler.toml but read by no code: {unread:?}"
    );
}

#[test]
fn every_setting_the_lambdas_read_is_in_the_template_or_the_book() {
    let read = read_settings(&["regional/src"]);
    assert!(read.contains("TRANSFORM_THREADS"), "{read:?}");
    let mut documented = words("regional/template.yaml");
    for page in edgehose_tests::book::documents() {
        documented.extend(words(page.to_str().unwrap()));
    }
    let missing: Vec<&String> = read.iter().filter(|n| !documented.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "read by a Lambda but documented nowhere: {missing:?}"
    );
}
