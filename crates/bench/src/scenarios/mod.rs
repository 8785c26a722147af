//! The benchmark scenarios, one module each, and the options they share.
//!
//! Thread-pool scenarios (`dispatch`, `batch`, `wake`, `mixed`) drive the contenders of
//! [`crate::peers::contenders`]; the process scenarios (`ipc`, `transfer`) have their own
//! contender traits, [`ipc::RoundTrip`] and [`transfer::Carry`].
//!
//! The `sim` scenario runs the simulation crate's default scene on the pool and directly.

pub mod batch;
pub mod dispatch;
pub mod ipc;
pub mod mixed;
pub mod sim;
pub mod transfer;
pub mod wake;

use std::time::Instant;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use crate::harness::{interleave, Entry};
use crate::peers::{check_sum, expected_sum, Contender};
use crate::stats::median;
use crate::work::TinyWork;

/// Tasks run before each timed round, so that threads are started and caches warm.
const WARM_UP_TASKS: usize = 10_000;

/// How often to run each contender, and how to print the results.
#[derive(Args, Debug, Clone)]
pub struct Runs {
    /// Rounds per contender; the contenders take turns within each round.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,

    /// Print exactly one JSON object on stdout instead of a table (progress goes to stderr).
    #[arg(long)]
    pub json: bool,

    /// Run only these contenders (comma-separated names).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
}

/// The size of each thread pool under test.
#[derive(Args, Debug, Clone)]
pub struct Pools {
    /// Worker threads in every pool.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub workers: u32,
}

/// The `--tasks` count as a `usize`, or an error if it does not fit this machine.
pub fn count(value: u64, option: &str) -> anyhow::Result<usize> {
    usize::try_from(value).map_err(|_| anyhow::anyhow!("{option} {value} is too large"))
}

/// One contender's cost per task: an entry of the `dispatch` and `batch` results.
#[derive(Serialize)]
pub struct NsPerTask {
    pub name: &'static str,
    pub ns_per_task: f64,
}

/// Times `run` (a way to submit `tasks` tiny tasks and wait for them) on every entry over
/// interleaved rounds, checks every round's results, and returns each contender's median ns
/// per task.
pub fn median_ns_per_task(
    entries: &[Entry<dyn Contender>],
    runs: &Runs,
    tasks: usize,
    work: TinyWork,
    run: impl Fn(&mut dyn Contender, usize) -> Result<u64>,
) -> Result<Vec<NsPerTask>> {
    let expected = expected_sum(work, tasks);
    let samples = interleave(
        entries,
        runs.rounds,
        |contender, _| {
            run(contender, WARM_UP_TASKS.min(tasks))?;
            let start = Instant::now();
            let sum = run(contender, tasks)?;
            let ns = start.elapsed().as_nanos() as f64 / tasks as f64;
            check_sum(sum, expected)?;
            Ok(ns)
        },
        |ns| format!("{ns:.1} ns/task"),
    )?;

    let median_of = |samples: &[f64]| median(samples).unwrap_or(f64::NAN);
    Ok(samples
        .iter()
        .map(|s| NsPerTask {
            name: s.name,
            ns_per_task: median_of(&s.samples),
        })
        .collect())
}
