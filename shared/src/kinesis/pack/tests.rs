use proptest::prelude::*;

use super::*;
use crate::clock::SeededRandom;
use crate::kinesis::aggregate::deaggregate;

fn line(n: usize, len: usize) -> String {
    let mut l = format!("{{\"n\":{n},\"pad\":\"");
    while l.len() < len - 2 {
        l.push('x');
    }
    l.push_str("\"}");
    l
}

/// Every line, in each key's order, with the key it was sent under.
fn user_records(records: &[Record]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for r in records {
        for u in deaggregate(&r.data).unwrap() {
            assert_eq!(u.partition_key, r.partition_key);
            assert_eq!(u.explicit_hash_key, r.explicit_hash_key.as_deref());
            let text = std::str::from_utf8(u.data).unwrap();
            out.push((u.partition_key.to_owned(), text.strip_suffix('\n').unwrap().to_owned()));
        }
    }
    out
}

#[test]
fn lines_of_one_key_share_records_in_order() {
    let lines: Vec<String> = (0..6).map(|n| line(n, 170)).collect();
    let keys = [Some("a"), Some("b"), Some("a"), None, Some("b"), None].map(|k| k.map(str::to_owned));
    let records = pack_records(&lines, &keys, &PackConfig::default(), &SeededRandom::new(3)).unwrap();
    assert_eq!(records.len(), 3, "a, b, and the keyless");
    assert_eq!(records[0].partition_key, "a");
    assert_eq!(records[0].lines, [0, 2]);
    assert_eq!(records[1].lines, [1, 4]);
    assert_eq!(records[2].lines, [3, 5]);
    assert_eq!(records[2].partition_key.len(), 32);
    let got = user_records(&records);
    let texts: Vec<&str> = got.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(
        texts,
        [&lines[0], &lines[2], &lines[1], &lines[4], &lines[3], &lines[5]]
    );
}

#[test]
fn aggregates_close_at_the_target_and_keyless_ones_spread_over_keys() {
    let lines: Vec<String> = (0..1000).map(|n| line(n, 170)).collect();
    let keys = vec![None; lines.len()];
    let config = PackConfig::default();
    let records = pack_records(&lines, &keys, &config, &SeededRandom::new(3)).unwrap();
    // 1000 × 171 bytes ≈ 171 KB: four records of two PUT payload units.
    assert_eq!(records.len(), 4);
    for r in &records {
        assert!(r.data.len() <= DEFAULT_TARGET_RECORD_BYTES, "{}", r.data.len());
    }
    let distinct: std::collections::HashSet<&str> = records.iter().map(|r| r.partition_key.as_str()).collect();
    assert_eq!(distinct.len(), records.len(), "a random key per record");
    let unaggregated = PackConfig {
        aggregate: false,
        ..config
    };
    let single = pack_records(&lines, &keys, &unaggregated, &SeededRandom::new(3)).unwrap();
    assert_eq!(single.len(), 1000);
    assert_eq!(single[7].data, format!("{}\n", lines[7]).into_bytes());
}

#[test]
fn an_explicit_hash_key_rides_on_every_record() {
    let config = PackConfig {
        explicit_hash_key: Some("0".into()),
        ..PackConfig::default()
    };
    let lines = [line(0, 50), line(1, 50)];
    let keys = [Some("k".to_owned()), None];
    let records = pack_records(&lines, &keys, &config, &SeededRandom::new(1)).unwrap();
    assert!(records.iter().all(|r| r.explicit_hash_key.as_deref() == Some("0")));
    user_records(&records);
    let body = put_records::put_records_body("s", &records.iter().map(Record::entry).collect::<Vec<_>>());
    assert!(std::str::from_utf8(&body).unwrap().contains(r#""ExplicitHashKey":"0""#));
}

#[test]
fn calls_close_at_500_records_or_5_mib_as_aws_counts() {
    let unaggregated = PackConfig {
        aggregate: false,
        ..PackConfig::default()
    };
    let lines: Vec<String> = (0..1201).map(|n| line(n, 100)).collect();
    let keys: Vec<Option<String>> = (0..lines.len()).map(|n| Some(format!("k{n}"))).collect();
    let calls = pack(&lines, &keys, "rides", &unaggregated, &SeededRandom::new(1)).unwrap();
    assert_eq!(
        calls.iter().map(|c| c.records.len()).collect::<Vec<_>>(),
        [500, 500, 201]
    );
    for c in &calls {
        let body = put_records::put_records_body("rides", &c.entries());
        assert_eq!(c.body_bytes, body.len());
    }
    // Records of ~900 KB: five fill a call short of 5 MiB, a sixth would pass it.
    let big: Vec<String> = (0..12).map(|n| line(n, 900_000)).collect();
    let one_key = vec![Some("k".to_owned()); big.len()];
    let config = PackConfig {
        target_record_bytes: MAX_RECORD_BYTES,
        ..PackConfig::default()
    };
    let calls = pack(&big, &one_key, "rides", &config, &SeededRandom::new(1)).unwrap();
    assert!(calls.iter().all(|c| c.counted_bytes <= MAX_BYTES_PER_CALL));
    assert_eq!(calls.iter().map(|c| c.records.len()).collect::<Vec<_>>(), [5, 5, 2]);
}

#[test]
fn a_line_no_record_can_hold_is_named() {
    let huge = "x".repeat(MAX_RECORD_BYTES);
    let lines = ["ok", huge.as_str()];
    let keys = [None, None];
    for aggregate in [true, false] {
        let config = PackConfig {
            aggregate,
            ..PackConfig::default()
        };
        let e = pack(&lines, &keys, "rides", &config, &SeededRandom::new(1)).unwrap_err();
        assert!(matches!(e, PackError::Line { index: 1, .. }), "{e}");
        assert!(e.to_string().contains("1048576-byte limit"), "{e}");
    }
    assert!(matches!(
        pack(
            &lines[..1],
            &keys[..1],
            "bad/name",
            &PackConfig::default(),
            &SeededRandom::new(1)
        ),
        Err(PackError::StreamName(_))
    ));
}

#[test]
fn settings_are_read_and_checked() {
    let s = Settings::new(|n: &str| match n {
        "KINESIS_AGGREGATE" => Some("false".into()),
        "KINESIS_RECORD_TARGET_BYTES" => Some("25600".into()),
        "KINESIS_EXPLICIT_HASH_KEY" => Some("42".into()),
        _ => None,
    });
    assert_eq!(
        PackConfig::from_settings(&s),
        Ok(PackConfig {
            aggregate: false,
            target_record_bytes: 25_600,
            explicit_hash_key: Some("42".into())
        })
    );
    let bad = Settings::new(|n: &str| (n == "KINESIS_EXPLICIT_HASH_KEY").then(|| "-1".into()));
    assert!(
        PackConfig::from_settings(&bad)
            .unwrap_err()
            .to_string()
            .contains("KINESIS_EXPLICIT_HASH_KEY")
    );
    let big = Settings::new(|n: &str| (n == "KINESIS_RECORD_TARGET_BYTES").then(|| "2000000".into()));
    assert!(
        PackConfig::from_settings(&big)
            .unwrap_err()
            .to_string()
            .contains("1 to 1048576 bytes")
    );
}

proptest! {
    #[test]
    fn every_line_lands_once_in_its_keys_order(
        sizes in proptest::collection::vec(20usize..3000, 0..300),
        key_picks in proptest::collection::vec(0usize..5, 300),
        target in 200usize..60_000,
        aggregate in any::<bool>(),
    ) {
        let lines: Vec<String> = sizes.iter().enumerate().map(|(n, &len)| line(n, len)).collect();
        let keys: Vec<Option<String>> = (0..lines.len())
            .map(|i| (key_picks[i] > 0).then(|| format!("key-{}", key_picks[i])))
            .collect();
        let config = PackConfig { aggregate, target_record_bytes: target, explicit_hash_key: None };
        let calls = pack(&lines, &keys, "s", &config, &SeededRandom::new(9)).unwrap();
        let mut seen: Vec<usize> = Vec::new();
        for call in &calls {
            prop_assert!(call.records.len() <= MAX_RECORDS_PER_CALL);
            prop_assert!(call.counted_bytes <= MAX_BYTES_PER_CALL);
            for r in &call.records {
                prop_assert!(r.entry().check().is_ok());
                if aggregate && r.lines.len() > 1 {
                    prop_assert!(r.data.len() <= target);
                }
                if let Some(k) = &keys[r.lines[0]] {
                    prop_assert_eq!(&r.partition_key, k);
                }
                prop_assert!(r.lines.windows(2).all(|w| w[0] < w[1]));
                let texts: Vec<Vec<u8>> = if aggregate {
                    deaggregate(&r.data).unwrap().iter().map(|u| u.data.to_vec()).collect()
                } else {
                    vec![r.data.clone()]
                };
                for (&i, text) in r.lines.iter().zip(&texts) {
                    prop_assert_eq!(text, &format!("{}\n", lines[i]).into_bytes());
                    prop_assert_eq!(&keys[i], &keys[r.lines[0]]);
                }
                prop_assert_eq!(texts.len(), r.lines.len());
                seen.extend(&r.lines);
            }
        }
        seen.sort_unstable();
        prop_assert_eq!(seen, (0..lines.len()).collect::<Vec<_>>());
    }
}
