//! Clocks: a process-wide epoch that tasks stamp their completion against, and the process's
//! CPU time.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// The instant all [`since_epoch`] stamps count from, fixed at its first use.
pub fn epoch() -> Instant {
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds from the epoch to now: a plain number a task can return as its result, whatever
/// thread or pool it ran on.
pub fn since_epoch() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

/// The instant that a [`since_epoch`] stamp stands for.
pub fn at(stamp: u64) -> Instant {
    epoch() + Duration::from_nanos(stamp)
}

/// CPU time used so far by every thread of this process, user and system together.
pub fn process_cpu_time() -> Duration {
    // SAFETY: `rusage` is plain old data, for which all-zero bytes are a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };

    // SAFETY: `usage` is a valid, writable `rusage` that outlives the call, and RUSAGE_SELF is
    // a valid target; getrusage writes only into it.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    if rc != 0 {
        // RUSAGE_SELF with a valid pointer cannot fail; report no time rather than panic.
        return Duration::ZERO;
    }
    timeval(usage.ru_utime) + timeval(usage.ru_stime)
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_cpu_time_grows_while_computing() {
        let before = process_cpu_time();
        crate::work::spin_for(Duration::from_millis(30));
        assert!(process_cpu_time() > before);
    }

    #[test]
    fn epoch_stamps_map_back_to_instants() {
        let stamp = since_epoch();
        assert_eq!(at(stamp), epoch() + Duration::from_nanos(stamp));
    }
}
