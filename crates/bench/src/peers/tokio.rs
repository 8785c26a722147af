//! tokio: `spawn_blocking` on a multi-thread runtime, each result collected through its join
//! handle. It has no batch API, so a batch is one `spawn_blocking` per item, its handles
//! awaited in order.

use anyhow::{Context, Result};
use tokio::runtime::{Builder, Runtime};
use tokio::task::JoinHandle;

use super::{Contender, Pending, Spin};
use crate::work::TinyWork;

pub const NAME: &str = "tokio";

/// A multi-thread tokio runtime whose blocking pool has `workers` threads.
///
/// The tasks run on the blocking pool; the runtime's own worker threads (also `workers`) only
/// drive the join handles and stay parked otherwise.
pub struct Tokio {
    runtime: Runtime,
    work: TinyWork,
}

impl Tokio {
    pub fn new(workers: usize, work: TinyWork) -> Result<Self> {
        let runtime = Builder::new_multi_thread()
            .worker_threads(workers)
            .max_blocking_threads(workers)
            .thread_name("tokio")
            .build()
            .context("building the tokio runtime")?;
        Ok(Tokio { runtime, work })
    }

    fn spawn_tiny(&self, input: u64) -> JoinHandle<u64> {
        let work = self.work;
        self.runtime.spawn_blocking(move || work.run(input))
    }

    /// Awaits the handles in order from this thread and sums their results.
    fn collect(&self, handles: Vec<JoinHandle<u64>>) -> Result<u64> {
        self.runtime.block_on(async {
            let mut sum = 0u64;
            for handle in handles {
                sum = sum.wrapping_add(handle.await.context("a blocking task failed")?);
            }
            Ok(sum)
        })
    }
}

impl Contender for Tokio {
    fn run_each(&mut self, count: usize) -> Result<u64> {
        let handles = (0..count as u64)
            .map(|input| self.spawn_tiny(input))
            .collect();
        self.collect(handles)
    }

    fn run_batches(&mut self, count: usize, batch: usize) -> Result<u64> {
        // Submit each batch's items, keeping one list of handles per batch.
        let batches: Vec<Vec<JoinHandle<u64>>> = (0..count)
            .step_by(batch)
            .map(|start| (start..(start + batch).min(count)).map(|i| self.spawn_tiny(i as u64)))
            .map(Iterator::collect)
            .collect();

        // Gather each batch in submission order.
        self.runtime.block_on(async {
            let mut gathered = Vec::with_capacity(batches.len());
            for handles in batches {
                let mut values = Vec::with_capacity(handles.len());
                for handle in handles {
                    values.push(handle.await.context("a blocking task failed")?);
                }
                gathered.push(values);
            }
            Ok(super::sum_batches(&gathered))
        })
    }

    fn submit_spin(&mut self, spin: Spin) -> Result<Box<dyn Pending>> {
        let (job, pending) = super::spin_job(spin);
        drop(self.runtime.spawn_blocking(job));
        Ok(pending)
    }
}
