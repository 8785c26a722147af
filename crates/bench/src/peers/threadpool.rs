//! The `threadpool` crate: `execute` with a result channel. It has no batch API, so a batch
//! is one `execute` per item, gathered back in order.

use anyhow::Result;
use threadpool::ThreadPool;

use super::{Contender, Pending, Spawn, Spin};
use crate::work::TinyWork;

pub const NAME: &str = "threadpool";

/// A `threadpool::ThreadPool` with `workers` threads.
pub struct Threadpool {
    pool: ThreadPool,
    work: TinyWork,
}

impl Threadpool {
    pub fn new(workers: usize, work: TinyWork) -> Self {
        let pool = threadpool::Builder::new()
            .num_threads(workers)
            .thread_name("threadpool".to_string())
            .build();
        Threadpool { pool, work }
    }
}

impl Spawn for Threadpool {
    fn spawn<F: FnOnce() + Send + 'static>(&self, job: F) {
        self.pool.execute(job);
    }
}

impl Contender for Threadpool {
    fn run_each(&mut self, count: usize) -> Result<u64> {
        super::each_through_channel(self, self.work, count)
    }

    fn run_batches(&mut self, count: usize, batch: usize) -> Result<u64> {
        super::batches_through_channel(self, self.work, count, batch)
    }

    fn submit_spin(&mut self, spin: Spin) -> Result<Box<dyn Pending>> {
        Ok(super::spin_through(self, spin))
    }
}

impl Drop for Threadpool {
    /// Waits for queued jobs, so that the next contender starts on a quiet machine.
    fn drop(&mut self) {
        self.pool.join();
    }
}
