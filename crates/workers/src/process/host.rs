//! A worker process running the same [`Handlers`] as a thread worker: the adapter between the
//! registry and [`worker_side::serve`](super::worker_side::serve).
//!
//! Each request is handled as a thread worker would: the state is built on `Initialize` (or
//! before the first task), cleared on `Reset`, and built again after a handler panicked; a
//! task's input is decoded by its [`JobCodec`] into a job the registered handler runs, and
//! its result is encoded back. A `Cancel` from the pool settles the local job, so the
//! handler's `TaskContext::is_cancelled` turns true as it would in a thread.
//!
//! Limits, each lifted by work in the pool's core rather than here:
//! - the codecs are listed beside the handlers ([`WireCodecs`]) because the registry keeps
//!   no per-type encoder; a `JobCodec` stored by `Handlers::handler` and
//!   `Handlers::async_handler` would make the list unnecessary;
//! - async handlers run one at a time in a worker process (`max_concurrent_tasks` is not
//!   honoured yet): the request loop hands over one request at a time.

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
use crate::task::{Task, WorkerInfo};
use crate::worker::panic_message;

/// The wire codecs of the task types a worker process serves.
#[derive(Debug, Default)]
pub struct WireCodecs {
    codecs: Vec<JobCodec>,
}

impl WireCodecs {
    /// No task type yet.
    pub fn new() -> Self {
        WireCodecs::default()
    }

    /// Adds task type `T`.
    #[must_use]
    pub fn task<T: Task>(mut self) -> Self {
        self.codecs.push(JobCodec::of::<T>());
        self
    }
}

/// Serves `handlers` over the inherited channel until the pool closes it. Task types without
/// a codec in `codecs` are not announced and are answered as unknown.
pub fn serve_handlers<S: 'static>(
    env: WorkerEnv,
    handlers: Handlers<S>,
    codecs: WireCodecs,
) -> Result<(), WorkerSideError> {
    let worker = usize::try_from(env.worker_id).unwrap_or(usize::MAX);
    let mut host = HandlerHost::new(handlers, &codecs, worker);
    let names = host.task_names();
    serve(env, names, |request| host.handle(request))
}

/// The registry, the worker's state, and the route from task name to handler and codec.
struct HandlerHost<S> {
    handlers: Handlers<S>,
    routes: HashMap<&'static str, (usize, JobCodec)>,
    info: WorkerInfo,
    state: Option<S>,
}

impl<S: 'static> HandlerHost<S> {
    fn new(handlers: Handlers<S>, codecs: &WireCodecs, worker: usize) -> Self {
        let mut routes = HashMap::new();
        for (index, entry) in handlers.entries.iter().enumerate() {
            let codec = codecs
                .codecs
                .iter()
                .find(|c| c.task_type() == entry.task_type);
            if let Some(codec) = codec {
                routes.insert(entry.name, (index, *codec));
            }
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
