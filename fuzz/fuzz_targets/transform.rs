//! The transformation Lambda's record handling: records of any bytes, raw
//! or as Firehose's base64, are each answered once, in order, with a
//! result; the data in the answers stays within the budget; and nothing is
//! answered `Ok` with nothing in it.
#![no_main]

use edgehose_regional::transform::{InputRecord, RecordData, RecordResult, TransformConfig, transform};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [mode, rest @ ..] = data else { return };
    let pieces: Vec<&[u8]> = rest.split(|&b| b == 0xFF).collect();
    let ids: Vec<String> = (0..pieces.len()).map(|i| format!("r{i}")).collect();
    let texts: Vec<String> = pieces.iter().map(|p| String::from_utf8_lossy(p).into_owned()).collect();
    let records: Vec<InputRecord<'_>> = pieces
        .iter()
        .zip(&ids)
        .zip(&texts)
        .map(|((p, id), t)| InputRecord {
            id,
            data: if mode & 1 == 1 {
                RecordData::Base64(t)
            } else {
                RecordData::Bytes(p)
            },
            arrived_ms: 1_700_000_000_000,
        })
        .collect();
    let config = TransformConfig {
        partitioning: mode & 2 == 2,
        max_response_bytes: Some(4096),
        ..TransformConfig::default()
    };
    let (response, _) = transform(&records, &config);
    assert_eq!(response.records.len(), records.len());
    for (answer, id) in response.records.iter().zip(&ids) {
        assert_eq!(&answer.record_id, id);
        if answer.result == RecordResult::Ok {
            assert!(!answer.data.is_empty());
        }
    }
    // Every record is answered, so only the data is held to the budget: the
    // answers that do not fit carry none.
    let data: usize = response.records.iter().map(|r| r.data.as_str().len()).sum();
    assert!(data <= 4096, "{data} bytes of data in the answers");
});
