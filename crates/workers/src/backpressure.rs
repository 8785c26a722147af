//! Back-pressure: the `max_queue_size` bound, and the submitters waiting for
//! room under it.
//!
//! Without a bound (the default) nothing here is touched on the hot path. With
//! one, a submission reserves a place before it queues its task and a worker
//! gives the place back when it takes a task from the queue (a task settled
//! while queued, say cancelled, keeps its place until a worker removes it).
//! Tasks already accepted (a released dependent, a retry) take a place without
//! asking, so the count can briefly exceed the bound; new submissions are
//! refused until it is below again.
//!
//! # Waiting without losing a wake-up
//!
//! A waiting submitter ([`SubmitFuture`](crate::SubmitFuture)) stores its
//! waker, counts itself in `waiting`, and then tries to reserve once more. A
//! worker gives a place back, then reads `waiting` and wakes every stored
//! waker. Both steps are `SeqCst`, so either the retry finds the room or the
//! worker sees the waiter. Close and terminate wake every waiter too, which
//! then gets its input back.

use std::task::Waker;

use crate::sync::{lock, AtomicUsize, Mutex, Ordering};

/// The queue bound and its waiters.
pub(crate) struct Backpressure {
    limit: Option<usize>,
    queued: AtomicUsize,
    waiting: AtomicUsize,
    wakers: Mutex<Vec<Waker>>,
}

impl Backpressure {
    pub(crate) fn new(limit: Option<usize>) -> Self {
        Backpressure {
            limit,
            queued: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            wakers: Mutex::new(Vec::new()),
        }
    }

    /// The bound, if there is one.
    pub(crate) fn limit(&self) -> Option<usize> {
        self.limit
    }

    /// Reserves `count` places; false (and nothing reserved) if they would
    /// take the queue past its bound.
    pub(crate) fn try_reserve(&self, count: usize) -> bool {
        let Some(limit) = self.limit else {
            return true;
        };
        let mut current = self.queued.load(Ordering::SeqCst);
        loop {
            if current.saturating_add(count) > limit {
                return false;
            }
            match self.queued.compare_exchange_weak(
                current,
                current + count,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
    }

    /// Takes a place for a task that was already accepted.
    pub(crate) fn force_reserve(&self) {
        if self.limit.is_some() {
            self.queued.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Gives `count` places back (tasks left the queue) and wakes waiters.
    pub(crate) fn release(&self, count: usize) {
        if self.limit.is_none() || count == 0 {
            return;
        }
        let _ = self
            .queued
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |queued| {
                Some(queued.saturating_sub(count))
            });
        if self.waiting.load(Ordering::SeqCst) != 0 {
            self.wake_all();
        }
    }

    /// Stores a waiting submitter's waker (see the module docs).
    pub(crate) fn wait(&self, waker: &Waker) {
        let mut wakers = lock(&self.wakers);
        if !wakers.iter().any(|stored| stored.will_wake(waker)) {
            wakers.push(waker.clone());
            self.waiting.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Wakes every waiting submitter.
    pub(crate) fn wake_all(&self) {
        let wakers = std::mem::take(&mut *lock(&self.wakers));
        self.waiting.fetch_sub(wakers.len(), Ordering::SeqCst);
        wakers.into_iter().for_each(Waker::wake);
    }
}
