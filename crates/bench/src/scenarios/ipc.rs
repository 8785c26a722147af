//! `ipc`: the round trip of a tiny request to another process and its reply.
//!
//! The floor is a bare request and reply over a Unix socketpair to a child process; ours is a
//! tiny task submitted to a pool of one worker process and waited for.

use std::time::Instant;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::Runs;
use crate::harness::{interleave, select, Entry};
use crate::peers::ours_process::{self, ProcessPing};
use crate::peers::socket_floor::{self, SocketFloor};
use crate::report;
use crate::stats::median;

/// Round trips before each timed round.
const WARM_UP: u64 = 1_000;

/// A contender of the `ipc` scenario: something that sends a tiny request to another process
/// and waits for its reply.
pub trait RoundTrip {
    fn round_trip(&mut self) -> Result<()>;
}

/// The contenders, each with its own child process.
pub fn contenders() -> Vec<Entry<dyn RoundTrip>> {
    vec![
        Entry::new(ours_process::NAME, || {
            Ok(Box::new(ProcessPing::start()?) as _)
        }),
        Entry::new(socket_floor::NAME, || {
            Ok(Box::new(SocketFloor::spawn()?) as _)
        }),
    ]
}

#[derive(Args, Debug)]
pub struct IpcArgs {
    /// Round trips per round.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub roundtrips: u64,

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
    us_per_roundtrip: f64,
}

pub fn run(args: &IpcArgs) -> Result<()> {
    let entries = select(contenders(), &args.runs.only)?;

    // Measure: the median of the rounds' µs per round trip.
    let samples = interleave(
        &entries,
        args.runs.rounds,
        |contender, _| {
            for _ in 0..WARM_UP {
                contender.round_trip()?;
            }
            let start = Instant::now();
            for _ in 0..args.roundtrips {
                contender.round_trip()?;
            }
            Ok(start.elapsed().as_secs_f64() * 1e6 / args.roundtrips as f64)
        },
        |us| format!("{us:.2} us/roundtrip"),
    )?;
    let results: Vec<Figure> = samples
        .iter()
        .map(|s| Figure {
            name: s.name,
            us_per_roundtrip: median(&s.samples).unwrap_or(f64::NAN),
        })
        .collect();

    if args.runs.json {
        return report::print_json(&Output { results });
    }
    let figures: Vec<(&str, f64)> = results
        .iter()
        .map(|f| (f.name, f.us_per_roundtrip))
        .collect();
    let title = format!(
        "ipc: {} round trips of a tiny message, median of {} rounds",
        args.roundtrips, args.runs.rounds
    );
    let (mut table, ours) = report::figure_table(title, "us/roundtrip", 2, &figures, report::OURS);
    if let (Some(ours), Some(floor)) = (ours, report::figure_of(&figures, socket_floor::NAME)) {
        table.note(format!(
            "ours / socket-floor = {:.2} (target <= 1.50)",
            ours / floor
        ));
    }
    table.print();
    Ok(())
}
