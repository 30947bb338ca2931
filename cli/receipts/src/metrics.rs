//! `edgehose receipts --put-metrics`: the window's dead letters still in the
//! archive, events lost, and events missing from settled minutes, published
//! to CloudWatch (namespace `edgehose`, dimension `Source=edge`), where the
//! template's alarms watch them: the edge's own counts live in Analytics
//! Engine, which CloudWatch cannot see. One `PutMetricData` a run (Query
//! protocol, SigV4), the values each a maximum over the window, so runs
//! that overlap say the same thing twice rather than add up.

use edgehose_local::http::send;
use edgehose_shared::sigv4::query_string;
use edgehose_shared::sigv4::sign::{Credentials, sign};

use crate::Report;
use crate::error::{Error, Result};
use crate::ledger::Status;

/// The namespace the transform's EMF metrics use too.
pub const NAMESPACE: &str = "edgehose";

/// The metrics of a report: dead letters still archived, lost, missing.
pub fn values(report: &Report) -> [(&'static str, u64); 3] {
    let dead: u64 = report
        .lines
        .iter()
        .map(|l| l.dead_lettered.saturating_sub(l.redriven))
        .sum();
    let lost: u64 = report.lines.iter().map(|l| l.lost).sum();
    let missing: u64 = report
        .lines
        .iter()
        .filter(|l| l.status == Status::Missing)
        .map(|l| l.open.max(0) as u64)
        .sum();
    [("DeadLettered", dead), ("Lost", lost), ("Missing", missing)]
}

/// The `PutMetricData` body (Query protocol) for `values`, stamped `at` (RFC 3339).
pub fn body(values: &[(&str, u64)], at: &str) -> String {
    let mut pairs: Vec<(String, String)> = vec![
        ("Action".into(), "PutMetricData".into()),
        ("Version".into(), "2010-08-01".into()),
        ("Namespace".into(), NAMESPACE.into()),
    ];
    for (i, (name, value)) in values.iter().enumerate() {
        let m = format!("MetricData.member.{}", i + 1);
        pairs.extend([
            (format!("{m}.MetricName"), (*name).to_owned()),
            (format!("{m}.Value"), value.to_string()),
            (format!("{m}.Unit"), "Count".to_owned()),
            (format!("{m}.Timestamp"), at.to_owned()),
            (format!("{m}.Dimensions.member.1.Name"), "Source".to_owned()),
            (format!("{m}.Dimensions.member.1.Value"), "edge".to_owned()),
        ]);
    }
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    query_string(&pairs)
}

/// Publishes the report's metrics at `endpoint` (`https://monitoring.<region>.amazonaws.com`).
pub fn put(report: &Report, endpoint: &str, region: &str, credentials: &Credentials) -> Result<()> {
    let now = edgehose_local::clock::now();
    let base = endpoint.trim_end_matches('/');
    let host = base.trim_start_matches("http://").trim_start_matches("https://");
    let mut request = http::Request::post(format!("{base}/"))
        .header("host", host)
        .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
        .body(body(&values(report), &now.to_rfc3339()).into_bytes())?;
    sign(&mut request, credentials, region, "monitoring", now)
        .map_err(|e| Error::Answer(format!("signing PutMetricData: {e}")))?;
    let response = send(request)?;
    if response.status != 200 {
        return Err(Error::Answer(format!(
            "PutMetricData at {base}: HTTP {} {}",
            response.status,
            response.text()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_names_each_metric_with_its_value_unit_and_dimension() {
        let b = body(&[("Lost", 3), ("Missing", 0)], "2026-12-07T10:00:00.000Z");
        assert!(b.starts_with("Action=PutMetricData&Version=2010-08-01&Namespace=edgehose"));
        assert!(b.contains(
            "&MetricData.member.1.MetricName=Lost&MetricData.member.1.Value=3&MetricData.member.1.Unit=Count"
        ));
        assert!(b.contains("MetricData.member.2.Dimensions.member.1.Value=edge"));
        assert!(b.contains("Timestamp=2026-12-07T10%3A00%3A00.000Z"));
    }
}
