//! `wake`: after the pool has been idle, how fast does a burst get done, and what did the pool
//! burn while idle?
//!
//! Each burst: sleep for the idle time while measuring the process's CPU time, then submit 64
//! tiny tasks and wait for the last result. The latency is from the first submit to the last
//! result. The bursts are shared out over the rounds, and the percentiles are taken over all
//! of a contender's bursts together. Only one pool exists at a time (see [`crate::harness`]),
//! so the process's CPU time while idle is that pool's (plus a sleeping main thread).
//!
//! Besides the pools runs the [one-wake floor](crate::peers::one_wake_floor): the burst as one
//! job for one parked thread, the machine's own cost of a wake-up after idleness.

use std::thread;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::{Pools, Runs};
use crate::clock::process_cpu_time;
use crate::harness::{interleave, select, Entry};
use crate::peers::{self, check_sum, expected_sum, one_wake_floor, Contender};
use crate::report::{self, Table};
use crate::stats::percentile;
use crate::work::TinyWork;

#[derive(Args, Debug)]
pub struct WakeArgs {
    /// Bursts per contender, over all rounds.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
    pub bursts: u64,

    /// Tiny tasks per burst.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    pub burst: u64,

    /// Idle time before each burst, in milliseconds.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_ms: u64,

    #[command(flatten)]
    pub pools: Pools,

    #[command(flatten)]
    pub runs: Runs,
}

/// One round of one contender.
struct Sample {
    latencies_us: Vec<f64>,
    idle_cpu: Duration,
    idle_wall: Duration,
}

#[derive(Serialize)]
struct Output {
    bursts: u64,
    burst: u64,
    idle_ms: u64,
    results: Vec<Figure>,
}

#[derive(Serialize)]
struct Figure {
    name: &'static str,
    p50_us: f64,
    p99_us: f64,
    idle_cpu_pct: f64,
}

pub fn run(args: &WakeArgs) -> Result<()> {
    let burst = super::count(args.burst, "--burst")?;
    let idle = Duration::from_millis(args.idle_ms);
    let rounds = u64::from(args.runs.rounds);
    let work = TinyWork::calibrate();
    let mut entries = peers::contenders(args.pools.workers as usize, work);
    entries.push(Entry::new(one_wake_floor::NAME, move || {
        Ok(Box::new(one_wake_floor::OneWakeFloor::new(work)?) as _)
    }));
    let entries = select(entries, &args.runs.only)?;
    let expected = expected_sum(work, burst);

    // Measure: each round runs its share of the bursts.
    let samples = interleave(
        &entries,
        args.runs.rounds,
        |contender, round| {
            let share = args.bursts / rounds + u64::from((round as u64) < args.bursts % rounds);
            run_round(contender, share, burst, idle, expected)
        },
        |s| {
            format!(
                "{} bursts, idle CPU {:.2} %",
                s.latencies_us.len(),
                idle_pct(&[s])
            )
        },
    )?;
    let results: Vec<Figure> = samples
        .iter()
        .map(|s| summarize(s.name, &s.samples))
        .collect();

    if args.runs.json {
        let output = Output {
            bursts: args.bursts,
            burst: args.burst,
            idle_ms: args.idle_ms,
            results,
        };
        return report::print_json(&output);
    }
    print_table(args, &results);
    Ok(())
}

/// One round: a warm-up burst, then `bursts` bursts each after the idle time.
fn run_round(
    contender: &mut dyn Contender,
    bursts: u64,
    burst: usize,
    idle: Duration,
    expected: u64,
) -> Result<Sample> {
    contender.run_each(burst)?;
    let mut sample = Sample {
        latencies_us: Vec::new(),
        idle_cpu: Duration::ZERO,
        idle_wall: Duration::ZERO,
    };
    for _ in 0..bursts {
        measure_burst(contender, burst, idle, expected, &mut sample)?;
    }
    Ok(sample)
}

/// Idles, then runs one burst, adding its figures to `sample`.
fn measure_burst(
    contender: &mut dyn Contender,
    burst: usize,
    idle: Duration,
    expected: u64,
    sample: &mut Sample,
) -> Result<()> {
    // Idle, measuring what the process burns meanwhile.
    let cpu = process_cpu_time();
    let slept = Instant::now();
    thread::sleep(idle);
    sample.idle_wall += slept.elapsed();
    sample.idle_cpu += process_cpu_time().saturating_sub(cpu);

    // The burst, from the first submit to the last result.
    let start = Instant::now();
    let sum = contender.run_each(burst)?;
    sample
        .latencies_us
        .push(start.elapsed().as_nanos() as f64 / 1_000.0);
    check_sum(sum, expected)
}

/// One contender's figures over all its rounds together.
fn summarize(name: &'static str, rounds: &[Sample]) -> Figure {
    let rounds: Vec<&Sample> = rounds.iter().collect();
    let latencies: Vec<f64> = rounds
        .iter()
        .flat_map(|r| r.latencies_us.iter().copied())
        .collect();
    Figure {
        name,
        p50_us: percentile(&latencies, 50.0).unwrap_or(f64::NAN),
        p99_us: percentile(&latencies, 99.0).unwrap_or(f64::NAN),
        idle_cpu_pct: idle_pct(&rounds),
    }
}

/// CPU time while idle as a percentage of one core, over the given rounds.
fn idle_pct(rounds: &[&Sample]) -> f64 {
    let cpu: Duration = rounds.iter().map(|r| r.idle_cpu).sum();
    let wall: Duration = rounds.iter().map(|r| r.idle_wall).sum();
    if wall.is_zero() {
        return f64::NAN;
    }
    cpu.as_secs_f64() / wall.as_secs_f64() * 100.0
}

fn print_table(args: &WakeArgs, results: &[Figure]) {
    let title = format!(
        "wake: {} bursts of {} tiny tasks after {} ms idle, {} workers, {} rounds",
        args.bursts, args.burst, args.idle_ms, args.pools.workers, args.runs.rounds
    );
    let mut table = Table::new(title, &["name", "p50 us", "p99 us", "idle CPU %"]);
    for f in results {
        let cells = [f.p50_us, f.p99_us].map(|us| format!("{us:.1}"));
        table.row(vec![
            f.name.to_string(),
            cells[0].clone(),
            cells[1].clone(),
            format!("{:.2}", f.idle_cpu_pct),
        ]);
    }
    table.note("targets for ours: p99 < 100 us, idle CPU < 1 % of a core");
    table.note(
        "one-wake-floor: the whole burst as one job for one parked thread (one wake-up, no \
         per-task hand-off): what this machine allows a pool that sleeps while idle",
    );
    table.print();
}
