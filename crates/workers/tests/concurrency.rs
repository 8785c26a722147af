//! Many submitters at once: every task settles exactly once with its own value.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::*;
use protozoa_workers::{Handlers, TaskErrorKind, WorkerPool};

#[test]
fn a_hundred_thousand_tasks_from_eight_threads_each_settle_once_with_the_right_value() {
    let runs = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&runs);
    let handlers = Handlers::stateless().handler::<Double>(move |_, n, _| {
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(n * 2)
    });
    let pool = WorkerPool::builder(handlers).workers(4).build().unwrap();

    let submitters: Vec<_> = (0..8_u64)
        .map(|thread| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let base = thread * 12_500;
                let handles: Vec<_> = (base..base + 12_500)
                    .map(|n| pool.submit::<Double>(n).unwrap())
                    .collect();
                let mut ids = Vec::with_capacity(handles.len());
                for (n, handle) in (base..).zip(handles) {
                    ids.push(handle.id());
                    assert_eq!(handle.wait().unwrap(), n * 2);
                }
                ids
            })
        })
        .collect();

    let mut ids = HashSet::new();
    for submitter in submitters {
        for id in submitter.join().unwrap() {
            assert!(ids.insert(id), "duplicate task id {id}");
        }
    }
    assert_eq!(ids.len(), 100_000);
    // Each handler ran exactly once: no task was lost or run twice.
    assert_eq!(runs.load(Ordering::Relaxed), 100_000);
}

#[test]
fn close_racing_submitters_strands_no_task() {
    for _ in 0..20 {
        let pool = WorkerPool::builder(handlers()).workers(2).build().unwrap();
        let submitters: Vec<_> = (0..4)
            .map(|_| {
                let pool = pool.clone();
                std::thread::spawn(move || {
                    let mut accepted = Vec::new();
                    for n in 0..2_000 {
                        match pool.submit::<Double>(n) {
                            Ok(handle) => accepted.push((n, handle)),
                            Err(refused) => assert_eq!(refused.into_input(), n),
                        }
                    }
                    accepted
                })
            })
            .collect();
        std::thread::yield_now();
        pool.close();
        for submitter in submitters {
            for (n, handle) in submitter.join().unwrap() {
                // Accepted before the close took effect: it runs to the end.
                assert_eq!(handle.wait().unwrap(), n * 2);
            }
        }
        pool.join();
    }
}

#[test]
fn terminate_racing_submitters_leaves_every_accepted_task_settled() {
    for _ in 0..20 {
        let pool = WorkerPool::builder(handlers()).workers(2).build().unwrap();
        let submitters: Vec<_> = (0..4)
            .map(|_| {
                let pool = pool.clone();
                std::thread::spawn(move || {
                    (0..2_000)
                        .filter_map(|n| pool.submit::<Double>(n).ok())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        std::thread::yield_now();
        pool.terminate();
        for submitter in submitters {
            for handle in submitter.join().unwrap() {
                match handle.wait() {
                    Ok(_) => {}
                    Err(error) => assert_eq!(error.kind(), TaskErrorKind::Terminated),
                }
            }
        }
    }
}
