//! Property: whatever sequence of operations a caller performs, no task is
//! left unsettled, and each settles with an outcome its history allows.

mod common;

use std::time::Duration;

use common::*;
use proptest::prelude::*;
use protozoa_workers::{TaskError, TaskErrorKind, TaskHandle, WorkerPool};

#[derive(Debug, Clone)]
enum Op {
    SubmitQuick(u64),
    SubmitSlow(u64),
    SubmitFailing,
    SubmitPanicking,
    SubmitAsync(u64),
    SubmitWithTinyTimeout,
    Cancel(usize),
    Reset,
    Close,
    Terminate,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => any::<u32>().prop_map(|n| Op::SubmitQuick(u64::from(n))),
        2 => (0_u64..5).prop_map(Op::SubmitSlow),
        1 => Just(Op::SubmitFailing),
        1 => Just(Op::SubmitPanicking),
        2 => (0_u64..5).prop_map(Op::SubmitAsync),
        1 => Just(Op::SubmitWithTinyTimeout),
        3 => any::<usize>().prop_map(Op::Cancel),
        1 => Just(Op::Reset),
        1 => Just(Op::Close),
        1 => Just(Op::Terminate),
    ]
}

/// A submitted task and what it may legitimately settle with.
enum Submitted {
    Quick(u64, TaskHandle<u64>),
    Slow(TaskHandle<bool>),
    Unit(TaskHandle<()>),
    Async(u64, TaskHandle<u64>),
    Reset(TaskHandle<()>),
}

impl Submitted {
    fn cancel(&self) -> bool {
        match self {
            Submitted::Quick(_, h) | Submitted::Async(_, h) => h.cancel(),
            Submitted::Slow(h) => h.cancel(),
            Submitted::Unit(h) | Submitted::Reset(h) => h.cancel(),
        }
    }

    /// Waits (bounded, so a failure is reported instead of hanging) and checks
    /// the value or the kind of error.
    fn check(self, cancelled: bool) {
        let limit = Duration::from_secs(30);
        let allowed_error = |error: &TaskError| {
            matches!(
                error.kind(),
                TaskErrorKind::Terminated | TaskErrorKind::TimedOut
            ) || (cancelled && error.kind() == TaskErrorKind::Cancelled)
        };
        match self {
            Submitted::Quick(n, handle) | Submitted::Async(n, handle) => {
                match handle
                    .wait_timeout(limit)
                    .unwrap_or_else(|_| panic!("task never settled"))
                {
                    Ok(value) => assert!(value == n * 2 || value == n),
                    Err(error) => assert!(allowed_error(&error), "{error:?}"),
                }
            }
            Submitted::Slow(handle) => {
                if let Err(error) = handle
                    .wait_timeout(limit)
                    .unwrap_or_else(|_| panic!("task never settled"))
                {
                    assert!(allowed_error(&error), "{error:?}");
                }
            }
            Submitted::Unit(handle) => {
                let result = handle
                    .wait_timeout(limit)
                    .unwrap_or_else(|_| panic!("never settled"));
                assert!(result.is_err() || cancelled, "a failing task succeeded");
            }
            Submitted::Reset(handle) => {
                if let Err(error) = handle
                    .wait_timeout(limit)
                    .unwrap_or_else(|_| panic!("reset never settled"))
                {
                    assert!(allowed_error(&error), "{error:?}");
                }
            }
        }
    }
}

fn run(ops: Vec<Op>) {
    let pool = WorkerPool::builder(handlers()).workers(2).build().unwrap();
    let mut submitted: Vec<(Submitted, bool)> = Vec::new();
    for op in ops {
        let task = match op {
            Op::SubmitQuick(n) => pool
                .submit::<Double>(n)
                .ok()
                .map(|h| Submitted::Quick(n, h)),
            Op::SubmitSlow(ms) => pool.submit::<Sleep>(ms).ok().map(Submitted::Slow),
            Op::SubmitFailing => pool.submit::<Fail>("no".into()).ok().map(Submitted::Unit),
            Op::SubmitPanicking => pool.submit::<Panic>("no".into()).ok().map(Submitted::Unit),
            Op::SubmitAsync(ms) => pool
                .submit::<AsyncDelay>(ms)
                .ok()
                .map(|h| Submitted::Async(ms, h)),
            Op::SubmitWithTinyTimeout => pool
                .task::<Sleep>(1_000)
                .timeout(Duration::from_millis(1))
                .submit()
                .ok()
                .map(Submitted::Slow),
            Op::Cancel(pick) => {
                if !submitted.is_empty() {
                    let index = pick % submitted.len();
                    let entry = &mut submitted[index];
                    entry.1 |= entry.0.cancel();
                }
                None
            }
            Op::Reset => pool.reset().ok().map(Submitted::Reset),
            Op::Close => {
                pool.close();
                None
            }
            Op::Terminate => {
                pool.terminate();
                None
            }
        };
        if let Some(task) = task {
            submitted.push((task, false));
        }
    }
    pool.close();
    for (task, cancelled) in submitted {
        task.check(cancelled);
    }
    pool.join();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_operation_sequences_leave_no_task_unsettled(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops);
    }
}
