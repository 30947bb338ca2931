//! The fault options `edgehose dev` and `edgehose firehose-local` share:
//! firehose-local's fault plan ([`edgehose_local::faults`]) from the command
//! line. The same plan can be changed while running: `PUT /_edgehose/faults`.

use edgehose_local::faults::FaultPlan;

/// Faults firehose-local puts in the Firehose calls it serves.
#[derive(Debug, clap::Args)]
pub struct FaultFlags {
    /// Share of Firehose calls throttled (0..1).
    #[arg(long, default_value_t = 0.0, value_parser = share)]
    throttle: f64,
    /// Share of Firehose calls with failed records (0..1).
    #[arg(long, default_value_t = 0.0, value_parser = share)]
    partial: f64,
    /// Share of Firehose calls answered 500 (0..1).
    #[arg(long, default_value_t = 0.0, value_parser = share)]
    errors: f64,
    /// Share of Firehose calls kept, then answered 500, as if the answer were lost (0..1).
    #[arg(long, default_value_t = 0.0, value_parser = share)]
    lost_response: f64,
    /// Share of Firehose calls never answered (0..1).
    #[arg(long, default_value_t = 0.0, value_parser = share)]
    hang: f64,
    /// Added to each Firehose call, ms.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Refuse every Firehose call for this long from the start, seconds.
    #[arg(long, default_value_t = 0)]
    outage_secs: u64,
    /// Throttle every call to this delivery stream, whatever the shares say.
    #[arg(long)]
    throttle_stream: Option<String>,
}

impl FaultFlags {
    /// The plan these options describe; shares adding up to more than one
    /// are refused naming them.
    pub fn plan(&self) -> Result<FaultPlan, String> {
        let plan = FaultPlan {
            throttle: self.throttle,
            partial: self.partial,
            errors: self.errors,
            lost_response: self.lost_response,
            hang: self.hang,
            latency_ms: self.latency_ms,
            outage_secs: self.outage_secs,
            throttle_stream: self.throttle_stream.clone(),
        };
        plan.check()?;
        Ok(plan)
    }
}

/// A share between 0 and 1.
pub fn share(v: &str) -> Result<f64, String> {
    match v.parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(format!("{v:?} is not a share between 0 and 1")),
    }
}
