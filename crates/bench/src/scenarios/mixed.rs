//! `mixed`: a frame loop next to background work, as a simulation runs it.
//!
//! At 60 frames a second, each frame submits 64 high-priority tasks of 50 µs whose deadline is
//! the frame's end. Beside them runs a stream of low-priority 2 ms background tasks: the loop
//! keeps `--backlog` of them submitted and unfinished (by default about one frame's worth of
//! the cores' spare time), topping up as they finish.
//!
//! A frame task misses its deadline if it finishes after it, or is dropped unrun. Pools
//! without priorities or deadlines run the same load first-in first-out, so their frame tasks
//! queue behind the background backlog.
//!
//! What the cores have left is their time minus the frame work; `background_share` is the
//! background throughput as a fraction of that (the submitting thread's own use of a core is
//! not subtracted, so on a quiet machine a share near 1 is the best possible).

use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Args;
use serde::Serialize;

use super::{Pools, Runs};
use crate::harness::{interleave, select};
use crate::peers::{self, Class, Contender, Pending, Settled, Spin};
use crate::report::{self, Table};
use crate::work::TinyWork;

/// How often the loop looks at its tasks between frame starts.
const POLL: Duration = Duration::from_micros(100);

/// How long to wait at the end for submitted tasks to settle before calling it a failure.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

#[derive(Args, Debug)]
pub struct MixedArgs {
    /// Length of the frame loop per contender, in seconds, shared out over the rounds.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,

    /// Frames per second.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub fps: u32,

    /// High-priority tasks per frame.
    #[arg(long, default_value_t = 64)]
    pub frame_tasks: u32,

    /// Work of one high-priority task, in microseconds.
    #[arg(long, default_value_t = 50)]
    pub frame_task_us: u64,

    /// Work of one background task, in microseconds.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub background_us: u64,

    /// Background tasks kept submitted and unfinished.
    #[arg(long, default_value_t = 16)]
    pub backlog: usize,

    #[command(flatten)]
    pub pools: Pools,

    #[command(flatten)]
    pub runs: Runs,
}

/// One round of one contender.
#[derive(Default)]
struct Sample {
    frames: u64,
    deadline_tasks: u64,
    missed: u64,
    background_done: u64,
    elapsed: Duration,
}

#[derive(Serialize)]
struct Output {
    seconds: f64,
    fps: u32,
    results: Vec<Figure>,
}

#[derive(Serialize)]
struct Figure {
    name: &'static str,
    missed_deadlines: u64,
    deadline_tasks: u64,
    background_per_s: f64,
    background_share: f64,
}

pub fn run(args: &MixedArgs) -> Result<()> {
    if !(args.seconds.is_finite() && args.seconds > 0.0) {
        bail!(
            "--seconds must be a positive number of seconds, not {}",
            args.seconds
        );
    }
    let work = TinyWork::calibrate();
    let entries = select(
        peers::contenders(args.pools.workers as usize, work),
        &args.runs.only,
    )?;
    let round_length = Duration::from_secs_f64(args.seconds / f64::from(args.runs.rounds));

    // Measure: each round runs its share of the loop.
    let samples = interleave(
        &entries,
        args.runs.rounds,
        |contender, _| frame_loop(contender, args, round_length),
        |s| {
            format!(
                "{} frames, {} missed, {} background",
                s.frames, s.missed, s.background_done
            )
        },
    )?;

    // Add up each contender's rounds.
    let left = spare_capacity_per_s(args);
    let results: Vec<Figure> = samples
        .iter()
        .map(|s| {
            let total = s.samples.iter().fold(Sample::default(), add);
            let background_per_s = total.background_done as f64 / total.elapsed.as_secs_f64();
            Figure {
                name: s.name,
                missed_deadlines: total.missed,
                deadline_tasks: total.deadline_tasks,
                background_per_s,
                background_share: background_per_s / left,
            }
        })
        .collect();

    if args.runs.json {
        return report::print_json(&Output {
            seconds: args.seconds,
            fps: args.fps,
            results,
        });
    }
    print_table(args, left, &results);
    Ok(())
}

/// Background tasks per second that the cores could run besides the frame work.
fn spare_capacity_per_s(args: &MixedArgs) -> f64 {
    let frame_work = f64::from(args.fps) * f64::from(args.frame_tasks) * args.frame_task_us as f64;
    let spare_us = f64::from(args.pools.workers) * 1e6 - frame_work;
    spare_us.max(0.0) / args.background_us as f64
}

/// Runs the frame loop for `length` against one contender.
fn frame_loop(contender: &mut dyn Contender, args: &MixedArgs, length: Duration) -> Result<Sample> {
    let period = Duration::from_secs(1) / args.fps;
    let frame_task = Duration::from_micros(args.frame_task_us);
    let background = Spin {
        duration: Duration::from_micros(args.background_us),
        class: Class::Low,
        deadline: None,
    };

    let start = Instant::now();
    let end = start + length;
    let mut next_frame = start;
    let mut frame_work: Vec<(Box<dyn Pending>, Instant)> = Vec::new();
    let mut background_work: Vec<Box<dyn Pending>> = Vec::new();
    let mut sample = Sample {
        elapsed: length,
        ..Sample::default()
    };

    while Instant::now() < end {
        // At a frame's start, submit its tasks, due at its end.
        let now = Instant::now();
        if now >= next_frame {
            let deadline = next_frame + period;
            let spin = Spin {
                duration: frame_task,
                class: Class::High,
                deadline: Some(deadline),
            };
            for _ in 0..args.frame_tasks {
                frame_work.push((contender.submit_spin(spin)?, deadline));
            }
            sample.frames += 1;
            sample.deadline_tasks += u64::from(args.frame_tasks);
            next_frame = next_frame_after(next_frame, now, period);
        }

        // Count what settled, keep the background topped up, and wait a little.
        settle(&mut frame_work, &mut background_work, end, &mut sample);
        while background_work.len() < args.backlog {
            background_work.push(contender.submit_spin(background)?);
        }
        thread::sleep(POLL.min(next_frame.saturating_duration_since(Instant::now())));
    }

    drain(&mut frame_work, &mut background_work, end, &mut sample)?;
    Ok(sample)
}

/// The next frame's start after `now`: a loop that fell behind skips the frames it missed
/// rather than bunching them up.
fn next_frame_after(frame: Instant, now: Instant, period: Duration) -> Instant {
    let mut next = frame + period;
    while next <= now {
        next += period;
    }
    next
}

/// Removes the settled tasks, counting missed deadlines and background finished by `end`.
fn settle(
    frame_work: &mut Vec<(Box<dyn Pending>, Instant)>,
    background_work: &mut Vec<Box<dyn Pending>>,
    end: Instant,
    sample: &mut Sample,
) {
    frame_work.retain_mut(|(task, deadline)| match task.poll() {
        None => true,
        Some(Settled::Finished(at)) => {
            sample.missed += u64::from(at > *deadline);
            false
        }
        Some(Settled::Expired | Settled::Failed) => {
            sample.missed += 1;
            false
        }
    });
    background_work.retain_mut(|task| match task.poll() {
        None => true,
        Some(Settled::Finished(at)) => {
            sample.background_done += u64::from(at <= end);
            false
        }
        Some(_) => false,
    });
}

/// Waits for every submitted task to settle, so that the pool is quiet when it is dropped.
fn drain(
    frame_work: &mut Vec<(Box<dyn Pending>, Instant)>,
    background_work: &mut Vec<Box<dyn Pending>>,
    end: Instant,
    sample: &mut Sample,
) -> Result<()> {
    let limit = Instant::now() + DRAIN_LIMIT;
    while !(frame_work.is_empty() && background_work.is_empty()) {
        if Instant::now() > limit {
            bail!(
                "tasks still unsettled {} s after the loop ended",
                DRAIN_LIMIT.as_secs()
            );
        }
        settle(frame_work, background_work, end, sample);
        thread::sleep(POLL);
    }
    Ok(())
}

fn add(total: Sample, round: &Sample) -> Sample {
    Sample {
        frames: total.frames + round.frames,
        deadline_tasks: total.deadline_tasks + round.deadline_tasks,
        missed: total.missed + round.missed,
        background_done: total.background_done + round.background_done,
        elapsed: total.elapsed + round.elapsed,
    }
}

fn print_table(args: &MixedArgs, left: f64, results: &[Figure]) {
    let title = format!(
        "mixed: {} s at {} fps, {} tasks of {} us per frame, background tasks of {} us \
         (backlog {}), {} workers, {} rounds",
        args.seconds,
        args.fps,
        args.frame_tasks,
        args.frame_task_us,
        args.background_us,
        args.backlog,
        args.pools.workers,
        args.runs.rounds
    );
    let mut table = Table::new(title, &["name", "missed", "of", "background/s", "share"]);
    for f in results {
        table.row(vec![
            f.name.to_string(),
            f.missed_deadlines.to_string(),
            f.deadline_tasks.to_string(),
            format!("{:.1}", f.background_per_s),
            format!("{:.3}", f.background_share),
        ]);
    }
    table.note(format!(
        "spare capacity: {left:.1} background tasks/s; targets for ours: no missed deadline, \
         share >= 0.90"
    ));
    table.note("pools without priorities or deadlines run the load first-in first-out");
    table.print();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_frame_loop_skips_the_frames_it_missed() {
        let start = Instant::now();
        let period = Duration::from_millis(10);
        let late = start + Duration::from_millis(35);
        assert_eq!(
            next_frame_after(start, late, period),
            start + Duration::from_millis(40)
        );
    }

    #[test]
    fn an_early_frame_loop_moves_on_by_one_period() {
        let start = Instant::now();
        let period = Duration::from_millis(10);
        assert_eq!(next_frame_after(start, start, period), start + period);
    }
}
