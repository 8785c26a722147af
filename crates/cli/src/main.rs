//! `protozoa`: Bitcoin Protozoa creatures, one per Bitcoin block, simulated frame by frame on
//! the protozoa-workers pool.
//!
//! `protozoa` (or `protozoa simulate`) picks the blocks, builds a pool with the simulation's
//! handlers, runs the frames with a progress bar, then prints a summary (or one JSON object
//! with `--json`) and draws the last frame as a PNG. Bad input ends the program with one
//! `error:` line on stderr and exit code 2.

mod args;
mod blocks;
mod report;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use protozoa_sim::scene::Scene;
use protozoa_workers::{LogLevel, WorkerPool};

use args::{Backend, Cli, SimulateArgs};
use report::{FrameTimes, Summary};

fn main() -> ExitCode {
    // Started as a worker process of a pool: serve the simulation's handlers, then exit.
    #[cfg(target_os = "linux")]
    if protozoa_workers::process::serve_if_worker(&protozoa_sim::handlers()) {
        return ExitCode::SUCCESS;
    }

    let args = match Cli::try_parse() {
        Ok(cli) => cli.into_simulate(),
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => return fail(&first_line(&e.render().to_string())),
    };
    match simulate(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(&message),
    }
}

/// Prints one `error:` line and returns exit code 2.
fn fail(message: &str) -> ExitCode {
    let message = message.strip_prefix("error: ").unwrap_or(message);
    eprintln!("error: {message}");
    ExitCode::from(2)
}

fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or("invalid arguments")
        .to_owned()
}

/// The `simulate` command.
fn simulate(args: &SimulateArgs) -> Result<(), String> {
    args.check()?;
    init_logging(args.log_level);

    // Fail on an unwritable picture path now, not after the whole run.
    std::fs::File::create(&args.png)
        .map_err(|e| format!("cannot write picture {}: {e}", args.png.display()))?;

    let workers = args.worker_count();
    let pool = build_pool(args.backend, workers, args.log_level)?;
    let run = run(args, &pool);

    // Every task has settled; once the workers have stopped, their metrics are complete.
    pool.close();
    pool.join();
    let (scene, frame_times, wall) = run?;
    let metrics = pool.metrics();
    let summary = Summary {
        creatures: scene.creatures(),
        particles: scene.particles(),
        frames: args.frames,
        workers,
        backend: args.backend.name(),
        tasks: metrics.totals().done,
        utilization: metrics.utilization,
        checksum: scene.checksum(),
        frame_times: FrameTimes::of(&frame_times),
        wall,
    };

    // The picture, then the summary.
    scene.write_png(&args.png).map_err(|e| e.to_string())?;
    if args.json {
        println!("{}", summary.json(&args.png));
    } else {
        print!("{}", summary.table(&args.png));
    }
    Ok(())
}

/// A pool of `workers` workers of the `backend` kind running the simulation's handlers.
fn build_pool(backend: Backend, workers: usize, log_level: LogLevel) -> Result<WorkerPool, String> {
    let builder = WorkerPool::builder(protozoa_sim::handlers())
        .workers(workers)
        .log_level(log_level);
    let built = match backend {
        Backend::Thread => builder.build(),
        #[cfg(target_os = "linux")]
        Backend::Process => builder
            .process_workers(protozoa_workers::process::ProcessOptions::new())
            .build(),
        #[cfg(not(target_os = "linux"))]
        Backend::Process => return Err("--backend process needs Linux".into()),
    };
    built.map_err(|e| format!("cannot start the pool: {e}"))
}

/// Builds the scene and runs the frames, each timed from submission to the last creature's
/// result; returns the scene, the frame times and the wall time of the loop.
fn run(args: &SimulateArgs, pool: &WorkerPool) -> Result<(Scene, Vec<Duration>, Duration), String> {
    let creatures = blocks::creatures(args, pool)?;
    let mut scene = Scene::new(&creatures);
    let progress = progress_bar(args);

    let mut frame_times = Vec::with_capacity(args.frames as usize);
    let started = Instant::now();
    for _ in 0..args.frames {
        let frame_start = Instant::now();
        scene
            .step_on_pool(pool)
            .map_err(|e| format!("frame {}: {e}", scene.frame()))?;
        frame_times.push(frame_start.elapsed());
        progress.inc(1);
    }
    let wall = started.elapsed();
    progress.finish_and_clear();
    Ok((scene, frame_times, wall))
}

/// A frames-per-second progress bar on stderr, hidden when stderr is not a terminal or the
/// output is JSON.
fn progress_bar(args: &SimulateArgs) -> ProgressBar {
    if args.json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(args.frames), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{spinner} [{bar:40.cyan/blue}] {pos}/{len} frames  {per_sec}  eta {eta}",
    );
    if let Ok(style) = style {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// Sends `tracing` events at `level` and above to stderr.
fn init_logging(level: LogLevel) {
    let filter = match level {
        LogLevel::None => "off",
        LogLevel::Error => "error",
        LogLevel::Warn => "warn",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug",
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .try_init();
}
