//! PostHog's SDKs (`posthog-js`, `posthog-node`, `posthog` on PyPI), pointed
//! at edgehose with their `api_host` / `host`.
//!
//! | route | what the SDKs send | answer |
//! |---|---|---|
//! | `POST /e/`, `/i/v0/e/`, `/batch/`, `/capture/`, `/track/` | `{"api_key","batch":[event, …],"sent_at"}`, an array of events, or one event; as JSON, gzip (by `Content-Encoding`, or by its magic bytes: posthog-js's `gzip-js` sends neither header nor parameter), base64 (`?compression=base64`), or a form's `data=` | `200 {"status":1}` |
//! | `POST /i/v1/analytics/events` | `{"created_at","batch":[event, …]}` with `Authorization: Bearer <token>` (the SDKs' `POSTHOG_CAPTURE_MODE=v1`) | `200 {"results":{uuid:{"result":"ok"|"warning"|"drop"|"retry","details"?}}}`, `Retry-After` when any is `retry` |
//! | `POST /flags/`, `/decide/` | the feature-flag call the SDKs make on start | `200` no flags, no errors: edgehose collects, it does not serve flags |
//! | `GET /array/<token>/config`, `/array/<token>/config.js` | posthog-js's remote configuration | `200` a configuration that turns nothing on and asks for gzip |
//!
//! The token is the write key: the batch's `api_key` (or `token`), an
//! event's `api_key`, `token`, `$token` or `properties.token` — all that a
//! request carries must agree — or, on the v1 route, the `Authorization`
//! header. It is taken out of each event before the envelope keeps it, as
//! Segment's `writeKey` is.
//!
//! Each event is kept otherwise as sent; its id is `uuid`, its time PostHog's
//! own rule (`timestamp` corrected by the client's skew, collector −
//! (`sent_at` − `timestamp`); `offset` milliseconds before the collector
//! when there is no timestamp; none with `$ignore_sent_at`), and the
//! transform checks it by PostHog's rules ([`validate`]).
//!
//! What the SDKs do with an answer: every SDK drops a batch answered with a
//! 4xx other than 408, 413 and 429 (posthog-node halves a batch answered
//! 413), and sends again on 5xx; posthog-js and posthog-python also send
//! again on any 2xx but 200, so every success here is exactly 200.

use std::borrow::Cow;

use serde_json::value::RawValue;

use crate::decode::DecodeError;
use crate::json::{self, Members};
use crate::limits::Limits;
use crate::timestamp::Timestamp;

pub mod validate;

/// The classic capture paths (without their trailing slash, which the SDKs
/// send and the router trims): posthog-js's `/e/` (its default) and
/// `/i/v0/e/` (PostHog Cloud's remote configuration names it), the server
/// SDKs' `/batch/`, and the older `/capture/` and `/track/`.
pub const CAPTURE_PATHS: &[&str] = &["/e", "/i/v0/e", "/batch", "/capture", "/track"];
/// The per-event-answer route (`POSTHOG_CAPTURE_MODE=v1` in posthog-node and
/// posthog-python).
pub const ANALYTICS_V1_PATH: &str = "/i/v1/analytics/events";
/// The feature-flag calls: `/flags/?v=2` (posthog-js), `?v=4` (the server
/// SDKs), and the older `/decide/`.
pub const FLAGS_PATHS: &[&str] = &["/flags", "/decide"];
/// posthog-js's remote configuration: `/array/<token>/config` (JSON) and
/// `/array/<token>/config.js` (a script that sets it).
pub const REMOTE_CONFIG_PREFIX: &str = "/array/";
/// The answer to a classic capture: what PostHog's capture answered for
/// years; the SDKs read nothing of it but the status.
pub const CAPTURE_ANSWER: &str = r#"{"status":1}"#;
/// The `Retry-After` of a v1 answer with events to send again, in seconds:
/// the SDKs wait at least this long, at most 30 s.
pub const V1_RETRY_AFTER_S: u64 = 5;
/// The most characters of an event name and a `distinct_id`, by PostHog's
/// capture (`rust/capture`'s analytics validation).
pub const MAX_NAME_CHARS: usize = 200;

/// The remote configuration: nothing turned on (no recordings, surveys,
/// heatmaps, site apps, flags), events to `/e/`, gzip asked for (posthog-js
/// sends uncompressed JSON unless the configuration lists `gzip-js`).
pub const REMOTE_CONFIG: &str = r#"{"supportedCompression":["gzip","gzip-js"],"hasFeatureFlags":false,"autocapture_opt_out":false,"capturePerformance":false,"sessionRecording":false,"heatmaps":false,"surveys":false,"productTours":false,"conversations":false,"defaultIdentifiedOnly":true,"siteApps":[],"elementsChainAsString":true,"analytics":{"endpoint":"/e/"}}"#;

/// The answer to a feature-flag call, in every shape the SDKs read (v2 and
/// later's `flags`, the older `featureFlags`), with the remote
/// configuration's fields for `/decide/`.
pub fn flags_answer() -> String {
    let config = &REMOTE_CONFIG[1..REMOTE_CONFIG.len() - 1];
    format!(
        r#"{{"flags":{{}},"featureFlags":{{}},"featureFlagPayloads":{{}},"errorsWhileComputingFlags":false,"quotaLimited":[],{config}}}"#
    )
}

/// The script `/array/<token>/config.js` answers: it sets the configuration
/// where posthog-js looks for it before it asks `/array/<token>/config`.
pub fn remote_config_script(token: &str) -> String {
    let key = serde_json::Value::String(token.to_owned()).to_string();
    format!(
        "window._POSTHOG_REMOTE_CONFIG=window._POSTHOG_REMOTE_CONFIG||{{}};window._POSTHOG_REMOTE_CONFIG[{key}]={{config:{REMOTE_CONFIG},siteApps:[]}};"
    )
}

/// The PostHog routes that carry events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `/e/`, `/batch/` and the other classic paths.
    Capture,
    /// `/i/v1/analytics/events`.
    AnalyticsV1,
}

/// The PostHog calls answered without reading a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start<'a> {
    /// `/flags/`, `/decide/`.
    Flags,
    /// `/array/<token>/config` (`script`: `config.js`).
    RemoteConfig {
        /// The project token in the path.
        token: &'a str,
        /// Whether the script was asked for.
        script: bool,
    },
}

/// The event route of a path (its trailing slash trimmed).
pub fn route(path: &str) -> Option<Route> {
    if CAPTURE_PATHS.contains(&path) {
        Some(Route::Capture)
    } else if path == ANALYTICS_V1_PATH {
        Some(Route::AnalyticsV1)
    } else {
        None
    }
}

/// The start call of a path (its trailing slash trimmed).
pub fn start(path: &str) -> Option<Start<'_>> {
    if FLAGS_PATHS.contains(&path) {
        return Some(Start::Flags);
    }
    let rest = path.strip_prefix(REMOTE_CONFIG_PREFIX)?;
    let (token, file) = rest.split_once('/')?;
    let script = match file {
        "config" => false,
        "config.js" => true,
        _ => return None,
    };
    (!token.is_empty()).then_some(Start::RemoteConfig { token, script })
}

/// Why a PostHog request was refused whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PostHogError {
    /// A decoding rule or limit shared with the other doors.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The payload is not JSON.
    #[error("the payload is not JSON: {0}")]
    NotJson(String),
    /// JSON, and not a shape PostHog's capture takes.
    #[error(
        "the payload is {0}; PostHog's capture takes an event object, an array of them, or {{\"api_key\":…,\"batch\":[…]}}"
    )]
    NotAPayload(&'static str),
    /// An element of `batch` (or of the array) that is not an object.
    #[error("event {index} of the batch is {kind}, not an object")]
    NotAnEvent {
        /// Its place in the batch.
        index: usize,
        /// What it is.
        kind: &'static str,
    },
    /// A batch with no event.
    #[error("the batch holds no event")]
    Empty,
    /// Two different tokens in one request.
    #[error(
        "the request carries more than one project token (api_key, token, properties.token); one request, one token"
    )]
    MultipleTokens,
    /// A `compression` edgehose does not read.
    #[error(
        "compression {0:?} is not supported: send JSON, gzip (gzip-js), or base64 (posthog-js sends gzip-js unless told otherwise)"
    )]
    UnsupportedCompression(String),
    /// A payload said (or taken) to be base64 that does not decode.
    #[error("the payload is not base64 (compression=base64): {0}")]
    NotBase64(String),
    /// A v1 event without its `uuid`, which the answer is keyed by.
    #[error("event {index} of the batch has no uuid; on {ANALYTICS_V1_PATH} every event carries one")]
    MissingUuid {
        /// Its place in the batch.
        index: usize,
    },
    /// A v1 event whose `uuid` is not a UUID.
    #[error("event {index} of the batch has uuid {value:?}, which is not a UUID")]
    InvalidUuid {
        /// Its place in the batch.
        index: usize,
        /// What it carried.
        value: String,
    },
    /// Two v1 events with one `uuid`.
    #[error("uuid {0} is on more than one event of the batch")]
    DuplicateUuid(String),
    /// A v1 batch's `created_at` that is not an RFC 3339 time.
    #[error("created_at {0:?} is not an RFC 3339 time")]
    InvalidCreatedAt(String),
}

impl PostHogError {
    /// The HTTP status: 413 over a size limit (posthog-node then halves its
    /// batch), 415 for an encoding not read, 401 for a token in doubt (as
    /// PostHog's capture answers), 400 otherwise.
    pub fn status(&self) -> u16 {
        match self {
            Self::Decode(e) => e.status(),
            Self::UnsupportedCompression(_) => 415,
            Self::MultipleTokens => 401,
            _ => 400,
        }
    }

    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Decode(e) => e.code(),
            Self::NotJson(_) => "invalid_json",
            Self::NotAPayload(_) => "invalid_payload",
            Self::NotAnEvent { .. } => "invalid_event",
            Self::Empty => "empty_batch",
            Self::MultipleTokens => "multiple_tokens",
            Self::UnsupportedCompression(_) => "unsupported_compression",
            Self::NotBase64(_) => "invalid_base64",
            Self::MissingUuid { .. } => "missing_event_uuid",
            Self::InvalidUuid { .. } => "invalid_event_uuid",
            Self::DuplicateUuid(_) => "duplicate_event_uuid",
            Self::InvalidCreatedAt(_) => "invalid_created_at",
        }
    }
}

/// A PostHog request's events, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The project token the body carries, if any.
    pub token: Option<String>,
    /// The batch's `sent_at` (v1: `created_at`), for events without their own.
    pub sent_at: Option<Timestamp>,
    /// Each event's text as sent, less its token members.
    pub events: Vec<String>,
}

/// An event with the library a v1 request names (`PostHog-Sdk-Info:
/// posthog-node/5.74.0`) as its `properties.$lib` and `$lib_version`, as
/// PostHog's capture adds them: the SDKs leave them out of v1 events. An
/// event that names its own keeps it; one whose `properties` is not an
/// object is left as it is (its validation says why).
pub fn with_library<'a>(event: &'a str, sdk_info: &str) -> Cow<'a, str> {
    let (lib, version) = match sdk_info.trim().rsplit_once('/') {
        Some((lib, version)) if !lib.is_empty() => (lib, Some(version)),
        _ => (sdk_info.trim(), None),
    };
    if lib.is_empty() {
        return Cow::Borrowed(event);
    }
    let Ok(members) = Members::parse(event) else {
        return Cow::Borrowed(event);
    };
    let quoted = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
    let mut added = format!(r#""$lib":{}"#, quoted(lib));
    if let Some(v) = version {
        added.push_str(&format!(r#","$lib_version":{}"#, quoted(v)));
    }
    let base = event.as_ptr() as usize;
    match members.get("properties") {
        None => {
            let end = event.rfind('}').unwrap_or(event.len());
            let comma = if members.0.is_empty() { "" } else { "," };
            Cow::Owned(format!(
                r#"{}{comma}"properties":{{{added}}}{}"#,
                &event[..end],
                &event[end..]
            ))
        }
        Some(p) => {
            let Ok(properties) = Members::parse(p.get()) else {
                return Cow::Borrowed(event);
            };
            if properties.get("$lib").is_some() {
                return Cow::Borrowed(event);
            }
            let open = p.get().as_ptr() as usize - base + p.get().find('{').unwrap_or(0) + 1;
            let comma = if properties.0.is_empty() { "" } else { "," };
            Cow::Owned(format!("{}{added}{comma}{}", &event[..open], &event[open..]))
        }
    }
}

/// The members that carry a project token, on a batch and on an event.
const TOKEN_MEMBERS: &[&str] = &["api_key", "token", "$token"];

/// Whether a body is gzip by its first bytes (posthog-js's `gzip-js` names
/// it nowhere else).
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b, 0x08])
}

/// The JSON text of a classic capture body, whatever its wrapping: a form's
/// `data=` field, base64 (said by `compression`, in the query or the form,
/// or recognised: a payload that is not JSON and decodes as base64 is taken
/// as such, as PostHog's capture does). Gzip is undone before this.
pub fn unwrap_capture(bytes: &[u8], content_type: Option<&str>, query: Option<&str>) -> Result<Vec<u8>, PostHogError> {
    let mut compression = query
        .and_then(|q| crate::api::query_param(q, "compression"))
        .filter(|c| !c.is_empty());
    let form = content_type.is_some_and(|t| {
        t.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
    }) || bytes.starts_with(b"data=");
    let mut payload = bytes.to_vec();
    if form {
        let text = String::from_utf8_lossy(bytes);
        let mut data = None;
        for (name, value) in crate::api::query_pairs(&text) {
            match name.as_str() {
                "data" => data = Some(value),
                "compression" if !value.is_empty() => compression = Some(value),
                _ => {}
            }
        }
        let data = data.ok_or(PostHogError::NotAPayload("a form without its data field"))?;
        payload = data.into_bytes();
    }
    match compression.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("gzip" | "gzip-js") => {
            let text = payload.trim_ascii_start();
            let json_like = matches!(text.first(), Some(b'{' | b'[') | None) || text.starts_with(b"\xEF\xBB\xBF");
            if !json_like && let Ok(decoded) = base64_decode(&payload) {
                return Ok(decoded);
            }
            Ok(payload)
        }
        Some("base64") => base64_decode(&payload),
        Some(other) => Err(PostHogError::UnsupportedCompression(other.to_owned())),
    }
}

/// Decodes base64 as the SDKs write it (padding or none; a `+` that a form
/// turned into a space restored).
fn base64_decode(payload: &[u8]) -> Result<Vec<u8>, PostHogError> {
    use base64::Engine as _;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let text: Vec<u8> = payload
        .iter()
        .filter(|b| !b.is_ascii_whitespace() || **b == b' ')
        .map(|&b| if b == b' ' { b'+' } else { b })
        .collect();
    LENIENT
        .decode(&text)
        .map_err(|e| PostHogError::NotBase64(e.to_string()))
}

/// Reads a classic capture payload (JSON text, unwrapped) within `limits`.
pub fn read_capture(payload: &[u8], limits: &Limits) -> Result<Request, PostHogError> {
    let text = text_of(payload)?;
    let (elements, batch): (Vec<&RawValue>, Option<Members<'_>>) = match json::kind(text) {
        "an array" => (elements_of(text, limits, 1)?, None),
        "an object" => {
            let top = Members::parse(text).map_err(|e| PostHogError::NotJson(e.to_string()))?;
            match top.get("batch") {
                Some(raw) => (elements_of(raw.get(), limits, 2)?, Some(top)),
                None => {
                    check_depth(text, limits, 0)?;
                    (
                        vec![serde_json::from_str(text).map_err(|e| PostHogError::NotJson(e.to_string()))?],
                        None,
                    )
                }
            }
        }
        kind => return Err(PostHogError::NotAPayload(kind)),
    };
    let mut token = None;
    let mut agree = |found: Option<Cow<'_, str>>| match (&token, found) {
        (_, None) => Ok(()),
        (None, Some(t)) => {
            token = Some(t.into_owned());
            Ok(())
        }
        (Some(seen), Some(t)) if *seen == *t => Ok(()),
        _ => Err(PostHogError::MultipleTokens),
    };
    if let Some(top) = &batch {
        for name in TOKEN_MEMBERS {
            agree(top.str(name))?;
        }
    }
    let sent_at = batch
        .as_ref()
        .and_then(|b| b.get("sent_at"))
        .and_then(|raw| client_time(raw.get()));
    let mut events = Vec::with_capacity(elements.len());
    for (index, element) in elements.into_iter().enumerate() {
        let event = element.get();
        check_event(index, event, limits)?;
        let members = Members::parse(event).map_err(|e| PostHogError::NotJson(e.to_string()))?;
        for name in TOKEN_MEMBERS {
            agree(members.str(name))?;
        }
        let properties = members.get("properties").and_then(|p| Members::parse(p.get()).ok());
        if let Some(p) = &properties {
            agree(p.str("token"))?;
        }
        let mut kept: Cow<'_, str> = Cow::Borrowed(event);
        for name in TOKEN_MEMBERS {
            if let Cow::Owned(s) = json::without_member(&kept, name) {
                kept = Cow::Owned(s);
            }
        }
        if properties.is_some_and(|p| p.get("token").is_some()) {
            kept = Cow::Owned(json::without_nested_member(&kept, "properties", "token").into_owned());
        }
        events.push(kept.into_owned());
    }
    Ok(Request { token, sent_at, events })
}

/// Reads a v1 body (JSON text, inflated) within `limits`: every event with
/// its own UUID, none twice.
pub fn read_v1(payload: &[u8], limits: &Limits) -> Result<Request, PostHogError> {
    let text = text_of(payload)?;
    let top = match json::kind(text) {
        "an object" => Members::parse(text).map_err(|e| PostHogError::NotJson(e.to_string()))?,
        kind => return Err(PostHogError::NotAPayload(kind)),
    };
    let raw = top
        .get("batch")
        .ok_or(PostHogError::NotAPayload("an object without batch"))?;
    let elements = elements_of(raw.get(), limits, 2)?;
    let sent_at = match top.get("created_at") {
        None => None,
        Some(raw) => Some(client_time(raw.get()).ok_or_else(|| PostHogError::InvalidCreatedAt(raw.get().to_owned()))?),
    };
    let mut seen = std::collections::HashSet::new();
    let mut events = Vec::with_capacity(elements.len());
    for (index, element) in elements.into_iter().enumerate() {
        let event = element.get();
        check_event(index, event, limits)?;
        let members = Members::parse(event).map_err(|e| PostHogError::NotJson(e.to_string()))?;
        let uuid = members
            .str("uuid")
            .filter(|u| !u.is_empty())
            .ok_or(PostHogError::MissingUuid { index })?;
        let parsed = uuid::Uuid::try_parse(&uuid).map_err(|_| PostHogError::InvalidUuid {
            index,
            value: uuid.clone().into_owned(),
        })?;
        if !seen.insert(parsed) {
            return Err(PostHogError::DuplicateUuid(uuid.into_owned()));
        }
        events.push(event.to_owned());
    }
    Ok(Request {
        token: None,
        sent_at,
        events,
    })
}

fn text_of(payload: &[u8]) -> Result<&str, PostHogError> {
    let payload = payload.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(payload).trim_ascii();
    if payload.is_empty() {
        return Err(DecodeError::EmptyBody.into());
    }
    std::str::from_utf8(payload).map_err(|e| PostHogError::NotJson(format!("not UTF-8 ({e})")))
}

/// The elements of a batch array (`wrapper`: the levels around each event).
fn elements_of<'a>(array: &'a str, limits: &Limits, wrapper: usize) -> Result<Vec<&'a RawValue>, PostHogError> {
    check_depth(array, limits, wrapper - 1)?;
    let elements: Vec<&RawValue> = serde_json::from_str(array).map_err(|e| match json::kind(array) {
        "an array" => PostHogError::NotJson(e.to_string()),
        _ => PostHogError::NotAPayload("an object whose batch is not an array"),
    })?;
    if elements.is_empty() {
        return Err(PostHogError::Empty);
    }
    if elements.len() > limits.max_events {
        return Err(DecodeError::TooManyEvents {
            count: elements.len(),
            limit: limits.max_events,
        }
        .into());
    }
    Ok(elements)
}

fn check_depth(text: &str, limits: &Limits, wrapper: usize) -> Result<(), PostHogError> {
    Ok(crate::decode::check_depth(text.as_bytes(), limits, wrapper)?)
}

fn check_event(index: usize, event: &str, limits: &Limits) -> Result<(), PostHogError> {
    match json::kind(event) {
        "an object" => {}
        kind => return Err(PostHogError::NotAnEvent { index, kind }),
    }
    if event.len() > limits.max_event_bytes {
        return Err(DecodeError::EventTooLarge {
            index,
            size: event.len(),
            limit: limits.max_event_bytes,
        }
        .into());
    }
    Ok(())
}

fn client_time(raw: &str) -> Option<Timestamp> {
    let value: serde_json::Value = serde_json::from_str(raw).ok()?;
    crate::event::parse_client_time(&value)
}

/// An event's id and times by PostHog's rules: `uuid`; `timestamp`, and
/// the event's `sent_at` or else the batch's (`batch_sent_at`) for the
/// skew, unless `properties.$ignore_sent_at` or the v1
/// `options.disable_skew_correction` says not to; without a timestamp,
/// `offset` milliseconds before the collector received it.
pub fn stamp(members: &Members<'_>, batch_sent_at: Option<Timestamp>) -> crate::dialect::Stamp {
    let id = members
        .str("uuid")
        .filter(|s| !s.is_empty() && s.chars().count() <= crate::event::MAX_MESSAGE_ID_CHARS)
        .map(Cow::into_owned);
    let flag = |object: &str, name: &str| {
        members
            .get(object)
            .and_then(|o| Members::parse(o.get()).ok())
            .and_then(|o| o.get(name))
            .is_some_and(|v| v.get() == "true")
    };
    let ignore_sent_at = flag("properties", "$ignore_sent_at") || flag("options", "disable_skew_correction");
    let sent_at = members
        .get("sent_at")
        .and_then(|raw| client_time(raw.get()))
        .or(batch_sent_at)
        .filter(|_| !ignore_sent_at);
    match members.get("timestamp").and_then(|raw| client_time(raw.get())) {
        Some(time) => crate::dialect::Stamp {
            id,
            time: Some(time),
            sent_at,
        },
        None => {
            // `offset` ms before the collector: as a skew of `offset` from an
            // event at the epoch (collector − (offset − 0)).
            let offset = members
                .get("offset")
                .and_then(|raw| raw.get().parse::<i64>().ok())
                .filter(|o| *o >= 0)
                .and_then(Timestamp::from_millis_in_range);
            crate::dialect::Stamp {
                id,
                time: offset.map(|_| Timestamp(0)),
                sent_at: offset,
            }
        }
    }
}

#[cfg(test)]
mod tests;
