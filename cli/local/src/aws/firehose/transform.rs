//! The transformation Lambda as Firehose runs it: the real function binary
//! behind a local Runtime API, restarted when it crashes, invoked with a
//! buffer split at the processor's size and retried as `NumberOfRetries` says.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use edgehose_shared::firehose::{TransformEvent, TransformRecord};

use super::counters::Counters;
use super::stream::{Record, Stream};
use super::transform_answer::{Answer, apply};
use crate::aws::cloudwatch_logs::LogGroup;
use crate::aws::lambda_runtime::{Function, RawOutcome, RuntimeApi};
use crate::error::{Error, Result};

/// The function's name, and so its log group's: `/aws/lambda/edgehose-transform`.
pub const FUNCTION_NAME: &str = "edgehose-transform";

/// The transformation function, run for real behind a Runtime API.
pub struct Transform {
    /// Declared before `api` so it is dropped (killed) first: a function that
    /// outlived its Runtime API would be refused its next event and panic in
    /// `lambda_runtime`, as no real Lambda sandbox ever sees.
    function: Mutex<Option<Function>>,
    api: RuntimeApi,
    binary: PathBuf,
    env: Vec<(String, String)>,
    log_file: Option<PathBuf>,
    /// Every line the function printed, as its CloudWatch Logs group holds
    /// them: `FilterLogEvents` reads the receipts there.
    pub logs: Arc<LogGroup>,
    /// Retries after a failed invocation (Firehose's `NumberOfRetries`, default 3).
    pub retries: u32,
    /// How long one invocation may take.
    pub timeout: Duration,
    /// The function's ARN, as written in error records.
    pub arn: String,
}

impl Transform {
    /// Starts the function binary.
    pub fn start(
        binary: PathBuf,
        env: Vec<(String, String)>,
        log_file: Option<PathBuf>,
        retries: u32,
        timeout: Duration,
    ) -> Result<Self> {
        let api = RuntimeApi::start()?;
        let mut env = env;
        if !env.iter().any(|(k, _)| k == "AWS_LAMBDA_LOG_FORMAT") {
            // Lambda's JSON log format: one JSON object per line.
            env.push(("AWS_LAMBDA_LOG_FORMAT".into(), "JSON".into()));
        }
        let name = binary
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "transform".into());
        let t = Self {
            logs: Arc::new(LogGroup::new(format!("/aws/lambda/{FUNCTION_NAME}"))),
            api,
            arn: format!(
                "arn:aws:lambda:{}:{}:function:{name}",
                super::REGION_DEFAULT,
                super::ACCOUNT
            ),
            binary,
            env,
            log_file,
            function: Mutex::new(None),
            retries,
            timeout,
        };
        t.ensure_running()?;
        Ok(t)
    }

    /// What the function printed recently.
    pub fn log(&self) -> String {
        self.function
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map(Function::log)
            .unwrap_or_default()
    }

    /// (Re)starts the process if it is not running, as Lambda starts a new
    /// execution environment after one crashed.
    fn ensure_running(&self) -> Result<()> {
        let mut f = self
            .function
            .lock()
            .map_err(|_| Error::Poisoned("the transform's process"))?;
        if f.as_mut().is_some_and(Function::is_running) {
            return Ok(());
        }
        self.api.clear_init_error();
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        *f = Some(self.api.spawn_logged(
            &self.binary,
            FUNCTION_NAME,
            &env,
            self.log_file.as_deref(),
            Some(&self.logs),
        )?);
        Ok(())
    }

    fn invoke(&self, event: String) -> Result<String> {
        self.ensure_running()?;
        match self.api.invoke_raw(event, self.timeout)? {
            RawOutcome::Response(body) => Ok(body),
            RawOutcome::Error(body) => Err(Error::protocol(format!("the function returned an error: {body}"))),
        }
    }
}

/// Splits a buffer into invocations of at most `max_bytes` of record data
/// (Firehose's processor buffer size), at least one record each.
pub fn invocations(records: &[Record], max_bytes: usize) -> Vec<&[Record]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, r) in records.iter().enumerate() {
        if i > start && bytes + r.data.len() > max_bytes {
            out.push(&records[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += r.data.len();
    }
    if start < records.len() {
        out.push(&records[start..]);
    }
    out
}

/// Invokes the function with `records`, retrying a failed invocation; every
/// record gets its fate.
pub fn invoke_with_retries(stream: &Stream, t: &Transform, counters: &Counters, records: &[Record]) -> Vec<Answer> {
    let event = TransformEvent {
        invocation_id: uuid::Uuid::new_v4().to_string(),
        delivery_stream_arn: stream.arn.clone(),
        region: super::REGION_DEFAULT.to_owned(),
        records: records
            .iter()
            .map(|r| TransformRecord {
                record_id: r.id.clone(),
                approximate_arrival_timestamp: r.arrival_ms,
                data: B64.encode(&r.data),
            })
            .collect(),
    };
    // Serializing strings and numbers cannot fail; were it ever to, every
    // record fails with the reason rather than going out as an empty event.
    let event = match serde_json::to_string(&event) {
        Ok(event) => event,
        Err(e) => {
            return records
                .iter()
                .map(|_| Answer::Failed {
                    code: "Lambda.JsonProcessingException",
                    message: format!("firehose-local could not write the invocation event: {e}"),
                    attempts: 0,
                })
                .collect();
        }
    };
    let mut last = String::new();
    let attempts = t.retries + 1;
    for attempt in 1..=attempts {
        counters.invocations.fetch_add(1, Ordering::Relaxed);
        match t.invoke(event.clone()) {
            Ok(body) => match apply(records, &body) {
                Ok(answers) => return answers,
                // A malformed answer is the function's fault, not the record's:
                // every record fails with the reason, as Firehose does.
                Err((code, message)) => {
                    return records
                        .iter()
                        .map(|_| Answer::Failed {
                            code,
                            message: message.clone(),
                            attempts: attempt,
                        })
                        .collect();
                }
            },
            Err(e) => {
                counters.invocation_errors.fetch_add(1, Ordering::Relaxed);
                eprintln!("firehose-local: transform invocation {attempt} of {attempts} failed: {e}");
                last = e.to_string();
                if attempt < attempts {
                    std::thread::sleep(Duration::from_millis(200 * u64::from(attempt)));
                }
            }
        }
    }
    records
        .iter()
        .map(|_| Answer::Failed {
            code: "Lambda.FunctionError",
            message: format!("The Lambda function was invoked {attempts} times and failed: {last}"),
            attempts,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invocations_stay_under_the_processor_buffer_and_keep_every_record() {
        let records: Vec<Record> = (0..10).map(|i| Record::filled(&i.to_string(), 400)).collect();
        let chunks = invocations(&records, 1000);
        assert_eq!(chunks.iter().map(|c| c.len()).collect::<Vec<_>>(), [2, 2, 2, 2, 2]);
        // A record larger than the buffer still goes, alone.
        let big = [Record::filled("a", 5000), Record::filled("b", 1)];
        assert_eq!(invocations(&big, 1000).len(), 2);
    }
}
