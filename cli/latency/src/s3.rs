//! Just enough of S3 for watching a real deployment's bucket: ListObjectsV2
//! (every page) and GetObject, signed with the shared crate's SigV4 signer
//! and sent on the probe's HTTP client. Credentials come from the
//! environment, the way `aws configure export-credentials --format env`
//! leaves them.

use std::sync::Arc;
use std::time::Duration;

use edgehose_shared::sigv4::sign::{Credentials, sign};
use edgehose_shared::sigv4::{query_string, uri_encode};

use super::probe::{Answer, Client, Endpoint, host_header};
use edgehose_local::clock::now;

use crate::error::{Error, Result};

/// Largest answer kept: an object (Firehose writes at most its 128 MB
/// buffer per object), a page of a listing or an error.
const MAX_ANSWER: usize = 256 << 20;

/// `s3://bucket/prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The bucket's name.
    pub bucket: String,
    /// The key prefix watched (may be empty: the whole bucket).
    pub prefix: String,
}

impl Location {
    /// Reads `s3://bucket[/prefix]`.
    pub fn parse(url: &str) -> Result<Self> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| Error::config(format!("{url:?}: an S3 location starts with s3://")))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if !valid {
            return Err(Error::config(format!(
                "{url:?}: {bucket:?} is not a bucket name (3 to 63 characters: a-z, 0-9, '.', '-')"
            )));
        }
        Ok(Self {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }
}

/// The access key in the AWS variables (`edgehose_local::aws::json_call::credentials_from_env`).
pub fn credentials_from_env() -> Result<Credentials> {
    edgehose_local::aws::json_call::credentials_from_env().map_err(|e| Error::config(e.to_string()))
}

/// An object in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// Its key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
}

/// One bucket, read with one key.
pub struct Bucket {
    bucket: String,
    region: String,
    /// An S3-compatible endpoint (`http://127.0.0.1:PORT`), addressed
    /// path-style; AWS's own endpoint otherwise.
    endpoint: Option<String>,
    credentials: Credentials,
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
    client: Client,
    /// What goes before a key in a request's path: `/bucket` path-style,
    /// nothing virtual-hosted.
    base: String,
}

impl Bucket {
    /// `bucket` in `region`, at AWS (virtual-hosted, or path-style for a
    /// name with dots, which the wildcard certificate does not cover) or at
    /// `endpoint`.
    pub fn new(
        bucket: &str,
        region: &str,
        endpoint: Option<&str>,
        credentials: Credentials,
        tls: Arc<rustls::ClientConfig>,
        timeout: Duration,
    ) -> Result<Self> {
        let (client, base) = connect(bucket, region, endpoint, &tls, timeout)?;
        Ok(Self {
            bucket: bucket.to_owned(),
            region: region.to_owned(),
            endpoint: endpoint.map(str::to_owned),
            credentials,
            tls,
            timeout,
            client,
            base,
        })
    }

    /// The region requests are signed for (changed when S3 says the bucket
    /// lives elsewhere).
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Every object whose key starts with `prefix`, in key order (all pages).
    pub fn list(&mut self, prefix: &str) -> Result<Vec<Object>> {
        let mut objects = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![("list-type", "2".to_owned()), ("prefix", prefix.to_owned())];
            if let Some(t) = &token {
                query.push(("continuation-token", t.clone()));
            }
            let answer = self.call(&self.base.clone(), &query)?;
            let page = String::from_utf8_lossy(&answer.body);
            let (mut found, next) = read_listing(&page)?;
            objects.append(&mut found);
            match next {
                Some(t) => token = Some(t),
                None => return Ok(objects),
            }
        }
    }

    /// The object's bytes.
    pub fn get(&mut self, key: &str) -> Result<Vec<u8>> {
        let path = format!("{}/{}", self.base, uri_encode(key.as_bytes(), true));
        Ok(self.call(&path, &[])?.body)
    }

    /// A signed `GET`; a bucket in another region than the one signed for
    /// is followed there once (signed for it, and at AWS sent to its
    /// endpoint), as AWS's SDKs do.
    fn call(&mut self, path: &str, query: &[(&str, String)]) -> Result<Answer> {
        let answer = self.send(path, query)?;
        if answer.status / 100 == 2 {
            return Ok(answer);
        }
        let error = read_error(&answer);
        let elsewhere = answer
            .header("x-amz-bucket-region")
            .map(str::to_owned)
            .or_else(|| error.region.clone())
            .filter(|r| *r != self.region);
        if let Some(region) = elsewhere {
            let (client, base) = connect(&self.bucket, &region, self.endpoint.as_deref(), &self.tls, self.timeout)?;
            let path = path.replacen(&self.base, &base, 1);
            (self.client, self.base, self.region) = (client, base, region);
            let again = self.send(&path, query)?;
            if again.status / 100 == 2 {
                return Ok(again);
            }
            return Err(Error::Protocol(self.refusal(&again, &read_error(&again))));
        }
        Err(Error::Protocol(self.refusal(&answer, &error)))
    }

    fn send(&mut self, path: &str, query: &[(&str, String)]) -> Result<Answer> {
        let pairs: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let path = if path.is_empty() { "/" } else { path };
        let path_and_query = match pairs.is_empty() {
            true => path.to_owned(),
            false => format!("{path}?{}", query_string(&pairs)),
        };
        let host = host_header(self.client.endpoint());
        let scheme = if self.client.endpoint().tls { "https" } else { "http" };
        let mut request = http::Request::get(format!("{scheme}://{host}{path_and_query}"))
            .header("host", &host)
            .body(Vec::new())
            .map_err(|e| Error::config(format!("S3 request for {path_and_query:?}: {e}")))?;
        sign(&mut request, &self.credentials, &self.region, "s3", now()).map_err(|e| Error::config(e.to_string()))?;
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .filter(|(k, _)| *k != http::header::HOST)
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        self.client
            .request("GET", &path_and_query, &headers, &[], false)
            .map_err(|e| match e {
                Error::Network { what, source } => Error::network(format!("S3 ({host}): {what}"), source),
                other => other,
            })
    }

    /// What to tell the user when S3 says no.
    fn refusal(&self, answer: &Answer, error: &S3Error) -> String {
        let hint = match answer.status {
            403 => " (the sink needs s3:ListBucket and s3:GetObject on the bucket)",
            404 if error.code == "NoSuchBucket" => " (check the bucket's name: EventsBucket in the stack's outputs)",
            _ => "",
        };
        format!(
            "S3 answered {} {}{}{hint}: bucket {:?}, region {}",
            answer.status,
            error.code,
            if error.message.is_empty() {
                String::new()
            } else {
                format!(" ({})", error.message)
            },
            self.bucket,
            self.region
        )
    }
}

/// The client for `bucket` in `region` (or at `endpoint`) and the path
/// before keys.
fn connect(
    bucket: &str,
    region: &str,
    endpoint: Option<&str>,
    tls: &Arc<rustls::ClientConfig>,
    timeout: Duration,
) -> Result<(Client, String)> {
    let (url, base) = match endpoint {
        Some(e) => (e.trim_end_matches('/').to_owned(), format!("/{bucket}")),
        None if bucket.contains('.') => (format!("https://s3.{region}.amazonaws.com"), format!("/{bucket}")),
        None => (format!("https://{bucket}.s3.{region}.amazonaws.com"), String::new()),
    };
    let mut ep = Endpoint::parse(&url)?;
    ep.path = "/".into();
    Ok((Client::new(ep, tls.clone(), timeout).with_body_limit(MAX_ANSWER), base))
}

/// A page of ListObjectsV2: its objects and the token of the next page.
fn read_listing(xml: &str) -> Result<(Vec<Object>, Option<String>)> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| Error::protocol(format!("S3's listing is not XML: {e}")))?;
    let root = doc.root_element();
    if root.tag_name().name() != "ListBucketResult" {
        return Err(Error::protocol(format!(
            "S3 answered {} where a listing was expected",
            root.tag_name().name()
        )));
    }
    let child = |node: roxmltree::Node, name: &str| {
        node.children()
            .find(|c| c.tag_name().name() == name)
            .and_then(|c| c.text())
            .map(str::to_owned)
    };
    let mut objects = Vec::new();
    for contents in root.children().filter(|c| c.tag_name().name() == "Contents") {
        let key = child(contents, "Key").ok_or_else(|| Error::protocol("S3's listing has an object without a Key"))?;
        let size = child(contents, "Size").and_then(|s| s.parse().ok()).unwrap_or(0);
        objects.push(Object { key, size });
    }
    let next = match child(root, "IsTruncated").as_deref() {
        Some("true") => Some(
            child(root, "NextContinuationToken")
                .ok_or_else(|| Error::protocol("S3's listing is truncated but has no NextContinuationToken"))?,
        ),
        _ => None,
    };
    Ok((objects, next))
}

/// The parts of an S3 error answer the user is told.
#[derive(Debug, Default)]
struct S3Error {
    code: String,
    message: String,
    /// The bucket's region, when the error is about the wrong one.
    region: Option<String>,
}

fn read_error(answer: &Answer) -> S3Error {
    let text = String::from_utf8_lossy(&answer.body);
    let Ok(doc) = roxmltree::Document::parse(&text) else {
        return S3Error {
            code: format!("(no error document: {})", text.chars().take(200).collect::<String>()),
            ..S3Error::default()
        };
    };
    let field = |name: &str| {
        doc.root_element()
            .children()
            .find(|c| c.tag_name().name() == name)
            .and_then(|c| c.text())
            .map(str::to_owned)
    };
    S3Error {
        code: field("Code").unwrap_or_default(),
        message: field("Message").unwrap_or_default(),
        region: field("Region"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_read_and_bad_bucket_names_named() {
        let l = Location::parse("s3://edgehose-events-1/events/2026/").unwrap();
        assert_eq!(
            (l.bucket.as_str(), l.prefix.as_str()),
            ("edgehose-events-1", "events/2026/")
        );
        assert_eq!(Location::parse("s3://b.c.d").unwrap().prefix, "");
        for bad in ["edgehose-events", "s3://", "s3://Upper/x", "s3://ab", "s3://a_b/x"] {
            assert!(Location::parse(bad).is_err(), "{bad}");
        }
    }

    /// A stand-in for S3 that keeps its bucket in eu-west-1, redirects
    /// requests signed for elsewhere as S3 does, and refuses one key.
    fn s3_in_eu_west_1() -> String {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let url = format!("http://{}", server.server_addr().to_ip().unwrap());
        std::thread::spawn(move || {
            for req in server.incoming_requests() {
                let auth = req
                    .headers()
                    .iter()
                    .find(|h| h.field.equiv("authorization"))
                    .map(|h| h.value.to_string())
                    .unwrap_or_default();
                let xml = |status: u16, body: &str| {
                    tiny_http::Response::from_string(body.to_owned()).with_status_code(status)
                };
                let answer = if !auth.contains("/eu-west-1/s3/aws4_request") {
                    xml(
                        301,
                        "<Error><Code>PermanentRedirect</Code><Message>use the bucket's region</Message></Error>",
                    )
                    .with_header("x-amz-bucket-region: eu-west-1".parse::<tiny_http::Header>().unwrap())
                } else if req.url() == "/b?list-type=2&prefix=events" {
                    xml(
                        200,
                        "<ListBucketResult><IsTruncated>false</IsTruncated>\
                         <Contents><Key>events/k%3D1</Key><Size>2</Size></Contents></ListBucketResult>",
                    )
                } else if req.url() == "/b/events/k%253D1" {
                    xml(200, "ok")
                } else {
                    xml(
                        403,
                        "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
                    )
                };
                let _ = req.respond(answer);
            }
        });
        url
    }

    #[test]
    fn a_bucket_in_another_region_is_followed_and_refusals_say_what_is_needed() {
        let url = s3_in_eu_west_1();
        let tls = super::super::probe::tls_config(None).unwrap();
        let credentials = Credentials::new("AKID", "secret");
        let mut bucket = Bucket::new("b", "us-east-1", Some(&url), credentials, tls, Duration::from_secs(5)).unwrap();
        let objects = bucket.list("events").unwrap();
        assert_eq!(bucket.region(), "eu-west-1");
        assert_eq!(objects[0].key, "events/k%3D1");
        // The key goes on the wire encoded once more.
        assert_eq!(bucket.get("events/k%3D1").unwrap(), b"ok");
        let err = bucket.get("events/other").unwrap_err().to_string();
        assert!(
            err.contains("403 AccessDenied (Access Denied)")
                && err.contains("s3:GetObject")
                && err.contains("eu-west-1"),
            "{err}"
        );
    }

    #[test]
    fn listings_give_keys_sizes_and_the_next_page() {
        let page = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>b</Name><Prefix>events/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>
  <IsTruncated>true</IsTruncated><NextContinuationToken>1ueGcx/X=</NextContinuationToken>
  <Contents><Key>events/a&amp;b</Key><LastModified>2026-11-22T10:00:00.000Z</LastModified><Size>42</Size></Contents>
  <Contents><Key>events/c</Key><Size>7</Size></Contents>
</ListBucketResult>"#;
        let (objects, next) = read_listing(page).unwrap();
        assert_eq!(
            objects,
            [
                Object {
                    key: "events/a&b".into(),
                    size: 42
                },
                Object {
                    key: "events/c".into(),
                    size: 7
                }
            ]
        );
        assert_eq!(next.as_deref(), Some("1ueGcx/X="));
        let last = page.replace("<IsTruncated>true", "<IsTruncated>false");
        assert_eq!(read_listing(&last).unwrap().1, None);
        assert!(read_listing("<Error><Code>AccessDenied</Code></Error>").is_err());
        assert!(read_listing("not xml").is_err());
    }
}
