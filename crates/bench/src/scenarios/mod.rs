//! The benchmark scenarios, one module each, and the options they share.
//!
//! Thread-pool scenarios (`dispatch`, `batch`, `wake`, `mixed`) drive the contenders of
//! [`crate::peers::contenders`]; the process scenarios (`ipc`, `transfer`) have their own
//! contender traits, [`ipc::RoundTrip`] and [`transfer::Carry`].
//!
//! The `sim` scenario (the default scene on process workers against thread workers) belongs
//! here as one more module with its `Args` and `run`, and one more variant of the command enum
//! in `main.rs`; it needs the simulation crate's scene, so it comes with it.

pub mod batch;
pub mod dispatch;
pub mod ipc;
pub mod mixed;
pub mod transfer;
pub mod wake;

use clap::Args;

/// How often to run each contender, and how to print the results.
#[derive(Args, Debug, Clone)]
pub struct Runs {
    /// Rounds per contender; the contenders take turns within each round.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,

    /// Print exactly one JSON object on stdout instead of a table (progress goes to stderr).
    #[arg(long)]
    pub json: bool,

    /// Run only these contenders (comma-separated names).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
}

/// The size of each thread pool under test.
#[derive(Args, Debug, Clone)]
pub struct Pools {
    /// Worker threads in every pool.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub workers: u32,
}

/// The `--tasks` count as a `usize`, or an error if it does not fit this machine.
pub fn count(value: u64, option: &str) -> anyhow::Result<usize> {
    usize::try_from(value).map_err(|_| anyhow::anyhow!("{option} {value} is too large"))
}
