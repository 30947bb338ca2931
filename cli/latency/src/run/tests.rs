//! A whole measurement against a local target that accepts every event and
//! "delivers" it to a directory, and one against a closed port.

use std::time::Duration;

use crate::chart;
use crate::probe::{self, Endpoint};
use crate::run::{self, Mode, Plan, Target};
use crate::sink::{Place, Sink};

/// A target that accepts every event and "delivers" it to `sink` as an
/// object holding its line, as firehose-local would.
fn accepting_server(sink: std::path::PathBuf) -> String {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/events", server.server_addr().to_ip().unwrap());
    std::thread::spawn(move || {
        for (n, mut req) in server.incoming_requests().enumerate() {
            let mut body = String::new();
            let _ = std::io::Read::read_to_string(req.as_reader(), &mut body);
            let status = if body.contains("\"event\":\"click\"") { 200 } else { 400 };
            // Written aside and renamed into place, as Firehose's objects appear whole.
            let tmp = sink.join(format!(".object-{n}"));
            std::fs::write(&tmp, format!("{body}\n")).unwrap();
            std::fs::rename(&tmp, sink.join(format!("object-{n}"))).unwrap();
            let _ = req.respond(tiny_http::Response::from_string("{\"accepted\":1}").with_status_code(status));
        }
    });
    url
}

#[test]
fn a_run_measures_every_target_in_both_modes_finds_events_in_the_sink_and_draws_them() {
    let dir = std::env::temp_dir().join(format!("edgehose-latency-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let sink = dir.join("sink");
    std::fs::create_dir_all(&sink).unwrap();
    let url = accepting_server(sink.clone());
    let target = |name: &str| Target {
        name: name.to_owned(),
        url: url.clone(),
        endpoint: Endpoint::parse(&url).unwrap(),
        headers: Vec::new(),
    };
    let plan = Plan {
        targets: vec![target("edge"), target("apigw")],
        requests: 6,
        modes: vec![Mode::NewConnection, Mode::KeepAlive],
        warmup: 1,
        headers: vec![("x-edgehose-key".into(), "k".into())],
        timeout: Duration::from_secs(10),
        tls: probe::tls_config(None).unwrap(),
        sink: Some(Place::Dir(sink)),
        sink_timeout: Duration::from_secs(10),
        run: run::run_id(),
    };
    let watch = Sink::watch(plan.sink.as_ref().unwrap(), &plan.run, plan.tls.clone(), plan.timeout).unwrap();
    let mut ticks = 0;
    let mut samples = run::measure(&plan, |_| ticks += 1);
    let mut last = (0, 0);
    run::await_sink(&watch, &mut samples, plan.sink_timeout, |seen, of| last = (seen, of));
    assert_eq!((samples.len(), ticks, last), (24, 24, (24, 24)));
    assert!(samples.iter().all(|s| s.ok() && s.sink.is_some()), "{samples:?}");
    let ids: std::collections::BTreeSet<&str> = samples.iter().map(|s| s.message_id.as_str()).collect();
    assert_eq!(ids.len(), 24, "every request sends its own event");
    let report = run::report(&plan, &samples);
    for m in &report.modes {
        for t in &m.targets {
            assert_eq!((t.ok, t.failed, t.missing_from_sink), (6, 0, 0), "{t:?}");
            assert_eq!(t.metrics["ttfb"].count, 6);
            assert!(t.metrics.contains_key("sink"));
        }
        assert_eq!(m.ratios.len(), 1);
        assert!(m.ratios[0].ttfb_p50.is_some());
    }
    // Kept-alive requests after the first pay no connect.
    let keep = samples.iter().filter(|s| s.mode == Mode::KeepAlive);
    assert!(
        keep.filter_map(|s| s.phases)
            .all(|p| p.connect.is_zero() && p.tls.is_zero())
    );
    let text = run::render(&report);
    assert!(text.contains("new-connection") && text.contains("apigw / edge: time to first byte p50"));
    let svg = dir.join("latency.svg");
    chart::write(
        &svg,
        "test run",
        &["edge".into(), "apigw".into()],
        &plan.modes,
        &samples,
    )
    .unwrap();
    let drawn = std::fs::read_to_string(&svg).unwrap();
    assert!(drawn.starts_with("<svg") && drawn.contains("apigw, keep-alive") && drawn.contains("TLS handshake"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn failures_are_counted_with_their_reason() {
    let dir = std::env::temp_dir().join(format!("edgehose-latency-fail-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let url = format!("http://{closed}/v1/events");
    let plan = Plan {
        targets: vec![Target {
            name: "down".into(),
            url: url.clone(),
            endpoint: Endpoint::parse(&url).unwrap(),
            headers: Vec::new(),
        }],
        requests: 2,
        modes: vec![Mode::NewConnection],
        warmup: 0,
        headers: Vec::new(),
        timeout: Duration::from_secs(2),
        tls: probe::tls_config(None).unwrap(),
        sink: None,
        sink_timeout: Duration::ZERO,
        run: run::run_id(),
    };
    let report = run::report(&plan, &run::measure(&plan, |_| {}));
    let t = &report.modes[0].targets[0];
    assert_eq!((t.ok, t.failed), (0, 2));
    assert!(
        t.first_failure.as_deref().unwrap_or_default().contains("connecting to"),
        "{t:?}"
    );
    assert!(run::render(&report).contains("2 of 2 requests failed"));
    let _ = std::fs::remove_dir_all(&dir);
}
