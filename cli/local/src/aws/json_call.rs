//! One signed call in AWS's JSON protocol, for the local pieces that talk to
//! a stand-in as an AWS client would (firehose-local reading a Kinesis
//! stream, `edgehose dev` creating its stream or queue in moto).

use edgehose_shared::sigv4::sign::{Credentials, sign};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::http::send;

/// A service's JSON protocol: its target prefix, media type and signing name.
#[derive(Debug, Clone, Copy)]
pub struct Protocol {
    /// `X-Amz-Target`'s prefix, e.g. `Kinesis_20131202`.
    pub target_prefix: &'static str,
    /// `application/x-amz-json-1.1` or `-1.0`.
    pub content_type: &'static str,
    /// The SigV4 service name.
    pub service: &'static str,
}

/// Kinesis Data Streams.
pub const KINESIS: Protocol = Protocol {
    target_prefix: "Kinesis_20131202",
    content_type: "application/x-amz-json-1.1",
    service: "kinesis",
};

/// SQS.
pub const SQS: Protocol = Protocol {
    target_prefix: "AmazonSQS",
    content_type: "application/x-amz-json-1.0",
    service: "sqs",
};

/// CloudWatch Logs (`edgehose receipts` reads the transform's receipts there).
pub const LOGS: Protocol = Protocol {
    target_prefix: "Logs_20140328",
    content_type: "application/x-amz-json-1.1",
    service: "logs",
};

/// The access key in `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and,
/// for temporary credentials, `AWS_SESSION_TOKEN`.
pub fn credentials_from_env() -> Result<Credentials> {
    credentials_from(|name| std::env::var(name).ok())
}

/// The access key in the variables `var` reads (empty ones are unset).
pub fn credentials_from(var: impl Fn(&str) -> Option<String>) -> Result<Credentials> {
    let var = |name: &str| var(name).filter(|v| !v.is_empty());
    match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => {
            let credentials = Credentials::new(id, secret);
            Ok(match var("AWS_SESSION_TOKEN") {
                Some(token) => credentials.with_session_token(token),
                None => credentials,
            })
        }
        _ => Err(Error::config(
            "reading AWS needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN \
             for temporary credentials) in the environment: \
             eval \"$(aws configure export-credentials --format env)\"",
        )),
    }
}

/// `operation` with `body` at `endpoint`, signed for `region` with
/// `credentials`; the answer's JSON, or the status and body when not 200.
pub fn call(
    endpoint: &str,
    protocol: Protocol,
    operation: &str,
    body: &Value,
    region: &str,
    credentials: &Credentials,
) -> Result<Value> {
    let base = endpoint.trim_end_matches('/');
    let host = base.trim_start_matches("http://").trim_start_matches("https://");
    let mut request = http::Request::post(format!("{base}/"))
        .header("host", host)
        .header("content-type", protocol.content_type)
        .header("x-amz-target", format!("{}.{operation}", protocol.target_prefix))
        .body(body.to_string().into_bytes())?;
    sign(&mut request, credentials, region, protocol.service, crate::clock::now())?;
    let response = send(request)?;
    if response.status != 200 {
        return Err(Error::protocol(format!(
            "{operation}: HTTP {} {}",
            response.status,
            response.text()
        )));
    }
    serde_json::from_slice(&response.body).map_err(|e| Error::json(operation, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_from_the_aws_variables_and_their_absence_says_how() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
        };
        let c = credentials_from(env(&[("AWS_ACCESS_KEY_ID", "AKID"), ("AWS_SECRET_ACCESS_KEY", "s")])).unwrap();
        assert_eq!((c.access_key_id(), c.session_token()), ("AKID", None));
        let c = credentials_from(env(&[
            ("AWS_ACCESS_KEY_ID", "ASIA"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("AWS_SESSION_TOKEN", "t"),
        ]))
        .unwrap();
        assert_eq!(c.session_token(), Some("t"));
        for vars in [
            &[("AWS_ACCESS_KEY_ID", "AKID")][..],
            &[("AWS_ACCESS_KEY_ID", "AKID"), ("AWS_SECRET_ACCESS_KEY", "")],
        ] {
            let err = credentials_from(env(vars)).unwrap_err().to_string();
            assert!(
                err.contains("AWS_SECRET_ACCESS_KEY") && err.contains("export-credentials"),
                "{err}"
            );
        }
    }
}
