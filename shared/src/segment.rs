//! Segment's Tracking API, as the clients people already run speak it:
//! Segment's server SDKs (`@segment/analytics-node`,
//! `segment-analytics-python`) and RudderStack's, pointed at edgehose with
//! their `host` setting, and `analytics-next`'s routes in browsers.
//!
//! | route | body |
//! |---|---|
//! | `POST /v1/track`, `/v1/page`, `/v1/screen`, `/v1/identify`, `/v1/group`, `/v1/alias` | one message; the route names its call |
//! | `POST /v1/t`, `/v1/p`, `/v1/s`, `/v1/i`, `/v1/g`, `/v1/a` | the same, the short paths analytics-next posts to |
//! | `POST /v1/batch`, `/v1/b`, `/v1/import` | `{"batch":[message, …], "sentAt":…, "writeKey":…}` |
//!
//! Bodies are JSON (`application/json`, or `text/plain` from browsers, which
//! avoids a CORS preflight), optionally gzip. Limits are Segment's own
//! ([`SEGMENT_MAX_MESSAGE_BYTES`], [`SEGMENT_MAX_BATCH_BYTES`]) or the
//! deployment's where those are lower. Unlike `/v1/events`, a body that is
//! not JSON is refused with 400, as Segment refuses it: its SDKs expect that.
//!
//! Each message is kept exactly as sent, except that a `writeKey` member is
//! taken out (the envelope keeps the key's id, never the key). What the door
//! refuses, it refuses whole and by name, as Segment does (a request over a
//! limit, a body that is not JSON, a batch element that is not an object);
//! the call's rules (a known `type`, `event` for `track`, …) are checked
//! downstream by the transform ([`validate`]), so a message that breaks them
//! is acknowledged and kept with its reasons, never lost.

use std::borrow::Cow;

use serde_json::value::RawValue;

use crate::decode::DecodeError;
use crate::json::{self, Members};
use crate::limits::{Limits, SEGMENT_MAX_BATCH_BYTES, SEGMENT_MAX_MESSAGE_BYTES};
use crate::timestamp::Timestamp;

pub mod validate;

/// The six calls of the Segment spec (<https://segment.com/docs/connections/spec/>).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Call {
    /// `track`: a user did something (`event` names it).
    Track,
    /// `page`: a web page was viewed.
    Page,
    /// `screen`: an app screen was viewed.
    Screen,
    /// `identify`: who the user is, with `traits`.
    Identify,
    /// `group`: the user belongs to a group (`groupId`).
    Group,
    /// `alias`: two ids are one user (`previousId` → `userId`).
    Alias,
}

impl Call {
    /// Every call, in the spec's order.
    pub const ALL: [Call; 6] = [
        Call::Track,
        Call::Page,
        Call::Screen,
        Call::Identify,
        Call::Group,
        Call::Alias,
    ];

    /// The call's name as `type` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Track => "track",
            Self::Page => "page",
            Self::Screen => "screen",
            Self::Identify => "identify",
            Self::Group => "group",
            Self::Alias => "alias",
        }
    }

    /// The call a `type` names.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// What a Segment route expects in its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// One message of this call.
    Single(Call),
    /// `{"batch": [...]}` of messages naming their own calls.
    Batch,
}

/// The Segment route of a path (trailing slash already removed), if it is one.
pub fn route(path: &str) -> Option<Route> {
    let rest = path.strip_prefix("/v1/")?;
    let call = match rest {
        "track" | "t" => Call::Track,
        "page" | "p" => Call::Page,
        "screen" | "s" => Call::Screen,
        "identify" | "i" => Call::Identify,
        "group" | "g" => Call::Group,
        "alias" | "a" => Call::Alias,
        "batch" | "b" | "import" => return Some(Route::Batch),
        _ => return None,
    };
    Some(Route::Single(call))
}

/// Why a Segment request was refused. Each variant knows its status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SegmentError {
    /// A rule shared with every route (content type, gzip, depth, count, or
    /// a deployment limit lower than Segment's).
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The body is not JSON.
    #[error("the body is not valid JSON: {0}")]
    InvalidJson(String),
    /// The body is JSON but not an object.
    #[error("the body is {0}; Segment's Tracking API takes a JSON object")]
    NotAnObject(&'static str),
    /// A batch route without a `batch` array.
    #[error("`batch` must be an array of messages, not {0}")]
    InvalidBatch(&'static str),
    /// A batch element that is not an object.
    #[error("batch[{index}] is {kind}, not a message object")]
    InvalidMessage {
        /// Its index in `batch`.
        index: usize,
        /// What it is instead.
        kind: &'static str,
    },
    /// Over Segment's limit per request.
    #[error(
        "the request is larger than {limit} bytes{}: the Segment Tracking API's limit of 500 KB per batch request",
        if *.decompressed { " after decompression" } else { "" }
    )]
    BatchTooLarge {
        /// The limit in force.
        limit: usize,
        /// Whether it was hit while inflating gzip.
        decompressed: bool,
    },
    /// Over Segment's limit per message.
    #[error("message {index} is {size} bytes; the Segment Tracking API's limit is 32 KB ({limit} bytes) per message")]
    MessageTooLarge {
        /// The message's index in the request.
        index: usize,
        /// Its size.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// Messages of one request carry different write keys.
    #[error("the messages carry different write keys; send one request per write key")]
    ConflictingWriteKeys,
}

impl SegmentError {
    /// The HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::Decode(e) => e.status(),
            Self::BatchTooLarge { .. } | Self::MessageTooLarge { .. } => 413,
            Self::InvalidJson(_)
            | Self::NotAnObject(_)
            | Self::InvalidBatch(_)
            | Self::InvalidMessage { .. }
            | Self::ConflictingWriteKeys => 400,
        }
    }

    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Decode(e) => e.code(),
            Self::InvalidJson(_) => "invalid_json",
            Self::NotAnObject(_) => "not_an_object",
            Self::InvalidBatch(_) => "invalid_batch",
            Self::InvalidMessage { .. } => "invalid_message",
            Self::BatchTooLarge { .. } => "batch_too_large",
            Self::MessageTooLarge { .. } => "message_too_large",
            Self::ConflictingWriteKeys => "conflicting_write_keys",
        }
    }
}

/// A Segment request's body, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    /// The write key the body carries (the batch's, or its messages').
    pub write_key: Option<Cow<'a, str>>,
    /// The batch's `sentAt`, for messages without their own.
    pub sent_at: Option<Timestamp>,
    /// Each message's text as sent, less its `writeKey` member.
    pub messages: Vec<Cow<'a, str>>,
}

/// Undoes `Content-Encoding` within the Segment limits, naming Segment's
/// limit when it is the one broken.
pub fn decompress<'a>(
    body: &'a [u8],
    encoding: Option<&str>,
    inflated: Option<&'a crate::decode::Inflated>,
    deployment: &Limits,
) -> Result<Cow<'a, [u8]>, SegmentError> {
    let limits = deployment.for_segment();
    crate::decode::decompress_with(body, encoding, inflated, &limits).map_err(|e| match e {
        DecodeError::BodyTooLarge { limit, decompressed } if deployment.max_body_bytes >= SEGMENT_MAX_BATCH_BYTES => {
            SegmentError::BatchTooLarge { limit, decompressed }
        }
        other => other.into(),
    })
}

/// Reads a decompressed body sent to `route`, within `deployment`'s limits
/// lowered to Segment's.
pub fn parse<'a>(body: &'a [u8], route: Route, deployment: &Limits) -> Result<Request<'a>, SegmentError> {
    let limits = deployment.for_segment();
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body).trim_ascii();
    if body.is_empty() {
        return Err(DecodeError::EmptyBody.into());
    }
    let text = std::str::from_utf8(body).map_err(|e| SegmentError::InvalidJson(format!("not UTF-8 ({e})")))?;
    // A batch wraps its messages in two more levels: the object and `batch`.
    let wrapper = if route == Route::Batch { 2 } else { 0 };
    crate::decode::check_depth(body, &limits, wrapper)?;
    let top = Members::parse(text).map_err(|e| match serde_json::from_str::<&RawValue>(text) {
        Ok(v) => SegmentError::NotAnObject(json::kind(v.get())),
        Err(_) => SegmentError::InvalidJson(e.to_string()),
    })?;
    let (texts, mut write_key, sent_at): (Vec<&'a str>, _, _) = match route {
        Route::Single(_) => (vec![text], None, None),
        Route::Batch => {
            let raw = top.get("batch").ok_or(SegmentError::InvalidBatch("missing"))?;
            let elements: Vec<&'a RawValue> =
                serde_json::from_str(raw.get()).map_err(|_| SegmentError::InvalidBatch(json::kind(raw.get())))?;
            let texts = elements
                .iter()
                .enumerate()
                .map(|(index, e)| match json::kind(e.get()) {
                    "an object" => Ok(e.get()),
                    kind => Err(SegmentError::InvalidMessage { index, kind }),
                })
                .collect::<Result<Vec<_>, _>>()?;
            let sent_at = top.str("sentAt").and_then(|s| Timestamp::parse_rfc3339(&s));
            (texts, agreed_write_key(&top)?, sent_at)
        }
    };
    if texts.len() > limits.max_events {
        return Err(DecodeError::TooManyEvents {
            count: texts.len(),
            limit: limits.max_events,
        }
        .into());
    }
    let mut messages = Vec::with_capacity(texts.len());
    for (index, message) in texts.into_iter().enumerate() {
        if message.len() > limits.max_event_bytes {
            let limit = limits.max_event_bytes;
            // Segment's limit is named when it is the one in force.
            return Err(if limit == SEGMENT_MAX_MESSAGE_BYTES {
                SegmentError::MessageTooLarge {
                    index,
                    size: message.len(),
                    limit,
                }
            } else {
                DecodeError::EventTooLarge {
                    index,
                    size: message.len(),
                    limit,
                }
                .into()
            });
        }
        // An escaped spelling of the name (`write\u004bey`) holds a `\u`.
        if message.contains("writeKey") || message.contains("\\u") {
            let own = match Members::parse(message) {
                Ok(m) => agreed_write_key(&m)?,
                Err(_) => None,
            };
            match (&write_key, own) {
                (_, None) => {}
                (None, Some(k)) => write_key = Some(k),
                (Some(a), Some(b)) if *a == b => {}
                (Some(_), Some(_)) => return Err(SegmentError::ConflictingWriteKeys),
            }
            messages.push(json::without_member(message, "writeKey"));
        } else {
            messages.push(Cow::Borrowed(message));
        }
    }
    Ok(Request {
        write_key,
        sent_at,
        messages,
    })
}

/// The `writeKey` members of an object, which must agree: JSON parsers
/// differ on which of two they keep, so two different keys are refused.
fn agreed_write_key<'a>(members: &Members<'a>) -> Result<Option<Cow<'a, str>>, SegmentError> {
    let mut found: Option<Cow<'a, str>> = None;
    for (k, v) in &members.0 {
        if k != "writeKey" {
            continue;
        }
        match (json::string(v), &found) {
            (Some(key), Some(seen)) if key != *seen => return Err(SegmentError::ConflictingWriteKeys),
            (Some(key), None) => found = Some(key),
            _ => {}
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests;
