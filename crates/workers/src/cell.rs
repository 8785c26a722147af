//! The task cell: one allocation per task, shared by its handle, the queue and
//! the worker, holding the input until a worker starts it and the result until
//! the handle takes it.
//!
//! # The settle-once state machine
//!
//! A cell's `state` word holds these flags:
//!
//! - `RUNNING`: a worker has started the task and taken its input.
//! - `CLAIMED`: somebody (the worker with the handler's result, a cancel, the
//!   watchdog's time limit, a terminate) has won the right to settle the task.
//!   Setting it is a compare-and-swap from "not claimed", so **exactly one
//!   party ever settles a task**; every later attempt sees the flag and backs
//!   off. The winner also writes its [`Outcome`] into the word.
//! - `SETTLED`: the winner has written the result; the handle may read it.
//! - `WAKER`, `RUNNER`: a waker is registered for the handle (an awaiting or
//!   blocked caller) or for the worker running an async handler; the settler
//!   wakes each one that is present.
//! - `DEPENDENTS`: tasks wait for this one to settle (see [`Dependent`]); the
//!   settler notifies each exactly once.
//! - `RETRY`: the last attempt failed and the task will run again; `RUNNING`
//!   was cleared in the same step, so the task is back to "not started" and
//!   can still be claimed (a cancel or terminate while it waits).
//!
//! `RUNNING` and `CLAIMED` exclude each other's side effects: the input is
//! taken only by the party that set `RUNNING` while the task was unclaimed, or
//! by a submitter withdrawing a task that was claimed while not running.

use std::any::Any;
use std::cell::UnsafeCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::clock::{self, Ticks};
use crate::error::TaskError;
use crate::sync::{lock, AtomicU64, AtomicUsize, Mutex, Ordering};
use crate::task::TaskId;
use std::sync::Arc;

const RUNNING: usize = 1 << 0;
const CLAIMED: usize = 1 << 1;
const SETTLED: usize = 1 << 2;
const WAKER: usize = 1 << 3;
const RUNNER: usize = 1 << 4;
const DEPENDENTS: usize = 1 << 5;
const RETRY: usize = 1 << 6;
const OUTCOME_SHIFT: usize = 8;
/// Attempts started so far sit above the outcome; each start adds one in the
/// same compare-and-swap that sets `RUNNING`.
const ATTEMPT_SHIFT: usize = 16;
const ATTEMPT: usize = 1 << ATTEMPT_SHIFT;
const OUTCOME_MASK: usize = ATTEMPT - 1;

/// How a task settled; written into the state word by the party that claimed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Outcome {
    /// The handler returned a value.
    Succeeded = 1,
    /// The handler returned an error, or the task could not run.
    Failed = 2,
    /// The handler panicked.
    Panicked = 3,
    /// The time limit passed.
    TimedOut = 4,
    /// The caller cancelled it.
    Cancelled = 5,
    /// The pool was terminated.
    Terminated = 6,
    /// The submitter took it back because the pool closed during submission.
    Withdrawn = 7,
    /// It was still queued at its deadline.
    Expired = 8,
    /// A newer task with its key replaced it while queued.
    Superseded = 9,
    /// A task it depends on did not succeed.
    DependencyFailed = 10,
}

impl Outcome {
    fn from_bits(bits: usize) -> Option<Outcome> {
        Some(match bits {
            1 => Outcome::Succeeded,
            2 => Outcome::Failed,
            3 => Outcome::Panicked,
            4 => Outcome::TimedOut,
            5 => Outcome::Cancelled,
            6 => Outcome::Terminated,
            7 => Outcome::Withdrawn,
            8 => Outcome::Expired,
            9 => Outcome::Superseded,
            10 => Outcome::DependencyFailed,
            _ => return None,
        })
    }

    /// The outcome an error stands for.
    pub(crate) fn of_error(error: &TaskError) -> Outcome {
        match error {
            TaskError::Panicked { .. } => Outcome::Panicked,
            TaskError::TimedOut { .. } => Outcome::TimedOut,
            TaskError::Cancelled => Outcome::Cancelled,
            TaskError::Terminated => Outcome::Terminated,
            TaskError::Expired { .. } => Outcome::Expired,
            TaskError::Superseded { .. } => Outcome::Superseded,
            TaskError::DependencyFailed { .. } => Outcome::DependencyFailed,
            _ => Outcome::Failed,
        }
    }
}

/// How a task is scheduled: fixed at submission.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sched {
    /// Its priority class; 0 is the lowest.
    pub(crate) priority: u8,
    /// Whether it goes through the scheduler rather than the plain queue.
    pub(crate) scheduled: bool,
    /// When it must have started by, in ticks; 0 for no deadline.
    pub(crate) deadline: Ticks,
    /// Whether it runs even when still queued at its deadline.
    pub(crate) run_late: bool,
    /// Its supersede key, hashed with its task type; 0 for none.
    pub(crate) key_hash: u64,
    /// How many times a failed attempt may be run again.
    pub(crate) max_retries: u32,
}

impl Sched {
    /// Its supersede key, if it has one.
    #[inline]
    pub(crate) fn key(&self) -> Option<u64> {
        (self.key_hash != 0).then_some(self.key_hash)
    }
}

/// The part of a cell that does not depend on the task's types.
pub(crate) struct Header {
    state: AtomicUsize,
    /// Allocated only when somebody waits or an async handler runs: most tiny
    /// tasks settle before their handle is looked at.
    wakers: Mutex<Option<Box<Wakers>>>,
    id: TaskId,
    handler: u32,
    /// The task's own time limit in nanoseconds; 0 for the pool's default.
    timeout_nanos: u64,
    name: &'static str,
    created: Ticks,
    started: AtomicU64,
    completed: AtomicU64,
    sched: Sched,
}

impl Header {
    /// The task's id.
    pub(crate) fn id(&self) -> TaskId {
        self.id
    }

    /// The index of the task type's handler in the pool's catalog.
    pub(crate) fn handler(&self) -> usize {
        self.handler as usize
    }

    /// The task type's name.
    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    /// The task's own time limit, if it has one.
    pub(crate) fn timeout(&self) -> Option<Duration> {
        (self.timeout_nanos != 0).then(|| Duration::from_nanos(self.timeout_nanos))
    }

    /// How the task is scheduled.
    pub(crate) fn sched(&self) -> &Sched {
        &self.sched
    }

    /// Attempts started so far.
    pub(crate) fn attempts(&self) -> usize {
        self.state.load(Ordering::Acquire) >> ATTEMPT_SHIFT
    }

    /// A copy of the error it settled with, once settled without a value.
    pub(crate) fn failure(&self) -> Option<TaskError> {
        lock(&self.wakers).as_ref()?.failure.clone()
    }

    /// Whether its last attempt asked to be run again; clears the request.
    pub(crate) fn take_retry(&self) -> bool {
        self.state.load(Ordering::Acquire) & RETRY != 0
            && self.state.fetch_and(!RETRY, Ordering::AcqRel) & RETRY != 0
    }

    /// When the task was submitted.
    pub(crate) fn created(&self) -> Ticks {
        self.created
    }

    /// Stamps the moment a worker takes the task up.
    pub(crate) fn set_started(&self, now: Ticks) {
        self.started.store(now, Ordering::Relaxed);
    }

    /// When a worker started it (zero: not yet).
    pub(crate) fn started(&self) -> Ticks {
        self.started.load(Ordering::Relaxed)
    }

    /// When it settled (zero: not yet).
    pub(crate) fn completed(&self) -> Ticks {
        self.completed.load(Ordering::Relaxed)
    }

    /// Whether somebody has won the right to settle it.
    pub(crate) fn is_claimed(&self) -> bool {
        self.state.load(Ordering::Acquire) & CLAIMED != 0
    }

    /// Whether its result is ready for the handle.
    pub(crate) fn is_settled(&self) -> bool {
        self.state.load(Ordering::Acquire) & SETTLED != 0
    }

    /// How it settled, once claimed.
    pub(crate) fn outcome(&self) -> Option<Outcome> {
        Outcome::from_bits((self.state.load(Ordering::Acquire) & OUTCOME_MASK) >> OUTCOME_SHIFT)
    }

    /// Registers the waker of the worker running this task's async handler, so
    /// that settling from outside (cancel, time limit) lets it drop the future.
    pub(crate) fn set_runner_waker(&self, waker: &Waker) {
        lock(&self.wakers).get_or_insert_with(Box::default).runner = Some(waker.clone());
        self.state.fetch_or(RUNNER, Ordering::AcqRel);
    }

    /// Sets `RUNNING` unless the task is claimed or already running.
    fn try_start(&self) -> bool {
        let mut current = self.state.load(Ordering::Acquire);
        loop {
            if current & (CLAIMED | RUNNING) != 0 {
                return false;
            }
            match self.state.compare_exchange_weak(
                current,
                (current | RUNNING) + ATTEMPT,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
    }

    /// Claims the right to settle. `only_if_idle` refuses a running task.
    fn try_claim(&self, outcome: Outcome, only_if_idle: bool) -> bool {
        let refuse = if only_if_idle {
            CLAIMED | RUNNING
        } else {
            CLAIMED
        };
        let mut current = self.state.load(Ordering::Acquire);
        loop {
            if current & refuse != 0 {
                return false;
            }
            let claimed = current | CLAIMED | ((outcome as usize) << OUTCOME_SHIFT);
            match self.state.compare_exchange_weak(
                current,
                claimed,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
    }

    /// Clears `RUNNING` and sets `RETRY`, unless somebody claimed the task
    /// meanwhile. Returns whether the task will run again.
    fn try_retry(&self) -> bool {
        let mut current = self.state.load(Ordering::Acquire);
        loop {
            if current & CLAIMED != 0 || current & RUNNING == 0 {
                return false;
            }
            let retrying = (current & !RUNNING) | RETRY;
            match self.state.compare_exchange_weak(
                current,
                retrying,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
    }

    /// Publishes the written result, wakes whoever waits for it and notifies
    /// the tasks that depend on it.
    fn publish(&self) {
        self.completed.store(clock::now(), Ordering::Relaxed);
        let before = self.state.fetch_or(SETTLED, Ordering::AcqRel);
        if before & (WAKER | RUNNER | DEPENDENTS) == 0 {
            return;
        }
        // Take what is to be woken, leaving the failure for late dependents.
        let (handle, runner, dependents) = match lock(&self.wakers).as_mut() {
            Some(wakers) => (
                wakers.handle.take(),
                wakers.runner.take(),
                std::mem::take(&mut wakers.dependents),
            ),
            None => return,
        };
        handle.into_iter().chain(runner).for_each(Waker::wake);
        for dependent in dependents {
            dependent.dependency_settled(self);
        }
    }

    /// Registers a task waiting for this one; it is notified exactly once,
    /// when this one settles (at once if it already has).
    ///
    /// The entry is stored before `DEPENDENTS` is set. If the same atomic step
    /// shows `SETTLED`, the settler may or may not have seen the flag, so
    /// whoever removes the entry from the list (the settler emptying the
    /// list, or this call taking its own entry back) does the notifying.
    pub(crate) fn add_dependent(&self, dependent: Arc<dyn Dependent>) {
        if !self.is_settled() {
            lock(&self.wakers)
                .get_or_insert_with(Box::default)
                .dependents
                .push(Arc::clone(&dependent));
            if self.state.fetch_or(DEPENDENTS, Ordering::AcqRel) & SETTLED == 0 {
                return;
            }
            let mut wakers = lock(&self.wakers);
            let Some(list) = wakers.as_mut().map(|wakers| &mut wakers.dependents) else {
                return;
            };
            let mine = list
                .iter()
                .position(|entry| std::ptr::addr_eq(Arc::as_ptr(entry), Arc::as_ptr(&dependent)));
            match mine {
                Some(position) => drop(list.swap_remove(position)),
                None => return,
            }
        }
        dependent.dependency_settled(self);
    }

    /// Registers the handle's waker; returns true if the task is already settled.
    fn register_handle_waker(&self, waker: &Waker) -> bool {
        if self.is_settled() {
            return true;
        }
        {
            let mut wakers = lock(&self.wakers);
            let slot = &mut wakers.get_or_insert_with(Box::default).handle;
            match slot.as_ref() {
                Some(existing) if existing.will_wake(waker) => {}
                _ => *slot = Some(waker.clone()),
            }
        }
        self.state.fetch_or(WAKER, Ordering::AcqRel) & SETTLED != 0
    }
}

/// The wakers a settle must wake, and the tasks it must notify.
#[derive(Default)]
struct Wakers {
    /// The handle's (an awaiting or blocked caller).
    handle: Option<Waker>,
    /// The worker's running this task's async handler.
    runner: Option<Waker>,
    /// Tasks waiting for this one.
    dependents: Vec<Arc<dyn Dependent>>,
    /// A copy of the error the task settled with, for the tasks that depend
    /// on it; written by the claimer before `SETTLED`. Only failed tasks
    /// allocate this box for it.
    failure: Option<TaskError>,
}

/// A task waiting for another to settle.
pub(crate) trait Dependent: Send + Sync {
    /// Called exactly once, after `dependency` settled (its outcome and
    /// failure are readable).
    fn dependency_settled(&self, dependency: &Header);
}

/// A task's cell: its header, its input until started and its result until
/// taken. The error is boxed to keep cells of tiny tasks small.
pub(crate) struct TaskCell<I, O> {
    header: Header,
    input: UnsafeCell<Option<I>>,
    output: UnsafeCell<Option<Result<O, Box<TaskError>>>>,
}

// SAFETY: the cell hands `I` and `O` between threads (so they must be `Send`),
// and its `UnsafeCell`s are only touched under the state machine's exclusion:
// `input` by the one party that set `RUNNING` (or withdrew an idle task),
// `output` by the one party that set `CLAIMED` until it sets `SETTLED`, then by
// the handle alone. No `&I` or `&O` is ever shared, so `Sync` needs no more.
unsafe impl<I: Send, O: Send> Sync for TaskCell<I, O> {}
// SAFETY: as above; moving the cell moves `I` and `O`, which are `Send`.
unsafe impl<I: Send, O: Send> Send for TaskCell<I, O> {}

/// What the cell of a new task needs to know.
pub(crate) struct CellSpec {
    pub(crate) handler: usize,
    pub(crate) name: &'static str,
    pub(crate) timeout: Option<Duration>,
    /// A caller-chosen id; a random one if `None`.
    pub(crate) id: Option<TaskId>,
    pub(crate) sched: Sched,
}

impl CellSpec {
    /// A task of handler `handler` with default options.
    pub(crate) fn plain(handler: usize, name: &'static str) -> Self {
        CellSpec {
            handler,
            name,
            timeout: None,
            id: None,
            sched: Sched::default(),
        }
    }
}

impl<I: Clone + Send + 'static, O: Send + 'static> TaskCell<I, O> {
    /// A queued task holding `input`.
    #[inline]
    pub(crate) fn new(spec: CellSpec, input: I) -> Arc<Self> {
        Self::with_input(spec, Some(input))
    }

    /// A task whose input comes later ([`provide_input`](Self::provide_input)):
    /// a continuation waiting for its dependencies' results.
    pub(crate) fn without_input(spec: CellSpec) -> Arc<Self> {
        Self::with_input(spec, None)
    }

    #[inline]
    fn with_input(spec: CellSpec, input: Option<I>) -> Arc<Self> {
        Arc::new(TaskCell {
            header: Header {
                state: AtomicUsize::new(0),
                wakers: Mutex::new(None),
                id: spec.id.unwrap_or_else(TaskId::random),
                handler: u32::try_from(spec.handler).unwrap_or(u32::MAX),
                timeout_nanos: spec.timeout.map_or(0, |limit| {
                    u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX).max(1)
                }),
                name: spec.name,
                created: clock::now(),
                started: AtomicU64::new(0),
                completed: AtomicU64::new(0),
                sched: spec.sched,
            },
            input: UnsafeCell::new(input),
            output: UnsafeCell::new(None),
        })
    }

    /// Gives a waiting continuation its input.
    ///
    /// # Safety
    ///
    /// The task must not be queued yet, and only one thread may call this,
    /// once: then nobody else can touch `input` (workers find the task only
    /// after it is queued, which the caller does afterwards).
    pub(crate) unsafe fn provide_input(&self, input: I) {
        // SAFETY: guaranteed by the caller (see above).
        unsafe { *self.input.get() = Some(input) };
    }

    /// Starts the task: marks it running and hands over its input, or `None`
    /// if it was already claimed (cancelled, terminated) or started.
    pub(crate) fn start(&self) -> Option<I> {
        if !self.header.try_start() {
            return None;
        }
        if self.header.started() == 0 {
            self.header.set_started(clock::now());
        }
        let attempt = self.header.attempts();
        let retries_left = attempt <= self.header.sched.max_retries as usize;
        // SAFETY: `try_start` set `RUNNING` on an unclaimed task; only that
        // caller touches `input` until it clears `RUNNING` again (a retry) or
        // the task settles (see the type's SAFETY).
        let slot = unsafe { &mut *self.input.get() };
        if retries_left {
            // Keep the input for the next attempt.
            slot.clone()
        } else {
            slot.take()
        }
    }

    /// Ends an attempt: settles the task with `result`, or, if the attempt
    /// failed with a retryable error and retries are left, marks it to run
    /// again (the worker then schedules it). Returns whether it settled now.
    ///
    /// Only a handler's own non-permanent error, or the crash of the worker
    /// process running it, is retried: a panic, a time limit, bad input or a
    /// permanent error settles at once.
    pub(crate) fn complete(&self, result: Result<O, TaskError>) -> bool {
        let retryable = match &result {
            Err(TaskError::Failed { error, .. }) => !error.is_permanent(),
            // The process died under the task, not because of its data as far as the pool
            // can tell: another process may run it.
            Err(TaskError::WorkerCrashed { .. }) => true,
            _ => false,
        };
        let retries_left = self.header.attempts() <= self.header.sched.max_retries as usize;
        if retryable && retries_left && self.header.try_retry() {
            return false;
        }
        self.settle(result)
    }

    /// Settles a task that no worker has started (queued, waiting for its
    /// dependencies or for a retry) with `error`. Returns whether this call won.
    pub(crate) fn settle_idle(&self, error: TaskError) -> bool {
        if !self.header.try_claim(Outcome::of_error(&error), true) {
            return false;
        }
        self.write_result(Err(error));
        true
    }

    /// Takes back the input of a task that no worker has started, settling it
    /// as withdrawn; `None` if a worker started it or it already settled.
    pub(crate) fn withdraw(&self) -> Option<I> {
        if !self.header.try_claim(Outcome::Withdrawn, true) {
            return None;
        }
        // SAFETY: the claim succeeded while `RUNNING` was clear, and `RUNNING`
        // can no longer be set, so no worker will ever touch `input`.
        let input = unsafe { (*self.input.get()).take() };
        self.header.publish();
        input
    }

    /// Settles the task with `result` unless somebody settled it first.
    /// Returns whether this call won.
    pub(crate) fn settle(&self, result: Result<O, TaskError>) -> bool {
        let outcome = match &result {
            Ok(_) => Outcome::Succeeded,
            Err(error) => Outcome::of_error(error),
        };
        if !self.header.try_claim(outcome, false) {
            return false;
        }
        self.write_result(result);
        true
    }

    /// Writes the result of a task this thread claimed, then publishes it.
    fn write_result(&self, result: Result<O, TaskError>) {
        if let Err(error) = &result {
            let failure = Some(error.clone());
            lock(&self.header.wakers)
                .get_or_insert_with(Box::default)
                .failure = failure;
        }
        // SAFETY: the caller set `CLAIMED`; until `publish` sets `SETTLED`
        // nobody else reads or writes `output`.
        unsafe { *self.output.get() = Some(result.map_err(Box::new)) };
        self.header.publish();
    }

    /// The value a model-checked task settled with, if it succeeded.
    #[cfg(all(test, protozoa_loom))]
    pub(crate) fn try_result_for_model(&self) -> Option<O> {
        self.take_output().and_then(Result::ok)
    }

    /// Takes the result if the task has settled.
    fn take_output(&self) -> Option<Result<O, TaskError>> {
        if !self.header.is_settled() {
            return None;
        }
        // SAFETY: `SETTLED` is set (acquire), so the settler's write is visible
        // and finished; only the handle, which is unique, reads `output` now.
        let output = unsafe { (*self.output.get()).take() };
        output.map(|result| result.map_err(|error| *error))
    }
}

/// The type-erased view of a cell that the queue, the workers and the watchdog use.
pub(crate) trait Job: Send + Sync + 'static {
    /// The cell's header.
    fn header(&self) -> &Header;
    /// Settles the task with an error unless somebody settled it first.
    fn fail(&self, error: TaskError) -> bool;
    /// Settles the task with an error only if no worker runs it now.
    fn fail_idle(&self, error: TaskError) -> bool;
    /// Ends the running attempt with an error: settles the task, or marks it
    /// to run again if the error is retryable and retries are left (see
    /// [`TaskCell::complete`]). Returns whether it settled now.
    fn fail_attempt(&self, error: TaskError) -> bool;
    /// The concrete cell, for a handler to downcast to its own types.
    fn as_any(&self) -> &dyn Any;
    /// The concrete cell as an owned `Arc`, for async handlers to keep.
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

impl<I: Clone + Send + 'static, O: Send + 'static> Job for TaskCell<I, O> {
    fn header(&self) -> &Header {
        &self.header
    }

    fn fail(&self, error: TaskError) -> bool {
        self.settle(Err(error))
    }

    fn fail_idle(&self, error: TaskError) -> bool {
        self.settle_idle(error)
    }

    fn fail_attempt(&self, error: TaskError) -> bool {
        self.complete(Err(error))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

/// The view of a cell that a handle needs: its result type, not its input's.
pub(crate) trait ResultCell<O>: Send + Sync {
    fn header(&self) -> &Header;
    fn poll_result(&self, cx: &mut Context<'_>) -> Poll<Result<O, TaskError>>;
    fn try_result(&self) -> Option<Result<O, TaskError>>;
    fn cancel(&self) -> bool;
    fn as_job(self: Arc<Self>) -> Arc<dyn Job>;
}

impl<I: Clone + Send + 'static, O: Send + 'static> ResultCell<O> for TaskCell<I, O> {
    fn header(&self) -> &Header {
        &self.header
    }

    fn poll_result(&self, cx: &mut Context<'_>) -> Poll<Result<O, TaskError>> {
        if self.header.register_handle_waker(cx.waker()) {
            if let Some(result) = self.take_output() {
                return Poll::Ready(result);
            }
            panic!("a task handle was polled after it had returned its result");
        }
        Poll::Pending
    }

    fn try_result(&self) -> Option<Result<O, TaskError>> {
        self.take_output()
    }

    fn cancel(&self) -> bool {
        self.settle(Err(TaskError::Cancelled))
    }

    fn as_job(self: Arc<Self>) -> Arc<dyn Job> {
        self
    }
}

/// A future over a cell's result; what `TaskHandle` is built on.
pub(crate) struct ResultFuture<'a, O>(pub(crate) &'a dyn ResultCell<O>);

impl<O> Future for ResultFuture<'_, O> {
    type Output = Result<O, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.poll_result(cx)
    }
}

#[cfg(all(test, protozoa_loom))]
mod loom_model {
    //! Exhaustive interleavings of the settle-once state machine.

    use super::*;
    use loom::thread;

    fn cell() -> Arc<TaskCell<u32, u32>> {
        TaskCell::new(CellSpec::plain(0, "model"), 7)
    }

    /// A worker completing, a cancel and a terminate race: exactly one wins,
    /// and the handle reads the winner's result.
    #[test]
    fn complete_cancel_and_terminate_settle_exactly_once() {
        loom::model(|| {
            let task = cell();
            let worker = {
                let task = Arc::clone(&task);
                thread::spawn(move || match task.start() {
                    Some(input) => task.settle(Ok(input * 2)),
                    None => false,
                })
            };
            let canceller = {
                let task = Arc::clone(&task);
                thread::spawn(move || task.cancel())
            };
            let terminated = task.fail(TaskError::Terminated);
            let completed = worker.join().unwrap();
            let cancelled = canceller.join().unwrap();

            let wins = [completed, cancelled, terminated]
                .iter()
                .filter(|won| **won)
                .count();
            assert_eq!(wins, 1);
            let result = task.try_result().expect("settled");
            match result {
                Ok(value) => assert!(completed && value == 14),
                Err(TaskError::Cancelled) => assert!(cancelled),
                Err(TaskError::Terminated) => assert!(terminated),
                Err(other) => panic!("unexpected {other:?}"),
            }
        });
    }

    /// A submitter withdrawing races a worker starting: the input goes to
    /// exactly one of them.
    #[test]
    fn withdraw_and_start_never_both_take_the_input() {
        loom::model(|| {
            let task = cell();
            let worker = {
                let task = Arc::clone(&task);
                thread::spawn(move || task.start())
            };
            let withdrawn = task.withdraw();
            let started = worker.join().unwrap();
            assert!(withdrawn.is_some() != started.is_some());
        });
    }

    /// A handle registering its waker races the settle: the handle either
    /// sees the result at once or is woken.
    #[test]
    fn a_waiting_handle_is_always_woken() {
        use std::sync::atomic::AtomicBool;
        use std::task::{RawWaker, RawWakerVTable};

        loom::model(|| {
            static WOKEN: AtomicBool = AtomicBool::new(false);
            WOKEN.store(false, std::sync::atomic::Ordering::SeqCst);
            fn raw() -> RawWaker {
                RawWaker::new(std::ptr::null(), &VTABLE)
            }
            static VTABLE: RawWakerVTable = RawWakerVTable::new(
                |_| raw(),
                |_| WOKEN.store(true, std::sync::atomic::Ordering::SeqCst),
                |_| WOKEN.store(true, std::sync::atomic::Ordering::SeqCst),
                |_| {},
            );
            // SAFETY: the vtable's functions ignore the data pointer.
            let waker = unsafe { Waker::from_raw(raw()) };

            let task = cell();
            let settler = {
                let task = Arc::clone(&task);
                thread::spawn(move || task.settle(Ok(1)))
            };
            let mut cx = Context::from_waker(&waker);
            let ready = task.poll_result(&mut cx).is_ready();
            settler.join().unwrap();
            assert!(ready || WOKEN.load(std::sync::atomic::Ordering::SeqCst));
        });
    }

    /// A dependent registering races the dependency settling: it is
    /// notified exactly once, and after the result was published.
    #[test]
    fn a_dependent_is_notified_exactly_once() {
        use loom::sync::atomic::AtomicUsize as Count;

        struct Counter(Count);
        impl Dependent for Counter {
            fn dependency_settled(&self, dependency: &Header) {
                assert!(dependency.is_settled());
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }

        loom::model(|| {
            let task = cell();
            let counter = Arc::new(Counter(Count::new(0)));
            let settler = {
                let task = Arc::clone(&task);
                thread::spawn(move || task.settle(Ok(1)))
            };
            task.header
                .add_dependent(Arc::clone(&counter) as Arc<dyn Dependent>);
            settler.join().unwrap();
            assert_eq!(counter.0.load(std::sync::atomic::Ordering::SeqCst), 1);
        });
    }

    /// Superseding (or expiring) a queued task races a worker starting it:
    /// either it is settled unrun, or it runs and the supersede changes nothing.
    #[test]
    fn supersede_and_start_never_both_win() {
        loom::model(|| {
            let task = cell();
            let worker = {
                let task = Arc::clone(&task);
                thread::spawn(move || match task.start() {
                    Some(input) => {
                        task.settle(Ok(input));
                        true
                    }
                    None => false,
                })
            };
            let superseded = task.settle_idle(TaskError::Superseded {
                task: "model".to_owned(),
            });
            let ran = worker.join().unwrap();
            assert!(superseded != ran);
            assert_eq!(task.try_result_for_model().is_some(), ran);
        });
    }

    /// A failed attempt asking for a retry races a cancel: either the cancel
    /// settles the task (no retry), or the retry is recorded and the cancel
    /// then settles the waiting task; never both a retry and a lost result.
    #[test]
    fn a_retry_racing_a_cancel_settles_once() {
        loom::model(|| {
            let mut spec = CellSpec::plain(0, "model");
            spec.sched.max_retries = 1;
            let task: Arc<TaskCell<u32, u32>> = TaskCell::new(spec, 7);
            let worker = {
                let task = Arc::clone(&task);
                thread::spawn(move || {
                    task.start().map(|_| {
                        let error = TaskError::Failed {
                            task: "model".to_owned(),
                            error: crate::HandlerError::new("again"),
                        };
                        task.complete(Err(error))
                    })
                })
            };
            let cancelled = task.cancel();
            let completed = worker.join().unwrap();
            let retrying = task.header.take_retry();
            assert!(cancelled, "a cancel always wins against a retry");
            assert!(task.header.is_settled());
            if retrying {
                assert_eq!(completed, Some(false));
            }
        });
    }
}
