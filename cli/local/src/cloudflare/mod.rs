//! Cloudflare's side on this machine.
//!
//! - [`miniflare`]: the built edge Worker in workerd through Miniflare, with
//!   its queues, R2 buckets and Analytics Engine, wrapped by
//!   `js/miniflare.mjs`, which also breaks them on demand (queues refusing,
//!   stalled or out; R2 failing; memory held against a ceiling);
//! - [`admin`]: the Worker's admin API (redrive, the dead-letter count) from
//!   outside.

pub mod admin;
pub mod miniflare;
