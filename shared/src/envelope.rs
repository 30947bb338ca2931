//! The envelope: one NDJSON line the edge writes for every accepted event,
//! and the quarantine form for what it accepted but could not decode.
//!
//! ```text
//! {"v":1,"id":"…","received_at":1714566600250,"event_time":1714566600000,"key_id":"web","edge":{"country":"DE","colo":"FRA","asn":3320},"event":{…as sent…}}
//! {"v":1,"id":"…","received_at":1714566600250,"event_time":1714566600000,"format":"segment","type":"track","event":{…as sent…}}
//! {"v":1,"id":"…","received_at":1714566600250,"event_time":1714566600120,"format":"source","source":"gps","event":{…as sent…}}
//! {"v":1,"id":"…","received_at":1714566600250,"event_time":1714566600250,"quarantine":{"reason":"…","content_type":"application/json","encoding":"base64","data":"…","part":1,"parts":1,"bytes":17}}
//! ```
//!
//! - `format` says which rules the event follows ([`Dialect`]): absent for
//!   schema v1, `segment` (with `type` when the route implied the call, and
//!   `batch_sent_at` when the batch carried a `sentAt`), or `source` (with
//!   the source's name).
//! - `id` is the event's own id when it sent a usable one (`message_id`,
//!   Segment's `messageId`, a source's declared id member: see
//!   [`crate::dialect`]), else a UUIDv7 made from `received_at` and the
//!   injected random source: time-ordered, unique, and stable across retries
//!   once written.
//! - `event_time` corrects the client's clock the way Segment does: when the
//!   event carries both a client time and a sent time, `received_at -
//!   (sent_at - time)`; with only the time, the time; otherwise `received_at`.
//! - `event` is the event's JSON text exactly as sent, except that raw CR/LF
//!   whitespace becomes spaces so the envelope stays one line (the value is
//!   unchanged: see [`crate::json::single_line`]).
//! - `quarantine` carries bytes that were not an event, with the reason. Text
//!   is kept as a JSON string, anything else as base64; a payload too large
//!   for one Firehose record is split into `parts` that share one `id`.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::clock::RandomSource;
use crate::decode::Item;
pub use crate::dialect::{Dialect, Stamp};
use crate::json;
use crate::timestamp::Timestamp;

/// The envelope format version written in `v`.
pub const ENVELOPE_VERSION: u32 = 1;

/// Largest slice of a quarantined payload carried by one envelope: 64 KiB of
/// raw bytes, which base64 or JSON-escape to at most ~86 KiB, so each part
/// fits one Cloudflare Queues message as well as one Firehose record.
pub const QUARANTINE_CHUNK_BYTES: usize = 64 * 1024;

/// Where and how the edge received a request (Cloudflare's `request.cf`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeMeta<'a> {
    /// ISO 3166-1 alpha-2 country of the client.
    #[serde(
        default,
        borrow,
        deserialize_with = "json::borrow::opt_str",
        skip_serializing_if = "Option::is_none"
    )]
    pub country: Option<Cow<'a, str>>,
    /// The Cloudflare data center (IATA code) that took the request.
    #[serde(
        default,
        borrow,
        deserialize_with = "json::borrow::opt_str",
        skip_serializing_if = "Option::is_none"
    )]
    pub colo: Option<Cow<'a, str>>,
    /// The client's autonomous system number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    /// The client's IP address; only kept when a deployment turns it on.
    #[serde(
        default,
        borrow,
        deserialize_with = "json::borrow::opt_str",
        skip_serializing_if = "Option::is_none"
    )]
    pub client_ip: Option<Cow<'a, str>>,
}

impl EdgeMeta<'_> {
    fn is_empty(&self) -> bool {
        self.country.is_none() && self.colo.is_none() && self.asn.is_none() && self.client_ip.is_none()
    }

    /// The same metadata, owning its strings.
    pub fn into_owned(self) -> EdgeMeta<'static> {
        EdgeMeta {
            country: self.country.map(owned),
            colo: self.colo.map(owned),
            asn: self.asn,
            client_ip: self.client_ip.map(owned),
        }
    }
}

fn owned(s: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(s.into_owned())
}

/// What the edge knows about one request, shared by all its envelopes.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext<'a> {
    /// When the edge received the request.
    pub received_at: Timestamp,
    /// The id (never the secret) of the write key the request used.
    pub key_id: Option<&'a str>,
    /// Edge metadata.
    pub edge: &'a EdgeMeta<'a>,
    /// The request's `Content-Type`, kept with quarantined payloads.
    pub content_type: Option<&'a str>,
    /// The door the request came through, which says how its events are read.
    pub dialect: Dialect<'a>,
}

/// The skew-corrected event time (see the module docs).
pub fn event_time(received_at: Timestamp, ts: Option<Timestamp>, sent_at: Option<Timestamp>) -> Timestamp {
    match (ts, sent_at) {
        (Some(ts), Some(sent)) => received_at.add_millis(-sent.millis_since(ts)),
        (Some(ts), None) => ts,
        _ => received_at,
    }
}

/// A UUIDv7 (RFC 9562 §5.7) from a millisecond time and the random source.
pub fn uuid_v7(at: Timestamp, random: &dyn RandomSource) -> String {
    let mut bytes = [0u8; 10];
    random.fill(&mut bytes);
    let ms = at.as_millis().clamp(0, (1 << 48) - 1) as u64;
    uuid::Builder::from_unix_timestamp_millis(ms, &bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// Wraps one event (its JSON text) in an envelope line, without a newline,
/// reading its id and times by the request's dialect.
pub fn wrap_event(ctx: &RequestContext<'_>, event: &str, random: &dyn RandomSource) -> String {
    wrap_stamped(ctx, event, ctx.dialect.stamp(event), random)
}

/// Wraps one event whose id and times were already read.
pub fn wrap_stamped(ctx: &RequestContext<'_>, event: &str, stamp: Stamp, random: &dyn RandomSource) -> String {
    let id = stamp.id.unwrap_or_else(|| uuid_v7(ctx.received_at, random));
    let time = event_time(ctx.received_at, stamp.time, stamp.sent_at);
    let event = json::single_line(event);
    let mut line = String::with_capacity(event.len() + 200);
    write_header(&mut line, ctx, &id, time);
    line.push_str(",\"event\":");
    line.push_str(&event);
    line.push('}');
    line
}

/// Wraps bytes that could not be decoded in one or more quarantine envelope
/// lines (several when they exceed [`QUARANTINE_CHUNK_BYTES`]).
pub fn wrap_quarantine(
    ctx: &RequestContext<'_>,
    bytes: &[u8],
    index: Option<usize>,
    reason: &str,
    random: &dyn RandomSource,
) -> Vec<String> {
    let id = uuid_v7(ctx.received_at, random);
    let chunks = chunk(bytes);
    let parts = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, piece)| {
            let (encoding, data) = match std::str::from_utf8(piece) {
                Ok(text) if escaped_len(text) <= base64_len(piece.len()) => ("utf-8", text.to_owned()),
                _ => ("base64", base64_encode(piece)),
            };
            let q = QuarantineOut {
                reason,
                content_type: ctx.content_type,
                index,
                encoding,
                data: &data,
                part: i + 1,
                parts,
                bytes: bytes.len(),
            };
            let mut line = String::with_capacity(data.len() + reason.len() + 300);
            write_header(&mut line, ctx, &id, ctx.received_at);
            line.push_str(",\"quarantine\":");
            line.push_str(&to_json(&q));
            line.push('}');
            line
        })
        .collect()
}

/// Wraps every item of a decoded body, in order: one line per event and one
/// or more per malformed piece.
pub fn wrap_items(ctx: &RequestContext<'_>, items: &[Item<'_>], random: &dyn RandomSource) -> Vec<String> {
    let mut lines = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Item::Event(e) => lines.push(wrap_event(ctx, e, random)),
            Item::Malformed(m) => lines.extend(wrap_quarantine(ctx, m.bytes, m.index, &m.reason, random)),
        }
    }
    lines
}

#[derive(Serialize)]
struct HeaderOut<'a> {
    v: u32,
    id: &'a str,
    received_at: i64,
    event_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    edge: Option<&'a EdgeMeta<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    call: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    batch_sent_at: Option<i64>,
}

#[derive(Serialize)]
struct QuarantineOut<'a> {
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
    encoding: &'a str,
    data: &'a str,
    part: usize,
    parts: usize,
    bytes: usize,
}

/// Writes `{"v":1,…` without the closing brace.
fn write_header(out: &mut String, ctx: &RequestContext<'_>, id: &str, time: Timestamp) {
    let header = HeaderOut {
        v: ENVELOPE_VERSION,
        id,
        received_at: ctx.received_at.as_millis(),
        event_time: time.as_millis(),
        key_id: ctx.key_id,
        edge: (!ctx.edge.is_empty()).then_some(ctx.edge),
        format: ctx.dialect.format(),
        call: match ctx.dialect {
            Dialect::Segment { call, .. } => call,
            _ => None,
        },
        source: match ctx.dialect {
            Dialect::Source { name, .. } => Some(name),
            _ => None,
        },
        batch_sent_at: match ctx.dialect {
            Dialect::Segment { sent_at, .. } | Dialect::PostHog { sent_at } => sent_at.map(Timestamp::as_millis),
            _ => None,
        },
    };
    let json = to_json(&header);
    out.push_str(&json[..json.len() - 1]);
}

fn to_json<T: Serialize>(value: &T) -> String {
    // Serializing these plain structs of strings and integers cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

/// Splits into chunks of at most [`QUARANTINE_CHUNK_BYTES`], never inside a
/// UTF-8 character of text so each text chunk stays valid on its own.
fn chunk(bytes: &[u8]) -> Vec<&[u8]> {
    if bytes.is_empty() {
        return vec![bytes];
    }
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let mut end = rest.len().min(QUARANTINE_CHUNK_BYTES);
        if end < rest.len() {
            // Back up over UTF-8 continuation bytes (at most three).
            let mut e = end;
            while e > end.saturating_sub(3) && (rest[e] & 0xC0) == 0x80 {
                e -= 1;
            }
            if e > 0 {
                end = e;
            }
        }
        out.push(&rest[..end]);
        rest = &rest[end..];
    }
    out
}

fn escaped_len(text: &str) -> usize {
    text.bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0C => 2,
            0..=0x1F => 6,
            _ => 1,
        })
        .sum()
}

fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The region an envelope line was routed to (`region`,
/// [`crate::residency`]), or that of the envelope a `rejected` line holds;
/// `None` for a line without one.
pub fn region_of(line: &str) -> Option<String> {
    let members = json::Members::parse(line).ok()?;
    if let Some(region) = members.str("region") {
        return Some(region.into_owned());
    }
    let inner = members.get("envelope")?;
    json::Members::parse(inner.get())
        .ok()?
        .str("region")
        .map(|r| r.into_owned())
}

/// An envelope line read back (the regional side's view). Its strings and
/// the event borrow from the line (see [`Envelope::into_owned`]).
#[derive(Debug, Clone, Deserialize)]
pub struct Envelope<'a> {
    /// Format version.
    pub v: u32,
    /// Event id (the client's `message_id` or a UUIDv7).
    #[serde(borrow, deserialize_with = "json::borrow::str")]
    pub id: Cow<'a, str>,
    /// When the edge received it, in epoch milliseconds.
    pub received_at: i64,
    /// Skew-corrected event time, in epoch milliseconds.
    pub event_time: i64,
    /// The write key's id.
    #[serde(default, borrow, deserialize_with = "json::borrow::opt_str")]
    pub key_id: Option<Cow<'a, str>>,
    /// Edge metadata.
    #[serde(default, borrow)]
    pub edge: Option<EdgeMeta<'a>>,
    /// The dialect: absent for schema v1, `segment`, or `source`.
    #[serde(default, borrow, deserialize_with = "json::borrow::opt_str")]
    pub format: Option<Cow<'a, str>>,
    /// Segment: the call the route implied (`track`, `page`, …).
    #[serde(default, rename = "type", borrow, deserialize_with = "json::borrow::opt_str")]
    pub call: Option<Cow<'a, str>>,
    /// An any-JSON source's name.
    #[serde(default, borrow, deserialize_with = "json::borrow::opt_str")]
    pub source: Option<Cow<'a, str>>,
    /// Segment: the batch's `sentAt` (epoch ms), which its messages do not
    /// carry themselves; kept so the skew correction can be checked.
    #[serde(default)]
    pub batch_sent_at: Option<i64>,
    /// The event as sent, for an event envelope.
    #[serde(default, borrow, deserialize_with = "borrow_raw")]
    pub event: Option<Cow<'a, RawValue>>,
    /// The payload, for a quarantine envelope.
    #[serde(default)]
    pub quarantine: Option<Quarantine>,
    /// What the edge said of the event's request: a rate limit it came
    /// past, a bot signal, its lane ([`crate::label`]).
    #[serde(default)]
    pub label: Option<crate::label::Label>,
    /// The visitor's network user id, from the identity cookie
    /// ([`crate::identity`]).
    #[serde(default, borrow, deserialize_with = "json::borrow::opt_str")]
    pub nuid: Option<Cow<'a, str>>,
    /// The region the edge routed it to ([`crate::residency`]): its sink,
    /// queue and dead letters are that region's, and only that region's.
    #[serde(default, borrow, deserialize_with = "json::borrow::opt_str")]
    pub region: Option<Cow<'a, str>>,
}

/// The quarantine part of an envelope, read back.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Quarantine {
    /// Why the payload was not an event.
    pub reason: String,
    /// The request's content type.
    #[serde(default)]
    pub content_type: Option<String>,
    /// The item's index in its request, when the body was readable.
    #[serde(default)]
    pub index: Option<usize>,
    /// `utf-8` or `base64`.
    pub encoding: String,
    /// The payload slice.
    pub data: String,
    /// Which part this is, from 1.
    pub part: usize,
    /// How many parts the payload was split into.
    pub parts: usize,
    /// The whole payload's size in bytes.
    pub bytes: usize,
}

impl Quarantine {
    /// The raw bytes of this part.
    pub fn raw(&self) -> Result<Vec<u8>, EnvelopeError> {
        use base64::Engine;
        match self.encoding.as_str() {
            "utf-8" => Ok(self.data.clone().into_bytes()),
            "base64" => base64::engine::general_purpose::STANDARD
                .decode(&self.data)
                .map_err(|e| EnvelopeError::Invalid(format!("quarantine data is not base64: {e}"))),
            other => Err(EnvelopeError::Invalid(format!("unknown quarantine encoding {other:?}"))),
        }
    }
}

/// Why a line is not a usable envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// Not an envelope at all, or one with missing or conflicting parts.
    #[error("not an edgehose envelope: {0}")]
    Invalid(String),
    /// An envelope of a version this build does not read.
    #[error("envelope version {0} is not supported (this build reads version {ENVELOPE_VERSION})")]
    Version(u32),
}

fn borrow_raw<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, RawValue>>, D::Error> {
    Ok(Option::<&'de RawValue>::deserialize(d)?.map(Cow::Borrowed))
}

impl<'a> Envelope<'a> {
    /// Parses and checks one envelope line.
    pub fn parse(line: &'a str) -> Result<Self, EnvelopeError> {
        let env: Envelope = serde_json::from_str(line).map_err(|e| EnvelopeError::Invalid(e.to_string()))?;
        if env.v != ENVELOPE_VERSION {
            return Err(EnvelopeError::Version(env.v));
        }
        match (env.format.as_deref(), env.source.as_deref()) {
            (None | Some("segment" | "snowplow" | "posthog"), None) | (Some("source"), Some(_)) => {}
            (Some("source"), None) => {
                return Err(EnvelopeError::Invalid(
                    "`format` is source but `source` is missing".into(),
                ));
            }
            (Some(other), _) if !matches!(other, "segment" | "source" | "snowplow" | "posthog") => {
                return Err(EnvelopeError::Invalid(format!("unknown format {other:?}")));
            }
            _ => return Err(EnvelopeError::Invalid("`source` is only for format source".into())),
        }
        match (&env.event, &env.quarantine) {
            (Some(_), None) | (None, Some(_)) => Ok(env),
            (Some(_), Some(_)) => Err(EnvelopeError::Invalid(
                "both `event` and `quarantine` are present".into(),
            )),
            (None, None) => Err(EnvelopeError::Invalid(
                "neither `event` nor `quarantine` is present".into(),
            )),
        }
    }

    /// The same envelope, owning everything (to keep it past its line).
    pub fn into_owned(self) -> Envelope<'static> {
        Envelope {
            v: self.v,
            id: owned(self.id),
            received_at: self.received_at,
            event_time: self.event_time,
            key_id: self.key_id.map(owned),
            edge: self.edge.map(EdgeMeta::into_owned),
            format: self.format.map(owned),
            call: self.call.map(owned),
            source: self.source.map(owned),
            batch_sent_at: self.batch_sent_at,
            event: self.event.map(|e| Cow::Owned(e.into_owned())),
            quarantine: self.quarantine,
            label: self.label,
            nuid: self.nuid.map(owned),
            region: self.region.map(owned),
        }
    }
}

#[cfg(test)]
mod tests;
