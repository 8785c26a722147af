//! rayon: `ThreadPool::spawn` with a result channel; a batch is a parallel iterator.

use anyhow::{Context, Result};
use rayon::prelude::*;
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

    /// Each batch is one spawned job that maps its items with a parallel iterator (rayon's own
    /// scatter and gather), and sends the gathered results back.
    fn run_batches(&mut self, count: usize, batch: usize) -> Result<u64> {
        let work = self.work;
        let (results, received) = crossbeam_channel::unbounded::<(usize, Vec<u64>)>();

        // Submit one job per batch.
        let batches = count.div_ceil(batch);
        for b in 0..batches {
            let inputs = (b * batch) as u64..((b + 1) * batch).min(count) as u64;
            let results = results.clone();
            self.pool.spawn(move || {
                let values = inputs
                    .into_par_iter()
                    .map(|input| work.run(input))
                    .collect();
                let _ = results.send((b, values));
            });
        }
        drop(results);

        // Gather the batches in submission order.
        let mut gathered = vec![Vec::new(); batches];
        for _ in 0..batches {
            let (b, values) = received.recv().context("a batch's results never arrived")?;
            gathered[b] = values;
        }
        Ok(super::sum_batches(&gathered))
    }

    fn submit_spin(&mut self, spin: Spin) -> Result<Box<dyn Pending>> {
        Ok(super::spin_through(self, spin))
    }
}
