//! The command line: `protozoa [simulate] [OPTIONS]`, parsed and checked.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use protozoa_workers::LogLevel;

/// Bitcoin Protozoa: creatures born from Bitcoin blocks, simulated on a worker pool.
///
/// Without a subcommand, runs `simulate`.
#[derive(Parser, Debug)]
#[command(name = "protozoa", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub simulate: SimulateArgs,
}

/// What to do.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Simulate creatures frame by frame on the pool, then print a summary and draw the last
    /// frame.
    Simulate(SimulateArgs),
}

/// The options of `simulate`.
#[derive(Args, Debug, Clone)]
pub struct SimulateArgs {
    /// Creatures in the scene [default: 64, or one per given block]
    #[arg(long, value_name = "N")]
    pub creatures: Option<usize>,
    /// Frames to simulate (60 a simulated second)
    #[arg(long, value_name = "N", default_value_t = 600)]
    pub frames: u64,
    /// Workers [default: all cores]
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// What a worker is: a thread, or a child process (isolated; crashes and time limits
    /// cannot take the program down)
    #[arg(long, value_enum, default_value_t = Backend::Thread)]
    pub backend: Backend,
    /// A block height from the embedded set (or from --api); repeatable
    #[arg(long = "block", value_name = "HEIGHT")]
    pub blocks: Vec<u64>,
    /// A JSON file of one block record or an array of them, in the `blockinfo` shape
    #[arg(long, value_name = "PATH")]
    pub block_file: Option<PathBuf>,
    /// Base URL of a blockinfo HTTP API (`{URL}/r/blockinfo/{height}`) to fetch blocks from
    #[arg(long, value_name = "URL")]
    pub api: Option<String>,
    /// Chain tip height that confirmations count from [default: the newest embedded block]
    #[arg(long, value_name = "HEIGHT")]
    pub tip: Option<u64>,
    /// Where to draw the final frame
    #[arg(long, value_name = "PATH", default_value = "protozoa.png")]
    pub png: PathBuf,
    /// Print one JSON object on stdout instead of the table
    #[arg(long)]
    pub json: bool,
    /// Log level: none, error, warn, info, debug
    #[arg(long, value_name = "LEVEL", default_value = "error")]
    pub log_level: LogLevel,
}

/// The kind of worker the pool runs.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Worker threads in this process.
    Thread,
    /// Worker processes started from this program.
    Process,
}

impl Backend {
    /// The name the summary reports.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Thread => "thread",
            Backend::Process => "process",
        }
    }
}

impl SimulateArgs {
    /// Refuses values that parse but make no sense.
    pub fn check(&self) -> Result<(), String> {
        if self.frames == 0 {
            return Err("--frames must be at least 1".into());
        }
        if self.workers == Some(0) {
            return Err("--workers must be at least 1".into());
        }
        if self.creatures == Some(0) {
            return Err("--creatures must be at least 1".into());
        }
        Ok(())
    }

    /// The number of worker threads to start.
    pub fn worker_count(&self) -> usize {
        self.workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

impl Cli {
    /// The simulate options, whether given after `simulate` or alone.
    pub fn into_simulate(self) -> SimulateArgs {
        match self.command {
            Some(Command::Simulate(args)) => args,
            None => self.simulate,
        }
    }
}
