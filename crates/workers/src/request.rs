//! A task about to be submitted: its per-task options (time limit, priority,
//! deadline, supersede key, retries, dependencies) and the three ways to
//! submit it (`submit`, `try_submit`, `submit_async`).

use std::future::Future;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::cell::{CellSpec, Job, Sched, TaskCell};
use crate::clock;
use crate::dependency::Gate;
use crate::error::{SubmitError, SubmitErrorReason};
use crate::handle::TaskHandle;
use crate::pool::WorkerPool;
use crate::scheduler::Priority;
use crate::shared::{Shared, OPEN};
use crate::task::TaskId;

/// Where a request goes: a handler, or nowhere (unknown task type).
pub(crate) enum Target {
    Handler { index: usize, name: &'static str },
    Unknown(String),
}

/// The per-task options of a request. The rarely used ones live in a box,
/// so that a plain submission moves a small value.
#[derive(Default)]
struct Options {
    timeout: Option<Duration>,
    priority: Option<Priority>,
    extra: Option<Box<Extra>>,
}

/// The options most submissions do not use.
#[derive(Default)]
struct Extra {
    deadline: Option<Instant>,
    run_late: bool,
    key: Option<u64>,
    retries: Option<u32>,
    after: Vec<Arc<dyn Job>>,
    after_ids: Vec<TaskId>,
    dependable: bool,
    id: Option<TaskId>,
}

/// A task about to be submitted, with its per-task options; see
/// [`WorkerPool::task`].
///
/// ```
/// # use protozoa_workers::{Handlers, Priority, Task, WorkerPool};
/// # use std::time::{Duration, Instant};
/// # struct Forces;
/// # impl Task for Forces { const NAME: &'static str = "forces"; type Input = u64; type Output = u64; }
/// # let pool = WorkerPool::builder(Handlers::stateless().handler::<Forces>(|_, n, _| Ok(n))).build()?;
/// let frame_end = Instant::now() + Duration::from_micros(16_600);
/// let forces = pool
///     .task::<Forces>(7)
///     .priority(Priority::HIGH)
///     .deadline(frame_end)
///     .key("forces")
///     .submit()?;
/// # let _ = forces.wait();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a task request does nothing until submitted"]
pub struct TaskRequest<'p, I, O> {
    pool: &'p WorkerPool,
    target: Target,
    input: I,
    options: Options,
    _output: PhantomData<fn() -> O>,
}

impl Options {
    fn extra(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }

    /// Whether the task waits for other tasks.
    fn waits(&self) -> bool {
        self.extra
            .as_ref()
            .is_some_and(|extra| !extra.after.is_empty() || !extra.after_ids.is_empty())
    }
}

impl<'p, I: Clone + Send + 'static, O: Send + 'static> TaskRequest<'p, I, O> {
    pub(crate) fn new(pool: &'p WorkerPool, target: Target, input: I) -> Self {
        TaskRequest {
            pool,
            target,
            input,
            options: Options::default(),
            _output: PhantomData,
        }
    }

    /// This task's time limit, counted from its start, instead of the pool's.
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.options.timeout = Some(limit);
        self
    }

    /// This task's priority class (default [`Priority::NORMAL`]); see
    /// [`Priority`] for the order tasks run in.
    pub fn priority(mut self, priority: Priority) -> Self {
        self.options.priority = Some(priority);
        self
    }

    /// The instant by which the task must have started. Within its class the
    /// earliest deadline runs first. A task still queued at its deadline
    /// settles as [`TaskError::Expired`](crate::TaskError::Expired) without
    /// running, unless [`run_late`](Self::run_late) was asked for. A task that
    /// starts in time and finishes after its deadline is counted in
    /// [`OutcomeCounts::finished_late`](crate::OutcomeCounts::finished_late).
    pub fn deadline(mut self, deadline: Instant) -> Self {
        self.options.extra().deadline = Some(deadline);
        self
    }

    /// Runs the task even if it is still queued at its deadline (the deadline
    /// then only orders it).
    pub fn run_late(mut self) -> Self {
        self.options.extra().run_late = true;
        self
    }

    /// A supersede key ("latest wins"): submitting this task settles a queued
    /// task of the same type with an equal key as
    /// [`TaskError::Superseded`](crate::TaskError::Superseded). A task that is
    /// already running is not superseded: both run. Keys are compared by a
    /// 64-bit hash within a task type.
    pub fn key(mut self, key: impl Hash) -> Self {
        let mut hasher = std::hash::DefaultHasher::new();
        key.hash(&mut hasher);
        self.options.extra().key = Some(hasher.finish());
        self
    }

    /// How many times this task runs again after its handler returns an
    /// error, instead of the pool's [`max_retries`](crate::PoolBuilder::max_retries).
    pub fn retries(mut self, retries: u32) -> Self {
        self.options.extra().retries = Some(retries);
        self
    }

    /// Starts this task only after `dependency` has succeeded; if it does not
    /// succeed, this task settles with
    /// [`TaskError::DependencyFailed`](crate::TaskError::DependencyFailed).
    /// A handle names a task that already exists, so dependencies by handle
    /// can never form a cycle. To receive the dependency's result, see
    /// [`WorkerPool::then`].
    pub fn after<D>(mut self, dependency: &TaskHandle<D>) -> Self {
        self.options.extra().after.push(dependency.job());
        self
    }

    /// Starts this task only after the tasks with these ids have succeeded.
    /// Each must be an unsettled task submitted with
    /// [`dependable`](Self::dependable); otherwise the submission is refused
    /// ([`SubmitErrorReason::UnknownDependency`], or
    /// [`SubmitErrorReason::DependencyCycle`] for the task's own id).
    pub fn after_ids(mut self, ids: &[TaskId]) -> Self {
        self.options.extra().after_ids.extend_from_slice(ids);
        self
    }

    /// Lists this task by id until it settles, so that later tasks can name
    /// it in [`after_ids`](Self::after_ids). Only such tasks pay for an entry.
    pub fn dependable(mut self) -> Self {
        self.options.extra().dependable = true;
        self
    }

    /// Gives the task a caller-chosen id instead of a random one. Among
    /// dependable tasks an id must be unique
    /// ([`SubmitErrorReason::DuplicateId`]).
    pub fn id(mut self, id: TaskId) -> Self {
        self.options.extra().id = Some(id);
        self
    }

    /// Submits the task. Returns its handle at once, or hands the input back
    /// if the pool is closed, has no handler for the task type, or its queue
    /// is full (see [`max_queue_size`](crate::PoolBuilder::max_queue_size)).
    pub fn submit(self) -> Result<TaskHandle<O>, SubmitError<I>> {
        self.submit_with(false)
    }

    /// Submits the task, or refuses at once with
    /// [`SubmitErrorReason::QueueFull`] (and the input back) if the queue is
    /// full. The same as [`submit`](Self::submit), named for the intent.
    pub fn try_submit(self) -> Result<TaskHandle<O>, SubmitError<I>> {
        self.submit_with(false)
    }

    /// Submits the task, waiting (asynchronously) for room in the queue if it
    /// is full. Resolves to an error with the input back only if the pool
    /// closes or the request is refused for another reason.
    pub fn submit_async(self) -> SubmitFuture<'p, I, O> {
        SubmitFuture {
            request: Some(self),
        }
    }

    /// Submits; `reserved` says whether a place in the queue is already held.
    fn submit_with(self, reserved: bool) -> Result<TaskHandle<O>, SubmitError<I>> {
        let shared = self.pool.shared();
        let release = |reserved: bool| {
            if reserved {
                shared.backpressure.release(1);
            }
        };
        let (index, name) = match &self.target {
            Target::Handler { index, name } => (*index, *name),
            Target::Unknown(name) => {
                release(reserved);
                let reason = SubmitErrorReason::UnknownTaskType { name: name.clone() };
                return Err(SubmitError::new(reason, self.input));
            }
        };
        let checked = self.check(shared).and_then(|dependencies| {
            // A task that waits for others takes its place when released.
            let waits = !dependencies.is_empty();
            if waits || reserved || shared.backpressure.try_reserve(1) {
                Ok(dependencies)
            } else {
                let limit = shared.backpressure.limit().unwrap_or_default();
                Err(SubmitErrorReason::QueueFull { limit })
            }
        });
        let dependencies = match checked {
            Ok(dependencies) => dependencies,
            Err(reason) => {
                release(reserved);
                return Err(SubmitError::new(reason, self.input));
            }
        };
        if !dependencies.is_empty() {
            release(reserved);
        }

        let spec = self.spec(shared, index, name);
        let cell = TaskCell::<I, O>::new(spec, self.input);
        let job: Arc<dyn Job> = cell.clone();
        if self
            .options
            .extra
            .as_ref()
            .is_some_and(|extra| extra.dependable)
        {
            if let Err(reason) = shared.registry.register(&job) {
                let input = cell.withdraw();
                if dependencies.is_empty() {
                    shared.backpressure.release(1);
                }
                return Err(refused(reason, input));
            }
        }
        if !dependencies.is_empty() {
            Gate::wait_for(shared, job, &dependencies, None);
            return Ok(TaskHandle::new(cell));
        }
        if shared.push(job) != OPEN {
            // Closed while we pushed: take the task back unless a worker (or
            // terminate) got to it first, in which case its handle is valid.
            if let Some(input) = cell.withdraw() {
                let reason = shared.refusal().unwrap_or(SubmitErrorReason::Closed);
                return Err(SubmitError::new(reason, input));
            }
        }
        Ok(TaskHandle::new(cell))
    }

    /// Refusals that do not depend on the queue; resolves dependencies by id.
    fn check(&self, shared: &Shared) -> Result<Vec<Arc<dyn Job>>, SubmitErrorReason> {
        if let Some(reason) = shared.refusal() {
            return Err(reason);
        }
        if self.options.timeout == Some(Duration::ZERO) {
            return Err(SubmitErrorReason::InvalidOption {
                option: "timeout",
                reason: "a zero time limit would fail the task before it starts".to_owned(),
            });
        }
        let Some(extra) = &self.options.extra else {
            return Ok(Vec::new());
        };
        let mut dependencies = extra.after.clone();
        if !extra.after_ids.is_empty() {
            dependencies.extend(shared.registry.resolve(&extra.after_ids, extra.id)?);
        }
        Ok(dependencies)
    }

    /// The cell's description, with the scheduling options resolved.
    fn spec(&self, shared: &Shared, index: usize, name: &'static str) -> CellSpec {
        let options = &self.options;
        let levels = shared.options.priority_levels;
        let normal = shared.scheduler.normal();
        let class = options
            .priority
            .map_or(normal, |p| shared.scheduler.class_of(p.0, levels));
        let none = Extra::default();
        let extra = options.extra.as_deref().unwrap_or(&none);
        let deadline = extra.deadline.map_or(0, clock::from_instant);
        let key_hash = extra.key.map_or(0, |key| {
            let mut hasher = std::hash::DefaultHasher::new();
            (index, key).hash(&mut hasher);
            hasher.finish().max(1)
        });
        CellSpec {
            handler: index,
            name,
            timeout: options.timeout,
            id: extra.id,
            sched: Sched {
                priority: u8::try_from(class).unwrap_or(u8::MAX),
                scheduled: class != normal || deadline != 0,
                deadline,
                run_late: extra.run_late,
                key_hash,
                max_retries: extra.retries.unwrap_or(shared.options.max_retries),
            },
        }
    }
}

/// A refusal after the input went into a cell and came back out.
fn refused<I>(reason: SubmitErrorReason, input: Option<I>) -> SubmitError<I> {
    match input {
        Some(input) => SubmitError::new(reason, input),
        None => unreachable!("a cell that was never queued hands its input back"),
    }
}

/// A submission waiting for room in the queue; see
/// [`TaskRequest::submit_async`].
#[must_use = "a submission does nothing until awaited"]
pub struct SubmitFuture<'p, I, O> {
    request: Option<TaskRequest<'p, I, O>>,
}

impl<I, O> Unpin for SubmitFuture<'_, I, O> {}

impl<I: Clone + Send + 'static, O: Send + 'static> Future for SubmitFuture<'_, I, O> {
    type Output = Result<TaskHandle<O>, SubmitError<I>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(request) = self.request.as_ref() else {
            panic!("a submission was polled after it had finished");
        };
        let shared = Arc::clone(request.pool.shared());
        let waits = request.options.waits();
        let mut reserved = false;
        if shared.refusal().is_none() && !waits && shared.backpressure.limit().is_some() {
            reserved = shared.backpressure.try_reserve(1);
            if !reserved {
                // Full: register, then look once more (see `backpressure`).
                shared.backpressure.wait(cx.waker());
                reserved = shared.backpressure.try_reserve(1);
                if !reserved && shared.refusal().is_none() {
                    return Poll::Pending;
                }
            }
        }
        match self.request.take() {
            Some(request) => Poll::Ready(request.submit_with(reserved)),
            None => Poll::Pending,
        }
    }
}
