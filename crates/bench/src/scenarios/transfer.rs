//! `transfer`: tasks that each take a large f32 buffer and read one value from each 4 KiB page,
//! so that moving the data, not arithmetic, dominates.
//!
//! The baseline sends every byte through a Unix socket to a child process. Ours hands the same
//! data as a `SharedBuffer` to a pool of one worker process (`shared-memory`: it travels as a
//! sealed segment, mapped once by the worker) and to a pool of one worker thread (`thread`).

use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Result};
use clap::Args;
use serde::Serialize;

use super::Runs;
use crate::child::sum_pages;
use crate::harness::{interleave, select, Entry};
use crate::peers::ours_process::BufferCarry;
use crate::peers::socket_copy::{self, SocketCopy};
use crate::report;
use crate::stats::median;

/// The name of our process worker with shared memory, the reference of the ratios.
pub const SHARED_MEMORY: &str = "shared-memory";

/// The name of our thread backend in this scenario.
pub const THREAD: &str = "thread";

/// A contender of the `transfer` scenario: runs one task over its buffer and returns the sum of
/// the first value of each 4 KiB page.
pub trait Carry {
    fn carry(&mut self) -> Result<f64>;
}

/// The contenders, each given the same data.
pub fn contenders(data: Arc<Vec<f32>>) -> Vec<Entry<dyn Carry>> {
    let (for_process, for_thread) = (Arc::clone(&data), Arc::clone(&data));
    vec![
        Entry::new(SHARED_MEMORY, move || {
            Ok(Box::new(BufferCarry::start(true, &for_process)?) as _)
        }),
        Entry::new(THREAD, move || {
            Ok(Box::new(BufferCarry::start(false, &for_thread)?) as _)
        }),
        Entry::new(socket_copy::NAME, move || {
            Ok(Box::new(SocketCopy::spawn(Arc::clone(&data))?) as _)
        }),
    ]
}

#[derive(Args, Debug)]
pub struct TransferArgs {
    /// Tasks per round, each taking the whole buffer.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
    pub tasks: u64,

    /// Size of the buffer, in MiB.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub mib: u64,

    #[command(flatten)]
    pub runs: Runs,
}

#[derive(Serialize)]
struct Output {
    results: Vec<Figure>,
}

#[derive(Serialize)]
struct Figure {
    name: &'static str,
    ms_per_task: f64,
}

pub fn run(args: &TransferArgs) -> Result<()> {
    // The data, and the sum every task must return.
    let floats = super::count(args.mib * 1024 * 1024 / 4, "--mib")?;
    let data: Arc<Vec<f32>> = Arc::new((0..floats).map(|i| (i % 1009) as f32).collect());
    let expected = sum_pages(bytemuck::cast_slice(data.as_slice()));
    let entries = select(contenders(Arc::clone(&data)), &args.runs.only)?;

    // Measure: the median of the rounds' ms per task.
    let samples = interleave(
        &entries,
        args.runs.rounds,
        |contender, _| {
            contender.carry()?;
            let start = Instant::now();
            for _ in 0..args.tasks {
                let sum = contender.carry()?;
                if sum != expected {
                    bail!("wrong result: page sum {sum}, expected {expected}");
                }
            }
            Ok(start.elapsed().as_secs_f64() * 1e3 / args.tasks as f64)
        },
        |ms| format!("{ms:.2} ms/task"),
    )?;
    let results: Vec<Figure> = samples
        .iter()
        .map(|s| Figure {
            name: s.name,
            ms_per_task: median(&s.samples).unwrap_or(f64::NAN),
        })
        .collect();

    if args.runs.json {
        return report::print_json(&Output { results });
    }
    let figures: Vec<(&str, f64)> = results.iter().map(|f| (f.name, f.ms_per_task)).collect();
    let title = format!(
        "transfer: {} tasks each taking a {} MiB f32 buffer, median of {} rounds",
        args.tasks, args.mib, args.runs.rounds
    );
    let (mut table, ours) = report::figure_table(title, "ms/task", 2, &figures, SHARED_MEMORY);

    // The targets of issue 5: ten times faster than the socket, within twice the thread.
    if let (Some(ours), Some(copy)) = (ours, report::figure_of(&figures, socket_copy::NAME)) {
        table.note(format!(
            "socket-copy / shared-memory = {:.1} (target >= 10)",
            copy / ours
        ));
    }
    if let (Some(ours), Some(thread)) = (ours, report::figure_of(&figures, THREAD)) {
        table.note(format!(
            "shared-memory / thread = {:.2} (target <= 2.00)",
            ours / thread
        ));
    }
    table.print();
    Ok(())
}
