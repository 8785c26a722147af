//! A pool that grows and shrinks between `min_workers` and `max_workers`.
//!
//! The pool allocates a slot for each of `max_workers` up front and starts
//! `min_workers` threads. It starts another when a task is queued while no
//! worker is searching or asleep (all are busy) and fewer than `max_workers`
//! run; the new worker counts as searching from the start, so the next
//! submissions do not start more until it has found work. A worker that slept
//! for `idle_timeout` without being woken leaves while more than `min_workers`
//! run. A pool with `min_workers == max_workers` never does either, and its
//! idle workers park without a timeout.
//!
//! # Leaving without stranding a task
//!
//! A leaving worker first takes itself out of the live count, then puts a
//! fence and looks at the queue; a submitter pushes, fences, then counts the
//! sleepers and searchers. So either the worker sees the task and stays, or
//! the submitter sees that it is gone and wakes or starts another worker (or
//! one that is busy finds the task when it is done).

use std::sync::Arc;
use std::time::Duration;

use crate::shared::{Shared, OPEN};
use crate::sync::{fence, lock, Ordering};

impl Shared {
    /// Whether the worker count may change.
    pub(crate) fn is_elastic(&self) -> bool {
        self.options.min_workers < self.options.max_workers
    }

    /// How long an idle worker waits before it may leave, if it may.
    pub(crate) fn idle_timeout(&self) -> Option<Duration> {
        let above_min = self.live_workers.load(Ordering::Relaxed) > self.options.min_workers;
        (self.is_elastic() && above_min).then_some(self.options.idle_timeout)
    }

    /// Starts one more worker if the pool may grow (see the module docs).
    pub(crate) fn grow(&self) {
        if !self.is_elastic() || self.lifecycle() != OPEN {
            return;
        }
        let max = self.options.max_workers;
        let reserved = self
            .live_workers
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |live| {
                (live < max).then_some(live + 1)
            });
        if reserved.is_err() {
            return;
        }

        // A free slot: a worker that just left may not have freed its own yet.
        let free = self.workers.iter().find(|slot| {
            slot.occupied
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
        });
        let Some(slot) = free else {
            self.live_workers.fetch_sub(1, Ordering::SeqCst);
            return;
        };
        self.searching.fetch_add(1, Ordering::SeqCst);
        if let Err(error) = self.start_worker(slot.id, true) {
            self.searching.fetch_sub(1, Ordering::SeqCst);
            slot.occupied.store(false, Ordering::SeqCst);
            self.live_workers.fetch_sub(1, Ordering::SeqCst);
            if self.logs(crate::LogLevel::Error) {
                tracing::error!(%error, "could not start another worker");
            }
        }
    }

    /// Starts a thread in slot `id`, which the caller has marked occupied and
    /// counted as live.
    pub(crate) fn start_worker(&self, id: usize, searching: bool) -> std::io::Result<()> {
        let Some(me) = self.me.upgrade() else {
            return Err(std::io::Error::other("the pool is gone"));
        };
        let slot = &self.workers[id];
        *lock(&slot.control) = Some(Vec::new());
        lock(&slot.inner).stopped_at = 0;
        let thread = (self.spawner)(Arc::clone(&me), id, searching)?;

        // Keep the handle for join(); forget those of workers that left.
        let mut threads = lock(&self.threads);
        threads.retain(|thread| !thread.is_finished());
        threads.push(thread);
        Ok(())
    }

    /// Takes an idle worker out of the live count if more than `min_workers`
    /// run and nothing is queued; returns whether it may leave.
    pub(crate) fn try_retire(&self) -> bool {
        let min = self.options.min_workers;
        let left = self
            .live_workers
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |live| {
                (live > min).then(|| live - 1)
            });
        if left.is_err() {
            return false;
        }
        fence(Ordering::SeqCst);
        if self.has_queued() {
            self.live_workers.fetch_add(1, Ordering::SeqCst);
            return false;
        }
        true
    }
}
