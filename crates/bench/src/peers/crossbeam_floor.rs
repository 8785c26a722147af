//! The floor: the least machinery that can run tasks on other threads and hand their results
//! back. Boxed jobs go to the workers over one crossbeam channel; results come back on another.
//!
//! It has no task ids, times, errors, panics, cancellation or metrics: whatever our pool costs
//! above this is the price of those.

use std::thread::{self, JoinHandle};

use anyhow::{Context, Result};
use crossbeam_channel::{Receiver, Sender};

use super::{Contender, Pending, Spawn, Spin};
use crate::work::TinyWork;

pub const NAME: &str = "crossbeam-floor";

type Job = Box<dyn FnOnce() + Send>;

/// `workers` threads taking boxed jobs from one unbounded channel.
pub struct CrossbeamFloor {
    jobs: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
    workers: usize,
    work: TinyWork,
}

impl CrossbeamFloor {
    pub fn new(workers: usize, work: TinyWork) -> Result<Self> {
        let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
        let threads = (0..workers)
            .map(|i| {
                let queue = queue.clone();
                thread::Builder::new()
                    .name(format!("floor-{i}"))
                    .spawn(move || run_worker(queue))
                    .context("starting a floor worker thread")
            })
            .collect::<Result<_>>()?;
        Ok(CrossbeamFloor {
            jobs: Some(jobs),
            threads,
            workers,
            work,
        })
    }
}

/// A worker: runs jobs until the channel closes.
fn run_worker(queue: Receiver<Job>) {
    for job in queue {
        job();
    }
}

impl Spawn for CrossbeamFloor {
    fn spawn<F: FnOnce() + Send + 'static>(&self, job: F) {
        if let Some(jobs) = &self.jobs {
            // The workers hold the receiver until the sender is dropped, so this cannot fail.
            let _ = jobs.send(Box::new(job));
        }
    }
}

impl Contender for CrossbeamFloor {
    fn run_each(&mut self, count: usize) -> Result<u64> {
        super::each_through_channel(self, self.work, count)
    }

    /// A batch is split into one chunk per worker, each chunk one job: one wake-up per worker
    /// per batch, the least a batch can cost.
    fn run_batches(&mut self, count: usize, batch: usize) -> Result<u64> {
        let work = self.work;
        let chunk = batch.div_ceil(self.workers).max(1);
        let (results, received) = crossbeam_channel::unbounded::<(usize, Vec<u64>)>();

        // Submit each batch as one job per chunk.
        let mut chunks = 0;
        for start in (0..count).step_by(batch) {
            let end = (start + batch).min(count);
            for chunk_start in (start..end).step_by(chunk) {
                let inputs = chunk_start as u64..(chunk_start + chunk).min(end) as u64;
                let results = results.clone();
                self.spawn(move || {
                    let values = inputs.map(|input| work.run(input)).collect();
                    let _ = results.send((chunk_start, values));
                });
                chunks += 1;
            }
        }
        drop(results);

        // Gather every chunk back into its batch, in submission order.
        let mut batches: Vec<Vec<u64>> = (0..count)
            .step_by(batch)
            .map(|start| vec![0; batch.min(count - start)])
            .collect();
        for _ in 0..chunks {
            let (start, values) = received.recv().context("a chunk's results never arrived")?;
            let offset = start % batch;
            batches[start / batch][offset..offset + values.len()].copy_from_slice(&values);
        }
        Ok(super::sum_batches(&batches))
    }

    fn submit_spin(&mut self, spin: Spin) -> Result<Box<dyn Pending>> {
        Ok(super::spin_through(self, spin))
    }
}

impl Drop for CrossbeamFloor {
    /// Closes the channel, lets the workers finish what is queued, and joins them.
    fn drop(&mut self) {
        drop(self.jobs.take());
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::expected_sum;

    #[test]
    fn floor_batches_gather_every_result() {
        let work = TinyWork::calibrate();
        let mut floor = CrossbeamFloor::new(2, work).unwrap();
        // 1000 is not a multiple of 64: the last batch is short.
        assert_eq!(
            floor.run_batches(1_000, 64).unwrap(),
            expected_sum(work, 1_000)
        );
        assert_eq!(floor.run_each(1_000).unwrap(), expected_sum(work, 1_000));
    }
}
