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
    /// Raw ticks per nanosecond, measured once.
    ticks_per_nano: f64,
}

fn epoch() -> &'static Epoch {
    static EPOCH: OnceLock<Epoch> = OnceLock::new();
    EPOCH.get_or_init(|| {
        let clock = quanta::Clock::new();
        let instant = Instant::now();
        let raw = clock.raw();
        let span = 1_u64 << 32;
        let nanos = clock.delta_as_nanos(raw, raw + span).max(1);
        Epoch {
            clock,
            raw,
            instant,
            ticks_per_nano: span as f64 / nanos as f64,
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
#[inline]
pub(crate) fn after(start: Ticks, duration: Duration) -> Ticks {
    start.saturating_add(ticks_in(duration))
}

/// Ticks in `duration`, saturating.
pub(crate) fn ticks_in(duration: Duration) -> Ticks {
    let ticks = duration.as_nanos() as f64 * epoch().ticks_per_nano;
    if ticks >= NEVER as f64 {
        NEVER
    } else {
        ticks as Ticks
    }
}

/// Nanoseconds in a span of `ticks` (a difference of two readings).
pub(crate) fn ticks_to_nanos(ticks: Ticks) -> u64 {
    (ticks as f64 / epoch().ticks_per_nano) as u64
}

/// Converts an `Instant` to a tick reading (never zero).
pub(crate) fn from_instant(instant: Instant) -> Ticks {
    let epoch = epoch();
    let since = instant.saturating_duration_since(epoch.instant);
    after(epoch.raw, since).max(1)
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
