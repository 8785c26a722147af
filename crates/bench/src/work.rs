//! The work a benchmark task does: a calibrated tiny hash loop, and busy spinning for a set
//! duration.
//!
//! Every contender runs exactly the same work, so the differences between them are the cost of
//! their machinery: submitting, waking a worker, running, and handing the result back.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// How long one tiny task should compute, in nanoseconds.
pub const TINY_TARGET_NS: f64 = 100.0;

/// A tiny task's work: `rounds` steps of a multiply-rotate hash over its input.
///
/// `Copy`, so each contender's handler or closure carries its own.
#[derive(Clone, Copy, Debug)]
pub struct TinyWork {
    rounds: u32,
    ns: f64,
}

impl TinyWork {
    /// Finds the number of rounds that takes about [`TINY_TARGET_NS`] on this machine.
    ///
    /// Takes the fastest of several timings: the machine is shared, and the fastest run is the
    /// one least disturbed by other work.
    pub fn calibrate() -> Self {
        const PROBE_ROUNDS: u32 = 1_000;
        const CALLS: u64 = 2_000;

        let probe = TinyWork {
            rounds: PROBE_ROUNDS,
            ns: 0.0,
        };
        let per_round = (0..9)
            .map(|_| probe.time_per_call(CALLS))
            .fold(f64::MAX, f64::min)
            / f64::from(PROBE_ROUNDS);
        let rounds = (TINY_TARGET_NS / per_round).round().max(1.0) as u32;

        let work = TinyWork { rounds, ns: 0.0 };
        let ns = (0..9)
            .map(|_| work.time_per_call(200_000))
            .fold(f64::MAX, f64::min);
        TinyWork { rounds, ns }
    }

    /// Runs the work on `input` and returns its hash.
    #[inline]
    pub fn run(self, input: u64) -> u64 {
        let mut x = input;
        for _ in 0..self.rounds {
            x = black_box(x)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .rotate_left(29)
                ^ 0xA5A5;
        }
        x
    }

    /// The measured cost of one [`TinyWork::run`], in nanoseconds.
    pub fn ns(self) -> f64 {
        self.ns
    }

    /// Mean time of one call over `calls` calls, in nanoseconds.
    fn time_per_call(self, calls: u64) -> f64 {
        let start = Instant::now();
        let mut sum = 0u64;
        for i in 0..calls {
            sum = sum.wrapping_add(self.run(i));
        }
        black_box(sum);
        start.elapsed().as_nanos() as f64 / calls as f64
    }
}

/// Keeps the calling thread busy for `duration` (a task that computes for that long).
pub fn spin_for(duration: Duration) {
    let start = Instant::now();
    while start.elapsed() < duration {
        std::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_work_depends_on_its_input() {
        let work = TinyWork {
            rounds: 10,
            ns: 0.0,
        };
        assert_ne!(work.run(1), work.run(2));
        assert_eq!(work.run(7), work.run(7));
    }
}
