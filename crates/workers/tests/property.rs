//! Property: whatever sequence of operations a caller performs, no task is
//! left unsettled, and each settles with an outcome its history allows.

mod common;

use std::time::{Duration, Instant};

use common::*;
use proptest::prelude::*;
use protozoa_workers::{Priority, TaskError, TaskErrorKind, TaskHandle, TaskRequest, WorkerPool};

#[derive(Debug, Clone)]
enum Op {
    SubmitQuick(u64),
    SubmitSlow(u64),
    SubmitFailing,
    SubmitPanicking,
    SubmitAsync(u64),
    SubmitWithTinyTimeout,
    /// A quick task in a priority class, maybe with a near deadline.
    SubmitPrioritized(u64, u8, bool),
    /// A quick task with one of a few supersede keys.
    SubmitKeyed(u64, u8),
    /// A quick task that depends on an earlier submission.
    SubmitAfter(u64, usize),
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
        3 => (any::<u32>(), 0_u8..4, any::<bool>())
            .prop_map(|(n, class, deadline)| Op::SubmitPrioritized(u64::from(n), class, deadline)),
        2 => (any::<u32>(), 0_u8..3).prop_map(|(n, key)| Op::SubmitKeyed(u64::from(n), key)),
        3 => (any::<u32>(), any::<usize>()).prop_map(|(n, pick)| Op::SubmitAfter(u64::from(n), pick)),
        3 => any::<usize>().prop_map(Op::Cancel),
        1 => Just(Op::Reset),
        1 => Just(Op::Close),
        1 => Just(Op::Terminate),
    ]
}

/// What a task's options allow it to settle with besides its value.
#[derive(Clone, Copy, Default)]
struct Allowed {
    expired: bool,
    superseded: bool,
    dependency_failed: bool,
}

/// A submitted task and what it may legitimately settle with.
enum Submitted {
    Quick(u64, TaskHandle<u64>),
    Scheduled(u64, Allowed, TaskHandle<u64>),
    Slow(TaskHandle<bool>),
    Unit(TaskHandle<()>),
    Async(u64, TaskHandle<u64>),
    Reset(TaskHandle<()>),
}

impl Submitted {
    /// Makes `request` depend on this task.
    fn before<'p>(&self, request: TaskRequest<'p, u64, u64>) -> TaskRequest<'p, u64, u64> {
        match self {
            Submitted::Quick(_, h) | Submitted::Async(_, h) | Submitted::Scheduled(_, _, h) => {
                request.after(h)
            }
            Submitted::Slow(h) => request.after(h),
            Submitted::Unit(h) | Submitted::Reset(h) => request.after(h),
        }
    }

    fn cancel(&self) -> bool {
        match self {
            Submitted::Quick(_, h) | Submitted::Async(_, h) | Submitted::Scheduled(_, _, h) => {
                h.cancel()
            }
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
            Submitted::Scheduled(n, allowed, handle) => {
                match handle
                    .wait_timeout(limit)
                    .unwrap_or_else(|_| panic!("task never settled"))
                {
                    Ok(value) => assert_eq!(value, n * 2),
                    Err(error) => {
                        let kind = error.kind();
                        let ok = allowed_error(&error)
                            || (allowed.expired && kind == TaskErrorKind::Expired)
                            || (allowed.superseded && kind == TaskErrorKind::Superseded)
                            || (allowed.dependency_failed
                                && kind == TaskErrorKind::DependencyFailed);
                        assert!(ok, "{error:?}");
                    }
                }
            }
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
            Op::SubmitPrioritized(n, class, deadline) => {
                let mut request = pool.task::<Double>(n).priority(Priority(class));
                if deadline {
                    request = request.deadline(Instant::now() + Duration::from_micros(200));
                }
                let allowed = Allowed {
                    expired: deadline,
                    ..Allowed::default()
                };
                request
                    .submit()
                    .ok()
                    .map(|h| Submitted::Scheduled(n, allowed, h))
            }
            Op::SubmitKeyed(n, key) => {
                let allowed = Allowed {
                    superseded: true,
                    ..Allowed::default()
                };
                let request = pool.task::<Double>(n).key(key);
                request
                    .submit()
                    .ok()
                    .map(|h| Submitted::Scheduled(n, allowed, h))
            }
            Op::SubmitAfter(n, pick) => {
                let mut request = pool.task::<Double>(n);
                if !submitted.is_empty() {
                    request = submitted[pick % submitted.len()].0.before(request);
                }
                let allowed = Allowed {
                    dependency_failed: true,
                    ..Allowed::default()
                };
                request
                    .submit()
                    .ok()
                    .map(|h| Submitted::Scheduled(n, allowed, h))
            }
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
