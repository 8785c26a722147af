//! The pool's options (the original's `ComputeOptions`) and their checks.

use std::time::Duration;

use crate::error::BuildError;

/// Which of the pool's own events it emits through `tracing` (the original's
/// `logLevel`). The pool never installs a subscriber: the application decides
/// where events go; this option decides which ones the pool sends at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum LogLevel {
    /// No events.
    None,
    /// Failures the application must know about (a worker that cannot
    /// initialize). The default.
    #[default]
    Error,
    /// Also tasks that panicked or timed out.
    Warn,
    /// Also worker lifecycle: started, rebuilt, stopped.
    Info,
    /// Also every failed or cancelled task.
    Debug,
}

impl std::str::FromStr for LogLevel {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "none" | "off" => Ok(LogLevel::None),
            "error" => Ok(LogLevel::Error),
            "warn" | "warning" => Ok(LogLevel::Warn),
            "info" => Ok(LogLevel::Info),
            "debug" | "trace" => Ok(LogLevel::Debug),
            other => Err(format!(
                "unknown log level `{other}` (none, error, warn, info, debug)"
            )),
        }
    }
}

/// The pool's options, validated by [`PoolBuilder::build`](crate::PoolBuilder::build).
#[derive(Debug, Clone)]
pub(crate) struct PoolOptions {
    /// Workers the pool starts with and keeps (`minWorkers`).
    pub(crate) min_workers: usize,
    /// Workers the pool may grow to while tasks wait (`maxWorkers`).
    pub(crate) max_workers: usize,
    /// How long an idle worker above `min_workers` stays (`idleTimeout`).
    pub(crate) idle_timeout: Duration,
    /// Tasks one worker runs at once; above one only async handlers overlap
    /// (`maxConcurrentTasks`).
    pub(crate) max_concurrent_tasks: usize,
    /// Default time limit of a task, from its start (`taskTimeout`).
    pub(crate) task_timeout: Option<Duration>,
    /// Which events the pool emits (`logLevel`).
    pub(crate) log_level: LogLevel,
    /// How many times an idle worker polls the queue before it parks.
    pub(crate) idle_spins: u32,
    /// The name prefix of worker threads.
    pub(crate) thread_name: String,
    /// Number of priority classes (`priorityLevels`).
    pub(crate) priority_levels: usize,
    /// Queued tasks beyond which submissions are refused (`maxQueueSize`).
    pub(crate) max_queue_size: Option<usize>,
    /// Re-runs of a failed task (`maxRetries`).
    pub(crate) max_retries: u32,
    /// Wait before a retry (`retryDelay`).
    pub(crate) retry_delay: Duration,
    /// Factor applied to the delay for each further retry (1.0: none).
    pub(crate) retry_backoff: f64,
}

impl Default for PoolOptions {
    fn default() -> Self {
        let workers = std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(1);
        PoolOptions {
            min_workers: workers,
            max_workers: workers,
            idle_timeout: Duration::from_secs(60),
            max_concurrent_tasks: 8,
            task_timeout: Some(Duration::from_secs(30)),
            log_level: LogLevel::default(),
            idle_spins: DEFAULT_IDLE_SPINS,
            thread_name: "protozoa-worker".to_owned(),
            priority_levels: 4,
            max_queue_size: None,
            max_retries: 0,
            retry_delay: Duration::from_secs(1),
            retry_backoff: 1.0,
        }
    }
}

/// Yield rounds an idle worker spends looking for work before it parks; see
/// [`PoolBuilder::idle_spins`](crate::PoolBuilder::idle_spins) for the figures
/// behind this value.
pub(crate) const DEFAULT_IDLE_SPINS: u32 = 64;

/// The most priority classes a pool may have.
pub const MAX_PRIORITY_LEVELS: usize = 256;

/// The most workers a pool may have: far beyond any machine's cores, low
/// enough that a typo (`workers(1_000_000)`) is refused instead of obeyed.
pub const MAX_WORKERS: usize = 4096;

impl PoolOptions {
    /// Refuses values the pool cannot work with, naming the option.
    pub(crate) fn validate(&self) -> Result<(), BuildError> {
        let invalid = |option: &'static str, reason: &str| {
            Err(BuildError::InvalidOption {
                option,
                reason: reason.to_owned(),
            })
        };
        if self.min_workers == 0 {
            return invalid("workers", "a pool needs at least one worker");
        }
        if self.max_workers > MAX_WORKERS {
            return invalid(
                "workers",
                &format!("at most {MAX_WORKERS} workers are allowed"),
            );
        }
        if self.min_workers > self.max_workers {
            return invalid("min_workers", "min_workers must not exceed max_workers");
        }
        if self.idle_timeout.is_zero() {
            return invalid(
                "idle_timeout",
                "a zero idle timeout would stop workers at once",
            );
        }
        if !(1..=MAX_PRIORITY_LEVELS).contains(&self.priority_levels) {
            return invalid(
                "priority_levels",
                &format!("between 1 and {MAX_PRIORITY_LEVELS} classes are allowed"),
            );
        }
        if self.max_queue_size == Some(0) {
            return invalid(
                "max_queue_size",
                "a queue of size 0 would refuse every task; use None for no bound",
            );
        }
        if !(self.retry_backoff.is_finite() && self.retry_backoff >= 1.0) {
            return invalid("retry_backoff", "the back-off factor must be at least 1.0");
        }
        if self.max_concurrent_tasks == 0 {
            return invalid(
                "max_concurrent_tasks",
                "a worker must be able to run one task",
            );
        }
        if self.task_timeout == Some(Duration::ZERO) {
            return invalid(
                "task_timeout",
                "a zero time limit would fail every task; use None for no limit",
            );
        }
        Ok(())
    }
}
