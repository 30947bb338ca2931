//! `make fuzz`: every libFuzzer target in `fuzz/` for a while each, with
//! corpora seeded from the test fixtures (the SDK corpus, the SigV4 suite,
//! AWS's sample Firehose event, the edge's own envelopes). Prints and records
//! executions and findings per target; a finding is a failure of the run,
//! its input kept under `target/fuzz/artifacts/<target>/` to become a
//! regression test.
//!
//! ```text
//! edgehose-bench fuzz [--secs N] [--targets ingest,segment] [--write BENCHMARKS.md]
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;

use crate::harness::report;

/// Each target and what it reads.
pub const TARGETS: [(&str, &str); 8] = [
    (
        "ingest",
        "one request through the HTTP API: every door, body form and encoding",
    ),
    ("segment", "Segment bodies on every route, each message by the spec"),
    ("source", "`SOURCES` declarations and source events in each time format"),
    ("validate", "schema v1 events under default and tight limits"),
    ("envelope", "envelope lines, judged and turned into `rejected` lines"),
    (
        "firehose_response",
        "`PutRecordBatch` answers: status, error type, date, body",
    ),
    ("sigv4_verify", "signed requests, as firehose-local verifies them"),
    ("transform", "Firehose records, raw and base64, through the transform"),
];

/// One target's run.
struct Run {
    name: &'static str,
    reads: &'static str,
    executions: u64,
    per_sec: u64,
    corpus: usize,
    finding: Option<String>,
}

/// `edgehose-bench fuzz`'s options.
#[derive(Debug, clap::Parser)]
pub struct Options {
    /// Seconds per target.
    #[arg(long, default_value_t = 60)]
    pub secs: u64,
    /// Only these targets, comma-separated.
    #[arg(long)]
    pub targets: Option<String>,
    /// Where the table is written.
    #[command(flatten)]
    pub write: crate::harness::report::Write,
}

/// Runs the targets and reports.
pub fn main(o: Options) -> Result<(), String> {
    let secs = o.secs;
    let wanted = o.targets.clone();
    let root = crate::repo_root();
    let mut runs = Vec::new();
    for (name, reads) in TARGETS {
        if wanted.as_deref().is_some_and(|w| !w.split(',').any(|t| t == name)) {
            continue;
        }
        let corpus = root.join("target/fuzz/corpus").join(name);
        seed(name, &corpus)?;
        runs.push(run(&root, name, reads, &corpus, secs)?);
    }
    let table = table(&runs, secs);
    report::publish("fuzz", &table, None, o.write.file())?;
    let found: Vec<&Run> = runs.iter().filter(|r| r.finding.is_some()).collect();
    if found.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} targets found a failing input: {}",
            found.len(),
            found
                .iter()
                .filter_map(|r| r.finding.as_deref())
                .collect::<Vec<_>>()
                .join("; ")
        ))
    }
}

fn run(root: &Path, name: &'static str, reads: &'static str, corpus: &Path, secs: u64) -> Result<Run, String> {
    let artifacts = root.join("target/fuzz/artifacts").join(name);
    std::fs::create_dir_all(&artifacts).map_err(|e| e.to_string())?;
    println!("fuzzing {name} for {secs} s…");
    let output = Command::new("cargo")
        .args(["+nightly", "fuzz", "run", "--sanitizer", "none", "--fuzz-dir"])
        .arg(root.join("fuzz"))
        .arg("--target-dir")
        .arg(root.join("target/fuzz/build"))
        .arg(name)
        .arg(corpus)
        .arg("--")
        .arg(format!("-max_total_time={secs}"))
        .arg("-print_final_stats=1")
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .current_dir(root.join("fuzz"))
        .output()
        .map_err(|e| format!("cargo +nightly fuzz: {e} (make fuzz installs nightly and cargo-fuzz)"))?;
    let text = String::from_utf8_lossy(&output.stderr).into_owned() + &String::from_utf8_lossy(&output.stdout);
    let stat = |key: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("stat::{key}:")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let finding = (!output.status.success()).then(|| {
        let written = text
            .lines()
            .find_map(|l| l.split("Test unit written to ").nth(1))
            .unwrap_or("no input written (see the output above)");
        let why = text
            .lines()
            .find(|l| l.contains("panicked at") || l.starts_with("==") || l.contains("error:"))
            .unwrap_or("");
        eprintln!("{text}");
        format!("{name}: {why} → {written}")
    });
    let corpus_size = std::fs::read_dir(corpus).map(|d| d.count()).unwrap_or(0);
    Ok(Run {
        name,
        reads,
        executions: stat("number_of_executed_units"),
        per_sec: stat("average_exec_per_sec"),
        corpus: corpus_size,
        finding,
    })
}

fn table(runs: &[Run], secs: u64) -> String {
    let mut t = format!(
        "Measured {} on {}: `make fuzz FUZZ_SECS={secs}` (libFuzzer through cargo-fuzz, nightly, no sanitizer: the code forbids `unsafe`; seeds from the test fixtures).\n\n",
        report::today(),
        report::machine()
    );
    t.push_str("| target | reads | executions | per second | corpus | findings |\n|---|---|---|---|---|---|\n");
    for r in runs {
        t.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} |\n",
            r.name,
            r.reads,
            r.executions,
            r.per_sec,
            r.corpus,
            r.finding.as_deref().map_or("none".to_owned(), |f| format!("**{f}**"))
        ));
    }
    t
}

/// Writes the seed inputs of `target` into `dir` (kept with what the fuzzer adds).
fn seed(target: &str, dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    for (i, input) in seeds(target)?.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i:03}")), input).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn fixtures() -> PathBuf {
    crate::repo_root()
}

/// The request bodies the real SDKs sent (shared/tests/fixtures/sdk-corpus).
fn sdk_bodies() -> Result<Vec<Vec<u8>>, String> {
    let dir = fixtures().join("shared/tests/fixtures/sdk-corpus");
    let mut bodies = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
        for r in v["requests"].as_array().into_iter().flatten() {
            if let Some(b) = r["body_base64"].as_str()
                && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(b)
            {
                bodies.push(bytes);
            }
        }
    }
    Ok(bodies)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = e.write_all(bytes);
    e.finish().unwrap_or_default()
}

fn v1_events() -> Vec<String> {
    (0..3).map(|n| edgehose_sample::ride_sample("fuzz", n)).collect()
}

fn seeds(target: &str) -> Result<Vec<Vec<u8>>, String> {
    let prefixed = |head: &[u8], body: &[u8]| [head, body].concat();
    let events = v1_events();
    let ndjson = events.join("\n");
    let array = format!("[{}]", events.join(","));
    Ok(match target {
        "ingest" => {
            let mut s = vec![
                prefixed(&[0, 1, 0, 0], array.as_bytes()),
                prefixed(&[0, 2, 0, 0], ndjson.as_bytes()),
                prefixed(&[0, 2, 1, 0], &gzip(ndjson.as_bytes())),
                prefixed(&[0, 1, 0, 1], b"{\"event\": \"click\", oops"),
                prefixed(&[4, 1, 0, 0], br#"{"uuid":"b-1","ts":1714566600000,"watts":180}"#),
            ];
            for body in sdk_bodies()? {
                s.push(prefixed(&[1, 1, 0, 0], &body));
                s.push(prefixed(&[1, 1, 1, 0], &gzip(&body)));
            }
            s
        }
        "segment" => {
            let mut s: Vec<Vec<u8>> = sdk_bodies()?.iter().map(|b| prefixed(&[6], b)).collect();
            s.push(prefixed(&[0], br#"{"event":"Signed Up","userId":"u","timestamp":"2024-05-01T12:30:00Z"}"#));
            s.push(prefixed(&[1], br#"{"name":"Home","anonymousId":"a","properties":{"url":"https://x.example/"}}"#));
            s
        }
        "source" => vec![
            br#"{"uuid":"b-1","ts":1714566600000,"id":"x","t":1714566600,"at":"2024-05-01T12:30:00Z","w":1}"#.to_vec(),
            br#"{"bike": {"id_field": "uuid", "time_field": "ts", "time_format": "epoch_ms", "keys": ["bikes"]}}"#.to_vec(),
            br#"[{"lat":52.5,"lon":13.4}]"#.to_vec(),
        ],
        "validate" => {
            let mut s: Vec<Vec<u8>> = events.iter().map(|e| e.as_bytes().to_vec()).collect();
            s.push(br#"{"event":"page_view","url":"https://shop.example/","ts":"2024-05-01T12:30:00.250Z"}"#.to_vec());
            s
        }
        "envelope" => edgehose_sample::envelope_lines(&ndjson)?
            .into_iter()
            .map(String::into_bytes)
            .collect(),
        "firehose_response" => vec![
            prefixed(
                &[0, 0, 0, 3],
                br#"{"FailedPutCount":1,"Encrypted":false,"RequestResponses":[{"RecordId":"a"},{"ErrorCode":"ServiceUnavailableException","ErrorMessage":"Slow down."},{"RecordId":"c"}]}"#,
            ),
            prefixed(&[1, 2, 1, 1], br#"{"__type":"ServiceUnavailableException","message":"Slow down."}"#),
            prefixed(&[1, 0, 2, 1], br#"{"__type":"InvalidSignatureException","message":"Signature expired"}"#),
        ],
        "sigv4_verify" => {
            let mut s = Vec::new();
            let suite = fixtures().join("shared/tests/fixtures/sigv4-suite");
            let mut dirs = vec![suite];
            while let Some(d) = dirs.pop() {
                for entry in std::fs::read_dir(&d).map_err(|e| e.to_string())?.flatten() {
                    let p = entry.path();
                    if p.is_dir() {
                        dirs.push(p);
                    } else if p.extension().is_some_and(|e| e == "sreq") {
                        s.push(std::fs::read(&p).map_err(|e| e.to_string())?);
                    }
                }
            }
            s
        }
        "transform" => {
            let lines = edgehose_sample::envelope_lines(&ndjson)?;
            let record = edgehose_sample::record_of(&lines);
            let b64 = base64::engine::general_purpose::STANDARD.encode(&record);
            let sample: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(fixtures().join("regional/tests/fixtures/aws-example-firehose-event.json"))
                    .map_err(|e| e.to_string())?,
            )
            .map_err(|e| e.to_string())?;
            let mut aws = vec![1u8];
            for r in sample["records"].as_array().into_iter().flatten() {
                aws.extend_from_slice(r["data"].as_str().unwrap_or_default().as_bytes());
                aws.push(0xFF);
            }
            vec![prefixed(&[0], &record), prefixed(&[3], &record), prefixed(&[1], b64.as_bytes()), aws]
        }
        other => return Err(format!("no target {other}")),
    })
}
