//! Dependencies: tasks that start only after others succeed.
//!
//! A dependent task is not queued at submission. Its [`Gate`] is registered
//! with each dependency's cell ([`Header::add_dependent`]), which notifies it
//! exactly once when that dependency settles; no thread blocks on anything.
//! The gate counts one more arrival than there are dependencies, the last
//! being the submission itself, so the task cannot be released before every
//! dependency has been registered.
//!
//! - When every dependency has succeeded, the task is queued (a continuation
//!   first builds its input from the dependencies' results).
//! - When one does not succeed, the task settles at once with
//!   [`TaskError::DependencyFailed`] naming it (or [`TaskError::Terminated`]
//!   if the pool was terminated), which in turn settles the tasks that depend
//!   on it, and so on down the chain.
//!
//! So a dependent waits exactly as long as its dependencies do, and those
//! settle at the latest when the pool is terminated: nothing waits forever.
//!
//! # Naming dependencies by id
//!
//! A task submitted with `dependable()` is listed by id in the pool's
//! [`Registry`] until it settles; only such tasks can be named by id. An id
//! must name a listed task when the dependent is submitted, and the
//! dependent's own id is new (or caller-chosen and not listed), so every edge
//! points from a new task to an existing one and **no cycle can form**, except
//! a task naming its own caller-chosen id, which is refused.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Weak};

use crate::cell::{CellSpec, Dependent, Header, Job, Outcome, TaskCell};
use crate::error::{HandlerError, SubmitError, SubmitErrorReason, TaskError};
use crate::handle::TaskHandle;
use crate::pool::WorkerPool;
use crate::shared::Shared;
use crate::sync::{lock, AtomicUsize, Mutex, Ordering};
use crate::task::{Task, TaskId};
use crate::worker::panic_message;

/// Builds a waiting continuation's input once its dependencies succeeded.
pub(crate) type Release = Box<dyn FnOnce() -> Result<(), TaskError> + Send>;

/// A task waiting for its dependencies.
pub(crate) struct Gate {
    job: Arc<dyn Job>,
    shared: Weak<Shared>,
    /// Dependencies not yet succeeded, plus one for the submission.
    remaining: AtomicUsize,
    release: Mutex<Option<Release>>,
}

impl Gate {
    /// Makes `job` wait for `dependencies`, then queues it (after running
    /// `release`, if given).
    pub(crate) fn wait_for(
        shared: &Arc<Shared>,
        job: Arc<dyn Job>,
        dependencies: &[Arc<dyn Job>],
        release: Option<Release>,
    ) {
        let gate = Arc::new(Gate {
            job,
            shared: Arc::downgrade(shared),
            remaining: AtomicUsize::new(dependencies.len() + 1),
            release: Mutex::new(release),
        });
        for dependency in dependencies {
            dependency
                .header()
                .add_dependent(Arc::clone(&gate) as Arc<dyn Dependent>);
        }
        gate.arrive();
    }

    /// One dependency succeeded (or the submission finished registering).
    fn arrive(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) != 1 || self.job.header().is_claimed() {
            return;
        }
        let Some(shared) = self.shared.upgrade() else {
            self.job.fail_idle(TaskError::Terminated);
            return;
        };

        // A continuation builds its input from the results first.
        let release = lock(&self.release).take();
        if let Some(release) = release {
            let built = catch_unwind(AssertUnwindSafe(release)).unwrap_or_else(|panic| {
                Err(TaskError::Failed {
                    task: self.job.header().name().to_owned(),
                    error: HandlerError::new(format!(
                        "building the input from the dependencies' results panicked: {}",
                        panic_message(&*panic)
                    ))
                    .permanent(),
                })
            });
            if let Err(error) = built {
                self.settle_outside(&shared, error);
                return;
            }
        }
        shared.push_accepted(Arc::clone(&self.job));
    }

    /// Settles the waiting task without running it, counting the outcome.
    fn settle_outside(&self, shared: &Shared, error: TaskError) {
        let outcome = Outcome::of_error(&error);
        if self.job.fail_idle(error) {
            shared.record_outside(self.job.header().handler(), outcome);
        }
    }
}

impl Dependent for Gate {
    fn dependency_settled(&self, dependency: &Header) {
        if dependency.outcome() == Some(Outcome::Succeeded) {
            self.arrive();
            return;
        }

        // The first dependency that did not succeed settles the task.
        drop(lock(&self.release).take());
        let cause = dependency.failure().unwrap_or(TaskError::Terminated);
        let error = match cause {
            TaskError::Terminated => TaskError::Terminated,
            cause => TaskError::DependencyFailed {
                dependency: dependency.id(),
                cause: Box::new(cause),
            },
        };
        match self.shared.upgrade() {
            Some(shared) => self.settle_outside(&shared, error),
            None => drop(self.job.fail_idle(error)),
        }
    }
}

/// Unsettled tasks submitted with `dependable()`, by id.
#[derive(Default)]
pub(crate) struct Registry {
    tasks: Mutex<HashMap<TaskId, Arc<dyn Job>>>,
}

/// Removes a task from the registry when it settles.
struct Unregister {
    registry: Weak<Registry>,
    job: *const (),
}

// SAFETY: `job` is only compared as an address, never dereferenced.
unsafe impl Send for Unregister {}
// SAFETY: as above.
unsafe impl Sync for Unregister {}

impl Dependent for Unregister {
    fn dependency_settled(&self, dependency: &Header) {
        let Some(registry) = self.registry.upgrade() else {
            return;
        };
        let mut tasks = lock(&registry.tasks);
        let listed = tasks.get(&dependency.id());
        if listed.is_some_and(|job| std::ptr::addr_eq(Arc::as_ptr(job), self.job)) {
            tasks.remove(&dependency.id());
        }
    }
}

impl Registry {
    /// Lists `job` by its id until it settles.
    pub(crate) fn register(self: &Arc<Self>, job: &Arc<dyn Job>) -> Result<(), SubmitErrorReason> {
        let id = job.header().id();
        {
            let mut tasks = lock(&self.tasks);
            if tasks.contains_key(&id) {
                return Err(SubmitErrorReason::DuplicateId { id });
            }
            tasks.insert(id, Arc::clone(job));
        }
        job.header().add_dependent(Arc::new(Unregister {
            registry: Arc::downgrade(self),
            job: Arc::as_ptr(job) as *const (),
        }));
        Ok(())
    }

    /// The listed tasks named by `ids`, or why one cannot be depended on.
    pub(crate) fn resolve(
        &self,
        ids: &[TaskId],
        own: Option<TaskId>,
    ) -> Result<Vec<Arc<dyn Job>>, SubmitErrorReason> {
        let tasks = lock(&self.tasks);
        ids.iter()
            .map(|&id| {
                if own == Some(id) {
                    return Err(SubmitErrorReason::DependencyCycle { id });
                }
                tasks
                    .get(&id)
                    .cloned()
                    .ok_or(SubmitErrorReason::UnknownDependency { id })
            })
            .collect()
    }
}

impl WorkerPool {
    /// Submits a task of type `T` that starts once `dependency` has succeeded,
    /// with an input built from the dependency's result (a continuation). If
    /// the dependency does not succeed, the task settles with
    /// [`TaskError::DependencyFailed`] naming it. `make_input` runs on the
    /// thread that settled the dependency; a panic in it fails the task.
    ///
    /// Refused (with the dependency's handle back) if the pool is closed or
    /// has no handler for `T`.
    ///
    /// ```
    /// # use protozoa_workers::{Handlers, Task, WorkerPool};
    /// # struct Double;
    /// # impl Task for Double { const NAME: &'static str = "double"; type Input = u64; type Output = u64; }
    /// # let pool = WorkerPool::builder(Handlers::stateless().handler::<Double>(|_, n, _| Ok(n * 2))).build()?;
    /// let first = pool.submit::<Double>(5)?;
    /// let second = pool.then::<Double, _>(first, |ten| ten + 1)?;
    /// assert_eq!(second.wait()?, 22);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn then<T: Task, D: Send + 'static>(
        &self,
        dependency: TaskHandle<D>,
        make_input: impl FnOnce(D) -> T::Input + Send + 'static,
    ) -> Result<TaskHandle<T::Output>, SubmitError<TaskHandle<D>>> {
        self.then_all::<T, D>(vec![dependency], move |mut results| {
            results.pop().map(make_input)
        })
        .map_err(|error| {
            let reason = error.reason().clone();
            let handle = error.into_input().pop();
            match handle {
                Some(handle) => SubmitError::new(reason, handle),
                None => unreachable!("the refused batch of one dependency holds it"),
            }
        })
    }

    /// Submits a task of type `T` that starts once every one of
    /// `dependencies` has succeeded, with an input built from their results
    /// (in the order given). `make_input` returns `None` to mean the input
    /// could not be built, which fails the task. See [`then`](Self::then).
    pub fn then_all<T: Task, D: Send + 'static>(
        &self,
        dependencies: Vec<TaskHandle<D>>,
        make_input: impl FnOnce(Vec<D>) -> Option<T::Input> + Send + 'static,
    ) -> Result<TaskHandle<T::Output>, SubmitError<Vec<TaskHandle<D>>>> {
        let shared = self.shared();
        let Some((index, name)) = self.handler_of::<T>() else {
            let reason = SubmitErrorReason::UnknownTaskType {
                name: T::NAME.to_owned(),
            };
            return Err(SubmitError::new(reason, dependencies));
        };
        if let Some(reason) = shared.refusal() {
            return Err(SubmitError::new(reason, dependencies));
        }

        let mut spec = CellSpec::plain(index, name);
        spec.sched.max_retries = shared.options.max_retries;
        let cell = TaskCell::<T::Input, T::Output>::without_input(spec);
        let jobs: Vec<Arc<dyn Job>> = dependencies.iter().map(TaskHandle::job).collect();
        let target = Arc::clone(&cell);
        let release: Release = Box::new(move || {
            let results: Option<Vec<D>> = dependencies
                .iter()
                .map(|handle| handle.try_take().and_then(Result::ok))
                .collect();
            match results.and_then(make_input) {
                Some(input) => {
                    // SAFETY: the gate calls this once, before it queues the
                    // task, and nothing else touches a waiting task's input.
                    unsafe { target.provide_input(input) };
                    Ok(())
                }
                None => Err(TaskError::Failed {
                    task: T::NAME.to_owned(),
                    error: HandlerError::new("the input could not be built from the results")
                        .permanent(),
                }),
            }
        });
        Gate::wait_for(shared, cell.clone(), &jobs, Some(release));
        Ok(TaskHandle::new(cell))
    }
}
