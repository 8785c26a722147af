//! The scheduler: priority classes for tasks that are not plain FIFO work.
//!
//! A plain task (the default priority, no deadline) goes to the pool's
//! lock-free queue, which is the FIFO part of the class [`Priority::NORMAL`].
//! Every other task goes here: one locked structure holding, per class, a FIFO
//! and an earliest-deadline-first heap. An atomic count of its entries lets a
//! worker skip it with one load while it is empty, so plain dispatch never
//! takes its lock.
//!
//! # Which task runs next
//!
//! - A higher class runs before a lower one.
//! - Within a class, tasks with a deadline run first, earliest deadline first;
//!   then tasks without one, first in first out.
//! - **Anti-starvation share**: of every [`SHARE`] tasks taken while more than
//!   one class has tasks waiting, one comes from a class below the highest
//!   waiting one, chosen round-robin among the waiting lower classes. So under
//!   a constant stream of high-priority work every class still progresses, at
//!   a rate of at least one task in `SHARE * (classes - 1)`.
//!
//! # Deadlines
//!
//! A task with a deadline that was not submitted to `run_late` is also listed
//! in an expiry heap. The watchdog settles tasks still queued at their deadline
//! as expired ([`Scheduler::take_expired`]); a worker that pops such a task
//! before the watchdog gets to it settles it the same way.

use std::cmp::{Ordering as CmpOrdering, Reverse};
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;

use crossbeam_deque::{Injector, Steal};

use crate::cell::Job;
use crate::clock::{Ticks, NEVER};
use crate::sync::{lock, AtomicUsize, Mutex, Ordering};

/// One task in `SHARE` taken while several classes wait comes from a lower
/// class; see [`Priority`] for the whole rule.
///
/// Why 32: every lower-class task let through delays the higher class by that
/// task's whole run time. In the `mixed` benchmark (a frame's 64 tasks of
/// 50 µs due within 16.6 ms, beside 2 ms background tasks on two workers) a
/// share of 8 let eight background tasks into each frame and about one frame
/// task in six missed its deadline on a busy machine; with 32, two get in and
/// none missed. A lower class still always progresses.
pub const SHARE: u64 = 32;

/// A task's priority class: higher runs first.
///
/// A pool has `priority_levels` classes (default 4), numbered from 0; a
/// priority above the highest class counts as the highest. The named classes
/// are those of the original design.
///
/// Which queued task runs next:
///
/// - a task of a higher class before one of a lower class;
/// - within a class, tasks with a deadline first, earliest deadline first,
///   then tasks without one, first in first out;
/// - **no class starves**: of every [`SHARE`] (32) tasks the workers take
///   while more than one class has tasks waiting, one comes from a class below
///   the highest waiting one, chosen round-robin among the waiting lower
///   classes. Under a constant stream of higher-priority work, a lower class
///   still gets at least one task in `SHARE * (classes - 1)`.
///
/// ```
/// use protozoa_workers::Priority;
/// assert!(Priority::CRITICAL > Priority::HIGH);
/// assert_eq!(Priority::default(), Priority::NORMAL);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Priority(pub u8);

impl Priority {
    /// Background work.
    pub const LOW: Priority = Priority(0);
    /// The default.
    pub const NORMAL: Priority = Priority(1);
    /// Work that should overtake normal tasks (a frame's tasks).
    pub const HIGH: Priority = Priority(2);
    /// Work that overtakes everything else.
    pub const CRITICAL: Priority = Priority(3);
}

impl Default for Priority {
    fn default() -> Self {
        Priority::NORMAL
    }
}

/// A queued task in a deadline heap.
struct Timed {
    deadline: Ticks,
    seq: u64,
    job: Arc<dyn Job>,
}

impl PartialEq for Timed {
    fn eq(&self, other: &Self) -> bool {
        (self.deadline, self.seq) == (other.deadline, other.seq)
    }
}
impl Eq for Timed {}
impl PartialOrd for Timed {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Timed {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (self.deadline, self.seq).cmp(&(other.deadline, other.seq))
    }
}

/// One priority class's waiting tasks.
#[derive(Default)]
struct Class {
    fifo: VecDeque<Arc<dyn Job>>,
    edf: BinaryHeap<Reverse<Timed>>,
}

impl Class {
    fn is_empty(&self) -> bool {
        self.fifo.is_empty() && self.edf.is_empty()
    }

    fn pop(&mut self) -> Option<Arc<dyn Job>> {
        match self.edf.pop() {
            Some(Reverse(timed)) => Some(timed.job),
            None => self.fifo.pop_front(),
        }
    }
}

/// Everything behind the scheduler's lock.
struct Queues {
    classes: Vec<Class>,
    expiry: BinaryHeap<Reverse<Timed>>,
    seq: u64,
    /// Tasks taken while several classes waited (drives the share).
    contended_takes: u64,
    /// Round-robin position among the lower classes.
    cursor: usize,
}

/// The priority classes; see the module docs.
pub(crate) struct Scheduler {
    queues: Mutex<Queues>,
    /// Entries in the classes (not counting the plain queue).
    len: AtomicUsize,
    /// The class of the plain queue.
    normal: usize,
}

/// Where the next task comes from.
enum Source {
    Class(usize),
    Plain,
}

impl Scheduler {
    pub(crate) fn new(levels: usize) -> Self {
        let levels = levels.max(1);
        Scheduler {
            queues: Mutex::new(Queues {
                classes: (0..levels).map(|_| Class::default()).collect(),
                expiry: BinaryHeap::new(),
                seq: 0,
                contended_takes: 0,
                cursor: 0,
            }),
            len: AtomicUsize::new(0),
            normal: usize::from(Priority::NORMAL.0).min(levels - 1),
        }
    }

    /// The class a priority maps to.
    pub(crate) fn class_of(&self, priority: u8, levels: usize) -> usize {
        usize::from(priority).min(levels.max(1) - 1)
    }

    /// The class of plain tasks.
    pub(crate) fn normal(&self) -> usize {
        self.normal
    }

    /// Whether no task waits here (one load; the plain queue is not counted).
    pub(crate) fn is_empty(&self) -> bool {
        self.len.load(Ordering::SeqCst) == 0
    }

    /// Entries waiting here, settled ones not yet removed included.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::SeqCst)
    }

    /// Queues a task in its class. Returns its deadline if the watchdog must
    /// expire it.
    pub(crate) fn push(&self, job: Arc<dyn Job>, class: usize) -> Option<Ticks> {
        let sched = *job.header().sched();
        let mut queues = lock(&self.queues);
        queues.seq += 1;
        let seq = queues.seq;
        let class = class.min(queues.classes.len() - 1);
        let mut expires = None;
        if sched.deadline != 0 {
            if !sched.run_late {
                let timed = Timed {
                    deadline: sched.deadline,
                    seq,
                    job: Arc::clone(&job),
                };
                queues.expiry.push(Reverse(timed));
                expires = Some(sched.deadline);
            }
            let timed = Timed {
                deadline: sched.deadline,
                seq,
                job,
            };
            queues.classes[class].edf.push(Reverse(timed));
        } else {
            queues.classes[class].fifo.push_back(job);
        }
        self.len.fetch_add(1, Ordering::SeqCst);
        expires
    }

    /// Takes the next task by the rules of the module docs, looking at the
    /// plain queue as the FIFO part of the normal class.
    pub(crate) fn pop(&self, plain: &Injector<Arc<dyn Job>>) -> Option<Arc<dyn Job>> {
        loop {
            let source = {
                let mut queues = lock(&self.queues);
                let source = self.choose(&mut queues, !plain.is_empty())?;
                if let Source::Class(class) = source {
                    if let Some(job) = queues.classes[class].pop() {
                        self.len.fetch_sub(1, Ordering::SeqCst);
                        return Some(job);
                    }
                }
                source
            };
            debug_assert!(matches!(source, Source::Plain));
            match plain.steal() {
                Steal::Success(job) => return Some(job),
                // Another worker took it; look again.
                Steal::Empty | Steal::Retry => continue,
            }
        }
    }

    /// Picks the class to take from, applying the anti-starvation share.
    fn choose(&self, queues: &mut Queues, plain_waiting: bool) -> Option<Source> {
        let waiting = |queues: &Queues, class: usize| {
            !queues.classes[class].is_empty() || (class == self.normal && plain_waiting)
        };
        let levels = queues.classes.len();
        let top = (0..levels).rev().find(|&class| waiting(queues, class))?;
        let lower: Vec<usize> = (0..top).rev().filter(|&c| waiting(queues, c)).collect();

        let mut class = top;
        if !lower.is_empty() {
            queues.contended_takes += 1;
            if queues.contended_takes % SHARE == 0 {
                class = lower[queues.cursor % lower.len()];
                queues.cursor = queues.cursor.wrapping_add(1);
            }
        }
        let own = !queues.classes[class].is_empty();
        Some(if own || class != self.normal {
            Source::Class(class)
        } else {
            Source::Plain
        })
    }

    /// Removes every task (terminate).
    pub(crate) fn drain(&self) -> Vec<Arc<dyn Job>> {
        let mut queues = lock(&self.queues);
        queues.expiry.clear();
        let mut jobs = Vec::new();
        for class in &mut queues.classes {
            jobs.extend(class.fifo.drain(..));
            jobs.extend(class.edf.drain().map(|Reverse(timed)| timed.job));
        }
        self.len.store(0, Ordering::SeqCst);
        jobs
    }

    /// Takes the tasks whose deadline has passed by `now` from the expiry heap
    /// (they stay in their class until a worker pops them) and returns them
    /// with the next deadline ahead ([`NEVER`] for none).
    pub(crate) fn take_expired(&self, now: Ticks) -> (Vec<Arc<dyn Job>>, Ticks) {
        let mut queues = lock(&self.queues);
        let mut due = Vec::new();
        while let Some(Reverse(next)) = queues.expiry.peek() {
            if next.deadline > now {
                return (due, next.deadline);
            }
            if let Some(Reverse(timed)) = queues.expiry.pop() {
                due.push(timed.job);
            }
        }
        (due, NEVER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cell::{CellSpec, Sched, TaskCell};

    fn job(priority: u8, deadline: Ticks) -> Arc<dyn Job> {
        let mut spec = CellSpec::plain(0, "t");
        spec.sched = Sched {
            priority,
            scheduled: true,
            deadline,
            ..Sched::default()
        };
        TaskCell::<u32, u32>::new(spec, u32::from(priority))
    }

    #[test]
    fn higher_classes_run_first_and_deadlines_before_fifo() {
        let scheduler = Scheduler::new(4);
        let plain = Injector::new();
        let low = job(0, 0);
        let high_late = job(2, 200);
        let high_soon = job(2, 100);
        let high_fifo = job(2, 0);
        for (job, class) in [(&low, 0), (&high_fifo, 2), (&high_late, 2), (&high_soon, 2)] {
            scheduler.push(Arc::clone(job), class);
        }
        let order: Vec<_> = std::iter::from_fn(|| scheduler.pop(&plain)).collect();
        let expected = [&high_soon, &high_late, &high_fifo, &low];
        assert_eq!(order.len(), expected.len());
        for (got, want) in order.iter().zip(expected) {
            assert!(Arc::ptr_eq(got, want));
        }
    }

    #[test]
    fn a_lower_class_gets_one_task_in_every_share() {
        let scheduler = Scheduler::new(4);
        let plain = Injector::new();
        for _ in 0..100 {
            scheduler.push(job(3, 0), 3);
        }
        scheduler.push(job(0, 0), 0);
        let position = (1..=SHARE)
            .find(|_| scheduler.pop(&plain).map(|j| j.header().sched().priority) == Some(0));
        assert_eq!(position, Some(SHARE));
    }
}
