//! What a task is: its type (a name with an input and an output), its id, and
//! the context its handler sees while it runs.

use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::cell::Job;

/// A task type: the name workers know it by (the original's `type`), the data
/// it takes and the value it gives.
///
/// Declaring a task as a Rust type gives callers a typed result and keeps them
/// from sending the wrong data. Input and output are serde types so that the
/// same task can cross a process or network boundary; the string-keyed form
/// ([`WorkerPool::submit_json`](crate::WorkerPool::submit_json)) reaches the
/// same handlers by `NAME`.
///
/// ```
/// use protozoa_workers::Task;
///
/// struct Square;
/// impl Task for Square {
///     const NAME: &'static str = "square";
///     type Input = f64;
///     type Output = f64;
/// }
/// ```
pub trait Task: 'static {
    /// The task type's name, unique within a pool.
    const NAME: &'static str;
    /// The data a task of this type takes. `Clone` lets a retried task run
    /// again with the same data; the pool clones an input only for a task that
    /// may be retried (see [`PoolBuilder::max_retries`](crate::PoolBuilder::max_retries)).
    type Input: Serialize + DeserializeOwned + Clone + Send + 'static;
    /// The value a task of this type gives.
    type Output: Serialize + DeserializeOwned + Send + 'static;
}

/// Declares task types: for each, a unit struct and its [`Task`] impl.
///
/// `struct Name: Input => Output = "name";` declares the type `Name` whose
/// tasks take an `Input`, give an `Output`, and are known to workers as
/// `"name"`. Doc comments and a visibility go before `struct`, as on any item.
/// The struct derives `Debug`, `Clone`, `Copy` and `Default`.
///
/// ```
/// protozoa_workers::task! {
///     /// Squares a number.
///     pub struct Square: f64 => f64 = "square";
///     struct Checksum: Vec<u8> => u32 = "checksum";
/// }
///
/// use protozoa_workers::Task;
/// assert_eq!(Square::NAME, "square");
/// assert_eq!(<Checksum as Task>::NAME, "checksum");
/// ```
#[macro_export]
macro_rules! task {
    ($(
        $(#[$meta:meta])*
        $vis:vis struct $name:ident : $input:ty => $output:ty = $wire:literal;
    )+) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Default)]
        $vis struct $name;

        impl $crate::Task for $name {
            const NAME: &'static str = $wire;
            type Input = $input;
            type Output = $output;
        }
    )+};
}

/// A task's id: a random (version 4) UUID, assigned at submission.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TaskId(uuid::Uuid);

impl TaskId {
    /// A fresh random id. Uses a fast thread-local generator: ids are unique,
    /// not secret.
    pub(crate) fn random() -> Self {
        let bytes = fastrand::u128(..).to_le_bytes();
        TaskId(uuid::Builder::from_random_bytes(bytes).into_uuid())
    }

    /// A fresh random id, for a caller that names a task before submitting it
    /// ([`TaskRequest::id`](crate::TaskRequest::id)).
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        TaskId::random()
    }

    /// The id as a UUID.
    pub fn as_uuid(&self) -> uuid::Uuid {
        self.0
    }
}

impl From<uuid::Uuid> for TaskId {
    fn from(uuid: uuid::Uuid) -> Self {
        TaskId(uuid)
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TaskId({})", self.0)
    }
}

/// What a handler knows about the task it runs.
///
/// A thread cannot be stopped from outside safely, so a long-running handler
/// should check [`is_cancelled`](TaskContext::is_cancelled) now and then: it
/// turns true when the task was cancelled, timed out or terminated, and from
/// then on the handler's result is thrown away. Async handlers need not check:
/// their future is dropped at the next poll opportunity.
pub struct TaskContext<'a> {
    job: &'a Arc<dyn Job>,
    worker: usize,
}

impl<'a> TaskContext<'a> {
    pub(crate) fn new(job: &'a Arc<dyn Job>, worker: usize) -> Self {
        TaskContext { job, worker }
    }

    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.job.header().id()
    }

    /// The id of the worker running the task.
    pub fn worker(&self) -> usize {
        self.worker
    }

    /// Whether the task has already settled without this handler (cancelled,
    /// timed out or terminated): the handler should stop.
    pub fn is_cancelled(&self) -> bool {
        self.job.header().is_claimed()
    }

    /// A token that tells whether the task was cancelled; it can be moved into
    /// other threads or futures.
    pub fn token(&self) -> CancellationToken {
        CancellationToken {
            job: Arc::clone(self.job),
        }
    }
}

/// Tells whether a task was cancelled, timed out or terminated.
#[derive(Clone)]
pub struct CancellationToken {
    job: Arc<dyn Job>,
}

impl CancellationToken {
    /// True once the task has settled without its handler.
    pub fn is_cancelled(&self) -> bool {
        self.job.header().is_claimed()
    }
}

impl fmt::Debug for CancellationToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancellationToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

/// Facts about a worker, given to the state initializer.
#[derive(Debug, Clone)]
pub struct WorkerInfo {
    /// The worker's id, unique within its pool.
    pub id: usize,
}
