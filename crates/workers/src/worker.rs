//! The worker loop: take a task, run its handler, settle it, record it; poll
//! async handlers' futures; spin briefly, then sleep, when there is nothing to do.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use crossbeam_utils::sync::Parker;

use crate::cell::{Job, Outcome};
use crate::clock::{self, Ticks, NEVER};
use crate::error::{HandlerError, TaskError};
use crate::handlers::{Handlers, LocalFuture, Run};
use crate::metrics::WorkerMetrics;
use crate::options::LogLevel;
use crate::shared::{
    Control, Running, Shared, Signal, ASLEEP, AWAKE, CLAIMED, TERMINATED, WAKE_ASYNC, WAKE_CONTROL,
};
use crate::sync::{fence, lock, Ordering};
use crate::task::WorkerInfo;

/// An async handler's future in flight on this worker.
struct LocalTask {
    job: Arc<dyn Job>,
    future: LocalFuture,
    waker: Waker,
}

/// Wakes a worker to poll one of its async tasks again.
struct LocalWaker {
    signal: Arc<Signal>,
    index: usize,
}

impl Wake for LocalWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        lock(&self.signal.ready).push(self.index);
        self.signal.notify(WAKE_ASYNC);
    }
}

/// One worker thread's private state.
struct Worker<S> {
    shared: Arc<Shared>,
    handlers: Arc<Handlers<S>>,
    info: WorkerInfo,
    parker: Parker,
    /// The handlers' state; `None` until built, and again after a panic.
    state: Option<S>,
    /// Whether the state was lost to a panic (so building it is a rebuild).
    lost_state: bool,
    local: Vec<Option<LocalTask>>,
    local_count: usize,
    /// Whether this worker counts itself in `Shared::searching`.
    searching: bool,
    /// The pool's default time limit in ticks ([`NEVER`] for none).
    default_timeout: u64,
    /// Measurements not yet published to the worker's shared slot.
    metrics: WorkerMetrics,
    tasks_done: u64,
    /// Finished tasks still listed as running in the shared slot; they are
    /// removed together with the next registration, under one lock.
    finished: Vec<Arc<dyn Job>>,
    /// When the last task settled, if the worker has been busy since: the
    /// next task's start (one clock reading serves both).
    last_tick: Ticks,
    /// When measurements were last published.
    last_flush: Ticks,
    flush_every: Ticks,
    /// Whether it left the live count itself, idle past `idle_timeout`.
    retired: bool,
}

/// The worker thread's body.
pub(crate) fn run<S: 'static>(
    shared: Arc<Shared>,
    handlers: Arc<Handlers<S>>,
    id: usize,
    searching: bool,
) {
    // The slot's parker matches the unparker others use to wake this worker.
    let parker = lock(&shared.workers[id].parker).take().unwrap_or_default();
    let mut worker = Worker {
        shared,
        handlers,
        info: WorkerInfo { id },
        parker,
        state: None,
        lost_state: false,
        local: Vec::new(),
        local_count: 0,
        searching,
        default_timeout: NEVER,
        metrics: WorkerMetrics::default(),
        tasks_done: 0,
        finished: Vec::new(),
        last_tick: 0,
        last_flush: 0,
        flush_every: clock::ticks_in(FLUSH_INTERVAL),
        retired: false,
    };
    worker.default_timeout = worker
        .shared
        .options
        .task_timeout
        .map_or(NEVER, clock::ticks_in);
    lock(&worker.shared.workers[id].inner).started_at = clock::now();
    if worker.shared.logs(LogLevel::Info) {
        tracing::info!(worker = id, "worker started");
    }
    // Build the state up front so the first task does not pay for it; a
    // failure here is reported to the task that needs it.
    let _ = worker.ensure_state();
    worker.main_loop();
    worker.leave();
}

impl<S: 'static> Worker<S> {
    fn main_loop(&mut self) {
        let max_concurrent = self.shared.options.max_concurrent_tasks;
        let handlers = Arc::clone(&self.handlers);
        let mut idle_rounds = 0;
        loop {
            if self.shared.lifecycle() == TERMINATED {
                return;
            }

            // Requests and async wake-ups first: they are cheap and unblock work.
            let signal = &self.shared.workers[self.info.id].signal;
            let pending = if signal.pending.load(Ordering::Relaxed) != 0 {
                signal.pending.swap(0, Ordering::AcqRel)
            } else {
                0
            };
            if pending & WAKE_CONTROL != 0 {
                self.serve_control();
            }
            if pending & WAKE_ASYNC != 0 {
                self.poll_ready();
            }

            // A new task, if there is room for one.
            if self.local_count < max_concurrent {
                if let Some(job) = self.shared.pop() {
                    self.stop_searching();
                    self.run_job(job, &handlers);
                    idle_rounds = 0;
                    continue;
                }
                self.start_searching();
            }
            if pending != 0 {
                continue;
            }

            // Nothing to do: leave if the pool is closed and drained, else
            // spin a little (a burst often follows), then publish what was
            // measured and sleep. Publishing only once the spin found nothing
            // keeps it off the path of a queue that runs dry for a moment.
            self.last_tick = 0;
            if self.local_count == 0 && self.shared.may_leave() {
                return;
            }
            if idle_rounds < self.shared.options.idle_spins {
                idle_rounds += 1;
                std::thread::yield_now();
                continue;
            }
            self.flush();
            if self.sleep(self.local_count < max_concurrent) {
                self.retired = true;
                return;
            }
            idle_rounds = 0;
        }
    }

    /// Counts this worker among those looking for a task.
    fn start_searching(&mut self) {
        if !self.searching {
            self.searching = true;
            self.shared.searching.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Stops counting this worker as searching, having found a task; if more
    /// wait and nobody else searches, wakes the next sleeper (see `shared`).
    fn stop_searching(&mut self) {
        if !self.searching {
            return;
        }
        self.searching = false;
        if self.shared.searching.fetch_sub(1, Ordering::SeqCst) == 1 && self.shared.has_queued() {
            self.shared.wake_one();
        }
    }

    /// Parks until woken. A worker that can take a task announces itself as
    /// a sleeper first (see `shared` for why no wake-up is lost). Returns true
    /// if the worker slept `idle_timeout` unwoken and may leave (see `scaling`).
    fn sleep(&mut self, can_take_task: bool) -> bool {
        let slot = &self.shared.workers[self.info.id];
        if !can_take_task {
            self.parker.park();
            return false;
        }
        slot.sleep.store(ASLEEP, Ordering::SeqCst);
        self.shared.sleepers.fetch_add(1, Ordering::SeqCst);
        if self.searching {
            self.searching = false;
            self.shared.searching.fetch_sub(1, Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
        let stay_awake = self.shared.has_queued()
            || slot.signal.pending.load(Ordering::SeqCst) != 0
            || (self.local_count == 0 && self.shared.may_leave());
        let mut idle_too_long = false;
        if !stay_awake {
            match self.shared.idle_timeout() {
                Some(timeout) if self.local_count == 0 => {
                    let since = std::time::Instant::now();
                    self.parker.park_timeout(timeout);
                    idle_too_long = since.elapsed() >= timeout;
                }
                _ => self.parker.park(),
            }
        }
        let unwoken = slot
            .sleep
            .compare_exchange(ASLEEP, AWAKE, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok();
        if unwoken {
            self.shared.sleepers.fetch_sub(1, Ordering::AcqRel);
        } else {
            // Claimed by a waker, which counts this worker in `searching`: wait
            // for that count (a few instructions away) before relying on it.
            while slot.sleep.load(Ordering::Acquire) == CLAIMED {
                std::thread::yield_now();
            }
            self.searching = true;
        }
        unwoken && idle_too_long && self.shared.try_retire()
    }

    /// Runs one task taken from the queue.
    fn run_job(&mut self, job: Arc<dyn Job>, handlers: &Handlers<S>) {
        let header = job.header();
        // The last task's end serves as this one's start, unless this one
        // was submitted after it.
        let now = match std::mem::take(&mut self.last_tick) {
            0 => clock::now(),
            tick if tick < header.created() => clock::now(),
            tick => tick,
        };
        if self.expires_unrun(&job, now) {
            // Cancelled, superseded, expired (or withdrawn) while queued.
            if let Some(outcome) = header.outcome() {
                self.metrics.record_outcome(header.handler(), outcome);
            }
            return;
        }

        // Register it as running, so that the watchdog, status() and
        // terminate() can see it; retire finished tasks under the same lock.
        header.set_started(now);
        let deadline = match header.timeout() {
            Some(limit) => clock::after(now, limit),
            None => now.saturating_add(self.default_timeout),
        };
        {
            let mut inner = lock(&self.shared.workers[self.info.id].inner);
            retire(&mut inner.running, &mut self.finished);
            inner.running.push(Running {
                job: Arc::clone(&job),
                deadline,
            });
            if now.saturating_sub(self.last_flush) >= self.flush_every {
                self.last_flush = now;
                inner.metrics.absorb(&mut self.metrics);
                inner.tasks_done += std::mem::take(&mut self.tasks_done);
            }
        }
        if deadline != NEVER {
            self.shared.watchdog.watch(deadline);
        }

        if let Err(error) = self.ensure_state() {
            job.fail(TaskError::WorkerUnavailable {
                worker: self.info.id,
                error,
            });
            self.finish(&job);
            return;
        }
        let Some(state) = self.state.as_mut() else {
            return;
        };

        let worker = self.info.id;
        match &handlers.entries[header.handler()].run {
            Run::Sync(run) => {
                if let Err(panic) = catch_unwind(AssertUnwindSafe(|| run(state, &job, worker))) {
                    self.on_panic(&job, panic);
                }
                self.finish(&job);
            }
            Run::Async(run) => match catch_unwind(AssertUnwindSafe(|| run(state, &job, worker))) {
                Ok(Some(future)) => self.spawn_local(job, future),
                Ok(None) => self.finish(&job),
                Err(panic) => {
                    self.on_panic(&job, panic);
                    self.finish(&job);
                }
            },
        }
    }

    /// Whether a popped task settled while queued, or is settled now because
    /// it is still queued at its deadline.
    #[inline]
    fn expires_unrun(&self, job: &Arc<dyn Job>, now: Ticks) -> bool {
        let header = job.header();
        let sched = header.sched();
        if sched.deadline != 0 && !sched.run_late && now >= sched.deadline {
            let task = header.name().to_owned();
            job.fail_idle(TaskError::Expired { task });
        }
        header.is_claimed()
    }

    /// Records a task that no longer runs on this worker. Its entry in the
    /// shared running list goes with the next registration or [`flush`].
    ///
    /// [`flush`]: Self::flush
    fn finish(&mut self, job: &Arc<dyn Job>) {
        let header = job.header();
        let started = header.started();
        // The settle stamped `completed`; a task that has not settled yet (an
        // async one dropped at leave) ends now.
        let completed = match header.completed() {
            0 => clock::now(),
            stamp => stamp,
        };
        let outcome = header.outcome();
        if matches!(outcome, Some(Outcome::Failed | Outcome::Cancelled))
            && self.shared.logs(LogLevel::Debug)
        {
            tracing::debug!(worker = self.info.id, task = %header.id(), task_type = header.name(),
                outcome = ?outcome, "task did not succeed");
        }
        if started == 0 {
            if let Some(outcome) = outcome {
                self.metrics.record_outcome(header.handler(), outcome);
            }
        } else {
            let wait = started.saturating_sub(header.created());
            let run = completed.saturating_sub(started);
            self.metrics
                .record_run(header.handler(), outcome, wait, run);
            self.tasks_done += 1;
            self.last_tick = completed;
            let deadline = header.sched().deadline;
            if deadline != 0 && completed > deadline && outcome.is_some() {
                self.metrics.record_late(header.handler());
            }
        }
        self.finished.push(Arc::clone(job));

        // A failed attempt that will run again: the watchdog queues it later.
        if header.take_retry() && !header.is_claimed() {
            self.shared.retry_later(Arc::clone(job));
        }
    }

    /// Publishes measurements and removes finished tasks from the shared slot.
    fn flush(&mut self) {
        let mut inner = lock(&self.shared.workers[self.info.id].inner);
        retire(&mut inner.running, &mut self.finished);
        inner.metrics.absorb(&mut self.metrics);
        inner.tasks_done += std::mem::take(&mut self.tasks_done);
        self.last_flush = self.last_tick;
    }

    /// Settles a task whose handler panicked and drops the worker's state, so
    /// that it is built again before the next task.
    fn on_panic(&mut self, job: &Arc<dyn Job>, panic: Box<dyn Any + Send>) {
        let header = job.header();
        let message = panic_message(&*panic);
        job.fail(TaskError::Panicked {
            task: header.name().to_owned(),
            message: message.clone(),
        });
        self.state = None;
        self.lost_state = true;
        if self.shared.logs(LogLevel::Warn) {
            tracing::warn!(worker = self.info.id, task = %header.id(), task_type = header.name(),
                panic = %message, "handler panicked; the worker will be rebuilt");
        }
    }

    /// Builds the worker's state if it has none ("initialize").
    #[inline]
    fn ensure_state(&mut self) -> Result<(), HandlerError> {
        if self.state.is_some() {
            return Ok(());
        }
        self.build_state()
    }

    #[cold]
    fn build_state(&mut self) -> Result<(), HandlerError> {
        let built = catch_unwind(AssertUnwindSafe(|| self.handlers.initialize(&self.info)))
            .unwrap_or_else(|panic| {
                Err(HandlerError::new(format!(
                    "initialize panicked: {}",
                    panic_message(&*panic)
                )))
            });
        match built {
            Ok(state) => {
                if self.lost_state && self.shared.logs(LogLevel::Info) {
                    tracing::info!(worker = self.info.id, "worker rebuilt after a panic");
                }
                self.lost_state = false;
                self.state = Some(state);
                Ok(())
            }
            Err(error) => {
                if self.shared.logs(LogLevel::Error) {
                    tracing::error!(worker = self.info.id, %error, "worker could not initialize");
                }
                Err(error)
            }
        }
    }

    /// Puts an async handler's future in flight and polls it once.
    fn spawn_local(&mut self, job: Arc<dyn Job>, future: LocalFuture) {
        let index = match self.local.iter().position(Option::is_none) {
            Some(index) => index,
            None => {
                self.local.push(None);
                self.local.len() - 1
            }
        };
        let signal = Arc::clone(&self.shared.workers[self.info.id].signal);
        let waker = Waker::from(Arc::new(LocalWaker { signal, index }));
        job.header().set_runner_waker(&waker);
        self.local[index] = Some(LocalTask { job, future, waker });
        self.local_count += 1;
        self.poll_local(index);
    }

    /// Polls the async tasks whose wakers fired.
    fn poll_ready(&mut self) {
        let ready = std::mem::take(&mut *lock(&self.shared.workers[self.info.id].signal.ready));
        for index in ready {
            self.poll_local(index);
        }
    }

    /// Polls one async task; drops it if it settled from outside.
    fn poll_local(&mut self, index: usize) {
        let Some(task) = self.local.get_mut(index).and_then(Option::as_mut) else {
            return;
        };
        let finished = if task.job.header().is_claimed() {
            // Cancelled, timed out or terminated: drop the future unpolled.
            true
        } else {
            let mut cx = Context::from_waker(&task.waker);
            match catch_unwind(AssertUnwindSafe(|| task.future.as_mut().poll(&mut cx))) {
                Ok(Poll::Ready(())) => true,
                Ok(Poll::Pending) => false,
                Err(panic) => {
                    let job = Arc::clone(&task.job);
                    self.on_panic(&job, panic);
                    true
                }
            }
        };
        if finished {
            if let Some(task) = self.local[index].take() {
                self.local_count -= 1;
                drop(task.future);
                self.finish(&task.job);
            }
        }
    }

    /// Serves `initialize` and `reset` requests.
    fn serve_control(&mut self) {
        let requests = match lock(&self.shared.workers[self.info.id].control).as_mut() {
            Some(requests) => std::mem::take(requests),
            None => return,
        };
        for request in requests {
            self.serve(request);
        }
    }

    fn serve(&mut self, request: Control) {
        match request {
            Control::Initialize(round) => {
                self.state = None;
                round.done(self.ensure_state());
            }
            Control::Reset(round) => {
                let result = match self.state.as_mut() {
                    Some(state) => {
                        let (handlers, info) = (&self.handlers, &self.info);
                        catch_unwind(AssertUnwindSafe(|| handlers.reset(state, info)))
                            .unwrap_or_else(|panic| {
                                Err(HandlerError::new(format!(
                                    "reset panicked: {}",
                                    panic_message(&*panic)
                                )))
                            })
                    }
                    None => self.ensure_state(),
                };
                if result.is_err() {
                    self.state = None;
                }
                round.done(result);
            }
        }
    }

    /// Leaves the pool: serves the last requests, drops unfinished futures
    /// (their tasks were settled by `terminate()`), and tells the watchdog if
    /// this was the last worker.
    fn leave(&mut self) {
        if self.searching {
            self.searching = false;
            self.shared.searching.fetch_sub(1, Ordering::SeqCst);
        }
        let last_requests = lock(&self.shared.workers[self.info.id].control).take();
        for request in last_requests.unwrap_or_default() {
            self.serve(request);
        }
        for task in std::mem::take(&mut self.local).into_iter().flatten() {
            task.job.fail(TaskError::Terminated);
            self.finish(&task.job);
        }
        self.local_count = 0;
        self.flush();
        let slot = &self.shared.workers[self.info.id];
        {
            let mut inner = lock(&slot.inner);
            inner.stopped_at = clock::now();
            inner.running.clear();
        }
        if self.shared.logs(LogLevel::Info) {
            tracing::info!(worker = self.info.id, idle = self.retired, "worker stopped");
        }

        // Hand the slot back for a later worker; a retired worker already
        // left the live count, and never is the last one (`min_workers >= 1`).
        *lock(&slot.parker) = Some(std::mem::take(&mut self.parker));
        slot.occupied.store(false, Ordering::SeqCst);
        if !self.retired && self.shared.live_workers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.watchdog.stop();
        }
    }
}

/// How often a busy worker publishes its measurements; an idle one publishes
/// before it sleeps.
const FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);

/// Removes finished tasks from a worker's shared running list.
fn retire(running: &mut Vec<Running>, retired: &mut Vec<Arc<dyn Job>>) {
    for job in retired.drain(..) {
        if let Some(position) = running.iter().position(|r| Arc::ptr_eq(&r.job, &job)) {
            running.swap_remove(position);
        }
    }
}

/// The message of a panic payload.
pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic with a non-text payload".to_owned()
    }
}
