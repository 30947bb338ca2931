//! Request body decoding: what browsers and devices actually send, turned into
//! a list of events (each kept as its exact JSON text) or malformed pieces to
//! quarantine.
//!
//! Accepted forms: one JSON object; a JSON array of objects; NDJSON
//! (`application/x-ndjson` and its aliases); any of those as `text/plain`
//! (what `navigator.sendBeacon` sends for a string); each optionally with
//! `Content-Encoding: gzip`. Limits come from [`Limits`]; every error names the
//! limit or field and the value that broke it.

use std::borrow::Cow;

use serde_json::value::RawValue;

use crate::json;
use crate::limits::Limits;

/// How the body's media type says to read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/json` (or `+json`): one object or an array of objects.
    Json,
    /// `application/x-ndjson`, `application/ndjson`, `application/jsonl`,
    /// `application/x-jsonlines`: one object per line.
    Ndjson,
    /// `text/plain` or no content type (sendBeacon, curl): a JSON document,
    /// or NDJSON when the body is a sequence of lines of JSON.
    Sniff,
}

/// The media types that mean NDJSON.
const NDJSON_TYPES: [&str; 5] = [
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/x-jsonlines",
    "application/jsonlines",
];

impl BodyFormat {
    /// Picks the format from a `Content-Type` value (parameters such as
    /// `charset` are ignored; a charset other than UTF-8 is refused).
    pub fn from_content_type(content_type: Option<&str>) -> Result<Self, DecodeError> {
        let Some(raw) = content_type.map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(Self::Sniff);
        };
        let mut parts = raw.split(';');
        let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        for param in parts {
            if let Some((k, v)) = param.split_once('=')
                && k.trim().eq_ignore_ascii_case("charset")
            {
                let v = v.trim().trim_matches('"');
                if !v.eq_ignore_ascii_case("utf-8") && !v.eq_ignore_ascii_case("utf8") {
                    return Err(DecodeError::UnsupportedContentType {
                        content_type: raw.to_owned(),
                    });
                }
            }
        }
        if essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json")) {
            Ok(Self::Json)
        } else if NDJSON_TYPES.contains(&essence.as_str()) {
            Ok(Self::Ndjson)
        } else if essence == "text/plain" {
            Ok(Self::Sniff)
        } else {
            Err(DecodeError::UnsupportedContentType {
                content_type: raw.to_owned(),
            })
        }
    }
}

/// One piece of a decoded body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item<'a> {
    /// A JSON object, as its exact text (whitespace around it trimmed).
    Event(&'a str),
    /// Bytes that are not a JSON object: a broken line, a non-object array
    /// element, or the whole body when it does not parse at all.
    Malformed(Malformed<'a>),
}

/// A piece of the body that could not be read as an event, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed<'a> {
    /// The bytes as received (after decompression).
    pub bytes: &'a [u8],
    /// Which event it was (its index among the body's items), when the body
    /// itself was readable; `None` when the whole body is malformed.
    pub index: Option<usize>,
    /// What is wrong, for people.
    pub reason: String,
}

/// Why a body was refused. Each variant knows its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Nothing but whitespace was sent.
    #[error("the body is empty; send a JSON object, a JSON array of objects, or NDJSON")]
    EmptyBody,
    /// The body is over `max_body_bytes` (for gzip: compressed or once inflated).
    #[error("the body is larger than max_body_bytes = {limit} bytes{}", if *.decompressed { " after decompression" } else { "" })]
    BodyTooLarge {
        /// The limit in force.
        limit: usize,
        /// Whether the limit was hit while inflating gzip.
        decompressed: bool,
    },
    /// One event is over `max_event_bytes`.
    #[error("event {index} is {size} bytes; max_event_bytes is {limit}")]
    EventTooLarge {
        /// The event's index in the body.
        index: usize,
        /// Its size in bytes.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// More than `max_events` events in one request.
    #[error("the body holds {count} events; max_events is {limit} per request")]
    TooManyEvents {
        /// How many were sent.
        count: usize,
        /// The limit in force.
        limit: usize,
    },
    /// JSON nested deeper than `max_depth`.
    #[error("{} nests {depth} levels deep; max_depth is {limit}", match .index { Some(i) => format!("event {i}"), None => "an event".to_owned() })]
    TooDeep {
        /// The event's index, when known.
        index: Option<usize>,
        /// The depth found.
        depth: usize,
        /// The limit in force.
        limit: usize,
    },
    /// A `Content-Type` we do not read.
    #[error(
        "content-type {content_type:?} is not supported; use application/json, application/x-ndjson or text/plain (UTF-8)"
    )]
    UnsupportedContentType {
        /// The header as sent.
        content_type: String,
    },
    /// A `Content-Encoding` we do not read.
    #[error("content-encoding {encoding:?} is not supported; use gzip or none")]
    UnsupportedContentEncoding {
        /// The header as sent.
        encoding: String,
    },
    /// The gzip stream is corrupt or truncated.
    #[error("the gzip body is corrupt: {detail}")]
    BadGzip {
        /// What the inflater said.
        detail: String,
    },
    /// The body (or one event in it) is not valid JSON; returned only by
    /// [`Decoded::strict`].
    #[error("{}: {reason}", match .index { Some(i) => format!("event {i} is malformed"), None => "the body is malformed".to_owned() })]
    Malformed {
        /// The event's index, when the body itself was readable.
        index: Option<usize>,
        /// What is wrong.
        reason: String,
    },
}

impl DecodeError {
    /// The HTTP status a client should get for this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::BodyTooLarge { .. } | Self::EventTooLarge { .. } | Self::TooManyEvents { .. } => 413,
            Self::UnsupportedContentType { .. } | Self::UnsupportedContentEncoding { .. } => 415,
            Self::EmptyBody | Self::TooDeep { .. } | Self::BadGzip { .. } | Self::Malformed { .. } => 400,
        }
    }

    /// A stable machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::EmptyBody => "empty_body",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::EventTooLarge { .. } => "event_too_large",
            Self::TooManyEvents { .. } => "too_many_events",
            Self::TooDeep { .. } => "too_deep",
            Self::UnsupportedContentType { .. } => "unsupported_content_type",
            Self::UnsupportedContentEncoding { .. } => "unsupported_content_encoding",
            Self::BadGzip { .. } => "bad_gzip",
            Self::Malformed { .. } => "malformed",
        }
    }

    /// Whether a lenient edge should acknowledge the body and quarantine it
    /// rather than refuse it: true for bodies that are broken, not over a limit.
    pub fn is_quarantinable(&self) -> bool {
        matches!(self, Self::BadGzip { .. } | Self::Malformed { .. })
    }
}

/// A gzip body the runtime already inflated, so the core need not carry an
/// inflater: the edge Worker inflates with the runtime's native
/// `DecompressionStream`, stopping at [`Limits::max_body_bytes`] + 1 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inflated {
    /// The inflated bytes.
    Bytes(Vec<u8>),
    /// Inflating passed the cap it was given and stopped there.
    OverCap,
    /// The body is not gzip the runtime could inflate: why.
    Broken(String),
}

/// Whether a `Content-Encoding` names gzip (`gzip` or `x-gzip`, any case).
pub fn is_gzip(content_encoding: Option<&str>) -> bool {
    content_encoding
        .map(str::trim)
        .is_some_and(|e| e.eq_ignore_ascii_case("gzip") || e.eq_ignore_ascii_case("x-gzip"))
}

/// Undoes `Content-Encoding`, stopping as soon as the inflated body would pass
/// `limits.max_body_bytes`, so a decompression bomb costs at most that much.
pub fn decompress<'a>(
    body: &'a [u8],
    content_encoding: Option<&str>,
    limits: &Limits,
) -> Result<Cow<'a, [u8]>, DecodeError> {
    decompress_with(body, content_encoding, None, limits)
}

/// The same, taking the runtime's inflation of a gzip body when there is one
/// (limits and errors as if inflated here).
pub fn decompress_with<'a>(
    body: &'a [u8],
    content_encoding: Option<&str>,
    inflated: Option<&'a Inflated>,
    limits: &Limits,
) -> Result<Cow<'a, [u8]>, DecodeError> {
    let limit = limits.max_body_bytes;
    if body.len() > limit {
        return Err(DecodeError::BodyTooLarge {
            limit,
            decompressed: false,
        });
    }
    let encoding = content_encoding.map(str::trim).unwrap_or("");
    if encoding.is_empty() || encoding.eq_ignore_ascii_case("identity") {
        return Ok(Cow::Borrowed(body));
    }
    if !is_gzip(Some(encoding)) {
        return Err(DecodeError::UnsupportedContentEncoding {
            encoding: encoding.to_owned(),
        });
    }
    let out: Cow<'a, [u8]> = match inflated {
        Some(Inflated::Bytes(bytes)) => Cow::Borrowed(bytes),
        Some(Inflated::OverCap) => {
            return Err(DecodeError::BodyTooLarge {
                limit,
                decompressed: true,
            });
        }
        Some(Inflated::Broken(detail)) => return Err(DecodeError::BadGzip { detail: detail.clone() }),
        None => Cow::Owned(gunzip(body, limit, encoding)?),
    };
    if out.len() > limit {
        return Err(DecodeError::BodyTooLarge {
            limit,
            decompressed: true,
        });
    }
    Ok(out)
}

/// Inflates every gzip member of `body`, reading one byte past `limit`:
/// reaching it proves the body is too large without inflating the rest.
#[cfg(feature = "gzip")]
fn gunzip(body: &[u8], limit: usize, _encoding: &str) -> Result<Vec<u8>, DecodeError> {
    use std::io::Read;
    let mut out = Vec::with_capacity((body.len() * 4).min(limit + 1));
    flate2::read::MultiGzDecoder::new(body)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| DecodeError::BadGzip { detail: e.to_string() })?;
    Ok(out)
}

/// Built without the `gzip` feature (the edge Worker, whose runtime
/// inflates): a gzip body the runtime did not inflate cannot be read.
#[cfg(not(feature = "gzip"))]
fn gunzip(_body: &[u8], _limit: usize, encoding: &str) -> Result<Vec<u8>, DecodeError> {
    Err(DecodeError::UnsupportedContentEncoding {
        encoding: encoding.to_owned(),
    })
}

/// Refuses a body nested deeper than `limits.max_depth` below its
/// `wrapper` levels (a batch's object and array around its events).
pub fn check_depth(body: &[u8], limits: &Limits, wrapper: usize) -> Result<(), DecodeError> {
    let depth = crate::json::max_depth(body);
    if depth > limits.max_depth + wrapper {
        return Err(DecodeError::TooDeep {
            index: None,
            depth: depth - wrapper,
            limit: limits.max_depth,
        });
    }
    Ok(())
}

/// The items of one body, in the order they were sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// Events and malformed pieces, in body order.
    pub items: Vec<Item<'a>>,
}

impl<'a> Decoded<'a> {
    /// How many items (events and malformed pieces) the body held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the body held no items (an empty array).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The events only, failing on the first malformed piece: for clients that
    /// asked to be told rather than quarantined.
    pub fn strict(self) -> Result<Vec<&'a str>, DecodeError> {
        self.items
            .into_iter()
            .map(|item| match item {
                Item::Event(e) => Ok(e),
                Item::Malformed(m) => Err(DecodeError::Malformed {
                    index: m.index,
                    reason: m.reason,
                }),
            })
            .collect()
    }
}

/// Splits a decompressed body into events and malformed pieces, enforcing the
/// event size, event count and depth limits. The body size limit is
/// [`decompress`]'s job.
pub fn parse_events<'a>(body: &'a [u8], format: BodyFormat, limits: &Limits) -> Result<Decoded<'a>, DecodeError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let trimmed = body.trim_ascii();
    if trimmed.is_empty() {
        return Err(DecodeError::EmptyBody);
    }
    let items = match format {
        BodyFormat::Ndjson => parse_ndjson(body, limits)?,
        BodyFormat::Json => parse_document(trimmed, limits)?,
        BodyFormat::Sniff => {
            if looks_like_ndjson(trimmed) {
                parse_ndjson(body, limits)?
            } else {
                parse_document(trimmed, limits)?
            }
        }
    };
    Ok(Decoded { items })
}

/// Both steps: [`decompress`] then [`parse_events`], for callers that can keep
/// the decompressed buffer alive themselves.
pub fn decode<'a>(
    buf: &'a mut Option<Vec<u8>>,
    body: &'a [u8],
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    limits: &Limits,
) -> Result<Decoded<'a>, DecodeError> {
    decode_with(buf, body, content_type, content_encoding, None, limits)
}

/// The same, taking the runtime's inflation of a gzip body when there is one.
pub fn decode_with<'a>(
    buf: &'a mut Option<Vec<u8>>,
    body: &'a [u8],
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    inflated: Option<&'a Inflated>,
    limits: &Limits,
) -> Result<Decoded<'a>, DecodeError> {
    let format = BodyFormat::from_content_type(content_type)?;
    let bytes: &'a [u8] = match decompress_with(body, content_encoding, inflated, limits)? {
        Cow::Borrowed(b) => b,
        Cow::Owned(v) => buf.insert(v).as_slice(),
    };
    parse_events(bytes, format, limits)
}

/// A body is read as NDJSON when its first line is a complete JSON value on
/// its own and more non-empty lines follow.
fn looks_like_ndjson(trimmed: &[u8]) -> bool {
    let mut lines = trimmed
        .split(|&b| b == b'\n')
        .map(<[u8]>::trim_ascii)
        .filter(|l| !l.is_empty());
    match (lines.next(), lines.next()) {
        (Some(first), Some(_)) => serde_json::from_slice::<serde::de::IgnoredAny>(first).is_ok(),
        _ => false,
    }
}

fn parse_document<'a>(trimmed: &'a [u8], limits: &Limits) -> Result<Vec<Item<'a>>, DecodeError> {
    let is_array = trimmed.first() == Some(&b'[');
    let depth = json::max_depth(trimmed);
    let allowed = limits.max_depth + usize::from(is_array);
    if depth > allowed {
        return Err(DecodeError::TooDeep {
            index: None,
            depth: depth - usize::from(is_array),
            limit: limits.max_depth,
        });
    }
    let whole_body_malformed = |reason: String| {
        Ok(vec![Item::Malformed(Malformed {
            bytes: trimmed,
            index: None,
            reason,
        })])
    };
    let text = match std::str::from_utf8(trimmed) {
        Ok(t) => t,
        Err(e) => return whole_body_malformed(format!("the body is not valid UTF-8 ({e})")),
    };
    if is_array {
        let elements: Vec<&'a RawValue> = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => return whole_body_malformed(format!("invalid JSON array: {e}")),
        };
        if elements.len() > limits.max_events {
            return Err(DecodeError::TooManyEvents {
                count: elements.len(),
                limit: limits.max_events,
            });
        }
        elements
            .into_iter()
            .enumerate()
            .map(|(index, raw)| classify(raw.get(), index, limits))
            .collect()
    } else {
        match serde_json::from_str::<&'a RawValue>(text) {
            Ok(raw) => Ok(vec![classify(raw.get(), 0, limits)?]),
            Err(e) => whole_body_malformed(format!("invalid JSON: {e}")),
        }
    }
}

fn parse_ndjson<'a>(body: &'a [u8], limits: &Limits) -> Result<Vec<Item<'a>>, DecodeError> {
    let lines: Vec<&'a [u8]> = body
        .split(|&b| b == b'\n')
        .map(<[u8]>::trim_ascii)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.len() > limits.max_events {
        return Err(DecodeError::TooManyEvents {
            count: lines.len(),
            limit: limits.max_events,
        });
    }
    lines
        .into_iter()
        .enumerate()
        .map(|(index, line)| {
            if line.len() > limits.max_event_bytes {
                return Err(DecodeError::EventTooLarge {
                    index,
                    size: line.len(),
                    limit: limits.max_event_bytes,
                });
            }
            let depth = json::max_depth(line);
            if depth > limits.max_depth {
                return Err(DecodeError::TooDeep {
                    index: Some(index),
                    depth,
                    limit: limits.max_depth,
                });
            }
            let malformed = |reason: String| {
                Ok(Item::Malformed(Malformed {
                    bytes: line,
                    index: Some(index),
                    reason,
                }))
            };
            match std::str::from_utf8(line) {
                Err(e) => malformed(format!("line {} is not valid UTF-8 ({e})", index + 1)),
                Ok(text) => match serde_json::from_str::<&'a RawValue>(text) {
                    Ok(raw) => classify(raw.get(), index, limits),
                    Err(e) => malformed(format!("line {} is not valid JSON: {e}", index + 1)),
                },
            }
        })
        .collect()
}

/// An element that parsed as JSON: an event if it is an object within the
/// size limit, else a malformed piece (or a limit error).
fn classify<'a>(text: &'a str, index: usize, limits: &Limits) -> Result<Item<'a>, DecodeError> {
    if text.len() > limits.max_event_bytes {
        return Err(DecodeError::EventTooLarge {
            index,
            size: text.len(),
            limit: limits.max_event_bytes,
        });
    }
    if text.starts_with('{') {
        Ok(Item::Event(text))
    } else {
        let kind = match text.as_bytes().first() {
            Some(b'[') => "an array",
            Some(b'"') => "a string",
            Some(b't' | b'f') => "a boolean",
            Some(b'n') => "null",
            _ => "a number",
        };
        Ok(Item::Malformed(Malformed {
            bytes: text.as_bytes(),
            index: Some(index),
            reason: format!("event {index} is {kind}, not a JSON object"),
        }))
    }
}

#[cfg(test)]
mod tests;
