//! The edge Worker's HTTP API, running in the real runtime (Miniflare's
//! workerd): every error status, CORS, write keys, strict mode, the
//! `request.cf` metadata, misconfiguration, and recovery after a panic.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::time::Duration;

use edgehose_local::cloudflare::miniflare::{Build, Edge, EdgeOptions};
use edgehose_local::http::{Response, raw, send};
use edgehose_sample::ride_sample;
use edgehose_tests::events::{landed, post, wait_for};
use edgehose_tests::sandbox::Sandbox;

fn sandbox() -> Sandbox {
    Sandbox::start().unwrap_or_else(|e| panic!("could not start the moto sandbox: {e}"))
}

fn edge(sandbox: &Sandbox, extra: &[(&str, &str)]) -> Edge {
    Edge::start(&options(sandbox, extra)).unwrap_or_else(|e| panic!("could not start the edge Worker: {e}"))
}

/// The build with `POST /__panic`, in direct mode.
fn panic_probe(sandbox: &Sandbox, extra: &[(&str, &str)]) -> Edge {
    let mut options = options(sandbox, extra);
    options.build = Build::PanicProbe;
    Edge::start(&options).unwrap_or_else(|e| panic!("could not start the edge Worker: {e}"))
}

fn options(sandbox: &Sandbox, extra: &[(&str, &str)]) -> EdgeOptions {
    let mut pairs = vec![
        ("FIREHOSE_STREAM", sandbox.stream.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("FORWARD_MODE", "direct"),
        ("AWS_ACCESS_KEY_ID", sandbox.edge.access_key_id()),
        ("AWS_SECRET_ACCESS_KEY", sandbox.edge.secret_access_key()),
    ];
    let endpoint = sandbox.moto.endpoint();
    pairs.push(("FIREHOSE_ENDPOINT", &endpoint));
    pairs.extend_from_slice(extra);
    EdgeOptions::new(&pairs)
}

fn request(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let mut b = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    send(b.body(body.to_vec()).unwrap()).unwrap()
}

fn error_of(r: &Response) -> (u16, String, String) {
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()));
    assert_eq!(r.header("content-type"), Some("application/json"));
    (
        r.status,
        v["error"].as_str().unwrap().to_owned(),
        v["message"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn every_error_status_names_the_problem() {
    let sandbox = sandbox();
    let e = edge(
        &sandbox,
        &[
            ("MAX_EVENTS", "3"),
            ("MAX_EVENT_BYTES", "300"),
            ("MAX_BODY_BYTES", "4000"),
            ("ADMIN_KEY", "an-admin-key-for-health"),
        ],
    );
    let url = format!("{}/v1/events", e.url());

    // Anyone gets a bare `ok`; the isolate's figures are the operator's.
    let r = request("GET", &format!("{}/healthz", e.url()), &[], b"");
    assert_eq!((r.status, r.text()), (200, r#"{"status":"ok"}"#.to_owned()));
    let r = request(
        "GET",
        &format!("{}/healthz", e.url()),
        &[("authorization", "Bearer not-the-admin-key")],
        b"",
    );
    assert_eq!(r.text(), r#"{"status":"ok"}"#);
    let health = || {
        let r = request(
            "GET",
            &format!("{}/healthz", e.url()),
            &[("authorization", "Bearer an-admin-key-for-health")],
            b"",
        );
        assert_eq!(r.status, 200);
        serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()
    };
    let before = health();
    assert_eq!(before["status"], "ok");
    let counted = |v: &serde_json::Value| v["isolate"]["accepted_events"].as_u64().unwrap();
    let r = request(
        "POST",
        &url,
        &[("content-type", "application/json")],
        br#"[{"event":"a"},{"event":"b"}]"#,
    );
    assert_eq!(r.status, 200);
    // One isolate in the test runtime: its counter saw both events; errors are not counted.
    assert_eq!(counted(&health()), counted(&before) + 2);
    // And it tells its wasm memory: pages of 64 KiB, never zero in a running instance.
    let memory = health()["isolate"]["wasm_memory_bytes"].as_u64().unwrap();
    assert!(memory > 0 && memory % 65_536 == 0, "{memory}");

    let (status, code, msg) = error_of(&request("GET", &format!("{}/nope", e.url()), &[], b""));
    assert_eq!((status, code.as_str()), (404, "not_found"));
    assert!(msg.contains("/nope"), "{msg}");

    let r = request("GET", &url, &[], b"");
    assert_eq!(r.header("allow"), Some("POST, OPTIONS"));
    assert_eq!(error_of(&r).0, 405);

    let (status, code, msg) = error_of(&request("POST", &url, &[("content-type", "image/png")], b"{}"));
    assert_eq!((status, code.as_str()), (415, "unsupported_content_type"));
    assert!(msg.contains("image/png"));

    let big = vec![b' '; 4001];
    let (status, _, msg) = error_of(&request("POST", &url, &[], &big));
    assert_eq!(status, 413);
    assert!(msg.contains("max_body_bytes = 4000"), "{msg}");

    let four = format!("[{}]", [r#"{"event":"a"}"#; 4].join(","));
    let (status, code, msg) = error_of(&post(e.url(), four.as_bytes(), &[]));
    assert_eq!((status, code.as_str()), (413, "too_many_events"));
    assert!(msg.contains("max_events is 3"), "{msg}");

    let fat = format!(r#"{{"event":"{}"}}"#, "x".repeat(300));
    let (status, code, msg) = error_of(&post(e.url(), fat.as_bytes(), &[]));
    assert_eq!((status, code.as_str()), (413, "event_too_large"));
    assert!(msg.contains("max_event_bytes is 300"), "{msg}");

    let deep = format!(r#"{{"event":"a","p":{}{}}}"#, "[".repeat(40), "]".repeat(40));
    let (status, code, _) = error_of(&post(e.url(), deep.as_bytes(), &[]));
    assert_eq!((status, code.as_str()), (400, "too_deep"));

    let (status, code, _) = error_of(&post(e.url(), b"   ", &[]));
    assert_eq!((status, code.as_str()), (400, "empty_body"));

    let (status, code, _) = error_of(&post(e.url(), b"{}", &[("content-encoding", "br")]));
    assert_eq!((status, code.as_str()), (415, "unsupported_content_encoding"));
}

#[test]
fn write_keys_are_checked_in_headers_bearer_tokens_and_the_query_string() {
    let sandbox = sandbox();
    let e = edge(
        &sandbox,
        &[("WRITE_KEYS", "web:wk_web_0123456789,bikes:wk_bikes_abcdefgh")],
    );
    let body = ride_sample("keys", 1);
    let (status, code, _) = error_of(&post(e.url(), body.as_bytes(), &[]));
    assert_eq!((status, code.as_str()), (401, "missing_write_key"));
    let (status, code, _) = error_of(&post(
        e.url(),
        body.as_bytes(),
        &[("x-edgehose-key", "wk_web_wrong_key")],
    ));
    assert_eq!((status, code.as_str()), (401, "invalid_write_key"));

    assert_eq!(
        post(
            e.url(),
            ride_sample("keys", 2).as_bytes(),
            &[("x-edgehose-key", "wk_bikes_abcdefgh")]
        )
        .status,
        200
    );
    assert_eq!(
        post(
            e.url(),
            ride_sample("keys", 3).as_bytes(),
            &[("authorization", "Bearer wk_web_0123456789")]
        )
        .status,
        200
    );
    // sendBeacon: text/plain and the key in the query string.
    let r = request(
        "POST",
        &format!("{}/v1/events?key=wk_web_0123456789", e.url()),
        &[("content-type", "text/plain;charset=UTF-8")],
        ride_sample("keys", 4).as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());

    assert!(wait_for(Duration::from_secs(30), || landed(&sandbox).len() == 3));
    let got = landed(&sandbox);
    assert_eq!(got["keys-2"][0].key_id.as_deref(), Some("bikes"));
    assert_eq!(got["keys-3"][0].key_id.as_deref(), Some("web"));
    assert_eq!(got["keys-4"][0].key_id.as_deref(), Some("web"));
    assert!(!got.contains_key("keys-1"));
}

#[test]
fn cors_preflight_and_responses_follow_the_allow_list() {
    let sandbox = sandbox();
    let e = edge(&sandbox, &[("ALLOWED_ORIGINS", "https://shop.example")]);
    let url = format!("{}/v1/events", e.url());
    let pre = request(
        "OPTIONS",
        &url,
        &[
            ("origin", "https://shop.example"),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "content-type, x-edgehose-key"),
        ],
        b"",
    );
    assert_eq!(pre.status, 204);
    assert_eq!(pre.header("access-control-allow-origin"), Some("https://shop.example"));
    assert_eq!(pre.header("access-control-allow-methods"), Some("POST, OPTIONS"));
    assert!(
        pre.header("access-control-allow-headers")
            .unwrap()
            .contains("x-edgehose-key")
    );
    assert_eq!(pre.header("access-control-max-age"), Some("86400"));

    let denied = request(
        "OPTIONS",
        &url,
        &[
            ("origin", "https://evil.example"),
            ("access-control-request-method", "POST"),
        ],
        b"",
    );
    assert_eq!(error_of(&denied).0, 403);
    assert_eq!(denied.header("access-control-allow-origin"), None);

    let ok = post(
        e.url(),
        ride_sample("cors", 1).as_bytes(),
        &[("origin", "https://shop.example")],
    );
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("access-control-allow-origin"), Some("https://shop.example"));
    let (status, code, _) = error_of(&post(
        e.url(),
        ride_sample("cors", 2).as_bytes(),
        &[("origin", "https://evil.example")],
    ));
    assert_eq!((status, code.as_str()), (403, "origin_not_allowed"));
    // Devices send no Origin and are unaffected.
    assert_eq!(post(e.url(), ride_sample("cors", 3).as_bytes(), &[]).status, 200);
}

#[test]
fn malformed_payloads_are_acknowledged_and_quarantined_unless_strict() {
    let sandbox = sandbox();
    let lenient = edge(&sandbox, &[]);
    let r = post(
        lenient.url(),
        b"{\"event\": \"click\", oops",
        &[("content-type", "application/json")],
    );
    assert_eq!((r.status, r.text().as_str()), (200, r#"{"accepted":1}"#));
    assert!(wait_for(Duration::from_secs(30), || !landed(&sandbox).is_empty()));
    let got = landed(&sandbox);
    let q = got.values().next().unwrap()[0].quarantine.clone().unwrap();
    assert_eq!(q.raw().unwrap(), b"{\"event\": \"click\", oops");
    assert!(q.reason.contains("invalid JSON"), "{}", q.reason);

    let strict = edge(&sandbox, &[("STRICT", "true")]);
    let (status, code, msg) = error_of(&post(strict.url(), b"{\"event\": \"click\", oops", &[]));
    assert_eq!((status, code.as_str()), (400, "malformed"));
    assert!(msg.contains("invalid JSON"), "{msg}");
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A gzip body of `mib` MiB that would inflate to about a thousand times
/// that in zeros: one deflate block of a MiB of zeros, which refers only to
/// the zeros before it, laid end to end (its trailer's checksum is not the
/// zeros': the cap must stop it long before the end).
fn gzip_bomb(mib: usize) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let zeros = vec![0u8; 1 << 20];
    let mut z = Compress::new(Compression::best(), false);
    let mut deflate = |input: &[u8], flush| {
        let mut out = Vec::with_capacity(64 << 10);
        z.compress_vec(input, &mut out, flush).unwrap();
        out
    };
    let first = deflate(&zeros[..1 << 16], FlushCompress::Sync);
    let block = deflate(&zeros, FlushCompress::Sync);
    let last = deflate(&[], FlushCompress::Finish);
    let mut body = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    body.extend_from_slice(&first);
    while body.len() + block.len() < mib << 20 {
        body.extend_from_slice(&block);
    }
    body.extend_from_slice(&last);
    body.extend_from_slice(&[0; 8]);
    body
}

/// The resident memory of the `workerd` serving `edge`, in bytes.
fn workerd_rss(edge: &Edge) -> u64 {
    let mut pids = vec![edge.pid()];
    while let Some(pid) = pids.pop() {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "workerd" {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
            let kb: u64 = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap();
            return kb * 1024;
        }
        for task in std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            pids.extend(children.split_whitespace().filter_map(|c| c.parse::<u32>().ok()));
        }
    }
    panic!("no workerd under process {}", edge.pid());
}

#[test]
fn a_gzip_bomb_is_refused_a_slice_past_the_cap_and_leaves_the_isolates_memory_flat() {
    let sandbox = sandbox();
    let edge = edge(&sandbox, &[]);
    let gz = [("content-type", "application/x-ndjson"), ("content-encoding", "gzip")];
    let r = post(edge.url(), &gzip(ride_sample("warm", 1).as_bytes()), &gz);
    assert_eq!(r.status, 200, "{}", r.text());
    let before = workerd_rss(&edge);
    // A body just under the 1 MiB limit that inflates to about a gigabyte.
    let bomb = gzip_bomb(1);
    assert!(bomb.len() <= 1 << 20);
    for _ in 0..3 {
        let (status, code, msg) = error_of(&post(edge.url(), &bomb, &gz));
        assert_eq!((status, code.as_str()), (413, "body_too_large"), "{msg}");
    }
    let grew = workerd_rss(&edge).saturating_sub(before);
    println!(
        "three gzip bombs of {} bytes: workerd's resident memory grew {} KB",
        bomb.len(),
        grew / 1024
    );
    // An isolate has 128 MB in all: inflating a chunk whole would pass it.
    assert!(grew < 32 << 20, "workerd grew {} MB inflating gzip bombs", grew >> 20);
}

#[test]
fn gzip_bodies_are_inflated_by_the_runtime_within_the_limits_and_broken_ones_quarantined() {
    let sandbox = sandbox();
    let lenient = edge(&sandbox, &[("MAX_BODY_BYTES", "4000")]);
    let gz = [("content-type", "application/x-ndjson"), ("content-encoding", "gzip")];
    let body = format!("{}\n{}", ride_sample("gz", 1), ride_sample("gz", 2));
    let r = post(lenient.url(), &gzip(body.as_bytes()), &gz);
    assert_eq!((r.status, r.text().as_str()), (200, r#"{"accepted":2}"#));
    // `x-gzip`, any case, is gzip too.
    let r = post(
        lenient.url(),
        &gzip(ride_sample("gz", 3).as_bytes()),
        &[("content-encoding", " X-GZip ")],
    );
    assert_eq!((r.status, r.text().as_str()), (200, r#"{"accepted":1}"#));

    // A small body that inflates past MAX_BODY_BYTES: refused, the limit named.
    let bomb = gzip(&vec![b' '; 200_000]);
    assert!(bomb.len() < 4000);
    let (status, code, msg) = error_of(&post(lenient.url(), &bomb, &gz));
    assert_eq!((status, code.as_str()), (413, "body_too_large"), "{msg}");
    assert!(
        msg.contains("max_body_bytes = 4000") && msg.contains("after decompression"),
        "{msg}"
    );

    // Not gzip, a truncated stream, and bytes after the gzip member (which
    // the runtime does not inflate): acknowledged and quarantined as sent.
    let whole = gzip(ride_sample("gz", 4).as_bytes());
    let mut trailing = whole.clone();
    trailing.extend_from_slice(&gzip(ride_sample("gz", 5).as_bytes()));
    let broken: [&[u8]; 3] = [b"not gzip at all", &whole[..whole.len() / 2], &trailing];
    for b in broken {
        let r = post(lenient.url(), b, &gz);
        assert_eq!((r.status, r.text().as_str()), (200, r#"{"accepted":1}"#));
    }
    assert!(wait_for(Duration::from_secs(30), || {
        let got = landed(&sandbox);
        ["gz-1", "gz-2", "gz-3"].iter().all(|id| got.contains_key(*id))
            && got.values().flatten().filter(|e| e.quarantine.is_some()).count() == 3
    }));
    let got = landed(&sandbox);
    let quarantined: Vec<_> = got.values().flatten().filter_map(|e| e.quarantine.clone()).collect();
    for q in &quarantined {
        assert!(q.reason.contains("gzip"), "{}", q.reason);
        assert!(broken.contains(&q.raw().unwrap().as_slice()), "kept as sent");
    }
    assert!(!got.contains_key("gz-4") && !got.contains_key("gz-5"));

    let strict = edge(&sandbox, &[("STRICT", "true")]);
    let (status, code, msg) = error_of(&post(strict.url(), b"not gzip at all", &gz));
    assert_eq!((status, code.as_str()), (400, "bad_gzip"), "{msg}");
}

#[test]
fn cloudflare_request_metadata_reaches_the_envelope() {
    let sandbox = sandbox();
    let e = edge(&sandbox, &[]);
    assert_eq!(post(e.url(), ride_sample("cf", 1).as_bytes(), &[]).status, 200);
    assert!(wait_for(Duration::from_secs(30), || landed(&sandbox).contains_key("cf-1")));
    let env = &landed(&sandbox)["cf-1"][0];
    let edge_meta = env.edge.clone().expect("request.cf is present in the local runtime");
    assert!(edge_meta.colo.is_some() && edge_meta.country.is_some(), "{edge_meta:?}");
    assert_eq!(
        edge_meta.client_ip, None,
        "the client IP is not kept unless STORE_CLIENT_IP is set"
    );
    assert!(env.received_at > 1_700_000_000_000);
}

#[test]
fn a_header_carrying_u0001_cannot_set_the_cloudflare_metadata() {
    let sandbox = sandbox();
    let e = edge(&sandbox, &[("STORE_CLIENT_IP", "true")]);
    let body = ride_sample("inject", 1);
    // Were the head joined with U+0001, this content type would shift the
    // fields after it: content-encoding, client IP, country, colo, ASN.
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nHost: edge\r\nContent-Type: application/json\u{1}identity\u{1}203.0.113.9\u{1}ZZ\u{1}EVIL\u{1}64500\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let answer = raw(e.url(), head.into_bytes(), Vec::new(), Duration::from_secs(20)).unwrap();
    assert_eq!(
        answer.status, 415,
        "such a content type is not one we take:\n{}",
        answer.text
    );
    assert!(answer.text.contains("content-type"), "{}", answer.text);
    // The same event with an honest head lands with the runtime's metadata.
    assert_eq!(post(e.url(), body.as_bytes(), &[]).status, 200);
    assert!(wait_for(Duration::from_secs(30), || landed(&sandbox).contains_key("inject-1")));
    for copy in &landed(&sandbox)["inject-1"] {
        let meta = copy.edge.clone().unwrap();
        assert_ne!(meta.country.as_deref(), Some("ZZ"));
        assert_ne!(meta.colo.as_deref(), Some("EVIL"));
        assert_ne!(meta.asn, Some(64500));
        assert_ne!(meta.client_ip.as_deref(), Some("203.0.113.9"));
    }
    assert_eq!(landed(&sandbox)["inject-1"].len(), 1);
}

#[test]
fn a_body_without_content_length_is_refused_at_the_limit_while_it_is_still_arriving() {
    let sandbox = sandbox();
    let e = edge(&sandbox, &[("MAX_BODY_BYTES", "100000")]);
    let chunked = |body: &[u8]| -> Vec<u8> { [format!("{:x}\r\n", body.len()).as_bytes(), body, b"\r\n"].concat() };
    let head = b"POST /v1/events HTTP/1.1\r\nHost: edge\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    // 160 KB of events and the body never ends: the answer must come while
    // it is still arriving, not after it was buffered whole.
    let line = format!("{}\n", ride_sample("endless", 0));
    let piece = line.repeat(16_000 / line.len());
    let chunks: Vec<Vec<u8>> = (0..10).map(|_| chunked(piece.as_bytes())).collect();
    let answer = raw(e.url(), head.clone(), chunks, Duration::from_secs(20)).unwrap();
    assert_eq!(answer.status, 413, "{}\n{}", answer.text, e.log());
    assert!(answer.text.contains("max_body_bytes = 100000"), "{}", answer.text);
    // Under the limit, a chunked body is read whole and accepted.
    let events: String = (0..3).map(|i| format!("{}\n", ride_sample("chunked", i))).collect();
    let chunks = vec![chunked(events.as_bytes()), b"0\r\n\r\n".to_vec()];
    let answer = raw(e.url(), head, chunks, Duration::from_secs(20)).unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(answer.text.ends_with(r#"{"accepted":3}"#), "{}", answer.text);
    assert!(wait_for(Duration::from_secs(30), || {
        let got = landed(&sandbox);
        (0..3).all(|i| got.contains_key(&format!("chunked-{i}")))
    }));
    assert!(!landed(&sandbox).keys().any(|k| k.starts_with("endless")));
}

#[test]
fn a_misconfigured_worker_answers_500_naming_the_setting_but_not_its_value_and_logs_once() {
    let e = Edge::start(&EdgeOptions::new(&[
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "super-secret-value"),
        ("FIREHOSE_STREAM", "clicks"),
        ("SINK", "a-sink-named-oddly"),
    ]))
    .unwrap();
    let origin = [("origin", "https://shop.example")];
    for _ in 0..3 {
        let r = post(e.url(), ride_sample("cfg", 1).as_bytes(), &origin);
        // The browser may read the 500: its origin is echoed.
        assert_eq!(r.header("access-control-allow-origin"), Some("https://shop.example"));
        let (status, code, msg) = error_of(&r);
        assert_eq!((status, code.as_str()), (500, "misconfigured"));
        assert_eq!(
            msg,
            "the service is misconfigured (setting SINK); its operator finds why in the service's log"
        );
    }
    assert!(
        wait_for(Duration::from_secs(5), || e.log().contains("a-sink-named-oddly")),
        "{}",
        e.log()
    );
    assert_eq!(
        e.log().matches("edgehose: misconfigured").count(),
        1,
        "logged once:\n{}",
        e.log()
    );
    assert!(!e.log().contains("super-secret-value"));
}

#[test]
fn without_write_keys_the_worker_refuses_every_request_unless_anonymous_is_written_down() {
    let mut options = EdgeOptions::new(&[
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "super-secret-value"),
        ("FIREHOSE_STREAM", "clicks"),
    ]);
    options.bindings.remove("ALLOW_ANONYMOUS");
    let e = Edge::start(&options).unwrap();
    let (status, code, msg) = error_of(&post(e.url(), ride_sample("closed", 1).as_bytes(), &[]));
    assert_eq!(
        (status, code.as_str(), msg.contains("WRITE_KEYS")),
        (500, "misconfigured", true)
    );
    assert!(
        wait_for(Duration::from_secs(5), || e.log().contains("ALLOW_ANONYMOUS")),
        "{}",
        e.log()
    );
}

#[test]
fn a_panic_neither_poisons_later_requests_nor_loses_accepted_events() {
    let sandbox = sandbox();
    let e = panic_probe(&sandbox, &[]);
    assert_eq!(post(e.url(), ride_sample("panic", 0).as_bytes(), &[]).status, 200);
    for round in 1..=3 {
        // Events accepted just before the panic are still in the isolate's
        // gathering window when the wasm instance is replaced; they must land too.
        // Odd rounds panic while the head is read, even rounds once the body
        // is in (inside the promise callback that checks it).
        let r = if round % 2 == 1 {
            request("POST", &format!("{}/__panic", e.url()), &[], b"")
        } else {
            post(e.url(), b"panic probe", &[])
        };
        assert!(
            r.status >= 500,
            "the probe panics (round {round}): {} {}",
            r.status,
            r.text()
        );
        for i in 0..10 {
            let n = round * 100 + i;
            let r = post(e.url(), ride_sample("panic", n).as_bytes(), &[]);
            assert_eq!(
                (r.status, r.text()),
                (200, r#"{"accepted":1}"#.to_owned()),
                "request {n} after panic {round}\n{}",
                e.log()
            );
        }
    }
    // Both kinds of panic were real: while the head was read, and after the body.
    let panicked = wait_for(Duration::from_secs(10), || {
        let log = e.log();
        log.contains("deliberate panic for the isolation test")
            && log.contains("deliberate panic after the body was read")
    });
    assert!(panicked, "both panics are in the log:\n{}", e.log());
    let all = wait_for(Duration::from_secs(30), || landed(&sandbox).len() == 31);
    let ids: Vec<String> = landed(&sandbox).into_keys().collect();
    assert!(
        all,
        "every accepted event landed, those held at a panic included: {} {ids:?}\n{}",
        ids.len(),
        e.log()
    );
    // Handed to the queue at the panic, or resent by the next request.
    let told = wait_for(Duration::from_secs(10), || {
        let log = e.log();
        log.contains("a panicked instance held to the queue") || log.contains("a panicked instance left undelivered")
    });
    assert!(told, "{}", e.log());
}

#[test]
fn after_a_panic_the_events_an_instance_held_land_without_waiting_for_another_request() {
    let sandbox = sandbox();
    // A long gathering window: the events are still held when the probe panics.
    let e = panic_probe(&sandbox, &[("DIRECT_FLUSH_MS", "1000")]);
    for i in 0..5 {
        assert_eq!(post(e.url(), ride_sample("held", i).as_bytes(), &[]).status, 200);
    }
    let r = request("POST", &format!("{}/__panic", e.url()), &[], b"");
    assert!(r.status >= 500, "{} {}", r.status, r.text());
    // No request follows: what the instance held must be handed on by itself.
    let all = wait_for(Duration::from_secs(30), || landed(&sandbox).len() == 5);
    assert!(all, "{:?}\n{}", landed(&sandbox).keys().collect::<Vec<_>>(), e.log());
    let told = wait_for(Duration::from_secs(10), || {
        e.log()
            .contains("handed 5 events a panicked instance held to the queue")
    });
    assert!(told, "{}", e.log());
}

#[test]
fn what_a_panicked_instance_held_and_the_queue_refused_rides_with_the_next_requests() {
    let sandbox = sandbox();
    let mut options = options(&sandbox, &[("DIRECT_FLUSH_MS", "1000")]);
    options.build = Build::PanicProbe;
    // The queue refuses the hand-off, two seconds late: the events go back
    // to the isolate's global after the new instance's first request.
    options.refuse_queues = vec!["EVENTS_QUEUE".into(), "DEAD_LETTER_QUEUE".into()];
    options.cloudflare_faults.queue_stall_ms = 2000;
    let e = Edge::start(&options).unwrap();
    for i in 0..4 {
        assert_eq!(post(e.url(), ride_sample("orphan", i).as_bytes(), &[]).status, 200);
    }
    let r = request("POST", &format!("{}/__panic", e.url()), &[], b"");
    assert!(r.status >= 500, "{} {}", r.status, r.text());
    assert_eq!(post(e.url(), ride_sample("orphan", 9).as_bytes(), &[]).status, 200);
    let refused = wait_for(Duration::from_secs(10), || {
        e.log().contains("the queue refused 4 events a panicked instance held")
    });
    assert!(refused, "{}", e.log());
    // Whichever request comes next (not only a new instance's first) sends them on.
    for i in 10..13 {
        assert_eq!(post(e.url(), ride_sample("orphan", i).as_bytes(), &[]).status, 200);
        std::thread::sleep(Duration::from_millis(300));
    }
    let all = wait_for(Duration::from_secs(30), || landed(&sandbox).len() == 8);
    assert!(all, "{:?}\n{}", landed(&sandbox).keys().collect::<Vec<_>>(), e.log());
    assert!(
        e.log()
            .contains("sending on 4 events a panicked instance left undelivered"),
        "{}",
        e.log()
    );
}

#[test]
fn redrive_is_off_without_an_admin_key_and_asks_for_it_when_on() {
    let sandbox = sandbox();
    let off = edge(&sandbox, &[]);
    let (status, code, msg) = error_of(&request("POST", &format!("{}/v1/redrive", off.url()), &[], b""));
    assert_eq!((status, code.as_str()), (404, "not_found"));
    assert!(msg.contains("ADMIN_KEY"), "{msg}");
    let on = edge(&sandbox, &[("ADMIN_KEY", "sixteen-chars-or-more")]);
    let url = format!("{}/v1/redrive", on.url());
    let (status, code, _) = error_of(&request("POST", &url, &[("authorization", "Bearer wrong")], b""));
    assert_eq!((status, code.as_str()), (401, "invalid_key"));
    let r = request("GET", &url, &[("authorization", "Bearer sixteen-chars-or-more")], b"");
    assert_eq!(
        (r.status, r.text()),
        (
            200,
            r#"{"archived_objects":0,"more":false,"set_aside_objects":0}"#.to_owned()
        )
    );
    let short = edge(&sandbox, &[("ADMIN_KEY", "short")]);
    let (status, _, msg) = error_of(&post(short.url(), ride_sample("x", 1).as_bytes(), &[]));
    assert_eq!(status, 500);
    // The client learns which setting; the log, what is wrong with it.
    assert!(msg.contains("setting ADMIN_KEY") && !msg.contains("shorter"), "{msg}");
    assert!(
        wait_for(Duration::from_secs(5), || short
            .log()
            .contains("ADMIN_KEY is shorter than 16 characters")),
        "{}",
        short.log()
    );
}

#[test]
fn verdicts_on_request_judge_each_event_through_both_doors_and_change_nothing_unasked() {
    let sandbox = sandbox();
    let edge = edge(&sandbox, &[("FORWARD_MODE", "queue"), ("QUEUE_WINDOW_MS", "200")]);
    let json = [("content-type", "application/json")];
    let v1 =
        br#"[{"event":"click","message_id":"v-1"},{"message_id":"v-2"},"broken",{"event":"ok","message_id":"v-3"}]"#;
    let asked = request("POST", &format!("{}/v1/events?verdicts=1", edge.url()), &json, v1);
    assert_eq!(asked.status, 200, "{}", asked.text());
    let v: serde_json::Value = serde_json::from_slice(&asked.body).unwrap();
    assert_eq!(v["accepted"], 4, "{v}");
    assert_eq!(v["results"]["v-1"]["result"], "ok", "{v}");
    assert_eq!(v["results"]["v-2"]["result"], "rejected", "{v}");
    assert_eq!(v["results"]["v-3"]["result"], "ok", "{v}");
    let quarantined = v["results"]
        .as_object()
        .unwrap()
        .values()
        .filter(|r| r["result"] == "quarantined")
        .count();
    assert_eq!(quarantined, 1, "{v}");
    // What `ok` means in this mode: held for the window, then the queue.
    let ok_means = v["ok_means"].as_str().unwrap();
    assert!(
        ok_means.contains("QUEUE_WINDOW_MS") && ok_means.contains("200 ms"),
        "{ok_means}"
    );
    // Segment's door, asked: its own answer with the verdicts beside it.
    let segment = br#"{"batch":[{"type":"track","event":"Bought","messageId":"v-4","anonymousId":"a"},{"type":"track","messageId":"v-5","anonymousId":"a"}]}"#;
    let asked = request(
        "POST",
        &format!("{}/v1/batch?verdicts=true", edge.url()),
        &json,
        segment,
    );
    let v: serde_json::Value = serde_json::from_slice(&asked.body).unwrap();
    assert_eq!(
        (v["success"].clone(), v["results"]["v-4"]["result"].clone()),
        (true.into(), "ok".into()),
        "{v}"
    );
    assert_eq!(v["results"]["v-5"]["result"], "rejected", "{v}");
    // Unasked, as Segment's SDKs post: the answers they have always had.
    let plain = request("POST", &format!("{}/v1/batch", edge.url()), &json, segment);
    assert_eq!(plain.text(), r#"{"success":true}"#);
    let plain = post(edge.url(), v1, &json);
    assert_eq!(plain.text(), r#"{"accepted":4}"#);
    // A value it does not take is named.
    let wrong = request("POST", &format!("{}/v1/events?verdicts=yes", edge.url()), &json, v1);
    let (status, code, message) = error_of(&wrong);
    assert_eq!((status, code.as_str()), (400, "invalid_parameter"));
    assert!(message.contains("verdicts"), "{message}");
    // The verdicts say what the edge does with each: every event landed or
    // was rejected as judged (the valid ones among the landed).
    let all_in = wait_for(Duration::from_secs(60), || {
        let got = landed(&sandbox);
        ["v-1", "v-3", "v-4"].iter().all(|id| got.contains_key(*id))
    });
    assert!(all_in, "{}", edge.log());
}

#[test]
fn signed_tokens_from_the_cli_and_the_books_node_and_python_are_taken_and_bad_ones_named() {
    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    const ORIGIN: &str = "https://shop.example";
    let sandbox = sandbox();
    let edge = edge(
        &sandbox,
        &[
            ("WRITE_KEYS", "web:wk_web_0123456789,srv:wk_srv_0123456789"),
            ("TOKEN_SECRETS", SECRET),
            ("TOKEN_REQUIRED_KEYS", "web"),
            ("ALLOWED_ORIGINS", ORIGIN),
        ],
    );
    let events = format!("{}/v1/events", edge.url());
    let send = |key: &str, origin: Option<&str>| {
        let mut headers = vec![("content-type", "application/json"), ("x-edgehose-key", key)];
        if let Some(o) = origin {
            headers.push(("origin", o));
        }
        request("POST", &events, &headers, br#"{"event":"t"}"#)
    };
    let code = |r: &Response| error_of(r).1;
    // Minted by the CLI, by the book's Node function, by its Python one
    // (docs/src/abuse.md, "Signed ingest tokens").
    let cli = std::process::Command::new(edgehose_tests::workspace_binary("edgehose"))
        .args(["token", "--key", "web", "--origin", ORIGIN, "--ttl", "10m"])
        .env("TOKEN_SECRETS", SECRET)
        .output()
        .unwrap();
    assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
    let dir = std::env::temp_dir().join(format!("edgehose-tokens-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let node_file = dir.join("mint.mjs");
    let node = edgehose_tests::book::block("docs/src/abuse.md", "// mint-token (Node)").text
        + "console.log(ingestToken(process.env.SECRET, process.env.KEY, process.env.ORIGIN, 600));\n";
    std::fs::write(&node_file, node).unwrap();
    let python_file = dir.join("mint.py");
    let python = edgehose_tests::book::block("docs/src/abuse.md", "# mint-token (Python)").text
        + "import os\nprint(ingest_token(os.environ['SECRET'], os.environ['KEY'], os.environ['ORIGIN'], 600))\n";
    std::fs::write(&python_file, python).unwrap();
    let run = |program: std::path::PathBuf, file: &std::path::Path| {
        let out = std::process::Command::new(program)
            .arg(file)
            .envs([("SECRET", SECRET), ("KEY", "web"), ("ORIGIN", ORIGIN)])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let minted = [
        ("cli", String::from_utf8(cli.stdout).unwrap().trim().to_owned()),
        ("node", run(edgehose_local::tools::npm_bin("node").unwrap(), &node_file)),
        ("python", run(edgehose_local::tools::python().unwrap(), &python_file)),
    ];
    let _ = std::fs::remove_dir_all(&dir);
    for (by, token) in &minted {
        let r = send(token, Some(ORIGIN));
        assert_eq!(r.status, 200, "{by}: {}", r.text());
    }
    let token = &minted[0].1;
    // The bare key of a key that requires tokens, from a browser; from a server it is fine.
    assert_eq!(code(&send("wk_web_0123456789", Some(ORIGIN))), "token_required");
    assert_eq!(send("wk_web_0123456789", None).status, 200);
    // Another origin, a forged or tampered token, an expired one, a key that is not ours.
    assert_eq!(code(&send(token, Some("https://evil.example"))), "origin_not_allowed");
    assert_eq!(code(&send(token, None)), "token_wrong_origin");
    let forged = edgehose_shared::token::mint(
        b"not the secret, but 32 bytes lon",
        "web",
        ORIGIN,
        edgehose_local::clock::now().add_millis(600_000),
    );
    assert_eq!(code(&send(&forged, Some(ORIGIN))), "token_forged");
    let tampered = token.replacen("et1.web.", "et1.srv.", 1);
    assert_eq!(code(&send(&tampered, Some(ORIGIN))), "token_forged");
    let now = edgehose_local::clock::now();
    let expired = edgehose_shared::token::mint(SECRET.as_bytes(), "web", ORIGIN, now.add_millis(-61_000));
    let (status, code_, message) = error_of(&send(&expired, Some(ORIGIN)));
    assert_eq!((status, code_.as_str()), (401, "token_expired"), "{message}");
    let skewed = edgehose_shared::token::mint(SECRET.as_bytes(), "web", ORIGIN, now.add_millis(-30_000));
    assert_eq!(
        send(&skewed, Some(ORIGIN)).status,
        200,
        "inside the 60 s of skew allowed"
    );
    let ghost = edgehose_shared::token::mint(SECRET.as_bytes(), "ghost", ORIGIN, now.add_millis(600_000));
    assert_eq!(code(&send(&ghost, Some(ORIGIN))), "token_unknown_key");
    // Segment's browser SDK sends the key in the body: a token works there too.
    let segment = format!(r#"{{"writeKey":"{token}","batch":[{{"type":"track","event":"x","anonymousId":"a"}}]}}"#);
    let r = request(
        "POST",
        &format!("{}/v1/batch", edge.url()),
        &[("content-type", "text/plain"), ("origin", ORIGIN)],
        segment.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}
