//! Back-pressure: a bounded queue refuses or makes submitters wait, and never
//! strands a waiting submission.

mod common;

use common::*;
use protozoa_workers::{SubmitErrorReason, WorkerPool};

/// One worker held by a `Hold` task, and a queue of two places.
fn full_pool(probe: &Probe) -> WorkerPool {
    let pool = WorkerPool::builder(probe.handlers())
        .workers(1)
        .max_queue_size(Some(2))
        .build()
        .unwrap();
    drop(pool.submit::<Hold>(()).unwrap());
    probe.until_holding(1);
    for n in 0..2 {
        drop(pool.submit::<Record>(n).unwrap());
    }
    pool
}

#[test]
fn try_submit_on_a_full_queue_is_refused_with_the_input_back() {
    let probe = Probe::default();
    let pool = full_pool(&probe);
    let error = pool.task::<Record>(7).try_submit().unwrap_err();
    assert_eq!(error.reason(), &SubmitErrorReason::QueueFull { limit: 2 });
    assert_eq!(error.into_input(), 7);
    let error = pool.submit::<Record>(8).unwrap_err();
    assert_eq!(error.into_input(), 8);
    probe.latch.open();
}

#[test]
fn submit_async_waits_for_room_and_then_submits() {
    let probe = Probe::default();
    let pool = full_pool(&probe);
    let submitter = {
        let pool = pool.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            runtime.block_on(async {
                let handle = pool.task::<Record>(9).submit_async().await.unwrap();
                handle.await.unwrap()
            })
        })
    };

    // It cannot finish while the queue is full and the worker held.
    while pool.status().queued < 2 {
        std::thread::yield_now();
    }
    assert!(!submitter.is_finished());
    probe.latch.open();
    assert_eq!(submitter.join().unwrap(), 9);
    assert_eq!(probe.order(), [0, 1, 9]);
}

#[test]
fn terminate_hands_a_waiting_async_submission_its_input_back() {
    let probe = Probe::default();
    let pool = full_pool(&probe);
    let submitter = {
        let pool = pool.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            runtime.block_on(pool.task::<Record>(9).submit_async())
        })
    };
    pool.terminate();
    let error = submitter.join().unwrap().unwrap_err();
    assert_eq!(error.reason(), &SubmitErrorReason::Terminated);
    assert_eq!(error.into_input(), 9);
    probe.latch.open();
}

#[test]
fn an_unbounded_queue_takes_ten_thousand_tasks() {
    let probe = Probe::default();
    let pool = WorkerPool::builder(probe.handlers())
        .workers(1)
        .build()
        .unwrap();
    drop(pool.submit::<Hold>(()).unwrap());
    probe.until_holding(1);
    let handles: Vec<_> = (0..10_000)
        .map(|n| pool.submit::<Record>(n).unwrap())
        .collect();
    probe.latch.open();
    for (n, handle) in handles.into_iter().enumerate() {
        assert_eq!(handle.wait(), Ok(n as u64));
    }
}
