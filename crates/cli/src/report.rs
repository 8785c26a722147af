//! The end of a run: frame-time statistics, the table for people and the JSON object for
//! programs.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

/// What a run measured.
pub struct Summary {
    pub creatures: usize,
    pub particles: usize,
    pub frames: u64,
    pub workers: usize,
    pub backend: &'static str,
    pub tasks: u64,
    pub utilization: f64,
    pub checksum: u64,
    pub frame_times: FrameTimes,
    pub wall: Duration,
}

/// Frame-time quantiles, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameTimes {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl FrameTimes {
    /// The quantiles of `times` (nearest rank).
    pub fn of(times: &[Duration]) -> Self {
        let mut ms: Vec<f64> = times.iter().map(|t| t.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let rank = |q: f64| {
            let i = ((q * ms.len() as f64).ceil() as usize).clamp(1, ms.len().max(1)) - 1;
            ms.get(i).copied().unwrap_or(0.0)
        };
        Self {
            p50: rank(0.5),
            p99: rank(0.99),
            max: ms.last().copied().unwrap_or(0.0),
        }
    }
}

impl Summary {
    /// Simulated frames per second of wall time.
    pub fn frames_per_s(&self) -> f64 {
        self.frames as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// The table printed at the end of a run.
    pub fn table(&self, png: &Path) -> String {
        let rows = [
            ("frames", self.frames.to_string()),
            ("creatures", self.creatures.to_string()),
            ("particles", self.particles.to_string()),
            ("workers", format!("{} ({})", self.workers, self.backend)),
            ("tasks run", self.tasks.to_string()),
            ("frame time p50", format!("{:.2} ms", self.frame_times.p50)),
            ("frame time p99", format!("{:.2} ms", self.frame_times.p99)),
            ("frame time max", format!("{:.2} ms", self.frame_times.max)),
            ("frames/s", format!("{:.1}", self.frames_per_s())),
            (
                "worker utilization",
                format!("{:.1} %", self.utilization * 100.0),
            ),
            ("checksum", format!("{:016x}", self.checksum)),
            ("picture", png.display().to_string()),
        ];
        rows.iter()
            .map(|(name, value)| format!("  {name:<20}{value}\n"))
            .collect()
    }

    /// The JSON object printed with `--json`.
    pub fn json(&self, png: &Path) -> serde_json::Value {
        json!({
            "creatures": self.creatures,
            "particles": self.particles,
            "frames": self.frames,
            "workers": self.workers,
            "backend": self.backend,
            "tasks": self.tasks,
            "checksum": format!("{:016x}", self.checksum),
            "frame_ms": {
                "p50": self.frame_times.p50,
                "p99": self.frame_times.p99,
                "max": self.frame_times.max,
            },
            "wall_s": self.wall.as_secs_f64(),
            "frames_per_s": self.frames_per_s(),
            "utilization": self.utilization,
            "png": png.display().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_nearest_rank() {
        let times: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let q = FrameTimes::of(&times);
        assert_eq!((q.p50, q.p99, q.max), (50.0, 99.0, 100.0));
    }

    #[test]
    fn quantiles_of_nothing_are_zero() {
        assert_eq!(
            FrameTimes::of(&[]),
            FrameTimes {
                p50: 0.0,
                p99: 0.0,
                max: 0.0
            }
        );
    }
}
