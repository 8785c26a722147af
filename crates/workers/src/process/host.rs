//! A worker process running the same [`Handlers`] as a thread worker: the adapter between the
//! registry and [`worker_side::serve`](super::worker_side::serve).
//!
//! Each request is handled as a thread worker would: the state is built on `Initialize` (or
//! before the first task), cleared on `Reset`, and built again after a handler panicked; a
//! task's input is decoded by its [`JobCodec`] into a job the registered handler runs, and
//! its result is encoded back. A `Cancel` from the pool settles the local job, so the
//! handler's `TaskContext::is_cancelled` turns true as it would in a thread.
//!
//! Limit: async handlers run one at a time in a worker process (`max_concurrent_tasks` is not
//! honoured): the request loop hands over one request at a time.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::task::{Context, Wake, Waker};
use std::thread::{self, Thread};

use super::codec::{failure, JobCodec};
use super::shm::Segment;
use super::wire::{Failure, FailureKind};
use super::worker_side::{
    serve, CancelSignal, Request, RequestBody, Response, WorkerEnv, WorkerSideError,
};
use crate::cell::Job;
use crate::error::TaskError;
use crate::handlers::{Handlers, LocalFuture, Run};
use crate::task::WorkerInfo;
use crate::worker::panic_message;

/// The worker program's entry point: call it first thing in `main` with the handlers of the
/// pool's task types.
///
/// If this process was started as a worker process (its environment names an inherited
/// channel), it serves `handlers` until the pool closes the channel and returns `true`: the
/// caller should then exit. Otherwise it returns `false` at once. Events are logged through
/// `tracing` to stderr, with the worker id, unless the program installed a subscriber already.
/// A channel that breaks (the pool sent a frame this side refuses) is logged and ends the
/// process with exit code 2, which the pool reports with the task that was running.
///
/// ```no_run
/// use protozoa_workers::{process, Handlers};
///
/// fn main() {
///     let handlers = Handlers::stateless();
///     if process::serve_if_worker(&handlers) {
///         return;
///     }
///     // ... build the pool with `.process_workers(...)` and submit work
/// }
/// ```
pub fn serve_if_worker<S: 'static>(handlers: &Handlers<S>) -> bool {
    let env = match WorkerEnv::from_env() {
        Ok(Some(env)) => env,
        Ok(None) => return false,
        Err(error) => {
            eprintln!("protozoa worker: cannot start: {error}");
            std::process::exit(2);
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .try_init();
    let span = tracing::info_span!("worker", id = env.worker_id);
    let _entered = span.enter();
    tracing::debug!(pid = std::process::id(), "worker process serving");
    if let Err(error) = serve_handlers(env, handlers) {
        tracing::error!(%error, "worker process stops");
        std::process::exit(2);
    }
    true
}

/// Serves `handlers` over the inherited channel until the pool closes it.
pub fn serve_handlers<S: 'static>(
    env: WorkerEnv,
    handlers: &Handlers<S>,
) -> Result<(), WorkerSideError> {
    let worker = usize::try_from(env.worker_id).unwrap_or(usize::MAX);
    let mut host = HandlerHost::new(handlers, worker);
    let names = host.task_names();
    serve(env, names, |request| host.handle(request))
}

/// The registry, the worker's state, and the route from task name to handler and codec.
struct HandlerHost<'h, S> {
    handlers: &'h Handlers<S>,
    routes: HashMap<&'static str, (usize, JobCodec)>,
    info: WorkerInfo,
    state: Option<S>,
}

impl<'h, S: 'static> HandlerHost<'h, S> {
    fn new(handlers: &'h Handlers<S>, worker: usize) -> Self {
        let mut routes = HashMap::new();
        for (index, entry) in handlers.entries.iter().enumerate() {
            routes.insert(entry.name, (index, entry.codec));
        }
        HandlerHost {
            handlers,
            routes,
            info: WorkerInfo { id: worker },
            state: None,
        }
    }

    /// The names of the task types this worker can run, in registration order.
    fn task_names(&self) -> Vec<String> {
        let entries = self.handlers.entries.iter();
        entries
            .filter(|e| self.routes.contains_key(e.name))
            .map(|e| e.name.to_owned())
            .collect()
    }

    fn handle(&mut self, request: Request) -> Response {
        match request.body {
            RequestBody::Initialize => self.initialize(),
            RequestBody::Reset => self.reset(),
            RequestBody::Run {
                task,
                input,
                segments,
            } => self.run(&task, &input, segments, &request.cancel),
        }
    }

    /// Builds the state ("initialize"); a failure or panic is reported, not fatal.
    fn initialize(&mut self) -> Response {
        let built = catch_unwind(AssertUnwindSafe(|| self.handlers.initialize(&self.info)));
        match built {
            Ok(Ok(state)) => {
                self.state = Some(state);
                Response::done(Vec::new())
            }
            Ok(Err(error)) => {
                let error = TaskError::WorkerUnavailable {
                    worker: self.info.id,
                    error,
                };
                Response::Failed(failure(&error))
            }
            Err(panic) => Response::Failed(initialize_panicked(&*panic)),
        }
    }

    /// Clears the state ("reset"), or builds it if there is none.
    fn reset(&mut self) -> Response {
        let Some(state) = self.state.as_mut() else {
            return self.initialize();
        };
        let handlers = &self.handlers;
        let info = &self.info;
        match catch_unwind(AssertUnwindSafe(|| handlers.reset(state, info))) {
            Ok(Ok(())) => Response::done(Vec::new()),
            Ok(Err(error)) => {
                self.state = None;
                let error = TaskError::WorkerUnavailable {
                    worker: self.info.id,
                    error,
                };
                Response::Failed(failure(&error))
            }
            Err(panic) => {
                self.state = None;
                Response::Failed(initialize_panicked(&*panic))
            }
        }
    }

    fn run(
        &mut self,
        task: &str,
        input: &[u8],
        segments: Vec<Arc<Segment>>,
        cancel: &CancelSignal,
    ) -> Response {
        let Some(&(index, codec)) = self.routes.get(task) else {
            let error = TaskError::UnknownTaskType {
                name: task.to_owned(),
            };
            return Response::Failed(failure(&error));
        };
        if self.state.is_none() {
            if let Response::Failed(failure) = self.initialize() {
                return Response::Failed(failure);
            }
        }

        // Rebuild the job; a cancel from the pool settles it, which the handler can see.
        let job = match codec.job_from_input(index, input, segments) {
            Ok(job) => job,
            Err(error) => return Response::Failed(failure(&error)),
        };
        let cancelled = Arc::clone(&job);
        cancel.on_cancel(move || {
            cancelled.fail(TaskError::Cancelled);
        });

        // Run it; a panic loses the state, as in a thread worker.
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| self.run_entry(index, &job))) {
            self.state = None;
            let message = panic_message(&*panic);
            return Response::Failed(Failure {
                kind: FailureKind::Panicked,
                message,
                backtrace: None,
                permanent: false,
            });
        }

        match codec.output_bytes(&*job) {
            Some(Ok(output)) => Response::Done {
                output: output.bytes,
                segments: output.segments,
            },
            Some(Err(error)) => Response::Failed(failure(&error)),
            None => Response::Failed(failure(&TaskError::InvalidOutput {
                task: task.to_owned(),
                message: "the handler returned without settling its task".to_owned(),
            })),
        }
    }

    fn run_entry(&mut self, index: usize, job: &Arc<dyn Job>) {
        let Some(state) = self.state.as_mut() else {
            return;
        };
        match &self.handlers.entries[index].run {
            Run::Sync(run) => run(state, job, self.info.id),
            Run::Async(run) => {
                if let Some(future) = run(state, job, self.info.id) {
                    block_on(future, job.as_ref());
                }
            }
        }
    }
}

fn initialize_panicked(panic: &(dyn std::any::Any + Send)) -> Failure {
    Failure {
        kind: FailureKind::Initialize,
        message: format!("initialize panicked: {}", panic_message(panic)),
        backtrace: None,
        permanent: false,
    }
}

/// Polls an async handler's future on this thread until it completes or its job is settled
/// without it (cancelled), in which case the future is dropped.
fn block_on(mut future: LocalFuture, job: &dyn Job) {
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    job.header().set_runner_waker(&waker);
    let mut context = Context::from_waker(&waker);
    while !job.header().is_claimed() {
        if future.as_mut().poll(&mut context).is_ready() {
            return;
        }
        thread::park();
    }
}

/// Wakes the thread blocked in [`block_on`].
struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}
