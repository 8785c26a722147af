//! The pool: building it, submitting tasks, watching it, and shutting it down.

use std::any::TypeId;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_deque::Injector;
use crossbeam_utils::sync::Parker;
use crossbeam_utils::CachePadded;
use serde_json::Value;

use crate::backpressure::Backpressure;
use crate::cell::{CellSpec, TaskCell};
use crate::clock;
use crate::dependency::Registry;
use crate::error::{BuildError, SubmitError, TaskError};
use crate::handle::TaskHandle;
use crate::handlers::{Handlers, RESERVED_NAMES};
use crate::metrics::{Metrics, WorkerMetrics};
use crate::options::{LogLevel, PoolOptions};
use crate::request::{Target, TaskRequest};
use crate::scheduler::Scheduler;
use crate::shared::{
    Control, Shared, Signal, Spawner, WorkerInner, WorkerSlot, AWAKE, CLOSED, OPEN, WAKE_CONTROL,
};
use crate::sync::{lock, AtomicUsize, Mutex, Ordering};
use crate::task::{Task, TaskId};
use crate::watchdog::{self, WatchdogShared};
use crate::worker;

/// A pool of worker threads running tasks by type.
///
/// Cloning a `WorkerPool` is cheap (an `Arc`), and every clone submits to the
/// same workers: many clients, one pool. Submitting from many threads at once
/// is safe.
///
/// **Dropping** the last clone closes the pool, as [`close`](Self::close)
/// does: queued and running tasks still run and their handles still resolve,
/// then the workers stop. Dropping never blocks; call [`join`](Self::join)
/// first to wait for the workers.
#[derive(Clone)]
pub struct WorkerPool {
    client: Arc<Client>,
}

/// The part of the pool whose drop closes it: held only by `WorkerPool`s.
struct Client {
    shared: Arc<Shared>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.shared.close();
    }
}

/// Builds a [`WorkerPool`]; see [`WorkerPool::builder`].
pub struct PoolBuilder<S> {
    handlers: Handlers<S>,
    options: PoolOptions,
}

impl<S: 'static> PoolBuilder<S> {
    /// Number of workers (the original's `workerCount`): sets both
    /// [`min_workers`](Self::min_workers) and [`max_workers`](Self::max_workers),
    /// so the pool neither grows nor shrinks. Default: the machine's available
    /// parallelism.
    #[must_use]
    pub fn workers(mut self, count: usize) -> Self {
        self.options.min_workers = count;
        self.options.max_workers = count;
        self
    }

    /// Tasks one worker runs at once (`maxConcurrentTasks`). A synchronous
    /// handler occupies its worker's thread, so only async handlers overlap.
    /// Default: 8.
    #[must_use]
    pub fn max_concurrent_tasks(mut self, count: usize) -> Self {
        self.options.max_concurrent_tasks = count;
        self
    }

    /// Default time limit of a task, counted from its start (`taskTimeout`);
    /// `None` for no limit. Default: 30 seconds.
    #[must_use]
    pub fn task_timeout(mut self, limit: Option<Duration>) -> Self {
        self.options.task_timeout = limit;
        self
    }

    /// Which of the pool's events it emits through `tracing` (`logLevel`).
    /// Default: [`LogLevel::Error`].
    #[must_use]
    pub fn log_level(mut self, level: LogLevel) -> Self {
        self.options.log_level = level;
        self
    }

    /// How many times an idle worker yields and looks at the queue again
    /// before it parks. Spinning keeps a worker awake through the short gaps
    /// of a busy stream (a parked worker costs its waker a system call and
    /// itself a wake-up); every round costs CPU while idle. Default: 64.
    ///
    /// Measured with `protozoa-bench` (2 workers on a shared 2-core machine,
    /// so single figures move by tens of percent between runs):
    ///
    /// | rounds | `dispatch` ns/task | `batch` ns/task | `wake` p50 µs | idle CPU % of a core |
    /// | --- | --- | --- | --- | --- |
    /// | 0 | 1420 | 1006 | 126 | 0.05 |
    /// | 16 | 386 | 461 | 121 | 0.12 |
    /// | 64 | 534 | 484 | 135 | 0.19 |
    /// | 512 | 617 | 688 | 122 | 2.1 |
    ///
    /// Without spinning every gap in a stream parks a worker. Beyond a few
    /// dozen rounds, spinning workers take CPU from the submitting thread and
    /// idle CPU grows past 1 % of a core. Between 16 and 64 single runs do not
    /// separate them, but alternating runs against the same peer (`dispatch`,
    /// ours divided by `threadpool`, three pairs) gave a median of 1.92 for 16
    /// and 1.69 for 64, so 64 stays: a pool idle for a second still burns
    /// only about 0.2 % of a core. A burst after a long idle time starts no
    /// faster with more spinning: the workers are parked by then whatever the
    /// value.
    #[must_use]
    pub fn idle_spins(mut self, rounds: u32) -> Self {
        self.options.idle_spins = rounds;
        self
    }

    /// Workers the pool starts with and never goes below (`minWorkers`).
    /// Default: as [`workers`](Self::workers).
    #[must_use]
    pub fn min_workers(mut self, count: usize) -> Self {
        self.options.min_workers = count;
        self
    }

    /// Workers the pool may grow to while tasks wait (`maxWorkers`): it starts
    /// one more whenever a task is queued while every worker is busy. Default:
    /// as [`workers`](Self::workers).
    #[must_use]
    pub fn max_workers(mut self, count: usize) -> Self {
        self.options.max_workers = count;
        self
    }

    /// How long a worker above `min_workers` may sleep without work before it
    /// leaves (`idleTimeout`). Default: 60 seconds.
    #[must_use]
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.options.idle_timeout = timeout;
        self
    }

    /// Number of priority classes (`priorityLevels`), 1 to 256; see
    /// [`Priority`](crate::Priority). Default: 4 (LOW, NORMAL, HIGH, CRITICAL).
    #[must_use]
    pub fn priority_levels(mut self, levels: usize) -> Self {
        self.options.priority_levels = levels;
        self
    }

    /// Queued tasks beyond which submissions are refused with
    /// [`SubmitErrorReason::QueueFull`](crate::SubmitErrorReason::QueueFull) (`maxQueueSize`), or `None` for no
    /// bound. [`TaskRequest::submit_async`] waits for room instead.
    ///
    /// Default: `None`. The original's 100 would refuse an ordinary burst (a
    /// frame's tasks, a batch): a bound is for callers that produce faster
    /// than the workers can ever run, and its size is theirs to choose.
    #[must_use]
    pub fn max_queue_size(mut self, limit: Option<usize>) -> Self {
        self.options.max_queue_size = limit;
        self
    }

    /// How many times a task whose handler returned an error runs again
    /// (`maxRetries`); per task, [`TaskRequest::retries`]. A permanent error
    /// ([`HandlerError::permanent`](crate::HandlerError::permanent)), a panic
    /// or a time limit is never retried.
    ///
    /// Default: 0. A retry runs the handler again on a copy of the input,
    /// which is only safe for handlers without side effects that must not
    /// happen twice, and it costs a copy of every input; the original's 3 is
    /// one call away for pools whose handlers are safe to re-run.
    #[must_use]
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.options.max_retries = retries;
        self
    }

    /// The wait before a retry (`retryDelay`). Default: 1 second.
    #[must_use]
    pub fn retry_delay(mut self, delay: Duration) -> Self {
        self.options.retry_delay = delay;
        self
    }

    /// Exponential back-off: each retry after the first waits `factor` times
    /// longer than the one before (capped at an hour). Default: 1.0 (none).
    #[must_use]
    pub fn retry_backoff(mut self, factor: f64) -> Self {
        self.options.retry_backoff = factor;
        self
    }

    /// Runs the handlers in worker processes, one per worker, started from
    /// `options.program` (by default the current executable, which must call
    /// [`serve_if_worker`](crate::process::serve_if_worker) first thing in `main`).
    #[cfg(target_os = "linux")]
    pub fn process_workers(
        self,
        options: crate::process::ProcessOptions,
    ) -> PoolBuilder<crate::process::Proxy> {
        PoolBuilder {
            handlers: crate::process::proxy::proxy_handlers(self.handlers, options),
            options: self.options,
        }
    }

    /// Checks the options and starts the workers.
    pub fn build(self) -> Result<WorkerPool, BuildError> {
        self.options.validate()?;
        check_names(&self.handlers)?;

        if let Some(on_build) = &self.handlers.on_build {
            on_build(&self.options);
        }
        let catalog = self.handlers.catalog();
        let handlers = Arc::new(self.handlers);
        let options = self.options;
        let (min, max) = (options.min_workers, options.max_workers);

        let slots = (0..max).map(new_slot).collect();
        let watchdog_parker = Parker::new();
        let spawner = spawner(handlers, options.thread_name.clone());
        let shared = Arc::new_cyclic(|me| Shared {
            me: me.clone(),
            queue: Injector::new(),
            scheduler: Scheduler::new(options.priority_levels),
            backpressure: Backpressure::new(options.max_queue_size),
            keys: Mutex::new(HashMap::new()),
            registry: Arc::new(Registry::default()),
            spawner,
            lifecycle: AtomicUsize::new(OPEN),
            workers: slots,
            sleepers: CachePadded::new(AtomicUsize::new(0)),
            searching: CachePadded::new(AtomicUsize::new(0)),
            live_workers: AtomicUsize::new(min),
            names: catalog.iter().map(|(name, _)| *name).collect(),
            task_types: catalog.iter().map(|(_, task_type)| *task_type).collect(),
            watchdog: WatchdogShared::new(&watchdog_parker),
            options,
            pool_metrics: Mutex::new(WorkerMetrics::default()),
            threads: Mutex::new(Vec::new()),
        });

        // Start the threads; if one cannot start, stop the others and report.
        let started = spawn_threads(&shared, min, watchdog_parker);
        if let Err(error) = started {
            shared.terminate();
            return Err(BuildError::Spawn(error));
        }
        Ok(WorkerPool {
            client: Arc::new(Client { shared }),
        })
    }
}

/// An empty worker slot with its own parker.
fn new_slot(id: usize) -> WorkerSlot {
    let parker = Parker::new();
    WorkerSlot {
        id,
        occupied: AtomicBool::new(false),
        signal: Arc::new(Signal {
            pending: AtomicUsize::new(0),
            ready: Mutex::new(Vec::new()),
            unparker: parker.unparker().clone(),
        }),
        parker: Mutex::new(Some(parker)),
        sleep: AtomicU8::new(AWAKE),
        inner: Mutex::new(WorkerInner::default()),
        control: Mutex::new(None),
    }
}

/// How the pool starts a worker thread in a slot.
fn spawner<S: 'static>(handlers: Arc<Handlers<S>>, prefix: String) -> Box<Spawner> {
    Box::new(move |shared: Arc<Shared>, id: usize, searching: bool| {
        let handlers = Arc::clone(&handlers);
        std::thread::Builder::new()
            .name(format!("{prefix}-{id}"))
            .spawn(move || worker::run(shared, handlers, id, searching))
    })
}

fn check_names<S>(handlers: &Handlers<S>) -> Result<(), BuildError> {
    let mut seen = std::collections::HashSet::new();
    for entry in &handlers.entries {
        if RESERVED_NAMES.contains(&entry.name) {
            return Err(BuildError::ReservedName {
                name: entry.name.to_owned(),
            });
        }
        if !seen.insert(entry.name) {
            return Err(BuildError::DuplicateHandler {
                name: entry.name.to_owned(),
            });
        }
    }
    Ok(())
}

fn spawn_threads(
    shared: &Arc<Shared>,
    count: usize,
    watchdog_parker: Parker,
) -> std::io::Result<()> {
    for id in 0..count {
        shared.workers[id].occupied.store(true, Ordering::SeqCst);
        if let Err(error) = shared.start_worker(id, false) {
            // Workers that never started must not be waited for.
            let missing = count - id;
            if shared.live_workers.fetch_sub(missing, Ordering::AcqRel) == missing {
                shared.watchdog.stop();
            }
            return Err(error);
        }
    }
    let watchdog_shared = Arc::clone(shared);
    let thread = std::thread::Builder::new()
        .name(format!("{}-watchdog", shared.options.thread_name))
        .spawn(move || watchdog::run(watchdog_shared, watchdog_parker))?;
    lock(&shared.threads).push(thread);
    Ok(())
}

impl WorkerPool {
    /// Starts building a pool whose workers run `handlers`.
    ///
    /// ```
    /// use protozoa_workers::{Handlers, Task, WorkerPool};
    ///
    /// struct Double;
    /// impl Task for Double {
    ///     const NAME: &'static str = "double";
    ///     type Input = u64;
    ///     type Output = u64;
    /// }
    ///
    /// let handlers = Handlers::stateless().handler::<Double>(|_, n, _| Ok(n * 2));
    /// let pool = WorkerPool::builder(handlers).workers(2).build()?;
    /// assert_eq!(pool.submit::<Double>(21)?.wait()?, 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder<S: 'static>(handlers: Handlers<S>) -> PoolBuilder<S> {
        PoolBuilder {
            handlers,
            options: PoolOptions::default(),
        }
    }

    /// Submits a task of type `T` with the pool's default options.
    pub fn submit<T: Task>(
        &self,
        input: T::Input,
    ) -> Result<TaskHandle<T::Output>, SubmitError<T::Input>> {
        self.task::<T>(input).submit()
    }

    /// Prepares a task of type `T`, to set per-task options before submitting.
    ///
    /// ```
    /// # use protozoa_workers::{Handlers, Task, WorkerPool};
    /// # use std::time::Duration;
    /// # struct Double;
    /// # impl Task for Double { const NAME: &'static str = "double"; type Input = u64; type Output = u64; }
    /// # let pool = WorkerPool::builder(Handlers::stateless().handler::<Double>(|_, n, _| Ok(n * 2))).build()?;
    /// let handle = pool.task::<Double>(4).timeout(Duration::from_millis(500)).submit()?;
    /// assert_eq!(handle.wait()?, 8);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn task<T: Task>(&self, input: T::Input) -> TaskRequest<'_, T::Input, T::Output> {
        let target = match self.handler_of::<T>() {
            Some((index, name)) => Target::Handler { index, name },
            None => Target::Unknown(T::NAME.to_owned()),
        };
        self.request(target, input)
    }

    /// The index and name of the handler of task type `T`.
    pub(crate) fn handler_of<T: Task>(&self) -> Option<(usize, &'static str)> {
        let shared = &self.client.shared;
        let wanted = TypeId::of::<T>();
        let index = shared
            .task_types
            .iter()
            .position(|task_type| *task_type == wanted)?;
        Some((index, shared.names[index]))
    }

    /// Submits a task by type name with JSON data: the string-keyed form, for
    /// callers that do not link the task's Rust type. The result is the
    /// handler's output as JSON. Data that does not decode into the handler's
    /// input settles as [`TaskError::InvalidInput`].
    pub fn submit_json(
        &self,
        task_type: &str,
        data: Value,
    ) -> Result<TaskHandle<Value>, SubmitError<Value>> {
        self.task_json(task_type, data).submit()
    }

    /// Prepares a string-keyed task, to set per-task options before submitting.
    pub fn task_json(&self, task_type: &str, data: Value) -> TaskRequest<'_, Value, Value> {
        let shared = &self.client.shared;
        let target = match shared.names.iter().position(|name| *name == task_type) {
            Some(index) => Target::Handler {
                index,
                name: shared.names[index],
            },
            None => Target::Unknown(task_type.to_owned()),
        };
        self.request(target, data)
    }

    fn request<I: Clone + Send + 'static, O: Send + 'static>(
        &self,
        target: Target,
        input: I,
    ) -> TaskRequest<'_, I, O> {
        TaskRequest::new(self, target, input)
    }

    /// The state shared with the workers.
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.client.shared
    }

    /// Asks every worker to build its state again from scratch ("initialize").
    /// The handle settles when all have, or with the first error.
    pub fn initialize(&self) -> Result<TaskHandle<()>, SubmitError<()>> {
        self.broadcast(Control::Initialize)
    }

    /// Asks every worker to clear its state ("reset"). The handle settles when
    /// all have, or with the first error.
    pub fn reset(&self) -> Result<TaskHandle<()>, SubmitError<()>> {
        self.broadcast(Control::Reset)
    }

    fn broadcast(
        &self,
        request: fn(Arc<Broadcast>) -> Control,
    ) -> Result<TaskHandle<()>, SubmitError<()>> {
        let shared = &self.client.shared;
        if let Some(reason) = shared.refusal() {
            return Err(SubmitError::new(reason, ()));
        }
        let spec = CellSpec::plain(usize::MAX, "broadcast");
        let cell = TaskCell::<(), ()>::new(spec, ());
        let round = Arc::new(Broadcast {
            cell: Arc::clone(&cell),
            remaining: AtomicUsize::new(shared.workers.len() + 1),
            first_error: Mutex::new(None),
        });
        for slot in shared.workers.iter() {
            match lock(&slot.control).as_mut() {
                Some(requests) => requests.push(request(Arc::clone(&round))),
                // A worker that has left has no state to build or clear.
                None => round.done(Ok(())),
            }
            slot.signal.notify(WAKE_CONTROL);
        }
        round.done(Ok(()));
        Ok(TaskHandle::new(cell))
    }

    /// What every worker is doing, and how many tasks wait.
    pub fn status(&self) -> PoolStatus {
        let shared = &self.client.shared;
        // Slots of a growable pool that never had a thread are not shown.
        let workers = shared
            .workers
            .iter()
            .filter(|slot| {
                slot.occupied.load(Ordering::SeqCst) || lock(&slot.inner).started_at != 0
            })
            .map(|slot| {
                let inner = lock(&slot.inner);
                // Finished tasks linger in the list until the worker's next
                // registration; a settled task is not shown as running.
                let running: Vec<TaskId> = inner
                    .running
                    .iter()
                    .filter(|r| !r.job.header().is_settled())
                    .map(|r| r.job.header().id())
                    .collect();
                let state = if inner.stopped_at != 0 {
                    WorkerState::Stopped
                } else if running.is_empty() {
                    WorkerState::Idle
                } else {
                    WorkerState::Busy
                };
                WorkerStatus {
                    id: slot.id,
                    state,
                    running,
                    tasks_done: inner.tasks_done,
                }
            })
            .collect();
        let lifecycle = match shared.lifecycle() {
            OPEN => Lifecycle::Open,
            CLOSED => Lifecycle::Closed,
            _ => Lifecycle::Terminated,
        };
        PoolStatus {
            workers,
            live_workers: shared.live_workers.load(Ordering::SeqCst),
            queued: shared.queued(),
            lifecycle,
        }
    }

    /// Counts and latency histograms per task type, and worker utilization.
    ///
    /// Each worker records its tasks privately and publishes them every 10 ms
    /// while busy and when it has found no work for its idle spin, so a snapshot taken
    /// the instant a task settles may not include it yet; after
    /// [`join`](Self::join) every task is included.
    pub fn metrics(&self) -> Metrics {
        let shared = &self.client.shared;
        let mut snapshot = Metrics {
            queued: shared.queued(),
            live_workers: shared.live_workers.load(Ordering::SeqCst),
            ..Metrics::default()
        };
        let now = clock::now();
        let (mut busy, mut alive) = (0_u64, 0_u64);
        for slot in shared.workers.iter() {
            let inner = lock(&slot.inner);
            inner
                .metrics
                .merge_into(&shared.names, &mut snapshot.task_types);
            busy += inner.metrics.busy_ticks;
            let end = if inner.stopped_at != 0 {
                inner.stopped_at
            } else {
                now
            };
            if inner.started_at != 0 {
                alive += end.saturating_sub(inner.started_at);
            }
        }
        lock(&shared.pool_metrics).merge_into(&shared.names, &mut snapshot.task_types);
        snapshot.utilization = if alive == 0 {
            0.0
        } else {
            (busy as f64 / alive as f64).min(1.0)
        };
        snapshot
    }

    /// Stops intake: later submissions fail with [`SubmitErrorReason::Closed`](crate::SubmitErrorReason::Closed).
    /// Queued and running tasks still run and settle; then the workers stop.
    /// Returns at once; [`join`](Self::join) waits for the workers.
    pub fn close(&self) {
        self.client.shared.close();
    }

    /// Stops intake and at once settles every queued and running task with
    /// [`TaskError::Terminated`]. Workers stop as soon as their current
    /// handler returns (a thread cannot be killed safely; a handler that
    /// checks its cancellation token returns early). Returns at once.
    pub fn terminate(&self) {
        let shared = &self.client.shared;
        shared.terminate();
        if shared.logs(LogLevel::Info) {
            tracing::info!("pool terminated");
        }
    }

    /// Blocks until every worker thread has stopped, which happens after
    /// [`close`](Self::close) once the queue is drained, or after
    /// [`terminate`](Self::terminate) once running handlers return.
    /// Returns at once on a pool that was already joined.
    pub fn join(&self) {
        let threads = std::mem::take(&mut *lock(&self.client.shared.threads));
        let current = std::thread::current().id();
        for thread in threads {
            // A handler that joins its own pool would wait for itself.
            if thread.thread().id() != current {
                let _ = thread.join();
            }
        }
    }

    /// The number of worker threads running now (fixed unless the pool was
    /// built with `min_workers` below `max_workers`).
    pub fn workers(&self) -> usize {
        self.client.shared.live_workers.load(Ordering::SeqCst)
    }
}

impl fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = &self.client.shared;
        f.debug_struct("WorkerPool")
            .field("workers", &shared.live_workers.load(Ordering::SeqCst))
            .field("queued", &shared.queued())
            .field("lifecycle", &shared.lifecycle())
            .finish()
    }
}

/// An `initialize` or `reset` sent to every worker; settles its handle when
/// the last one answers.
pub(crate) struct Broadcast {
    cell: Arc<TaskCell<(), ()>>,
    remaining: AtomicUsize,
    first_error: Mutex<Option<TaskError>>,
}

impl Broadcast {
    /// One worker's answer.
    pub(crate) fn done(&self, result: Result<(), crate::HandlerError>) {
        if let Err(error) = result {
            let mut first = lock(&self.first_error);
            first.get_or_insert(TaskError::Failed {
                task: "reset".to_owned(),
                error,
            });
        }
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            let result = match lock(&self.first_error).take() {
                Some(error) => Err(error),
                None => Ok(()),
            };
            self.cell.settle(result);
        }
    }

    /// The pool was terminated before every worker answered.
    pub(crate) fn abandon(&self) {
        self.cell.settle(Err(TaskError::Terminated));
    }
}

/// What the pool is doing; see [`WorkerPool::status`].
#[derive(Debug, Clone)]
pub struct PoolStatus {
    /// Each worker that has run (a growable pool's stopped workers included,
    /// until their slot is used again).
    pub workers: Vec<WorkerStatus>,
    /// Worker threads running now.
    pub live_workers: usize,
    /// Tasks waiting in the queue (including cancelled ones not yet removed).
    pub queued: usize,
    /// Whether the pool takes tasks.
    pub lifecycle: Lifecycle,
}

/// One worker; see [`WorkerPool::status`].
#[derive(Debug, Clone)]
pub struct WorkerStatus {
    /// The worker's id.
    pub id: usize,
    /// Idle, busy or stopped.
    pub state: WorkerState,
    /// The tasks it runs now (more than one only with async handlers).
    pub running: Vec<TaskId>,
    /// Tasks it has run.
    pub tasks_done: u64,
}

/// Whether a worker runs a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerState {
    /// Waiting for a task.
    Idle,
    /// Running at least one task.
    Busy,
    /// Gone, after `close()` or `terminate()`.
    Stopped,
}

/// Whether a pool takes tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// Taking tasks.
    Open,
    /// `close()` was called: queued tasks finish, no new ones.
    Closed,
    /// `terminate()` was called.
    Terminated,
}
