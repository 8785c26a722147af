//! protozoa-workers with worker processes: the `ipc` and `transfer` contenders, and the
//! handlers this program serves when a pool starts it as its worker program.
//!
//! The bench binary is its own worker program: `main` calls [`serve_if_worker`] first, which
//! serves the simulation's handlers and the two task types below when the process was started
//! by a pool, and returns `false` otherwise.

use anyhow::{Context, Result};
use protozoa_workers::buffer::SharedBuffer;
use protozoa_workers::process::{self, ProcessOptions};
use protozoa_workers::{task, Handlers, WorkerPool};

use crate::child::sum_pages;
use crate::report::OURS;
use crate::scenarios::ipc::RoundTrip;
use crate::scenarios::transfer::Carry;

pub const NAME: &str = OURS;

task! {
    /// The tiny round trip: a number in, the next number out.
    struct Ping: u64 => u64 = "benchPing";

    /// The sum of the first value of each 4 KiB page of a shared buffer.
    struct PageSum: SharedBuffer<f32> => f64 = "benchPageSum";
}

/// The bench's own task types, on any handler set.
fn with_bench_tasks<S: 'static>(handlers: Handlers<S>) -> Handlers<S> {
    handlers
        .handler::<Ping>(|_, n, _| Ok(n + 1))
        .handler::<PageSum>(|_, buffer, _| Ok(sum_pages(buffer.as_bytes())))
}

/// Serves the worker handlers if this process is a pool's worker; see the module docs.
pub fn serve_if_worker() -> bool {
    process::serve_if_worker(&with_bench_tasks(protozoa_sim::handlers()))
}

/// A pool of one worker running the bench's task types, as processes or threads.
fn pool(processes: bool) -> Result<WorkerPool> {
    let builder = WorkerPool::builder(with_bench_tasks(Handlers::stateless())).workers(1);
    let pool = if processes {
        builder.process_workers(ProcessOptions::new()).build()
    } else {
        builder.build()
    };
    pool.context("building the pool")
}

/// Round trips through a one-worker process pool.
pub struct ProcessPing {
    pool: WorkerPool,
    next: u64,
}

impl ProcessPing {
    pub fn start() -> Result<Self> {
        Ok(ProcessPing {
            pool: pool(true)?,
            next: 0,
        })
    }
}

impl RoundTrip for ProcessPing {
    fn round_trip(&mut self) -> Result<()> {
        let reply = self.pool.submit::<Ping>(self.next)?.wait()?;
        anyhow::ensure!(reply == self.next + 1, "wrong reply {reply}");
        self.next = reply;
        Ok(())
    }
}

/// Page sums of one shared buffer on a one-worker pool (a process, or a thread).
pub struct BufferCarry {
    pool: WorkerPool,
    buffer: SharedBuffer<f32>,
}

impl BufferCarry {
    pub fn start(processes: bool, data: &[f32]) -> Result<Self> {
        Ok(BufferCarry {
            pool: pool(processes)?,
            buffer: SharedBuffer::from(data.to_vec()),
        })
    }
}

impl Carry for BufferCarry {
    fn carry(&mut self) -> Result<f64> {
        Ok(self.pool.submit::<PageSum>(self.buffer.clone())?.wait()?)
    }
}
