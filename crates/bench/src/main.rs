//! `protozoa-bench`: protozoa-workers and its peers, side by side in one run.
//!
//! Each subcommand is one scenario (see [`scenarios`]). Every contender runs the same work with
//! the same number of worker threads; the contenders take turns over several rounds so that
//! the noise of a shared machine falls on all of them, and the median (or, for latencies, the
//! percentiles over all rounds) is reported. Results go to stdout, as a table or, with
//! `--json`, as exactly one JSON object; progress goes to stderr.

mod child;
mod clock;
mod harness;
mod peers;
mod report;
mod scenarios;
mod stats;
mod work;

use anyhow::Result;
use clap::{Parser, Subcommand};

use scenarios::{batch, dispatch, ipc, mixed, sim, transfer, wake};

/// Benchmarks of protozoa-workers against its peers, side by side in one run.
#[derive(Parser)]
#[command(name = "protozoa-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// 1,000,000 tiny tasks submitted one at a time, every result awaited: ns per task.
    Dispatch(dispatch::DispatchArgs),
    /// 1,000,000 tiny tasks submitted in batches of 64: ns per task.
    Batch(batch::BatchArgs),
    /// Bursts of 64 tiny tasks after 100 ms idle: latency percentiles and idle CPU.
    Wake(wake::WakeArgs),
    /// A 60 fps frame loop with deadlines beside background work: missed deadlines and
    /// background throughput.
    Mixed(mixed::MixedArgs),
    /// The default Bitcoin Protozoa scene on 1 and 2 workers and directly: frames per second.
    Sim(sim::SimArgs),
    /// Round trip of a tiny message to another process: µs per round trip.
    Ipc(ipc::IpcArgs),
    /// Tasks taking a 64 MiB f32 buffer in another process: ms per task.
    Transfer(transfer::TransferArgs),
    /// The other end of the process scenarios (started by them, not by hand).
    #[command(hide = true)]
    SocketChild {
        #[arg(long, value_enum)]
        mode: child::Mode,
    },
}

fn main() -> Result<()> {
    // Started by one of our process pools: serve as its worker program.
    if peers::ours_process::serve_if_worker() {
        return Ok(());
    }
    let cli = Cli::parse();
    match &cli.command {
        Command::Dispatch(args) => dispatch::run(args),
        Command::Batch(args) => batch::run(args),
        Command::Wake(args) => wake::run(args),
        Command::Mixed(args) => mixed::run(args),
        Command::Sim(args) => sim::run(args),
        Command::Ipc(args) => ipc::run(args),
        Command::Transfer(args) => transfer::run(args),
        Command::SocketChild { mode } => child::serve(*mode),
    }
}
