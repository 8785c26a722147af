//! A 60 fps frame loop: each frame submits its per-frame work with a time limit, waits until
//! the frame's end, and cancels whatever has not settled by then. At the end it prints what the
//! pool measured per task type.
//!
//! Three task types share the frame: `calculateForces` and `calculateBehavior` are short, while
//! `calculateLOD` occasionally takes far longer than a frame. Its handler checks its
//! cancellation token, so when the frame gives up on it the worker is free again soon after.
//!
//! Run with `cargo run --release -p protozoa-workers --example frame_loop`.

use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

use protozoa_workers::{task, Handlers, TaskContext, TaskError, WorkerPool};

/// Frames to run: two seconds at 60 fps.
const FRAMES: u32 = 120;
/// One frame at 60 fps.
const FRAME: Duration = Duration::from_nanos(16_666_667);
/// Particles per chunk of forces or behaviour work.
const CHUNK: usize = 200;
/// Every this many frames, the level-of-detail pass is slow.
const SLOW_LOD_EVERY: u32 = 20;

task! {
    /// Pairwise forces on a chunk of particles: sums of inverse squared distances.
    struct CalculateForces: u64 => f32 = "calculateForces";

    /// Flocking on a chunk of particles: the mean distance to the others.
    struct CalculateBehavior: u64 => f32 = "calculateBehavior";

    /// A level-of-detail pass; the input is how long it works, in microseconds.
    struct CalculateLod: u64 => u32 = "calculateLOD";
}

/// A chunk of particle positions drawn from `seed`.
fn particles(seed: u64) -> Vec<[f32; 2]> {
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 10_000) as f32 / 100.0
    };
    (0..CHUNK).map(|_| [next(), next()]).collect()
}

fn forces(seed: u64) -> f32 {
    let points = particles(seed);
    let mut total = 0.0;
    for a in &points {
        for b in &points {
            let (dx, dy) = (a[0] - b[0], a[1] - b[1]);
            total += 1.0 / (dx * dx + dy * dy + 0.01);
        }
    }
    total
}

fn behaviour(seed: u64) -> f32 {
    let points = particles(seed);
    let mut total = 0.0;
    for a in &points {
        for b in &points {
            total += ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
        }
    }
    total / (CHUNK * CHUNK) as f32
}

/// Works for `micros` microseconds in small steps, stopping early once the task is
/// cancelled or timed out: a thread cannot be stopped from outside.
fn level_of_detail(micros: u64, task: &TaskContext<'_>) -> u32 {
    let until = Instant::now() + Duration::from_micros(micros);
    let mut steps = 0_u32;
    while Instant::now() < until && !task.is_cancelled() {
        black_box(forces(u64::from(steps)));
        steps += 1;
    }
    steps
}

/// What happened to the frame's tasks.
#[derive(Default)]
struct Tally {
    settled_in_frame: u64,
    cancelled_at_frame_end: u64,
    timed_out: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let handlers = Handlers::stateless()
        .handler::<CalculateForces>(|_, seed, _| Ok(forces(seed)))
        .handler::<CalculateBehavior>(|_, seed, _| Ok(behaviour(seed)))
        .handler::<CalculateLod>(|_, micros, task| Ok(level_of_detail(micros, task)));
    let pool = WorkerPool::builder(handlers).workers(2).build()?;

    let mut tally = Tally::default();
    let start = Instant::now();
    for frame in 0..FRAMES {
        let frame_end = start + FRAME * (frame + 1);
        let limit = frame_end.saturating_duration_since(Instant::now());
        let seed = u64::from(frame) * 16;

        // Submit this frame's work, each task limited to what is left of the frame.
        let mut handles = Vec::new();
        for chunk in 0..4 {
            handles.push(
                pool.task::<CalculateForces>(seed + chunk)
                    .timeout(limit)
                    .submit()?,
            );
        }
        for chunk in 4..6 {
            handles.push(
                pool.task::<CalculateBehavior>(seed + chunk)
                    .timeout(limit)
                    .submit()?,
            );
        }
        let lod_micros = if frame % SLOW_LOD_EVERY == 0 {
            50_000
        } else {
            500
        };
        let lod = pool
            .task::<CalculateLod>(lod_micros)
            .timeout(limit)
            .submit()?;

        // Collect results until the frame ends; cancel whatever is still out then. The time
        // limit counts from a task's start, so a task still queued at the frame's end is
        // stopped only by the cancel.
        let mut record = |result: Result<(), TaskError>| match result {
            Ok(()) => tally.settled_in_frame += 1,
            Err(TaskError::TimedOut { .. }) => tally.timed_out += 1,
            Err(_) => tally.cancelled_at_frame_end += 1,
        };
        for handle in handles {
            let wait = frame_end.saturating_duration_since(Instant::now());
            match handle.wait_timeout(wait) {
                Ok(result) => record(result.map(|_| ())),
                Err(handle) => {
                    handle.cancel();
                    record(handle.wait().map(|_| ()));
                }
            }
        }
        let wait = frame_end.saturating_duration_since(Instant::now());
        match lod.wait_timeout(wait) {
            Ok(result) => record(result.map(|_| ())),
            Err(lod) => {
                lod.cancel();
                record(lod.wait().map(|_| ()));
            }
        }

        // Sleep out the rest of the frame (the render would run here).
        thread::sleep(frame_end.saturating_duration_since(Instant::now()));
    }
    let elapsed = start.elapsed();

    // Let the last tasks drain, then read the pool's measurements.
    pool.close();
    pool.join();
    print_report(&pool, &tally, elapsed);
    Ok(())
}

fn print_report(pool: &WorkerPool, tally: &Tally, elapsed: Duration) {
    println!(
        "{FRAMES} frames in {elapsed:.2?}: {} tasks settled within their frame, {} timed out, \
         {} cancelled at frame end",
        tally.settled_in_frame, tally.timed_out, tally.cancelled_at_frame_end
    );
    let metrics = pool.metrics();
    println!(
        "{:<18} {:>5} {:>5} {:>5} {:>5} {:>11} {:>11} {:>11} {:>11}",
        "task type", "done", "t/o", "canc", "fail", "wait p50", "wait p99", "run p50", "run p99"
    );
    for (name, task_type) in &metrics.task_types {
        let counts = &task_type.outcomes;
        println!(
            "{name:<18} {:>5} {:>5} {:>5} {:>5} {:>11.1?} {:>11.1?} {:>11.1?} {:>11.1?}",
            counts.done,
            counts.timed_out,
            counts.cancelled,
            counts.failed + counts.panicked,
            task_type.queue_wait.p50(),
            task_type.queue_wait.p99(),
            task_type.run_time.p50(),
            task_type.run_time.p99(),
        );
    }
    println!("worker utilization: {:.0} %", metrics.utilization * 100.0);
}
