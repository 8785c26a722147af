//! The handlers a worker runs, keyed by task type, and how a worker builds and
//! clears its own state.
//!
//! One `Handlers<S>` value describes a worker completely; the pool gives every
//! worker the same one, and each worker builds its own `S` from it
//! ("initialize"), clears it on request ("reset"), and builds it again after a
//! handler panicked.

use std::any::TypeId;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;

use crate::cell::{Job, TaskCell};
use crate::error::{HandlerError, TaskError};
use crate::options::PoolOptions;
use crate::task::{Task, TaskContext, WorkerInfo};

/// Names the worker protocol keeps for itself.
pub(crate) const RESERVED_NAMES: [&str; 2] = ["initialize", "reset"];

/// A future an async handler returned, wrapped to settle its task when done.
pub(crate) type LocalFuture = Pin<Box<dyn Future<Output = ()>>>;

type Init<S> = dyn Fn(&WorkerInfo) -> Result<S, HandlerError> + Send + Sync;
type Reset<S> = dyn Fn(&mut S) + Send + Sync;
type SyncRun<S> = dyn Fn(&mut S, &Arc<dyn Job>, usize) + Send + Sync;
type AsyncRun<S> = dyn Fn(&mut S, &Arc<dyn Job>, usize) -> Option<LocalFuture> + Send + Sync;

/// How an entry runs a task: to completion on the worker's thread, or as a
/// future the worker polls beside others.
pub(crate) enum Run<S> {
    Sync(Box<SyncRun<S>>),
    Async(Box<AsyncRun<S>>),
}

/// One registered task type.
pub(crate) struct Entry<S> {
    pub(crate) name: &'static str,
    pub(crate) task_type: TypeId,
    pub(crate) run: Run<S>,
    /// How the task's data crosses to a worker process.
    #[cfg(target_os = "linux")]
    pub(crate) codec: crate::process::codec::JobCodec,
}

/// The handlers every worker of a pool runs, and its state's life cycle.
///
/// ```
/// use protozoa_workers::{Handlers, HandlerError, Task};
///
/// struct Add;
/// impl Task for Add {
///     const NAME: &'static str = "add";
///     type Input = (i64, i64);
///     type Output = i64;
/// }
///
/// /// Each worker counts the additions it did.
/// let handlers = Handlers::new(|_worker| Ok(0_u64))
///     .handler::<Add>(|count, (a, b), _task| {
///         *count += 1;
///         a.checked_add(b).ok_or_else(|| HandlerError::new("overflow").permanent())
///     });
/// # let _ = handlers;
/// ```
pub struct Handlers<S> {
    init: Arc<Init<S>>,
    reset: Option<Arc<Reset<S>>>,
    pub(crate) entries: Vec<Entry<S>>,
    /// Told the pool's options when the pool is built (process workers take
    /// their log level from it).
    pub(crate) on_build: Option<Box<OnBuild>>,
}

type OnBuild = dyn Fn(&PoolOptions) + Send + Sync;

impl Handlers<()> {
    /// Handlers for workers that keep no state of their own.
    pub fn stateless() -> Self {
        Handlers::new(|_| Ok(()))
    }
}

impl<S: 'static> Handlers<S> {
    /// Handlers whose workers build their state with `init` ("initialize"): when
    /// the worker starts, and again after one of its handlers panicked.
    pub fn new(
        init: impl Fn(&WorkerInfo) -> Result<S, HandlerError> + Send + Sync + 'static,
    ) -> Self {
        Handlers {
            init: Arc::new(init),
            reset: None,
            entries: Vec::new(),
            on_build: None,
        }
    }

    /// How a worker clears its state on `reset`; by default it builds it again
    /// with the initializer.
    #[must_use]
    pub fn on_reset(mut self, reset: impl Fn(&mut S) + Send + Sync + 'static) -> Self {
        self.reset = Some(Arc::new(reset));
        self
    }

    /// Registers a synchronous handler for task type `T`: a function of the
    /// worker's state and the task's input that returns the output or an error.
    #[must_use]
    pub fn handler<T: Task>(
        mut self,
        handler: impl Fn(&mut S, T::Input, &TaskContext<'_>) -> Result<T::Output, HandlerError>
            + Send
            + Sync
            + 'static,
    ) -> Self {
        let run = move |state: &mut S, job: &Arc<dyn Job>, worker: usize| {
            let context = TaskContext::new(job, worker);
            let any = job.as_any();
            if let Some(cell) = any.downcast_ref::<TaskCell<T::Input, T::Output>>() {
                if let Some(input) = cell.start() {
                    cell.complete(handler(state, input, &context).map_err(failed::<T>));
                }
            } else if let Some(cell) = any.downcast_ref::<TaskCell<Value, Value>>() {
                if let Some(value) = cell.start() {
                    let result = decode_input::<T>(value)
                        .and_then(|input| handler(state, input, &context).map_err(failed::<T>))
                        .and_then(encode_output::<T>);
                    cell.complete(result);
                }
            } else if let Some(cell) = any.downcast_ref::<ChunkCell<T>>() {
                if let Some(inputs) = cell.start() {
                    run_chunk(cell, inputs, |input| {
                        handler(state, input, &context).map_err(failed::<T>)
                    });
                }
            } else {
                job.fail(mismatched::<T>());
            }
        };
        self.entries.push(Entry {
            name: T::NAME,
            task_type: TypeId::of::<T>(),
            run: Run::Sync(Box::new(run)),
            #[cfg(target_os = "linux")]
            codec: crate::process::codec::JobCodec::of::<T>(),
        });
        self
    }

    /// Registers an async handler for task type `T`. It may use the worker's
    /// state only to build its future; the future itself is `'static` and runs
    /// on the worker beside up to `max_concurrent_tasks - 1` others, so an
    /// I/O-bound handler does not hold a thread idle. The future need not be
    /// `Send`: it never leaves its worker.
    #[must_use]
    pub fn async_handler<T: Task, F>(
        mut self,
        handler: impl Fn(&mut S, T::Input, &TaskContext<'_>) -> F + Send + Sync + 'static,
    ) -> Self
    where
        F: Future<Output = Result<T::Output, HandlerError>> + 'static,
    {
        let run = move |state: &mut S, job: &Arc<dyn Job>, worker: usize| -> Option<LocalFuture> {
            let context = TaskContext::new(job, worker);
            let any = Arc::clone(job).into_any();
            let any = match any.downcast::<TaskCell<T::Input, T::Output>>() {
                Ok(cell) => {
                    let future = handler(state, cell.start()?, &context);
                    return Some(Box::pin(async move {
                        cell.complete(future.await.map_err(failed::<T>));
                    }));
                }
                Err(any) => any,
            };
            let any = match any.downcast::<ChunkCell<T>>() {
                Ok(cell) => {
                    // Build every item's future now (they may borrow the state
                    // only here), then await them in order.
                    let futures: Vec<F> = cell
                        .start()?
                        .into_iter()
                        .map(|input| handler(state, input, &context))
                        .collect();
                    return Some(Box::pin(async move {
                        let mut results = Vec::with_capacity(futures.len());
                        for future in futures {
                            results.push(future.await.map_err(|e| Box::new(failed::<T>(e))));
                        }
                        cell.complete(Ok(results));
                    }));
                }
                Err(any) => any,
            };
            match any.downcast::<TaskCell<Value, Value>>() {
                Ok(cell) => {
                    let input = match decode_input::<T>(cell.start()?) {
                        Ok(input) => input,
                        Err(error) => {
                            cell.settle(Err(error));
                            return None;
                        }
                    };
                    let future = handler(state, input, &context);
                    Some(Box::pin(async move {
                        let result = future
                            .await
                            .map_err(failed::<T>)
                            .and_then(encode_output::<T>);
                        cell.complete(result);
                    }))
                }
                Err(_) => {
                    job.fail(mismatched::<T>());
                    None
                }
            }
        };
        self.entries.push(Entry {
            name: T::NAME,
            task_type: TypeId::of::<T>(),
            run: Run::Async(Box::new(run)),
            #[cfg(target_os = "linux")]
            codec: crate::process::codec::JobCodec::of::<T>(),
        });
        self
    }

    /// Builds a worker's state ("initialize").
    pub(crate) fn initialize(&self, worker: &WorkerInfo) -> Result<S, HandlerError> {
        (self.init)(worker)
    }

    /// Clears a worker's state ("reset").
    pub(crate) fn reset(&self, state: &mut S, worker: &WorkerInfo) -> Result<(), HandlerError> {
        match &self.reset {
            Some(reset) => {
                reset(state);
                Ok(())
            }
            None => {
                *state = self.initialize(worker)?;
                Ok(())
            }
        }
    }

    /// The task types in registration order: their names and Rust types.
    pub(crate) fn catalog(&self) -> Vec<(&'static str, TypeId)> {
        self.entries
            .iter()
            .map(|entry| (entry.name, entry.task_type))
            .collect()
    }
}

/// The cell of a batch chunk of task type `T`: its items' inputs, and their
/// results (see `batch`).
pub(crate) type ChunkCell<T> =
    TaskCell<Vec<<T as Task>::Input>, Vec<ItemResult<<T as Task>::Output>>>;

/// One chunk item's result. The error is boxed so that a chunk's results take
/// little more room than its outputs: they are allocated by the worker and
/// freed by the submitter, and a small block crosses threads far more cheaply
/// than an error-sized slot per item (`TaskError` is 80 bytes).
pub(crate) type ItemResult<O> = Result<O, Box<TaskError>>;

/// Runs a chunk's items in order and settles the chunk with their results.
///
/// A panicking item settles as `Panicked`, and so do the items after it,
/// unrun: the panic is then raised again so that the worker rebuilds its state
/// before anything else runs on it.
fn run_chunk<I, O>(
    cell: &TaskCell<Vec<I>, Vec<ItemResult<O>>>,
    inputs: Vec<I>,
    mut run: impl FnMut(I) -> Result<O, TaskError>,
) where
    I: Clone + Send + 'static,
    O: Send + 'static,
{
    let count = inputs.len();
    let mut results = Vec::with_capacity(count);
    let mut inputs = inputs.into_iter();
    let mut panic = None;
    for input in inputs.by_ref() {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(input))) {
            Ok(result) => results.push(result.map_err(Box::new)),
            Err(payload) => {
                let message = crate::worker::panic_message(&*payload);
                results.push(Err(Box::new(TaskError::Panicked {
                    task: cell.header().name().to_owned(),
                    message,
                })));
                panic = Some(payload);
                break;
            }
        }
    }
    let skipped = count - results.len();
    results.extend(
        (0..skipped)
            .map(|_| TaskError::Panicked {
                task: cell.header().name().to_owned(),
                message: "not run: an earlier item of its batch panicked on the same worker"
                    .to_owned(),
            })
            .map(|error| Err(Box::new(error))),
    );
    cell.complete(Ok(results));
    if let Some(payload) = panic {
        std::panic::resume_unwind(payload);
    }
}

fn failed<T: Task>(error: HandlerError) -> TaskError {
    TaskError::Failed {
        task: T::NAME.to_owned(),
        error,
    }
}

fn decode_input<T: Task>(value: Value) -> Result<T::Input, TaskError> {
    serde_json::from_value(value).map_err(|error| TaskError::InvalidInput {
        task: T::NAME.to_owned(),
        message: error.to_string(),
    })
}

fn encode_output<T: Task>(output: T::Output) -> Result<Value, TaskError> {
    serde_json::to_value(output).map_err(|error| TaskError::InvalidOutput {
        task: T::NAME.to_owned(),
        message: error.to_string(),
    })
}

/// A cell whose types match neither the task type nor the JSON form. The pool
/// routes by task type, so this means two task types share a name.
fn mismatched<T: Task>() -> TaskError {
    TaskError::InvalidInput {
        task: T::NAME.to_owned(),
        message: "the submitted data has another Rust type than this handler takes".to_owned(),
    }
}
