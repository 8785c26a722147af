//! `dispatch`: a million tiny tasks submitted one at a time from one thread, then every result
//! awaited. Measures what a pool costs per task, result included.

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::{NsPerTask, Pools, Runs};
use crate::harness::select;
use crate::peers;
use crate::report;
use crate::work::TinyWork;

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
    results: Vec<NsPerTask>,
}

pub fn run(args: &DispatchArgs) -> Result<()> {
    let tasks = super::count(args.tasks, "--tasks")?;
    let work = TinyWork::calibrate();
    let entries = select(
        peers::contenders(args.pools.workers as usize, work),
        &args.runs.only,
    )?;

    // Measure: the median of the rounds' ns per task.
    let results =
        super::median_ns_per_task(&entries, &args.runs, tasks, work, |contender, count| {
            contender.run_each(count)
        })?;

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

fn print_table(title: String, results: &[NsPerTask]) {
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
