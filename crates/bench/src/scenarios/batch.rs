//! `batch`: a million tiny tasks submitted as batches of 64, each batch gathered back in
//! submission order. Pools without a batch API submit each item and gather them (see each
//! adapter); the floor sends one job per worker per batch.

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::{NsPerTask, Pools, Runs};
use crate::harness::select;
use crate::peers::{self, crossbeam_floor};
use crate::report;
use crate::work::TinyWork;

#[derive(Args, Debug)]
pub struct BatchArgs {
    /// Tasks per round.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub tasks: u64,

    /// Tasks per batch.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: u64,

    #[command(flatten)]
    pub pools: Pools,

    #[command(flatten)]
    pub runs: Runs,
}

#[derive(Serialize)]
struct Output {
    tasks: usize,
    batch: usize,
    results: Vec<NsPerTask>,
}

pub fn run(args: &BatchArgs) -> Result<()> {
    let tasks = super::count(args.tasks, "--tasks")?;
    let batch = super::count(args.batch, "--batch")?;
    let work = TinyWork::calibrate();
    let entries = select(
        peers::contenders(args.pools.workers as usize, work),
        &args.runs.only,
    )?;

    // Measure: the median of the rounds' ns per task.
    let results =
        super::median_ns_per_task(&entries, &args.runs, tasks, work, |contender, count| {
            contender.run_batches(count, batch)
        })?;

    if args.runs.json {
        return report::print_json(&Output {
            tasks,
            batch,
            results,
        });
    }
    let title = format!(
        "batch: {tasks} tasks of {:.0} ns work in batches of {batch}, {} workers, \
         median of {} rounds",
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

    // The target of issue 3: ours at most twice the floor.
    if let (Some(ours), Some(floor)) = (ours, report::figure_of(&figures, crossbeam_floor::NAME)) {
        table.note(format!(
            "ours / crossbeam-floor = {:.2} (target <= 2.00)",
            ours / floor
        ));
    }
    table.print();
}
