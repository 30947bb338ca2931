//! The dead-letter queue's consumer. Dead letters are written straight to
//! the `DEAD_LETTERS` R2 archive (`mod.rs`); the dead-letter queue only
//! receives what Cloudflare itself moves there after a message's
//! `max_retries`. This Worker consumes it and writes each batch as one
//! NDJSON object (under its content key, `shared::dead_letter`), acking the
//! batch only once it is stored. It needs nothing but its R2 binding: a
//! Worker whose other settings are broken still archives. When R2 fails,
//! the queue redelivers the batch later and later (a minute, doubling, up to
//! 12 hours), so an R2 outage cannot burn its retries in minutes. A message
//! that is not text is kept as a `rejected` line holding its body as text.

use edgehose_shared::deadline::Deadline;
use edgehose_shared::limits::QUEUE_CONSUMER_WALL_LIMIT_MS;
use edgehose_shared::outcome::{Outcome, why};
use edgehose_shared::rejected::Rejected;
use edgehose_shared::requeue::{QueueBody, redelivery_delay_seconds};
use edgehose_shared::validate::{Reason, Violation};
use worker::{Env, console_error, console_log};

use crate::clock::now;
use crate::dead_letters::archive as write_archive;
use crate::js::{QueueBatch, QueueMessage, Settle};
use crate::receipts;

/// Archives a batch from the dead-letter queue of the region whose bindings
/// start with `prefix` (`""` without regions), in that region's archive.
pub async fn archive(env: &Env, prefix: &str, batch: &QueueBatch) {
    let deadline = Deadline::after(now(), QUEUE_CONSUMER_WALL_LIMIT_MS);
    let messages = batch.messages();
    let mut lines: Vec<String> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        match &m.body {
            Some(body) => lines.extend(QueueBody::parse(body).lines.into_iter().map(str::to_owned)),
            None => lines.push(unreadable_line(batch, i, m)),
        }
    }
    match write_archive(env, prefix, &lines, deadline).await {
        Ok(key) => {
            receipts::count_lines(&lines, Outcome::Archived, why::MAX_RETRIES);
            console_log!(
                "edgehose: archived {} dead letters ({} lines) as {key}",
                messages.len(),
                lines.len()
            );
            batch.settle(&vec![Settle::Ack; messages.len()]);
        }
        Err(e) => {
            let settle: Vec<Settle> = messages
                .iter()
                .map(|m| Settle::Retry {
                    delay_seconds: redelivery_delay_seconds(m.attempts),
                })
                .collect();
            console_error!(
                "edgehose: could not archive {} dead letters ({e}); the queue redelivers them later (delivery {})",
                messages.len(),
                messages.iter().map(|m| m.attempts).max().unwrap_or(1)
            );
            batch.settle(&settle);
        }
    }
    receipts::flush(env);
}

/// A `rejected` line keeping a message whose body is not text, the body as
/// text (`base64` for bytes, JSON for anything else).
pub fn unreadable_line(batch: &QueueBatch, i: usize, m: &QueueMessage) -> String {
    let (kind, content) = batch.body_as_text(i);
    let why = [Violation::new(
        Reason::NotAnEnvelope,
        "",
        format!(
            "queue message {} was not text; its body, as {kind}, is the envelope",
            m.id
        ),
    )];
    Rejected::new("", None, &why, &content).to_line()
}
