//! The pool's clock: cheap raw ticks on the hot path, `Instant`s for users.
//!
//! Reading the monotonic clock through the OS costs tens of nanoseconds on some
//! virtual machines, more than the whole dispatch budget of a tiny task. The
//! pool therefore stamps tasks with raw cycle-counter ticks from `quanta` and
//! converts them to `std::time::Instant` only when somebody asks.
//!
//! The conversion goes through a [`Mapping`]: a recent reading of both clocks
//! and the tick rate measured between them since start-up, renewed at most once
//! a second by whoever converts. A single mapping made at start-up would drift
//! (4 µs a second was measured on the development machine, 14 ms an hour: a
//! frame deadline given as an `Instant` would expire most of a frame early).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crossbeam_utils::atomic::AtomicCell;

/// Raw ticks of the pool clock. Zero means "not yet".
pub(crate) type Ticks = u64;

/// Ticks that never come: used for "no deadline".
pub(crate) const NEVER: Ticks = u64::MAX;

/// How often, at most, the mapping between ticks and `Instant`s is renewed.
const RENEW_EVERY: Duration = Duration::from_secs(1);

/// How long both clocks must have run before the tick rate is measured
/// against `Instant`s instead of taken from `quanta`'s calibration.
const MIN_BASELINE: Duration = Duration::from_secs(1);

struct Epoch {
    clock: quanta::Clock,
    /// The first reading of both clocks, the baseline the tick rate is measured over.
    first: Reading,
    /// Ticks per nanosecond from `quanta`'s calibration, until the baseline is long enough.
    calibrated: f64,
    /// The current mapping, renewed by conversions when older than [`RENEW_EVERY`].
    mapping: AtomicCell<Mapping>,
}

fn epoch() -> &'static Epoch {
    static EPOCH: OnceLock<Epoch> = OnceLock::new();
    EPOCH.get_or_init(|| {
        let clock = quanta::Clock::new();
        let raw = clock.raw();
        let span = 1_u64 << 32;
        let nanos = clock.delta_as_nanos(raw, raw + span).max(1);
        let calibrated = span as f64 / nanos as f64;
        let first = Reading::take(&clock, calibrated);
        Epoch {
            clock,
            first,
            calibrated,
            mapping: AtomicCell::new(Mapping::new(first, calibrated)),
        }
    })
}

/// One reading of both clocks, taken back to back.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Reading {
    raw: Ticks,
    instant: Instant,
}

impl Reading {
    /// Reads both clocks, the `Instant` between two tick readings. A thread
    /// pre-empted between them would tie the two clocks together wrongly for
    /// as long as the reading serves, so the tightest of a few tries is kept.
    fn take(clock: &quanta::Clock, ticks_per_nano: f64) -> Reading {
        let tight = (TIGHT_READING.as_nanos() as f64 * ticks_per_nano) as Ticks;
        let mut best: Option<(Ticks, Reading)> = None;
        for _ in 0..READING_TRIES {
            let before = clock.raw();
            let instant = Instant::now();
            let after = clock.raw();
            let gap = after.saturating_sub(before);
            let reading = Reading {
                raw: before + gap / 2,
                instant,
            };
            match best {
                Some((best_gap, _)) if best_gap <= gap => {}
                _ => best = Some((gap, reading)),
            }
            if gap <= tight {
                break;
            }
        }
        best.map(|(_, reading)| reading).unwrap_or(Reading {
            raw: clock.raw(),
            instant: Instant::now(),
        })
    }
}

/// A reading whose tick readings lie this close together is taken as is.
const TIGHT_READING: Duration = Duration::from_micros(2);

/// Tries at a tight reading before the tightest one so far is kept.
const READING_TRIES: usize = 8;

/// How ticks map to `Instant`s: a recent reading of both clocks and the tick
/// rate between them.
///
/// The cycle counter and the monotonic clock do not run at exactly the ratio a
/// short calibration finds (a few parts per million apart here, and the OS
/// clock may be slewed), so one mapping made at start-up drifts: after an hour
/// a deadline would land milliseconds off, most of a 60 fps frame. A mapping is
/// therefore renewed from a fresh reading at most every [`RENEW_EVERY`], with
/// the rate measured over everything both clocks have run since the first
/// reading, so the error stays at the rate error over one interval.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Mapping {
    at: Reading,
    ticks_per_nano: f64,
}

impl Mapping {
    fn new(at: Reading, ticks_per_nano: f64) -> Self {
        Mapping { at, ticks_per_nano }
    }

    /// The mapping through `now`, with the rate measured since `first` once
    /// that baseline is long enough (else `fallback`).
    fn renewed(first: Reading, now: Reading, fallback: f64) -> Self {
        let elapsed = now.instant.saturating_duration_since(first.instant);
        let ticks = now.raw.saturating_sub(first.raw);
        let ticks_per_nano = if elapsed >= MIN_BASELINE && ticks > 0 {
            ticks as f64 / elapsed.as_nanos() as f64
        } else {
            fallback
        };
        Mapping::new(now, ticks_per_nano)
    }

    fn ticks_in(&self, duration: Duration) -> Ticks {
        let ticks = duration.as_nanos() as f64 * self.ticks_per_nano;
        if ticks >= NEVER as f64 {
            NEVER
        } else {
            ticks as Ticks
        }
    }

    fn nanos_in(&self, ticks: Ticks) -> u64 {
        (ticks as f64 / self.ticks_per_nano) as u64
    }

    /// The tick reading at `instant` (never zero).
    fn ticks_at(&self, instant: Instant) -> Ticks {
        let ticks = if instant >= self.at.instant {
            self.at
                .raw
                .saturating_add(self.ticks_in(instant - self.at.instant))
        } else {
            self.at
                .raw
                .saturating_sub(self.ticks_in(self.at.instant - instant))
        };
        ticks.max(1)
    }

    /// The `Instant` at tick reading `ticks`.
    fn instant_at(&self, ticks: Ticks) -> Instant {
        if ticks >= self.at.raw {
            self.at.instant + Duration::from_nanos(self.nanos_in(ticks - self.at.raw))
        } else {
            let before = Duration::from_nanos(self.nanos_in(self.at.raw - ticks));
            self.at
                .instant
                .checked_sub(before)
                .unwrap_or(self.at.instant)
        }
    }
}

/// The current mapping, renewed first if it is older than [`RENEW_EVERY`].
fn mapping() -> Mapping {
    let epoch = epoch();
    let current = epoch.mapping.load();
    let raw = epoch.clock.raw();
    if raw.saturating_sub(current.at.raw) < current.ticks_in(RENEW_EVERY) {
        return current;
    }
    let now = Reading::take(&epoch.clock, current.ticks_per_nano);
    let renewed = Mapping::renewed(epoch.first, now, epoch.calibrated);
    // Racing renewals each store a valid mapping; the last one stays.
    epoch.mapping.store(renewed);
    renewed
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
    epoch().mapping.load().nanos_in(end - start)
}

/// The tick reading `duration` after `start`, saturating at [`NEVER`].
#[inline]
pub(crate) fn after(start: Ticks, duration: Duration) -> Ticks {
    start.saturating_add(ticks_in(duration))
}

/// Ticks in `duration`, saturating.
pub(crate) fn ticks_in(duration: Duration) -> Ticks {
    epoch().mapping.load().ticks_in(duration)
}

/// Nanoseconds in a span of `ticks` (a difference of two readings).
pub(crate) fn ticks_to_nanos(ticks: Ticks) -> u64 {
    epoch().mapping.load().nanos_in(ticks)
}

/// Converts an `Instant` to a tick reading (never zero).
pub(crate) fn from_instant(instant: Instant) -> Ticks {
    mapping().ticks_at(instant)
}

/// Converts a tick reading to an `Instant`; `None` for "not yet".
pub(crate) fn to_instant(ticks: Ticks) -> Option<Instant> {
    if ticks == 0 {
        return None;
    }
    Some(mapping().instant_at(ticks))
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

    /// A cycle counter running `ppm` parts per million faster than the rate
    /// `calibrated` claims: its reading `secs` seconds after `start`.
    fn skewed(start: Reading, calibrated: f64, ppm: f64, secs: f64) -> Reading {
        let nanos = secs * 1e9;
        Reading {
            raw: start.raw + (nanos * calibrated * (1.0 + ppm * 1e-6)) as u64,
            instant: start.instant + Duration::from_secs_f64(secs),
        }
    }

    #[test]
    fn a_renewed_mapping_stays_exact_over_hours_of_skew() {
        let first = Reading {
            raw: 1_000,
            instant: Instant::now(),
        };
        let calibrated = 2.5;
        let ppm = 4.0;
        let kept = Mapping::new(first, calibrated);
        let mut renewed = kept;
        for second in 1..=3 * 3600 {
            let now = skewed(first, calibrated, ppm, f64::from(second));
            renewed = Mapping::renewed(first, now, calibrated);
        }
        // Half a second after the last renewal, three hours in.
        let truth = skewed(first, calibrated, ppm, 3.0 * 3600.0 + 0.5);
        let error = |mapping: &Mapping| {
            let instant = mapping.instant_at(truth.raw);
            let off = if instant > truth.instant {
                instant - truth.instant
            } else {
                truth.instant - instant
            };
            off.as_nanos()
        };
        // The mapping made once is tens of milliseconds off by now ...
        assert!(error(&kept) > 40_000_000, "{}", error(&kept));
        // ... the renewed one within a microsecond, both ways.
        assert!(error(&renewed) < 1_000, "{}", error(&renewed));
        let ticks = renewed.ticks_at(truth.instant);
        assert!(
            ticks.abs_diff(truth.raw) < 3_000,
            "{ticks} vs {}",
            truth.raw
        );
    }

    #[test]
    fn a_mapping_converts_both_ways_before_and_after_its_reading() {
        let at = Reading {
            raw: 1_000_000_000,
            instant: Instant::now() + Duration::from_secs(5),
        };
        let mapping = Mapping::new(at, 3.0);
        for offset in [-2_000_000_i64, -1, 0, 1, 7_000_000] {
            let ticks = at.raw.checked_add_signed(offset * 3).unwrap();
            let back = mapping.ticks_at(mapping.instant_at(ticks));
            assert!(back.abs_diff(ticks) <= 3, "{offset}: {back} vs {ticks}");
        }
        assert_eq!(mapping.ticks_at(at.instant - Duration::from_secs(1_000)), 1);
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
