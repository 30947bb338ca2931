//! Every limit the pipeline enforces, as a named constant with its source, and
//! [`Limits`]: the request-decoding limits a deployment may lower but never raise.

/// Largest request body accepted, counted after decompression: 1 MiB.
///
/// Sized like the common analytics ingestion APIs (Amplitude's HTTP V2 API
/// takes 1 MB per request,
/// <https://amplitude.com/docs/apis/analytics/http-v2#upload-limit>), and small
/// enough that a whole request always fits in a Firehose call once enveloped.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Largest single event, in bytes of its JSON text: 32 KiB.
///
/// Segment's tracking API uses the same per-event ceiling
/// (<https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/#max-request-size>).
pub const MAX_EVENT_BYTES: usize = 32 * 1024;

/// Most events accepted in one request: 500, one `PutRecordBatch` worth of
/// records (<https://docs.aws.amazon.com/firehose/latest/APIReference/API_PutRecordBatch.html>).
pub const MAX_EVENTS_PER_REQUEST: usize = 500;

/// Deepest JSON nesting accepted inside one event: 32 levels (the event object is level 1).
///
/// RFC 8259 §9 lets a parser bound nesting depth
/// (<https://www.rfc-editor.org/rfc/rfc8259#section-9>); 32 is far beyond what
/// analytics payloads use and keeps every parser on the path (serde_json's own
/// limit is 128) well away from stack exhaustion.
pub const MAX_JSON_DEPTH: usize = 32;

/// Largest message the Segment-compatible routes accept: 32 KB, Segment's own
/// limit per message ("The maximum size of each individual message is 32KB",
/// <https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/#max-request-size>),
/// which its SDKs check as 32 × 1024 bytes before sending.
pub const SEGMENT_MAX_MESSAGE_BYTES: usize = 32 * 1024;

/// Largest request the Segment-compatible routes accept: 500 KB, Segment's
/// own limit per batch request ("The batch endpoint accepts a maximum of
/// 500KB per request", same page as [`SEGMENT_MAX_MESSAGE_BYTES`]); counted
/// as 500 × 1024 bytes after decompression, so nothing Segment takes is refused.
pub const SEGMENT_MAX_BATCH_BYTES: usize = 500 * 1024;

/// Most records in one `PutRecordBatch` call
/// (<https://docs.aws.amazon.com/firehose/latest/APIReference/API_PutRecordBatch.html>).
pub const FIREHOSE_MAX_RECORDS_PER_CALL: usize = 500;

/// Largest `PutRecordBatch` request: 4 MiB. We count the whole JSON body as sent,
/// base64 growth included, so the bound holds whichever way the service counts
/// (<https://docs.aws.amazon.com/firehose/latest/dev/limits.html>).
pub const FIREHOSE_MAX_CALL_BYTES: usize = 4 * 1024 * 1024;

/// Largest Firehose record, before base64 encoding: 1,000 KiB
/// (<https://docs.aws.amazon.com/firehose/latest/dev/limits.html>).
pub const FIREHOSE_MAX_RECORD_BYTES: usize = 1000 * 1024;

/// Firehose bills ingestion per record rounded up to the next 5 KB
/// (<https://aws.amazon.com/firehose/pricing/>).
pub const FIREHOSE_BILLING_INCREMENT_BYTES: usize = 5 * 1024;

/// Largest Cloudflare Queues message: 128 KB
/// (<https://developers.cloudflare.com/queues/platform/limits/>).
pub const QUEUE_MAX_MESSAGE_BYTES: usize = 128_000;

/// How full the edge fills a queue message: a little under
/// [`QUEUE_MAX_MESSAGE_BYTES`], as Cloudflare counts a few bytes of framing
/// per message.
pub const QUEUE_MESSAGE_TARGET_BYTES: usize = QUEUE_MAX_MESSAGE_BYTES - 1_000;

/// Most messages in one Cloudflare Queues `sendBatch`: 100
/// (<https://developers.cloudflare.com/queues/platform/limits/>).
pub const QUEUE_MAX_BATCH_MESSAGES: usize = 100;

/// Largest Cloudflare Queues `sendBatch`, all messages together: 256 KB
/// (<https://developers.cloudflare.com/queues/platform/limits/>).
pub const QUEUE_MAX_BATCH_BYTES: usize = 256_000;

/// Cloudflare Queues bills each 64 KB of a message written, read or deleted
/// as one operation (<https://developers.cloudflare.com/queues/platform/pricing/>).
pub const QUEUE_BILLING_INCREMENT_BYTES: usize = 64 * 1024;

/// How long a Worker's `ctx.waitUntil` work may run after its response:
/// 30 s, then the runtime cancels it ("waitUntil has a 30 second time limit
/// after the response is sent",
/// <https://developers.cloudflare.com/workers/runtime-apis/context/#waituntil>).
/// Everything the edge does after answering (the window, the queue write, the
/// sink's calls and retries, the dead-letter write) ends inside it.
pub const WAIT_UNTIL_LIMIT_MS: u64 = 30_000;

/// What the edge keeps of each deadline for its last step, saving what did
/// not land in the dead-letter archive: one R2 write of up to a window's
/// lines, and a second try ([`DEAD_LETTER_WRITE_TIMEOUT_MS`] each).
pub const DEAD_LETTER_RESERVE_MS: u64 = 2 * DEAD_LETTER_WRITE_TIMEOUT_MS + 1_000;

/// The longest one dead-letter write to R2 may take before it is abandoned
/// (and tried once more, or handed on).
pub const DEAD_LETTER_WRITE_TIMEOUT_MS: u64 = 2_000;

/// The longest one write to an events queue may take before the edge stops
/// waiting and hands the lines on (to the next shard, then the sink).
/// Cloudflare's writes confirm in ~60 ms at the median, so one that takes
/// seconds is a brownout; but a write the edge stops waiting for may still
/// land, and then its lines arrive twice. Ten seconds gives a slow write
/// room and still leaves a window's direct delivery 15 s of `waitUntil`'s 30
/// (with the dead-letter reserve). `make soak` counts the writes that land
/// after it (`queue_writes_landed_late`).
pub const QUEUE_WRITE_TIMEOUT_MS: u64 = 10_000;

/// How long one queue consumer invocation may run: 15 minutes of wall time
/// ("Per consumer invocation duration (wall clock) 15 minutes",
/// <https://developers.cloudflare.com/queues/platform/limits/>).
pub const QUEUE_CONSUMER_WALL_LIMIT_MS: u64 = 15 * 60 * 1000;

/// The longest delay Cloudflare Queues take on a send or a retry
/// (`delaySeconds`): 12 hours
/// (<https://developers.cloudflare.com/queues/configuration/batching-retries/#delay-messages>).
pub const QUEUE_MAX_DELAY_SECONDS: u32 = 12 * 60 * 60;

/// Messages one Cloudflare queue takes per second: 5,000; past it `send` and
/// `sendBatch` throw (<https://developers.cloudflare.com/queues/platform/limits/>).
pub const QUEUE_MESSAGES_PER_SECOND: usize = 5_000;

/// An isolate's memory: 128 MB, JavaScript heap and wasm memory together;
/// an isolate past it is ended, and with it everything it holds
/// (<https://developers.cloudflare.com/workers/platform/limits/#memory>).
pub const ISOLATE_MEMORY_BYTES: usize = 128 * 1024 * 1024;

/// Data points one Worker invocation may write to Workers Analytics Engine;
/// past it `writeDataPoint` refuses them
/// (<https://developers.cloudflare.com/analytics/analytics-engine/limits/>).
/// The edge writes one per outcome cell and keeps the rest for its next flush.
pub const ANALYTICS_POINTS_PER_INVOCATION: usize = 250;

/// Bytes an Analytics Engine data point's index may hold (same page): the
/// write key's id is the index, and a longer one is cut to this.
pub const ANALYTICS_INDEX_BYTES: usize = 96;

/// Doubles one Analytics Engine data point holds (same page): the edge's
/// outcome counts take [`crate::outcome::OUTCOMES`] of them.
pub const ANALYTICS_DOUBLES: usize = 20;

/// How long outcome counts taken on the request path (answers, refusals)
/// wait in an isolate before they are written, when no window's flush writes
/// them sooner: the isolate keeps a timer of this length in `waitUntil`.
pub const OUTCOMES_FLUSH_MS: u64 = 10_000;

/// The most accepted-but-not-yet-handed-on bytes one isolate holds by
/// default (`MAX_HELD_BYTES`; settable lower, never higher): a quarter of
/// [`ISOLATE_MEMORY_BYTES`], because a held line is copied up to three more
/// times while it is sent (packed records, the call's body, the copy handed
/// to `fetch`). Past it a new request is handed to the queue at once or
/// answered 503 with `Retry-After`, never held.
pub const MAX_HELD_BYTES: usize = ISOLATE_MEMORY_BYTES / 4;

/// Direct mode: a gathering window that holds this many lines is sent at
/// once rather than at the window's end (one `PutRecordBatch`'s worth of
/// records, were each line its own).
pub const DIRECT_FLUSH_LINES: usize = 500;

/// Direct mode: a gathering window that holds this many bytes is sent at
/// once (well under a call's 4 MiB once base64 grows it).
pub const DIRECT_FLUSH_BYTES: usize = 3 * 1024 * 1024;

/// The request-decoding limits in force for one deployment.
///
/// Every field is clamped to `1..=` its constant above: a configuration can make
/// the edge stricter, never looser than the pipeline behind it can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest body after decompression, in bytes (at most [`MAX_BODY_BYTES`]).
    pub max_body_bytes: usize,
    /// Largest event, in bytes of JSON text (at most [`MAX_EVENT_BYTES`]).
    pub max_event_bytes: usize,
    /// Most events in one request (at most [`MAX_EVENTS_PER_REQUEST`]).
    pub max_events: usize,
    /// Deepest nesting inside one event (at most [`MAX_JSON_DEPTH`]).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: MAX_BODY_BYTES,
            max_event_bytes: MAX_EVENT_BYTES,
            max_events: MAX_EVENTS_PER_REQUEST,
            max_depth: MAX_JSON_DEPTH,
        }
    }
}

impl Limits {
    /// Builds limits from requested values, clamping each into `1..=` its ceiling.
    pub fn clamped(max_body_bytes: usize, max_event_bytes: usize, max_events: usize, max_depth: usize) -> Self {
        Self {
            max_body_bytes: max_body_bytes.clamp(1, MAX_BODY_BYTES),
            max_event_bytes: max_event_bytes.clamp(1, MAX_EVENT_BYTES),
            max_events: max_events.clamp(1, MAX_EVENTS_PER_REQUEST),
            max_depth: max_depth.clamp(1, MAX_JSON_DEPTH),
        }
    }

    /// Reads `MAX_BODY_BYTES`, `MAX_EVENT_BYTES`, `MAX_EVENTS` and
    /// `MAX_DEPTH`, each clamped to its ceiling.
    pub fn from_settings<F: Fn(&str) -> Option<String>>(
        s: &crate::settings::Settings<F>,
    ) -> Result<Self, crate::settings::SettingError> {
        let d = Self::default();
        Ok(Self::clamped(
            s.usize_or("MAX_BODY_BYTES", d.max_body_bytes)?,
            s.usize_or("MAX_EVENT_BYTES", d.max_event_bytes)?,
            s.usize_or("MAX_EVENTS", d.max_events)?,
            s.usize_or("MAX_DEPTH", d.max_depth)?,
        ))
    }

    /// The limits of the Segment-compatible routes: these, lowered to
    /// [`SEGMENT_MAX_BATCH_BYTES`] per request and [`SEGMENT_MAX_MESSAGE_BYTES`]
    /// per message where Segment's are the tighter ones.
    pub fn for_segment(self) -> Self {
        Self {
            max_body_bytes: self.max_body_bytes.min(SEGMENT_MAX_BATCH_BYTES),
            max_event_bytes: self.max_event_bytes.min(SEGMENT_MAX_MESSAGE_BYTES),
            ..self
        }
    }

    /// Returns these limits clamped again (for values set field by field).
    pub fn normalized(self) -> Self {
        Self::clamped(
            self.max_body_bytes,
            self.max_event_bytes,
            self.max_events,
            self.max_depth,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ceilings() {
        let l = Limits::default();
        assert_eq!(l.max_body_bytes, 1_048_576);
        assert_eq!(l.max_event_bytes, 32_768);
        assert_eq!(l.max_events, 500);
        assert_eq!(l.max_depth, 32);
        assert_eq!(l, l.normalized());
    }

    #[test]
    fn segment_routes_take_segments_limits_or_the_deployments_if_lower() {
        let s = Limits::default().for_segment();
        assert_eq!((s.max_body_bytes, s.max_event_bytes), (512_000, 32_768));
        let low = Limits::clamped(100_000, 1_000, 10, 4).for_segment();
        assert_eq!(low, Limits::clamped(100_000, 1_000, 10, 4));
    }

    #[test]
    fn settings_above_a_ceiling_are_clamped_down_and_zero_is_raised_to_one() {
        let l = Limits::clamped(usize::MAX, 10 * MAX_EVENT_BYTES, 501, 10_000);
        assert_eq!(l, Limits::default());
        let l = Limits::clamped(0, 0, 0, 0);
        assert_eq!(
            (l.max_body_bytes, l.max_event_bytes, l.max_events, l.max_depth),
            (1, 1, 1, 1)
        );
        let l = Limits::clamped(2048, 512, 10, 4);
        assert_eq!(
            (l.max_body_bytes, l.max_event_bytes, l.max_events, l.max_depth),
            (2048, 512, 10, 4)
        );
    }
}
