//! Queue mode, consumer side: one batch of messages is sent to the sink in
//! as few calls as its packing allows (`send.rs`; the calls share the
//! consumer's retry budget). Messages whose lines all
//! landed are acked; the others are redelivered by the queue, each run saying
//! why; on a message's last delivery (`QUEUE_MAX_RETRIES`) the consumer
//! dead-letters what it still cannot deliver itself, naming every id. A
//! message that is not text goes to the dead-letter queue as it came.

use worker::{Env, console_error, console_log};

use crate::config::{DEAD_LETTER_QUEUE, EdgeConfig};
use crate::forward::dead_letter;
use crate::js::{QueueBatch, QueueMessage};
use crate::send::send;

/// Delivers a queue batch and settles every message in it.
pub async fn consume(config: &EdgeConfig, env: &Env, batch: &QueueBatch) {
    let messages = batch.messages();
    let mut retry = vec![false; messages.len()];
    // Readable messages by their index in the batch.
    let mut readable: Vec<usize> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        if m.body.is_some() {
            readable.push(i);
        } else {
            retry[i] = !forward_unreadable(env, batch, i, m, config.queue_max_retries).await;
        }
    }
    // Every line with the message it came in.
    let mut lines: Vec<&str> = Vec::new();
    let mut owner: Vec<usize> = Vec::new();
    for (k, &i) in readable.iter().enumerate() {
        for line in messages[i].body.as_deref().unwrap_or_default().lines() {
            if !line.is_empty() {
                lines.push(line);
                owner.push(k);
            }
        }
    }
    // Why each readable message was not delivered, and its lines that did
    // not land (a rejected line as its `rejected` line).
    let mut failures: Vec<Option<String>> = vec![None; readable.len()];
    let mut undelivered_lines: Vec<Vec<String>> = vec![Vec::new(); readable.len()];
    if let Err(lost) = send(config, &lines, config.consumer_retry).await {
        for (line, text) in lost.lines {
            failures[owner[line]] = Some(lost.reason.clone());
            undelivered_lines[owner[line]].push(text);
        }
    }
    let last_delivery = config.queue_max_retries.saturating_add(1);
    let mut redelivered: Vec<(&QueueMessage, &str)> = Vec::new();
    for (k, failure) in failures.iter().enumerate() {
        let Some(reason) = failure else { continue };
        let i = readable[k];
        let m = &messages[i];
        if m.attempts >= last_delivery {
            // Only what did not land: the rest of the message is in the sink.
            let why = format!("{reason}; delivery {} of {last_delivery}", m.attempts);
            // Refused by a bound dead-letter queue: the queue's own
            // dead-letter step is the one left.
            retry[i] = !dead_letter(env, &undelivered_lines[k], &why).await;
        } else {
            retry[i] = true;
            redelivered.push((m, reason));
        }
    }
    if let Some((first, reason)) = redelivered.first() {
        console_log!(
            "edgehose: {} of {} queue messages not delivered ({reason}); the queue redelivers them (delivery {} of {last_delivery}), messages {}",
            redelivered.len(),
            messages.len(),
            first.attempts,
            redelivered
                .iter()
                .map(|(m, _)| m.id.as_str())
                .collect::<Vec<_>>()
                .join(",")
        );
    }
    batch.settle(&retry);
}

/// Sends a message whose body is not text to the dead-letter queue as it
/// came. `false` when it could not, so the queue keeps it.
async fn forward_unreadable(env: &Env, batch: &QueueBatch, i: usize, m: &QueueMessage, max_retries: u32) -> bool {
    let Ok(queue) = env.queue(DEAD_LETTER_QUEUE) else {
        if m.attempts > max_retries {
            console_error!(
                "edgehose: LOST queue message {}: it is not text and there is no dead-letter queue",
                m.id
            );
            return true;
        }
        console_error!(
            "edgehose: queue message {} is not text and there is no dead-letter queue; the queue keeps it",
            m.id
        );
        return false;
    };
    match batch.forward(i, queue.as_ref()).await {
        Ok(()) => {
            console_error!(
                "edgehose: queue message {} is not text (not sent by this Worker); moved to the dead-letter queue as it came",
                m.id
            );
            true
        }
        Err(e) => {
            console_error!(
                "edgehose: queue message {} is not text and the dead-letter queue refused it ({e}); the queue keeps it",
                m.id
            );
            false
        }
    }
}
