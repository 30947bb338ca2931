//! `edgehose dev`, the README's first command, as a user runs it: every
//! piece started, both paths answering a browser alike, posted events landed
//! in the data directory, and Ctrl-C stopping everything it started.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use edgehose_cli::firehose::store::{objects, uuid};
use edgehose_tests::events::{post, wait_for};
use edgehose_tests::tools::{free_port, http_get};
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

#[test]
fn dev_runs_both_paths_lands_their_events_and_stops_everything_on_ctrl_c() {
    let data = std::env::temp_dir().join(format!("edgehose-dev-{}", uuid()));
    let log = data.with_extension("log");
    let (edge_port, api_port, firehose_port) = (free_port().unwrap(), free_port().unwrap(), free_port().unwrap());
    let bin = workspace_binary("edgehose");
    let mut command = Command::new(&bin);
    // Its own process group, as a shell gives a foreground job.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let dev = command
        .arg("dev")
        .args(["--port", &edge_port.to_string()])
        .args(["--api-port", &api_port.to_string()])
        .args(["--firehose-port", &firehose_port.to_string()])
        .args(["--buffer-secs", "1", "--quiet", "--data-dir"])
        .arg(&data)
        // The functions built beside this test, not a release build.
        .env("EDGEHOSE_BIN_DIR", bin.parent().unwrap())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::OpenOptions::new().append(true).open(&log).unwrap())
        .spawn()
        .unwrap();
    let mut dev = StopOnDrop(dev);
    let output = || std::fs::read_to_string(&log).unwrap_or_default();
    let edge = format!("http://127.0.0.1:{edge_port}");
    let api = format!("http://127.0.0.1:{api_port}");
    let up = wait_for(Duration::from_secs(180), || {
        assert!(dev.0.try_wait().unwrap().is_none(), "dev exited:\n{}", output());
        http_get(&format!("{edge}/healthz")).is_ok() && http_get(&format!("{api}/healthz")).is_ok()
    });
    assert!(up, "dev did not come up:\n{}", output());

    let run = uuid();
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
    let landed = |id: &str| {
        objects(&data)
            .iter()
            .filter(|p| p.extension().is_none_or(|e| e != "log"))
            .any(|p| std::fs::read_to_string(p).unwrap_or_default().contains(id))
    };
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
    ctrl_c(&dev.0);
    let stopped = wait_for(Duration::from_secs(60), || dev.0.try_wait().unwrap().is_some());
    assert!(stopped, "dev did not stop on Ctrl-C:\n{}", output());
    println!("dev stopped {:.1} s after Ctrl-C", asked.elapsed().as_secs_f64());
    for id in &last {
        assert!(
            landed(id),
            "{id}, acknowledged before Ctrl-C, never landed:\n{}",
            output()
        );
    }
    assert!(dev.0.wait().unwrap().success(), "{}", output());
    assert!(output().contains("stopped."), "{}", output());
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
    let _ = std::fs::remove_file(&log);
}
