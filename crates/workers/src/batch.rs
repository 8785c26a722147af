//! Batches: many tasks of one type submitted at once, gathered by one handle.
//!
//! A batch is cut into one chunk per live worker (fewer for a small batch),
//! and each chunk is one job in the plain queue: a worker that takes it runs
//! its items in order with the task type's handler and settles the chunk with
//! the items' results. So a batch costs one allocation, one queue operation
//! and at most one wake-up per worker, not one of each per item, and still
//! reports errors per item.
//!
//! What a chunk shares as one job: a cancel, a terminate or a time limit
//! (the pool's `task_timeout` times the chunk's length) settles all its items
//! at once, `metrics()` counts it as one task, and the handler's
//! [`TaskContext::id`](crate::TaskContext::id) is the chunk's. If an item
//! panics, it and the chunk's items after it settle as `Panicked` and the
//! worker is rebuilt before its next task.
//!
//! With process workers, the worker's proxy sends a chunk's items to its
//! process one request each, pipelined (`process::proxy`): the items share the
//! chunk's wake-up and job, and the process runs them back to back.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::cell::{CellSpec, Job, TaskCell};
use crate::error::{SubmitError, SubmitErrorReason, TaskError};
use crate::handle::TaskHandle;
use crate::handlers::{ChunkCell, ItemResult};
use crate::pool::WorkerPool;
use crate::shared::{OPEN, TERMINATED};
use crate::sync::{fence, Ordering};
use crate::task::Task;

/// The handle of one chunk: its items' results.
type ChunkHandle<O> = TaskHandle<Vec<ItemResult<O>>>;

/// The handle of a batch: resolves to every item's result, in submission
/// order; see [`WorkerPool::batch`].
///
/// Like [`TaskHandle`], it is a [`Future`] for any executor and can also be
/// waited on from a plain thread.
pub struct BatchHandle<O> {
    /// Each chunk's length and handle.
    chunks: Vec<(usize, ChunkHandle<O>)>,
    len: usize,
    results: Vec<Result<O, TaskError>>,
    gathered: usize,
}

impl<O> BatchHandle<O> {
    /// Number of items.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the batch has no items.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether every item has settled.
    pub fn is_settled(&self) -> bool {
        self.chunks[self.gathered..]
            .iter()
            .all(|(_, chunk)| chunk.is_settled())
    }

    /// Cancels the items not yet settled (a chunk a worker runs is asked to
    /// stop, as a running task is); returns whether any were.
    pub fn cancel(&self) -> bool {
        self.chunks
            .iter()
            .fold(false, |any, (_, chunk)| chunk.cancel() | any)
    }

    /// Blocks until every item has settled; returns their results in
    /// submission order.
    pub fn wait(self) -> Vec<Result<O, TaskError>> {
        let mut results = self.results;
        for (len, chunk) in self.chunks.into_iter().skip(self.gathered) {
            gather(&mut results, self.len, len, chunk.wait());
        }
        results
    }
}

/// Appends a chunk's `len` results, or its one error once per item, to the
/// batch's `total` results. Room for them all is made at the first chunk, not at
/// submission: a batch waiting in the queue holds no result buffer.
fn gather<O>(
    results: &mut Vec<Result<O, TaskError>>,
    total: usize,
    len: usize,
    chunk: Result<Vec<ItemResult<O>>, TaskError>,
) {
    if results.capacity() == 0 {
        results.reserve_exact(total);
    }
    match chunk {
        Ok(items) => results.extend(items.into_iter().map(|item| item.map_err(|error| *error))),
        Err(error) => results.extend((0..len).map(|_| Err(error.clone()))),
    }
}

impl<O> Unpin for BatchHandle<O> {}

impl<O> Future for BatchHandle<O> {
    type Output = Vec<Result<O, TaskError>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        while let Some((len, chunk)) = this.chunks.get_mut(this.gathered) {
            let len = *len;
            match Pin::new(chunk).poll(cx) {
                Poll::Ready(chunk) => {
                    gather(&mut this.results, this.len, len, chunk);
                    this.gathered += 1;
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(std::mem::take(&mut this.results))
    }
}

impl<O> fmt::Debug for BatchHandle<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchHandle")
            .field("items", &self.len)
            .field("gathered", &self.results.len())
            .finish()
    }
}

impl WorkerPool {
    /// Submits a batch of tasks of type `T` with default options, and returns
    /// one handle for all their results in submission order (scatter and
    /// gather). Errors are per item.
    ///
    /// The whole batch is refused, with every input back, if the pool is
    /// closed, has no handler for `T`, or has no room for all of it in its
    /// queue. A batch that races `close()` or `terminate()` settles the items
    /// no worker took as [`TaskError::Terminated`].
    ///
    /// ```
    /// # use protozoa_workers::{Handlers, Task, WorkerPool};
    /// # struct Double;
    /// # impl Task for Double { const NAME: &'static str = "double"; type Input = u64; type Output = u64; }
    /// # let pool = WorkerPool::builder(Handlers::stateless().handler::<Double>(|_, n, _| Ok(n * 2))).build()?;
    /// let results = pool.batch::<Double>(0..4)?.wait();
    /// let values: Vec<u64> = results.into_iter().collect::<Result<_, _>>()?;
    /// assert_eq!(values, [0, 2, 4, 6]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn batch<T: Task>(
        &self,
        inputs: impl IntoIterator<Item = T::Input>,
    ) -> Result<BatchHandle<T::Output>, SubmitError<Vec<T::Input>>> {
        let inputs: Vec<T::Input> = inputs.into_iter().collect();
        let shared = self.shared();

        // Refusals first: the whole batch or nothing.
        let Some((index, name)) = self.handler_of::<T>() else {
            let reason = SubmitErrorReason::UnknownTaskType {
                name: T::NAME.to_owned(),
            };
            return Err(SubmitError::new(reason, inputs));
        };
        if let Some(reason) = shared.refusal() {
            return Err(SubmitError::new(reason, inputs));
        }
        if !shared.backpressure.try_reserve(inputs.len()) {
            let limit = shared.backpressure.limit().unwrap_or_default();
            return Err(SubmitError::new(
                SubmitErrorReason::QueueFull { limit },
                inputs,
            ));
        }

        // One chunk per live worker, queued together, then one round of wake-ups.
        let len = inputs.len();
        let chunks = chunk_inputs(inputs, shared.live_workers.load(Ordering::Relaxed));
        let timeout = shared.options.task_timeout;
        let cells: Vec<(usize, Arc<ChunkCell<T>>)> = chunks
            .into_iter()
            .map(|items| {
                let mut spec = CellSpec::plain(index, name);
                let count = u32::try_from(items.len()).unwrap_or(u32::MAX);
                spec.timeout = timeout.map(|limit| limit.saturating_mul(count));
                (items.len(), TaskCell::new(spec, items))
            })
            .collect();
        for (_, cell) in &cells {
            shared.queue.push(Arc::clone(cell) as Arc<dyn Job>);
        }
        fence(Ordering::SeqCst);
        if shared.searching.load(Ordering::Relaxed) == 0 {
            cells.iter().for_each(|_| shared.wake_one());
        }

        // Closed meanwhile: nobody may be left to run them (see `shared`).
        let lifecycle = shared.lifecycle();
        if lifecycle != OPEN {
            for (_, cell) in &cells {
                cell.settle_idle(TaskError::Terminated);
            }
            if lifecycle == TERMINATED {
                shared.wake_all();
            }
        }
        shared.backpressure.release(len - cells.len());
        Ok(BatchHandle {
            len,
            results: Vec::new(),
            gathered: 0,
            chunks: cells
                .into_iter()
                .map(|(len, cell)| (len, TaskHandle::new(cell)))
                .collect(),
        })
    }
}

/// Cuts `inputs` into at most `parts` chunks of nearly equal length, in order.
fn chunk_inputs<I>(inputs: Vec<I>, parts: usize) -> Vec<Vec<I>> {
    let parts = parts.clamp(1, inputs.len().max(1));
    let (base, extra) = (inputs.len() / parts, inputs.len() % parts);
    let mut items = inputs.into_iter();
    (0..parts)
        .map(|part| {
            items
                .by_ref()
                .take(base + usize::from(part < extra))
                .collect()
        })
        .filter(|chunk: &Vec<I>| !chunk.is_empty())
        .collect()
}
