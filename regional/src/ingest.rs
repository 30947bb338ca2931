//! The API Gateway path (`ingest-api`): API Gateway HTTP API → this Lambda →
//! a synchronous `PutRecordBatch`. It is what edgehose is compared with, so
//! it answers exactly like the edge (the same `edgehose_shared::api`
//! decisions, envelope and limits), then sends the envelopes with
//! `aws-sdk-firehose`, resends only the records that failed, and answers 200
//! only once Firehose has acknowledged every record.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_firehose::config::{BehaviorVersion, Region};
use aws_sdk_firehose::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::Record;
use edgehose_shared::api::{self, ApiConfig, ApiError, Body as ApiBody, Prepared, Reply, RequestHead};
use edgehose_shared::aws::{CallError, FailedRecord, PutOutcome};
use edgehose_shared::batch::{PackConfig, pack_calls, pack_records};
use edgehose_shared::bot;
use edgehose_shared::clock::{RandomSource, SeededRandom};
use edgehose_shared::deliver::{Pause, Sink, deliver};
use edgehose_shared::envelope::EdgeMeta;
use edgehose_shared::firehose;
use edgehose_shared::guard::{self, Limit};
use edgehose_shared::identity;
use edgehose_shared::rate_limit::{Memory, Windows};
use edgehose_shared::retry::{GiveUpReason, RetryPolicy};
use edgehose_shared::settings::{SettingError, Settings};
use edgehose_shared::timestamp::Timestamp;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};

/// The configured function (built once per cold start).
#[derive(Debug, Clone)]
pub struct IngestApi {
    api: ApiConfig,
    stream: String,
    client: aws_sdk_firehose::Client,
    pack: PackConfig,
    retry: RetryPolicy,
    /// This instance's rate-limit counters (`RATE_LIMITS`): exact for the
    /// instance, behind the API stage's own throttle (the template's
    /// `ApiThrottleRate` / `ApiThrottleBurst`).
    limits: Arc<Mutex<(Memory, Windows)>>,
}

impl IngestApi {
    /// Reads the edge's settings (`FIREHOSE_STREAM`, `AWS_REGION`, optional
    /// `FIREHOSE_ENDPOINT`, the limits, `WRITE_KEYS`, `ALLOWED_ORIGINS`,
    /// `STRICT`, `RETRY_*`) and the credentials Lambda provides
    /// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`).
    pub fn from_env() -> Result<Self, SettingError> {
        Self::from_settings(&Settings::new(|name: &str| std::env::var(name).ok()))
    }

    /// The same, from any settings lookup.
    pub fn from_settings<F: Fn(&str) -> Option<String>>(s: &Settings<F>) -> Result<Self, SettingError> {
        let mut api = ApiConfig::from_settings(s)?;
        // The answer waits for Firehose, so `ok` says more here than at the edge.
        api.ok_means = format!(
            "{}; Firehose acknowledged it before this answer",
            edgehose_shared::verdicts::OK_MEANS_CHECKED
        );
        let stream = s.required("FIREHOSE_STREAM")?;
        firehose::check_stream_name(&stream).map_err(|e| SettingError::new("FIREHOSE_STREAM", e))?;
        let region = s.required("AWS_REGION")?;
        let credentials = aws_credential_types::Credentials::new(
            s.required("AWS_ACCESS_KEY_ID")?,
            s.required("AWS_SECRET_ACCESS_KEY")?,
            s.get("AWS_SESSION_TOKEN"),
            None,
            "lambda-environment",
        );
        let mut config = aws_sdk_firehose::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region))
            .credentials_provider(credentials)
            // The shared retry plan decides what to resend and when.
            .retry_config(aws_sdk_firehose::config::retry::RetryConfig::disabled());
        if let Some(endpoint) = s.get("FIREHOSE_ENDPOINT") {
            edgehose_shared::aws::Endpoint::parse(&endpoint).map_err(|e| SettingError::new("FIREHOSE_ENDPOINT", e))?;
            config = config.endpoint_url(endpoint);
        }
        Ok(Self {
            api,
            stream,
            client: aws_sdk_firehose::Client::from_conf(config.build()),
            pack: PackConfig::from_settings(s)?,
            // API Gateway gives up on an integration after 30 s.
            retry: RetryPolicy::from_settings(s, 20_000)?,
            limits: Arc::default(),
        })
    }

    /// Handles one API Gateway request.
    pub async fn handle(&self, req: Request) -> Result<Response<Body>, lambda_http::Error> {
        let received_at = now();
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        let head = RequestHead {
            method: req.method().as_str(),
            path: req.uri().path(),
            query: req.uri().query(),
            origin: header("origin"),
            key_header: header(api::KEY_HEADER),
            authorization: header("authorization"),
            content_length: header("content-length").and_then(|v| v.parse().ok()),
            sdk_info: header("posthog-sdk-info"),
            received_at,
        };
        let ingest = match api::prepare(&head, &self.api) {
            Prepared::Reply(reply) => return Ok(respond(reply)),
            Prepared::Ingest(i) => i,
        };
        let address = match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(ctx)) => ctx.http.source_ip.clone(),
            _ => None,
        };
        let edge = EdgeMeta {
            client_ip: address.clone().filter(|_| self.api.store_client_ip).map(Into::into),
            ..EdgeMeta::default()
        };
        let body = ApiBody {
            bytes: req.body().as_ref(),
            content_type: header("content-type"),
            content_encoding: header("content-encoding"),
            inflated: None,
        };
        let mut accepted = match api::accept(&ingest, body, &edge, &self.api, received_at, &OsRandom) {
            Ok(a) => a,
            Err(reply) => return Ok(respond(reply)),
        };
        let visitor = identity::Visitor {
            cookie: header("cookie"),
            anonymous: header("sp-anonymous").is_some(),
            query: ingest.query.as_deref(),
        };
        identity::settle(&mut accepted, self.api.identity.as_ref(), &visitor, &OsRandom);
        let finding = bot::judge(&bot::Signals {
            user_agent: header("user-agent"),
            ..bot::Signals::default()
        });
        let now_ms = received_at.as_millis() as u64;
        let over = {
            let mut guarded = self.limits.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let (memory, windows) = &mut *guarded;
            match guard::limit(&accepted, &self.api, address.as_deref(), memory, now_ms, &OsRandom) {
                Limit::Within => None,
                Limit::Over(scope) => Some(scope),
                Limit::Ask(calls) => guard::ask_local(&calls, windows, memory, now_ms),
            }
        };
        let accepted = match guard::settle(accepted, &self.api, finding.as_ref(), over, now_ms) {
            Ok(a) => a,
            Err(reply) => return Ok(respond(reply)),
        };
        if let Err(e) = self.deliver(&accepted.lines).await {
            tracing::error!(events = accepted.lines.len(), error = %e, "events not delivered to Firehose");
            let error = match e {
                // A refusal that retrying cannot fix is ours to fix, not the client's.
                // The client is told which settings; the log above says what Firehose said.
                Failure::Fatal(e) => ApiError::Misconfigured(SettingError::new(
                    "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or FIREHOSE_STREAM",
                    format!("Firehose refused the batch: {e}"),
                )),
                Failure::Exhausted(why) => return Ok(respond(accepted.unavailable(why, ingest.cors))),
            };
            return Ok(respond(error.reply(ingest.cors)));
        }
        Ok(respond(accepted.reply))
    }

    /// Sends every line through the shared delivery driver, resending failed
    /// records, until all are acknowledged or the retry policy gives up.
    async fn deliver(&self, lines: &[String]) -> Result<(), Failure> {
        let records = pack_records(lines, self.pack).map_err(|e| Failure::Fatal(e.to_string()))?;
        // One budget for the whole request, however many calls it packs into:
        // API Gateway stops waiting at 30 s.
        let started = now();
        for call in pack_calls(records, &self.stream) {
            let Some(policy) = self.retry.within(started, now()) else {
                return Err(Failure::Exhausted(format!(
                    "{} records not sent: the {} ms retry budget ran out on earlier calls",
                    call.records.len(),
                    self.retry.budget_ms
                )));
            };
            let records: Vec<&[u8]> = call.records.iter().map(|r| r.data.as_slice()).collect();
            let delivery = deliver(&records, policy, policy.budget_ms, self, &TokioPause, &OsRandom).await;
            if let Some(u) = delivery.undelivered {
                return Err(match u.reason {
                    GiveUpReason::Fatal(e) => Failure::Fatal(e.to_string()),
                    GiveUpReason::AttemptsExhausted | GiveUpReason::BudgetExhausted => {
                        Failure::Exhausted(format!("{} records not acknowledged: {u}", u.records.len()))
                    }
                });
            }
        }
        Ok(())
    }

    async fn put_batch(&self, batch: &[&[u8]]) -> Result<PutOutcome, CallError> {
        // A record the SDK will not build is an error of the whole call,
        // never a record silently left out (the answer's indices would then
        // name the wrong records).
        let records = batch
            .iter()
            .map(|d| Record::builder().data(Blob::new(d.to_vec())).build())
            .collect::<Result<Vec<Record>, _>>()
            .map_err(|e| CallError::Request(format!("a Firehose record could not be built: {e}")))?;
        let sent = records.len();
        match self
            .client
            .put_record_batch()
            .delivery_stream_name(&self.stream)
            .set_records(Some(records))
            .send()
            .await
        {
            Ok(out) => Ok(PutOutcome {
                sent,
                failed: out
                    .request_responses()
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.error_code().is_some() || r.record_id().is_none())
                    .map(|(index, r)| FailedRecord {
                        index,
                        code: r.error_code().unwrap_or("InternalFailure").to_owned(),
                        message: r.error_message().unwrap_or_default().to_owned(),
                    })
                    .collect(),
            }),
            Err(SdkError::ServiceError(e)) => Err(classify_raw(
                e.raw(),
                e.err().code().unwrap_or_default(),
                e.err().message().unwrap_or_default(),
                sent,
            )),
            // The SDK could not read the answer (auth errors can come back as
            // XML even from this JSON service); the shared parser can.
            Err(SdkError::ResponseError(e)) => Err(classify_raw(e.raw(), "", "", sent)),
            Err(e) => Err(CallError::Transport(format!(
                "{}",
                aws_sdk_firehose::error::DisplayErrorContext(&e)
            ))),
        }
    }
}

/// Reads a failed call's raw answer with the same parser the edge uses,
/// falling back on what the SDK understood.
fn classify_raw(
    raw: &aws_sdk_firehose::config::http::HttpResponse,
    code: &str,
    message: &str,
    sent: usize,
) -> CallError {
    let header = |name: &str| raw.headers().get(name).map(str::to_owned);
    let status = raw.status().as_u16();
    let date = header("date");
    let body = raw.body().bytes().unwrap_or_default();
    match firehose::parse_put_record_batch_response(
        status,
        header("x-amzn-errortype").as_deref(),
        date.as_deref(),
        body,
        sent,
    ) {
        Err(err) => err,
        Ok(_) => CallError::classify(status, code.to_owned(), message.to_owned(), date.as_deref()),
    }
}

#[derive(Debug)]
enum Failure {
    Fatal(String),
    Exhausted(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Fatal(e) | Self::Exhausted(e) => f.write_str(e),
        }
    }
}

/// The answer of a function whose settings could not be read: 500 naming
/// the setting (never its value), with the request's origin echoed so a
/// browser can show it, as the edge answers. The function keeps running and
/// says so once, in its log, rather than failing every cold start.
pub fn misconfigured(e: &SettingError, req: &Request) -> Response<Body> {
    let origin = req.headers().get("origin").and_then(|v| v.to_str().ok());
    respond(ApiError::Misconfigured(e.clone()).reply(api::cors_headers_without_config(origin)))
}

fn respond(reply: Reply) -> Response<Body> {
    let mut builder = Response::builder().status(reply.status);
    for (k, v) in &reply.all_headers() {
        builder = builder.header(*k, v.as_str());
    }
    let body = match reply.bytes() {
        [] => Body::Empty,
        bytes if bytes == reply.body.as_bytes() => Body::Text(reply.body),
        bytes => Body::Binary(bytes.to_vec()),
    };
    builder.body(body).unwrap_or_else(|_| Response::new(Body::Empty))
}

/// Firehose through the SDK, as the delivery driver calls it: a call not
/// answered within `timeout_ms` (what is left of the retry budget) counts as
/// timed out, so the function answers within the budget.
impl Sink<[u8]> for IngestApi {
    async fn put(&self, records: &[&[u8]], timeout_ms: u64) -> Result<PutOutcome, CallError> {
        match tokio::time::timeout(Duration::from_millis(timeout_ms), self.put_batch(records)).await {
            Ok(result) => result,
            Err(_) => Err(CallError::TimedOut { after_ms: timeout_ms }),
        }
    }
}

/// The Lambda's clock and tokio's sleep.
struct TokioPause;

impl Pause for TokioPause {
    fn now(&self) -> Timestamp {
        now()
    }

    async fn sleep(&self, ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

fn now() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now())
}

/// Randomness from the operating system, for envelope ids and retry jitter.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRandom;

impl RandomSource for OsRandom {
    fn fill(&self, buf: &mut [u8]) {
        if getrandom::fill(buf).is_err() {
            // The OS source does not fail on Lambda's Linux; if it ever did,
            // ids would still be unique from their time part and the clock.
            let t = now().as_millis() as u64;
            SeededRandom::new(t ^ u64::from(std::process::id())).fill(buf);
        }
    }
}
