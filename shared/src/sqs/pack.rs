//! Packing envelope lines into SQS messages and `SendMessageBatch` calls.
//!
//! A message is whole lines joined by `\n` (as the edge's own queue
//! messages are), up to the target size, so a 170-byte event does not cost
//! a message of its own; a call takes up to 10 messages and 1 MiB of
//! bodies. On a FIFO queue each message carries one group id (lines of one
//! key share messages, in order; lines without one get a random group) and
//! a deduplication id, the SHA-256 of its body, so a resend after a lost
//! answer is dropped by SQS rather than delivered twice.

use std::collections::HashMap;

use super::send_message_batch::{Entry, sqs_safe};
use super::{DEFAULT_MESSAGE_BYTES, MAX_BATCH_BYTES, MAX_ENTRIES_PER_BATCH, MAX_FIFO_ID_CHARS};
use crate::clock::RandomSource;
use crate::kinesis::partition::random_key;
use crate::settings::{SettingError, Settings};
use crate::sigv4::sha256_hex;

/// How messages are filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackConfig {
    /// A message is closed before it would pass this many bytes
    /// (`SQS_MESSAGE_TARGET_BYTES`; 256 KiB by default, which every queue
    /// takes; at most 1 MiB, for queues whose `MaximumMessageSize` allows it).
    pub message_target_bytes: usize,
}

impl Default for PackConfig {
    fn default() -> Self {
        Self {
            message_target_bytes: DEFAULT_MESSAGE_BYTES,
        }
    }
}

impl PackConfig {
    /// Reads `SQS_MESSAGE_TARGET_BYTES`.
    pub fn from_settings<F: Fn(&str) -> Option<String>>(s: &Settings<F>) -> Result<Self, SettingError> {
        let target = s.usize_or("SQS_MESSAGE_TARGET_BYTES", DEFAULT_MESSAGE_BYTES)?;
        if !(1024..=MAX_BATCH_BYTES).contains(&target) {
            return Err(SettingError::new(
                "SQS_MESSAGE_TARGET_BYTES",
                format!("= {target} is invalid: an SQS message holds 1024 to {MAX_BATCH_BYTES} bytes"),
            ));
        }
        Ok(Self {
            message_target_bytes: target,
        })
    }
}

/// One SQS message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its body: lines joined by `\n`.
    pub body: String,
    /// Its group id, on a FIFO queue.
    pub group_id: Option<String>,
    /// Its deduplication id, on a FIFO queue.
    pub deduplication_id: Option<String>,
    /// The input lines it carries, ascending.
    pub lines: Vec<usize>,
}

impl Message {
    /// The message as `SendMessageBatch` sends it.
    pub fn entry(&self) -> Entry<'_> {
        Entry {
            body: &self.body,
            group_id: self.group_id.as_deref(),
            deduplication_id: self.deduplication_id.as_deref(),
        }
    }
}

/// One `SendMessageBatch` call's worth of messages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Batch {
    /// The messages.
    pub messages: Vec<Message>,
    /// Their bodies' bytes together.
    pub bytes: usize,
}

impl Batch {
    /// The messages as `SendMessageBatch` sends them.
    pub fn entries(&self) -> Vec<Entry<'_>> {
        self.messages.iter().map(Message::entry).collect()
    }
}

/// A line no message can hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {index} is {bytes} bytes; an SQS message here holds at most {limit} (SQS_MESSAGE_TARGET_BYTES)")]
pub struct LineTooLarge {
    /// The line's index.
    pub index: usize,
    /// Its size.
    pub bytes: usize,
    /// The message target in force.
    pub limit: usize,
}

/// Packs `lines` into calls. On a FIFO queue `keys[i]` is line `i`'s group
/// (`None`: any); on a standard queue keys are not used.
pub fn pack<L: AsRef<str>>(
    lines: &[L],
    keys: &[Option<String>],
    fifo: bool,
    config: PackConfig,
    random: &dyn RandomSource,
) -> Result<Vec<Batch>, LineTooLarge> {
    Ok(batches(messages(lines, keys, fifo, config, random)?))
}

/// Packs lines into messages only, groups in order of first appearance.
pub fn messages<L: AsRef<str>>(
    lines: &[L],
    keys: &[Option<String>],
    fifo: bool,
    config: PackConfig,
    random: &dyn RandomSource,
) -> Result<Vec<Message>, LineTooLarge> {
    let mut group_of: HashMap<Option<&str>, usize> = HashMap::new();
    let mut groups: Vec<(Option<&str>, Vec<usize>)> = Vec::new();
    for i in 0..lines.len() {
        let key = if fifo {
            keys.get(i).and_then(|k| k.as_deref())
        } else {
            None
        };
        let g = *group_of.entry(key).or_insert_with(|| {
            groups.push((key, Vec::new()));
            groups.len() - 1
        });
        groups[g].1.push(i);
    }
    let limit = config.message_target_bytes;
    let mut messages = Vec::new();
    for (key, members) in groups {
        let mut body = String::new();
        let mut held: Vec<usize> = Vec::new();
        for i in members {
            let line = sqs_safe(lines[i].as_ref());
            if line.len() > limit {
                return Err(LineTooLarge {
                    index: i,
                    bytes: line.len(),
                    limit,
                });
            }
            if !held.is_empty() && body.len() + 1 + line.len() > limit {
                messages.push(close(
                    std::mem::take(&mut body),
                    std::mem::take(&mut held),
                    key,
                    fifo,
                    random,
                ));
            }
            if !held.is_empty() {
                body.push('\n');
            }
            body.push_str(&line);
            held.push(i);
        }
        if !held.is_empty() {
            messages.push(close(body, held, key, fifo, random));
        }
    }
    Ok(messages)
}

fn close(body: String, lines: Vec<usize>, key: Option<&str>, fifo: bool, random: &dyn RandomSource) -> Message {
    let (group_id, deduplication_id) = if fifo {
        (
            Some(key.map_or_else(|| random_key(random), group_id)),
            Some(sha256_hex(body.as_bytes())),
        )
    } else {
        (None, None)
    };
    Message {
        body,
        group_id,
        deduplication_id,
        lines,
    }
}

/// A key as a FIFO group id: itself when SQS takes it (1 to 128 of ASCII
/// letters, digits and punctuation), else its SHA-256, which keeps one key
/// one group.
fn group_id(key: &str) -> String {
    let ok = (1..=MAX_FIFO_ID_CHARS).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic());
    if ok { key.to_owned() } else { sha256_hex(key.as_bytes()) }
}

/// Puts messages into calls, in order: a call closes before it would pass
/// 10 messages or 1 MiB of bodies.
pub fn batches(messages: Vec<Message>) -> Vec<Batch> {
    let mut out = Vec::new();
    let mut batch = Batch::default();
    for m in messages {
        if !batch.messages.is_empty()
            && (batch.messages.len() == MAX_ENTRIES_PER_BATCH || batch.bytes + m.body.len() > MAX_BATCH_BYTES)
        {
            out.push(std::mem::take(&mut batch));
        }
        batch.bytes += m.body.len();
        batch.messages.push(m);
    }
    if !batch.messages.is_empty() {
        out.push(batch);
    }
    out
}

#[cfg(test)]
mod tests;
