use std::time::Duration;

use clap::Parser;

use super::*;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: LatencyArgs,
}

fn args(a: &[&str]) -> LatencyArgs {
    Cli::try_parse_from(std::iter::once("latency").chain(a.iter().copied()))
        .unwrap()
        .args
}

fn fails(a: &[&str]) -> String {
    match Cli::try_parse_from(std::iter::once("latency").chain(a.iter().copied())) {
        Ok(_) => panic!("{a:?} parsed"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn targets_tunnels_and_headers_are_read_and_mistakes_named() {
    let a = args(&[
        "--target",
        "edge=https://e.example/v1/events",
        "--target",
        "apigw=https://a.example/v1/events",
        "--tunnel",
        "apigw=127.0.0.1:9000",
        "--header",
        "X-Edgehose-Key: k1",
    ]);
    let t = targets(&a).unwrap();
    assert_eq!(t.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["edge", "apigw"]);
    assert_eq!(
        (t[0].endpoint.tunnel, t[1].endpoint.tunnel),
        (None, Some("127.0.0.1:9000".parse().unwrap()))
    );
    assert_eq!(
        headers(&a.header).unwrap(),
        [("X-Edgehose-Key".to_owned(), "k1".to_owned())]
    );
    assert!(
        targets(&args(&["--target", "https://x/"]))
            .unwrap_err()
            .contains("NAME=URL")
    );
    assert!(
        targets(&args(&["--target", "a=https://x/", "--target", "a=https://y/"]))
            .unwrap_err()
            .contains("own name")
    );
    assert!(
        targets(&args(&["--target", "a=https://x/", "--tunnel", "b=1.2.3.4:1"]))
            .unwrap_err()
            .contains("\"b\"")
    );
    assert!(
        headers(&args(&["--header", "no colon"]).header)
            .unwrap_err()
            .contains("NAME: VALUE")
    );
    assert_eq!(args(&[]).mode.modes(), [Mode::NewConnection, Mode::KeepAlive]);
    assert!(fails(&["--mode", "sometimes"]).contains("sometimes"));
    let a = args(&["--jitter-ms", "2.5", "--sink-timeout", "0"]);
    assert_eq!(
        (a.jitter_ms, a.sink_timeout),
        (Duration::from_micros(2500), Some(Duration::ZERO))
    );
    assert!(fails(&["--timeout", "inf"]).contains("--timeout"));
    assert!(fails(&["--sink-timeout=-1"]).contains("--sink-timeout"));
    assert!(fails(&["--requests", "0"]).contains("--requests"));
}
