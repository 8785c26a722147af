//! A pool that grows to `max_workers` while tasks wait and shrinks back to
//! `min_workers` once workers have been idle for `idle_timeout`.

mod common;

use std::time::Duration;

use common::*;
use protozoa_workers::WorkerPool;

#[test]
fn the_pool_grows_to_max_workers_under_load_and_shrinks_back_to_min_after_idle_timeout() {
    let probe = Probe::default();
    let pool = WorkerPool::builder(probe.handlers())
        .min_workers(1)
        .max_workers(4)
        .idle_timeout(Duration::from_millis(20))
        .build()
        .unwrap();
    assert_eq!(pool.workers(), 1);

    // Four holding tasks need four workers at once.
    let held: Vec<_> = (0..4).map(|_| pool.submit::<Hold>(()).unwrap()).collect();
    probe.until_holding(4);
    assert_eq!(pool.status().live_workers, 4);
    assert_eq!(pool.metrics().live_workers, 4);

    // Never more than the maximum.
    let extra = pool.submit::<Record>(1).unwrap();
    assert_eq!(pool.workers(), 4);
    probe.latch.open();
    held.into_iter().for_each(|handle| handle.wait().unwrap());
    extra.wait().unwrap();

    // Idle workers above the minimum leave.
    while pool.workers() > 1 {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(pool.status().live_workers, 1);

    // The pool still works, and grows again.
    assert_eq!(pool.submit::<Double>(21).unwrap().wait(), Ok(42));
    pool.close();
    pool.join();
}

#[test]
fn a_fixed_pool_neither_grows_nor_shrinks() {
    let probe = Probe::default();
    let pool = WorkerPool::builder(probe.handlers())
        .workers(2)
        .idle_timeout(Duration::from_millis(1))
        .build()
        .unwrap();
    let held: Vec<_> = (0..3).map(|_| pool.submit::<Hold>(()).unwrap()).collect();
    probe.until_holding(2);
    assert_eq!(pool.workers(), 2);
    probe.latch.open();
    held.into_iter().for_each(|handle| handle.wait().unwrap());
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(pool.workers(), 2);
}
