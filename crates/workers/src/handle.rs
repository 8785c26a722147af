//! The handle a caller gets for each submitted task.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use crate::cell::{ResultCell, ResultFuture};
use crate::clock;
use crate::error::TaskError;
use crate::task::TaskId;

/// A submitted task: its id and times, and its result once it settles.
///
/// The handle is a [`Future`] that works under any executor (tokio, smol, a
/// plain `block_on`) and needs none: [`wait`](TaskHandle::wait) and
/// [`wait_timeout`](TaskHandle::wait_timeout) block the calling thread instead.
///
/// Every task settles exactly once, with its value or with a [`TaskError`], so
/// waiting on a handle always ends: at the latest when the pool is terminated,
/// or when the task's time limit passes.
///
/// **Dropping a handle** does not cancel its task: the task still runs (a
/// fire-and-forget submission) and its result is dropped when it settles. Call
/// [`cancel`](TaskHandle::cancel) first to stop it.
pub struct TaskHandle<O> {
    cell: Arc<dyn ResultCell<O>>,
}

impl<O> TaskHandle<O> {
    pub(crate) fn new(cell: Arc<dyn ResultCell<O>>) -> Self {
        TaskHandle { cell }
    }

    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.cell.header().id()
    }

    /// How many times the task has been started: 1 once it ran, more if it
    /// was retried (the handle reports only the final outcome), 0 if it has
    /// not started.
    pub fn attempts(&self) -> usize {
        self.cell.header().attempts()
    }

    /// The task's cell, to depend on it.
    pub(crate) fn job(&self) -> Arc<dyn crate::cell::Job> {
        Arc::clone(&self.cell).as_job()
    }

    /// The result, if the task has settled and it was not taken yet.
    pub(crate) fn try_take(&self) -> Option<Result<O, TaskError>> {
        self.cell.try_result()
    }

    /// When the task was submitted.
    pub fn created(&self) -> Instant {
        clock::to_instant(self.cell.header().created()).unwrap_or_else(Instant::now)
    }

    /// When a worker started it, if one has.
    pub fn started(&self) -> Option<Instant> {
        clock::to_instant(self.cell.header().started())
    }

    /// When it settled, if it has.
    pub fn completed(&self) -> Option<Instant> {
        if !self.is_settled() {
            return None;
        }
        clock::to_instant(self.cell.header().completed())
    }

    /// Whether the task has settled (its result is ready).
    pub fn is_settled(&self) -> bool {
        self.cell.header().is_settled()
    }

    /// Cancels the task. A queued task never runs; a running one is asked to
    /// stop through its cancellation token (an async handler's future is
    /// dropped). Either way the handle settles at once with
    /// [`TaskError::Cancelled`]. Returns false if the task had already settled.
    pub fn cancel(&self) -> bool {
        self.cell.cancel()
    }

    /// Blocks the calling thread until the task settles and returns its result.
    pub fn wait(self) -> Result<O, TaskError> {
        if let Some(result) = self.cell.try_result() {
            return result;
        }
        // A task that is about to settle (a round trip to a worker process, a
        // tiny task) settles sooner than a park and unpark take: look again a
        // few times, letting other threads run, before sleeping.
        for _ in 0..WAIT_SPINS {
            std::thread::yield_now();
            if let Some(result) = self.cell.try_result() {
                return result;
            }
        }
        match block_on(ResultFuture(&*self.cell), None) {
            Some(result) => result,
            None => unreachable!("a wait without a deadline only returns with a result"),
        }
    }

    /// Blocks for at most `timeout`. Returns the result if the task settled in
    /// time, or the handle back (still valid) if it did not.
    pub fn wait_timeout(self, timeout: Duration) -> Result<Result<O, TaskError>, TaskHandle<O>> {
        if let Some(result) = self.cell.try_result() {
            return Ok(result);
        }
        let deadline = Instant::now() + timeout;
        match block_on(ResultFuture(&*self.cell), Some(deadline)) {
            Some(result) => Ok(result),
            None => Err(self),
        }
    }
}

impl<O> Future for TaskHandle<O> {
    type Output = Result<O, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.cell.poll_result(cx)
    }
}

impl<O> fmt::Debug for TaskHandle<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskHandle")
            .field("id", &self.id())
            .field("settled", &self.is_settled())
            .finish()
    }
}

/// How many times a blocking wait yields and looks again before it parks:
/// about 100 us of looking on an idle machine, less than the park and unpark
/// that it saves a task about to settle (measured with the `ipc` benchmark:
/// 31-33 us a round trip instead of 40-45 us).
const WAIT_SPINS: u32 = 256;

/// Wakes a parked thread.
struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `future` on this thread, parking between polls, until it is ready or
/// `deadline` passes.
fn block_on<F: Future>(future: F, deadline: Option<Instant>) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return Some(output);
        }
        match deadline {
            None => thread::park(),
            Some(deadline) => {
                let now = Instant::now();
                if now >= deadline {
                    return None;
                }
                thread::park_timeout(deadline - now);
            }
        }
    }
}
