//! The Lambda shell around [`crate::transform`]: configuration from the
//! environment, the Firehose event in, the response and metrics out.

use edgehose_shared::limits::Limits;
use edgehose_shared::outcome::receipt_line;
use edgehose_shared::settings::{SettingError, Settings};
use edgehose_shared::source::Sources;
use edgehose_shared::table::Destination;
use lambda_runtime::{Error, LambdaEvent};

use crate::schemas::{SchemaError, Schemas};
use crate::{metrics, rejection_log};

/// The stage the transform's receipt lines name.
pub const RECEIPT_STAGE: &str = "transform";

/// Why the function could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A setting is missing or bad.
    #[error(transparent)]
    Setting(#[from] SettingError),
    /// A JSON Schema could not be loaded.
    #[error(transparent)]
    Schema(#[from] SchemaError),
}
use crate::transform::{TransformConfig, TransformEvent, TransformResponse, inputs, transform};

/// The transformation function, configured once at cold start.
#[derive(Debug, Clone, Default)]
pub struct Transformer {
    config: TransformConfig,
}

impl Transformer {
    /// Reads `PARTITIONING` (`true` to emit dynamic-partitioning keys),
    /// `DESTINATION` (`iceberg`: rows for the tables of `DATABASE_NAME`), the
    /// event limits (`MAX_EVENT_BYTES`, `MAX_DEPTH`, as on the edge),
    /// `TRANSFORM_THREADS` (0, the default: one per CPU) and the JSON Schemas
    /// ([`crate::schemas`]).
    pub fn from_env() -> Result<Self, StartError> {
        let mut t = Self::from_settings(&Settings::new(|name: &str| std::env::var(name).ok()))?;
        t.config.schemas = Schemas::from_env()?;
        tracing::info!(schemas = ?t.config.schemas, "schemas compiled");
        Ok(t)
    }

    /// The same, from any settings lookup.
    pub fn from_settings<F: Fn(&str) -> Option<String>>(s: &Settings<F>) -> Result<Self, SettingError> {
        // Not the whole ApiConfig: write keys are the edge's and ingest-api's
        // business, and the transform is not given them.
        Ok(Self {
            config: TransformConfig {
                limits: Limits::from_settings(s)?,
                partitioning: s.bool_or("PARTITIONING", false)?,
                max_response_bytes: None,
                schemas: Schemas::default(),
                sources: Sources::from_settings(s)?,
                threads: s.usize_or("TRANSFORM_THREADS", 0)?,
                iceberg_database: match Destination::from_settings(s)? {
                    Destination::Json => None,
                    Destination::Iceberg => Some(s.required("DATABASE_NAME")?),
                },
            },
        })
    }

    /// A transformer with this configuration.
    pub fn new(config: TransformConfig) -> Self {
        Self { config }
    }

    /// Handles one invocation: never an error for bad data.
    pub async fn handle(&self, event: LambdaEvent<TransformEvent>) -> Result<TransformResponse, Error> {
        let records = inputs(&event.payload);
        let (response, counts) = transform(&records, &self.config);
        tracing::info!(
            request_id = %event.context.request_id,
            records = records.len(),
            events_ok = counts.events_ok,
            events_invalid = counts.events_invalid,
            events_quarantined = counts.events_quarantined,
            records_failed = counts.records_failed,
            "transformed"
        );
        // One bounded line per invalid piece of a record Firehose keeps under
        // the error prefix (its id, reasons and an excerpt: the event itself
        // is in the error prefix), up to a ceiling an invocation.
        for line in response.failed_rejections.iter().take(rejection_log::MOST_LINES) {
            let rejected = rejection_log::summary(line);
            tracing::warn!(request_id = %event.context.request_id, rejected = %rejected, "rejected");
        }
        if let Some(more) = response.failed_rejections.len().checked_sub(rejection_log::MOST_LINES)
            && more > 0
        {
            tracing::warn!(request_id = %event.context.request_id, more, "rejected (more not logged one by one; see the error prefix)");
        }
        metrics::emit(&counts);
        // The invocation's receipt: what became of each line, by the minute
        // the edge received it, key and door, where `edgehose receipts`
        // reads it (CloudWatch Logs; firehose-local's stand-in locally).
        let stream = event.payload.delivery_stream_arn.rsplit('/').next().unwrap_or_default();
        println!("{}", receipt_line(RECEIPT_STAGE, stream, &response.receipt));
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transform_reads_sources_without_the_write_keys_it_is_not_given() {
        let sources = r#"{"bike":{"id_field":"uuid","keys":["bikes"]}}"#;
        let s = Settings::new(move |n: &str| (n == "SOURCES").then(|| sources.to_owned()));
        let t = Transformer::from_settings(&s).unwrap();
        assert!(t.config.sources.get("bike").is_some());
        let bad = Settings::new(|n: &str| (n == "SOURCES").then(|| "{".to_owned()));
        assert_eq!(Transformer::from_settings(&bad).unwrap_err().name, "SOURCES");
    }
}
