//! The sans-IO core of edgehose: everything the edge Worker and the regional
//! Lambdas share, with no runtime, sockets, clock or environment, so the same
//! code runs in WebAssembly on Cloudflare and natively on AWS.
//!
//! The path of an event through this crate:
//!
//! 1. [`api`] routes a request to its door — schema v1 (`/v1/events`),
//!    [`segment`]'s Tracking API, or an any-JSON [`source`] — and checks its
//!    key; [`decode`] reads a body (JSON object, array, NDJSON, sendBeacon
//!    `text/plain`, gzip) into events, within [`limits`].
//! 2. [`envelope`] wraps each event (kept as sent) with its id, receive time,
//!    skew-corrected time ([`dialect`] says where each door's events keep
//!    them) and edge metadata; what could not be decoded is wrapped as a
//!    quarantine record instead of being lost.
//! 3. [`batch`] packs envelope lines into Firehose records and calls.
//! 4. [`firehose`] frames a `PutRecordBatch` request and reads its response;
//!    [`sigv4::sign`] signs it with SigV4; [`retry`] plans resending only what
//!    failed, and [`deliver`] is the one loop that carries the plan out over
//!    an injected sink, clock and sleep (the edge and `ingest-api` share it).
//! 5. On the regional side, [`validate`] checks each event against schema v1
//!    ([`event`]), [`segment::validate`] against Segment's spec and
//!    [`source::validate_event`] against a source's declarations; [`sigv4::verify`]
//!    verifies signatures for local stand-ins.
//!
//! Time and randomness are injected through [`clock::Clock`] and
//! [`clock::RandomSource`]: `SystemTime::now()` panics inside a Worker.
//!
//! Features (both on by default; the edge Worker builds without them, to keep
//! its wasm small): `gzip` inflates gzip bodies here (the Worker's runtime
//! inflates them natively and hands over [`decode::Inflated`]); `http` signs,
//! verifies and builds `http::Request`s (the Worker signs a call's parts with
//! [`sigv4::sign::signing_headers`] and hands them to `fetch`).
//!
//! ```
//! use edgehose_shared::{aws, batch, clock, decode, envelope, firehose, limits, sigv4::sign, timestamp::Timestamp};
//!
//! // A sendBeacon body, received at a known time.
//! let limits = limits::Limits::default();
//! let body = br##"[{"event":"click","target":"#buy"},{"event":"page_view"}]"##;
//! let mut inflated = None;
//! let decoded = decode::decode(&mut inflated, body, Some("text/plain;charset=UTF-8"), None, &limits)?;
//!
//! let edge = envelope::EdgeMeta::default();
//! let ctx = envelope::RequestContext {
//!     received_at: Timestamp::from_millis(1_714_566_600_000),
//!     key_id: Some("web"),
//!     edge: &edge,
//!     content_type: Some("text/plain"),
//!     dialect: envelope::Dialect::V1,
//! };
//! let lines = envelope::wrap_items(&ctx, &decoded.items, &clock::SeededRandom::new(1));
//!
//! let calls = batch::pack(&lines, "clicks", batch::PackConfig::default())?;
//! let endpoint = aws::Endpoint::for_region(firehose::SIGNING_SERVICE, "eu-west-1")?;
//! let records = calls[0].records.iter().map(|r| r.data.as_slice());
//! firehose::check_stream_name("clicks")?;
//! let body = firehose::put_record_batch_body("clicks", records);
//! let creds = sign::Credentials::new("AKIDEXAMPLE", "secret");
//! let signer = sign::Signer {
//!     credentials: &creds,
//!     region: "eu-west-1",
//!     service: firehose::SIGNING_SERVICE,
//!     time: ctx.received_at,
//! };
//! let signed = sign::signing_headers(&endpoint.target(), &firehose::PUT_RECORD_BATCH_HEADERS, &body, &signer)?;
//! // POST the body to endpoint.url() with PUT_RECORD_BATCH_HEADERS and these.
//! assert!(signed.iter().any(|(name, _)| *name == "authorization"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod api;
pub mod aws;
pub mod batch;
pub mod bot;
pub mod clock;
pub mod dead_letter;
pub mod deadline;
pub mod decode;
pub mod deliver;
pub mod dialect;
pub mod envelope;
pub mod event;
pub mod failover;
pub mod firehose;
pub mod guard;
pub mod identity;
pub mod json;
pub mod judge;
pub mod kinesis;
pub mod label;
pub mod limits;
pub mod outcome;
pub mod posthog;
pub mod rate_limit;
pub mod rejected;
pub mod requeue;
pub mod residency;
pub mod retry;
pub mod segment;
pub mod settings;
pub mod shard;

pub mod sigv4;
pub mod snowplow;
pub mod source;
pub mod sqs;
pub mod table;
pub mod timestamp;
pub mod token;
pub mod validate;
pub mod verdicts;
