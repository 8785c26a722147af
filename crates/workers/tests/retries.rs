//! Retries: a failed attempt runs again, keeping its id, until it succeeds or
//! its retries run out; permanent errors, panics and time limits are final.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use protozoa_workers::{task, HandlerError, Handlers, TaskError, TaskId, WorkerPool};

task! {
    /// Fails until it has been called `Input` times, then returns its attempt.
    struct Flaky: usize => usize = "flaky";

    /// Always fails with a permanent error.
    struct Broken: () => () = "broken";
}

#[derive(Clone, Default)]
struct Calls {
    count: Arc<AtomicUsize>,
    ids: Arc<Mutex<Vec<TaskId>>>,
}

fn pool(calls: &Calls, retries: u32, delay: Duration) -> WorkerPool {
    let (flaky, broken) = (calls.clone(), calls.clone());
    let handlers = Handlers::stateless()
        .handler::<Flaky>(move |_, succeed_on, task| {
            flaky.ids.lock().unwrap().push(task.id());
            let attempt = flaky.count.fetch_add(1, Ordering::SeqCst) + 1;
            if attempt < succeed_on {
                return Err(HandlerError::new(format!("attempt {attempt} failed")));
            }
            Ok(attempt)
        })
        .handler::<Broken>(move |_, (), _| {
            broken.count.fetch_add(1, Ordering::SeqCst);
            Err(HandlerError::new("out of range").permanent())
        });
    WorkerPool::builder(handlers)
        .workers(2)
        .max_retries(retries)
        .retry_delay(delay)
        .retry_backoff(2.0)
        .build()
        .unwrap()
}

#[test]
fn a_retry_succeeds_on_the_third_attempt_keeping_its_id() {
    let calls = Calls::default();
    let pool = pool(&calls, 3, Duration::from_millis(1));
    let handle = pool.submit::<Flaky>(3).unwrap();
    let id = handle.id();
    while !handle.is_settled() {
        std::thread::yield_now();
    }
    assert_eq!(handle.attempts(), 3);
    assert_eq!(handle.wait(), Ok(3));
    assert_eq!(*calls.ids.lock().unwrap(), [id, id, id]);
}

#[test]
fn a_task_out_of_retries_reports_its_last_error() {
    let calls = Calls::default();
    let pool = pool(&calls, 0, Duration::from_millis(1));
    let handle = pool.task::<Flaky>(10).retries(1).submit().unwrap();
    match handle.wait().unwrap_err() {
        TaskError::Failed { error, .. } => assert_eq!(error.message(), "attempt 2 failed"),
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(calls.count.load(Ordering::SeqCst), 2);
}

#[test]
fn a_permanent_error_is_not_retried() {
    let calls = Calls::default();
    let pool = pool(&calls, 3, Duration::from_millis(1));
    let handle = pool.submit::<Broken>(()).unwrap();
    while !handle.is_settled() {
        std::thread::yield_now();
    }
    assert_eq!(handle.attempts(), 1);
    assert!(matches!(handle.wait(), Err(TaskError::Failed { .. })));
    assert_eq!(calls.count.load(Ordering::SeqCst), 1);
}

#[test]
fn terminate_settles_a_task_waiting_for_its_retry() {
    let calls = Calls::default();
    let pool = pool(&calls, 3, Duration::from_secs(3600));
    let handle = pool.submit::<Flaky>(5).unwrap();
    while calls.count.load(Ordering::SeqCst) == 0 {
        std::thread::yield_now();
    }
    pool.terminate();
    assert_eq!(handle.wait(), Err(TaskError::Terminated));
    pool.join();
}

#[test]
fn a_closed_pool_still_runs_the_retries_it_owes() {
    let calls = Calls::default();
    let pool = pool(&calls, 3, Duration::from_millis(20));
    let handle = pool.submit::<Flaky>(2).unwrap();
    while calls.count.load(Ordering::SeqCst) == 0 {
        std::thread::yield_now();
    }
    pool.close();
    assert_eq!(handle.wait(), Ok(2));
    pool.join();
}

#[test]
fn a_panic_is_not_retried() {
    let pool = WorkerPool::builder(handlers())
        .workers(1)
        .max_retries(3)
        .retry_delay(Duration::from_millis(1))
        .build()
        .unwrap();
    let handle = pool.submit::<Panic>("boom".into()).unwrap();
    while !handle.is_settled() {
        std::thread::yield_now();
    }
    assert_eq!(handle.attempts(), 1);
    assert!(matches!(handle.wait(), Err(TaskError::Panicked { .. })));
}
