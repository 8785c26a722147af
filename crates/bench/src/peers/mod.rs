//! The pools under test, one adapter module each, all driven through [`Contender`].
//!
//! An adapter uses its pool the way that pool's own users would (its documented fast path),
//! so the comparison is of pools, not of glue. Adapters of pools that take closures share the
//! helpers at the bottom of this module; a pool that does something its own way (rayon's
//! parallel iterators for a batch, tokio's join handles) says so in its module.
//!
//! Every contender runs the same [`TinyWork`] and sums the results, and the scenarios check
//! that sum: a contender that loses or duplicates a result fails the run.
//!
//! The process-worker floors of the `ipc` and `transfer` scenarios have their own traits in
//! those scenarios; their adapters live here too ([`socket_floor`], [`socket_copy`]).

pub mod crossbeam_floor;
pub mod one_wake_floor;
pub mod ours;
pub mod ours_process;
pub mod rayon;
pub mod socket_copy;
pub mod socket_floor;
pub mod threadpool;
pub mod tokio;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::clock;
use crate::harness::Entry;
use crate::work::{self, TinyWork};

/// One thread pool, as the `dispatch`, `batch`, `wake` and `mixed` scenarios drive it.
pub trait Contender {
    /// Submits `count` tiny tasks (inputs `0..count`) one at a time from this thread, waits for
    /// every result, and returns the wrapping sum of the results.
    fn run_each(&mut self, count: usize) -> Result<u64>;

    /// Submits `count` tiny tasks as batches of `batch`, each gathered back in submission order,
    /// waits for every batch, and returns the wrapping sum of the results.
    fn run_batches(&mut self, count: usize, batch: usize) -> Result<u64>;

    /// Submits one task that computes for `spin.duration` and returns at once; the returned
    /// [`Pending`] tells when it settled.
    fn submit_spin(&mut self, spin: Spin) -> Result<Box<dyn Pending>>;
}

/// The priority class of a task in the `mixed` scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Frame work: must finish by its deadline.
    High,
    /// Background work: as much as the cores have left.
    Low,
}

/// A task that computes for a while, with a class and an optional deadline.
///
/// Pools without priorities or deadlines run it first-in first-out and ignore both.
#[derive(Clone, Copy, Debug)]
pub struct Spin {
    pub duration: Duration,
    pub class: Class,
    pub deadline: Option<Instant>,
}

/// How a submitted task settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    /// It ran and finished at this instant.
    Finished(Instant),
    /// The pool dropped it unrun because its deadline passed (only ours drops tasks).
    Expired,
    /// It failed, was cancelled or terminated: the benchmark's work never fails, so this is
    /// counted as a miss.
    Failed,
}

/// A submitted task, polled without blocking.
pub trait Pending {
    /// `Some` once the task has settled.
    fn poll(&mut self) -> Option<Settled>;
}

/// The contenders of the thread-pool scenarios, all with `workers` worker threads, ours first.
pub fn contenders(workers: usize, work: TinyWork) -> Vec<Entry<dyn Contender>> {
    vec![
        Entry::new(ours::NAME, move || {
            Ok(Box::new(ours::Ours::new(workers, work)?) as _)
        }),
        Entry::new(self::rayon::NAME, move || {
            Ok(Box::new(self::rayon::Rayon::new(workers, work)?) as _)
        }),
        Entry::new(self::threadpool::NAME, move || {
            Ok(Box::new(self::threadpool::Threadpool::new(workers, work)) as _)
        }),
        Entry::new(self::tokio::NAME, move || {
            Ok(Box::new(self::tokio::Tokio::new(workers, work)?) as _)
        }),
        Entry::new(crossbeam_floor::NAME, move || {
            Ok(Box::new(crossbeam_floor::CrossbeamFloor::new(workers, work)?) as _)
        }),
    ]
}

/// The wrapping sum of the tiny work over inputs `0..count`: what every contender must return.
pub fn expected_sum(work: TinyWork, count: usize) -> u64 {
    (0..count as u64).fold(0u64, |sum, input| sum.wrapping_add(work.run(input)))
}

// ----------------------------------------------------------------------------------------------
// Helpers for pools that run closures.

/// A pool that runs closures on its worker threads.
pub trait Spawn {
    fn spawn<F: FnOnce() + Send + 'static>(&self, job: F);
}

/// `run_each` for a closure pool: one closure per task, results back on one channel.
pub fn each_through_channel(pool: &impl Spawn, work: TinyWork, count: usize) -> Result<u64> {
    let (results, received) = crossbeam_channel::unbounded();

    // Submit every task; each sends its result back.
    for input in 0..count as u64 {
        let results = results.clone();
        pool.spawn(move || {
            let _ = results.send(work.run(input));
        });
    }
    drop(results);

    // Wait for every result.
    let mut sum = 0u64;
    for _ in 0..count {
        sum = sum.wrapping_add(received.recv().context("a task's result never arrived")?);
    }
    Ok(sum)
}

/// `run_batches` for a closure pool without a batch API: one closure per item, each result
/// put back in its place in its batch.
pub fn batches_through_channel(
    pool: &impl Spawn,
    work: TinyWork,
    count: usize,
    batch: usize,
) -> Result<u64> {
    let (results, received) = crossbeam_channel::unbounded::<(usize, u64)>();

    // Submit every item of every batch.
    for input in 0..count {
        let results = results.clone();
        pool.spawn(move || {
            let _ = results.send((input, work.run(input as u64)));
        });
    }
    drop(results);

    // Gather each batch's results in submission order.
    let mut batches: Vec<Vec<u64>> = (0..count.div_ceil(batch))
        .map(|b| vec![0; batch.min(count - b * batch)])
        .collect();
    for _ in 0..count {
        let (input, value) = received.recv().context("a task's result never arrived")?;
        batches[input / batch][input % batch] = value;
    }
    Ok(sum_batches(&batches))
}

/// The wrapping sum over gathered batches.
pub fn sum_batches(batches: &[Vec<u64>]) -> u64 {
    batches
        .iter()
        .flatten()
        .fold(0u64, |sum, value| sum.wrapping_add(*value))
}

/// `submit_spin` for a closure pool: the closure stamps its finishing time into a shared slot.
pub fn spin_through(pool: &impl Spawn, spin: Spin) -> Box<dyn Pending> {
    let (job, pending) = spin_job(spin);
    pool.spawn(job);
    pending
}

/// The closure of a [`Spin`] task and the [`Pending`] that watches it.
pub fn spin_job(spin: Spin) -> (impl FnOnce() + Send + 'static, Box<dyn Pending>) {
    let slot = Arc::new(AtomicU64::new(NOT_FINISHED));
    let stamp = Arc::clone(&slot);
    let job = move || {
        work::spin_for(spin.duration);
        stamp.store(clock::since_epoch(), Ordering::Release);
    };
    (job, Box::new(SlotPending(slot)))
}

/// The slot value of a task that has not finished yet.
const NOT_FINISHED: u64 = u64::MAX;

struct SlotPending(Arc<AtomicU64>);

impl Pending for SlotPending {
    fn poll(&mut self) -> Option<Settled> {
        match self.0.load(Ordering::Acquire) {
            NOT_FINISHED => None,
            stamp => Some(Settled::Finished(clock::at(stamp))),
        }
    }
}

/// Checks a contender's sum against the expected one.
pub fn check_sum(got: u64, expected: u64) -> Result<()> {
    if got != expected {
        bail!("wrong results: sum {got:#x}, expected {expected:#x} (a result was lost or wrong)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs each closure at once on the calling thread.
    struct Inline;

    impl Spawn for Inline {
        fn spawn<F: FnOnce() + Send + 'static>(&self, job: F) {
            job();
        }
    }

    fn work() -> TinyWork {
        TinyWork::calibrate()
    }

    #[test]
    fn channel_helpers_return_the_expected_sum() {
        let work = work();
        let expected = expected_sum(work, 1_000);
        assert_eq!(
            each_through_channel(&Inline, work, 1_000).unwrap(),
            expected
        );
        assert_eq!(
            batches_through_channel(&Inline, work, 1_000, 64).unwrap(),
            expected
        );
    }

    #[test]
    fn spin_pending_settles_after_the_job_ran() {
        let spin = Spin {
            duration: Duration::from_micros(10),
            class: Class::Low,
            deadline: None,
        };
        let (job, mut pending) = spin_job(spin);
        assert_eq!(pending.poll(), None);
        job();
        assert!(matches!(pending.poll(), Some(Settled::Finished(_))));
    }
}
