//! protozoa-workers: our pool, through its public API as its users call it.
//!
//! The tiny work and the spinning are registered task types; each task is one
//! `pool.submit::<T>(input)`, its handle kept, then waited on. The pool is built with its
//! defaults (a 30 s task time limit among them) apart from the worker count.
//!
//! A batch is one `pool.batch::<T>(inputs)`, gathered by its one handle. The `mixed`
//! scenario's frame tasks are submitted with `Priority::HIGH` and their frame's end as
//! deadline (a task still queued then expires unrun), background tasks with `Priority::LOW`.

use anyhow::{anyhow, Context, Result};
use protozoa_workers::{task, Handlers, Priority, TaskError, TaskHandle, WorkerPool};

use super::{Class, Contender, Pending, Settled, Spin};
use crate::clock;
use crate::report::OURS;
use crate::work::{self, TinyWork};

pub const NAME: &str = OURS;

task! {
    /// The tiny task: [`TinyWork`] over its input.
    struct Tiny: u64 => u64 = "benchTiny";

    /// Computes for the given microseconds; returns when it finished, in ns since the epoch.
    struct Spinning: u64 => u64 = "benchSpin";
}

/// A `WorkerPool` with `workers` thread workers.
pub struct Ours {
    pool: WorkerPool,
}

impl Ours {
    pub fn new(workers: usize, work: TinyWork) -> Result<Self> {
        let handlers = Handlers::stateless()
            .handler::<Tiny>(move |_, input, _| Ok(work.run(input)))
            .handler::<Spinning>(|_, micros, _| {
                work::spin_for(std::time::Duration::from_micros(micros));
                Ok(clock::since_epoch())
            });
        let pool = WorkerPool::builder(handlers)
            .workers(workers)
            .build()
            .context("building the protozoa-workers pool")?;
        Ok(Ours { pool })
    }

    fn submit_tiny(&self, input: u64) -> Result<TaskHandle<u64>> {
        self.pool
            .submit::<Tiny>(input)
            .map_err(|e| anyhow!("submitting a tiny task: {e}"))
    }
}

impl Contender for Ours {
    fn run_each(&mut self, count: usize) -> Result<u64> {
        // Submit every task, keeping the handles.
        let mut handles = Vec::with_capacity(count);
        for input in 0..count as u64 {
            handles.push(self.submit_tiny(input)?);
        }

        // Wait for each result.
        let mut sum = 0u64;
        for handle in handles {
            sum = sum.wrapping_add(handle.wait()?);
        }
        Ok(sum)
    }

    /// Each batch is one `pool.batch`; every batch is submitted before any is gathered.
    fn run_batches(&mut self, count: usize, batch: usize) -> Result<u64> {
        let mut handles = Vec::with_capacity(count.div_ceil(batch.max(1)));
        let mut next = 0u64;
        while next < count as u64 {
            let end = (next + batch as u64).min(count as u64);
            let handle = self
                .pool
                .batch::<Tiny>(next..end)
                .map_err(|e| anyhow!("submitting a batch: {e}"))?;
            handles.push(handle);
            next = end;
        }

        let mut sum = 0u64;
        for handle in handles {
            for result in handle.wait() {
                sum = sum.wrapping_add(result?);
            }
        }
        Ok(sum)
    }

    fn submit_spin(&mut self, spin: Spin) -> Result<Box<dyn Pending>> {
        let micros = spin.duration.as_micros() as u64;
        let priority = match spin.class {
            Class::High => Priority::HIGH,
            Class::Low => Priority::LOW,
        };
        let mut request = self.pool.task::<Spinning>(micros).priority(priority);
        if let Some(deadline) = spin.deadline {
            request = request.deadline(deadline);
        }
        let handle = request
            .submit()
            .map_err(|e| anyhow!("submitting a task: {e}"))?;
        Ok(Box::new(OursPending(Some(handle))))
    }
}

impl Drop for Ours {
    /// Lets queued tasks finish and waits for the workers, so that the next contender starts on
    /// a quiet machine.
    fn drop(&mut self) {
        self.pool.close();
        self.pool.join();
    }
}

/// A spinning task's handle, until it settles.
struct OursPending(Option<TaskHandle<u64>>);

impl Pending for OursPending {
    fn poll(&mut self) -> Option<Settled> {
        if !self.0.as_ref()?.is_settled() {
            return None;
        }
        let settled = match self.0.take()?.wait() {
            Ok(stamp) => Settled::Finished(clock::at(stamp)),
            Err(TaskError::Expired { .. }) => Settled::Expired,
            Err(_) => Settled::Failed,
        };
        Some(settled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::expected_sum;

    #[test]
    fn our_pool_returns_every_result() {
        let work = TinyWork::calibrate();
        let mut ours = Ours::new(2, work).unwrap();
        assert_eq!(ours.run_each(1_000).unwrap(), expected_sum(work, 1_000));
        assert_eq!(
            ours.run_batches(1_000, 64).unwrap(),
            expected_sum(work, 1_000)
        );
    }
}
