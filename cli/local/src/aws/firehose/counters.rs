//! What one firehose-local has done so far, shown by `edgehose dev` and
//! `GET /_edgehose/stats`.

use std::sync::atomic::AtomicU64;

/// Counters of one firehose-local, shown by `edgehose dev` and `GET /_edgehose/stats`.
#[derive(Debug, Default)]
pub struct Counters {
    /// Accepted calls.
    pub calls: AtomicU64,
    /// Calls refused (bad signature, limits, unknown stream, injected faults).
    pub refused_calls: AtomicU64,
    /// Records acknowledged.
    pub records_received: AtomicU64,
    /// Bytes acknowledged.
    pub bytes_received: AtomicU64,
    /// Lines (envelopes, from the edge) in the records acknowledged.
    pub lines_received: AtomicU64,
    /// Records answered `Ok` by the transform (or delivered as is without one).
    pub records_delivered: AtomicU64,
    /// Records answered `Dropped`.
    pub records_dropped: AtomicU64,
    /// Records written to the error prefix.
    pub records_failed: AtomicU64,
    /// Lines written to the destination.
    pub lines_delivered: AtomicU64,
    /// Objects written (destination and error prefix).
    pub objects: AtomicU64,
    /// Transform invocations, and those that failed (before retries).
    pub invocations: AtomicU64,
    /// Failed transform invocations.
    pub invocation_errors: AtomicU64,
}
