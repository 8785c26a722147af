//! Handler errors, panics, time limits and cancellation: each settles its task
//! with an error that says which it was, and the pool keeps working.

mod common;

use std::time::Duration;

use common::*;
use protozoa_workers::{HandlerError, Handlers, TaskError, TaskErrorKind, WorkerPool};

#[test]
fn a_panicking_handler_becomes_an_error_and_the_next_task_on_that_worker_succeeds() {
    let pool = WorkerPool::builder(handlers()).workers(1).build().unwrap();
    let error = pool
        .submit::<Panic>("particle escaped".into())
        .unwrap()
        .wait()
        .unwrap_err();
    match &error {
        TaskError::Panicked { task, message } => {
            assert_eq!(task, "panic");
            assert_eq!(message, "particle escaped");
        }
        other => panic!("expected Panicked, got {other:?}"),
    }
    assert_eq!(error.kind(), TaskErrorKind::Panicked);
    assert_eq!(pool.submit::<Double>(4).unwrap().wait().unwrap(), 8);
}

#[test]
fn a_worker_is_initialized_again_after_a_panic() {
    let pool = WorkerPool::builder(handlers()).workers(1).build().unwrap();
    assert_eq!(pool.submit::<Count>(()).unwrap().wait().unwrap(), 1);
    assert_eq!(pool.submit::<Count>(()).unwrap().wait().unwrap(), 2);
    let _ = pool.submit::<Panic>("boom".into()).unwrap().wait();
    // The state was rebuilt from `initialize`: the count starts over.
    assert_eq!(pool.submit::<Count>(()).unwrap().wait().unwrap(), 1);
}

#[test]
fn a_handler_error_carries_a_backtrace_when_capture_is_enabled() {
    // Capture follows RUST_LIB_BACKTRACE; force it on for this process.
    std::env::set_var("RUST_LIB_BACKTRACE", "1");
    let handlers =
        Handlers::stateless().handler::<Fail>(|_, message, _| Err(HandlerError::new(message)));
    let pool = WorkerPool::builder(handlers).workers(1).build().unwrap();
    let error = pool
        .submit::<Fail>("with a stack".into())
        .unwrap()
        .wait()
        .unwrap_err();
    match error {
        TaskError::Failed { error, .. } => {
            let backtrace = error.backtrace().expect("a captured backtrace");
            assert!(!backtrace.is_empty());
        }
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[test]
fn question_mark_turns_any_std_error_into_a_handler_error() {
    struct Parse;
    impl protozoa_workers::Task for Parse {
        const NAME: &'static str = "parse";
        type Input = String;
        type Output = u32;
    }
    let handlers = Handlers::stateless().handler::<Parse>(|_, text, _| Ok(text.parse::<u32>()?));
    let pool = WorkerPool::builder(handlers).workers(1).build().unwrap();
    assert_eq!(
        pool.submit::<Parse>("12".into()).unwrap().wait().unwrap(),
        12
    );
    let error = pool
        .submit::<Parse>("twelve".into())
        .unwrap()
        .wait()
        .unwrap_err();
    assert!(error.to_string().contains("invalid digit"), "{error}");
}

#[test]
fn a_task_past_its_time_limit_settles_as_timed_out_and_its_handler_is_told() {
    let pool = WorkerPool::builder(handlers()).workers(1).build().unwrap();
    let handle = pool
        .task::<Sleep>(10_000)
        .timeout(Duration::from_millis(50))
        .submit()
        .unwrap();
    match handle.wait().unwrap_err() {
        TaskError::TimedOut { task, limit } => {
            assert_eq!(task, "sleep");
            assert_eq!(limit, Duration::from_millis(50));
        }
        other => panic!("expected TimedOut, got {other:?}"),
    }
    // The handler saw its token and returned, so the worker is free again.
    assert_eq!(pool.submit::<Double>(1).unwrap().wait().unwrap(), 2);
}

#[test]
fn the_pool_default_time_limit_applies_to_every_task() {
    let pool = WorkerPool::builder(handlers())
        .workers(1)
        .task_timeout(Some(Duration::from_millis(30)))
        .build()
        .unwrap();
    let error = pool.submit::<Sleep>(10_000).unwrap().wait().unwrap_err();
    assert_eq!(error.kind(), TaskErrorKind::TimedOut);
}

#[test]
fn an_async_task_past_its_time_limit_is_dropped() {
    let pool = WorkerPool::builder(handlers()).workers(1).build().unwrap();
    let handle = pool
        .task::<AsyncDelay>(60_000)
        .timeout(Duration::from_millis(50))
        .submit()
        .unwrap();
    assert_eq!(handle.wait().unwrap_err().kind(), TaskErrorKind::TimedOut);
    // The future was dropped: the worker no longer lists it as running.
    let mut running = usize::MAX;
    for _ in 0..1000 {
        running = pool.status().workers[0].running.len();
        if running == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(running, 0);
}

#[test]
fn a_queued_task_can_be_cancelled_and_never_runs() {
    let pool = WorkerPool::builder(handlers()).workers(1).build().unwrap();
    let blocker = pool.submit::<Sleep>(100).unwrap();
    let queued = pool.submit::<Count>(()).unwrap();
    assert!(queued.cancel());
    assert_eq!(queued.wait().unwrap_err(), TaskError::Cancelled);
    assert!(!blocker.wait().unwrap());
    // Had the cancelled task run, this would count 2.
    assert_eq!(pool.submit::<Count>(()).unwrap().wait().unwrap(), 1);
}

#[test]
fn a_running_task_can_be_cancelled_through_its_token() {
    let pool = WorkerPool::builder(handlers()).workers(1).build().unwrap();
    let running = pool.submit::<Sleep>(60_000).unwrap();
    while running.started().is_none() {
        std::thread::yield_now();
    }
    assert!(running.cancel());
    assert_eq!(running.wait().unwrap_err(), TaskError::Cancelled);
    // The handler saw the cancellation and returned: the worker takes new work.
    assert_eq!(pool.submit::<Double>(5).unwrap().wait().unwrap(), 10);
}

#[test]
fn cancelling_a_settled_task_changes_nothing() {
    let pool = WorkerPool::builder(handlers()).workers(1).build().unwrap();
    let handle = pool.submit::<Double>(2).unwrap();
    while !handle.is_settled() {
        std::thread::yield_now();
    }
    assert!(!handle.cancel());
    assert_eq!(handle.wait().unwrap(), 4);
}

#[test]
fn a_failing_initializer_fails_tasks_with_a_clear_error_instead_of_hanging() {
    let handlers = Handlers::new(|worker| -> Result<(), HandlerError> {
        Err(HandlerError::new(format!(
            "no GPU for worker {}",
            worker.id
        )))
    })
    .handler::<Double>(|_, n, _| Ok(n * 2));
    let pool = WorkerPool::builder(handlers).workers(1).build().unwrap();
    match pool.submit::<Double>(1).unwrap().wait().unwrap_err() {
        TaskError::WorkerUnavailable { worker, error } => {
            assert_eq!(worker, 0);
            assert!(error.message().contains("no GPU"));
        }
        other => panic!("expected WorkerUnavailable, got {other:?}"),
    }
}

#[test]
fn a_waiting_caller_can_give_up_and_keep_the_handle() {
    let pool = WorkerPool::builder(handlers()).workers(1).build().unwrap();
    let handle = pool.submit::<Sleep>(100).unwrap();
    let handle = match handle.wait_timeout(Duration::from_millis(1)) {
        Ok(_) => panic!("a 100 ms task settled within 1 ms"),
        Err(handle) => handle,
    };
    assert!(!handle.wait().unwrap());
}
