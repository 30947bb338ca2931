//! The transformation Lambda's answer, checked the way Firehose checks it:
//! every record answered once by its id, with `Ok` (and base64 data),
//! `Dropped` or `ProcessingFailed`; anything else fails the whole invocation
//! with Firehose's error code.

use std::collections::{BTreeMap, HashMap};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::iceberg::Route;
use super::stream::Record;

/// One record's fate.
#[derive(Debug)]
pub enum Answer {
    /// Transformed: the data to deliver.
    Ok {
        /// The transformed bytes.
        data: Vec<u8>,
        /// `metadata.partitionKeys`.
        keys: BTreeMap<String, String>,
        /// `metadata.otfMetadata`: the Iceberg destination's table and operation.
        route: Option<Route>,
    },
    /// Dropped on purpose: counted, not delivered.
    Dropped,
    /// Failed: written under the error prefix with this code.
    Failed {
        /// Firehose's error code (`Lambda.ProcessingFailed`, …).
        code: &'static str,
        /// Why.
        message: String,
        /// Invocations it took.
        attempts: u32,
    },
}

/// Reads the function's answer the way Firehose checks it
/// (<https://docs.aws.amazon.com/firehose/latest/dev/data-transformation-status-model.html>).
pub fn apply(records: &[Record], body: &str) -> Result<Vec<Answer>, (&'static str, String)> {
    let v: serde_json::Value = serde_json::from_str(body).map_err(|e| {
        (
            "Lambda.JsonProcessingException",
            format!("the response is not JSON: {e}"),
        )
    })?;
    let answers = v["records"].as_array().ok_or((
        "Lambda.JsonProcessingException",
        "the response has no records array".to_owned(),
    ))?;
    let mut by_id: HashMap<&str, &serde_json::Value> = HashMap::new();
    for a in answers {
        let id = a["recordId"].as_str().ok_or((
            "Lambda.MissingRecordId",
            "a record in the response has no recordId".to_owned(),
        ))?;
        if by_id.insert(id, a).is_some() {
            return Err(("Lambda.DuplicatedRecordId", format!("recordId {id} is answered twice")));
        }
    }
    if by_id.len() != records.len() {
        return Err((
            "Lambda.ProcessedRecordsCountMismatch",
            format!("{} records sent, {} answered", records.len(), by_id.len()),
        ));
    }
    records
        .iter()
        .map(|r| {
            let a = by_id.get(r.id.as_str()).ok_or((
                "Lambda.MissingRecordId",
                format!("recordId {} is not in the response", r.id),
            ))?;
            Ok(match a["result"].as_str() {
                Some("Ok") => {
                    // An Ok answer without data would deliver nothing in silence.
                    let text = a["data"].as_str().ok_or((
                        "Lambda.JsonProcessingException",
                        format!("recordId {}: result Ok without a data string", r.id),
                    ))?;
                    let data = B64.decode(text).map_err(|e| {
                        (
                            "Lambda.InvalidBase64",
                            format!("recordId {}: data is not base64: {e}", r.id),
                        )
                    })?;
                    let keys = crate::tools::string_members(&a["metadata"]["partitionKeys"]);
                    let route = Route::of(&a["metadata"]);
                    Answer::Ok { data, keys, route }
                }
                Some("Dropped") => Answer::Dropped,
                Some("ProcessingFailed") => Answer::Failed {
                    code: "Lambda.ProcessingFailed",
                    message: "The Lambda function returned ProcessingFailed for this record.".into(),
                    attempts: 1,
                },
                other => {
                    return Err((
                        "Lambda.InvalidRecordResult",
                        format!(
                            "recordId {}: result {other:?} is not Ok, Dropped or ProcessingFailed",
                            r.id
                        ),
                    ));
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_matched_by_record_id_and_checked_like_firehose() {
        let records = [Record::filled("a", 1), Record::filled("b", 1), Record::filled("c", 1)];
        let body = r#"{"records":[
            {"recordId":"c","result":"ProcessingFailed","data":""},
            {"recordId":"a","result":"Ok","data":"aGkK"},
            {"recordId":"b","result":"Dropped","data":""}]}"#;
        let a = apply(&records, body).unwrap();
        assert!(matches!(&a[0], Answer::Ok { data, keys, route: None } if data == b"hi\n" && keys.is_empty()));
        assert!(matches!(a[1], Answer::Dropped));
        assert!(matches!(
            a[2],
            Answer::Failed {
                code: "Lambda.ProcessingFailed",
                ..
            }
        ));

        let missing = r#"{"records":[{"recordId":"a","result":"Ok","data":""}]}"#;
        assert_eq!(
            apply(&records, missing).unwrap_err().0,
            "Lambda.ProcessedRecordsCountMismatch"
        );
        let twice = r#"{"records":[{"recordId":"a","result":"Ok","data":""},{"recordId":"a","result":"Ok","data":""},{"recordId":"b","result":"Ok","data":""}]}"#;
        assert_eq!(apply(&records, twice).unwrap_err().0, "Lambda.DuplicatedRecordId");
        let bad = r#"{"records":[{"recordId":"a","result":"Fine","data":""},{"recordId":"b","result":"Ok","data":""},{"recordId":"c","result":"Ok","data":""}]}"#;
        assert_eq!(apply(&records, bad).unwrap_err().0, "Lambda.InvalidRecordResult");
        assert_eq!(apply(&records, "nope").unwrap_err().0, "Lambda.JsonProcessingException");
        let no_data = r#"{"records":[{"recordId":"a","result":"Ok"},{"recordId":"b","result":"Dropped"},{"recordId":"c","result":"Dropped"}]}"#;
        let e = apply(&records, no_data).unwrap_err();
        assert_eq!(e.0, "Lambda.JsonProcessingException");
        assert!(e.1.contains("recordId a"), "{e:?}");
    }

    #[test]
    fn partition_keys_are_read_from_the_answer_s_metadata() {
        let body = r#"{"records":[{"recordId":"a","result":"Ok","data":"aGkK","metadata":{"partitionKeys":{"event_name":"e"}}}]}"#;
        let a = apply(&[Record::filled("a", 1)], body).unwrap();
        assert!(matches!(&a[0], Answer::Ok { keys, .. } if keys["event_name"] == "e"));
    }

    #[test]
    fn an_iceberg_route_is_read_from_the_answer_s_metadata() {
        let body = r#"{"records":[{"recordId":"a","result":"Ok","data":"e30=","metadata":{"otfMetadata":{"destinationDatabaseName":"db","destinationTableName":"t","operation":"update"}}}]}"#;
        let a = apply(&[Record::filled("a", 1)], body).unwrap();
        let Answer::Ok { route: Some(route), .. } = &a[0] else {
            panic!("{a:?}")
        };
        assert_eq!(
            (route.database.as_str(), route.table.as_str(), route.operation.as_str()),
            ("db", "t", "update")
        );
    }
}
