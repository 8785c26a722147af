//! A uniform spatial grid over some particles, rebuilt each frame, so that the kernels meet
//! the pairs of particles that are close instead of every pair.
//!
//! Particles are counting-sorted by cell into parallel arrays (position, particle index and
//! role group), with cells laid out x-fastest, so the cells of one row sit next to each other
//! in the arrays. [`Grid::near_after`] finds, for one particle, the close particles that come
//! *after* it (later in its own row, or in the rows after it), so that over all particles every
//! close pair is met exactly once and a kernel computes it once for both of its particles.
//!
//! The order of the arrays, and so the order in which pairs are visited, depends only on the
//! positions: every machine sums the same numbers in the same order. The grid keeps its
//! buffers between builds, so a warm grid does not allocate.

use std::ops::Range;

/// The most cells a grid uses; a wider spread gets larger cells instead.
const MAX_CELLS: usize = 16384;
/// Cells searched on each side of a particle's cell. Cells are `radius / REACH` wide.
const REACH: usize = 2;
/// The most runs one search walks: its own row, then `REACH` rows of its plane and
/// `REACH * (2 * REACH + 1)` rows of the later planes.
const MAX_RUNS: usize = 1 + REACH + REACH * (2 * REACH + 1);

/// One particle of a pair: its index in the buffers the grid was built from, and its group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub index: usize,
    pub group: usize,
}

/// The particles after one particle within reach of it: see [`Grid::for_each_neighbourhood`].
pub struct Near<'g> {
    xs: &'g [f32],
    ys: &'g [f32],
    zs: &'g [f32],
    index: &'g [u32],
    group: &'g [u8],
    found: std::slice::Iter<'g, u32>,
    p: [f32; 3],
}

impl Near<'_> {
    #[inline(always)]
    fn entry(&self, k: usize) -> Entry {
        Entry {
            index: self.index[k] as usize,
            group: self.group[k] as usize,
        }
    }
}

impl Iterator for Near<'_> {
    /// The particle, its offset from the first one, and that offset's squared length.
    type Item = (Entry, [f32; 3], f32);

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        let b = *self.found.next()? as usize;
        let p = self.p;
        let d = [self.xs[b] - p[0], self.ys[b] - p[1], self.zs[b] - p[2]];
        Some((self.entry(b), d, d[0] * d[0] + d[1] * d[1] + d[2] * d[2]))
    }
}

/// The grid and its reusable buffers. After a build, index `k` of [`Grid::xs`], [`Grid::ys`],
/// [`Grid::zs`], [`Grid::index`] and [`Grid::group`] describes one particle.
#[derive(Debug, Default)]
pub struct Grid {
    cell: f32,
    /// `1 / cell`: placing a point multiplies instead of dividing.
    inv_cell: f32,
    origin: [f32; 3],
    dims: [usize; 3],
    /// Where each cell's particles start in the arrays, then the end.
    starts: Vec<u32>,
    cell_of: Vec<u32>,
    pub xs: Vec<f32>,
    pub ys: Vec<f32>,
    pub zs: Vec<f32>,
    /// The particle's index in the buffers the grid was built from.
    pub index: Vec<u32>,
    /// The particle's role group.
    pub group: Vec<u8>,
    /// The entries [`Grid::near_after`] found.
    pub near: Vec<u32>,
}

impl Grid {
    /// An empty grid.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sorts the particles in `range` of `positions` (`[x, y, z, ...]`) into cells sized for
    /// pairs within `radius`; `group_of` gives each particle's role group from its index.
    pub fn build(
        &mut self,
        positions: &[f32],
        range: Range<usize>,
        radius: f32,
        group_of: impl Fn(usize) -> u8,
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
        let n = range.len();
        for column in [&mut self.xs, &mut self.ys, &mut self.zs] {
            column.clear();
            column.resize(n, 0.0);
        }
        self.index.clear();
        self.index.resize(n, 0);
        self.group.clear();
        self.group.resize(n, 0);
        self.near.clear();
        self.near.resize(n, 0);
        for (k, i) in range.enumerate() {
            let c = self.cell_of[k] as usize;
            let at = self.starts[c] as usize;
            self.starts[c] += 1;
            [self.xs[at], self.ys[at], self.zs[at]] = point(positions, i);
            self.index[at] = i as u32;
            self.group[at] = group_of(i);
        }

        // Placing advanced each start to the next cell's start; shift them back.
        for c in (1..=cells).rev() {
            self.starts[c] = self.starts[c - 1];
        }
        self.starts[0] = 0;
    }

    /// Collects into [`Grid::near`] the entries after `a` (in grid order) closer than
    /// `radius` to it (at most the radius the grid was built for) and returns how many: over
    /// all `a`, every close pair appears exactly once, under the earlier of its two entries.
    #[inline]
    pub fn near_after(&mut self, a: usize, radius: f32) -> usize {
        let p = [self.xs[a], self.ys[a], self.zs[a]];
        let (runs, count) = self.runs_after(a, p, radius);

        // Every candidate is written, only those within reach are kept: no branch to
        // mispredict. `kept` never passes the candidates seen, so it stays in bounds.
        let r2 = radius * radius;
        let (xs, ys, zs): (&[f32], &[f32], &[f32]) = (&self.xs, &self.ys, &self.zs);
        let near: &mut [u32] = &mut self.near;
        let mut kept = 0;
        for run in &runs[..count] {
            let (from, to) = (run.start, run.end);
            let columns = xs[from..to].iter().zip(&ys[from..to]).zip(&zs[from..to]);
            for (b, ((&x, &y), &z)) in (from..to).zip(columns) {
                let d = [x - p[0], y - p[1], z - p[2]];
                near[kept] = b as u32;
                kept += usize::from(d[0] * d[0] + d[1] * d[1] + d[2] * d[2] < r2);
            }
        }
        kept
    }

    /// Calls `visit(a, near)` for every particle `a`, where `near` yields the particles `b`
    /// that come after it and are closer than `radius` (at most the radius the grid was
    /// built for), each with `d`, the position of `b` minus that of `a`, and `d2`, its squared
    /// length. Over all particles every close pair comes exactly once, in an order that
    /// depends only on the positions. A kernel sums what `a` gets from its pairs locally and
    /// adds it once, and adds what each `b` gets at once.
    #[inline]
    pub fn for_each_neighbourhood(&mut self, radius: f32, mut visit: impl FnMut(Entry, Near<'_>)) {
        for a in 0..self.xs.len() {
            let count = self.near_after(a, radius);
            let near = Near {
                xs: &self.xs,
                ys: &self.ys,
                zs: &self.zs,
                index: &self.index,
                group: &self.group,
                found: self.near[..count].iter(),
                p: [self.xs[a], self.ys[a], self.zs[a]],
            };
            visit(near.entry(a), near);
        }
    }

    /// The runs of entries that can be within `radius` of entry `a` at `p` and come after it:
    /// the rest of its own row up to the reach in x, then each later row (in z-then-y order)
    /// whose cells come within reach, cut to the cells in x that can be that close.
    fn runs_after(&self, a: usize, p: [f32; 3], radius: f32) -> ([Range<usize>; MAX_RUNS], usize) {
        let [dx, dy, _] = self.dims;
        let (y, z) = (self.axis_cell(1, p[1]), self.axis_cell(2, p[2]));
        let mut runs: [Range<usize>; MAX_RUNS] = std::array::from_fn(|_| 0..0);

        let row = (z * dy + y) * dx;
        runs[0] = a + 1..self.starts[row + self.axis_cell(0, p[0] + radius) + 1] as usize;
        let mut count = 1;

        let reach = |axis: usize, at: usize| (at + REACH).min(self.dims[axis] - 1);
        let same_plane = (y + 1..=reach(1, y)).map(|ry| (z, ry));
        let later_planes = (z + 1..=reach(2, z))
            .flat_map(|rz| (y.saturating_sub(REACH)..=reach(1, y)).map(move |ry| (rz, ry)));
        for (rz, ry) in same_plane.chain(later_planes) {
            // How close the row's cells come to `p` across the row, and so how far along
            // the row a particle can be and still be within reach.
            let (gap_y, gap_z) = (self.gap(1, ry, p[1]), self.gap(2, rz, p[2]));
            let left = radius * radius - gap_y * gap_y - gap_z * gap_z;
            if left <= 0.0 {
                continue;
            }
            let half = left.sqrt();
            let row = (rz * dy + ry) * dx;
            let (lo, hi) = (
                self.axis_cell(0, p[0] - half),
                self.axis_cell(0, p[0] + half),
            );
            runs[count] = self.starts[row + lo] as usize..self.starts[row + hi + 1] as usize;
            count += 1;
        }
        (runs, count)
    }

    /// The distance along `axis` from `v` to the slab of cells with coordinate `at`.
    #[inline]
    fn gap(&self, axis: usize, at: usize, v: f32) -> f32 {
        let lo = self.origin[axis] + at as f32 * self.cell;
        let hi = lo + self.cell;
        (lo - v).max(v - hi).max(0.0)
    }

    /// The cell coordinate of `v` along `axis`, clamped into the grid.
    #[inline]
    fn axis_cell(&self, axis: usize, v: f32) -> usize {
        let at = ((v - self.origin[axis]) * self.inv_cell).max(0.0) as usize;
        at.min(self.dims[axis] - 1)
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
        if !(0..3).all(|a| (hi[a] - lo[a]).is_finite()) {
            (lo, hi) = ([0.0; 3], [0.0; 3]);
        }

        self.origin = lo;
        self.cell = radius / REACH as f32;
        loop {
            // Each axis is capped first, so that the product cannot overflow.
            self.dims = std::array::from_fn(|a| {
                (((hi[a] - lo[a]) / self.cell) as usize).min(MAX_CELLS) + 1
            });
            if self.dims.iter().product::<usize>() <= MAX_CELLS {
                break;
            }
            self.cell *= 2.0;
        }
        self.inv_cell = 1.0 / self.cell;
    }

    /// The cell index of `p`, clamped into the grid.
    fn cell_index(&self, p: [f32; 3]) -> usize {
        let c: [usize; 3] = std::array::from_fn(|a| self.axis_cell(a, p[a]));
        (c[2] * self.dims[1] + c[1]) * self.dims[0] + c[0]
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

    fn cloud(n: usize, seed: u32) -> Vec<f32> {
        let mut rng = Mulberry32::new(seed);
        (0..3 * n)
            .map(|k| rng.range(-30.0, 30.0) / if k % 3 == 2 { 4.0 } else { 1.0 })
            .collect()
    }

    #[test]
    fn every_close_pair_is_visited_exactly_once() {
        let positions = cloud(300, 4);
        let mut grid = Grid::new();
        grid.build(&positions, 0..300, 7.0, |_| 0);

        let mut seen = Vec::new();
        grid.for_each_neighbourhood(7.0, |a, near| {
            for (b, _, _) in near {
                let (i, j) = (a.index as u32, b.index as u32);
                seen.push((i.min(j), i.max(j)));
            }
        });
        seen.sort_unstable();

        let mut brute = Vec::new();
        for i in 0..300 {
            for j in i + 1..300 {
                let (p, q) = (point(&positions, i), point(&positions, j));
                let d = [q[0] - p[0], q[1] - p[1], q[2] - p[2]];
                if d[0] * d[0] + d[1] * d[1] + d[2] * d[2] < 49.0 {
                    brute.push((i as u32, j as u32));
                }
            }
        }
        assert_eq!(seen, brute);
    }

    #[test]
    fn non_finite_positions_do_not_break_the_search() {
        let positions = vec![
            f32::NAN,
            0.0,
            0.0,
            f32::INFINITY,
            1.0,
            0.0,
            2.0,
            5.0,
            f32::NAN,
        ];
        let spread = vec![-3.0e38, 0.0, 0.0, 3.0e38, 0.0, 0.0];
        Grid::new().build(&spread, 0..2, 5.0, |_| 0);
        let mut grid = Grid::new();
        grid.build(&positions, 0..3, 5.0, |_| 0);
        let mut count = 0;
        grid.for_each_neighbourhood(5.0, |_, near| count += near.count());
        assert!(count <= 3);
    }

    #[test]
    fn grid_covers_only_the_given_range() {
        let positions = vec![0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 2.0, 0.0, 0.0];
        let mut grid = Grid::new();
        grid.build(&positions, 1..3, 5.0, |i| i as u8);
        assert_eq!(grid.xs.len(), 2);
        let mut pairs = Vec::new();
        grid.for_each_neighbourhood(5.0, |a, near| {
            pairs.extend(near.map(|(b, _, _)| (a.index.min(b.index), a.group)));
        });
        assert_eq!(pairs.len(), 1);
        assert_eq!(pairs[0].0, 1);
    }
}
