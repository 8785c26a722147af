//! # protozoa-workers
//!
//! A pool of worker threads that takes compute off a program's main thread,
//! built on one promise: **every task settles exactly once**, with its value or
//! with an error that says whether it failed, panicked, timed out, was
//! cancelled or was terminated. No handle waits forever: not when a handler
//! panics, not when a task runs past its time limit, not when the pool is
//! closed or terminated while tasks are queued or running.
//!
//! ## Vocabulary
//!
//! - A **task type** ([`Task`]) names an input and an output; a **handler**
//!   runs tasks of one type on a worker, with the worker's own mutable state.
//! - A **worker** is a thread that takes **tasks** from the pool's **queue**,
//!   one at a time (or up to `max_concurrent_tasks` async ones). It is **idle**
//!   or **busy**; an idle worker spins briefly, then sleeps.
//! - Submitting returns a **handle** ([`TaskHandle`]) at once: a `Future` for
//!   any executor, with blocking waits too.
//! - **Closing** stops intake and lets queued tasks finish; **terminating**
//!   settles everything at once.
//!
//! ## Scheduling
//!
//! Plain tasks run first in first out. Per task ([`TaskRequest`]) a caller can
//! also choose a [`Priority`] class (higher first, with a share for lower
//! classes so none starves), a deadline (earliest first within a class; still
//! queued at it, the task expires unrun), a supersede key (a newer task with
//! the key replaces a queued one), retries, and dependencies on other tasks
//! (by handle, by id, or as a continuation that receives their results:
//! [`WorkerPool::then`]). [`WorkerPool::batch`] submits many tasks with one
//! handle for all results. The pool can bound its queue
//! ([`PoolBuilder::max_queue_size`]) and grow and shrink between
//! [`PoolBuilder::min_workers`] and [`PoolBuilder::max_workers`].
//!
//! ## Example
//!
//! ```
//! use protozoa_workers::{Handlers, HandlerError, Task, TaskError, WorkerPool};
//!
//! /// Sums a slice of particle masses.
//! struct TotalMass;
//! impl Task for TotalMass {
//!     const NAME: &'static str = "totalMass";
//!     type Input = Vec<f32>;
//!     type Output = f32;
//! }
//!
//! let handlers = Handlers::stateless().handler::<TotalMass>(|_state, masses, _task| {
//!     if masses.iter().any(|m| *m < 0.0) {
//!         return Err(HandlerError::new("negative mass"));
//!     }
//!     Ok(masses.iter().sum())
//! });
//! let pool = WorkerPool::builder(handlers).workers(2).build()?;
//!
//! let total = pool.submit::<TotalMass>(vec![1.0, 2.5, 0.5])?;
//! assert_eq!(total.wait()?, 4.0);
//!
//! let bad = pool.submit::<TotalMass>(vec![-1.0])?;
//! assert!(matches!(bad.wait(), Err(TaskError::Failed { .. })));
//!
//! pool.close();
//! pool.join();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Limits
//!
//! - A thread cannot be stopped safely from outside. A task past its time
//!   limit, or cancelled while running, settles at once, and its handler is
//!   asked to stop through [`TaskContext::is_cancelled`]; a handler that never
//!   checks keeps its worker busy until it returns (its result is dropped).
//!   Async handlers are stopped for real: their future is dropped.
//! - A handler that aborts the process or overflows its stack takes the
//!   process down: thread workers share it. Process workers
//!   ([`PoolBuilder::process_workers`], Linux) run the same handlers in
//!   child processes, where a crash costs one task and a task past its time
//!   limit is killed.

#![warn(missing_docs)]

mod backpressure;
mod batch;
pub mod buffer;
mod cell;
mod clock;
mod dependency;
mod error;
mod handle;
mod handlers;
mod metrics;
mod options;
mod pool;
#[cfg(target_os = "linux")]
pub mod process;
mod request;
mod retry;
mod scaling;
mod scheduler;
mod shared;
mod sync;
mod task;
mod watchdog;
mod worker;

pub use batch::BatchHandle;
pub use error::{
    BuildError, HandlerError, SubmitError, SubmitErrorReason, TaskError, TaskErrorKind,
};
pub use handle::TaskHandle;
pub use handlers::Handlers;
pub use metrics::{Latency, Metrics, OutcomeCounts, TaskTypeMetrics};
pub use options::{LogLevel, MAX_PRIORITY_LEVELS, MAX_WORKERS};
pub use pool::{Lifecycle, PoolBuilder, PoolStatus, WorkerPool, WorkerState, WorkerStatus};
pub use request::{SubmitFuture, TaskRequest};
pub use scheduler::{Priority, SHARE};
pub use task::{CancellationToken, Task, TaskContext, TaskId, WorkerInfo};
