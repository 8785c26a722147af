//! Priority classes, deadlines and supersede keys: which queued task runs
//! next, which never runs, and what the metrics count.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use protozoa_workers::{Priority, TaskError, WorkerPool};

/// A one-worker pool whose worker is held by a `Hold` task until the latch opens.
fn held_pool(probe: &Probe) -> WorkerPool {
    let pool = WorkerPool::builder(probe.handlers())
        .workers(1)
        .build()
        .unwrap();
    drop(pool.submit::<Hold>(()).unwrap());
    probe.until_holding(1);
    pool
}

#[test]
fn higher_classes_run_first_and_each_class_in_submission_order() {
    let probe = Probe::default();
    let pool = held_pool(&probe);
    let classes = [
        (1, Priority::LOW),
        (2, Priority::NORMAL),
        (3, Priority::HIGH),
        (4, Priority::CRITICAL),
        (5, Priority::HIGH),
        (6, Priority::NORMAL),
    ];
    let handles: Vec<_> = classes
        .iter()
        .map(|&(n, priority)| pool.task::<Record>(n).priority(priority).submit().unwrap())
        .collect();
    probe.latch.open();
    for handle in handles {
        handle.wait().unwrap();
    }
    assert_eq!(probe.order(), [4, 3, 5, 2, 6, 1]);
}

#[test]
fn within_a_class_the_earliest_deadline_runs_first_and_tasks_without_one_last() {
    let probe = Probe::default();
    let pool = held_pool(&probe);
    let now = Instant::now();
    let submit = |n: u64, deadline: Option<Duration>| {
        let request = pool.task::<Record>(n).priority(Priority::HIGH);
        match deadline {
            Some(after) => request.deadline(now + after).run_late().submit(),
            None => request.submit(),
        }
        .unwrap()
    };
    let handles = [
        submit(1, None),
        submit(2, Some(Duration::from_secs(200))),
        submit(3, Some(Duration::from_secs(100))),
    ];
    probe.latch.open();
    for handle in handles {
        handle.wait().unwrap();
    }
    assert_eq!(probe.order(), [3, 2, 1]);
}

#[test]
fn a_priority_storm_still_finishes_low_priority_tasks() {
    let probe = Probe::default();
    let pool = WorkerPool::builder(probe.handlers())
        .workers(2)
        .build()
        .unwrap();
    for _ in 0..2 {
        drop(pool.submit::<Hold>(()).unwrap());
    }
    probe.until_holding(2);

    // A deep queue of critical work, and more arriving all the time.
    let flood = || {
        for _ in 0..64 {
            drop(
                pool.task::<Double>(1)
                    .priority(Priority::CRITICAL)
                    .submit()
                    .unwrap(),
            );
        }
    };
    (0..300).for_each(|_| flood());
    let low: Vec<_> = (0..20)
        .map(|n| {
            pool.task::<Record>(n)
                .priority(Priority::LOW)
                .submit()
                .unwrap()
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let storm = {
        let (pool, stop) = (pool.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                for _ in 0..64 {
                    drop(
                        pool.task::<Double>(1)
                            .priority(Priority::CRITICAL)
                            .submit()
                            .unwrap(),
                    );
                }
            }
        })
    };
    probe.latch.open();

    // Every low-priority task finishes while critical work still waits.
    for handle in low {
        handle.wait().unwrap();
    }
    assert!(pool.status().queued > 0, "the storm had not passed");
    stop.store(true, Ordering::SeqCst);
    storm.join().unwrap();
    assert_eq!(probe.order().len(), 20);
}

#[test]
fn a_task_still_queued_at_its_deadline_expires_without_running() {
    let probe = Probe::default();
    let pool = held_pool(&probe);
    let expiring = pool
        .task::<Record>(1)
        .deadline(Instant::now() + Duration::from_millis(5))
        .submit()
        .unwrap();

    // The watchdog settles it while the worker is still held.
    let error = expiring.wait().unwrap_err();
    assert!(matches!(error, TaskError::Expired { ref task } if task == "record"));
    probe.latch.open();
    pool.close();
    pool.join();
    assert!(probe.order().is_empty());
    let totals = pool.metrics().totals();
    assert_eq!(totals.expired, 1);
    assert_eq!(pool.metrics().missed_deadlines(), 1);
}

#[test]
fn a_task_submitted_to_run_late_runs_after_its_deadline_and_counts_as_late() {
    let probe = Probe::default();
    let pool = held_pool(&probe);
    let late = pool
        .task::<Record>(7)
        .deadline(Instant::now())
        .run_late()
        .submit()
        .unwrap();
    probe.latch.open();
    assert_eq!(late.wait().unwrap(), 7);
    pool.close();
    pool.join();
    let totals = pool.metrics().totals();
    assert_eq!((totals.expired, totals.finished_late), (0, 1));
}

#[test]
fn a_queued_task_is_superseded_by_a_newer_one_with_its_key() {
    let probe = Probe::default();
    let pool = held_pool(&probe);
    let older = pool.task::<Record>(1).key("forces").submit().unwrap();
    let other_key = pool.task::<Record>(2).key("lod").submit().unwrap();
    let newer = pool.task::<Record>(3).key("forces").submit().unwrap();
    assert!(matches!(
        older.wait().unwrap_err(),
        TaskError::Superseded { .. }
    ));
    probe.latch.open();
    assert_eq!(other_key.wait().unwrap(), 2);
    assert_eq!(newer.wait().unwrap(), 3);
    assert_eq!(probe.order(), [2, 3]);
}

#[test]
fn a_running_task_is_not_superseded() {
    let probe = Probe::default();
    let pool = WorkerPool::builder(probe.handlers())
        .workers(2)
        .build()
        .unwrap();
    let running = pool.task::<Hold>(()).key("frame").submit().unwrap();
    probe.until_holding(1);
    let newer = pool.task::<Hold>(()).key("frame").submit().unwrap();
    probe.until_holding(2);
    probe.latch.open();
    assert_eq!(running.wait(), Ok(()));
    assert_eq!(newer.wait(), Ok(()));
}
