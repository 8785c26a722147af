//! Closing, terminating and dropping a pool: every task settles exactly once,
//! and submissions afterwards fail with a clear error.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use protozoa_workers::{
    Handlers, Lifecycle, SubmitErrorReason, TaskError, WorkerPool, WorkerState,
};

#[test]
fn terminate_with_ten_thousand_queued_tasks_settles_all_of_them_at_once() {
    let pool = WorkerPool::builder(handlers()).workers(2).build().unwrap();
    let blockers: Vec<_> = (0..2)
        .map(|_| pool.submit::<Sleep>(60_000).unwrap())
        .collect();
    let queued: Vec<_> = (0..10_000)
        .map(|n| pool.submit::<Double>(n).unwrap())
        .collect();

    pool.terminate();

    // Settled by terminate() itself, before it returned: nothing to wait for.
    assert!(queued.iter().all(|handle| handle.is_settled()));
    assert!(blockers.iter().all(|handle| handle.is_settled()));
    for handle in queued {
        assert_eq!(handle.wait().unwrap_err(), TaskError::Terminated);
    }
    for handle in blockers {
        assert_eq!(handle.wait().unwrap_err(), TaskError::Terminated);
    }
}

#[test]
fn submitting_after_terminate_fails_and_hands_the_input_back() {
    let pool = WorkerPool::builder(handlers()).workers(1).build().unwrap();
    pool.terminate();
    let refused = pool.submit::<Double>(9).unwrap_err();
    assert_eq!(refused.reason(), &SubmitErrorReason::Terminated);
    assert_eq!(refused.into_input(), 9);
    assert_eq!(pool.status().lifecycle, Lifecycle::Terminated);
}

#[test]
fn close_lets_queued_and_running_tasks_finish_then_stops_the_workers() {
    let pool = WorkerPool::builder(handlers()).workers(2).build().unwrap();
    let handles: Vec<_> = (0..1_000)
        .map(|n| pool.submit::<Double>(n).unwrap())
        .collect();
    let slow = pool.submit::<Sleep>(50).unwrap();

    pool.close();
    let refused = pool.submit::<Double>(1).unwrap_err();
    assert_eq!(refused.reason(), &SubmitErrorReason::Closed);

    for (n, handle) in handles.into_iter().enumerate() {
        assert_eq!(handle.wait().unwrap(), 2 * n as u64);
    }
    assert!(!slow.wait().unwrap());
    pool.join();
    assert!(pool
        .status()
        .workers
        .iter()
        .all(|worker| worker.state == WorkerState::Stopped));
}

#[test]
fn dropping_the_last_pool_handle_closes_it_and_queued_tasks_still_finish() {
    let pool = WorkerPool::builder(handlers()).workers(1).build().unwrap();
    let slow = pool.submit::<Sleep>(30).unwrap();
    let after: Vec<_> = (0..100)
        .map(|n| pool.submit::<Double>(n).unwrap())
        .collect();
    drop(pool);
    assert!(!slow.wait().unwrap());
    for (n, handle) in after.into_iter().enumerate() {
        assert_eq!(handle.wait().unwrap(), 2 * n as u64);
    }
}

#[test]
fn dropping_a_handle_leaves_its_task_running() {
    let ran = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&ran);
    let handlers = Handlers::stateless().handler::<Double>(move |_, n, _| {
        counter.fetch_add(1, Ordering::SeqCst);
        Ok(n)
    });
    let pool = WorkerPool::builder(handlers).workers(1).build().unwrap();
    drop(pool.submit::<Double>(1).unwrap());
    pool.close();
    pool.join();
    assert_eq!(ran.load(Ordering::SeqCst), 1);
}

#[test]
fn terminate_settles_async_tasks_in_flight() {
    let pool = WorkerPool::builder(handlers()).workers(1).build().unwrap();
    let handles: Vec<_> = (0..4)
        .map(|_| pool.submit::<AsyncDelay>(60_000).unwrap())
        .collect();
    while pool.status().workers[0].running.len() < 4 {
        std::thread::yield_now();
    }
    pool.terminate();
    for handle in handles {
        assert_eq!(handle.wait().unwrap_err(), TaskError::Terminated);
    }
    pool.join();
}

#[test]
fn status_shows_each_worker_busy_or_idle_and_the_queue() {
    let pool = WorkerPool::builder(handlers()).workers(2).build().unwrap();
    let busy = pool.submit::<Sleep>(60_000).unwrap();
    while busy.started().is_none() {
        std::thread::yield_now();
    }
    let status = pool.status();
    assert_eq!(status.workers.len(), 2);
    let running: Vec<_> = status
        .workers
        .iter()
        .filter(|w| w.state == WorkerState::Busy)
        .collect();
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].running, vec![busy.id()]);
    assert_eq!(status.lifecycle, Lifecycle::Open);
    busy.cancel();
}

#[test]
fn status_counts_queued_tasks() {
    let pool = WorkerPool::builder(handlers()).workers(1).build().unwrap();
    let blocker = pool.submit::<Sleep>(60_000).unwrap();
    while blocker.started().is_none() {
        std::thread::yield_now();
    }
    let queued: Vec<_> = (0..5).map(|n| pool.submit::<Double>(n).unwrap()).collect();
    assert_eq!(pool.status().queued, 5);
    blocker.cancel();
    for handle in queued {
        handle.wait().unwrap();
    }
    pool.close();
    pool.join();
    assert_eq!(pool.status().workers[0].tasks_done, 6);
}

#[test]
fn reset_clears_every_workers_state() {
    let handlers = handlers().on_reset(|count| *count = 100);
    let pool = WorkerPool::builder(handlers).workers(1).build().unwrap();
    pool.submit::<Count>(()).unwrap().wait().unwrap();
    pool.reset().unwrap().wait().unwrap();
    assert_eq!(pool.submit::<Count>(()).unwrap().wait().unwrap(), 101);
}

#[test]
fn initialize_builds_every_workers_state_again() {
    let pool = WorkerPool::builder(handlers()).workers(2).build().unwrap();
    for _ in 0..10 {
        pool.submit::<Count>(()).unwrap().wait().unwrap();
    }
    pool.initialize().unwrap().wait().unwrap();
    // Whichever worker runs it, its count starts from a fresh state.
    assert_eq!(pool.submit::<Count>(()).unwrap().wait().unwrap(), 1);
}

#[test]
fn a_reset_pending_when_the_pool_terminates_settles_as_terminated() {
    let pool = WorkerPool::builder(handlers()).workers(1).build().unwrap();
    let blocker = pool.submit::<Sleep>(200).unwrap();
    while blocker.started().is_none() {
        std::thread::yield_now();
    }
    let reset = pool.reset().unwrap();
    pool.terminate();
    assert_eq!(reset.wait().unwrap_err(), TaskError::Terminated);
    let _ = blocker.wait();
}

#[test]
fn join_waits_for_the_workers_after_close() {
    let pool = WorkerPool::builder(handlers()).workers(2).build().unwrap();
    let slow = pool.submit::<Sleep>(20).unwrap();
    pool.close();
    pool.join();
    assert!(slow.is_settled());
    assert!(pool
        .status()
        .workers
        .iter()
        .all(|worker| worker.state == WorkerState::Stopped));
}

#[test]
fn metrics_count_outcomes_and_measure_latency_per_task_type() {
    let pool = WorkerPool::builder(handlers()).workers(2).build().unwrap();
    for n in 0..100 {
        pool.submit::<Double>(n).unwrap().wait().unwrap();
    }
    for _ in 0..3 {
        let _ = pool.submit::<Fail>("no".into()).unwrap().wait();
    }
    let _ = pool.submit::<Panic>("no".into()).unwrap().wait();
    let _ = pool
        .task::<Sleep>(10_000)
        .timeout(Duration::from_millis(20))
        .submit()
        .unwrap()
        .wait();
    // Workers publish their measurements when idle; after join, all are in.
    pool.close();
    pool.join();

    // Workers publish their figures every 10 ms or when idle; after join,
    // every task is included.
    pool.close();
    pool.join();
    let metrics = pool.metrics();
    let double = &metrics.task_types["double"];
    assert_eq!(double.outcomes.done, 100);
    assert_eq!(double.run_time.count(), 100);
    assert!(double.run_time.p50() <= double.run_time.p99());
    assert!(double.run_time.p99() <= double.run_time.max());
    assert_eq!(metrics.task_types["fail"].outcomes.failed, 3);
    assert_eq!(metrics.task_types["panic"].outcomes.panicked, 1);
    assert_eq!(metrics.task_types["sleep"].outcomes.timed_out, 1);
    assert!(metrics.utilization > 0.0 && metrics.utilization <= 1.0);
}
