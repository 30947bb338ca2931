//! regional/template.yaml: cfn-lint passes on it, and what it deploys is
//! what the project promises (least privilege for the edge, arm64 Rust
//! functions built by cargo-lambda, the transform wired as the processor).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::path::Path;
use std::process::Command;

use edgehose_local::tools;

fn cfn_lint(template: &Path) -> (bool, String) {
    let bin = tools::python().unwrap().parent().unwrap().join("cfn-lint");
    let out = Command::new(&bin)
        .arg(template)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The template as JSON, read by cfn-lint's own decoder (it knows the short-form tags).
fn decoded() -> serde_json::Value {
    let script = "import json, sys\nfrom cfnlint.decode import decode\nt, m = decode(sys.argv[1])\nassert not m, m\nprint(json.dumps(t, default=str))";
    let template = tools::repo_root().join("regional/template.yaml");
    let out = Command::new(tools::python().unwrap())
        .args(["-c", script])
        .arg(&template)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn cfn_lint_passes_on_the_template() {
    let (ok, text) = cfn_lint(&tools::repo_root().join("regional/template.yaml"));
    assert!(ok, "cfn-lint:\n{text}");
}

#[test]
fn cfn_lint_really_checks_it() {
    let text = std::fs::read_to_string(tools::repo_root().join("regional/template.yaml")).unwrap();
    let broken = text.replace("KinesisStreamAsSource, DirectPut]", "KinesisStreamAsSource, Sideways]");
    assert_ne!(broken, text);
    let path = std::env::temp_dir().join(format!("edgehose-broken-template-{}.yaml", std::process::id()));
    std::fs::write(&path, broken).unwrap();
    let (ok, text) = cfn_lint(&path);
    let _ = std::fs::remove_file(&path);
    assert!(
        !ok && text.contains("Sideways"),
        "cfn-lint should refuse an unknown stream type:\n{text}"
    );
}

/// The template as deployed with `sink` as its Sink parameter: conditions
/// evaluated, `Fn::If` resolved, `AWS::NoValue` and resources whose
/// condition is false dropped.
fn deployed_with(sink: &str, fifo: bool) -> serde_json::Value {
    deployed(&[("Sink", sink), ("QueueFifo", if fifo { "true" } else { "false" })])
}

/// The template as deployed with these parameters (the rest at their
/// defaults), resolved as [`deployed_with`] does.
fn deployed(given: &[(&str, &str)]) -> serde_json::Value {
    use serde_json::Value;
    let t = decoded();
    let params = |name: &str| -> Value {
        match given.iter().find(|(n, _)| *n == name) {
            Some((_, v)) => Value::from(*v),
            None => t["Parameters"][name]["Default"].clone(),
        }
    };
    fn truth(t: &Value, cond: &Value, params: &dyn Fn(&str) -> Value) -> bool {
        let value = |v: &Value| match v.get("Ref") {
            Some(Value::String(name)) => params(name),
            _ => v.clone(),
        };
        if let Some([a, b]) = cond.get("Fn::Equals").and_then(Value::as_array).map(Vec::as_slice) {
            return value(a) == value(b);
        }
        if let Some(all) = cond.get("Fn::And").and_then(Value::as_array) {
            return all.iter().all(|c| truth(t, c, params));
        }
        if let Some([one]) = cond.get("Fn::Not").and_then(Value::as_array).map(Vec::as_slice) {
            return !truth(t, one, params);
        }
        if let Some(Value::String(name)) = cond.get("Condition") {
            return truth(t, &t["Conditions"][name], params);
        }
        panic!("condition not understood: {cond}");
    }
    fn resolve(t: &Value, v: &Value, params: &dyn Fn(&str) -> Value) -> Option<Value> {
        match v {
            Value::Object(map) => {
                if let Some([c, yes, no]) = map.get("Fn::If").and_then(Value::as_array).map(Vec::as_slice) {
                    let name = c.as_str().unwrap();
                    let pick = if truth(t, &t["Conditions"][name], params) {
                        yes
                    } else {
                        no
                    };
                    return resolve(t, pick, params);
                }
                if map.get("Ref").and_then(Value::as_str) == Some("AWS::NoValue") {
                    return None;
                }
                Some(Value::Object(
                    map.iter()
                        .filter_map(|(k, v)| resolve(t, v, params).map(|v| (k.clone(), v)))
                        .collect(),
                ))
            }
            Value::Array(items) => Some(Value::Array(
                items.iter().filter_map(|v| resolve(t, v, params)).collect(),
            )),
            other => Some(other.clone()),
        }
    }
    let mut out = resolve(&t, &t, &params).unwrap();
    let resources = out["Resources"].as_object_mut().unwrap();
    resources.retain(|_, r| match r.get("Condition").and_then(Value::as_str) {
        Some(name) => truth(&t, &t["Conditions"][name], &params),
        None => true,
    });
    let outputs = out["Outputs"].as_object_mut().unwrap();
    outputs.retain(|_, o| match o.get("Condition").and_then(Value::as_str) {
        Some(name) => truth(&t, &t["Conditions"][name], &params),
        None => true,
    });
    out
}

/// Every combination of sink and destination, resolved as deployed (the
/// conditions gone) and linted as such: what each choice deploys is a valid
/// template on its own, not only the template with every branch.
#[test]
fn cfn_lint_passes_on_the_template_as_deployed_with_each_sink_and_destination() {
    let dir = std::env::temp_dir().join(format!("edgehose-template-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    for sink in ["firehose", "kinesis", "sqs"] {
        for destination in ["json", "iceberg"] {
            let mut t = deployed(&[("Sink", sink), ("Destination", destination)]);
            let root = t.as_object_mut().unwrap();
            root.remove("Conditions");
            for section in ["Resources", "Outputs"] {
                for (_, item) in root[section].as_object_mut().unwrap().iter_mut() {
                    item.as_object_mut().unwrap().remove("Condition");
                }
            }
            let path = dir.join(format!("{sink}-{destination}.json"));
            std::fs::write(&path, serde_json::to_vec_pretty(&t).unwrap()).unwrap();
            files.push(path);
        }
    }
    let bin = tools::python().unwrap().parent().unwrap().join("cfn-lint");
    let out = Command::new(&bin)
        // Parameters a deployment without a branch no longer reads are fine.
        .args(["--ignore-checks", "W2001", "--"])
        .args(&files)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn with_destination_iceberg_the_streams_write_the_iceberg_tables_upserting_on_the_events_identity() {
    use edgehose_shared::table::{ICEBERG_TABLES, UNIQUE_KEY};
    for sink in ["firehose", "kinesis"] {
        let t = deployed(&[("Sink", sink), ("Destination", "iceberg")]);
        let r = &t["Resources"];
        assert!(r.get("EventsTable").is_none(), "{sink}: no JSON table");
        let streams: &[&str] = if sink == "firehose" {
            &["DeliveryStream", "ApiDeliveryStream"]
        } else {
            &["DeliveryStream"]
        };
        for stream in streams {
            let p = &r[*stream]["Properties"];
            assert!(p.get("ExtendedS3DestinationConfiguration").is_none(), "{sink} {stream}");
            let d = &p["IcebergDestinationConfiguration"];
            let tables: Vec<&str> = d["DestinationTableConfigurationList"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    assert_eq!(c["UniqueKeys"], serde_json::json!(UNIQUE_KEY), "{stream}");
                    assert_eq!(c["DestinationDatabaseName"]["Ref"], "EventsDatabase");
                    let resource = c["DestinationTableName"]["Ref"].as_str().unwrap();
                    r[resource]["Properties"]["Name"].as_str().unwrap()
                })
                .collect();
            let expected: Vec<&str> = ICEBERG_TABLES.iter().map(|(_, t)| *t).collect();
            assert_eq!(tables, expected, "{stream}");
            let processor = &d["ProcessingConfiguration"]["Processors"][0]["Parameters"][0];
            assert_eq!(processor["ParameterValue"]["Fn::GetAtt"][0], "TransformFunction");
            assert_eq!(d["s3BackupMode"], "FailedDataOnly");
            assert!(
                d["S3Configuration"]["ErrorOutputPrefix"]
                    .as_str()
                    .unwrap()
                    .starts_with("errors/"),
                "the error prefix stays where it is"
            );
        }
        let env = &r["TransformFunction"]["Properties"]["Environment"]["Variables"];
        assert_eq!(env["DESTINATION"]["Ref"], "Destination");
        assert_eq!(env["DATABASE_NAME"]["Ref"], "DatabaseName");
        assert_eq!(
            env["PARTITIONING"], "false",
            "Iceberg rows are not partitioned by prefix"
        );
        if sink == "firehose" {
            let api = &r["IngestFunction"]["Properties"]["Environment"]["Variables"];
            assert_eq!(api["DESTINATION"]["Ref"], "Destination");
        }
        let role = r["FirehoseRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].to_string();
        assert!(role.contains("glue:UpdateTable"), "{role}");
        // Each table is compacted and its old snapshots expired by Glue.
        for (_, table) in ICEBERG_TABLES {
            let resource = r
                .as_object()
                .unwrap()
                .iter()
                .find(|(_, v)| v["Properties"]["Name"] == *table)
                .map(|(k, _)| k.clone())
                .unwrap();
            let mut kinds: Vec<&str> = r
                .as_object()
                .unwrap()
                .values()
                .filter(|v| {
                    v["Type"] == "AWS::Glue::TableOptimizer" && v["Properties"]["TableName"]["Ref"] == *resource
                })
                .map(|v| {
                    let c = &v["Properties"]["TableOptimizerConfiguration"];
                    assert_eq!(c["Enabled"], true);
                    assert_eq!(c["RoleArn"]["Fn::GetAtt"][0], "IcebergUpkeepRole");
                    v["Properties"]["Type"].as_str().unwrap()
                })
                .collect();
            kinds.sort_unstable();
            assert_eq!(kinds, ["compaction", "retention"], "{table}");
        }
    }
    let t = deployed(&[("Destination", "json"), ("DynamicPartitioning", "true")]);
    let r = &t["Resources"];
    assert!(r.get("EventsTable").is_some());
    for (_, table) in ICEBERG_TABLES {
        assert!(
            !r.as_object()
                .unwrap()
                .values()
                .any(|v| v["Properties"]["Name"] == *table),
            "{table} with the JSON destination"
        );
    }
    let p = &r["DeliveryStream"]["Properties"];
    assert!(p.get("IcebergDestinationConfiguration").is_none());
    assert!(p.get("ExtendedS3DestinationConfiguration").is_some());
    let env = &r["TransformFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(env["PARTITIONING"], "true");
}

#[test]
fn the_edge_may_only_put_records_to_its_sink() {
    let expected = [
        ("firehose", "firehose:PutRecordBatch", "DeliveryStream"),
        ("kinesis", "kinesis:PutRecords", "EventsStream"),
        ("sqs", "sqs:SendMessage", "EventsQueue"),
    ];
    for (sink, action, resource) in expected {
        let t = deployed_with(sink, false);
        let policies = &t["Resources"]["EdgeUser"]["Properties"]["Policies"];
        assert_eq!(policies.as_array().unwrap().len(), 1, "{sink}");
        assert_eq!(
            policies[0]["PolicyDocument"]["Statement"],
            serde_json::json!([{"Effect": "Allow", "Action": action, "Resource": {"Fn::GetAtt": [resource, "Arn"]}}]),
            "{sink}"
        );
        assert!(t["Resources"].get(resource).is_some(), "{sink} deploys {resource}");
        assert_eq!(t["Outputs"]["Sink"]["Value"]["Ref"], "Sink");
    }
    let t = decoded();
    for (name, output) in t["Outputs"].as_object().unwrap() {
        assert!(
            !output.to_string().contains("SecretAccessKey"),
            "output {name} must not expose the secret"
        );
    }
    for name in [
        "FirehoseStream",
        "Region",
        "EdgeAccessKeyId",
        "EdgeSecretArn",
        "IngestApiUrl",
        "Sink",
        "KinesisStream",
        "QueueUrl",
    ] {
        assert!(t["Outputs"].get(name).is_some(), "output {name}");
    }
}

#[test]
fn with_sink_kinesis_the_delivery_stream_reads_the_data_stream_the_edge_writes() {
    let t = deployed_with("kinesis", false);
    let r = &t["Resources"];
    let stream = &r["DeliveryStream"]["Properties"];
    assert_eq!(stream["DeliveryStreamType"], "KinesisStreamAsSource");
    assert_eq!(
        stream["KinesisStreamSourceConfiguration"]["KinesisStreamARN"],
        serde_json::json!({"Fn::GetAtt": ["EventsStream", "Arn"]})
    );
    assert_eq!(
        r["EventsStream"]["Properties"]["StreamModeDetails"]["StreamMode"],
        "ON_DEMAND"
    );
    // Firehose's role may read that stream; the same transform still validates every event.
    let role = r["FirehoseRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].to_string();
    assert!(
        role.contains("kinesis:GetRecords") && role.contains("EventsStream"),
        "{role}"
    );
    let processors = stream["ExtendedS3DestinationConfiguration"]["ProcessingConfiguration"].to_string();
    assert!(processors.contains("TransformFunction"), "{processors}");
    // The other sinks deploy no stream, and the delivery stream takes direct puts.
    for sink in ["firehose", "sqs"] {
        let t = deployed_with(sink, false);
        assert!(t["Resources"].get("EventsStream").is_none(), "{sink}");
        assert_eq!(
            t["Resources"]["DeliveryStream"]["Properties"]["DeliveryStreamType"],
            "DirectPut"
        );
        let role = t["Resources"]["FirehoseRole"].to_string();
        assert!(!role.contains("kinesis:"), "{sink}: {role}");
    }
}

#[test]
fn ingest_api_is_deployed_only_where_the_delivery_stream_takes_direct_puts() {
    // A delivery stream reading a Kinesis stream refuses PutRecordBatch: with
    // Sink kinesis every API Gateway request would be a 500.
    let t = deployed_with("kinesis", false);
    for absent in ["IngestFunction", "HttpApi"] {
        assert!(t["Resources"].get(absent).is_none(), "{absent} with Sink kinesis");
    }
    // With Sink firehose it has a delivery stream of its own, so the edge's
    // stream (and its receipts) holds the edge's events alone; with Sink sqs
    // the delivery stream is the API path's anyway.
    for (sink, stream) in [("firehose", "ApiDeliveryStream"), ("sqs", "DeliveryStream")] {
        let t = deployed_with(sink, false);
        let r = &t["Resources"];
        let ingest = &r["IngestFunction"]["Properties"];
        assert_eq!(
            ingest["Environment"]["Variables"]["FIREHOSE_STREAM"],
            serde_json::json!({"Ref": stream}),
            "{sink}"
        );
        assert_eq!(
            ingest["Policies"][0]["Statement"][0]["Resource"],
            serde_json::json!({"Fn::GetAtt": [stream, "Arn"]}),
            "{sink}"
        );
        assert_eq!(r[stream]["Properties"]["DeliveryStreamType"], "DirectPut", "{sink}");
    }
    let firehose = deployed_with("firehose", false);
    let (edge, api) = (
        &firehose["Resources"]["DeliveryStream"]["Properties"],
        &firehose["Resources"]["ApiDeliveryStream"]["Properties"],
    );
    assert_eq!(api["DeliveryStreamName"]["Fn::Sub"], "${StreamName}-apigw");
    assert_eq!(
        edge["ExtendedS3DestinationConfiguration"], api["ExtendedS3DestinationConfiguration"],
        "the same bucket, prefixes, buffers and transform"
    );
    assert!(
        deployed_with("sqs", false)["Resources"]
            .get("ApiDeliveryStream")
            .is_none()
    );
}

#[test]
fn with_sink_sqs_the_queue_has_a_dead_letter_queue_and_may_be_fifo() {
    let standard = deployed_with("sqs", false);
    let q = &standard["Resources"]["EventsQueue"]["Properties"];
    assert_eq!(q["QueueName"], serde_json::json!({"Ref": "QueueName"}));
    assert!(q.get("FifoQueue").is_none());
    assert_eq!(
        q["RedrivePolicy"]["deadLetterTargetArn"],
        serde_json::json!({"Fn::GetAtt": ["EventsDeadLetters", "Arn"]})
    );
    let fifo = deployed_with("sqs", true);
    let q = &fifo["Resources"]["EventsQueue"]["Properties"];
    assert_eq!(q["FifoQueue"], true);
    assert_eq!(q["QueueName"]["Fn::Sub"], "${QueueName}.fifo");
    assert_eq!(fifo["Resources"]["EventsDeadLetters"]["Properties"]["FifoQueue"], true);
    assert!(
        deployed_with("firehose", true)["Resources"]
            .get("EventsQueue")
            .is_none()
    );
}

#[test]
fn the_functions_are_the_crate_binaries_built_for_arm64() {
    let t = decoded();
    assert_eq!(t["Globals"]["Function"]["Runtime"], "provided.al2023");
    assert_eq!(t["Globals"]["Function"]["Architectures"], serde_json::json!(["arm64"]));
    let manifest = std::fs::read_to_string(tools::repo_root().join("regional/Cargo.toml")).unwrap();
    for (resource, binary) in [("TransformFunction", "transform"), ("IngestFunction", "ingest-api")] {
        let f = &t["Resources"][resource];
        assert_eq!(f["Metadata"]["BuildMethod"], "rust-cargolambda");
        assert_eq!(f["Metadata"]["BuildProperties"]["Binary"], binary);
        assert!(
            manifest.contains(&format!("name = \"{binary}\"")),
            "{binary} is a [[bin]] of edgehose-regional"
        );
    }
    let deployed = deployed_with("firehose", false);
    let stream = &deployed["Resources"]["DeliveryStream"]["Properties"];
    assert_eq!(stream["DeliveryStreamType"], "DirectPut");
    let s3 = &stream["ExtendedS3DestinationConfiguration"];
    assert!(s3["ErrorOutputPrefix"].as_str().unwrap().starts_with("errors/"));
    let processor = &s3["ProcessingConfiguration"]["Processors"][0];
    assert_eq!(processor["Type"], "Lambda");
    assert_eq!(
        processor["Parameters"][0]["ParameterValue"],
        serde_json::json!({"Fn::GetAtt": ["TransformFunction", "Arn"]})
    );
}

#[test]
fn api_gateway_sends_every_ingestion_route_to_ingest_api() {
    let t = decoded();
    let events = t["Resources"]["IngestFunction"]["Properties"]["Events"]
        .as_object()
        .unwrap();
    let routes: Vec<(String, String)> = events
        .values()
        .map(|e| {
            let p = &e["Properties"];
            (
                p["Method"].as_str().unwrap().to_owned(),
                p["Path"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    // An HTTP API route: a path, or a prefix and a greedy `{proxy+}`.
    let routed = |method: &str, path: &str| {
        routes.iter().any(|(m, route)| {
            m == method
                && match route.strip_suffix("{proxy+}") {
                    Some(prefix) => path.len() > prefix.len() && path.starts_with(prefix),
                    None => route == path,
                }
        })
    };
    let tp2 = edgehose_shared::snowplow::TP2_PATH;
    let config = "/array/phc_token/config";
    let posts = [
        "/v1/events",
        "/v1/batch",
        "/v1/t",
        "/v1/ingest/gps",
        tp2,
        "/e/",
        "/i/v0/e/",
        "/batch/",
        "/capture/",
        edgehose_shared::posthog::ANALYTICS_V1_PATH,
        "/flags/",
    ];
    for path in posts {
        for method in ["POST", "OPTIONS"] {
            assert!(routed(method, path), "{method} {path} in {routes:?}");
        }
        // And the door the function routes it to exists.
        let door = edgehose_shared::api::Door::of_path(path.trim_end_matches('/'));
        let start = edgehose_shared::posthog::start(path.trim_end_matches('/'));
        assert!(door.is_ok_and(|d| d.is_some()) || start.is_some(), "{path}");
    }
    for path in [
        edgehose_shared::snowplow::PIXEL_PATH,
        config,
        &format!("{config}.js"),
        "/healthz",
    ] {
        assert!(routed("GET", path), "GET {path} in {routes:?}");
    }
}

#[test]
fn the_transform_and_ingest_api_read_the_same_sources_setting() {
    let t = decoded();
    assert_eq!(t["Parameters"]["Sources"]["Type"], "String");
    for resource in ["TransformFunction", "IngestFunction"] {
        let vars = &t["Resources"][resource]["Properties"]["Environment"]["Variables"];
        assert_eq!(vars["SOURCES"], serde_json::json!({"Ref": "Sources"}), "{resource}");
    }
}

#[test]
fn firehose_local_partitions_a_stream_as_the_template_does() {
    let text = std::fs::read_to_string(tools::repo_root().join("regional/template.yaml")).unwrap();
    assert!(
        text.contains(&format!("\"{}\"", edgehose_local::aws::firehose::PARTITION_PREFIX)),
        "the template's partitioned prefix is not firehose-local's"
    );
}

#[test]
fn the_alarms_watch_the_metrics_edgehose_receipts_publishes_and_notify_one_topic() {
    let t = deployed_with("firehose", false);
    let resources = t["Resources"].as_object().unwrap();
    let alarms: Vec<(&String, &serde_json::Value)> = resources
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::CloudWatch::Alarm")
        .collect();
    let empty = edgehose_receipts::Report {
        lines: Vec::new(),
        read_from: Vec::new(),
        failures: Vec::new(),
    };
    for (name, _) in edgehose_receipts::metrics::values(&empty) {
        let watching = alarms.iter().find(|(_, a)| {
            a["Properties"]["MetricName"] == name
                && a["Properties"]["Namespace"] == edgehose_receipts::metrics::NAMESPACE
                && a["Properties"]["Dimensions"][0]["Value"] == "edge"
        });
        assert!(watching.is_some(), "no alarm watches {name}");
    }
    for (name, a) in &alarms {
        assert_eq!(
            a["Properties"]["AlarmActions"][0],
            serde_json::json!({"Ref": "AlarmTopic"}),
            "{name}"
        );
        assert_eq!(a["Properties"]["TreatMissingData"], "notBreaching", "{name}");
    }
    // The rejected share reads the transform's own EMF counts.
    let share = &resources["RejectedShareAlarm"]["Properties"]["Metrics"];
    let names: Vec<&str> = share
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["MetricStat"]["Metric"]["MetricName"].as_str())
        .collect();
    assert_eq!(names, ["EventsOk", "EventsInvalid", "EventsQuarantined"]);
    // Without SQS there is no queue to watch; with it, its dead-letter queue is.
    assert!(!resources.contains_key("SqsDeadLettersAlarm"));
    assert!(
        deployed_with("sqs", false)["Resources"]
            .get("SqsDeadLettersAlarm")
            .is_some()
    );
    // No address: the topic has no subscription; one: an email subscription.
    assert!(resources["AlarmTopic"]["Properties"].get("Subscription").is_none());
}
