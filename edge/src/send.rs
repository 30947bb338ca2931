//! Sending lines to the configured sink: the one step direct mode, the
//! queue consumer and redrive share. Each sink judges, packs and sends its
//! own way (`firehose.rs`, `kinesis.rs`, `sqs.rs`, each a [`LineSink`])
//! through the shared delivery driver, its calls sharing one budget; what
//! does not land comes back as [`Lost`], each line with its index in the
//! input, for the caller to dead-letter or leave to the queue.

use edgehose_shared::deadline::Deadline;
use edgehose_shared::outcome::Outcome;
use edgehose_shared::retry::RetryPolicy;

use crate::config::{EdgeConfig, SinkConfig};
use crate::firehose::Firehose;
use crate::kinesis::Kinesis;
use crate::outcomes;
use crate::sink::{Budget, LineSink, Lost};
use crate::sqs::Sqs;

/// Judges, packs and sends `lines` to the configured sink with `policy`'s
/// retries, every call of it inside one budget that ends by `deadline`.
pub async fn send<S: AsRef<str>>(
    config: &EdgeConfig,
    lines: &[S],
    policy: RetryPolicy,
    deadline: Deadline,
) -> Result<(), Lost> {
    let budget = Budget::starting_now(policy, deadline);
    let result = match &config.sink {
        SinkConfig::Firehose {
            streams,
            endpoint,
            pack,
            partitioning,
        } => {
            let sink = Firehose {
                config,
                streams,
                endpoint,
                pack: *pack,
                partitioning: *partitioning,
            };
            sink.send(lines, budget).await
        }
        SinkConfig::Kinesis {
            streams,
            endpoint,
            pack,
            keys,
        } => {
            let sink = Kinesis {
                config,
                streams,
                endpoint,
                pack,
                keys,
            };
            sink.send(lines, budget).await
        }
        SinkConfig::Sqs {
            queues,
            endpoint,
            pack,
            groups,
        } => {
            let sink = Sqs {
                config,
                queues,
                endpoint,
                pack: *pack,
                groups,
            };
            sink.send(lines, budget).await
        }
    };
    // What the sink acknowledged is counted delivered; the rest is the caller's.
    match &result {
        Ok(()) => outcomes::count_lines(lines, Outcome::Delivered, ""),
        Err(lost) => {
            let mut failed: Vec<usize> = lost.lines.iter().map(|(i, _)| *i).collect();
            failed.sort_unstable();
            let landed: Vec<&str> = (0..lines.len())
                .filter(|i| failed.binary_search(i).is_err())
                .map(|i| lines[i].as_ref())
                .collect();
            outcomes::count_lines(&landed, Outcome::Delivered, "");
        }
    }
    result.map_err(|mut lost| {
        lost.reason = format!("{}: {}", config.sink.name(), lost.reason);
        lost
    })
}
