//! One HTTP request to a running Worker, as the end-to-end tests of each
//! door make them by hand (bad input, preflights, start calls).

use edgehose_local::http::{Response, send};

/// Sends `method url` with these headers and body.
pub fn request(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let mut b = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b.body(body.to_vec()).unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    send(req).unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

/// A header of the answer, if it is text.
pub fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
    r.headers.get(name).and_then(|v| v.to_str().ok())
}
