//! rayon: `ThreadPool::spawn` with a result channel.

use anyhow::{Context, Result};
use rayon::{ThreadPool, ThreadPoolBuilder};

use super::{Contender, Pending, Spawn, Spin};
use crate::work::TinyWork;

pub const NAME: &str = "rayon";

/// A rayon thread pool of its own (not the global one), with `workers` threads.
pub struct Rayon {
    pool: ThreadPool,
    work: TinyWork,
}

impl Rayon {
    pub fn new(workers: usize, work: TinyWork) -> Result<Self> {
        let pool = ThreadPoolBuilder::new()
            .num_threads(workers)
            .thread_name(|i| format!("rayon-{i}"))
            .build()
            .context("building the rayon pool")?;
        Ok(Rayon { pool, work })
    }
}

impl Spawn for Rayon {
    fn spawn<F: FnOnce() + Send + 'static>(&self, job: F) {
        self.pool.spawn(job);
    }
}

impl Contender for Rayon {
    fn run_each(&mut self, count: usize) -> Result<u64> {
        super::each_through_channel(self, self.work, count)
    }

    /// One `spawn` per item, gathered back in order. A spawned job per batch that maps its
    /// items with a parallel iterator would be rayon's own scatter and gather, but a worker
    /// waiting inside one batch's parallel iterator steals the next batch's job and nests it on
    /// its stack, so thousands of queued batches overflow the stack.
    fn run_batches(&mut self, count: usize, batch: usize) -> Result<u64> {
        super::batches_through_channel(self, self.work, count, batch)
    }

    fn submit_spin(&mut self, spin: Spin) -> Result<Box<dyn Pending>> {
        Ok(super::spin_through(self, spin))
    }
}
