use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use super::*;
use crate::aws::FailedRecord;
use crate::clock::SeededRandom;

/// Runs a future whose every await is ready at once (the fakes never wait).
fn run<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a fake never waits"),
    }
}

/// What the fake sink answers to one call.
enum Answer {
    /// Every record lands.
    Ok,
    /// The records at these positions of the call fail with this code.
    Fail(&'static [usize], &'static str),
    /// The call fails as a whole.
    Err(CallError),
}

/// One call the fake sink took: its records, its timeout, when it started.
type CallMade = (Vec<Vec<u8>>, u64, i64);

/// A sink and a clock in one: calls take `call_ms`, sleeps advance time.
struct World {
    now: Cell<i64>,
    call_ms: i64,
    answers: RefCell<VecDeque<Answer>>,
    calls: RefCell<Vec<CallMade>>,
    sleeps: RefCell<Vec<u64>>,
}

impl World {
    fn new(answers: Vec<Answer>) -> Self {
        Self {
            now: Cell::new(1_714_566_600_000),
            call_ms: 5,
            answers: RefCell::new(answers.into()),
            calls: RefCell::new(Vec::new()),
            sleeps: RefCell::new(Vec::new()),
        }
    }

    fn sent(&self) -> Vec<Vec<&'static str>> {
        let names = ["a", "b", "c", "d", "e"];
        self.calls
            .borrow()
            .iter()
            .map(|(records, _, _)| records.iter().map(|r| names[usize::from(r[0] - b'a')]).collect())
            .collect()
    }
}

impl Sink<[u8]> for World {
    async fn put(&self, records: &[&[u8]], timeout_ms: u64) -> Result<PutOutcome, CallError> {
        self.calls
            .borrow_mut()
            .push((records.iter().map(|r| r.to_vec()).collect(), timeout_ms, self.now.get()));
        self.now.set(self.now.get() + self.call_ms);
        match self.answers.borrow_mut().pop_front().unwrap_or(Answer::Ok) {
            Answer::Ok => Ok(PutOutcome {
                sent: records.len(),
                failed: Vec::new(),
            }),
            Answer::Fail(at, code) => Ok(PutOutcome {
                sent: records.len(),
                failed: at
                    .iter()
                    .map(|&index| FailedRecord {
                        index,
                        code: code.into(),
                        message: "try again".into(),
                    })
                    .collect(),
            }),
            Answer::Err(e) => Err(e),
        }
    }
}

impl Pause for World {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.now.get())
    }

    async fn sleep(&self, ms: u64) {
        self.sleeps.borrow_mut().push(ms);
        self.now.set(self.now.get() + ms as i64);
    }
}

const RECORDS: [&[u8]; 4] = [b"a", b"b", b"c", b"d"];

/// Always the largest draw, so every backoff is its ceiling's remainder of
/// `u64::MAX`: never zero for the ceilings here, so every retry sleeps.
struct Highest;

impl RandomSource for Highest {
    fn fill(&self, buf: &mut [u8]) {
        buf.fill(0xff);
    }
}

fn throttled() -> CallError {
    CallError::Throttled {
        code: "ThrottlingException".into(),
        message: "Rate exceeded".into(),
    }
}

fn go(world: &World, policy: RetryPolicy) -> Delivery {
    run(deliver(&RECORDS, policy, 10_000, world, world, &Highest))
}

#[test]
fn a_call_that_lands_is_made_once() {
    let world = World::new(vec![Answer::Ok]);
    let d = go(&world, RetryPolicy::default());
    assert_eq!((d.attempts, d.undelivered), (1, None));
    assert_eq!(world.sent(), [vec!["a", "b", "c", "d"]]);
    assert!(world.sleeps.borrow().is_empty());
}

#[test]
fn only_the_records_that_failed_are_sent_again() {
    // b and d fail; then the first of those two (b) fails again.
    let world = World::new(vec![
        Answer::Fail(&[1, 3], "ServiceUnavailableException"),
        Answer::Fail(&[0], "InternalFailure"),
        Answer::Ok,
    ]);
    let d = go(&world, RetryPolicy::default());
    assert_eq!((d.attempts, d.undelivered), (3, None));
    assert_eq!(world.sent(), [vec!["a", "b", "c", "d"], vec!["b", "d"], vec!["b"]]);
    // Full jitter under a ceiling of 100 ms, then 200 ms.
    let sleeps = world.sleeps.borrow();
    assert_eq!(sleeps.len(), 2, "{sleeps:?}");
    assert!(
        sleeps[0] > 0 && sleeps[0] <= 100 && sleeps[1] > 0 && sleeps[1] <= 200,
        "{sleeps:?}"
    );
}

#[test]
fn a_throttled_call_is_retried_whole_after_backing_off() {
    let world = World::new(vec![Answer::Err(throttled()), Answer::Err(throttled()), Answer::Ok]);
    let d = go(&world, RetryPolicy::default());
    assert_eq!((d.attempts, d.undelivered), (3, None));
    assert!(world.sent().iter().all(|call| call.len() == 4));
    // Each retry started only after its backoff had passed.
    let calls = world.calls.borrow();
    let sleeps = world.sleeps.borrow();
    assert_eq!(sleeps.len(), 2);
    for k in 1..3 {
        assert_eq!(calls[k].2 - calls[k - 1].2, world.call_ms + sleeps[k - 1] as i64);
    }
}

#[test]
fn a_fatal_error_gives_up_at_once_with_every_record() {
    let world = World::new(vec![Answer::Err(CallError::ResourceNotFound {
        message: "Stream clicks not found".into(),
    })]);
    let d = go(&world, RetryPolicy::default());
    let u = d.undelivered.unwrap();
    assert_eq!((u.attempts, &u.records[..]), (1, &[0, 1, 2, 3][..]));
    assert!(matches!(
        u.reason,
        GiveUpReason::Fatal(CallError::ResourceNotFound { .. })
    ));
    assert_eq!(
        u.to_string(),
        "not retried: stream or queue not found: Stream clicks not found [ResourceNotFoundException]"
    );
    assert_eq!(world.calls.borrow().len(), 1);
}

#[test]
fn attempts_run_out_and_say_what_failed_last() {
    let world = World::new(vec![
        Answer::Err(throttled()),
        Answer::Fail(&[2], "ServiceUnavailableException"),
        Answer::Fail(&[0], "ServiceUnavailableException"),
    ]);
    let policy = RetryPolicy {
        max_attempts: 3,
        ..RetryPolicy::default()
    };
    let u = go(&world, policy).undelivered.unwrap();
    assert_eq!((u.attempts, u.records.clone()), (3, vec![2]));
    assert_eq!(u.reason, GiveUpReason::AttemptsExhausted);
    assert_eq!(
        u.to_string(),
        "3 attempts failed, the last with: 1 of 1 records failed (ServiceUnavailableException)"
    );
}

#[test]
fn the_budget_bounds_every_call_and_every_retry() {
    let mut world = World::new((0..20).map(|_| Answer::Err(throttled())).collect());
    world.call_ms = 300;
    let policy = RetryPolicy {
        max_attempts: 100,
        base_delay_ms: 100,
        max_delay_ms: 400,
        budget_ms: 2_000,
    };
    let started = world.now.get();
    let u = go(&world, policy).undelivered.unwrap();
    assert_eq!(u.reason, GiveUpReason::BudgetExhausted);
    assert!(
        u.to_string().starts_with("the 2000 ms retry budget ran out after "),
        "{u}"
    );
    // No call starts after the budget, and none may run past it.
    let calls = world.calls.borrow();
    for (k, (_, timeout, at)) in calls.iter().enumerate() {
        let elapsed = at - started;
        assert!(elapsed <= 2_000, "call {k} started {elapsed} ms in");
        assert!(
            *timeout as i64 <= 2_000 - elapsed,
            "call {k}: {timeout} ms with {elapsed} ms gone"
        );
    }
    assert!(calls.len() >= 3, "{} calls", calls.len());
}

#[test]
fn each_call_may_take_at_most_the_call_timeout() {
    let world = World::new(vec![Answer::Ok]);
    run(deliver(
        &RECORDS,
        RetryPolicy::default(),
        1_500,
        &world,
        &world,
        &SeededRandom::new(1),
    ));
    assert_eq!(world.calls.borrow()[0].1, 1_500);
}
