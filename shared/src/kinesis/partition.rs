//! The partition key each event gets in a Kinesis stream, as the
//! `KINESIS_PARTITION_KEY` setting chooses: `random` (spread evenly over the
//! shards; the default), `field:<path>` (a field of the event as sent, such
//! as `anonymous_id` or `properties.classId`: every event of one key lands
//! on one shard, in order), or `time:<seconds>` (the bucket of the time the
//! edge received it: a window's events together).
//!
//! An event without the field (or a rejected line, which has no event) may
//! go to any shard: it shares a record with others of no key, under a
//! random one.

use std::borrow::Cow;

use serde::Deserialize;

use super::MAX_PARTITION_KEY_CHARS;
use crate::clock::RandomSource;
use crate::envelope::Envelope;
use crate::json::{self, Members};
use crate::settings::{SettingError, Settings};

/// The setting that chooses partition keys.
pub const SETTING: &str = "KINESIS_PARTITION_KEY";

/// How events are given partition keys.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PartitionKeys {
    /// A random key per record: even spread, no order between records.
    #[default]
    Random,
    /// The value of a field of the event, by its path of member names.
    Field(Vec<String>),
    /// The start of the `seconds`-long bucket the event was received in,
    /// in seconds since the epoch.
    TimeBucket {
        /// The bucket's length.
        seconds: u64,
    },
}

impl PartitionKeys {
    /// Reads `random`, `field:<a.b.c>` or `time:<seconds>`.
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        if value == "random" {
            return Ok(Self::Random);
        }
        if let Some(path) = value.strip_prefix("field:") {
            let parts: Vec<String> = path.split('.').map(str::to_owned).collect();
            if parts.iter().any(String::is_empty) {
                return Err(format!(
                    "{value:?} is invalid: a field path is member names joined by '.', such as field:properties.classId"
                ));
            }
            return Ok(Self::Field(parts));
        }
        if let Some(seconds) = value.strip_prefix("time:") {
            return match seconds.parse::<u64>() {
                Ok(seconds) if seconds > 0 => Ok(Self::TimeBucket { seconds }),
                _ => Err(format!(
                    "{value:?} is invalid: time:<seconds> takes a whole number above 0"
                )),
            };
        }
        Err(format!(
            "{value:?} is invalid: expected random, field:<path> (such as field:anonymous_id) or time:<seconds>"
        ))
    }

    /// Reads the setting `name` ([`SETTING`] for Kinesis, `SQS_MESSAGE_GROUP`
    /// for a FIFO queue's groups); `random` when unset.
    pub fn from_setting<F: Fn(&str) -> Option<String>>(s: &Settings<F>, name: &str) -> Result<Self, SettingError> {
        match s.get(name) {
            None => Ok(Self::Random),
            Some(v) => Self::parse(&v).map_err(|e| SettingError::new(name, format!("= {e}"))),
        }
    }

    /// The key of one envelope line, or `None` when it may go to any shard
    /// (random keys, no such field, a line that is no event envelope).
    pub fn key_of(&self, line: &str) -> Option<String> {
        match self {
            Self::Random => None,
            Self::Field(path) => {
                let envelope = Envelope::parse(line).ok()?;
                let event = envelope.event?;
                field(event.get(), path).map(|k| truncate(&k).to_owned())
            }
            Self::TimeBucket { seconds } => {
                #[derive(Deserialize)]
                struct ReceivedAt {
                    received_at: i64,
                }
                let at = serde_json::from_str::<ReceivedAt>(line).ok()?.received_at;
                let bucket = at.div_euclid(1000).div_euclid(*seconds as i64) * *seconds as i64;
                Some(bucket.to_string())
            }
        }
    }
}

/// A random key: 32 hex digits, 128 bits (MD5 spreads them evenly over the
/// hash key space whatever they are).
pub fn random_key(random: &dyn RandomSource) -> String {
    let mut bytes = [0u8; 16];
    random.fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The value at `path` in a JSON object: a string as it reads, a number or
/// boolean as written; `None` for anything else or an empty string.
fn field<'a>(object: &'a str, path: &[String]) -> Option<Cow<'a, str>> {
    let (last, parents) = path.split_last()?;
    let mut text = object;
    for name in parents {
        text = Members::parse(text).ok()?.get(name)?.get();
    }
    let raw = Members::parse(text).ok()?.get(last)?;
    let value = match raw.get().as_bytes().first()? {
        b'"' => json::string(raw)?,
        b'-' | b'0'..=b'9' | b't' | b'f' => Cow::Borrowed(raw.get()),
        _ => return None,
    };
    (!value.is_empty()).then_some(value)
}

/// At most [`MAX_PARTITION_KEY_CHARS`] characters.
fn truncate(key: &str) -> &str {
    key.char_indices()
        .nth(MAX_PARTITION_KEY_CHARS)
        .map_or(key, |(at, _)| &key[..at])
}

#[cfg(test)]
mod tests;
