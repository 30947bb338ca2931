use proptest::prelude::*;

use super::*;
use crate::clock::SeededRandom;

fn line(n: usize, len: usize) -> String {
    let mut l = format!("{{\"n\":{n},\"pad\":\"");
    while l.len() < len - 2 {
        l.push('x');
    }
    l.push_str("\"}");
    l
}

#[test]
fn a_standard_queue_packs_every_line_into_few_messages() {
    let lines: Vec<String> = (0..3000).map(|n| line(n, 170)).collect();
    let keys = vec![Some("k".to_owned()); lines.len()];
    let batches = pack(&lines, &keys, false, PackConfig::default(), &SeededRandom::new(1)).unwrap();
    // 3000 × 171 bytes ≈ 513 KB: two messages of up to 256 KiB, one call.
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].messages.len(), 2);
    let m = &batches[0].messages[0];
    assert!(m.body.len() <= DEFAULT_MESSAGE_BYTES);
    assert_eq!(m.body.split('\n').next().unwrap(), lines[0]);
    assert_eq!((m.group_id.as_deref(), m.deduplication_id.as_deref()), (None, None));
}

#[test]
fn a_fifo_queue_groups_by_key_and_dedupes_by_body() {
    let lines: Vec<String> = (0..6).map(|n| line(n, 100)).collect();
    let keys = [Some("bike 1"), Some("b2"), Some("bike 1"), None, Some("b2"), None].map(|k| k.map(str::to_owned));
    let messages = messages(&lines, &keys, true, PackConfig::default(), &SeededRandom::new(2)).unwrap();
    let shape: Vec<&[usize]> = messages.iter().map(|m| m.lines.as_slice()).collect();
    assert_eq!(shape, [&[0, 2][..], &[1, 4], &[3, 5]]);
    // "bike 1" has a space SQS refuses in a group id: its hash stands in.
    assert_eq!(messages[0].group_id.as_deref().unwrap().len(), 64);
    assert_eq!(messages[1].group_id.as_deref(), Some("b2"));
    assert_eq!(
        messages[2].group_id.as_deref().unwrap().len(),
        32,
        "keyless: a random group"
    );
    assert_eq!(
        messages[1].deduplication_id.as_deref(),
        Some(sha256_hex(messages[1].body.as_bytes()).as_str())
    );
}

#[test]
fn calls_close_at_10_messages_or_1_mib() {
    let config = PackConfig {
        message_target_bytes: 2048,
    };
    let lines: Vec<String> = (0..100).map(|n| line(n, 1000)).collect();
    let batches = pack(&lines, &[], false, config, &SeededRandom::new(1)).unwrap();
    assert!(batches.iter().all(|b| b.messages.len() <= MAX_ENTRIES_PER_BATCH));
    assert_eq!(batches.iter().map(|b| b.messages.len()).sum::<usize>(), 50);
    let big = PackConfig {
        message_target_bytes: MAX_BATCH_BYTES,
    };
    let lines: Vec<String> = (0..5).map(|n| line(n, 600_000)).collect();
    let batches = pack(&lines, &[], false, big, &SeededRandom::new(1)).unwrap();
    assert_eq!(
        batches.iter().map(|b| b.messages.len()).collect::<Vec<_>>(),
        [1, 1, 1, 1, 1]
    );
    assert!(batches.iter().all(|b| b.bytes <= MAX_BATCH_BYTES));
}

#[test]
fn a_line_no_message_can_hold_is_named_and_settings_are_checked() {
    let huge = "x".repeat(DEFAULT_MESSAGE_BYTES + 1);
    let e = pack(
        &["ok".to_owned(), huge],
        &[],
        false,
        PackConfig::default(),
        &SeededRandom::new(1),
    )
    .unwrap_err();
    assert_eq!(e.index, 1);
    assert!(e.to_string().contains("SQS_MESSAGE_TARGET_BYTES"), "{e}");
    let s = Settings::new(|n: &str| (n == "SQS_MESSAGE_TARGET_BYTES").then(|| "2000000".into()));
    assert!(PackConfig::from_settings(&s).is_err());
    let s = Settings::new(|n: &str| (n == "SQS_MESSAGE_TARGET_BYTES").then(|| "65536".into()));
    assert_eq!(PackConfig::from_settings(&s).unwrap().message_target_bytes, 65_536);
}

proptest! {
    #[test]
    fn every_line_lands_once_in_its_groups_order(
        sizes in proptest::collection::vec(10usize..5000, 0..200),
        picks in proptest::collection::vec(0usize..4, 200),
        target in 5000usize..40_000,
        fifo in any::<bool>(),
    ) {
        let lines: Vec<String> = sizes.iter().enumerate().map(|(n, &len)| line(n, len.max(20))).collect();
        let keys: Vec<Option<String>> = (0..lines.len()).map(|i| (picks[i] > 0).then(|| format!("g{}", picks[i]))).collect();
        let config = PackConfig { message_target_bytes: target };
        let batches = pack(&lines, &keys, fifo, config, &SeededRandom::new(5)).unwrap();
        let mut seen: Vec<usize> = Vec::new();
        for b in &batches {
            prop_assert!(b.messages.len() <= MAX_ENTRIES_PER_BATCH && b.bytes <= MAX_BATCH_BYTES);
            for m in &b.messages {
                prop_assert!(m.body.len() <= target);
                let texts: Vec<&str> = m.body.split('\n').collect();
                prop_assert_eq!(texts.len(), m.lines.len());
                for (&i, t) in m.lines.iter().zip(&texts) {
                    prop_assert_eq!(*t, lines[i].as_str());
                    if fifo {
                        prop_assert_eq!(&keys[i], &keys[m.lines[0]]);
                    }
                }
                prop_assert_eq!(m.group_id.is_some(), fifo);
                seen.extend(&m.lines);
            }
        }
        seen.sort_unstable();
        prop_assert_eq!(seen, (0..lines.len()).collect::<Vec<_>>());
    }
}
