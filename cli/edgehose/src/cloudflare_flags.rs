//! Cloudflare's side failing under `edgehose dev`: the fault plan the local
//! runner's entry module applies around the unchanged Worker (queues that
//! refuse, stall or go down; an R2 that fails or stalls; the Worker's memory
//! held against a ceiling), from the command line. The same plan can be
//! changed while running: `PUT /_edgehose/faults` on the Worker's URL.

use edgehose_local::cloudflare::miniflare::CloudflareFaults;

/// Faults Cloudflare's side shows the local Worker.
#[derive(Debug, clap::Args)]
pub struct CloudflareFlags {
    /// Share of queue writes (send, sendBatch) that throw "Too Many Requests", as past 5,000 messages/s (0..1).
    #[arg(long, default_value_t = 0.0, value_parser = crate::fault_flags::share)]
    queue_refuse: f64,
    /// Every queue write throws for this long from the start, seconds (a Queues incident).
    #[arg(long, default_value_t = 0)]
    queue_outage_secs: u64,
    /// Each queue write takes this much longer, ms (a brownout).
    #[arg(long, default_value_t = 0)]
    queue_stall_ms: u64,
    /// Share of R2 writes that fail (0..1).
    #[arg(long, default_value_t = 0.0, value_parser = crate::fault_flags::share)]
    r2_fail: f64,
    /// Every R2 write fails for this long from the start, seconds.
    #[arg(long, default_value_t = 0)]
    r2_outage_secs: u64,
    /// Each R2 write takes this much longer, ms.
    #[arg(long, default_value_t = 0)]
    r2_stall_ms: u64,
    /// The ceiling the Worker's wasm memory is held against, MB (an isolate has 128).
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..=128))]
    memory_ceiling_mb: u64,
}

impl CloudflareFlags {
    /// The plan these options describe.
    pub fn faults(&self) -> CloudflareFaults {
        CloudflareFaults {
            queue_refuse: self.queue_refuse,
            queue_outage_secs: self.queue_outage_secs,
            queue_stall_ms: self.queue_stall_ms,
            queues: None,
            r2_fail: self.r2_fail,
            r2_outage_secs: self.r2_outage_secs,
            r2_stall_ms: self.r2_stall_ms,
            memory_ceiling_mb: Some(self.memory_ceiling_mb),
        }
    }
}
