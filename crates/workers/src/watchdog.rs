//! The watchdog: one thread per pool that settles running tasks past their
//! time limit, settles queued tasks still waiting at their deadline as
//! expired, and queues again the tasks whose retry delay has passed.
//!
//! A thread cannot be stopped safely from outside, so a timed-out task is
//! settled as [`TaskError::TimedOut`](crate::TaskError::TimedOut) at once and
//! its handler is asked to stop through its cancellation token; an async
//! handler's future is dropped by its worker, which settling wakes.
//!
//! The watchdog sleeps until the earliest of: the deadlines of running tasks,
//! the deadlines of queued tasks that may expire, and the retry timers. With
//! none of these it parks without a timeout, so an idle pool's watchdog never
//! ticks. Whoever adds a time earlier than its planned wake-up unparks it. Before each
//! scan the watchdog advertises "never" as its wake-up time, so a task started
//! during the scan always unparks it (the park token keeps that wake-up), and
//! no deadline is missed.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_utils::sync::{Parker, Unparker};

use crate::cell::{Job, Outcome};
use crate::clock::{self, NEVER};
use crate::error::TaskError;
use crate::options::LogLevel;
use crate::retry::RetryTimers;
use crate::shared::{NextWake, Shared};
use crate::sync::{lock, Ordering};

/// The watchdog's side of the pool's shared state.
pub(crate) struct WatchdogShared {
    next_wake: NextWake,
    unparker: Unparker,
    stop: AtomicBool,
    /// Tasks waiting to run again.
    pub(crate) retries: RetryTimers,
}

impl WatchdogShared {
    pub(crate) fn new(parker: &Parker) -> Self {
        WatchdogShared {
            next_wake: NextWake::new(NEVER),
            unparker: parker.unparker().clone(),
            stop: AtomicBool::new(false),
            retries: RetryTimers::default(),
        }
    }

    /// Called by a worker that starts a task due at `deadline`.
    pub(crate) fn watch(&self, deadline: u64) {
        if deadline < self.next_wake.load(Ordering::SeqCst) {
            self.unparker.unpark();
        }
    }

    /// Tasks waiting for a retry.
    pub(crate) fn retries_waiting(&self) -> usize {
        self.retries.waiting()
    }

    /// Removes every task waiting for a retry (terminate).
    pub(crate) fn drain_retries(&self) -> Vec<Arc<dyn Job>> {
        self.retries.drain()
    }

    /// Wakes the watchdog to look again (or to leave).
    pub(crate) fn wake(&self) {
        self.unparker.unpark();
    }

    /// Asks the watchdog to leave.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.unparker.unpark();
    }
}

/// The watchdog thread's body.
pub(crate) fn run(shared: Arc<Shared>, parker: Parker) {
    let watchdog = &shared.watchdog;
    while !watchdog.stop.load(Ordering::SeqCst) {
        watchdog.next_wake.store(NEVER, Ordering::SeqCst);
        let earliest = settle_overdue(&shared)
            .min(expire_queued(&shared))
            .min(shared.requeue_due_retries());
        watchdog.next_wake.store(earliest, Ordering::SeqCst);

        if earliest == NEVER {
            parker.park();
        } else {
            let wait = clock::nanos_between(clock::now(), earliest);
            parker.park_timeout(Duration::from_nanos(wait));
        }
    }
}

/// Times out every running task past its deadline; returns the earliest
/// deadline still ahead.
fn settle_overdue(shared: &Shared) -> u64 {
    let now = clock::now();
    let mut earliest = NEVER;
    for slot in shared.workers.iter() {
        let inner = lock(&slot.inner);
        for running in &inner.running {
            if running.deadline > now {
                earliest = earliest.min(running.deadline);
                continue;
            }
            let header = running.job.header();
            let limit = header
                .timeout()
                .or(shared.options.task_timeout)
                .unwrap_or_default();
            let error = TaskError::TimedOut {
                task: header.name().to_owned(),
                limit,
            };
            if running.job.fail(error) {
                shared.record_outside(header.handler(), Outcome::TimedOut);
                if shared.logs(LogLevel::Warn) {
                    tracing::warn!(task = %header.id(), task_type = header.name(), worker = slot.id,
                        ?limit, "task timed out");
                }
            }
        }
    }
    earliest
}

/// Settles queued tasks still waiting at their deadline as expired; returns
/// the next such deadline.
fn expire_queued(shared: &Shared) -> u64 {
    let (due, next) = shared.scheduler.take_expired(clock::now());
    for job in due {
        let task = job.header().name().to_owned();
        if job.fail_idle(TaskError::Expired { task }) {
            // Counted by the worker that removes it from the queue.
            if shared.logs(LogLevel::Debug) {
                tracing::debug!(task = %job.header().id(), task_type = job.header().name(),
                    "task expired in the queue");
            }
        }
    }
    next
}
