//! regional/template.yaml: cfn-lint passes on it, and what it deploys is
//! what the project promises (least privilege for the edge, arm64 Rust
//! functions built by cargo-lambda, the transform wired as the processor).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::path::Path;
use std::process::Command;

use edgehose_tests::tools;

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
    let broken = text.replace("DeliveryStreamType: DirectPut", "DeliveryStreamType: Sideways");
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

#[test]
fn the_edge_may_only_put_records_to_its_stream() {
    let t = decoded();
    let statements = &t["Resources"]["EdgeUser"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"];
    assert_eq!(
        statements,
        &serde_json::json!([{"Effect": "Allow", "Action": "firehose:PutRecordBatch", "Resource": {"Fn::GetAtt": ["DeliveryStream", "Arn"]}}])
    );
    assert_eq!(
        t["Resources"]["EdgeUser"]["Properties"]["Policies"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
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
    ] {
        assert!(t["Outputs"].get(name).is_some(), "output {name}");
    }
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
    let stream = &t["Resources"]["DeliveryStream"]["Properties"];
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
    // /v1/events, Segment's /v1/batch, /v1/t … and /v1/ingest/<name> all match /v1/{proxy+}.
    for method in ["POST", "OPTIONS"] {
        assert!(
            routes.contains(&(method.to_owned(), "/v1/{proxy+}".to_owned())),
            "{method} /v1/{{proxy+}} in {routes:?}"
        );
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
        text.contains(&format!("\"{}\"", edgehose_cli::firehose::PARTITION_PREFIX)),
        "the template's partitioned prefix is not firehose-local's"
    );
}
