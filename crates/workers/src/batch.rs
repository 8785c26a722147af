//! Batches: many tasks of one type submitted at once, gathered by one handle.
//!
//! Each item is its own task (its own cell, id and result, so errors are per
//! item), but the batch is queued with one pass over the plain queue and one
//! round of wake-ups: at most one per sleeping worker, however many items,
//! where submitting one by one may wake a worker per task.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::cell::{CellSpec, Job, TaskCell};
use crate::error::{SubmitError, SubmitErrorReason, TaskError};
use crate::handle::TaskHandle;
use crate::pool::WorkerPool;
use crate::shared::{OPEN, TERMINATED};
use crate::sync::{fence, Ordering};
use crate::task::Task;

/// The handle of a batch: resolves to every item's result, in submission
/// order; see [`WorkerPool::batch`].
///
/// Like [`TaskHandle`], it is a [`Future`] for any executor and can also be
/// waited on from a plain thread.
pub struct BatchHandle<O> {
    handles: Vec<TaskHandle<O>>,
    results: Vec<Result<O, TaskError>>,
}

impl<O> BatchHandle<O> {
    /// Number of items.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Whether the batch has no items.
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// The items' handles, in submission order (for their ids, or to cancel
    /// one).
    pub fn handles(&self) -> &[TaskHandle<O>] {
        &self.handles
    }

    /// Cancels every item not yet settled; returns how many were.
    pub fn cancel(&self) -> usize {
        self.handles.iter().filter(|handle| handle.cancel()).count()
    }

    /// Blocks until every item has settled; returns their results in
    /// submission order.
    pub fn wait(self) -> Vec<Result<O, TaskError>> {
        let mut results = self.results;
        let done = results.len();
        results.extend(self.handles.into_iter().skip(done).map(TaskHandle::wait));
        results
    }
}

impl<O> Unpin for BatchHandle<O> {}

impl<O> Future for BatchHandle<O> {
    type Output = Vec<Result<O, TaskError>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        while let Some(handle) = this.handles.get_mut(this.results.len()) {
            match Pin::new(handle).poll(cx) {
                Poll::Ready(result) => this.results.push(result),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(std::mem::take(&mut this.results))
    }
}

impl<O> fmt::Debug for BatchHandle<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchHandle")
            .field("items", &self.handles.len())
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

        // Queue every item, then wake the workers once.
        let cells: Vec<Arc<TaskCell<T::Input, T::Output>>> = inputs
            .into_iter()
            .map(|input| TaskCell::new(CellSpec::plain(index, name), input))
            .collect();
        for cell in &cells {
            shared.queue.push(Arc::clone(cell) as Arc<dyn Job>);
        }
        fence(Ordering::SeqCst);
        let wake = cells.len().min(shared.workers.len());
        if shared.searching.load(Ordering::Relaxed) == 0 {
            for _ in 0..wake {
                shared.wake_one();
            }
        }

        // Closed meanwhile: nobody may be left to run them (see `shared`).
        let lifecycle = shared.lifecycle();
        if lifecycle != OPEN {
            for cell in &cells {
                cell.settle_idle(TaskError::Terminated);
            }
            if lifecycle == TERMINATED {
                shared.wake_all();
            }
        }
        Ok(BatchHandle {
            results: Vec::with_capacity(cells.len()),
            handles: cells
                .into_iter()
                .map(|cell| TaskHandle::new(cell))
                .collect(),
        })
    }
}
