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
    /// Number of workers (`workerCount`).
    pub(crate) workers: usize,
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
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            workers: std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(1),
            max_concurrent_tasks: 8,
            task_timeout: Some(Duration::from_secs(30)),
            log_level: LogLevel::default(),
            idle_spins: 64,
            thread_name: "protozoa-worker".to_owned(),
        }
    }
}

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
        if self.workers == 0 {
            return invalid("workers", "a pool needs at least one worker");
        }
        if self.workers > MAX_WORKERS {
            return invalid(
                "workers",
                &format!("at most {MAX_WORKERS} workers are allowed"),
            );
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
