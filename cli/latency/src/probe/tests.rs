use std::io::{Cursor, Read, Write};

use super::*;

fn read(raw: &str) -> crate::error::Result<(u16, Vec<u8>, bool)> {
    read_response(&mut Cursor::new(raw.as_bytes().to_vec()), MAX_BODY_KEPT, false).map(|(s, _, b, k, _)| (s, b, k))
}

#[test]
fn headers_are_kept_bodies_cut_at_the_limit_and_head_answers_have_none() {
    let raw = b"HTTP/1.1 200 OK\r\nX-Amz-Bucket-Region:  eu-west-1 \r\nContent-Length: 10\r\n\r\n0123456789";
    let (_, headers, body, keep, _) = read_response(&mut Cursor::new(raw.to_vec()), 4, false).unwrap();
    assert!(headers.contains(&("x-amz-bucket-region".to_owned(), "eu-west-1".to_owned())));
    // The rest of the body is still read, so the connection stays usable.
    assert_eq!((body.as_slice(), keep), (&b"0123"[..], true));
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
    let (status, _, body, keep, _) = read_response(&mut Cursor::new(head.to_vec()), 4, true).unwrap();
    assert_eq!((status, body.len(), keep), (200, 0, true));
}

#[test]
fn answers_are_read_by_length_by_chunks_and_until_close() {
    let (status, body, keep) = read("HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n{\"accepted\":1}").unwrap();
    assert_eq!((status, body.as_slice(), keep), (200, &b"{\"accepted\":1"[..], true));
    let (status, body, keep) =
        read("HTTP/1.1 413 Payload Too Large\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nbody\r\n3\r\n!!!\r\n0\r\nT: 1\r\n\r\n")
            .unwrap();
    assert_eq!((status, body.as_slice(), keep), (413, &b"body!!!"[..], true));
    let (_, body, keep) = read("HTTP/1.1 200 OK\r\n\r\nto the end").unwrap();
    assert_eq!((body.as_slice(), keep), (&b"to the end"[..], false));
    let (_, _, keep) = read("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").unwrap();
    assert!(!keep);
    // No body and no length: nothing to wait for.
    let (status, body, keep) = read("HTTP/1.1 204 No Content\r\n\r\n").unwrap();
    assert_eq!((status, body.len(), keep), (204, 0, true));
    // Interim answers are skipped for the final one.
    let (status, body, _) =
        read("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").unwrap();
    assert_eq!((status, body.as_slice()), (200, &b"ok"[..]));
}

#[test]
fn broken_answers_are_errors_that_say_why() {
    assert!(read("").unwrap_err().to_string().contains("closed before an answer"));
    assert!(
        read("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")
            .unwrap_err()
            .to_string()
            .contains("5 bytes short")
    );
    assert!(
        read("SSH-2.0-OpenSSH\r\n\r\n")
            .unwrap_err()
            .to_string()
            .contains("not an HTTP answer")
    );
    assert!(
        read("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
            .unwrap_err()
            .to_string()
            .contains("chunk size")
    );
}

#[test]
fn endpoints_are_read_from_urls() {
    let e = Endpoint::parse("https://abc.execute-api.eu-central-1.amazonaws.com/v1/events?k=1").unwrap();
    assert_eq!(
        (e.tls, e.host.as_str(), e.port, e.path.as_str()),
        (
            true,
            "abc.execute-api.eu-central-1.amazonaws.com",
            443,
            "/v1/events?k=1"
        )
    );
    let e = Endpoint::parse("http://127.0.0.1:8787/v1/events").unwrap();
    assert_eq!(
        (e.tls, e.port, host_header(&e)),
        (false, 8787, "127.0.0.1:8787".to_owned())
    );
    let e = Endpoint::parse("http://[::1]:80/").unwrap();
    assert_eq!((e.host.as_str(), host_header(&e)), ("::1", "[::1]".to_owned()));
    assert!(
        Endpoint::parse("ftp://x/")
            .unwrap_err()
            .to_string()
            .contains("https://")
    );
    assert!(Endpoint::parse("not a url").is_err());
}

#[test]
fn phases_add_up_to_time_to_first_byte_and_total() {
    let ms = Duration::from_millis;
    let p = Phases {
        dns: ms(1),
        connect: ms(10),
        tls: ms(20),
        wait: ms(30),
        download: ms(4),
    };
    assert_eq!((p.ttfb(), p.total()), (ms(61), ms(65)));
}

#[test]
fn a_kept_alive_connection_the_server_closed_is_replaced_not_counted_as_a_failure() {
    // Answers once per connection, then hangs up without saying so.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        }
    });
    let endpoint = Endpoint::parse(&format!("http://{addr}/v1/events")).unwrap();
    let mut client = Client::new(endpoint, tls_config(None).unwrap(), Duration::from_secs(5));
    let first = client.post(b"{}", &[], false).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let second = client.post(b"{}", &[], false).unwrap();
    assert_eq!((first.status, second.status, second.reused), (200, 200, false));
    assert_eq!(second.body, b"ok");
}
