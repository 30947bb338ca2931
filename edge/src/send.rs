//! Sending lines to the configured sink: the one step direct mode, the
//! queue consumer and redrive share. Each sink judges, packs and sends its
//! own way (`firehose.rs`, `kinesis.rs`, `sqs.rs`) through the shared delivery driver,
//! its calls sharing one retry budget; what does not land comes back as
//! [`Lost`], each line with its index in the input, for the caller to
//! dead-letter or leave to the queue.

use std::borrow::Cow;
use std::time::Duration;

use edgehose_shared::deliver::{Pause, Sink, deliver};
use edgehose_shared::retry::RetryPolicy;
use edgehose_shared::timestamp::Timestamp;
use worker::Delay;

use crate::clock::{CryptoRandom, now};
use crate::config::{EdgeConfig, SinkConfig};
use crate::{firehose, kinesis, sqs};

/// The lines that did not land, and why.
#[derive(Debug, Default)]
pub struct Lost {
    /// Each line's index in the input and what to keep in its place (the
    /// line, or its `rejected` line when it was judged invalid).
    pub lines: Vec<(usize, String)>,
    /// Why the last of them did not land.
    pub reason: String,
}

impl Lost {
    /// Every line, for one reason.
    pub fn all(texts: &[Cow<'_, str>], reason: String) -> Self {
        Self {
            lines: texts
                .iter()
                .enumerate()
                .map(|(i, t)| (i, t.clone().into_owned()))
                .collect(),
            reason,
        }
    }

    /// Adds the lines at `indices`.
    pub fn add(&mut self, indices: impl IntoIterator<Item = usize>, texts: &[Cow<'_, str>], reason: String) {
        self.lines
            .extend(indices.into_iter().map(|i| (i, texts[i].clone().into_owned())));
        self.reason = reason;
    }

    /// `Ok` when nothing was lost.
    pub fn into_result(mut self) -> Result<(), Self> {
        if self.lines.is_empty() {
            return Ok(());
        }
        self.lines.sort_unstable_by_key(|(i, _)| *i);
        Err(self)
    }

    /// The lines alone.
    pub fn texts(self) -> Vec<String> {
        self.lines.into_iter().map(|(_, t)| t).collect()
    }
}

/// Judges, packs and sends `lines` to the configured sink with `policy`'s
/// retries, every call of it inside one budget.
pub async fn send<S: AsRef<str>>(config: &EdgeConfig, lines: &[S], policy: RetryPolicy) -> Result<(), Lost> {
    let result = match &config.sink {
        SinkConfig::Firehose {
            streams,
            endpoint,
            pack,
            partitioning,
        } => firehose::send(config, streams, endpoint, *pack, *partitioning, lines, policy).await,
        SinkConfig::Kinesis {
            streams,
            endpoint,
            pack,
            keys,
        } => kinesis::send(config, streams, endpoint, pack, keys, lines, policy).await,
        SinkConfig::Sqs {
            queues,
            endpoint,
            pack,
            groups,
        } => sqs::send(config, queues, endpoint, *pack, groups, lines, policy).await,
    };
    result.map_err(|mut lost| {
        lost.reason = format!("{}: {}", config.sink.name(), lost.reason);
        lost
    })
}

/// Delivers one call of a send that began at `started` through the shared
/// driver, with what is left of `policy`'s budget: the records (indices into
/// `records`) that did not land and why, or `None` when all did. With no
/// budget left the call is not made, and all its records come back.
pub async fn deliver_call<R: ?Sized, S: Sink<R>>(
    config: &EdgeConfig,
    records: &[&R],
    sink: &S,
    policy: RetryPolicy,
    started: Timestamp,
) -> Option<(Vec<usize>, String)> {
    let Some(left) = policy.within(started, now()) else {
        let reason = format!(
            "not sent: the {} ms retry budget ran out on earlier calls",
            policy.budget_ms
        );
        return Some(((0..records.len()).collect(), reason));
    };
    let random = CryptoRandom::default();
    let delivery = deliver(records, left, config.call_timeout_ms, sink, &WorkerPause, &random).await;
    delivery.undelivered.map(|u| {
        let reason = u.to_string();
        (u.records, reason)
    })
}

/// The Worker's clock (`Date.now()`) and sleep (`setTimeout`).
struct WorkerPause;

impl Pause for WorkerPause {
    fn now(&self) -> Timestamp {
        now()
    }

    async fn sleep(&self, ms: u64) {
        Delay::from(Duration::from_millis(ms)).await;
    }
}
