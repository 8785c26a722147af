//! The flocking kernel behind `calculateBehavior`: separation, alignment and cohesion among
//! the particles of the same role group.
//!
//! Each group gets its own spatial grid, so a particle only ever looks at its own kind. For
//! every particle the three classic steering urges are formed from the group neighbours within
//! [`PERCEPTION`]: each desired velocity is set to [`MAX_SPEED`], the steering is the desired
//! velocity minus the current one, capped at [`MAX_FORCE`], and the three are weighted
//! 1.5 / 1.0 / 1.0. Steering is a change of velocity per frame, as in the original; the kernel
//! adds it, divided by the time step, to the acceleration buffer the forces were written to.

use crate::creature::ROLES;
use crate::grid::{point, Grid};
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

/// What a particle gathers from its group mates in sight.
#[derive(Default)]
struct Neighbourhood {
    away: [f32; 3],
    heading: [f32; 3],
    centre: [f32; 3],
    count: u32,
}

/// Adds each particle's flocking steering (over [`DT`]) to `accelerations`.
pub fn calculate_behaviour(
    grid: &mut Grid,
    positions: &[f32],
    velocities: &[f32],
    params: &PhysicsParams,
    accelerations: &mut [f32],
) {
    for role in 0..ROLES {
        let group = params.groups[role] as usize..params.groups[role + 1] as usize;
        grid.build(positions, group.clone(), PERCEPTION, |i| i as u32);
        for i in group {
            let steer = steering(grid, positions, velocities, i);
            for k in 0..3 {
                accelerations[3 * i + k] += steer[k] / DT;
            }
        }
    }
}

/// The weighted steering of particle `i`.
fn steering(grid: &Grid, positions: &[f32], velocities: &[f32], i: usize) -> [f32; 3] {
    let p = point(positions, i);
    let v = point(velocities, i);
    let seen = look_around(grid, velocities, p, i);
    if seen.count == 0 {
        return [0.0; 3];
    }

    let inv = 1.0 / seen.count as f32;
    let separation = steer_towards(seen.away, v);
    let alignment = steer_towards(scale(seen.heading, inv), v);
    let cohesion = steer_towards(sub(scale(seen.centre, inv), p), v);
    add(
        add(
            scale(separation, SEPARATION_WEIGHT),
            scale(alignment, ALIGNMENT_WEIGHT),
        ),
        scale(cohesion, COHESION_WEIGHT),
    )
}

/// Sums, over the group mates within [`PERCEPTION`], the push away (stronger when closer),
/// their velocities and their positions.
#[inline]
fn look_around(grid: &Grid, velocities: &[f32], p: [f32; 3], i: usize) -> Neighbourhood {
    const PERCEPTION2: f32 = PERCEPTION * PERCEPTION;
    let mut seen = Neighbourhood::default();
    grid.for_each_near(p, |s| {
        let d = [p[0] - s.x, p[1] - s.y, p[2] - s.z];
        let d2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
        if d2 >= PERCEPTION2 || s.tag as usize == i {
            return;
        }
        if d2 > 0.0 {
            seen.away = add(seen.away, scale(d, 1.0 / d2));
        }
        seen.heading = add(seen.heading, point(velocities, s.tag as usize));
        seen.centre = add(seen.centre, [s.x, s.y, s.z]);
        seen.count += 1;
    });
    seen
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
        calculate_behaviour(&mut Grid::new(), &[0.0; 3], &[1.0, 0.0, 0.0], &p, &mut acc);
        assert_eq!(acc, [0.0; 3]);
    }

    #[test]
    fn steering_never_exceeds_weighted_max_force() {
        let positions = [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 2.0, 0.0];
        let velocities = [5.0, 0.0, 0.0, -5.0, 0.0, 0.0, 0.0, 5.0, 0.0];
        let mut acc = [0.0; 9];
        let p = params([0, 3, 3, 3, 3, 3]);
        calculate_behaviour(&mut Grid::new(), &positions, &velocities, &p, &mut acc);
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
        calculate_behaviour(&mut Grid::new(), &positions, &[0.0; 6], &p, &mut acc);
        assert_eq!(acc, [0.0; 6]);
    }

    #[test]
    fn close_group_mates_steer_apart() {
        let positions = [0.0, 0.0, 0.0, 0.5, 0.0, 0.0];
        let mut acc = [0.0; 6];
        let p = params([0, 2, 2, 2, 2, 2]);
        calculate_behaviour(&mut Grid::new(), &positions, &[0.0; 6], &p, &mut acc);
        assert!(acc[0] < 0.0 && acc[3] > 0.0, "{acc:?}");
    }
}
