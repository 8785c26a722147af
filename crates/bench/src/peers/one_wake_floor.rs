//! The one-wake floor of the `wake` scenario: the least that any pool which sleeps while idle
//! can do for a burst. The whole burst is one job for one parked thread: one wake-up, no queue
//! operation or hand-off per task, and the submitter looks for the sum with yields (as our
//! blocking wait does) instead of parking, so no second wake-up either.
//!
//! Its latency is the machine's: the cost of waking one thread that slept through the idle
//! time, plus the burst's work on cold caches. A pool's latency target below this floor's
//! cannot be met on that machine without spinning while idle.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use anyhow::{Context, Result};
use crossbeam_channel::Sender;

use super::{Contender, Pending, Spawn, Spin};
use crate::work::TinyWork;

pub const NAME: &str = "one-wake-floor";

type Job = Box<dyn FnOnce() + Send>;

/// One thread taking whole bursts as single jobs.
pub struct OneWakeFloor {
    jobs: Option<Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    work: TinyWork,
}

impl OneWakeFloor {
    pub fn new(work: TinyWork) -> Result<Self> {
        let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
        let thread = thread::Builder::new()
            .name("one-wake-floor".to_string())
            .spawn(move || queue.into_iter().for_each(|job| job()))
            .context("starting the one-wake floor's thread")?;
        Ok(OneWakeFloor {
            jobs: Some(jobs),
            thread: Some(thread),
            work,
        })
    }
}

impl Spawn for OneWakeFloor {
    fn spawn<F: FnOnce() + Send + 'static>(&self, job: F) {
        if let Some(jobs) = &self.jobs {
            // The thread holds the receiver until the sender is dropped, so this cannot fail.
            let _ = jobs.send(Box::new(job));
        }
    }
}

impl Contender for OneWakeFloor {
    /// The `count` tiny tasks as one job; the sum is looked for between yields.
    fn run_each(&mut self, count: usize) -> Result<u64> {
        let result = Arc::new((AtomicBool::new(false), AtomicU64::new(0)));
        let slot = Arc::clone(&result);
        let work = self.work;
        self.spawn(move || {
            let sum = (0..count as u64).fold(0u64, |sum, input| sum.wrapping_add(work.run(input)));
            slot.1.store(sum, Ordering::Relaxed);
            slot.0.store(true, Ordering::Release);
        });
        while !result.0.load(Ordering::Acquire) {
            thread::yield_now();
        }
        Ok(result.1.load(Ordering::Relaxed))
    }

    /// A batch is no different for a single thread: the whole run is one job.
    fn run_batches(&mut self, count: usize, _batch: usize) -> Result<u64> {
        self.run_each(count)
    }

    fn submit_spin(&mut self, spin: Spin) -> Result<Box<dyn Pending>> {
        Ok(super::spin_through(self, spin))
    }
}

impl Drop for OneWakeFloor {
    /// Closes the channel, lets the thread finish what is queued, and joins it.
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::expected_sum;

    #[test]
    fn a_burst_as_one_job_returns_every_result() {
        let work = TinyWork::calibrate();
        let mut floor = OneWakeFloor::new(work).unwrap();
        assert_eq!(floor.run_each(64).unwrap(), expected_sum(work, 64));
        assert_eq!(floor.run_each(0).unwrap(), expected_sum(work, 0));
    }
}
