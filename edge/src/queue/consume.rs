//! Queue mode, consumer side: one batch of messages is sent to the sink in
//! as few calls as its packing allows (`sinks/send.rs`), under one deadline
//! (the consumer's retry budget, inside the 15 minutes a consumer run may
//! take). A message is always acked once its fate is settled: what landed is
//! never sent again, and what did not goes back to an events queue as a new
//! message, later (`delaySeconds` doubling, `shared::requeue`), carrying the
//! consumer's own count of tries; after `QUEUE_DELIVERY_ATTEMPTS` tries the
//! lines are dead-lettered to the R2 archive, named by id. Only when neither
//! the queue nor the archive takes them is the message left to Cloudflare's
//! redelivery, with a growing delay. A message that is not text (not this
//! Worker's) is archived as a `rejected` line holding its body.

use edgehose_shared::deadline::Deadline;
use edgehose_shared::limits::{DEAD_LETTER_RESERVE_MS, QUEUE_CONSUMER_WALL_LIMIT_MS};
use edgehose_shared::outcome::{Outcome, why};
use edgehose_shared::requeue::{Next, QueueBody, redelivery_delay_seconds};
use worker::{Env, console_error, console_log};

use crate::clock::{CryptoRandom, now};
use crate::config::EdgeConfig;
use crate::dead_letters::queue_consumer::unreadable_line;
use crate::dead_letters::{archive, ids};
use crate::js::{QueueBatch, QueueMessage, Settle};
use crate::queue::produce::{self, Write};
use crate::receipts;
use crate::sinks::send::send;

/// Delivers a queue batch and settles every message in it.
pub async fn consume(config: &EdgeConfig, env: &Env, batch: &QueueBatch) {
    let started = now();
    let whole = Deadline::after(started, QUEUE_CONSUMER_WALL_LIMIT_MS);
    let work = Deadline::after(started, config.consumer_retry.budget_ms).min(whole.less(DEAD_LETTER_RESERVE_MS));
    let messages = batch.messages();
    let mut settle = vec![Settle::Ack; messages.len()];
    let bodies: Vec<Option<QueueBody<'_>>> = messages
        .iter()
        .map(|m| m.body.as_deref().map(QueueBody::parse))
        .collect();
    // Every line with the message it came in and its place there.
    let mut lines: Vec<&str> = Vec::new();
    let mut owner: Vec<(usize, usize)> = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        match body {
            Some(body) => {
                for (j, line) in body.lines.iter().enumerate() {
                    lines.push(line);
                    owner.push((i, j));
                }
            }
            None => settle[i] = keep_unreadable(env, &config.binding_prefix(), batch, i, &messages[i], whole).await,
        }
    }
    // Per message: the places of its lines that did not land, and what to
    // archive in their place (a line judged invalid as its `rejected` line).
    let mut failed: Vec<Vec<(usize, String)>> = vec![Vec::new(); messages.len()];
    let mut reason = String::new();
    let mut fatal = false;
    // Each region's lines to its own sink, and to no other.
    for (region, members) in config.by_region(&lines) {
        let group: Vec<&str> = members.iter().map(|&k| lines[k]).collect();
        let result = match region {
            Some(region) => send(region, &group, region.consumer_retry, work).await,
            None => Err(unknown_region(&group)),
        };
        if let Err(lost) = result {
            fatal |= lost.fatal;
            reason = lost.reason;
            for (line, text) in lost.lines {
                let (i, j) = owner[members[line]];
                failed[i].push((j, text));
            }
        }
    }
    let random = CryptoRandom::default();
    let mut retried: Vec<String> = Vec::new();
    for (i, failures) in failed.iter().enumerate() {
        let (Some(body), false) = (&bodies[i], failures.is_empty()) else {
            continue;
        };
        let m = &messages[i];
        // This run was a try, and so was each earlier delivery of this copy.
        let tried = body.tries.saturating_add(m.attempts.max(1));
        let originals: Vec<&str> = failures.iter().map(|(j, _)| body.lines[*j]).collect();
        let texts: Vec<&str> = failures.iter().map(|(_, t)| t.as_str()).collect();
        // A message holds one region's lines: back to that region's queue or archive.
        let region = config
            .by_region(&originals)
            .first()
            .and_then(|(r, _)| *r)
            .unwrap_or(config);
        let prefix = region.binding_prefix();
        settle[i] = match config.requeue.after(tried, &random) {
            Next::Retry { delay_seconds } => {
                let write = Write {
                    tries: tried,
                    delay_seconds,
                    deadline: whole.less(DEAD_LETTER_RESERVE_MS),
                };
                match produce::enqueue(region, env, &originals, write).await {
                    Ok(()) => {
                        retried.push(format!(
                            "{} ({} of {} lines, try {tried}, in {delay_seconds} s)",
                            m.id,
                            originals.len(),
                            body.lines.len()
                        ));
                        Settle::Ack
                    }
                    // The queue will not take them back: keep them in the archive.
                    Err((_, e)) => {
                        let because = format!("{reason}; not put back on the queue: {e}");
                        keep_in_archive(env, &prefix, m, &texts, (&because, why::NOT_REQUEUED), whole).await
                    }
                }
            }
            Next::GiveUp => {
                let because = format!("{reason}; tried {tried} times");
                let code = if fatal {
                    why::REFUSED_BY_SINK
                } else {
                    why::TRIES_EXHAUSTED
                };
                keep_in_archive(env, &prefix, m, &texts, (&because, code), whole).await
            }
        };
    }
    if !retried.is_empty() {
        console_log!(
            "edgehose: {} of {} queue messages not delivered whole ({reason}); what did not land goes back to the queue: {}",
            retried.len(),
            messages.len(),
            retried.join(", ")
        );
    }
    batch.settle(&settle);
    receipts::flush(env);
}

/// Archives what a message could not deliver; if the archive fails, the
/// queue redelivers the message later (its landed lines with it).
async fn keep_in_archive(
    env: &Env,
    prefix: &str,
    m: &QueueMessage,
    texts: &[&str],
    (why, code): (&str, &str),
    whole: Deadline,
) -> Settle {
    match archive(env, prefix, texts, whole).await {
        Ok(key) => {
            receipts::count_dead_letters(texts, code);
            console_error!(
                "edgehose: {} events of queue message {} dead-lettered to {key} ({why}); ids: {}",
                texts.len(),
                m.id,
                ids(texts).join(",")
            );
            Settle::Ack
        }
        Err(e) => {
            let delay_seconds = redelivery_delay_seconds(m.attempts);
            console_error!(
                "edgehose: {} events of queue message {} could not be dead-lettered ({why}; {e}); the queue redelivers the message in {delay_seconds} s (delivery {}); ids: {}",
                texts.len(),
                m.id,
                m.attempts,
                ids(texts).join(",")
            );
            Settle::Retry { delay_seconds }
        }
    }
}

/// Archives a message whose body is not text, as it came; the queue keeps
/// it (redelivered later) when the archive cannot.
async fn keep_unreadable(
    env: &Env,
    prefix: &str,
    batch: &QueueBatch,
    i: usize,
    m: &QueueMessage,
    whole: Deadline,
) -> Settle {
    let line = [unreadable_line(batch, i, m)];
    match archive(env, prefix, &line, whole).await {
        Ok(key) => {
            receipts::count_lines(&line, Outcome::DeadLettered, why::NOT_TEXT);
            console_error!(
                "edgehose: queue message {} is not text (not sent by this Worker); archived as it came in {key}",
                m.id
            );
            Settle::Ack
        }
        Err(e) => {
            let delay_seconds = redelivery_delay_seconds(m.attempts);
            console_error!(
                "edgehose: queue message {} is not text and could not be archived ({e}); the queue redelivers it in {delay_seconds} s",
                m.id
            );
            Settle::Retry { delay_seconds }
        }
    }
}

/// Lines naming a region this deployment does not have (set when it had
/// it): sent nowhere, so that no region's sink holds another's events;
/// kept in the archive with the reason, for whoever restores the region.
fn unknown_region(lines: &[&str]) -> crate::sinks::Lost {
    let region = lines
        .first()
        .and_then(|l| edgehose_shared::envelope::region_of(l))
        .unwrap_or_default();
    crate::sinks::Lost {
        lines: lines.iter().enumerate().map(|(i, l)| (i, (*l).to_owned())).collect(),
        reason: format!("its region {region:?} is not one of REGIONS: sent to no sink"),
        fatal: true,
    }
}
