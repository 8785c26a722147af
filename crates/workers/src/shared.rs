//! The state a pool shares with its workers and its watchdog: the queue, the
//! lifecycle, one slot per worker, and the protocol by which idle workers sleep
//! and are woken.
//!
//! # Sleeping without losing a wake-up
//!
//! A worker that finds the queue empty counts itself in `searching` while it
//! spins. When it gives up, it marks its slot `sleeping`, counts itself in
//! `sleepers`, leaves `searching`, and looks at the queue once more before it
//! parks. A submitter pushes, then reads both counters, and wakes a sleeper
//! only if nobody is searching: a searching worker will find the task itself,
//! and waking a thread costs the submitter a system call. Both sides put a
//! `SeqCst` fence between their writes and their reads, so at least one of
//! them sees the other: either the worker finds the task, or the submitter
//! sees no searcher and a sleeper, and unparks it. Parking uses a token
//! (`crossbeam_utils::sync::Parker`), so an unpark that comes before the park
//! is not lost either.
//!
//! A searching worker that finds a task while more wait and nobody else
//! searches wakes the next sleeper itself, so a burst fans out to every worker
//! without each submission paying for a wake-up.
//!
//! Whoever wakes a sleeper counts it in `searching` on its behalf, before the
//! unpark: the woken thread takes tens of microseconds to run, and until it
//! does, the next submissions must not think nobody is coming and wake a
//! second worker for the same burst. A woken worker that has not run yet is a
//! searcher that is slow to look, so the argument above still holds. The slot
//! goes `ASLEEP -> CLAIMED` (the waker's compare-exchange) `-> AWAKE` (once
//! `searching` counts it), so a worker whose timed park ends just as it is
//! claimed waits for the count before it touches `searching` itself.
//!
//! "The queue" is two structures: the lock-free `Injector` for plain tasks and
//! the [`Scheduler`] for the rest. Both are pushed before the fence and both
//! are looked at after it ([`Shared::has_queued`]), so the argument holds for
//! either.
//!
//! # Closing without stranding a task
//!
//! A submitter checks the lifecycle, pushes, fences, and checks again. If the
//! pool closed in between, it withdraws its own task (which succeeds only if no
//! worker started it) and hands the input back. A worker leaves only when the
//! pool is closed and, after a fence, the queue is empty. So a task pushed
//! during `close()` is either seen by a worker or withdrawn by its submitter;
//! `terminate()` drains the queue after its own fence, with the same argument.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;

use crossbeam_deque::{Injector, Steal};
use crossbeam_utils::sync::Unparker;
use crossbeam_utils::CachePadded;

use crate::backpressure::Backpressure;
use crate::cell::{Job, Outcome};
use crate::clock::Ticks;
use crate::dependency::Registry;
use crate::error::{SubmitErrorReason, TaskError};
use crate::metrics::WorkerMetrics;
use crate::options::{LogLevel, PoolOptions};
use crate::scheduler::Scheduler;
use crate::sync::{fence, lock, AtomicU64, AtomicUsize, Mutex, Ordering};

/// The pool takes tasks.
pub(crate) const OPEN: usize = 0;
/// `close()` was called: no new tasks, queued ones still run.
pub(crate) const CLOSED: usize = 1;
/// `terminate()` was called: everything settled, workers leave.
pub(crate) const TERMINATED: usize = 2;

/// A worker slot's sleep state: running (or about to look at the queue).
pub(crate) const AWAKE: u8 = 0;
/// Parked, or about to park, and counted in `sleepers`.
pub(crate) const ASLEEP: u8 = 1;
/// Being woken: taken out of `sleepers`, not yet counted in `searching`.
pub(crate) const CLAIMED: u8 = 2;

/// Reasons for a worker to wake, besides the queue.
pub(crate) const WAKE_ASYNC: usize = 1 << 0;
pub(crate) const WAKE_CONTROL: usize = 1 << 1;

/// A running task, as the watchdog, `status()` and `terminate()` see it.
pub(crate) struct Running {
    pub(crate) job: Arc<dyn Job>,
    pub(crate) deadline: Ticks,
}

/// A request to every worker to rebuild or clear its state.
pub(crate) enum Control {
    Initialize(Arc<crate::pool::Broadcast>),
    Reset(Arc<crate::pool::Broadcast>),
}

/// What a worker shares, behind one lock taken twice per task.
#[derive(Default)]
pub(crate) struct WorkerInner {
    pub(crate) running: Vec<Running>,
    pub(crate) metrics: WorkerMetrics,
    pub(crate) tasks_done: u64,
    pub(crate) started_at: Ticks,
    pub(crate) stopped_at: Ticks,
}

/// How to reach a worker: its wake-up reasons and its thread.
pub(crate) struct Signal {
    pub(crate) pending: AtomicUsize,
    /// Indices of async tasks whose wakers fired.
    pub(crate) ready: Mutex<Vec<usize>>,
    pub(crate) unparker: Unparker,
}

impl Signal {
    /// Records a reason to wake and wakes the worker.
    pub(crate) fn notify(&self, reason: usize) {
        self.pending.fetch_or(reason, Ordering::AcqRel);
        self.unparker.unpark();
    }
}

/// One worker's place in the pool.
pub(crate) struct WorkerSlot {
    pub(crate) id: usize,
    /// Whether a thread runs in this slot now.
    pub(crate) occupied: AtomicBool,
    /// The parker matching `signal.unparker`, while no thread holds it.
    pub(crate) parker: Mutex<Option<crossbeam_utils::sync::Parker>>,
    pub(crate) signal: Arc<Signal>,
    /// `AWAKE`, `ASLEEP` or `CLAIMED` (see the module docs).
    pub(crate) sleep: AtomicU8,
    pub(crate) inner: Mutex<WorkerInner>,
    /// Requests for the worker; `None` once it has left.
    pub(crate) control: Mutex<Option<Vec<Control>>>,
}

/// Starts a worker thread in a slot: `(shared, slot, starts_searching)`.
pub(crate) type Spawner =
    dyn Fn(Arc<Shared>, usize, bool) -> std::io::Result<JoinHandle<()>> + Send + Sync;

/// Everything a pool's handles, workers and watchdog share.
pub(crate) struct Shared {
    /// This value's own `Arc`, for starting workers from `&self`.
    pub(crate) me: Weak<Shared>,
    /// Plain tasks: the FIFO part of the normal class.
    pub(crate) queue: Injector<Arc<dyn Job>>,
    /// Every other task, by priority class and deadline.
    pub(crate) scheduler: Scheduler,
    pub(crate) backpressure: Backpressure,
    /// Queued tasks by supersede key.
    pub(crate) keys: Mutex<HashMap<u64, Arc<dyn Job>>>,
    /// Unsettled tasks submitted with `dependable()`, by id.
    pub(crate) registry: Arc<Registry>,
    pub(crate) spawner: Box<Spawner>,
    pub(crate) lifecycle: AtomicUsize,
    pub(crate) workers: Box<[WorkerSlot]>,
    /// Workers asleep; on its own cache line, as `searching`: both change often.
    pub(crate) sleepers: CachePadded<AtomicUsize>,
    /// Workers awake and looking for a task.
    pub(crate) searching: CachePadded<AtomicUsize>,
    /// Worker threads running (slots occupied).
    pub(crate) live_workers: AtomicUsize,
    pub(crate) names: Vec<&'static str>,
    pub(crate) task_types: Vec<std::any::TypeId>,
    pub(crate) options: PoolOptions,
    pub(crate) watchdog: crate::watchdog::WatchdogShared,
    /// Outcomes of tasks that no worker saw (drained by terminate, timed out).
    pub(crate) pool_metrics: Mutex<WorkerMetrics>,
    pub(crate) threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    /// The lifecycle state (`OPEN`, `CLOSED`, `TERMINATED`).
    pub(crate) fn lifecycle(&self) -> usize {
        self.lifecycle.load(Ordering::SeqCst)
    }

    /// Why a submission is refused now, if it is.
    pub(crate) fn refusal(&self) -> Option<SubmitErrorReason> {
        match self.lifecycle() {
            OPEN => None,
            CLOSED => Some(SubmitErrorReason::Closed),
            _ => Some(SubmitErrorReason::Terminated),
        }
    }

    /// Whether the pool emits events at `level`.
    pub(crate) fn logs(&self, level: LogLevel) -> bool {
        self.options.log_level >= level
    }

    /// Takes the next queued task: from the plain queue while the scheduler
    /// is empty (one load), else by the scheduler's rules.
    pub(crate) fn pop(&self) -> Option<Arc<dyn Job>> {
        let job = if self.scheduler.is_empty() {
            self.steal_plain()
        } else {
            self.scheduler.pop(&self.queue)
        }?;
        self.backpressure.release(1);
        if job.header().sched().key_hash != 0 {
            self.forget_key(&job);
        }
        Some(job)
    }

    fn steal_plain(&self) -> Option<Arc<dyn Job>> {
        loop {
            match self.queue.steal() {
                Steal::Success(job) => return Some(job),
                Steal::Empty => return None,
                Steal::Retry => std::hint::spin_loop(),
            }
        }
    }

    /// Whether any task is queued, plain or scheduled.
    pub(crate) fn has_queued(&self) -> bool {
        !self.queue.is_empty() || !self.scheduler.is_empty()
    }

    /// Tasks queued, settled ones not yet removed included.
    pub(crate) fn queued(&self) -> usize {
        self.queue.len() + self.scheduler.len()
    }

    /// Pushes a task and wakes a sleeping worker if there is one. Returns the
    /// lifecycle state seen after the push (see the module docs).
    #[inline]
    pub(crate) fn push(&self, job: Arc<dyn Job>) -> usize {
        self.enqueue(job);
        fence(Ordering::SeqCst);
        if self.searching.load(Ordering::Relaxed) == 0 {
            self.wake_one();
        }
        self.lifecycle.load(Ordering::Relaxed)
    }

    /// Puts a task in the plain queue or the scheduler, without waking.
    #[inline]
    pub(crate) fn enqueue(&self, job: Arc<dyn Job>) {
        let sched = *job.header().sched();
        if let Some(key) = sched.key() {
            self.supersede(key, &job);
        }
        if !sched.scheduled {
            self.queue.push(job);
        } else if let Some(deadline) = self.scheduler.push(job, usize::from(sched.priority)) {
            self.watchdog.watch(deadline);
        }
    }

    /// Queues a task that was already accepted (a released dependent, a
    /// retry): it takes a place in the queue without asking, and if the pool
    /// was terminated meanwhile it settles as terminated (terminate drains
    /// after its fence; this checks after the push's).
    pub(crate) fn push_accepted(&self, job: Arc<dyn Job>) {
        self.backpressure.force_reserve();
        if self.push(Arc::clone(&job)) == TERMINATED && job.fail(TaskError::Terminated) {
            self.record_outside(job.header().handler(), Outcome::Terminated);
        }
        if self.lifecycle() != OPEN {
            // Workers of a closing pool may all be asleep waiting to leave.
            self.wake_all();
        }
    }

    /// Makes `job` the queued task of its key; an older one still queued
    /// settles as superseded (a running one is left alone).
    fn supersede(&self, key: u64, job: &Arc<dyn Job>) {
        let older = lock(&self.keys).insert(key, Arc::clone(job));
        if let Some(older) = older {
            let task = older.header().name().to_owned();
            if older.fail_idle(TaskError::Superseded { task }) {
                self.record_outside(older.header().handler(), Outcome::Superseded);
            }
        }
    }

    /// Removes a popped task from the key map if it is still listed there.
    fn forget_key(&self, job: &Arc<dyn Job>) {
        let Some(key) = job.header().sched().key() else {
            return;
        };
        let mut keys = lock(&self.keys);
        if keys
            .get(&key)
            .is_some_and(|listed| Arc::ptr_eq(listed, job))
        {
            keys.remove(&key);
        }
    }

    /// Wakes one sleeping worker, if any sleeps, counting it as searching; if
    /// none does and the pool may grow, starts a worker instead.
    pub(crate) fn wake_one(&self) {
        if self.sleepers.load(Ordering::Relaxed) == 0 {
            self.grow();
            return;
        }
        if let Some(slot) = self.workers.iter().find(|slot| self.claim(slot)) {
            slot.signal.unparker.unpark();
        }
    }

    /// Wakes every worker (lifecycle changes).
    pub(crate) fn wake_all(&self) {
        for slot in self.workers.iter() {
            self.claim(slot);
            slot.signal.unparker.unpark();
        }
    }

    /// Takes a sleeping worker out of `sleepers` and counts it in `searching`,
    /// if it sleeps; the caller then unparks it.
    fn claim(&self, slot: &WorkerSlot) -> bool {
        if slot
            .sleep
            .compare_exchange(ASLEEP, CLAIMED, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        self.sleepers.fetch_sub(1, Ordering::AcqRel);
        self.searching.fetch_add(1, Ordering::SeqCst);
        slot.sleep.store(AWAKE, Ordering::Release);
        true
    }

    /// Stops intake; queued and running tasks still finish.
    pub(crate) fn close(&self) {
        let _ = self
            .lifecycle
            .compare_exchange(OPEN, CLOSED, Ordering::SeqCst, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        self.wake_all();
        self.backpressure.wake_all();
        self.watchdog.wake();
    }

    /// Stops intake and settles every queued and running task as terminated.
    pub(crate) fn terminate(&self) {
        self.lifecycle.store(TERMINATED, Ordering::SeqCst);
        fence(Ordering::SeqCst);

        // Queued tasks and tasks waiting for a retry: nobody will start them
        // now. (Tasks waiting for a dependency settle when it does.)
        {
            let mut queued: Vec<Arc<dyn Job>> = std::iter::from_fn(|| self.steal_plain()).collect();
            queued.extend(self.scheduler.drain());
            self.backpressure.release(queued.len());
            queued.extend(self.watchdog.drain_retries());
            lock(&self.keys).clear();
            // Settling notifies dependents, which record their own outcomes:
            // no lock is held across it.
            for job in queued {
                job.fail(TaskError::Terminated);
                if let Some(outcome) = job.header().outcome() {
                    self.record_outside(job.header().handler(), outcome);
                }
            }
        }

        // Running tasks: settle them now; their handlers' results are dropped.
        for slot in self.workers.iter() {
            let inner = lock(&slot.inner);
            for running in &inner.running {
                running.job.fail(TaskError::Terminated);
            }
        }

        // Broadcasts still waiting for workers.
        for slot in self.workers.iter() {
            if let Some(requests) = lock(&slot.control).as_mut() {
                for request in requests.drain(..) {
                    match request {
                        Control::Initialize(round) | Control::Reset(round) => round.abandon(),
                    }
                }
            }
        }

        self.wake_all();
        self.backpressure.wake_all();
        self.watchdog.wake();
    }

    /// Whether an idle worker may leave: the pool is closed and, after a
    /// fence, nothing is queued or waiting for a retry.
    pub(crate) fn may_leave(&self) -> bool {
        if self.lifecycle() == OPEN {
            return false;
        }
        fence(Ordering::SeqCst);
        !self.has_queued() && self.watchdog.retries_waiting() == 0
    }

    /// Records the outcome of a task no worker saw settle.
    pub(crate) fn record_outside(&self, handler: usize, outcome: Outcome) {
        lock(&self.pool_metrics).record_outcome(handler, outcome);
    }
}

/// Stamp of the watchdog's next planned wake-up; used by workers to decide
/// whether a new deadline needs it earlier.
pub(crate) type NextWake = AtomicU64;

#[cfg(all(test, protozoa_loom))]
mod loom_model {
    //! The submit/close protocol of this module under every interleaving. The
    //! lock-free queue is replaced by a loom mutex around a `VecDeque` (loom
    //! cannot see inside crossbeam); the steps and orderings are those of
    //! `Shared::push`, `Shared::close`, `Shared::may_leave` and the worker loop.

    use std::collections::VecDeque;
    use std::sync::Arc;

    use loom::sync::atomic::{fence, AtomicUsize, Ordering};
    use loom::sync::Mutex;
    use loom::thread;

    use super::{CLOSED, OPEN};
    use crate::cell::{CellSpec, TaskCell};

    type Cell = Arc<TaskCell<u32, u32>>;

    struct Model {
        queue: Mutex<VecDeque<Cell>>,
        lifecycle: AtomicUsize,
    }

    /// `TaskRequest::submit` with `Shared::push`.
    fn submit(model: &Model, cell: &Cell) -> Result<(), u32> {
        if model.lifecycle.load(Ordering::SeqCst) != OPEN {
            return Err(7);
        }
        model.queue.lock().unwrap().push_back(Arc::clone(cell));
        fence(Ordering::SeqCst);
        if model.lifecycle.load(Ordering::Relaxed) != OPEN {
            if let Some(input) = cell.withdraw() {
                return Err(input);
            }
        }
        Ok(())
    }

    /// `Shared::close`.
    fn close(model: &Model) {
        let _ = model
            .lifecycle
            .compare_exchange(OPEN, CLOSED, Ordering::SeqCst, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// The worker loop: run what is queued; leave once closed and drained.
    fn work(model: &Model) {
        loop {
            let job = model.queue.lock().unwrap().pop_front();
            if let Some(job) = job {
                if let Some(input) = job.start() {
                    job.settle(Ok(input + 1));
                }
                continue;
            }
            if model.lifecycle.load(Ordering::SeqCst) != OPEN {
                fence(Ordering::SeqCst);
                if model.queue.lock().unwrap().is_empty() {
                    return;
                }
            }
            thread::yield_now();
        }
    }

    #[test]
    fn a_task_submitted_while_the_pool_closes_runs_or_is_handed_back() {
        loom::model(|| {
            let model = Arc::new(Model {
                queue: Mutex::new(VecDeque::new()),
                lifecycle: AtomicUsize::new(OPEN),
            });
            let cell: Cell = TaskCell::new(CellSpec::plain(0, "model"), 7);

            let worker = {
                let model = Arc::clone(&model);
                thread::spawn(move || work(&model))
            };
            let submitter = {
                let (model, cell) = (Arc::clone(&model), Arc::clone(&cell));
                thread::spawn(move || submit(&model, &cell))
            };
            close(&model);
            let submitted = submitter.join().unwrap();
            worker.join().unwrap();

            match submitted {
                // Accepted: the worker ran it before leaving.
                Ok(()) => assert_eq!(cell.try_result_for_model(), Some(8)),
                // Refused: the input came back and nothing ran.
                Err(input) => {
                    assert_eq!(input, 7);
                    assert_eq!(cell.try_result_for_model(), None);
                }
            }
        });
    }

    /// The same protocol with the task in the scheduler (a high-priority
    /// task): its entry count is what workers and the close check look at.
    #[test]
    fn a_scheduled_task_submitted_while_the_pool_closes_runs_or_is_handed_back() {
        use crate::cell::Sched;
        use crate::scheduler::Scheduler;
        use crossbeam_deque::Injector;

        struct Pool {
            scheduler: Scheduler,
            plain: Injector<Arc<dyn crate::cell::Job>>,
            lifecycle: AtomicUsize,
        }

        loom::model(|| {
            let pool = Arc::new(Pool {
                scheduler: Scheduler::new(4),
                plain: Injector::new(),
                lifecycle: AtomicUsize::new(OPEN),
            });
            let mut spec = CellSpec::plain(0, "model");
            spec.sched = Sched {
                priority: 3,
                scheduled: true,
                ..Sched::default()
            };
            let cell: Cell = TaskCell::new(spec, 7);

            let worker = {
                let pool = Arc::clone(&pool);
                thread::spawn(move || loop {
                    if let Some(job) = pool.scheduler.pop(&pool.plain) {
                        let cell = job.as_any().downcast_ref::<TaskCell<u32, u32>>().map(|c| {
                            if let Some(input) = c.start() {
                                c.settle(Ok(input + 1));
                            }
                        });
                        assert!(cell.is_some());
                        continue;
                    }
                    if pool.lifecycle.load(Ordering::SeqCst) != OPEN {
                        fence(Ordering::SeqCst);
                        if pool.scheduler.is_empty() {
                            return;
                        }
                    }
                    thread::yield_now();
                })
            };
            let submitter = {
                let (pool, cell) = (Arc::clone(&pool), Arc::clone(&cell));
                thread::spawn(move || {
                    if pool.lifecycle.load(Ordering::SeqCst) != OPEN {
                        return Err(7);
                    }
                    pool.scheduler
                        .push(Arc::clone(&cell) as Arc<dyn crate::cell::Job>, 3);
                    fence(Ordering::SeqCst);
                    if pool.lifecycle.load(Ordering::Relaxed) != OPEN {
                        if let Some(input) = cell.withdraw() {
                            return Err(input);
                        }
                    }
                    Ok(())
                })
            };
            let _ =
                pool.lifecycle
                    .compare_exchange(OPEN, CLOSED, Ordering::SeqCst, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            let submitted = submitter.join().unwrap();
            worker.join().unwrap();
            match submitted {
                Ok(()) => assert_eq!(cell.try_result_for_model(), Some(8)),
                Err(input) => assert_eq!(input, 7),
            }
        });
    }

    /// The sleep/wake protocol: a worker that finds nothing sleeps, two
    /// submitters push a task each and wake a sleeper only when nobody
    /// searches, and a waker counts the worker it claims as searching, so the
    /// second submitter may leave the wake-up to it. The steps and orderings
    /// are those of `Shared::push`, `Shared::wake_one`/`claim` and
    /// `Worker::sleep`/`stop_searching`. A lost wake-up would leave the worker
    /// parked with a task queued, which loom reports as a deadlock; the counts
    /// must come back to what the worker holds.
    #[test]
    fn no_wake_up_is_lost_when_a_waker_counts_the_sleeper_as_searching() {
        use loom::sync::atomic::AtomicU8;

        use super::{ASLEEP, AWAKE, CLAIMED};

        struct Sleepy {
            /// The queue, reduced to its length: only emptiness matters here.
            queued: AtomicUsize,
            searching: AtomicUsize,
            sleepers: AtomicUsize,
            sleep: AtomicU8,
        }

        impl Sleepy {
            fn has_queued(&self) -> bool {
                self.queued.load(Ordering::SeqCst) != 0
            }

            fn pop(&self) -> bool {
                self.queued
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                    .is_ok()
            }

            /// `Shared::wake_one` with `claim`, for the one worker.
            fn wake_one(&self, worker: &thread::Thread) {
                if self.sleepers.load(Ordering::Relaxed) == 0 {
                    return;
                }
                if self
                    .sleep
                    .compare_exchange(ASLEEP, CLAIMED, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    self.sleepers.fetch_sub(1, Ordering::AcqRel);
                    self.searching.fetch_add(1, Ordering::SeqCst);
                    self.sleep.store(AWAKE, Ordering::Release);
                    worker.unpark();
                }
            }
        }

        // Three threads with retry loops: bound the pre-emptions explored so
        // the model finishes in seconds (three cover every ordering of the
        // protocol's steps that matter here).
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(|| {
            let model = Arc::new(Sleepy {
                queued: AtomicUsize::new(0),
                // The worker starts awake and searching.
                searching: AtomicUsize::new(1),
                sleepers: AtomicUsize::new(0),
                sleep: AtomicU8::new(AWAKE),
            });

            let worker = {
                let model = Arc::clone(&model);
                thread::spawn(move || {
                    let mut searching = true;
                    let mut taken = 0;
                    while taken < 2 {
                        if model.pop() {
                            taken += 1;
                            if searching {
                                searching = false;
                                model.searching.fetch_sub(1, Ordering::SeqCst);
                            }
                            continue;
                        }
                        // Nothing found: announce the sleep, leave searching,
                        // look once more, park.
                        model.sleep.store(ASLEEP, Ordering::SeqCst);
                        model.sleepers.fetch_add(1, Ordering::SeqCst);
                        if searching {
                            searching = false;
                            model.searching.fetch_sub(1, Ordering::SeqCst);
                        }
                        fence(Ordering::SeqCst);
                        if !model.has_queued() {
                            thread::park();
                        }
                        if model
                            .sleep
                            .compare_exchange(ASLEEP, AWAKE, Ordering::AcqRel, Ordering::Relaxed)
                            .is_ok()
                        {
                            model.sleepers.fetch_sub(1, Ordering::AcqRel);
                        } else {
                            while model.sleep.load(Ordering::Acquire) == CLAIMED {
                                thread::yield_now();
                            }
                            searching = true;
                        }
                    }
                    searching
                })
            };
            let submitters: Vec<_> = (0..2)
                .map(|_| {
                    let model = Arc::clone(&model);
                    let worker = worker.thread().clone();
                    thread::spawn(move || {
                        model.queued.fetch_add(1, Ordering::SeqCst);
                        fence(Ordering::SeqCst);
                        if model.searching.load(Ordering::Relaxed) == 0 {
                            model.wake_one(&worker);
                        }
                    })
                })
                .collect();
            for submitter in submitters {
                submitter.join().unwrap();
            }
            let still_searching = worker.join().unwrap();

            assert!(!model.has_queued());
            assert_eq!(model.sleepers.load(Ordering::SeqCst), 0);
            assert_eq!(
                model.searching.load(Ordering::SeqCst),
                usize::from(still_searching)
            );
        });
    }
}
