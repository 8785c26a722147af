//! `sim`: the default Bitcoin Protozoa scene on the pool with one and two workers, and the same
//! kernels called directly on one thread, in one run.
//!
//! `pool-2-process` runs the same frames on two worker processes.
//!
//! The targets: two process workers at least 0.75 times as fast as two thread workers;
//! two workers at least 1.8 times as fast as one (the machine has two
//! cores), one worker within 3 % of the direct loop (the pool's overhead), and a frame time p99
//! under 16.6 ms on two workers. Every contender must end on the same checksum: a pool that got
//! the frame wrong fails the run instead of looking fast.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use protozoa_sim::block::BlockSet;
use protozoa_sim::creature::Creature;
use protozoa_sim::scene::Scene;
use protozoa_workers::process::ProcessOptions;
use protozoa_workers::WorkerPool;
use serde::Serialize;

use crate::harness::{interleave, select, Entry};
use crate::report::{print_json, Table};
use crate::stats::{median, percentile};

/// Options of the `sim` scenario.
#[derive(Args, Debug)]
pub struct SimArgs {
    /// Frames per run.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub frames: u64,

    /// Creatures in the scene, from the newest embedded blocks.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=437))]
    pub creatures: u64,

    /// Rounds per contender; the contenders take turns within each round.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,

    /// Print exactly one JSON object on stdout instead of a table.
    #[arg(long)]
    pub json: bool,

    /// Run only these contenders (pool-1, pool-2, pool-2-process, direct).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
}

/// How a scene advances one frame.
trait Stepper {
    fn step(&mut self, scene: &mut Scene) -> Result<()>;
}

/// The kernels called directly, no pool.
struct Direct;

impl Stepper for Direct {
    fn step(&mut self, scene: &mut Scene) -> Result<()> {
        Ok(scene.step_direct()?)
    }
}

/// The frame's tasks on a pool of `n` workers.
struct OnPool(WorkerPool);

impl Stepper for OnPool {
    fn step(&mut self, scene: &mut Scene) -> Result<()> {
        Ok(scene.step_on_pool(&self.0)?)
    }
}

fn pool(workers: usize) -> Result<Box<dyn Stepper>> {
    let pool = WorkerPool::builder(protozoa_sim::handlers())
        .workers(workers)
        .build()?;
    Ok(Box::new(OnPool(pool)))
}

/// The same on `workers` worker processes (this program, started in worker mode).
fn process_pool(workers: usize) -> Result<Box<dyn Stepper>> {
    let pool = WorkerPool::builder(protozoa_sim::handlers())
        .workers(workers)
        .process_workers(ProcessOptions::new())
        .build()?;
    Ok(Box::new(OnPool(pool)))
}

/// One run: frames per second, every frame's time, and the final checksum.
struct Run {
    frames_per_s: f64,
    frame_ms: Vec<f64>,
    checksum: u64,
}

/// One contender's figures in the JSON output.
#[derive(Serialize)]
struct Figures {
    name: &'static str,
    frames_per_s: f64,
    p99_ms: f64,
}

#[derive(Serialize)]
struct Output {
    frames: u64,
    results: Vec<Figures>,
}

/// Runs the scenario.
pub fn run(args: &SimArgs) -> Result<()> {
    let blocks = BlockSet::embedded().context("loading the embedded blocks")?;
    let count = usize::try_from(args.creatures)?;
    let creatures: Vec<Creature> = blocks
        .newest(count)
        .iter()
        .map(|block| Creature::from_block(block, blocks.confirmations(block)))
        .collect();

    let entries = select(
        vec![
            Entry::new("pool-1", || pool(1)),
            Entry::new("pool-2", || pool(2)),
            Entry::new("pool-2-process", || process_pool(2)),
            Entry::new("direct", || Ok(Box::new(Direct) as Box<dyn Stepper>)),
        ],
        &args.only,
    )?;

    let samples = interleave(
        &entries,
        args.rounds,
        |stepper, _| {
            let mut scene = Scene::new(&creatures);
            let mut frame_ms = Vec::with_capacity(args.frames as usize);
            let start = Instant::now();
            for _ in 0..args.frames {
                let frame = Instant::now();
                stepper.step(&mut scene)?;
                frame_ms.push(frame.elapsed().as_secs_f64() * 1e3);
            }
            let frames_per_s = args.frames as f64 / start.elapsed().as_secs_f64();
            Ok(Run {
                frames_per_s,
                frame_ms,
                checksum: scene.checksum(),
            })
        },
        |run| {
            format!(
                "{:.1} frames/s, checksum {:016x}",
                run.frames_per_s, run.checksum
            )
        },
    )?;

    // Same scene, same frames: every contender must end on the same state.
    let checksums: Vec<u64> = samples
        .iter()
        .flat_map(|s| s.samples.iter().map(|run| run.checksum))
        .collect();
    if checksums.windows(2).any(|pair| pair[0] != pair[1]) {
        bail!("the contenders ended on different checksums: {checksums:x?}");
    }

    let results: Vec<Figures> = samples
        .iter()
        .map(|s| {
            let rates: Vec<f64> = s.samples.iter().map(|run| run.frames_per_s).collect();
            let frames: Vec<f64> = s
                .samples
                .iter()
                .flat_map(|run| run.frame_ms.clone())
                .collect();
            Figures {
                name: s.name,
                frames_per_s: median(&rates).unwrap_or(f64::NAN),
                p99_ms: percentile(&frames, 99.0).unwrap_or(f64::NAN),
            }
        })
        .collect();

    if args.json {
        return print_json(&Output {
            frames: args.frames,
            results,
        });
    }
    print_table(args, &results);
    Ok(())
}

fn print_table(args: &SimArgs, results: &[Figures]) {
    let title = format!(
        "sim: {} creatures x 500 particles, {} frames, median of {} rounds",
        args.creatures, args.frames, args.rounds
    );
    let mut table = Table::new(title, &["name", "frames/s", "p99 ms"]);
    for entry in results {
        table.row(vec![
            entry.name.to_owned(),
            format!("{:.1}", entry.frames_per_s),
            format!("{:.2}", entry.p99_ms),
        ]);
    }
    let rate = |name: &str| {
        results
            .iter()
            .find(|e| e.name == name)
            .map(|e| e.frames_per_s)
    };
    if let (Some(one), Some(two)) = (rate("pool-1"), rate("pool-2")) {
        table.note(format!(
            "pool-2 / pool-1 = {:.2} (target >= 1.80)",
            two / one
        ));
    }
    if let (Some(thread), Some(process)) = (rate("pool-2"), rate("pool-2-process")) {
        table.note(format!(
            "pool-2-process / pool-2 = {:.2} (target >= 0.75)",
            process / thread
        ));
    }
    if let (Some(one), Some(direct)) = (rate("pool-1"), rate("direct")) {
        table.note(format!(
            "pool-1 / direct = {:.3} (target >= 0.97)",
            one / direct
        ));
    }
    if let Some(two) = results.iter().find(|e| e.name == "pool-2") {
        table.note(format!(
            "pool-2 frame p99 = {:.2} ms (target < 16.6)",
            two.p99_ms
        ));
    }
    table.print();
}
