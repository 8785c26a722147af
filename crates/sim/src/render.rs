//! The render kernels behind `prepareRender` and `calculateLOD`: what a renderer needs per
//! particle, in flat buffers.
//!
//! `prepareRender` places the particles in the world (the creature's own frame shifted by its
//! offset in the scene) and gives each a scale, a colour and an opacity: the colour and size
//! come from the creature's palette for the particle's role, speed makes a particle larger and
//! whiter, and depth in the dish makes it fainter. `calculateLOD` gives each particle a level
//! of detail from its distance to the camera.

use crate::creature::ROLES;
use crate::grid::point;
use crate::physics::{length, PhysicsParams, DISH_HALF_DEPTH, MAX_SPEED};

/// Camera distance bands and the detail within each; beyond the last band nothing is drawn.
pub const LOD_BANDS: [(f32, f32); 4] = [(10.0, 1.0), (50.0, 0.5), (100.0, 0.2), (200.0, 0.1)];

/// Per-particle output of `prepareRender`, borrowed from the caller's buffers.
pub struct RenderOut<'a> {
    /// World positions, `[x, y, z, ...]`.
    pub positions: &'a mut [f32],
    /// One scale per particle.
    pub scales: &'a mut [f32],
    /// `[r, g, b, ...]` in `[0, 1]`.
    pub colours: &'a mut [f32],
    /// One opacity per particle, in `[0, 1]`.
    pub opacities: &'a mut [f32],
}

/// Fills `out` for a creature whose particles are at `positions` in its own frame, moving at
/// `velocities`, placed at `offset` in the world. `palette` holds per role red, green, blue,
/// size.
pub fn prepare_render(
    positions: &[f32],
    velocities: &[f32],
    params: &PhysicsParams,
    palette: &[f32],
    offset: [f32; 3],
    out: RenderOut<'_>,
) {
    for role in 0..ROLES {
        let [r, g, b, size] = [0, 1, 2, 3].map(|k| palette[role * 4 + k]);
        for i in params.groups[role] as usize..params.groups[role + 1] as usize {
            let p = point(positions, i);
            let speed = (length(point(velocities, i)) / MAX_SPEED).min(1.0);
            let depth = 0.5 + 0.5 * (p[2] / DISH_HALF_DEPTH).clamp(-1.0, 1.0);
            let glow = 0.3 * speed;

            for k in 0..3 {
                out.positions[3 * i + k] = p[k] + offset[k];
            }
            out.scales[i] = size * (0.8 + 0.4 * speed);
            out.colours[3 * i] = r + (1.0 - r) * glow;
            out.colours[3 * i + 1] = g + (1.0 - g) * glow;
            out.colours[3 * i + 2] = b + (1.0 - b) * glow;
            out.opacities[i] = 0.5 + 0.5 * depth;
        }
    }
}

/// The level of detail at `distance` from the camera.
pub fn level_of_detail(distance: f32) -> f32 {
    LOD_BANDS
        .iter()
        .find(|(edge, _)| distance <= *edge)
        .map_or(0.0, |&(_, detail)| detail)
}

/// Writes into `lod` each particle's level of detail, from world `positions` and the
/// `camera` position.
pub fn calculate_lod(positions: &[f32], camera: [f32; 3], lod: &mut [f32]) {
    for (i, detail) in lod.iter_mut().enumerate() {
        let p = point(positions, i);
        let d = [p[0] - camera[0], p[1] - camera[1], p[2] - camera[2]];
        *detail = level_of_detail(length(d));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::creature::Creature;

    #[test]
    fn detail_follows_camera_distance_bands() {
        assert_eq!(level_of_detail(0.0), 1.0);
        assert_eq!(level_of_detail(10.0), 1.0);
        assert_eq!(level_of_detail(30.0), 0.5);
        assert_eq!(level_of_detail(75.0), 0.2);
        assert_eq!(level_of_detail(150.0), 0.1);
        assert_eq!(level_of_detail(250.0), 0.0);
    }

    #[test]
    fn lod_is_computed_per_particle_from_the_camera() {
        let positions = [0.0, 0.0, 5.0, 0.0, 0.0, 60.0];
        let mut lod = [9.0; 2];
        calculate_lod(&positions, [0.0; 3], &mut lod);
        assert_eq!(lod, [1.0, 0.2]);
    }

    #[test]
    fn render_places_particles_at_offset_with_role_colours() {
        let c = Creature::from_seed(0, 11, 0);
        let n = c.masses.len();
        let (mut pos, mut scales, mut colours, mut opacities) = (
            vec![0.0; 3 * n],
            vec![0.0; n],
            vec![0.0; 3 * n],
            vec![0.0; n],
        );
        let still = vec![0.0; 3 * n];
        let out = RenderOut {
            positions: &mut pos,
            scales: &mut scales,
            colours: &mut colours,
            opacities: &mut opacities,
        };
        prepare_render(
            &c.positions,
            &still,
            &c.params,
            &c.palette,
            [100.0, 0.0, 0.0],
            out,
        );

        assert_eq!(pos[0], c.positions[0] + 100.0);
        assert_eq!(colours[0..3], c.palette[0..3]);
        assert!(scales.iter().all(|s| *s > 0.0));
        assert!(opacities.iter().all(|o| (0.0..=1.0).contains(o)));
    }
}
