//! The pool's clock: cheap raw ticks on the hot path, `Instant`s for users.
//!
//! Reading the monotonic clock through the OS costs tens of nanoseconds on some
//! virtual machines, more than the whole dispatch budget of a tiny task. The
//! pool therefore stamps tasks with raw cycle-counter ticks from `quanta` and
//! converts them to `std::time::Instant` only when somebody asks.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Raw ticks of the pool clock. Zero means "not yet".
pub(crate) type Ticks = u64;

/// Ticks that never come: used for "no deadline".
pub(crate) const NEVER: Ticks = u64::MAX;

struct Epoch {
    clock: quanta::Clock,
    raw: u64,
    instant: Instant,
}

fn epoch() -> &'static Epoch {
    static EPOCH: OnceLock<Epoch> = OnceLock::new();
    EPOCH.get_or_init(|| {
        let clock = quanta::Clock::new();
        let instant = Instant::now();
        let raw = clock.raw();
        Epoch {
            clock,
            raw,
            instant,
        }
    })
}

/// The current time in raw ticks (never zero).
#[inline]
pub(crate) fn now() -> Ticks {
    epoch().clock.raw().max(1)
}

/// Nanoseconds between two tick readings (zero if `end` is not after `start`).
#[inline]
pub(crate) fn nanos_between(start: Ticks, end: Ticks) -> u64 {
    if end <= start {
        return 0;
    }
    epoch().clock.delta_as_nanos(start, end)
}

/// The tick reading `duration` after `start`, saturating at [`NEVER`].
pub(crate) fn after(start: Ticks, duration: Duration) -> Ticks {
    let epoch = epoch();
    let elapsed = nanos_between(epoch.raw, start);
    let target = Duration::from_nanos(elapsed).saturating_add(duration);
    // Convert nanoseconds back to ticks by scaling with the measured ratio.
    let probe = epoch.raw.saturating_add(1 << 32);
    let nanos_per_2_32 = epoch.clock.delta_as_nanos(epoch.raw, probe).max(1) as u128;
    let ticks = (target.as_nanos().saturating_mul(1 << 32)) / nanos_per_2_32;
    u64::try_from(ticks)
        .ok()
        .and_then(|t| epoch.raw.checked_add(t))
        .unwrap_or(NEVER)
}

/// Converts a tick reading to an `Instant`; `None` for "not yet".
pub(crate) fn to_instant(ticks: Ticks) -> Option<Instant> {
    if ticks == 0 {
        return None;
    }
    let epoch = epoch();
    Some(epoch.instant + Duration::from_nanos(nanos_between(epoch.raw, ticks)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_lands_at_the_requested_distance() {
        let start = now();
        let later = after(start, Duration::from_millis(250));
        let nanos = nanos_between(start, later);
        assert!((249_000_000..=251_000_000).contains(&nanos), "{nanos}");
    }

    #[test]
    fn ticks_convert_to_increasing_instants() {
        let a = now();
        std::thread::sleep(Duration::from_millis(2));
        let b = now();
        assert!(to_instant(a).unwrap() < to_instant(b).unwrap());
        assert_eq!(to_instant(0), None);
    }
}
