//! Counts as CloudWatch Embedded Metric Format lines
//! (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>):
//! one JSON line on stdout per invocation, turned into metrics by CloudWatch.

use crate::transform::Counts;

/// The metrics namespace.
pub const NAMESPACE: &str = "edgehose";

/// The EMF line for one invocation's counts, timestamped `at_ms`.
pub fn line(counts: &Counts, at_ms: u64) -> String {
    let names = [
        ("EventsOk", counts.events_ok),
        ("EventsInvalid", counts.events_invalid),
        ("EventsQuarantined", counts.events_quarantined),
        ("RecordsOk", counts.records_ok),
        ("RecordsFailed", counts.records_failed),
        ("RecordsDropped", counts.records_dropped),
        ("RecordsOverResponseLimit", counts.records_over_limit),
        ("EventsOverResponseLimit", counts.events_over_limit),
    ];
    let mut root = serde_json::Map::new();
    root.insert(
        "_aws".into(),
        serde_json::json!({
            "Timestamp": at_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Function"]],
                "Metrics": names.iter().map(|(n, _)| serde_json::json!({"Name": n, "Unit": "Count"})).collect::<Vec<_>>(),
            }],
        }),
    );
    root.insert("Function".into(), "transform".into());
    for (name, value) in names {
        root.insert(name.into(), value.into());
    }
    serde_json::Value::Object(root).to_string()
}

/// Prints the EMF line for `counts` on stdout.
pub fn emit(counts: &Counts) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    println!("{}", line(counts, now));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_declares_every_metric_and_carries_its_value() {
        let counts = Counts {
            events_ok: 7,
            events_invalid: 2,
            records_failed: 1,
            ..Counts::default()
        };
        let v: serde_json::Value = serde_json::from_str(&line(&counts, 1000)).unwrap();
        assert_eq!(v["_aws"]["Timestamp"], 1000);
        let declared = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(declared["Namespace"], "edgehose");
        assert_eq!(declared["Dimensions"][0][0], "Function");
        for m in declared["Metrics"].as_array().unwrap() {
            let name = m["Name"].as_str().unwrap();
            assert!(v.get(name).is_some(), "{name} has a value");
        }
        assert_eq!(
            (
                v["EventsOk"].as_u64(),
                v["EventsInvalid"].as_u64(),
                v["RecordsFailed"].as_u64()
            ),
            (Some(7), Some(2), Some(1))
        );
        assert_eq!(v["Function"], "transform");
    }

    #[test]
    fn the_templates_rejected_share_alarm_reads_metrics_this_line_declares() {
        let v: serde_json::Value = serde_json::from_str(&line(&Counts::default(), 0)).unwrap();
        let declared: Vec<&str> = v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        let template = include_str!("../template.yaml");
        for name in ["EventsOk", "EventsInvalid", "EventsQuarantined"] {
            assert!(declared.contains(&name), "{name} is not in the EMF line");
            assert!(
                template.contains(&format!("MetricName: {name},")),
                "the alarm reads {name}"
            );
        }
        assert!(template.contains(&format!("Namespace: {NAMESPACE}, MetricName: EventsOk")));
    }
}
