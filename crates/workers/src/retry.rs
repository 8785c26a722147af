//! Retries: a failed attempt runs again after a delay, keeping its task's id.
//!
//! The cell decides whether an attempt is retried ([`TaskCell::complete`]:
//! only a handler's own non-permanent error, and only while retries are
//! left); the worker that ran it then calls [`Shared::retry_later`], which
//! puts the task in the watchdog's timer heap. The watchdog queues it again
//! when its delay has passed ([`RetryTimers::take_due`]).
//!
//! While it waits, the task is neither queued nor running, but it is counted
//! (`waiting`), so a closing pool's workers do not leave before it ran, and
//! `terminate()` settles it from the heap. A retry scheduled while the pool is
//! being terminated checks the lifecycle after a fence, like a submission.
//!
//! [`TaskCell::complete`]: crate::cell::TaskCell::complete

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Duration;

use crate::cell::{Job, Outcome};
use crate::clock::{self, Ticks, NEVER};
use crate::error::TaskError;
use crate::shared::{Shared, TERMINATED};
use crate::sync::{fence, lock, AtomicUsize, Mutex, Ordering};

/// The longest delay back-off may reach.
const MAX_DELAY: Duration = Duration::from_secs(3600);

/// A task waiting to run again, ordered by when.
struct Due {
    at: Ticks,
    seq: u64,
    job: Arc<dyn Job>,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// The watchdog's heap of tasks waiting to run again.
#[derive(Default)]
pub(crate) struct RetryTimers {
    heap: Mutex<(BinaryHeap<Reverse<Due>>, u64)>,
    waiting: AtomicUsize,
}

impl RetryTimers {
    /// Tasks waiting for a retry.
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Adds a task due at `at`; returns whether it is now the earliest.
    fn add(&self, job: Arc<dyn Job>, at: Ticks) -> bool {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let mut heap = lock(&self.heap);
        heap.1 += 1;
        let seq = heap.1;
        let earliest = heap.0.peek().map_or(true, |Reverse(next)| at < next.at);
        heap.0.push(Reverse(Due { at, seq, job }));
        earliest
    }

    /// Removes the tasks due by `now`; returns them with the next due time.
    pub(crate) fn take_due(&self, now: Ticks) -> (Vec<Arc<dyn Job>>, Ticks) {
        let mut heap = lock(&self.heap);
        let mut due = Vec::new();
        while let Some(Reverse(next)) = heap.0.peek() {
            if next.at > now {
                return (due, next.at);
            }
            if let Some(Reverse(entry)) = heap.0.pop() {
                due.push(entry.job);
            }
        }
        (due, NEVER)
    }

    /// Marks `count` taken tasks as queued again (after they were pushed).
    pub(crate) fn done(&self, count: usize) {
        self.waiting.fetch_sub(count, Ordering::SeqCst);
    }

    /// Removes every waiting task (terminate).
    pub(crate) fn drain(&self) -> Vec<Arc<dyn Job>> {
        let jobs: Vec<_> = lock(&self.heap)
            .0
            .drain()
            .map(|Reverse(entry)| entry.job)
            .collect();
        self.waiting.fetch_sub(jobs.len(), Ordering::SeqCst);
        jobs
    }
}

impl Shared {
    /// The delay before attempt `attempts + 1`: `retry_delay`, multiplied by
    /// the back-off factor for each attempt after the first retry.
    pub(crate) fn retry_delay(&self, attempts: usize) -> Duration {
        let base = self.options.retry_delay.as_secs_f64();
        let factor = self.options.retry_backoff.max(1.0);
        let exponent = i32::try_from(attempts.saturating_sub(1)).unwrap_or(i32::MAX);
        let seconds = base * factor.powi(exponent);
        Duration::try_from_secs_f64(seconds)
            .unwrap_or(MAX_DELAY)
            .min(MAX_DELAY)
    }

    /// Schedules the next attempt of a task whose attempt failed.
    pub(crate) fn retry_later(&self, job: Arc<dyn Job>) {
        let delay = self.retry_delay(job.header().attempts());
        if delay.is_zero() {
            self.push_accepted(job);
            return;
        }
        let at = clock::after(clock::now(), delay);
        if self.watchdog.retries.add(Arc::clone(&job), at) {
            self.watchdog.wake();
        }

        // Terminate drains the heap after its fence; check after ours.
        fence(Ordering::SeqCst);
        if self.lifecycle() == TERMINATED && job.fail(TaskError::Terminated) {
            self.record_outside(job.header().handler(), Outcome::Terminated);
        }
    }

    /// Queues the tasks whose retry delay has passed; returns the next due time.
    pub(crate) fn requeue_due_retries(&self) -> Ticks {
        let (due, next) = self.watchdog.retries.take_due(clock::now());
        let count = due.len();
        for job in due {
            if job.header().is_claimed() {
                // Cancelled (or terminated) while it waited: no worker will see it.
                if let Some(outcome) = job.header().outcome() {
                    self.record_outside(job.header().handler(), outcome);
                }
                continue;
            }
            self.push_accepted(job);
        }
        self.watchdog.retries.done(count);
        next
    }
}
