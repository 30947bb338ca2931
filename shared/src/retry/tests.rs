use proptest::prelude::*;

use super::*;
use crate::aws::FailedRecord;
use crate::clock::SeededRandom;

fn partial(sent: usize, failed: &[usize]) -> Result<PutOutcome, CallError> {
    Ok(PutOutcome {
        sent,
        failed: failed
            .iter()
            .map(|&index| FailedRecord {
                index,
                code: "ServiceUnavailableException".into(),
                message: String::new(),
            })
            .collect(),
    })
}

fn throttled() -> Result<PutOutcome, CallError> {
    Err(CallError::Throttled {
        code: "ServiceUnavailableException".into(),
        message: "Slow down.".into(),
    })
}

const T0: Timestamp = Timestamp(1_000_000);

#[test]
fn a_full_success_is_done_after_one_call() {
    let mut plan = RetryPlan::new(RetryPolicy::default(), 3, T0);
    assert_eq!(plan.on_result(&partial(3, &[]), T0, &SeededRandom::new(1)), Step::Done);
    assert_eq!(plan.attempts(), 1);
}

#[test]
fn retries_only_the_records_that_failed() {
    let rng = SeededRandom::new(1);
    let mut plan = RetryPlan::new(RetryPolicy::default(), 5, T0);
    assert!(matches!(
        plan.on_result(&partial(5, &[1, 3]), T0, &rng),
        Step::Retry { .. }
    ));
    assert_eq!(plan.pending(), [1, 3]);
    // Of the two resent, the second (original record 3) fails again.
    assert!(matches!(
        plan.on_result(&partial(2, &[1]), T0, &rng),
        Step::Retry { .. }
    ));
    assert_eq!(plan.pending(), [3]);
    assert_eq!(plan.on_result(&partial(1, &[]), T0, &rng), Step::Done);
}

#[test]
fn a_whole_call_failure_resends_everything_pending() {
    let rng = SeededRandom::new(1);
    let mut plan = RetryPlan::new(RetryPolicy::default(), 4, T0);
    plan.on_result(&partial(4, &[0, 2]), T0, &rng);
    assert!(matches!(plan.on_result(&throttled(), T0, &rng), Step::Retry { .. }));
    assert_eq!(plan.pending(), [0, 2]);
}

#[test]
fn a_fatal_error_gives_up_at_once_with_everything_pending() {
    let mut plan = RetryPlan::new(RetryPolicy::default(), 2, T0);
    let err = CallError::ResourceNotFound { message: "no".into() };
    match plan.on_result(&Err(err.clone()), T0, &SeededRandom::new(1)) {
        Step::GiveUp { undelivered, reason } => {
            assert_eq!(undelivered, [0, 1]);
            assert_eq!(reason, GiveUpReason::Fatal(err));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn attempts_are_capped() {
    let policy = RetryPolicy {
        max_attempts: 3,
        ..RetryPolicy::default()
    };
    let rng = SeededRandom::new(1);
    let mut plan = RetryPlan::new(policy, 1, T0);
    assert!(matches!(plan.on_result(&throttled(), T0, &rng), Step::Retry { .. }));
    assert!(matches!(plan.on_result(&throttled(), T0, &rng), Step::Retry { .. }));
    assert_eq!(
        plan.on_result(&throttled(), T0, &rng),
        Step::GiveUp {
            undelivered: vec![0],
            reason: GiveUpReason::AttemptsExhausted
        }
    );
}

#[test]
fn no_retry_is_planned_past_the_budget() {
    let policy = RetryPolicy {
        max_attempts: 100,
        base_delay_ms: 1000,
        max_delay_ms: 1000,
        budget_ms: 5000,
    };
    let rng = SeededRandom::new(1);
    let mut plan = RetryPlan::new(policy, 1, T0);
    assert!(matches!(
        plan.on_result(&throttled(), T0.add_millis(3000), &rng),
        Step::Retry { .. }
    ));
    assert!(matches!(
        plan.on_result(&throttled(), T0.add_millis(5001), &rng),
        Step::GiveUp {
            reason: GiveUpReason::BudgetExhausted,
            ..
        }
    ));
}

#[test]
fn a_skew_error_retries_at_once_and_the_skew_is_learned_from_the_date_header() {
    let server = Timestamp::parse_http_date("Sun, 30 Aug 2015 12:41:00 GMT").unwrap();
    let local = server.add_millis(-20 * 60_000);
    let err = CallError::SignatureExpired {
        message: "Signature expired".into(),
        server_time: Some(server),
    };
    let mut plan = RetryPlan::new(RetryPolicy::default(), 1, local);
    assert_eq!(
        plan.on_result(&Err(err.clone()), local, &SeededRandom::new(1)),
        Step::Retry { delay_ms: 0 }
    );
    let mut skew = ClockSkew::default();
    assert!(skew.learn_from(&err, local));
    assert_eq!(skew.offset_ms(), 20 * 60_000);
    assert_eq!(skew.corrected(local), server);
    assert!(!skew.learn_from(&CallError::ResourceNotFound { message: String::new() }, local));
}

#[test]
fn a_skew_error_without_a_date_backs_off_instead_of_spinning() {
    let err = CallError::SignatureExpired {
        message: "Signature expired".into(),
        server_time: None,
    };
    let policy = RetryPolicy {
        base_delay_ms: 100,
        ..RetryPolicy::default()
    };
    let rng = SeededRandom::new(3);
    let mut plan = RetryPlan::new(policy, 1, T0);
    let mut now = T0;
    let mut waited = 0;
    while let Step::Retry { delay_ms } = plan.on_result(&Err(err.clone()), now, &rng) {
        waited += delay_ms;
        now = now.add_millis(delay_ms as i64);
    }
    assert!(waited > 0, "every retry was immediate");
    // With a Date, one immediate re-signed retry; a second skew error waits.
    let dated = CallError::SignatureExpired {
        message: "Signature expired".into(),
        server_time: Some(T0),
    };
    let mut plan = RetryPlan::new(policy, 1, T0);
    assert_eq!(
        plan.on_result(&Err(dated.clone()), T0, &rng),
        Step::Retry { delay_ms: 0 }
    );
    let delays: Vec<u64> = (0..6)
        .filter_map(|_| match plan.on_result(&Err(dated.clone()), T0, &rng) {
            Step::Retry { delay_ms } => Some(delay_ms),
            _ => None,
        })
        .collect();
    assert!(delays.iter().any(|&d| d > 0), "{delays:?}");
}

#[test]
fn a_timeout_is_retried_and_a_request_that_could_not_be_built_is_not() {
    let rng = SeededRandom::new(1);
    let mut plan = RetryPlan::new(RetryPolicy::default(), 2, T0);
    let timeout = Err(CallError::TimedOut { after_ms: 10 });
    assert!(matches!(plan.on_result(&timeout, T0, &rng), Step::Retry { .. }));
    let unsigned = CallError::Request("no credentials".into());
    assert_eq!(
        plan.on_result(&Err(unsigned.clone()), T0, &rng),
        Step::GiveUp {
            undelivered: vec![0, 1],
            reason: GiveUpReason::Fatal(unsigned)
        }
    );
}

#[test]
fn each_call_may_take_only_what_is_left_of_the_budget() {
    let policy = RetryPolicy {
        budget_ms: 5_000,
        ..RetryPolicy::default()
    };
    let plan = RetryPlan::new(policy, 1, T0);
    assert_eq!(plan.call_timeout_ms(T0), 5_000);
    assert_eq!(plan.call_timeout_ms(T0.add_millis(3_500)), 1_500);
    assert_eq!(plan.call_timeout_ms(T0.add_millis(9_000)), 1);
    assert_eq!(plan.call_timeout_ms(T0.add_millis(-10)), 5_000);
}

#[test]
fn backoff_is_full_jitter_under_a_doubling_ceiling() {
    let policy = RetryPolicy {
        max_attempts: 100,
        base_delay_ms: 100,
        max_delay_ms: 1600,
        budget_ms: u64::MAX / 4,
    };
    let rng = SeededRandom::new(42);
    let mut plan = RetryPlan::new(policy, 1, T0);
    let mut maxima = vec![0u64; 7];
    for round in 0..2000 {
        if round % 7 == 0 {
            plan = RetryPlan::new(policy, 1, T0);
        }
        let Step::Retry { delay_ms } = plan.on_result(&throttled(), T0, &rng) else {
            panic!()
        };
        let k = (plan.attempts() - 1) as usize;
        let ceiling = (100u64 << k).min(1600);
        assert!(delay_ms <= ceiling, "retry {k}: {delay_ms} > {ceiling}");
        maxima[k] = maxima[k].max(delay_ms);
    }
    // The draws spread over the whole range, not just near the ceiling.
    assert!(maxima[0] > 80 && maxima[4] > 1300, "{maxima:?}");
}

proptest! {
    #[test]
    fn the_plan_resends_exactly_the_failed_indices(
        n in 1usize..300,
        rounds in prop::collection::vec(prop::collection::vec(any::<bool>(), 300), 1..8),
    ) {
        let rng = SeededRandom::new(7);
        let policy = RetryPolicy { max_attempts: 100, base_delay_ms: 1, max_delay_ms: 1, budget_ms: 1_000_000 };
        let mut plan = RetryPlan::new(policy, n, T0);
        let mut delivered = vec![0u32; n];
        for fails in &rounds {
            let sent: Vec<usize> = plan.pending().to_vec();
            let failed: Vec<usize> = (0..sent.len()).filter(|&i| fails[i]).collect();
            for (i, &orig) in sent.iter().enumerate() {
                if !fails[i] {
                    delivered[orig] += 1;
                }
            }
            let expected_next: Vec<usize> = failed.iter().map(|&i| sent[i]).collect();
            match plan.on_result(&partial(sent.len(), &failed), T0, &rng) {
                Step::Done => {
                    prop_assert!(expected_next.is_empty());
                    break;
                }
                Step::Retry { .. } => prop_assert_eq!(plan.pending(), expected_next.as_slice()),
                Step::GiveUp { .. } => prop_assert!(false, "gave up within budget"),
            }
        }
        // No record was ever counted delivered twice, and the pending ones never were.
        prop_assert!(delivered.iter().all(|&d| d <= 1));
        for &p in plan.pending() {
            prop_assert_eq!(delivered[p], 0);
        }
    }
}

#[test]
fn calls_sharing_a_budget_get_what_is_left_of_it() {
    let policy = RetryPolicy {
        budget_ms: 1_000,
        ..RetryPolicy::default()
    };
    let t0 = Timestamp::from_millis(1_714_566_600_000);
    assert_eq!(policy.within(t0, t0).map(|p| p.budget_ms), Some(1_000));
    let later = policy.within(t0, t0.add_millis(400)).unwrap();
    assert_eq!((later.budget_ms, later.max_attempts), (600, policy.max_attempts));
    assert_eq!(policy.within(t0, t0.add_millis(1_000)), None);
    assert_eq!(policy.within(t0, t0.add_millis(5_000)), None);
    // A clock that steps back spends nothing.
    assert_eq!(policy.within(t0, t0.add_millis(-50)).map(|p| p.budget_ms), Some(1_000));
}

#[test]
fn a_policy_under_a_deadline_gets_what_is_left_of_it_never_more_than_its_own() {
    use crate::deadline::Deadline;
    let policy = RetryPolicy {
        budget_ms: 1_000,
        ..RetryPolicy::default()
    };
    let t0 = Timestamp::from_millis(1_714_566_600_000);
    let deadline = Deadline::after(t0, 30_000);
    assert_eq!(policy.until(deadline, t0).map(|p| p.budget_ms), Some(1_000));
    assert_eq!(
        policy.until(deadline, t0.add_millis(29_700)).map(|p| p.budget_ms),
        Some(300)
    );
    assert_eq!(policy.until(deadline, t0.add_millis(30_000)), None);
}

#[test]
fn a_record_resending_cannot_mend_is_given_up_once_the_rest_are_settled() {
    let rng = SeededRandom::new(3);
    let mut plan = RetryPlan::new(RetryPolicy::default(), 4, T0);
    let mixed = Ok(PutOutcome {
        sent: 4,
        failed: vec![
            FailedRecord {
                index: 1,
                code: "InvalidMessageContents".into(),
                message: "Invalid binary character".into(),
            },
            FailedRecord {
                index: 3,
                code: "InternalError".into(),
                message: String::new(),
            },
        ],
    });
    assert!(matches!(plan.on_result(&mixed, T0, &rng), Step::Retry { .. }));
    assert_eq!(plan.pending(), [3], "only the record that may land is resent");
    match plan.on_result(&partial(1, &[]), T0, &rng) {
        Step::GiveUp { undelivered, reason } => {
            assert_eq!(undelivered, [1]);
            assert!(
                matches!(reason, GiveUpReason::Fatal(CallError::InvalidRequest { code, .. }) if code == "InvalidMessageContents")
            );
        }
        other => panic!("{other:?}"),
    }
    // Set aside, it is still reported when the rest give up for another reason.
    let mut plan = RetryPlan::new(
        RetryPolicy {
            max_attempts: 2,
            ..RetryPolicy::default()
        },
        2,
        T0,
    );
    let both = Ok(PutOutcome {
        sent: 2,
        failed: vec![
            FailedRecord {
                index: 0,
                code: "KMSDisabledException".into(),
                message: String::new(),
            },
            FailedRecord {
                index: 1,
                code: "ProvisionedThroughputExceededException".into(),
                message: String::new(),
            },
        ],
    });
    assert!(matches!(plan.on_result(&both, T0, &rng), Step::Retry { .. }));
    match plan.on_result(&partial(1, &[0]), T0, &rng) {
        Step::GiveUp { undelivered, reason } => {
            assert_eq!(undelivered, [0, 1]);
            assert_eq!(reason, GiveUpReason::AttemptsExhausted);
        }
        other => panic!("{other:?}"),
    }
}
