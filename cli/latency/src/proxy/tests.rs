//! The delay proxy's added delay, measured against an echo server and an
//! HTTP server. Delays are checked from below exactly (a proxy cannot be
//! early) and from above with room for a busy machine.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use super::*;
use crate::probe::{Client, Endpoint, tls_config};

const SLACK: Duration = Duration::from_millis(150);

/// An echo server on a free port.
fn echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 || conn.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// An HTTP server answering every request with 200 and a small JSON body.
fn http_server() -> SocketAddr {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let addr = server.server_addr().to_ip().unwrap();
    std::thread::spawn(move || {
        for mut req in server.incoming_requests() {
            let mut body = String::new();
            let _ = req.as_reader().read_to_string(&mut body);
            let _ = req.respond(tiny_http::Response::from_string(format!(
                "{{\"accepted\":{}}}",
                body.len()
            )));
        }
    });
    addr
}

fn route(upstream: SocketAddr, delay: Delay) -> Route {
    Route {
        listen: "127.0.0.1:0".into(),
        upstream,
        delay,
        tunnel: false,
        tls: None,
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn a_round_trip_pays_both_one_way_delays() {
    let proxy = Proxy::start(route(
        echo(),
        Delay {
            up: ms(40),
            down: ms(60),
            jitter: Duration::ZERO,
        },
    ))
    .unwrap();
    let mut conn = TcpStream::connect(proxy.addr()).unwrap();
    conn.set_nodelay(true).unwrap();
    let mut rtts = Vec::new();
    for i in 0..5u8 {
        let start = Instant::now();
        conn.write_all(&[i; 100]).unwrap();
        let mut back = [0u8; 100];
        conn.read_exact(&mut back).unwrap();
        rtts.push(start.elapsed());
        assert_eq!(back, [i; 100]);
    }
    rtts.sort();
    assert!(rtts[0] >= ms(100), "{rtts:?}");
    assert!(rtts[2] < ms(100) + SLACK, "{rtts:?}");
}

#[test]
fn jitter_delays_more_but_never_reorders_bytes() {
    let proxy = Proxy::start(route(
        echo(),
        Delay {
            up: ms(5),
            down: ms(5),
            jitter: ms(20),
        },
    ))
    .unwrap();
    let mut conn = TcpStream::connect(proxy.addr()).unwrap();
    let sent: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    let writer = {
        let mut conn = conn.try_clone().unwrap();
        let sent = sent.clone();
        std::thread::spawn(move || {
            for piece in sent.chunks(1000) {
                conn.write_all(piece).unwrap();
            }
            conn.shutdown(std::net::Shutdown::Write).unwrap();
        })
    };
    let mut back = Vec::new();
    conn.read_to_end(&mut back).unwrap();
    writer.join().unwrap();
    assert_eq!(back.len(), sent.len());
    assert!(back == sent, "bytes came back out of order");
}

#[test]
fn a_tunnel_and_tls_front_make_connect_handshake_and_request_each_pay_a_round_trip() {
    let rtt = ms(80);
    let (tls, pem) = self_signed(&["edge.edgehose.test"]).unwrap();
    let proxy = Proxy::start(Route {
        tunnel: true,
        tls: Some(tls),
        ..route(http_server(), Delay::rtt(rtt, Duration::ZERO))
    })
    .unwrap();
    let mut endpoint = Endpoint::parse("https://edge.edgehose.test/v1/events").unwrap();
    endpoint.tunnel = Some(proxy.addr());
    let mut client = Client::new(endpoint, tls_config(Some(&pem)).unwrap(), Duration::from_secs(10));

    let first = client.post(b"{\"event\":\"click\"}", &[], false).unwrap();
    assert_eq!(
        (first.status, first.body.as_slice(), first.reused),
        (200, &b"{\"accepted\":17}"[..], false)
    );
    let p = first.phases;
    for (phase, took) in [("connect", p.connect), ("tls", p.tls), ("wait", p.wait)] {
        assert!(took >= rtt && took < rtt + SLACK, "{phase} took {took:?}: {p:?}");
    }
    // Keep-alive: the next request pays only its own round trip.
    let again = client.post(b"{}", &[], false).unwrap();
    assert!(again.reused);
    assert_eq!(
        (again.phases.dns, again.phases.connect, again.phases.tls),
        (Duration::ZERO, Duration::ZERO, Duration::ZERO)
    );
    assert!(
        again.phases.wait >= rtt && again.phases.wait < rtt + SLACK,
        "{:?}",
        again.phases
    );
    // A fresh connection pays everything again.
    let fresh = client.post(b"{}", &[], true).unwrap();
    assert!(!fresh.reused && fresh.phases.ttfb() >= rtt * 3, "{:?}", fresh.phases);
}

#[test]
fn a_tunnel_refuses_what_is_not_connect() {
    let proxy = Proxy::start(Route {
        tunnel: true,
        ..route(echo(), Delay::default())
    })
    .unwrap();
    let mut conn = TcpStream::connect(proxy.addr()).unwrap();
    conn.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut back = Vec::new();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = conn.read_to_end(&mut back);
    assert!(back.is_empty(), "{back:?}");
}
