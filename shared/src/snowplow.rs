//! Snowplow's tracker protocol, as Snowplow's own trackers speak it
//! (`@snowplow/browser-tracker`, `@snowplow/node-tracker` and the rest),
//! pointed at edgehose with their collector URL.
//!
//! | route | what the trackers send | answer |
//! |---|---|---|
//! | `POST /com.snowplowanalytics.snowplow/tp2` | `{"schema":"iglu:…/payload_data/jsonschema/1-0-4","data":[event, …]}`, each event a map of strings, `application/json; charset=UTF-8` | `200 text/plain ok` |
//! | `GET /i?e=pv&eid=…` | one event in the query string (`eventMethod: "get"`) | `200` a 1×1 GIF, not cached |
//! | `OPTIONS` on either | a preflight (`content-type`, `sp-anonymous`) | `204` |
//!
//! The browser tracker sends cookies (`credentials: "include"`), so an
//! answer to a page names its origin and allows credentials: a `*` would
//! make the browser discard it, and the tracker would send its events again.
//! Each event is kept exactly as sent; its id is `eid`, its time Snowplow's
//! own rule (`ttm` as given; else `dtm` corrected by the tracker's clock skew,
//! collector − (`stm` − `dtm`), as every door's), and the transform checks it
//! by the protocol ([`validate`]), so a broken event is acknowledged and kept
//! with its reasons. What the door refuses it refuses whole: a body that is
//! not the `payload_data` envelope, more events than `MAX_EVENTS`.
//!
//! The trackers drop a batch answered 400, 401, 403, 410 or 422 and send
//! again any other failure (413 included), from their local queue, on the
//! next event or page load.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::json::Members;
use crate::limits::Limits;
use crate::timestamp::Timestamp;

pub mod validate;

/// Where the trackers post (their `postPath` by default).
pub const TP2_PATH: &str = "/com.snowplowanalytics.snowplow/tp2";
/// Where the trackers send a GET event (`eventMethod: "get"`), and where a
/// page's `<img>` pixel points.
pub const PIXEL_PATH: &str = "/i";
/// The envelope schema of a POST body, any 1-0-x revision.
pub const PAYLOAD_DATA_SCHEMA: &str = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-";
/// The header a tracker sends when the server must not identify the visitor
/// (`anonymousTracking: {withServerAnonymisation: true}`).
pub const ANONYMOUS_HEADER: &str = "sp-anonymous";
/// What the collector answers a POST: `ok`, as Snowplow's collector does.
pub const POST_ANSWER: &str = "ok";
/// The content type of a pixel answer.
pub const PIXEL_CONTENT_TYPE: &str = "image/gif";
/// The 1×1 transparent GIF a pixel request is answered with.
pub const PIXEL_GIF: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00,
    0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02,
    0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// The Snowplow routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /com.snowplowanalytics.snowplow/tp2`.
    Post,
    /// `GET /i`.
    Pixel,
}

/// The route of a path (a tracker given a collector URL with a trailing
/// slash posts to `//com.snowplowanalytics.snowplow/tp2`).
pub fn route(path: &str) -> Option<Route> {
    let path = path.strip_prefix('/').filter(|p| p.starts_with('/')).unwrap_or(path);
    match path {
        TP2_PATH => Some(Route::Post),
        PIXEL_PATH => Some(Route::Pixel),
        _ => None,
    }
}

/// Why a Snowplow request was refused whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnowplowError {
    /// The body is not JSON.
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    /// The body is JSON, not a `payload_data` envelope.
    #[error(
        "the body is not Snowplow's payload_data envelope ({{\"schema\":\"iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4\",\"data\":[…]}}): {0}"
    )]
    NotPayloadData(String),
    /// An envelope with no event.
    #[error("the payload_data envelope's data holds no event")]
    Empty,
    /// More events than a request may carry.
    #[error("{count} events in one request; at most {limit} (MAX_EVENTS)")]
    TooManyEvents {
        /// Events sent.
        count: usize,
        /// [`Limits::max_events`].
        limit: usize,
    },
    /// A pixel request with no event in its query string.
    #[error("GET /i carries its event in the query string, and this one has none")]
    NoQuery,
}

impl SnowplowError {
    /// The HTTP status: the trackers drop a batch answered 400 and resend
    /// one answered 413 (the limit is named either way).
    pub fn status(&self) -> u16 {
        match self {
            Self::TooManyEvents { .. } => 413,
            _ => 400,
        }
    }

    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotJson(_) => "invalid_json",
            Self::NotPayloadData(_) => "not_payload_data",
            Self::Empty => "empty_batch",
            Self::TooManyEvents { .. } => "too_many_events",
            Self::NoQuery => "empty_query",
        }
    }
}

#[derive(Deserialize)]
struct PayloadData<'a> {
    #[serde(borrow)]
    schema: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    data: Vec<&'a RawValue>,
}

/// The events of a POST body, each its JSON text as sent.
pub fn events<'a>(body: &'a [u8], limits: &Limits) -> Result<Vec<&'a RawValue>, SnowplowError> {
    let text = std::str::from_utf8(body).map_err(|e| SnowplowError::NotJson(e.to_string()))?;
    let value: &RawValue = serde_json::from_str(text).map_err(|e| SnowplowError::NotJson(e.to_string()))?;
    let envelope: PayloadData<'_> =
        serde_json::from_str(value.get()).map_err(|e| SnowplowError::NotPayloadData(e.to_string()))?;
    if !envelope.schema.starts_with(PAYLOAD_DATA_SCHEMA) {
        return Err(SnowplowError::NotPayloadData(format!(
            "schema is {:?}",
            envelope.schema
        )));
    }
    if envelope.data.is_empty() {
        return Err(SnowplowError::Empty);
    }
    if envelope.data.len() > limits.max_events {
        return Err(SnowplowError::TooManyEvents {
            count: envelope.data.len(),
            limit: limits.max_events,
        });
    }
    Ok(envelope.data)
}

/// The event a pixel request's query string carries, as the JSON object of
/// strings a POST would carry (`key`, the write key, left out).
pub fn pixel_event(query: Option<&str>) -> Result<String, SnowplowError> {
    let mut event = serde_json::Map::new();
    for (name, value) in crate::api::query_pairs(query.unwrap_or_default()) {
        if name != crate::api::KEY_QUERY_PARAM {
            event.insert(name, serde_json::Value::String(value));
        }
    }
    if event.is_empty() {
        return Err(SnowplowError::NoQuery);
    }
    Ok(serde_json::Value::Object(event).to_string())
}

/// An event's id and times by the protocol: `eid`; `ttm` (a true timestamp,
/// taken as given) or `dtm` (the device's clock) with `stm` (the same clock
/// when sent), each milliseconds since the epoch as a string.
pub fn stamp(members: &Members<'_>) -> crate::dialect::Stamp {
    let string = |name: &str| members.str(name).map(|s| s.into_owned()).filter(|s| !s.is_empty());
    let millis = |name: &str| {
        string(name)
            .and_then(|s| s.parse::<i64>().ok())
            .and_then(Timestamp::from_millis_in_range)
    };
    let id = string("eid").filter(|s| s.chars().count() <= crate::event::MAX_MESSAGE_ID_CHARS);
    match millis("ttm") {
        Some(true_time) => crate::dialect::Stamp {
            id,
            time: Some(true_time),
            sent_at: None,
        },
        None => crate::dialect::Stamp {
            id,
            time: millis("dtm"),
            sent_at: millis("stm"),
        },
    }
}

#[cfg(test)]
mod tests;
