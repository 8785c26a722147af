//! The flocking kernel behind `calculateBehavior`: separation, alignment and cohesion among
//! the particles of the same role group.
//!
//! The kernel visits each pair of particles within [`PERCEPTION`] once through the spatial
//! grid, keeps only pairs of the same role group, and adds what each sees of the other to
//! both. Then, for every particle, the three classic steering urges are formed from what it
//! saw: each desired velocity is set to [`MAX_SPEED`], the steering is the desired
//! velocity minus the current one, capped at [`MAX_FORCE`], and the three are weighted
//! 1.5 / 1.0 / 1.0. Steering is a change of velocity per frame, as in the original; the kernel
//! adds it, divided by the time step, to the acceleration buffer the forces were written to.

use crate::grid::{point, Entry, Grid};
use crate::physics::build_grid;
use crate::physics::{add, length, scale, sub, PhysicsParams, DT, MAX_SPEED};

/// How far a particle sees its group mates.
pub const PERCEPTION: f32 = 10.0;
/// The largest steering (change of velocity in one frame) from one urge.
pub const MAX_FORCE: f32 = 0.1;
/// Weight of keeping apart from close group mates.
pub const SEPARATION_WEIGHT: f32 = 1.5;
/// Weight of matching the group mates' heading.
pub const ALIGNMENT_WEIGHT: f32 = 1.0;
/// Weight of moving towards the group mates' centre.
pub const COHESION_WEIGHT: f32 = 1.0;

/// What each particle gathers from its group mates in sight, ten numbers a particle: the
/// push away (3), the summed velocities (3), the summed positions (3) and the count.
pub const SIGHT: usize = 10;

/// Adds each particle's flocking steering (over [`DT`]) to `accelerations`. `sight` is
/// scratch space, resized as needed.
pub fn calculate_behaviour(
    grid: &mut Grid,
    sight: &mut Vec<f32>,
    positions: &[f32],
    velocities: &[f32],
    params: &PhysicsParams,
    accelerations: &mut [f32],
) {
    build_grid(grid, positions, params);
    behaviour_on_grid(grid, sight, positions, velocities, params, accelerations);
}

/// [`calculate_behaviour`] on a grid already built by [`build_grid`] from `positions`.
pub fn behaviour_on_grid(
    grid: &mut Grid,
    sight: &mut Vec<f32>,
    positions: &[f32],
    velocities: &[f32],
    params: &PhysicsParams,
    accelerations: &mut [f32],
) {
    clear_sight(sight, params.particles());

    // Each pair of group mates in sight, once, seen from both sides.
    grid.for_each_neighbourhood(PERCEPTION, |a, near| {
        let mut own = [0.0; SIGHT];
        for (b, d, d2) in near {
            add_pair_sight(&mut own, sight, positions, velocities, a, b, d, d2);
        }
        add_sight(sight, a.index, &own);
    });
    finish_behaviour(sight, positions, velocities, accelerations);
}

/// What one particle sees, gathered locally before it is added to the shared sight.
pub type OwnSight = [f32; SIGHT];

/// Adds what particles `a` and `b` (`d` apart, `d2` its squared length) see of each other:
/// `a`'s to `own`, `b`'s to its entry of `sight`; nothing (zeros) unless they belong to the
/// same group and are within [`PERCEPTION`]. Branch-free, as group and reach are
/// unpredictable from one pair to the next.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn add_pair_sight(
    own: &mut OwnSight,
    sight: &mut [f32],
    positions: &[f32],
    velocities: &[f32],
    a: Entry,
    b: Entry,
    d: [f32; 3],
    d2: f32,
) {
    const PERCEPTION2: f32 = PERCEPTION * PERCEPTION;
    let seen = if a.group == b.group && d2 < PERCEPTION2 {
        1.0
    } else {
        0.0
    };
    // `1 / d2` as the square of `1 / sqrt(d2)`: the force kernel computes the same
    // reciprocal for the same pair, so where both run together it is computed once.
    let inv = if d2 > 0.0 { 1.0 / d2.sqrt() } else { 0.0 };
    let push = seen * (inv * inv);
    let (va, vb) = (point(velocities, a.index), point(velocities, b.index));
    let (pa, pb) = (point(positions, a.index), point(positions, b.index));
    see(own, scale(d, -push), scale(vb, seen), scale(pb, seen), seen);
    let theirs = &mut sight[SIGHT * b.index..SIGHT * (b.index + 1)];
    see(
        theirs,
        scale(d, push),
        scale(va, seen),
        scale(pa, seen),
        seen,
    );
}

/// Adds a particle's own sight to its entry of `sight`.
#[inline(always)]
pub fn add_sight(sight: &mut [f32], i: usize, own: &OwnSight) {
    for (total, part) in sight[SIGHT * i..SIGHT * (i + 1)].iter_mut().zip(own) {
        *total += part;
    }
}

/// Clears `sight` for `particles` particles.
pub fn clear_sight(sight: &mut Vec<f32>, particles: usize) {
    sight.clear();
    sight.resize(SIGHT * particles, 0.0);
}

/// Adds each particle's steering, from its sight, over [`DT`] to `accelerations`.
pub fn finish_behaviour(
    sight: &[f32],
    positions: &[f32],
    velocities: &[f32],
    accelerations: &mut [f32],
) {
    for (i, seen) in sight.chunks_exact(SIGHT).enumerate() {
        let steer = steering(seen, point(positions, i), point(velocities, i));
        for k in 0..3 {
            accelerations[3 * i + k] += steer[k] / DT;
        }
    }
}

/// Adds one group mate (its push away, velocity and position, and `count`: one, or zero
/// for a particle not seen) to a sight `s`.
#[inline(always)]
fn see(s: &mut [f32], away: [f32; 3], velocity: [f32; 3], position: [f32; 3], count: f32) {
    for k in 0..3 {
        s[k] += away[k];
        s[3 + k] += velocity[k];
        s[6 + k] += position[k];
    }
    s[9] += count;
}

/// The weighted steering of a particle at `p` moving at `v` from what it sees.
fn steering(sight: &[f32], p: [f32; 3], v: [f32; 3]) -> [f32; 3] {
    let count = sight[9];
    if count == 0.0 {
        return [0.0; 3];
    }
    let part = |at: usize| [sight[at], sight[at + 1], sight[at + 2]];

    let inv = 1.0 / count;
    let separation = steer_towards(part(0), v);
    let alignment = steer_towards(scale(part(3), inv), v);
    let cohesion = steer_towards(sub(scale(part(6), inv), p), v);
    add(
        add(
            scale(separation, SEPARATION_WEIGHT),
            scale(alignment, ALIGNMENT_WEIGHT),
        ),
        scale(cohesion, COHESION_WEIGHT),
    )
}

/// Reynolds steering: the desired direction at full speed, minus the current velocity, capped
/// at [`MAX_FORCE`]. No steering when there is no direction.
fn steer_towards(direction: [f32; 3], velocity: [f32; 3]) -> [f32; 3] {
    let len = length(direction);
    if len == 0.0 {
        return [0.0; 3];
    }
    let steer = sub(scale(direction, MAX_SPEED / len), velocity);
    let s = length(steer);
    if s > MAX_FORCE {
        scale(steer, MAX_FORCE / s)
    } else {
        steer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::creature::ROLES;
    use crate::physics::{Falloff, FieldKind, ForceField, FIELD_COUNT};

    fn params(groups: [u32; ROLES + 1]) -> PhysicsParams {
        let none = ForceField {
            kind: FieldKind::Gravity,
            falloff: Falloff::Linear,
            centre: [0.0; 3],
            direction: [0.0; 3],
            strength: 0.0,
            radius: 1.0,
        };
        PhysicsParams::new(groups, [none; FIELD_COUNT])
    }

    #[test]
    fn lone_particle_gets_no_steering() {
        let mut acc = [0.0; 3];
        let p = params([0, 1, 1, 1, 1, 1]);
        calculate_behaviour(
            &mut Grid::new(),
            &mut Vec::new(),
            &[0.0; 3],
            &[1.0, 0.0, 0.0],
            &p,
            &mut acc,
        );
        assert_eq!(acc, [0.0; 3]);
    }

    #[test]
    fn steering_never_exceeds_weighted_max_force() {
        let positions = [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 2.0, 0.0];
        let velocities = [5.0, 0.0, 0.0, -5.0, 0.0, 0.0, 0.0, 5.0, 0.0];
        let mut acc = [0.0; 9];
        let p = params([0, 3, 3, 3, 3, 3]);
        calculate_behaviour(
            &mut Grid::new(),
            &mut Vec::new(),
            &positions,
            &velocities,
            &p,
            &mut acc,
        );
        let bound = MAX_FORCE * (SEPARATION_WEIGHT + ALIGNMENT_WEIGHT + COHESION_WEIGHT) / DT;
        for i in 0..3 {
            assert!(length(point(&acc, i)) <= bound * 1.0001);
            assert!(length(point(&acc, i)) > 0.0);
        }
    }

    #[test]
    fn particles_of_other_groups_are_ignored() {
        let positions = [0.0, 0.0, 0.0, 1.0, 0.0, 0.0];
        let mut acc = [0.0; 6];
        let p = params([0, 1, 2, 2, 2, 2]);
        calculate_behaviour(
            &mut Grid::new(),
            &mut Vec::new(),
            &positions,
            &[0.0; 6],
            &p,
            &mut acc,
        );
        assert_eq!(acc, [0.0; 6]);
    }

    #[test]
    fn close_group_mates_steer_apart() {
        let positions = [0.0, 0.0, 0.0, 0.5, 0.0, 0.0];
        let mut acc = [0.0; 6];
        let p = params([0, 2, 2, 2, 2, 2]);
        calculate_behaviour(
            &mut Grid::new(),
            &mut Vec::new(),
            &positions,
            &[0.0; 6],
            &p,
            &mut acc,
        );
        assert!(acc[0] < 0.0 && acc[3] > 0.0, "{acc:?}");
    }
}
