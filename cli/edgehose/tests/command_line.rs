//! The `edgehose` binary's command line, run as a user runs it: bad values
//! are refused naming the option, settings come from the environment when
//! no flag gives them, secrets stay out of `--help`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::process::{Command, Output};

fn edgehose(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_edgehose"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("the edgehose binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn bad_values_are_refused_naming_the_option() {
    for (args, names) in [
        (&["dev", "--gzip=false"][..], "--gzip"),
        (&["dev", "--mode", "sideways"], "--mode"),
        (&["dev", "--sink", "kafka"], "--sink"),
        (&["dev", "--queue-window-ms", "2000"], "--queue-window-ms"),
        (&["dev", "--throttle", "1.5"], "--throttle"),
        (&["dev", "--queue-refuse", "1.5"], "--queue-refuse"),
        (&["dev", "--r2-fail", "half"], "--r2-fail"),
        (&["dev", "--memory-ceiling-mb", "512"], "--memory-ceiling-mb"),
        (&["dev", "--port", "70000"], "--port"),
        (&["firehose-local", "--access-key-id", "AKID"], "--secret-access-key"),
        (&["firehose-local", "--buffer-secs", "0"], "--buffer-secs"),
        (&["cost", "--events-per-request", "0"], "--events-per-request"),
        (&["cost", "--path", "carrier-pigeon"], "carrier-pigeon"),
        (&["latency", "--requests", "0"], "--requests"),
        (&["latency", "--timeout", "inf"], "--timeout"),
        (&["delay-proxy", "--upstream", "nowhere"], "--upstream"),
        (
            &["delay-proxy", "--cert-out", "x.pem", "--upstream", "127.0.0.1:1"],
            "--tls",
        ),
        (&["frobnicate"], "frobnicate"),
    ] {
        let o = edgehose(args, &[]);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(names),
            "{args:?} should name {names}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn fault_shares_that_add_up_to_more_than_one_are_refused_by_name() {
    let o = edgehose(
        &[
            "firehose-local",
            "--throttle",
            "0.6",
            "--partial",
            "0.6",
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("must not exceed 1"), "{}", stderr(&o));
}

#[test]
fn cost_prints_every_path_s_bill_as_json() {
    let o = edgehose(
        &[
            "cost",
            "--json",
            "--events-per-month",
            "1000000",
            "--events-per-request",
            "10",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let bills = v["paths"].as_array().expect("paths");
    assert_eq!(bills.len(), 5, "{v:#}");
    for b in bills {
        assert_eq!(b["events_per_month"].as_f64(), Some(1e6), "{b:#}");
        assert!(b["usd_per_month"].as_f64().is_some_and(|usd| usd > 0.0), "{b:#}");
    }
    assert_eq!(v["events_per_request"], 10);
    let o = edgehose(
        &["cost", "--path", "edge-direct", "--path", "api-gateway", "--json"],
        &[],
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let paths: Vec<&str> = v["paths"]
        .as_array()
        .expect("paths")
        .iter()
        .filter_map(|b| b["path"].as_str())
        .collect();
    assert_eq!(paths, ["edge-direct", "api-gateway"], "{v:#}");
}

#[test]
fn redrive_takes_its_key_from_the_environment() {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("a port");
    let url = format!("http://{}", server.server_addr().to_ip().expect("ip"));
    let answer = std::thread::spawn(move || {
        let req = server.recv().expect("a request");
        let auth = req
            .headers()
            .iter()
            .find(|h| h.field.equiv("authorization"))
            .map(|h| h.value.to_string());
        let body = r#"{"archived_objects":3,"more":true}"#;
        req.respond(tiny_http::Response::from_string(body)).expect("answered");
        auth
    });
    let o = edgehose(&["redrive", "--count", "--url", &url], &[("ADMIN_KEY", "key-from-env")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "3+ archived objects");
    assert_eq!(answer.join().expect("server"), Some("Bearer key-from-env".to_owned()));
}

#[test]
fn help_names_each_setting_s_variable_and_hides_secrets() {
    let o = edgehose(
        &["dev", "--help"],
        &[("ADMIN_KEY", "do-not-print-me"), ("WRITE_KEYS", "web:k1")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let help = String::from_utf8_lossy(&o.stdout);
    for var in [
        "EDGEHOSE_DATA_DIR",
        "WRITE_KEYS",
        "SOURCES",
        "PARTITIONING",
        "ADMIN_KEY",
    ] {
        assert!(help.contains(&format!("[env: {var}")), "{var} in\n{help}");
    }
    assert!(!help.contains("do-not-print-me"), "{help}");
}
