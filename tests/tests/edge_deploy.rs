//! `npx wrangler deploy --dry-run` from the repository root works offline:
//! wrangler runs the `[build]` command (worker-build with the bootstrap's
//! wasm-bindgen, wasm-opt and esbuild) and bundles the Worker without
//! contacting Cloudflare or GitHub.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::process::Command;

use edgehose_local::tools;

#[test]
fn wrangler_deploy_dry_run_builds_and_bundles_offline() {
    let wrangler = tools::npm_bin("wrangler").unwrap();
    let out = std::env::temp_dir().join(format!("edgehose-dry-run-{}", std::process::id()));
    let bin = tools::cache_dir().join("npm/node_modules/.bin");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let output = Command::new(wrangler)
        .args(["deploy", "--dry-run", "--outdir"])
        .arg(&out)
        .current_dir(tools::repo_root())
        .env("PATH", path)
        .env("WRANGLER_SEND_METRICS", "false")
        .env("WRANGLER_SEND_ERROR_REPORTS", "false")
        .env("DO_NOT_TRACK", "1")
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "wrangler failed:\n{text}");
    assert!(text.contains("--dry-run: exiting now."), "{text}");
    for binding in [
        "env.EVENTS_QUEUE",
        "env.DEAD_LETTER_QUEUE",
        "env.FIREHOSE_STREAM",
        "env.FORWARD_MODE",
        "env.RATE_LIMITER",
    ] {
        assert!(text.contains(binding), "{binding} missing from:\n{text}");
    }
    // The binding's fixed limit and period are the units and window the
    // edge splits every budget into (edgehose_shared::rate_limit).
    let limiter = format!(
        "{} requests/{}s",
        edgehose_shared::rate_limit::UNITS,
        edgehose_shared::rate_limit::PERIOD_S
    );
    assert!(
        text.lines()
            .any(|l| l.contains("env.RATE_LIMITER") && l.contains(&limiter)),
        "RATE_LIMITER is not {limiter}:\n{text}"
    );
    let files: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(files.iter().any(|f| f.ends_with(".wasm")), "{files:?}");
    assert!(files.iter().any(|f| f == "shim.js"), "{files:?}");
    let _ = std::fs::remove_dir_all(&out);
}

/// The value of `name = ...` in wrangler.toml, quotes trimmed.
fn setting(toml: &str, name: &str) -> String {
    toml.lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == name)
        .map(|(_, v)| v.trim().trim_matches('"').to_owned())
        .unwrap_or_else(|| panic!("{name} is not set in wrangler.toml"))
}

/// Each `[[queues.consumers]]` table of wrangler.toml as its `key = value` pairs.
fn consumers(toml: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut out = Vec::new();
    let mut current: Option<std::collections::BTreeMap<String, String>> = None;
    for line in toml.lines().map(str::trim) {
        if line.starts_with('[') {
            out.extend(current.take());
            if line == "[[queues.consumers]]" {
                current = Some(Default::default());
            }
        } else if let (Some(c), Some((k, v))) = (current.as_mut(), line.split_once('='))
            && !line.starts_with('#')
        {
            c.insert(k.trim().to_owned(), v.trim().trim_matches('"').to_owned());
        }
    }
    out.extend(current);
    out
}

#[test]
fn what_the_events_queues_give_up_is_archived_and_the_archive_outlasts_an_r2_outage() {
    let toml = std::fs::read_to_string(tools::repo_root().join("wrangler.toml")).unwrap();
    let dlq = setting(&toml, "DEAD_LETTER_QUEUE_NAME");
    let all = consumers(&toml);
    let (archive, events): (Vec<_>, Vec<_>) = all.iter().partition(|c| c["queue"] == dlq);
    assert_eq!(archive.len(), 1, "one consumer archives the dead-letter queue: {all:?}");
    assert!(!events.is_empty());
    for c in &events {
        assert_eq!(
            c.get("dead_letter_queue"),
            Some(&dlq),
            "{c:?}: Cloudflare deletes what it gives up on without one"
        );
    }
    // The archive's consumer retries with growing delays (a minute, doubling
    // to 12 hours): its max_retries span longer than a queue keeps messages
    // by default (4 days), so an R2 outage cannot burn them.
    let retries: u32 = archive[0]["max_retries"].parse().unwrap();
    let span: u64 = (1..=retries)
        .map(|n| u64::from(edgehose_shared::requeue::redelivery_delay_seconds(n)))
        .sum();
    assert!(span > 4 * 24 * 3600, "{retries} retries span only {span} s");
}

#[test]
fn make_dev_runs_the_queue_window_that_deploys() {
    let toml = std::fs::read_to_string(tools::repo_root().join("wrangler.toml")).unwrap();
    assert_eq!(setting(&toml, "FORWARD_MODE"), "queue");
    assert_eq!(
        setting(&toml, "QUEUE_WINDOW_MS"),
        edgehose_local::cloudflare::miniflare::DEFAULT_QUEUE_WINDOW_MS.to_string()
    );
}
