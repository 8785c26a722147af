//! Errors: what a handler returns, how a task can end, and why a pool or a
//! submission was refused.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A handler's failure: a message, the backtrace captured where it was made
/// (when `RUST_BACKTRACE` or `RUST_LIB_BACKTRACE` enables capture), and
/// whether running the task again could help.
///
/// Any `std::error::Error` converts into it, so `?` works inside handlers.
/// Like `anyhow::Error`, it does not implement `std::error::Error` itself,
/// which is what makes that blanket conversion possible.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandlerError {
    message: String,
    backtrace: Option<String>,
    permanent: bool,
}

impl HandlerError {
    /// An error with this message, capturing a backtrace if capture is enabled.
    pub fn new(message: impl Into<String>) -> Self {
        HandlerError {
            message: message.into(),
            backtrace: capture_backtrace(),
            permanent: false,
        }
    }

    /// Marks the error as permanent: a retry policy never runs the task again.
    #[must_use]
    pub fn permanent(mut self) -> Self {
        self.permanent = true;
        self
    }

    /// The error's message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The backtrace captured where the error was made, if capture was enabled.
    pub fn backtrace(&self) -> Option<&str> {
        self.backtrace.as_deref()
    }

    /// Whether the error was marked permanent.
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for HandlerError {
    fn from(error: E) -> Self {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        HandlerError::new(message)
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerError")
            .field("message", &self.message)
            .field("permanent", &self.permanent)
            .field("backtrace", &self.backtrace.as_ref().map(|_| "captured"))
            .finish()
    }
}

fn capture_backtrace() -> Option<String> {
    let backtrace = std::backtrace::Backtrace::capture();
    match backtrace.status() {
        std::backtrace::BacktraceStatus::Captured => Some(backtrace.to_string()),
        _ => None,
    }
}

/// How a task ended when it did not produce a value. Every variant says which
/// of failed, panicked, timed out, cancelled or terminated happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TaskError {
    /// The handler returned an error.
    #[error("task `{task}` failed: {error}")]
    Failed {
        /// The task type.
        task: String,
        /// What the handler returned.
        error: HandlerError,
    },
    /// The handler panicked; the worker was rebuilt before its next task.
    #[error("task `{task}` panicked: {message}")]
    Panicked {
        /// The task type.
        task: String,
        /// The panic's message.
        message: String,
    },
    /// The task ran past its time limit. On a thread worker its handler was
    /// asked to stop through its cancellation token.
    #[error("task `{task}` timed out after {limit:?}")]
    TimedOut {
        /// The task type.
        task: String,
        /// The time limit it ran past.
        limit: Duration,
    },
    /// The task was cancelled through its handle.
    #[error("task was cancelled")]
    Cancelled,
    /// The pool was terminated before the task finished.
    #[error("task was terminated with its pool")]
    Terminated,
    /// The worker that took the task has no handler for its type. Threads
    /// share one handler set, so a thread pool refuses such a task at
    /// submission instead ([`SubmitErrorReason::UnknownTaskType`]); this is
    /// what a worker across a process or network boundary answers.
    #[error("no handler for task type `{name}`")]
    UnknownTaskType {
        /// The task type that has no handler.
        name: String,
    },
    /// The task's data could not be decoded into the handler's input type.
    #[error("invalid input for task `{task}`: {message}")]
    InvalidInput {
        /// The task type.
        task: String,
        /// What was wrong with the data.
        message: String,
    },
    /// The handler's output could not be encoded for the caller.
    #[error("invalid output from task `{task}`: {message}")]
    InvalidOutput {
        /// The task type.
        task: String,
        /// What went wrong encoding it.
        message: String,
    },
    /// The task was still queued at its deadline and was not submitted with
    /// `run_late`, so it settled without running.
    #[error("task `{task}` expired: still queued at its deadline")]
    Expired {
        /// The task type.
        task: String,
    },
    /// A newer task with the same supersede key was submitted while this one
    /// was still queued, so this one settled without running.
    #[error("task `{task}` was superseded by a newer task with its key")]
    Superseded {
        /// The task type.
        task: String,
    },
    /// A task this one depends on did not succeed (it failed, panicked, timed
    /// out, was cancelled, expired or was superseded), so this one never ran.
    #[error("dependency {dependency} did not succeed: {cause}")]
    DependencyFailed {
        /// The dependency that did not succeed: the first one seen to end.
        dependency: crate::task::TaskId,
        /// How it ended.
        cause: Box<TaskError>,
    },
    /// The worker could not build its state (`initialize` failed), so it could
    /// not run the task.
    #[error("worker {worker} could not initialize: {error}")]
    WorkerUnavailable {
        /// The worker's id.
        worker: usize,
        /// What its initializer returned.
        error: HandlerError,
    },
    /// The worker process running the task died, or broke the protocol and
    /// was killed; a fresh process takes its place before the next task.
    #[error("worker {worker} crashed: {cause}")]
    WorkerCrashed {
        /// The worker's id.
        worker: usize,
        /// How it ended ("killed by SIGSEGV", "exited with code 3") or what it
        /// did wrong ("sent a garbled frame: ...").
        cause: String,
    },
}

impl TaskError {
    /// The kind of ending, for matching without the details.
    pub fn kind(&self) -> TaskErrorKind {
        match self {
            TaskError::Failed { .. } => TaskErrorKind::Failed,
            TaskError::Panicked { .. } => TaskErrorKind::Panicked,
            TaskError::TimedOut { .. } => TaskErrorKind::TimedOut,
            TaskError::Cancelled => TaskErrorKind::Cancelled,
            TaskError::Terminated => TaskErrorKind::Terminated,
            TaskError::Expired { .. } => TaskErrorKind::Expired,
            TaskError::Superseded { .. } => TaskErrorKind::Superseded,
            TaskError::DependencyFailed { .. } => TaskErrorKind::DependencyFailed,
            TaskError::UnknownTaskType { .. }
            | TaskError::InvalidInput { .. }
            | TaskError::InvalidOutput { .. }
            | TaskError::WorkerUnavailable { .. }
            | TaskError::WorkerCrashed { .. } => TaskErrorKind::Failed,
        }
    }
}

/// The ways a task can end without a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskErrorKind {
    /// The handler (or its worker, or its data) failed.
    Failed,
    /// The handler panicked.
    Panicked,
    /// The task ran past its time limit.
    TimedOut,
    /// The task was cancelled.
    Cancelled,
    /// The pool was terminated.
    Terminated,
    /// It was still queued at its deadline.
    Expired,
    /// A newer task with its supersede key replaced it while queued.
    Superseded,
    /// A task it depends on did not succeed.
    DependencyFailed,
}

/// Why a submission was refused. The task's input is handed back untouched.
#[derive(thiserror::Error)]
#[error("{reason}")]
pub struct SubmitError<I> {
    reason: SubmitErrorReason,
    input: I,
}

impl<I> SubmitError<I> {
    pub(crate) fn new(reason: SubmitErrorReason, input: I) -> Self {
        SubmitError { reason, input }
    }

    /// Why the submission was refused.
    pub fn reason(&self) -> &SubmitErrorReason {
        &self.reason
    }

    /// The input that was not submitted.
    pub fn into_input(self) -> I {
        self.input
    }
}

impl<I> fmt::Debug for SubmitError<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubmitError")
            .field("reason", &self.reason)
            .finish_non_exhaustive()
    }
}

/// The reasons a submission can be refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitErrorReason {
    /// `close()` was called (or the last pool handle dropped): no new tasks.
    #[error("the pool is closed and takes no new tasks")]
    Closed,
    /// `terminate()` was called: no new tasks.
    #[error("the pool was terminated and takes no new tasks")]
    Terminated,
    /// No handler is registered under this task type.
    #[error("no handler for task type `{name}`")]
    UnknownTaskType {
        /// The task type that has no handler.
        name: String,
    },
    /// The queue holds `max_queue_size` tasks: try again later, or use
    /// `submit_async` to wait for room.
    #[error("the queue is full ({limit} tasks)")]
    QueueFull {
        /// The pool's `max_queue_size`.
        limit: usize,
    },
    /// A dependency named by id is not a task submitted with `dependable()`
    /// that is still unsettled. (A task that has already settled is no longer
    /// known by id: depend on its handle instead.)
    #[error("unknown dependency {id}: no unsettled dependable task has this id")]
    UnknownDependency {
        /// The id that names no known task.
        id: crate::task::TaskId,
    },
    /// The task names itself, directly, as a dependency.
    #[error("task {id} would depend on itself")]
    DependencyCycle {
        /// The task's id.
        id: crate::task::TaskId,
    },
    /// A caller-chosen id is already used by an unsettled dependable task.
    #[error("task id {id} is already in use")]
    DuplicateId {
        /// The id in use.
        id: crate::task::TaskId,
    },
    /// A per-task option has a value the pool cannot work with.
    #[error("invalid task option `{option}`: {reason}")]
    InvalidOption {
        /// The option's name, as in the request method.
        option: &'static str,
        /// Why the value is refused.
        reason: String,
    },
}

/// Why a pool could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// An option has a value the pool cannot work with.
    #[error("invalid option `{option}`: {reason}")]
    InvalidOption {
        /// The option's name, as in the builder method.
        option: &'static str,
        /// Why the value is refused.
        reason: String,
    },
    /// Two handlers were registered under one task type.
    #[error("two handlers are registered for task type `{name}`")]
    DuplicateHandler {
        /// The task type.
        name: String,
    },
    /// A handler used a name the protocol reserves (`initialize`, `reset`).
    #[error("task type `{name}` is reserved for the worker protocol")]
    ReservedName {
        /// The reserved name.
        name: String,
    },
    /// The operating system refused to start a worker thread.
    #[error("could not start a worker: {0}")]
    Spawn(#[from] std::io::Error),
}
