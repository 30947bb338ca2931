use proptest::prelude::*;

use super::*;
use crate::limits::QUEUE_MAX_MESSAGE_BYTES;

fn lines_of(sizes: &[usize]) -> Vec<Vec<u8>> {
    sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let tag = format!("{i}:");
            let mut l = tag.clone().into_bytes();
            l.resize(n.max(tag.len()), b'x');
            l
        })
        .collect()
}

/// Checks every invariant of a packing of `lines`.
fn check_packing(lines: &[Vec<u8>], calls: &[Call], config: PackConfig, stream: &str) -> Result<(), TestCaseError> {
    let mut next_line = 0;
    let mut rebuilt: Vec<u8> = Vec::new();
    for call in calls {
        prop_assert!(!call.records.is_empty());
        prop_assert!(call.records.len() <= FIREHOSE_MAX_RECORDS_PER_CALL);
        prop_assert!(call.body_bytes <= FIREHOSE_MAX_CALL_BYTES);
        let body = firehose::put_record_batch_body(stream, call.records.iter().map(|r| r.data.as_slice()));
        prop_assert_eq!(body.len(), call.body_bytes, "body size accounting is exact");
        for r in &call.records {
            prop_assert!(r.data.len() <= FIREHOSE_MAX_RECORD_BYTES);
            prop_assert!(r.data.len() <= config.target_record_bytes() || r.lines.len() == 1);
            prop_assert_eq!(r.lines.start, next_line, "records are in order and contiguous");
            next_line = r.lines.end;
            prop_assert_eq!(r.data.last(), Some(&b'\n'));
            rebuilt.extend_from_slice(&r.data);
        }
    }
    prop_assert_eq!(next_line, lines.len(), "every line is packed exactly once");
    let expected: Vec<u8> = lines.iter().flat_map(|l| l.iter().copied().chain([b'\n'])).collect();
    prop_assert_eq!(rebuilt, expected, "nothing lost, repeated or reordered");
    Ok(())
}

fn sizes() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(
        prop_oneof![
            8 => 1usize..400,
            2 => 400usize..40_000,
            1 => (FIREHOSE_MAX_RECORD_BYTES - 2000)..=(FIREHOSE_MAX_RECORD_BYTES - 1),
        ],
        0..60,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn packing_never_exceeds_a_limit_and_never_loses_duplicates_or_reorders(
        sizes in sizes(),
        target in prop_oneof![Just(1usize), 1usize..10_000, Just(FIREHOSE_MAX_RECORD_BYTES)],
    ) {
        let lines = lines_of(&sizes);
        let config = PackConfig::with_target_record_bytes(target);
        let calls = pack(&lines, "clicks", config).unwrap();
        check_packing(&lines, &calls, config, "clicks")?;
    }

    #[test]
    fn many_small_lines_split_on_the_record_count(n in 501usize..1600) {
        let lines = lines_of(&vec![20; n]);
        let config = PackConfig::with_target_record_bytes(1);
        let calls = pack(&lines, "s", config).unwrap();
        check_packing(&lines, &calls, config, "s")?;
        prop_assert_eq!(calls.len(), n.div_ceil(500));
    }
}

#[test]
fn records_near_the_maximum_split_on_the_call_size() {
    let lines = lines_of(&[FIREHOSE_MAX_RECORD_BYTES - 1; 7]);
    let config = PackConfig::default();
    let calls = pack(&lines, "clicks", config).unwrap();
    // Each record base64-encodes to ~1.33 MB, so three fit in 4 MiB and a fourth does not.
    assert_eq!(calls.iter().map(|c| c.records.len()).collect::<Vec<_>>(), [3, 3, 1]);
    check_packing(&lines, &calls, config, "clicks").unwrap();
}

#[test]
fn a_line_at_the_record_limit_packs_and_one_byte_more_is_refused() {
    let ok = vec![b'x'; FIREHOSE_MAX_RECORD_BYTES - 1];
    assert_eq!(
        pack(&[ok], "s", PackConfig::default()).unwrap()[0].records[0]
            .data
            .len(),
        FIREHOSE_MAX_RECORD_BYTES
    );
    let over = vec![b'x'; FIREHOSE_MAX_RECORD_BYTES];
    assert_eq!(
        pack(&[b"a".to_vec(), over], "s", PackConfig::default()).unwrap_err(),
        PackError::LineTooLarge {
            index: 1,
            size: 1_024_001,
            limit: 1_024_000
        }
    );
}

#[test]
fn small_events_share_records_up_to_the_target() {
    let lines = lines_of(&[169; 100]); // 170 bytes with the newline
    let calls = pack(&lines, "s", PackConfig::with_target_record_bytes(1700)).unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].records.len(), 10);
    assert!(
        calls[0]
            .records
            .iter()
            .all(|r| r.data.len() == 1700 && r.lines.len() == 10)
    );
}

#[test]
fn nothing_to_pack_makes_no_calls() {
    assert!(pack::<Vec<u8>>(&[], "s", PackConfig::default()).unwrap().is_empty());
}

#[test]
fn a_bad_stream_name_is_refused() {
    assert!(matches!(
        pack(&[b"{}"], "no spaces", PackConfig::default()),
        Err(PackError::StreamName(_))
    ));
}

#[test]
fn billing_rounds_each_record_up_to_5_kb() {
    assert_eq!(billed_record_bytes(1), 5120);
    assert_eq!(billed_record_bytes(5120), 5120);
    assert_eq!(billed_record_bytes(5121), 10_240);
    // A million 170-byte events: one per record versus packed.
    let lines = lines_of(&[169; 10_000]);
    let one_each = PackingStats::of(&pack(&lines, "s", PackConfig::with_target_record_bytes(1)).unwrap());
    let packed = PackingStats::of(&pack(&lines, "s", PackConfig::default()).unwrap());
    assert_eq!(
        (one_each.records, one_each.calls, one_each.billed_bytes),
        (10_000, 20, 10_000 * 5120)
    );
    assert_eq!(packed.payload_bytes, 1_700_000);
    assert_eq!(packed.records, 2);
    assert!(packed.billed_bytes < 1_700_000 + 2 * 5120);
    assert!(one_each.billed_bytes / packed.billed_bytes >= 30);
}

#[test]
fn target_is_clamped_to_the_firehose_record_limit() {
    assert_eq!(PackConfig::with_target_record_bytes(0).target_record_bytes(), 1);
    assert_eq!(
        PackConfig::with_target_record_bytes(usize::MAX).target_record_bytes(),
        FIREHOSE_MAX_RECORD_BYTES
    );
}

proptest! {
    #[test]
    fn grouping_keeps_every_line_once_in_order_within_the_message_limit(
        sizes in prop::collection::vec(1usize..3000, 0..200),
        max in 1usize..10_000,
    ) {
        let lines: Vec<String> = sizes.iter().enumerate().map(|(i, &n)| format!("{i}:{}", "x".repeat(n))).collect();
        let groups = group_lines(&lines, max);
        for g in &groups {
            prop_assert!(g.len() <= max || !g.contains('\n'), "only a lone line may exceed the limit");
        }
        let back: Vec<&str> = groups.iter().flat_map(|g| g.split('\n')).collect();
        prop_assert_eq!(back, lines.iter().map(String::as_str).collect::<Vec<_>>());
    }

    #[test]
    fn queue_batches_cover_every_message_once_within_both_limits(
        sizes in prop::collection::vec(1usize..=QUEUE_MAX_MESSAGE_BYTES, 0..400),
    ) {
        let batches = queue_batches(&sizes);
        let mut next = 0;
        for b in &batches {
            prop_assert_eq!(b.start, next);
            prop_assert!(!b.is_empty() && b.len() <= QUEUE_MAX_BATCH_MESSAGES);
            prop_assert!(sizes[b.clone()].iter().sum::<usize>() <= QUEUE_MAX_BATCH_BYTES);
            next = b.end;
        }
        prop_assert_eq!(next, sizes.len());
    }
}

#[test]
fn small_messages_split_on_the_message_count() {
    assert_eq!(queue_batches(&[10; 250]), [0..100, 100..200, 200..250]);
    assert_eq!(queue_batches(&[100_000; 5]), [0..2, 2..4, 4..5]);
}

#[test]
fn packing_figures_add_up_field_by_field() {
    let a = PackingStats::of(&pack(&["x".repeat(10)], "s", PackConfig::default()).unwrap());
    let b = PackingStats::of(
        &pack(
            &["y".repeat(6000), "z".repeat(6000)],
            "s",
            PackConfig::with_target_record_bytes(1),
        )
        .unwrap(),
    );
    let mut sum = a;
    sum.add(&b);
    assert_eq!(
        (
            sum.lines,
            sum.records,
            sum.calls,
            sum.payload_bytes,
            sum.billed_bytes,
            sum.wire_bytes
        ),
        (
            a.lines + b.lines,
            a.records + b.records,
            a.calls + b.calls,
            a.payload_bytes + b.payload_bytes,
            a.billed_bytes + b.billed_bytes,
            a.wire_bytes + b.wire_bytes
        )
    );
    assert_eq!(
        (sum.lines, sum.records, sum.calls, sum.billed_bytes),
        (3, 3, 2, 5120 + 2 * 10240)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn grouped_records_hold_one_group_each_and_every_line_once(
        lines in proptest::collection::vec((1usize..3000, 0u8..4), 0..200),
        target in 1usize..20_000,
    ) {
        let sizes: Vec<usize> = lines.iter().map(|(s, _)| *s).collect();
        let groups: Vec<u8> = lines.iter().map(|(_, g)| *g).collect();
        let bytes = lines_of(&sizes);
        let config = PackConfig::with_target_record_bytes(target);
        let grouped = pack_grouped(&bytes, &groups, config).unwrap();
        let mut seen = grouped.order.clone();
        seen.sort_unstable();
        prop_assert_eq!(seen, (0..bytes.len()).collect::<Vec<_>>());
        let mut packed = 0;
        for r in &grouped.records {
            prop_assert_eq!(r.lines.start, packed);
            packed = r.lines.end;
            let members: Vec<usize> = grouped.order[r.lines.clone()].to_vec();
            prop_assert!(members.iter().all(|&i| groups[i] == groups[members[0]]));
            prop_assert!(members.windows(2).all(|w| w[0] < w[1]), "input order within a group");
            let expected: Vec<u8> = members.iter().flat_map(|&i| [bytes[i].as_slice(), b"\n"].concat()).collect();
            prop_assert_eq!(&r.data, &expected);
            prop_assert!(r.data.len() <= target.max(members.iter().map(|&i| bytes[i].len() + 1).max().unwrap_or(0)));
        }
        prop_assert_eq!(packed, bytes.len());
    }
}

#[test]
fn groups_pack_in_order_of_first_appearance_and_a_too_large_line_is_named_by_its_input_index() {
    let lines = ["a1", "b1", "a2", "c1", "b2"];
    let groups = ['a', 'b', 'a', 'c', 'b'];
    let grouped = pack_grouped(&lines, &groups, PackConfig::default()).unwrap();
    assert_eq!(grouped.order, [0, 2, 1, 4, 3]);
    let data: Vec<&[u8]> = grouped.records.iter().map(|r| r.data.as_slice()).collect();
    assert_eq!(data, [&b"a1\na2\n"[..], b"b1\nb2\n", b"c1\n"]);
    let big = vec![b'x'; FIREHOSE_MAX_RECORD_BYTES];
    let lines = [b"ok".to_vec(), big.clone(), b"ok".to_vec()];
    assert!(matches!(
        pack_grouped(&lines, &[1, 0, 1], PackConfig::default()),
        Err(PackError::LineTooLarge { index: 1, .. })
    ));
}
