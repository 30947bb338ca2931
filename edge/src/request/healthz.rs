//! `GET /healthz` with the admin key: the isolate's figures (the receipts
//! it counted, queue messages by shard, calls in flight, bytes held, memory,
//! each region's failover). Anyone else gets `shared::api`'s bare `ok`.

use edgehose_shared::outcome::Outcome;

use crate::queue::produce;
use crate::receipts;
use crate::sinks::{failover, in_flight};
use crate::window;

/// The body of `GET /healthz` for the operator: `{"status":"ok","isolate":{…}}`.
pub(super) fn figures() -> String {
    let totals = receipts::totals();
    let accepted = totals[Outcome::Accepted.index()];
    let lost = totals[Outcome::Lost.index()];
    let outcomes = Outcome::ALL
        .iter()
        .map(|o| format!(r#""{}":{}"#, o.as_str(), totals[o.index()]))
        .collect::<Vec<_>>()
        .join(",");
    let memory = wasm_memory_bytes();
    let shards = produce::messages_written();
    let messages: u64 = shards.iter().sum();
    let shards = shards.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    let calls = in_flight::in_flight();
    let held = window::held_bytes();
    let failover = failover::report();
    format!(
        r#"{{"status":"ok","isolate":{{"accepted_events":{accepted},"queue_messages":{messages},"queue_shard_messages":[{shards}],"calls_in_flight":{calls},"held_bytes":{held},"lost_events":{lost},"wasm_memory_bytes":{memory},"outcomes":{{{outcomes}}},"failover":{{{failover}}}}}}}"#
    )
}

/// The size of this instance's linear memory: what the Worker holds of its
/// isolate's 128 MB, which only grows (wasm memory is never given back).
fn wasm_memory_bytes() -> usize {
    #[cfg(target_arch = "wasm32")]
    {
        core::arch::wasm32::memory_size(0) * 65_536
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0
    }
}
