//! `dispatch`: a million tiny tasks submitted one at a time from one thread, then every result
//! awaited. Measures what a pool costs per task, result included.

use std::time::Instant;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::{Pools, Runs};
use crate::harness::{interleave, select};
use crate::peers::{self, check_sum, expected_sum};
use crate::report;
use crate::stats::median;
use crate::work::TinyWork;

/// Tasks run before each timed round, so that threads are started and caches warm.
const WARM_UP_TASKS: usize = 10_000;

#[derive(Args, Debug)]
pub struct DispatchArgs {
    /// Tasks per round.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub tasks: u64,

    #[command(flatten)]
    pub pools: Pools,

    #[command(flatten)]
    pub runs: Runs,
}

#[derive(Serialize)]
struct Output {
    tasks: usize,
    results: Vec<Figure>,
}

#[derive(Serialize)]
struct Figure {
    name: &'static str,
    ns_per_task: f64,
}

pub fn run(args: &DispatchArgs) -> Result<()> {
    let tasks = super::count(args.tasks, "--tasks")?;
    let work = TinyWork::calibrate();
    let entries = select(
        peers::contenders(args.pools.workers as usize, work),
        &args.runs.only,
    )?;
    let expected = expected_sum(work, tasks);

    // Measure: the median of the rounds' ns per task.
    let samples = interleave(
        &entries,
        args.runs.rounds,
        |contender, _| {
            contender.run_each(WARM_UP_TASKS.min(tasks))?;
            let start = Instant::now();
            let sum = contender.run_each(tasks)?;
            let ns = start.elapsed().as_nanos() as f64 / tasks as f64;
            check_sum(sum, expected)?;
            Ok(ns)
        },
        |ns| format!("{ns:.1} ns/task"),
    )?;
    let results: Vec<Figure> = samples
        .iter()
        .map(|s| Figure {
            name: s.name,
            ns_per_task: median(&s.samples).unwrap_or(f64::NAN),
        })
        .collect();

    if args.runs.json {
        return report::print_json(&Output { tasks, results });
    }
    let title = format!(
        "dispatch: {tasks} tasks of {:.0} ns work, {} workers, median of {} rounds",
        work.ns(),
        args.pools.workers,
        args.runs.rounds
    );
    print_table(title, &results);
    Ok(())
}

fn print_table(title: String, results: &[Figure]) {
    let figures: Vec<(&str, f64)> = results.iter().map(|f| (f.name, f.ns_per_task)).collect();
    let (mut table, ours) = report::figure_table(title, "ns/task", 1, &figures, report::OURS);

    // The target of issue 2: ours at most half the best general-purpose peer.
    let best_peer = ["rayon", "threadpool", "tokio"]
        .iter()
        .filter_map(|name| report::figure_of(&figures, name))
        .fold(f64::INFINITY, f64::min);
    if let (Some(ours), true) = (ours, best_peer.is_finite()) {
        let ratio = ours / best_peer;
        table.note(format!(
            "ours / best of rayon, threadpool, tokio = {ratio:.2} (target <= 0.50)"
        ));
    }
    table.print();
}
