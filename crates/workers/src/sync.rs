//! Synchronisation primitives, swapped for loom's model-checked versions under `cfg(protozoa_loom)`.
//!
//! Only the concurrency core (the task cell's state machine and the queue's
//! close protocol) goes through this module, so that `RUSTFLAGS="--cfg protozoa_loom"`
//! can explore every interleaving of it.

#[cfg(protozoa_loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU64, AtomicUsize, Ordering};
#[cfg(protozoa_loom)]
pub(crate) use loom::sync::Mutex;

#[cfg(not(protozoa_loom))]
pub(crate) use std::sync::atomic::{fence, AtomicU64, AtomicUsize, Ordering};

/// A mutex with the `lock()` signature of parking_lot (no poisoning) in both builds.
#[cfg(not(protozoa_loom))]
pub(crate) type Mutex<T> = parking_lot::Mutex<T>;

/// Locks a mutex; one spelling for both builds.
#[cfg(not(protozoa_loom))]
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> parking_lot::MutexGuard<'_, T> {
    mutex.lock()
}

/// Locks a mutex; one spelling for both builds.
#[cfg(protozoa_loom)]
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> loom::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
