//! `edgehose dev`, the README's first command, as a user runs it: every
//! piece started, both paths answering a browser alike, posted events landed
//! in the data directory, and Ctrl-C stopping everything it started.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use edgehose_local::aws::firehose::store::objects;
use edgehose_local::tools::{free_port, http_get};
use edgehose_tests::browser::drive;
use edgehose_tests::events::{post, wait_for};
use edgehose_tests::workspace_binary;

/// Sends Ctrl-C the way a terminal does: SIGINT to `child`'s whole process
/// group (it was started as the group's leader), with the shell's own
/// `kill` (a minimal system may have no kill binary).
fn ctrl_c(child: &Child) {
    let kill = Command::new("sh")
        .args(["-c", &format!("kill -INT -{}", child.id())])
        .status()
        .unwrap();
    assert!(kill.success());
}

/// Stops `dev` the way a user would if the test fails half-way, so its
/// children (workerd, the functions) do not outlive the test.
struct StopOnDrop(Child);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            ctrl_c(&self.0);
            if !wait_for(Duration::from_secs(30), || !matches!(self.0.try_wait(), Ok(None))) {
                let _ = self.0.kill();
            }
        }
    }
}

/// A running `edgehose dev` with its ports, data directory and output.
struct Dev {
    process: StopOnDrop,
    edge: String,
    api: String,
    ports: [u16; 3],
    data: std::path::PathBuf,
    log: std::path::PathBuf,
}

impl Dev {
    /// Starts `edgehose dev` (with `extra` flags) as a user's shell does, in
    /// a process group of its own, and waits until both paths answer.
    fn start(extra: &[&str]) -> Self {
        let data = std::env::temp_dir().join(format!("edgehose-dev-{}", uuid::Uuid::new_v4()));
        let log = data.with_extension("log");
        let ports = [free_port().unwrap(), free_port().unwrap(), free_port().unwrap()];
        let bin = workspace_binary("edgehose");
        let mut command = Command::new(&bin);
        // Its own process group, as a shell gives a foreground job.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command
            .arg("dev")
            .args(["--port", &ports[0].to_string()])
            .args(["--api-port", &ports[1].to_string()])
            .args(["--firehose-port", &ports[2].to_string()])
            .args(["--buffer-secs", "1", "--quiet"])
            .args(extra)
            .arg("--data-dir")
            .arg(&data)
            // The functions built beside this test, not a release build.
            .env("EDGEHOSE_BIN_DIR", bin.parent().unwrap())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::OpenOptions::new().append(true).open(&log).unwrap())
            .spawn()
            .unwrap();
        let mut dev = Self {
            process: StopOnDrop(child),
            edge: format!("http://127.0.0.1:{}", ports[0]),
            api: format!("http://127.0.0.1:{}", ports[1]),
            ports,
            data,
            log,
        };
        let (edge, api, log) = (dev.edge.clone(), dev.api.clone(), dev.log.clone());
        let up = wait_for(Duration::from_secs(180), || {
            let exited = dev.process.0.try_wait().unwrap().is_some();
            assert!(
                !exited,
                "dev exited:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            http_get(&format!("{edge}/healthz")).is_ok() && http_get(&format!("{api}/healthz")).is_ok()
        });
        assert!(up, "dev did not come up:\n{}", dev.output());
        dev
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Ctrl-C, a wait for everything to stop, then its files removed.
    fn stop_and_remove(mut self) {
        ctrl_c(&self.process.0);
        let stopped = wait_for(Duration::from_secs(60), || self.process.0.try_wait().unwrap().is_some());
        assert!(stopped, "dev did not stop:\n{}", self.output());
        let _ = std::fs::remove_dir_all(&self.data);
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Whether some object in the data directory `data` holds `id`.
fn landed_in(data: &std::path::Path, id: &str) -> bool {
    objects(data)
        .iter()
        .filter(|p| p.extension().is_none_or(|e| e != "log"))
        .any(|p| std::fs::read_to_string(p).unwrap_or_default().contains(id))
}

#[test]
fn dev_runs_both_paths_lands_their_events_and_stops_everything_on_ctrl_c() {
    let mut d = Dev::start(&[]);
    let (edge, api, data) = (d.edge.clone(), d.api.clone(), d.data.clone());
    let [edge_port, api_port, firehose_port] = d.ports;
    let log = d.log.clone();
    let output = move || std::fs::read_to_string(&log).unwrap_or_default();
    let run = uuid::Uuid::new_v4().to_string();
    for (path, base) in [("edge", &edge), ("apigw", &api)] {
        let body = format!(r#"{{"event":"click","message_id":"{run}-{path}"}}"#);
        let r = post(
            base,
            body.as_bytes(),
            &[("content-type", "text/plain"), ("origin", "https://shop.example")],
        );
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert!(
            r.header("access-control-allow-origin").is_some(),
            "{path} answers a browser's origin like the other path"
        );
    }
    let landed = |id: &str| landed_in(&data, id);
    let both = wait_for(Duration::from_secs(60), || {
        landed(&format!("{run}-edge")) && landed(&format!("{run}-apigw"))
    });
    assert!(both, "events did not land in {}:\n{}", data.display(), output());

    // Ten more, acknowledged and still in the edge's queue when Ctrl-C comes:
    // they must land before dev stops.
    let last: Vec<String> = (0..10).map(|i| format!("{run}-last-{i}")).collect();
    for id in &last {
        let r = post(
            &edge,
            format!(r#"{{"event":"click","message_id":"{id}"}}"#).as_bytes(),
            &[],
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let asked = std::time::Instant::now();
    ctrl_c(&d.process.0);
    let stopped = wait_for(Duration::from_secs(60), || d.process.0.try_wait().unwrap().is_some());
    assert!(stopped, "dev did not stop on Ctrl-C:\n{}", output());
    println!("dev stopped {:.1} s after Ctrl-C", asked.elapsed().as_secs_f64());
    for id in &last {
        assert!(
            landed(id),
            "{id}, acknowledged before Ctrl-C, never landed:\n{}",
            output()
        );
    }
    assert!(d.process.0.wait().unwrap().success(), "{}", output());
    // The last line's counts are final: every record received was settled.
    let last = output().lines().find(|l| l.starts_with("stopped.")).map(str::to_owned);
    let counts: Vec<u64> = last
        .as_deref()
        .unwrap_or_else(|| panic!("no stopped line:\n{}", output()))
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    assert_eq!(counts[0], counts[1] + counts[2] + counts[3], "{last:?}");
    for port in [edge_port, api_port, firehose_port] {
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "something still listens on {port} after dev stopped"
        );
    }
    // The functions are stopped as Lambda stops a sandbox, not left to find
    // their Runtime API gone (lambda_runtime panics on that).
    for function in ["transform.log", "ingest-api.log"] {
        let text =
            std::fs::read_to_string(data.join(function)).unwrap_or_else(|e| panic!("{function}: {e}\n{}", output()));
        assert!(!text.contains("panicked"), "{function} after Ctrl-C:\n{text}");
    }
    let transform_log = std::fs::read_to_string(data.join("transform.log")).unwrap();
    assert!(
        transform_log.contains("schemas compiled"),
        "transform.log is the function's own log:\n{transform_log}"
    );
    let _ = std::fs::remove_dir_all(&data);
    let _ = std::fs::remove_file(&d.log);
}

#[test]
fn dev_breaks_cloudflares_side_by_flags_and_at_run_time_and_nothing_is_lost() {
    // Every queue write refused from the start: each window goes straight
    // to firehose-local instead.
    let d = Dev::start(&["--queue-refuse", "1", "--memory-ceiling-mb", "100"]);
    let run = uuid::Uuid::new_v4().to_string();
    let faults = |d: &Dev| -> serde_json::Value {
        serde_json::from_str(&http_get(&format!("{}/_edgehose/faults", d.edge)).unwrap()).unwrap()
    };
    let body = format!(r#"{{"event":"refused","message_id":"{run}-1"}}"#);
    assert_eq!(post(&d.edge, body.as_bytes(), &[]).status, 200);
    assert!(
        wait_for(Duration::from_secs(60), || landed_in(&d.data, &format!("{run}-1"))),
        "{}",
        d.output()
    );
    let f = faults(&d);
    assert!(f["stats"]["queue_refused"].as_u64().unwrap() >= 1, "{f}");
    assert_eq!(f["plan"]["memory_ceiling_mb"], 100, "{f}");
    // Changed while running: the queues are back, R2 fails; a wrong field is named.
    let put = |body: &str| {
        edgehose_local::http::send(
            http::Request::put(format!("{}/_edgehose/faults", d.edge))
                .body(body.as_bytes().to_vec())
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(put(r#"{"queue_refuse":0,"r2_fail":1}"#).status, 200);
    let wrong = put(r#"{"queue_refuse":2}"#);
    assert_eq!(wrong.status, 400, "{}", wrong.text());
    assert!(wrong.text().contains("queue_refuse"), "{}", wrong.text());
    let body = format!(r#"{{"event":"queued","message_id":"{run}-2"}}"#);
    assert_eq!(post(&d.edge, body.as_bytes(), &[]).status, 200);
    assert!(
        wait_for(Duration::from_secs(60), || landed_in(&d.data, &format!("{run}-2"))),
        "{}",
        d.output()
    );
    assert!(faults(&d)["stats"]["queue_writes"].as_u64().unwrap() >= 2);
    assert_eq!(faults(&d)["stats"]["wait_until_cut"], 0);
    d.stop_and_remove();
}

#[test]
fn dev_partitions_by_event_name_and_day_when_asked() {
    let d = Dev::start(&["--partitioning"]);
    let run = uuid::Uuid::new_v4().to_string();
    for name in ["signup", "checkout"] {
        let body = format!(r#"{{"event":"{name}","message_id":"{run}-{name}"}}"#);
        assert_eq!(post(&d.edge, body.as_bytes(), &[]).status, 200);
    }
    let under = |name: &str| {
        objects(&d.data).iter().any(|p| {
            let rel = p.strip_prefix(&d.data).unwrap().to_string_lossy().into_owned();
            rel.starts_with(&format!("events/event_name={name}/date="))
                && std::fs::read_to_string(p)
                    .unwrap_or_default()
                    .contains(&format!("{run}-{name}"))
        })
    };
    let both = wait_for(Duration::from_secs(60), || under("signup") && under("checkout"));
    assert!(both, "{:?}\n{}", objects(&d.data), d.output());
    d.stop_and_remove();
}

#[test]
fn dev_with_destination_iceberg_upserts_both_paths_events_and_prints_how_to_read_them() {
    let d = Dev::start(&["--destination", "iceberg"]);
    let run = uuid::Uuid::new_v4().to_string();
    for (base, n) in [(&d.edge, 0), (&d.api, 1), (&d.edge, 0)] {
        let body = format!(r#"{{"event":"click","message_id":"{run}-{n}"}}"#);
        assert_eq!(post(base, body.as_bytes(), &[]).status, 200);
    }
    // The command `dev` prints, run from the repository as a user would.
    let output = d.output();
    let command = output
        .lines()
        .map(str::trim)
        .find(|l| l.contains("cli/local/py/iceberg_read.py"))
        .unwrap_or_else(|| panic!("dev printed no way to read the table:\n{output}"))
        .to_owned();
    assert!(command.ends_with("edgehose.events_v1"), "{command}");
    // All three rows written (the two copies of the edge's event among them).
    let stats = format!("http://127.0.0.1:{}/_edgehose/stats", d.ports[2]);
    let written = wait_for(Duration::from_secs(60), || {
        http_get(&stats)
            .ok()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .is_some_and(|s| s["lines_delivered"].as_u64() >= Some(3))
    });
    assert!(written, "{:?}\n{}", http_get(&stats), d.output());
    let mut rows = String::new();
    let both = wait_for(Duration::from_secs(60), || {
        let out = Command::new("sh")
            .args(["-c", &command])
            .current_dir(edgehose_local::tools::repo_root())
            .output()
            .unwrap();
        rows = String::from_utf8_lossy(&out.stdout).into_owned();
        rows.contains(&format!("{run}-0")) && rows.contains(&format!("{run}-1"))
    });
    assert!(both, "{rows}\n{}", d.output());
    // The edge's event was posted twice: one row.
    let copies = rows
        .lines()
        .filter(|l| l.contains(&format!(r#""id": "{run}-0""#)))
        .count();
    assert_eq!(copies, 1, "{rows}");
    d.stop_and_remove();
}

#[test]
fn dev_with_regions_lands_each_visitors_events_in_their_regions_firehose() {
    let d = Dev::start(&["--regions", "eu,us"]);
    let run = uuid::Uuid::new_v4().to_string();
    for country in ["DE", "US"] {
        let body = format!(r#"{{"event":"click","message_id":"{run}-{country}"}}"#);
        let blob = edgehose_tests::regions::cf_blob(country);
        let r = post(&d.edge, body.as_bytes(), &[("mf-cf-blob", blob.as_str())]);
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // The banner names each region's firehose-local and where it writes.
    let output = d.output();
    assert!(output.contains("regions (eu: EEA; us: *)"), "{output}");
    let eu = d.data.join("eu");
    let in_main = |id: &str| {
        objects(&d.data)
            .iter()
            .filter(|p| !p.starts_with(&eu) && p.extension().is_none_or(|e| e != "log"))
            .any(|p| std::fs::read_to_string(p).unwrap_or_default().contains(id))
    };
    let (de, us) = (format!("{run}-DE"), format!("{run}-US"));
    let both = wait_for(Duration::from_secs(60), || landed_in(&eu, &de) && in_main(&us));
    assert!(both, "{:?}\n{}", objects(&d.data), d.output());
    assert!(!in_main(&de), "the German visitor's event left the EU region");
    assert!(!landed_in(&eu, &us), "the American visitor's event is in the EU region");
    d.stop_and_remove();
}

#[test]
fn dev_with_sink_kinesis_lands_the_edges_events_through_the_stream() {
    let mut d = Dev::start(&["--sink", "kinesis"]);
    let run = uuid::Uuid::new_v4().to_string();
    for (path, base) in [("edge", &d.edge), ("apigw", &d.api)] {
        let body = format!(
            r#"[{{"event":"click","message_id":"{run}-{path}-1"}},{{"event":"click","message_id":"{run}-{path}-2"}}]"#
        );
        let r = post(base, body.as_bytes(), &[("content-type", "application/json")]);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
    }
    let ids: Vec<String> = ["edge-1", "edge-2", "apigw-1", "apigw-2"]
        .iter()
        .map(|s| format!("{run}-{s}"))
        .collect();
    let landed = wait_for(Duration::from_secs(90), || ids.iter().all(|id| landed_in(&d.data, id)));
    assert!(landed, "events did not land in {}:\n{}", d.data.display(), d.output());
    assert!(d.output().contains("sink kinesis"), "{}", d.output());
    ctrl_c(&d.process.0);
    let stopped = wait_for(Duration::from_secs(60), || d.process.0.try_wait().unwrap().is_some());
    assert!(stopped && d.process.0.wait().unwrap().success(), "{}", d.output());
    let _ = std::fs::remove_dir_all(&d.data);
}

#[test]
fn dev_with_sink_sqs_puts_the_edges_events_in_the_queue() {
    use edgehose_local::aws::json_call;
    let mut d = Dev::start(&["--sink", "sqs"]);
    let run = uuid::Uuid::new_v4().to_string();
    let body = format!(r#"[{{"event":"click","message_id":"{run}-1"}},{{"event":"click","message_id":"{run}-2"}}]"#);
    let r = post(&d.edge, body.as_bytes(), &[("content-type", "application/json")]);
    assert_eq!(r.status, 200, "{}", r.text());
    // The banner names moto's endpoint and the queue: read it as a worker would.
    let output = d.output();
    let line = output
        .lines()
        .find(|l| l.contains("sqs receive-message"))
        .unwrap_or_else(|| panic!("no queue in the banner:\n{output}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let after = |flag: &str| words[words.iter().position(|w| *w == flag).unwrap() + 1];
    let (endpoint, queue) = (after("--endpoint-url"), after("--queue-url"));
    let key = edgehose_shared::sigv4::sign::Credentials::new("AKIDEDGEHOSELOCAL", "edgehose-local-secret");
    let mut bodies = String::new();
    let both = wait_for(Duration::from_secs(30), || {
        let got = json_call::call(
            endpoint,
            json_call::SQS,
            "ReceiveMessage",
            &serde_json::json!({"QueueUrl": queue, "MaxNumberOfMessages": 10}),
            "us-east-1",
            &key,
        )
        .unwrap();
        for m in got["Messages"].as_array().into_iter().flatten() {
            bodies.push_str(m["Body"].as_str().unwrap());
        }
        bodies.contains(&format!("{run}-1")) && bodies.contains(&format!("{run}-2"))
    });
    assert!(both, "the queue holds {bodies:?}\n{}", d.output());
    ctrl_c(&d.process.0);
    let stopped = wait_for(Duration::from_secs(60), || d.process.0.try_wait().unwrap().is_some());
    assert!(stopped && d.process.0.wait().unwrap().success(), "{}", d.output());
    let _ = std::fs::remove_dir_all(&d.data);
}

/// `edgehose receipts` against a running `dev`: its report as JSON, and
/// whether `--check` passed (with what it said when it did not).
fn receipts(d: &Dev, extra: &[&str]) -> (serde_json::Value, Result<(), String>) {
    let out = Command::new(workspace_binary("edgehose"))
        .arg("receipts")
        .args(["--url", &d.edge])
        .args(["--logs-endpoint", &format!("http://127.0.0.1:{}", d.ports[2])])
        .args(["--since", "20m", "--settle", "0s", "--json", "--check", "--verify"])
        .arg(&d.data)
        .args(extra)
        .output()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "receipts printed no JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let checked = if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    };
    (report, checked)
}

/// A report's column summed over every key and minute.
fn total(report: &serde_json::Value, column: &str) -> u64 {
    report["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l[column].as_u64().unwrap_or(0))
        .sum()
}

#[test]
fn receipts_balance_through_faults_trace_finds_each_fate_and_the_check_fails_when_landed_objects_vanish() {
    // Direct mode: a call to firehose-local per window, so its faults are met.
    let d = Dev::start(&[
        "--mode",
        "direct",
        "--write-keys",
        "web:wk_web_0123456789,bikes:wk_bikes_0123456789",
        "--sources",
        r#"{"bike":{"id_field":"uuid","keys":["bikes"]}}"#,
    ]);
    let put = |url: String, body: &str| {
        let r = edgehose_local::http::send(http::Request::put(url).body(body.as_bytes().to_vec()).unwrap()).unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
    };
    let firehose_faults = format!("http://127.0.0.1:{}/_edgehose/faults", d.ports[2]);
    put(
        firehose_faults.clone(),
        r#"{"partial":0.2,"throttle":0.1,"lost_response":0.1,"errors":0.05}"#,
    );
    put(format!("{}/_edgehose/faults", d.edge), r#"{"r2_fail":0.3}"#);
    let run = uuid::Uuid::new_v4().to_string();
    let json = [("content-type", "application/json")];
    let web = [
        ("content-type", "application/json"),
        ("x-edgehose-key", "wk_web_0123456789"),
    ];
    let bikes = [
        ("content-type", "application/json"),
        ("x-edgehose-key", "wk_bikes_0123456789"),
    ];
    let post_at = |path: &str, body: &[u8], headers: &[(&str, &str)]| {
        let mut b = http::Request::post(format!("{}{path}", d.edge));
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        edgehose_local::http::send(b.body(body.to_vec()).unwrap())
            .unwrap()
            .status
    };
    let send = |i: usize| {
        // Schema v1: two valid, one invalid; a device source; Segment with its key in the body.
        let v1 = format!(
            r#"[{{"event":"click","message_id":"{run}-w{i}"}},{{"event":"view"}},{{"message_id":"{run}-x{i}","nope":1}}]"#
        );
        assert_eq!(post(&d.edge, v1.as_bytes(), &web).status, 200);
        let bike = format!(r#"{{"uuid":"{run}-b{i}","speed":3}}"#);
        assert_eq!(post_at("/v1/ingest/bike", bike.as_bytes(), &bikes), 200);
        let segment = format!(
            r#"{{"writeKey":"wk_web_0123456789","batch":[{{"type":"track","event":"x","messageId":"{run}-s{i}","anonymousId":"a"}}]}}"#
        );
        assert_eq!(post_at("/v1/batch", segment.as_bytes(), &json), 200);
    };
    for i in 0..30 {
        send(i);
    }
    // A refusal is counted, never accepted.
    assert_eq!(post(&d.edge, b"{}", &json).status, 401);
    // Firehose down past what a window may wait: those events are dead-lettered
    // (R2 well again, so that no archive write of theirs fails and their
    // messages wait the outage out instead: the archive must hold one).
    put(format!("{}/_edgehose/faults", d.edge), r#"{"r2_fail":0}"#);
    put(firehose_faults.clone(), r#"{"outage_secs":40}"#);
    for i in 30..33 {
        send(i);
    }
    std::thread::sleep(Duration::from_secs(42));
    put(
        firehose_faults.clone(),
        r#"{"partial":0,"throttle":0,"lost_response":0,"errors":0}"#,
    );
    put(format!("{}/_edgehose/faults", d.edge), r#"{"r2_fail":0}"#);
    // An event the outage dead-lettered, found in the archive by its id.
    let fates = |id: &str| -> Vec<String> {
        trace(&d, id)["found"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["fate"].as_str().unwrap().to_owned())
            .collect()
    };
    let dead = (30..33)
        .flat_map(|i| [format!("{run}-w{i}"), format!("{run}-b{i}"), format!("{run}-s{i}")])
        .find(|id| fates(id) == ["dead_lettered"])
        .expect("an event of the outage is in the archive");
    // Published where the template's alarms watch (moto's CloudWatch here).
    let moto = edgehose_local::aws::moto::Moto::start().unwrap();
    let (before, _) = receipts(&d, &["--put-metrics", "--metrics-endpoint", &moto.endpoint()]);
    let archived = total(&before, "dead_lettered") - total(&before, "redriven");
    assert!(archived > 0, "{before:#}");
    assert_eq!(cloudwatch_maximum(&moto.endpoint(), "DeadLettered"), Some(archived));
    assert_eq!(cloudwatch_maximum(&moto.endpoint(), "Lost"), Some(0));
    let redrive = Command::new(workspace_binary("edgehose"))
        .args(["redrive", "--url", &d.edge])
        .output()
        .unwrap();
    assert!(redrive.status.success(), "{}", String::from_utf8_lossy(&redrive.stderr));
    let mut last = (serde_json::Value::Null, Err(String::new()));
    let settled = wait_for(Duration::from_secs(120), || {
        last = receipts(&d, &[]);
        last.1.is_ok() && total(&last.0, "open") == 0
    });
    assert!(
        settled,
        "receipts never balanced: {:#}\n{:?}\n{}",
        last.0,
        last.1,
        d.output()
    );
    let report = &last.0;
    // 33 rounds: web 3 + 1 a round, bikes 1; the 401 names no key.
    assert_eq!(total(report, "accepted"), 33 * 5, "{report:#}");
    assert_eq!(total(report, "rejected"), 33, "{report:#}");
    assert_eq!(total(report, "landed"), 33 * 4, "{report:#}");
    assert!(
        total(report, "dead_lettered") > 0,
        "the outage dead-lettered some: {report:#}"
    );
    assert_eq!(total(report, "redriven"), total(report, "dead_lettered"), "{report:#}");
    assert_eq!(total(report, "refused"), 1, "{report:#}");
    let keys: std::collections::BTreeSet<&str> = report["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["accepted"].as_u64() > Some(0))
        .map(|l| l["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys.into_iter().collect::<Vec<_>>(), ["bikes", "web"]);
    // The page a person looks at shows the same, as Chromium draws it.
    let page = d.data.with_extension("receipts.html");
    let (_, checked) = receipts(&d, &["--html", page.to_str().unwrap()]);
    assert!(checked.is_ok(), "{checked:?}");
    let shown = drive(
        &serde_json::json!({"scenario": "report", "endpoint": "file://", "page": format!("file://{}", page.display())}),
    )
    .unwrap()["report"]
        .clone();
    assert_eq!(shown["passes"], "true", "{shown:#}");
    for key in ["bikes", "web"] {
        let lines: Vec<&serde_json::Value> = report["lines"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["key"] == key)
            .collect();
        let section = shown["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["key"] == key)
            .unwrap();
        assert!(section["width"].as_f64().unwrap() > 0.0 && section["height"].as_f64().unwrap() > 0.0);
        let sum = |c: &str| lines.iter().map(|l| l[c].as_u64().unwrap()).sum::<u64>().to_string();
        assert_eq!(section["total"][1], sum("accepted"), "{key}: {section:#}");
        assert_eq!(section["total"][2], sum("landed"), "{key}: {section:#}");
        assert_eq!(section["total"][3], sum("rejected"), "{key}: {section:#}");
        for (bar, line) in section["minutes"].as_array().unwrap().iter().zip(&lines) {
            assert_eq!(bar["minute"], line["minute"]);
            assert_eq!(bar["accepted"], line["accepted"]);
            let drawn = |class: &str| bar["drawn"][class].as_u64().unwrap_or(0);
            assert_eq!(drawn("landed"), line["landed"].as_u64().unwrap(), "{key}: {bar}");
            assert_eq!(drawn("rejected"), line["rejected"].as_u64().unwrap(), "{key}: {bar}");
            assert_eq!(drawn("open"), 0, "balanced: nothing open is drawn, {bar}");
        }
    }
    let _ = std::fs::remove_file(&page);
    // One key alone balances too.
    let (bikes_only, checked) = receipts(&d, &["--key", "bikes"]);
    assert!(checked.is_ok(), "{checked:?}");
    assert_eq!(total(&bikes_only, "accepted"), 33);
    // Each fate by its id: landed, rejected, dead-lettered and redriven, never sent.
    assert_eq!(fates(&format!("{run}-w0")), ["landed"]);
    assert_eq!(fates(&format!("{run}-x0")), ["rejected"]);
    let mut redriven = fates(&dead);
    redriven.sort();
    assert_eq!(redriven, ["landed", "redriven"], "{dead}");
    let never = trace(&d, &format!("{run}-never"));
    assert!(never["found"].as_array().unwrap().is_empty(), "{never:#}");
    let looked = never["looked"].to_string();
    for place in ["objects of stream edgehose-events", "buffer", "queues", "R2"] {
        assert!(looked.contains(place), "{place} is among the places looked: {never:#}");
    }
    // Landed objects deleted behind its back: the check fails and says which key.
    let landed: Vec<_> = objects(&d.data)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("edgehose-events-1-")
                && !p.to_string_lossy().contains("processing-failed")
        })
        .collect();
    assert!(!landed.is_empty());
    for p in &landed {
        std::fs::remove_file(p).unwrap();
    }
    let (_, checked) = receipts(&d, &[]);
    let why = checked.expect_err("the check passed with the landed objects gone");
    assert!(why.contains("not accounted for") && why.contains("key web"), "{why}");
    // Firehose down and R2 failing: a window's dead letters go to the
    // events queue, where its consumer keeps trying: still queued.
    put(firehose_faults, r#"{"outage_secs":300}"#);
    put(format!("{}/_edgehose/faults", d.edge), r#"{"r2_fail":1}"#);
    let queued = format!(r#"{{"event":"later","message_id":"{run}-q"}}"#);
    assert_eq!(post(&d.edge, queued.as_bytes(), &web).status, 200);
    let in_queue = wait_for(Duration::from_secs(90), || {
        fates(&format!("{run}-q")).contains(&"queued".to_owned())
    });
    assert!(in_queue, "{:#}\n{}", trace(&d, &format!("{run}-q")), d.output());
    d.stop_and_remove();
}

/// The largest value of the last hour of `metric` (namespace edgehose,
/// Source=edge) that CloudWatch at `endpoint` holds.
fn cloudwatch_maximum(endpoint: &str, metric: &str) -> Option<u64> {
    let now = edgehose_local::clock::now();
    let body = format!(
        "Action=GetMetricStatistics&Version=2010-08-01&Namespace=edgehose&MetricName={metric}&Dimensions.member.1.Name=Source&Dimensions.member.1.Value=edge&StartTime={}&EndTime={}&Period=3600&Statistics.member.1=Maximum",
        now.add_millis(-3_600_000).to_rfc3339().replace(':', "%3A"),
        now.add_millis(60_000).to_rfc3339().replace(':', "%3A"),
    );
    let host = endpoint.trim_start_matches("http://");
    let mut request = http::Request::post(format!("{endpoint}/"))
        .header("host", host)
        .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
        .body(body.into_bytes())
        .unwrap();
    let key = edgehose_shared::sigv4::sign::Credentials::new("AKIDTEST", "secret");
    edgehose_shared::sigv4::sign::sign(&mut request, &key, "us-east-1", "monitoring", now).unwrap();
    let answer = edgehose_local::http::send(request).unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text());
    let text = answer.text();
    let at = text.find("<Maximum>")? + "<Maximum>".len();
    let end = text[at..].find('<')? + at;
    text[at..end].parse::<f64>().ok().map(|v| v as u64)
}

/// `edgehose trace <id> --json` against a running `dev`.
fn trace(d: &Dev, id: &str) -> serde_json::Value {
    let out = Command::new(workspace_binary("edgehose"))
        .args(["trace", id, "--url", &d.edge, "--since", "30m", "--json", "--data-dir"])
        .arg(&d.data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}
