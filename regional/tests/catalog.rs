//! The SAM template's Glue table is the transform's output: its columns are
//! `analyst::COLUMNS` (which a unit test holds against every line the
//! transform writes), and its partitions are projected from the prefix the
//! delivery stream writes, so Athena reads the destination right after
//! `sam deploy`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::process::Command;

use edgehose_local::tools;
use edgehose_regional::analyst::COLUMNS;
use edgehose_shared::table::{ICEBERG_TABLES, UNIQUE_KEY, iceberg_columns};

/// The template as JSON, read by cfn-lint's own decoder.
fn decoded() -> serde_json::Value {
    let script = "import json, sys\nfrom cfnlint.decode import decode\nt, m = decode(sys.argv[1])\nassert not m, m\nprint(json.dumps(t, default=str))";
    let out = Command::new(tools::python().unwrap())
        .args(["-c", script])
        .arg(tools::repo_root().join("regional/template.yaml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_events_table_has_exactly_the_columns_the_transform_writes() {
    let t = decoded();
    let table = &t["Resources"]["EventsTable"]["Properties"]["TableInput"];
    let columns: Vec<(String, String)> = table["StorageDescriptor"]["Columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["Name"].as_str().unwrap().to_owned(),
                c["Type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = COLUMNS
        .iter()
        .map(|c| (c.name.to_owned(), c.catalog_type.to_owned()))
        .collect();
    assert_eq!(columns, expected);
    assert_eq!(
        table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"],
        "org.openx.data.jsonserde.JsonSerDe"
    );
}

#[test]
fn its_partitions_are_projected_from_the_prefix_the_stream_writes() {
    let t = decoded();
    let json = &t["Resources"]["DeliveryStream"]["Properties"]["ExtendedS3DestinationConfiguration"]["Fn::If"];
    assert_eq!(json[0], "ToJson");
    let stream = &json[1];
    let prefix = &stream["Prefix"]["Fn::If"];
    assert_eq!(prefix[0], "Partitioning");
    let (partitioned_prefix, plain_prefix) = (prefix[1].as_str().unwrap(), prefix[2].as_str().unwrap());
    let table = &t["Resources"]["EventsTable"]["Properties"]["TableInput"];
    let location = table["StorageDescriptor"]["Location"]["Fn::Sub"].as_str().unwrap();
    assert_eq!(location, format!("s3://${{EventsBucket}}/{plain_prefix}"));
    // Firehose appends YYYY/MM/DD/HH/ (UTC) to the plain prefix: projected as delivered_hour.
    let params = &table["Parameters"]["Fn::If"];
    assert_eq!(params[0], "Partitioning");
    let plain = &params[2];
    assert_eq!(plain["projection.enabled"], "true");
    assert_eq!(plain["projection.delivered_hour.type"], "date");
    assert_eq!(plain["projection.delivered_hour.format"], "yyyy/MM/dd/HH");
    assert_eq!(plain["projection.delivered_hour.interval.unit"], "HOURS");
    assert_eq!(
        plain["storage.location.template"]["Fn::Sub"],
        format!("s3://${{EventsBucket}}/{plain_prefix}${{!delivered_hour}}/")
    );
    let keys = &table["PartitionKeys"]["Fn::If"];
    assert_eq!(keys[2][0]["Name"], "delivered_hour");
    // Partitioned, the main table's events land under events/event_name=…/date=…/:
    // inside the location, read whole, with no partition to declare.
    assert!(
        partitioned_prefix.starts_with("!{partitionKeyFromLambda:table}/"),
        "{partitioned_prefix}"
    );
    assert_eq!(format!("{}/", edgehose_shared::label::MAIN_TABLE), plain_prefix);
    assert_eq!(keys[1]["Ref"], "AWS::NoValue");
    assert!(params[1].get("projection.enabled").is_none());
}

#[test]
fn each_iceberg_table_has_exactly_its_dialects_columns_and_the_events_identity_as_its_key() {
    let t = decoded();
    for (dialect, name) in ICEBERG_TABLES {
        let (_, table) = t["Resources"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(_, r)| r["Type"] == "AWS::Glue::Table" && r["Properties"]["Name"] == *name)
            .unwrap_or_else(|| panic!("no table {name}"));
        assert_eq!(table["Condition"], "ToIceberg");
        let iceberg = &table["Properties"]["OpenTableFormatInput"]["IcebergInput"];
        assert_eq!(iceberg["Version"], "2");
        let schema = &iceberg["IcebergTableInput"]["Schema"];
        let fields: Vec<(i64, String, String, bool)> = schema["Fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["Id"].as_i64().unwrap(),
                    f["Name"].as_str().unwrap().to_owned(),
                    f["Type"].as_str().unwrap().to_owned(),
                    f["Required"].as_bool().unwrap(),
                )
            })
            .collect();
        let expected: Vec<(i64, String, String, bool)> = iceberg_columns(dialect)
            .zip(1..)
            .map(|(c, id)| {
                (
                    id,
                    c.name.to_owned(),
                    c.iceberg_type.to_owned(),
                    UNIQUE_KEY.contains(&c.name),
                )
            })
            .collect();
        assert_eq!(fields, expected, "{name}");
        let id_of = |n: &str| fields.iter().find(|f| f.1 == n).unwrap().0;
        let identifiers: Vec<i64> = UNIQUE_KEY.iter().map(|k| id_of(k)).collect();
        assert_eq!(schema["IdentifierFieldIds"], serde_json::json!(identifiers), "{name}");
        let spec = &iceberg["IcebergTableInput"]["PartitionSpec"]["Fields"][0];
        assert_eq!(
            (spec["SourceId"].as_i64().unwrap(), spec["Transform"].as_str().unwrap()),
            (id_of("event_time"), "day"),
            "{name} is partitioned by the day of event_time"
        );
    }
}
