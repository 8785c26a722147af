//! A uniform spatial grid over some particles, rebuilt each frame, so that neighbour searches
//! look at nearby cells instead of every particle.
//!
//! Particles are counting-sorted by cell into one array of [`Slot`]s (a copy of the position
//! and a tag), with the cells laid out x-fastest. A query walks the rows of cells around a
//! point; each row is one contiguous run of slots. The order of slots depends only on the
//! positions, so every search visits neighbours in the same order on every machine. The grid
//! keeps its buffers between builds, so a warm grid does not allocate.

use std::ops::Range;

/// The most cells a grid uses; a wider spread gets larger cells instead.
const MAX_CELLS: usize = 8192;
/// Cells searched on each side of the query's cell. Cells are `radius / REACH` wide.
const REACH: isize = 2;

/// One particle in the grid: its position and a caller-chosen tag (index and role).
#[derive(Clone, Copy, Debug, Default)]
pub struct Slot {
    pub x: f32,
    pub y: f32,
    pub z: f32,
    pub tag: u32,
}

/// The grid and its reusable buffers.
#[derive(Debug, Default)]
pub struct Grid {
    cell: f32,
    origin: [f32; 3],
    dims: [usize; 3],
    starts: Vec<u32>,
    slots: Vec<Slot>,
    cell_of: Vec<u32>,
}

impl Grid {
    /// An empty grid.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sorts the particles in `range` of `positions` (`[x, y, z, ...]`) into cells sized for
    /// searches within `radius`; `tag` names each particle by its index.
    pub fn build(
        &mut self,
        positions: &[f32],
        range: Range<usize>,
        radius: f32,
        tag: impl Fn(usize) -> u32,
    ) {
        self.fit(positions, range.clone(), radius);

        // Each particle's cell, and how many particles each cell holds.
        let cells = self.dims.iter().product::<usize>();
        self.starts.clear();
        self.starts.resize(cells + 1, 0);
        self.cell_of.clear();
        for i in range.clone() {
            let c = self.cell_index(point(positions, i));
            self.cell_of.push(c as u32);
            self.starts[c + 1] += 1;
        }

        // Running sums turn counts into start offsets; then place each particle.
        for c in 0..cells {
            self.starts[c + 1] += self.starts[c];
        }
        self.slots.clear();
        self.slots.resize(range.len(), Slot::default());
        for (k, i) in range.enumerate() {
            let c = self.cell_of[k] as usize;
            let at = self.starts[c] as usize;
            self.starts[c] += 1;
            let [x, y, z] = point(positions, i);
            self.slots[at] = Slot {
                x,
                y,
                z,
                tag: tag(i),
            };
        }

        // Placing advanced each start to the next cell's start; shift them back.
        for c in (1..=cells).rev() {
            self.starts[c] = self.starts[c - 1];
        }
        self.starts[0] = 0;
    }

    /// Calls `visit` with every particle in the cells within `radius` of `p` (a superset of
    /// the particles within `radius`; the caller checks distances).
    #[inline]
    pub fn for_each_near(&self, p: [f32; 3], mut visit: impl FnMut(&Slot)) {
        let c = self.cell_coords(p);
        let axis = |a: usize| {
            let lo = (c[a] - REACH).max(0) as usize;
            let hi = (c[a] + REACH).min(self.dims[a] as isize - 1) as usize;
            lo..=hi
        };
        let (xs, ys) = (axis(0), axis(1));
        for z in axis(2) {
            for y in ys.clone() {
                let row = (z * self.dims[1] + y) * self.dims[0];
                let from = self.starts[row + xs.start()] as usize;
                let to = self.starts[row + xs.end() + 1] as usize;
                self.slots[from..to].iter().for_each(&mut visit);
            }
        }
    }

    /// Sets the origin, cell size and dimensions to cover the particles.
    fn fit(&mut self, positions: &[f32], range: Range<usize>, radius: f32) {
        let mut lo = [f32::INFINITY; 3];
        let mut hi = [f32::NEG_INFINITY; 3];
        for i in range {
            let p = point(positions, i);
            for a in 0..3 {
                lo[a] = lo[a].min(p[a]);
                hi[a] = hi[a].max(p[a]);
            }
        }
        if !lo.iter().chain(&hi).all(|v| v.is_finite()) {
            (lo, hi) = ([0.0; 3], [0.0; 3]);
        }

        self.origin = lo;
        self.cell = radius / REACH as f32;
        loop {
            self.dims = std::array::from_fn(|a| ((hi[a] - lo[a]) / self.cell) as usize + 1);
            if self.dims.iter().product::<usize>() <= MAX_CELLS {
                break;
            }
            self.cell *= 2.0;
        }
    }

    /// The integer cell coordinates of `p`, not clamped.
    fn cell_coords(&self, p: [f32; 3]) -> [isize; 3] {
        std::array::from_fn(|a| ((p[a] - self.origin[a]) / self.cell) as isize)
    }

    /// The cell index of `p`, clamped into the grid.
    fn cell_index(&self, p: [f32; 3]) -> usize {
        let c = self.cell_coords(p);
        let clamp = |a: usize| c[a].clamp(0, self.dims[a] as isize - 1) as usize;
        (clamp(2) * self.dims[1] + clamp(1)) * self.dims[0] + clamp(0)
    }
}

/// Particle `i` of a flat `[x, y, z, ...]` buffer.
#[inline]
pub fn point(buffer: &[f32], i: usize) -> [f32; 3] {
    [buffer[3 * i], buffer[3 * i + 1], buffer[3 * i + 2]]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Mulberry32;

    #[test]
    fn grid_search_finds_every_neighbour_within_radius() {
        let mut rng = Mulberry32::new(4);
        let positions: Vec<f32> = (0..600).map(|_| rng.range(-30.0, 30.0)).collect();
        let mut grid = Grid::new();
        grid.build(&positions, 0..200, 7.0, |i| i as u32);

        for i in 0..200 {
            let p = point(&positions, i);
            let mut found = Vec::new();
            grid.for_each_near(p, |s| {
                let d2 = (s.x - p[0]).powi(2) + (s.y - p[1]).powi(2) + (s.z - p[2]).powi(2);
                if d2 < 49.0 {
                    found.push(s.tag as usize);
                }
            });
            found.sort_unstable();
            let brute: Vec<usize> = (0..200)
                .filter(|&j| {
                    let q = point(&positions, j);
                    (0..3).map(|a| (q[a] - p[a]).powi(2)).sum::<f32>() < 49.0
                })
                .collect();
            assert_eq!(found, brute);
        }
    }

    #[test]
    fn grid_covers_only_the_given_range() {
        let positions = vec![0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 2.0, 0.0, 0.0];
        let mut grid = Grid::new();
        grid.build(&positions, 1..3, 5.0, |i| i as u32);
        let mut tags = Vec::new();
        grid.for_each_near([0.0; 3], |s| tags.push(s.tag));
        tags.sort_unstable();
        assert_eq!(tags, vec![1, 2]);
    }
}
