//! Counts and latency histograms per task type, and worker utilization.
//!
//! Each worker records into its own [`WorkerMetrics`] (no sharing on the hot
//! path); [`WorkerPool::metrics`](crate::WorkerPool::metrics) merges them.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::cell::Outcome;

/// Significant figures kept by the latency histograms (1 % resolution).
const SIGNIFICANT_FIGURES: u8 = 2;

fn new_histogram() -> Histogram<u64> {
    // Auto-resizing: starts small and grows only to the values actually seen.
    let mut histogram =
        Histogram::new(SIGNIFICANT_FIGURES).expect("2 significant figures are valid");
    histogram.auto(true);
    histogram
}

/// How many tasks of one type ended each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutcomeCounts {
    /// Returned a value.
    pub done: u64,
    /// Returned an error (or could not run: bad input, worker unavailable).
    pub failed: u64,
    /// Panicked.
    pub panicked: u64,
    /// Ran past their time limit.
    pub timed_out: u64,
    /// Were cancelled.
    pub cancelled: u64,
    /// Were settled by `terminate()`.
    pub terminated: u64,
    /// Were still queued at their deadline and settled without running.
    pub expired: u64,
    /// Were replaced while queued by a newer task with their supersede key.
    pub superseded: u64,
    /// Never ran because a task they depend on did not succeed.
    pub dependency_failed: u64,
    /// Ran and settled, but after their deadline (not an outcome of its own:
    /// these tasks are also counted as done, failed, and so on).
    pub finished_late: u64,
}

impl OutcomeCounts {
    pub(crate) fn count(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Succeeded => self.done += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::Panicked => self.panicked += 1,
            Outcome::TimedOut => self.timed_out += 1,
            Outcome::Cancelled => self.cancelled += 1,
            Outcome::Terminated => self.terminated += 1,
            Outcome::Expired => self.expired += 1,
            Outcome::Superseded => self.superseded += 1,
            Outcome::DependencyFailed => self.dependency_failed += 1,
            Outcome::Withdrawn => {}
        }
    }

    fn add(&mut self, other: &OutcomeCounts) {
        self.done += other.done;
        self.failed += other.failed;
        self.panicked += other.panicked;
        self.timed_out += other.timed_out;
        self.cancelled += other.cancelled;
        self.terminated += other.terminated;
        self.expired += other.expired;
        self.superseded += other.superseded;
        self.dependency_failed += other.dependency_failed;
        self.finished_late += other.finished_late;
    }

    /// All tasks counted (each once, by its outcome).
    pub fn total(&self) -> u64 {
        self.done
            + self.failed
            + self.panicked
            + self.timed_out
            + self.cancelled
            + self.terminated
            + self.expired
            + self.superseded
            + self.dependency_failed
    }

    /// Tasks that missed their deadline: expired unrun, or finished after it.
    pub fn missed_deadlines(&self) -> u64 {
        self.expired + self.finished_late
    }
}

/// A latency distribution. Samples are recorded in raw clock ticks (cheaper
/// on the hot path) and read out as durations.
#[derive(Clone)]
pub struct Latency {
    histogram: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            histogram: new_histogram(),
        }
    }
}

impl Latency {
    pub(crate) fn record(&mut self, ticks: u64) {
        // Auto-resize makes failure impossible short of u64 overflow.
        let _ = self.histogram.record(ticks.max(1));
    }

    /// Forgets every sample, keeping the histogram's grown size.
    fn clear(&mut self) {
        self.histogram.reset();
    }

    fn add(&mut self, other: &Latency) {
        let _ = self.histogram.add(&other.histogram);
    }

    /// How many samples were recorded.
    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// The value at quantile `q` (0.0 to 1.0).
    pub fn quantile(&self, q: f64) -> Duration {
        Duration::from_nanos(crate::clock::ticks_to_nanos(
            self.histogram.value_at_quantile(q),
        ))
    }

    /// The median.
    pub fn p50(&self) -> Duration {
        self.quantile(0.5)
    }

    /// The 99th percentile.
    pub fn p99(&self) -> Duration {
        self.quantile(0.99)
    }

    /// The largest sample.
    pub fn max(&self) -> Duration {
        Duration::from_nanos(crate::clock::ticks_to_nanos(self.histogram.max()))
    }

    /// The underlying HDR histogram, in raw clock ticks; see
    /// [`ticks_per_second`](Self::ticks_per_second) to convert.
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.histogram
    }

    /// How many ticks of the histogram's unit make one second.
    pub fn ticks_per_second(&self) -> f64 {
        crate::clock::ticks_in(Duration::from_secs(1)) as f64
    }
}

impl std::fmt::Debug for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Latency")
            .field("count", &self.count())
            .field("p50", &self.p50())
            .field("p99", &self.p99())
            .field("max", &self.max())
            .finish()
    }
}

/// Everything measured about one task type.
#[derive(Debug, Clone, Default)]
pub struct TaskTypeMetrics {
    /// How its tasks ended.
    pub outcomes: OutcomeCounts,
    /// Time from submission to start.
    pub queue_wait: Latency,
    /// Time from start to settling.
    pub run_time: Latency,
}

impl TaskTypeMetrics {
    fn add(&mut self, other: &TaskTypeMetrics) {
        self.outcomes.add(&other.outcomes);
        self.queue_wait.add(&other.queue_wait);
        self.run_time.add(&other.run_time);
    }

    /// Forgets everything, keeping the histograms' memory for the next samples.
    fn clear(&mut self) {
        self.outcomes = OutcomeCounts::default();
        self.queue_wait.clear();
        self.run_time.clear();
    }
}

/// A snapshot of the pool's measurements.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// Per task type, by name.
    pub task_types: BTreeMap<String, TaskTypeMetrics>,
    /// The fraction of worker time spent running tasks, 0.0 to 1.0, over the
    /// workers' lifetimes.
    pub utilization: f64,
    /// Tasks waiting in the queue.
    pub queued: usize,
    /// Worker threads running now (between `min_workers` and `max_workers`
    /// while the pool is open).
    pub live_workers: usize,
}

impl Metrics {
    /// The counts over all task types.
    pub fn totals(&self) -> OutcomeCounts {
        let mut totals = OutcomeCounts::default();
        for metrics in self.task_types.values() {
            totals.add(&metrics.outcomes);
        }
        totals
    }

    /// Tasks of every type that missed their deadline: expired unrun, or
    /// finished after it.
    pub fn missed_deadlines(&self) -> u64 {
        self.totals().missed_deadlines()
    }
}

/// What one worker (or the pool itself, for tasks no worker saw) measured,
/// indexed by task type.
#[derive(Default)]
pub(crate) struct WorkerMetrics {
    per_type: Vec<TaskTypeMetrics>,
    /// Clock ticks spent running tasks.
    pub(crate) busy_ticks: u64,
}

impl WorkerMetrics {
    fn entry(&mut self, handler: usize) -> &mut TaskTypeMetrics {
        if self.per_type.len() <= handler {
            self.per_type
                .resize_with(handler + 1, TaskTypeMetrics::default);
        }
        &mut self.per_type[handler]
    }

    /// Records a task that ran.
    pub(crate) fn record_run(
        &mut self,
        handler: usize,
        outcome: Option<Outcome>,
        wait: u64,
        run: u64,
    ) {
        self.busy_ticks += run;
        let entry = self.entry(handler);
        entry.queue_wait.record(wait);
        entry.run_time.record(run);
        if let Some(outcome) = outcome {
            if outcome != Outcome::TimedOut {
                entry.outcomes.count(outcome);
            }
        }
    }

    /// Records a task that settled after its deadline.
    pub(crate) fn record_late(&mut self, handler: usize) {
        self.entry(handler).outcomes.finished_late += 1;
    }

    /// Records a task that settled without running (cancelled or terminated
    /// while queued). Timeouts are counted by the watchdog that caused them.
    pub(crate) fn record_outcome(&mut self, handler: usize, outcome: Outcome) {
        self.entry(handler).outcomes.count(outcome);
    }

    /// Adds `delta`'s figures to these and clears `delta`.
    pub(crate) fn absorb(&mut self, delta: &mut WorkerMetrics) {
        self.busy_ticks += std::mem::take(&mut delta.busy_ticks);
        for (handler, metrics) in delta.per_type.iter_mut().enumerate() {
            if metrics.outcomes == OutcomeCounts::default() && metrics.run_time.count() == 0 {
                continue;
            }
            self.entry(handler).add(metrics);
            // Clearing in place: new histograms would grow again, sample by
            // sample, on the worker's hot path.
            metrics.clear();
        }
    }

    /// Adds this worker's figures into a snapshot, naming types from `names`.
    pub(crate) fn merge_into(
        &self,
        names: &[&'static str],
        snapshot: &mut BTreeMap<String, TaskTypeMetrics>,
    ) {
        for (handler, metrics) in self.per_type.iter().enumerate() {
            let name = names.get(handler).copied().unwrap_or("?");
            snapshot.entry(name.to_owned()).or_default().add(metrics);
        }
    }
}
