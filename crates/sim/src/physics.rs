//! The physics kernels behind `calculateForces`, `updatePositions` and `applyConstraints`.
//!
//! Forces: every particle feels the particles within [`CUTOFF`] (each close pair is met once
//! through the spatial grid and acts on both of its particles): a short-range push below [`R_MIN`] keeps particles apart, and beyond it the force
//! matrix entry for the two roles draws them together or apart, peaking halfway to the cut-off.
//! The acting particle's role modifier scales the sum, its mass divides it, and the force
//! fields add to it. Integration: position Verlet with damping, carried in velocity form (the
//! velocity is the last displacement over the time step), with the speed capped. Constraints:
//! bonds pulled to their rest length, then every particle kept inside the creature's dish; each
//! correction also corrects the velocity, as Verlet implies.
//!
//! All kernels read and write flat `f32` buffers (`[x, y, z, ...]`) and use only basic
//! arithmetic and square roots, so they give the same bits on every machine.

use serde::{Deserialize, Serialize};

use crate::behaviour::PERCEPTION;
use crate::creature::ROLES;
use crate::grid::{point, Entry, Grid};

/// The time step of one frame, in seconds.
pub const DT: f32 = 0.016;
/// The share of velocity kept from one frame to the next (viscous damping).
pub const DAMPING: f32 = 0.98;
/// The fastest a particle moves, in units a second.
pub const MAX_SPEED: f32 = 10.0;
/// The distance beyond which particles do not interact.
pub const CUTOFF: f32 = 9.0;
/// Below this distance particles push each other apart, whatever their roles.
pub const R_MIN: f32 = 3.6;
/// How much harder than the strongest attraction particles push apart when too close.
pub const REPULSION: f32 = 20.0;
/// The strongest push between two particles, reached when they nearly touch.
pub const MAX_REPULSION: f32 = 100.0;
/// Converts force-matrix units into accelerations.
pub const FORCE_GAIN: f32 = 10.0;
/// The radius of the dish a creature lives in.
pub const DISH_RADIUS: f32 = 80.0;
/// How far from the dish's mid-plane a particle may go.
pub const DISH_HALF_DEPTH: f32 = 1.0;
/// How far a bond moves its ends towards its rest length in one pass.
pub const BOND_STIFFNESS: f32 = 0.5;
/// The force fields of one creature.
pub const FIELD_COUNT: usize = 3;

/// What a force field does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FieldKind {
    /// A uniform pull along `direction`, ignoring the falloff.
    Gravity,
    /// A pull towards `centre`.
    Attraction,
    /// A push away from `centre`.
    Repulsion,
    /// A swirl around the axis `direction` through `centre`.
    Vortex,
    /// A push along `direction`, weakening away from `centre`.
    Wind,
}

/// How a field weakens with the distance `d` from its centre, up to its radius `r`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Falloff {
    /// `1 - d/r`
    Linear,
    /// `(1 - d/r)^2`
    Quadratic,
    /// `e^(-4 d/r)`, computed by repeated squaring
    Exponential,
}

impl Falloff {
    /// The field's share of its strength at `distance`; zero at and beyond `radius`.
    pub fn factor(self, distance: f32, radius: f32) -> f32 {
        if distance >= radius {
            return 0.0;
        }
        let t = distance / radius;
        match self {
            Falloff::Linear => 1.0 - t,
            Falloff::Quadratic => (1.0 - t) * (1.0 - t),
            Falloff::Exponential => exp_neg(4.0 * t),
        }
    }
}

/// `e^-x` for `x` in `[0, 64]` as `(1 - x/256)^256`: eight squarings, no maths library.
fn exp_neg(x: f32) -> f32 {
    let mut v = (1.0 - x / 256.0).max(0.0);
    for _ in 0..8 {
        v *= v;
    }
    v
}

/// A force field in a creature's own frame.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForceField {
    pub kind: FieldKind,
    pub falloff: Falloff,
    pub centre: [f32; 3],
    /// A unit vector: the pull of gravity and wind, the axis of a vortex.
    pub direction: [f32; 3],
    pub strength: f32,
    pub radius: f32,
}

impl ForceField {
    /// The acceleration this field gives a particle at `p`.
    pub fn acceleration(&self, p: [f32; 3]) -> [f32; 3] {
        let d = sub(p, self.centre);
        let distance = length(d);
        let k = self.strength * self.falloff.factor(distance, self.radius);
        let unit = if distance > 0.0 {
            scale(d, 1.0 / distance)
        } else {
            [0.0; 3]
        };
        match self.kind {
            FieldKind::Gravity => scale(self.direction, self.strength),
            FieldKind::Attraction => scale(unit, -k),
            FieldKind::Repulsion => scale(unit, k),
            FieldKind::Vortex => scale(cross(self.direction, unit), k),
            FieldKind::Wind => scale(self.direction, k),
        }
    }
}

/// The fixed physical traits of a creature that travel with every task by value.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhysicsParams {
    /// Where each role group starts in the buffers, then the end: group `r` is
    /// `groups[r]..groups[r + 1]`.
    pub groups: [u32; ROLES + 1],
    pub fields: [ForceField; FIELD_COUNT],
}

impl PhysicsParams {
    pub fn new(groups: [u32; ROLES + 1], fields: [ForceField; FIELD_COUNT]) -> Self {
        Self { groups, fields }
    }

    /// The number of particles.
    pub fn particles(&self) -> usize {
        self.groups[ROLES] as usize
    }

    /// The role group particle `i` belongs to.
    pub fn role_of(&self, i: usize) -> usize {
        (1..ROLES)
            .take_while(|&r| self.groups[r] as usize <= i)
            .count()
    }
}

/// The radius the kernels build their grid for: the larger of the force cut-off and the
/// flocking perception, so that one grid serves both and every stage sees pairs in one order.
pub const GRID_RADIUS: f32 = if CUTOFF > PERCEPTION {
    CUTOFF
} else {
    PERCEPTION
};

/// Writes into `accelerations` the acceleration of every particle from its neighbours and
/// the force fields. `matrix` holds the 5 x 5 force matrix followed by the 5 role modifiers.
pub fn calculate_forces(
    grid: &mut Grid,
    positions: &[f32],
    masses: &[f32],
    matrix: &[f32],
    params: &PhysicsParams,
    accelerations: &mut [f32],
) {
    build_grid(grid, positions, params);
    forces_on_grid(grid, positions, masses, matrix, params, accelerations);
}

/// Sorts a creature's particles into `grid` for the force and flocking kernels.
pub fn build_grid(grid: &mut Grid, positions: &[f32], params: &PhysicsParams) {
    grid.build(positions, 0..params.particles(), GRID_RADIUS, |i| {
        params.role_of(i) as u8
    });
}

/// [`calculate_forces`] on a grid already built by [`build_grid`] from `positions`.
pub fn forces_on_grid(
    grid: &mut Grid,
    positions: &[f32],
    masses: &[f32],
    matrix: &[f32],
    params: &PhysicsParams,
    accelerations: &mut [f32],
) {
    // Pair forces, each pair computed once and applied to both particles.
    accelerations.fill(0.0);
    grid.for_each_neighbourhood(CUTOFF, |a, near| {
        let mut own = [0.0; 3];
        for (b, d, d2) in near {
            add_pair_force(matrix, &mut own, accelerations, a, b, d, d2);
        }
        add_to(accelerations, a.index, own);
    });
    finish_forces(positions, masses, matrix, params, accelerations);
}

/// Adds the forces between particles `a` and `b` (`d` apart, `d2` its squared length):
/// `a`'s share to `own`, `b`'s to its entry of `sums`; nothing (zeros) beyond [`CUTOFF`].
/// Branch-free, as whether a pair is in reach is unpredictable.
#[inline(always)]
pub fn add_pair_force(
    matrix: &[f32],
    own: &mut [f32; 3],
    sums: &mut [f32],
    a: Entry,
    b: Entry,
    d: [f32; 3],
    d2: f32,
) {
    const CUTOFF2: f32 = CUTOFF * CUTOFF;
    let (ab, ba) = (
        matrix[a.group * ROLES + b.group],
        matrix[b.group * ROLES + a.group],
    );
    let (f_ab, f_ba) = pair_forces(d2, ab, ba);
    let reach = if d2 < CUTOFF2 { 1.0 } else { 0.0 };
    for k in 0..3 {
        own[k] += d[k] * (f_ab * reach);
    }
    add_to(sums, b.index, scale(d, -(f_ba * reach)));
}

/// Adds `v` to particle `i` of a flat `[x, y, z, ...]` buffer.
#[inline(always)]
pub fn add_to(buffer: &mut [f32], i: usize, v: [f32; 3]) {
    let at = &mut buffer[3 * i..3 * i + 3];
    for k in 0..3 {
        at[k] += v[k];
    }
}

/// Turns summed pair forces into accelerations: the role modifier, the mass, then the force
/// fields.
pub fn finish_forces(
    positions: &[f32],
    masses: &[f32],
    matrix: &[f32],
    params: &PhysicsParams,
    accelerations: &mut [f32],
) {
    for role in 0..ROLES {
        let gain = FORCE_GAIN * matrix[ROLES * ROLES + role];
        for i in params.groups[role] as usize..params.groups[role + 1] as usize {
            let p = point(positions, i);
            let mut a = scale(point(accelerations, i), gain / masses[i]);
            for field in &params.fields {
                a = add(a, field.acceleration(p));
            }
            accelerations[3 * i..3 * i + 3].copy_from_slice(&a);
        }
    }
}

/// The forces between two particles `r = sqrt(d2)` apart, over `r` (so that the offset
/// times it is the force vector): on the first towards the second with matrix entry `ab`,
/// and on the second towards the first with `ba`. Below [`R_MIN`] both push apart alike;
/// coincident particles feel nothing. Branch-free.
#[inline(always)]
fn pair_forces(d2: f32, ab: f32, ba: f32) -> (f32, f32) {
    const INV_SPAN: f32 = 1.0 / (CUTOFF - R_MIN);
    let r = d2.sqrt();
    let inv = if d2 > 0.0 { 1.0 / r } else { 0.0 };
    let repel = (REPULSION * (1.0 - R_MIN * inv)).max(-MAX_REPULSION) * inv;
    let shape = (1.0 - (2.0 * r - CUTOFF - R_MIN).abs() * INV_SPAN) * inv;
    let close = r < R_MIN;
    (
        if close { repel } else { ab * shape },
        if close { repel } else { ba * shape },
    )
}

/// One integration step: velocities damped, accelerated and capped at [`MAX_SPEED`], then
/// positions moved by them.
pub fn update_positions(positions: &mut [f32], velocities: &mut [f32], accelerations: &[f32]) {
    const MAX2: f32 = MAX_SPEED * MAX_SPEED;
    let particles = positions
        .chunks_exact_mut(3)
        .zip(velocities.chunks_exact_mut(3))
        .zip(accelerations.chunks_exact(3));
    for ((x, v), a) in particles {
        let mut w = [0.0; 3];
        for k in 0..3 {
            w[k] = v[k] * DAMPING + a[k] * DT;
        }
        let s2 = w[0] * w[0] + w[1] * w[1] + w[2] * w[2];
        if s2 > MAX2 {
            w = scale(w, MAX_SPEED / s2.sqrt());
        }
        v.copy_from_slice(&w);
        for (x, w) in x.iter_mut().zip(w) {
            *x += w * DT;
        }
    }
}

/// Pulls each bond (a pair of particle indices in `bonds`, flat) towards its rest length,
/// weighted by inverse mass, then keeps every particle inside the dish. Every move of a
/// position adds the same move over [`DT`] to the velocity.
pub fn apply_constraints(
    positions: &mut [f32],
    velocities: &mut [f32],
    masses: &[f32],
    bonds: &[u32],
    rest_lengths: &[f32],
) {
    for (pair, &rest) in bonds.chunks_exact(2).zip(rest_lengths) {
        bond(
            positions,
            velocities,
            masses,
            pair[0] as usize,
            pair[1] as usize,
            rest,
        );
    }
    for i in 0..masses.len() {
        keep_in_dish(positions, velocities, i);
    }
}

/// Moves particles `a` and `b` towards distance `rest`.
fn bond(x: &mut [f32], v: &mut [f32], masses: &[f32], a: usize, b: usize, rest: f32) {
    let d = sub(point(x, b), point(x, a));
    let len = length(d);
    if len == 0.0 || a == b {
        return;
    }
    let (wa, wb) = (1.0 / masses[a], 1.0 / masses[b]);
    let correction = scale(d, BOND_STIFFNESS * (len - rest) / (len * (wa + wb)));
    nudge(x, v, a, scale(correction, wa));
    nudge(x, v, b, scale(correction, -wb));
}

/// Projects particle `i` back into the dish if it left.
fn keep_in_dish(x: &mut [f32], v: &mut [f32], i: usize) {
    let p = point(x, i);
    let mut q = p;
    let r2 = p[0] * p[0] + p[1] * p[1];
    if r2 > DISH_RADIUS * DISH_RADIUS {
        let k = DISH_RADIUS / r2.sqrt();
        q[0] *= k;
        q[1] *= k;
    }
    q[2] = q[2].clamp(-DISH_HALF_DEPTH, DISH_HALF_DEPTH);
    if q != p {
        nudge(x, v, i, sub(q, p));
    }
}

/// Moves particle `i` by `delta`, and its velocity by `delta / DT`.
fn nudge(x: &mut [f32], v: &mut [f32], i: usize, delta: [f32; 3]) {
    for k in 0..3 {
        x[3 * i + k] += delta[k];
        v[3 * i + k] += delta[k] / DT;
    }
}

#[inline]
pub(crate) fn add(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

#[inline]
pub(crate) fn sub(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

#[inline]
pub(crate) fn scale(a: [f32; 3], k: f32) -> [f32; 3] {
    [a[0] * k, a[1] * k, a[2] * k]
}

#[inline]
pub(crate) fn length(a: [f32; 3]) -> f32 {
    (a[0] * a[0] + a[1] * a[1] + a[2] * a[2]).sqrt()
}

fn cross(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(kind: FieldKind, falloff: Falloff) -> ForceField {
        ForceField {
            kind,
            falloff,
            centre: [0.0; 3],
            direction: [0.0, 0.0, 1.0],
            strength: 2.0,
            radius: 10.0,
        }
    }

    fn two_particles(matrix_entry: f32, distance: f32) -> [f32; 6] {
        let positions = [0.0, 0.0, 0.0, distance, 0.0, 0.0];
        let far = [field(FieldKind::Attraction, Falloff::Linear); FIELD_COUNT].map(|mut f| {
            f.strength = 0.0;
            f
        });
        let params = PhysicsParams::new([0, 2, 2, 2, 2, 2], far);
        let mut matrix = [0.0; ROLES * ROLES + ROLES];
        matrix[0] = matrix_entry;
        matrix[ROLES * ROLES] = 1.0;
        let mut acc = [0.0; 6];
        calculate_forces(
            &mut Grid::new(),
            &positions,
            &[1.0, 1.0],
            &matrix,
            &params,
            &mut acc,
        );
        acc
    }

    #[test]
    fn positive_matrix_entry_attracts_within_cutoff() {
        let acc = two_particles(1.0, 5.0);
        assert!(acc[0] > 0.0 && acc[3] < 0.0, "{acc:?}");
    }

    #[test]
    fn negative_matrix_entry_repels_within_cutoff() {
        let acc = two_particles(-1.0, 5.0);
        assert!(acc[0] < 0.0 && acc[3] > 0.0, "{acc:?}");
    }

    #[test]
    fn close_particles_repel_whatever_the_matrix() {
        let acc = two_particles(1.0, 1.0);
        assert!(acc[0] < 0.0, "{acc:?}");
    }

    #[test]
    fn particles_beyond_cutoff_do_not_interact() {
        assert_eq!(two_particles(1.0, CUTOFF + 0.5), [0.0; 6]);
    }

    #[test]
    fn falloffs_weaken_with_distance_and_end_at_radius() {
        for falloff in [Falloff::Linear, Falloff::Quadratic, Falloff::Exponential] {
            assert_eq!(falloff.factor(0.0, 10.0), 1.0);
            assert!(falloff.factor(3.0, 10.0) > falloff.factor(6.0, 10.0));
            assert_eq!(falloff.factor(10.0, 10.0), 0.0);
        }
        assert!((Falloff::Exponential.factor(2.5, 10.0) - (-1.0f32).exp()).abs() < 0.01);
    }

    #[test]
    fn fields_push_the_way_their_kind_says() {
        let p = [3.0, 0.0, 0.0];
        assert!(field(FieldKind::Attraction, Falloff::Linear).acceleration(p)[0] < 0.0);
        assert!(field(FieldKind::Repulsion, Falloff::Quadratic).acceleration(p)[0] > 0.0);
        assert!(field(FieldKind::Vortex, Falloff::Linear).acceleration(p)[1] > 0.0);
        assert_eq!(
            field(FieldKind::Wind, Falloff::Linear).acceleration(p),
            [0.0, 0.0, 1.4]
        );
        assert_eq!(
            field(FieldKind::Gravity, Falloff::Linear).acceleration(p),
            [0.0, 0.0, 2.0]
        );
    }

    #[test]
    fn integration_damps_and_caps_speed() {
        let (mut x, mut v) = ([0.0; 3], [1.0, 0.0, 0.0]);
        update_positions(&mut x, &mut v, &[0.0; 3]);
        assert_eq!(v, [DAMPING, 0.0, 0.0]);
        assert_eq!(x, [DAMPING * DT, 0.0, 0.0]);
        update_positions(&mut x, &mut v, &[1.0e6, 0.0, 0.0]);
        assert!((length(v) - MAX_SPEED).abs() < 1e-3);
    }

    #[test]
    fn bond_pulls_ends_to_rest_length() {
        let (mut x, mut v) = ([0.0, 0.0, 0.0, 4.0, 0.0, 0.0], [0.0; 6]);
        for _ in 0..30 {
            apply_constraints(&mut x, &mut v, &[1.0, 1.0], &[0, 1], &[2.0]);
        }
        assert!((x[3] - x[0] - 2.0).abs() < 1e-4, "{x:?}");
    }

    #[test]
    fn particles_are_kept_inside_the_dish() {
        let (mut x, mut v) = ([100.0, 0.0, 9.0], [0.0; 3]);
        apply_constraints(&mut x, &mut v, &[1.0], &[], &[]);
        assert_eq!(x, [DISH_RADIUS, 0.0, DISH_HALF_DEPTH]);
        assert!(v[0] < 0.0, "the correction also slows the particle");
    }
}
