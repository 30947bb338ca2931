//! Sending lines to the configured sink: the one step direct mode, the
//! queue consumer and redrive share. Each sink judges, packs and sends its
//! own way (`firehose.rs`, `kinesis.rs`, `sqs.rs`, each a [`LineSink`])
//! through the shared delivery driver, its calls sharing one budget; what
//! does not land comes back as [`Lost`], each line with its index in the
//! input, for the caller to dead-letter or leave to the queue.

use edgehose_shared::deadline::Deadline;
use edgehose_shared::failover::Target;
use edgehose_shared::outcome::Outcome;
use edgehose_shared::retry::RetryPolicy;

use crate::config::{EdgeConfig, SinkConfig};
use crate::receipts;
use crate::sinks::firehose::Firehose;
use crate::sinks::kinesis::Kinesis;
use crate::sinks::sqs::Sqs;
use crate::sinks::{Budget, LineSink, Lost, failover};

/// Judges, packs and sends `lines` to the region's sink with `policy`'s
/// retries, every call of it inside one budget that ends by `deadline` —
/// or, for a region with a standby whose home has failed too long in this
/// isolate, to the standby's ([`edgehose_shared::failover`]): what home
/// does not take then goes to the standby in the same send.
pub async fn send<S: AsRef<str>>(
    config: &EdgeConfig,
    lines: &[S],
    policy: RetryPolicy,
    deadline: Deadline,
) -> Result<(), Lost> {
    // With regions, what lands is counted under the region it landed in.
    let home_name = config.residency.as_ref().map_or("", |r| r.name.as_str());
    let (Some(standby), Some(region)) = (config.standby.as_deref(), config.residency.as_ref()) else {
        return send_to(config, lines, policy, deadline, home_name).await;
    };
    let landed_in = format!("standby:{}", standby.residency.as_ref().map_or("", |r| r.name.as_str()));
    let target = failover::target(&region.name, config.failover);
    let home = match target {
        Target::Standby => return send_to(standby, lines, policy, deadline, &landed_in).await,
        // A probe tries home briefly: a failing home must not eat the send's budget.
        Target::Probe => RetryPolicy {
            max_attempts: 1,
            budget_ms: policy.budget_ms.min(PROBE_BUDGET_MS),
            ..policy
        },
        Target::Home => policy,
    };
    let result = send_to(config, lines, home, deadline, home_name).await;
    let failed_over = failover::record(&region.name, config.failover, result.is_ok(), standby.sink.name());
    match result {
        Err(lost) if failed_over => {
            // Home refused and this isolate is now (or still) failed over:
            // what did not land goes to the standby at once.
            let rest: Vec<&str> = lost.lines.iter().map(|(i, _)| lines[*i].as_ref()).collect();
            send_to(standby, &rest, policy, deadline, &landed_in)
                .await
                .map_err(|mut l| {
                    for (i, _) in &mut l.lines {
                        *i = lost.lines[*i].0;
                    }
                    l
                })
        }
        other => other,
    }
}

/// The most a probe of a failing home may take before the standby gets the
/// send: one attempt, inside this.
const PROBE_BUDGET_MS: u64 = 2_000;

/// [`send`] to one sink; what lands is counted delivered under `landed_in`
/// (with regions, the region's name at home and `standby:<name>` at a
/// standby; empty without).
async fn send_to<S: AsRef<str>>(
    config: &EdgeConfig,
    lines: &[S],
    policy: RetryPolicy,
    deadline: Deadline,
    landed_in: &str,
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
        Ok(()) => receipts::count_lines(lines, Outcome::Delivered, landed_in),
        Err(lost) => {
            let mut failed: Vec<usize> = lost.lines.iter().map(|(i, _)| *i).collect();
            failed.sort_unstable();
            let landed: Vec<&str> = (0..lines.len())
                .filter(|i| failed.binary_search(i).is_err())
                .map(|i| lines[i].as_ref())
                .collect();
            receipts::count_lines(&landed, Outcome::Delivered, landed_in);
        }
    }
    result.map_err(|mut lost| {
        lost.reason = format!("{}: {}", config.sink.name(), lost.reason);
        lost
    })
}
