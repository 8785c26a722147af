//! A creature: what one block's nonce (and confirmations) make of 500 particles.
//!
//! Particles are dealt into five role groups and stored group by group, so each group is a
//! contiguous range of the flat buffers. The force matrix, role modifiers, masses, force fields
//! and membrane come from the physics stream, the group sizes and mutations from the traits
//! stream, the starting positions from the formation stream, colours from the visual stream
//! and starting headings from the behaviour stream (see [`crate::rng`]).
//!
//! Group sizes: every role first gets [`BASE_GROUP`] particles and three more, so none holds
//! fewer than [`MIN_GROUP`]; the rest are dealt one at a time to a random role, skipping a role
//! that already holds [`MAX_GROUP`]. The bounds therefore hold for every nonce, not only in
//! likelihood.

use serde::{Deserialize, Serialize};

use crate::block::Block;
use crate::physics::{Falloff, FieldKind, ForceField, PhysicsParams, FIELD_COUNT};
use crate::rng::{Mulberry32, Stream};

/// Particles in a creature.
pub const PARTICLES: usize = 500;
/// Role groups in a creature.
pub const ROLES: usize = 5;
/// Particles every role gets before the rest are dealt out.
pub const BASE_GROUP: usize = 40;
/// The fewest particles a role group holds.
pub const MIN_GROUP: usize = 43;
/// The most particles a role group holds.
pub const MAX_GROUP: usize = 220;

/// A particle's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[repr(u8)]
pub enum Role {
    Core = 0,
    Control = 1,
    Movement = 2,
    Defense = 3,
    Attack = 4,
}

impl Role {
    /// All roles, in storage order.
    pub const ALL: [Role; ROLES] = [
        Role::Core,
        Role::Control,
        Role::Movement,
        Role::Defense,
        Role::Attack,
    ];

    /// How strongly this role responds to the force matrix.
    pub fn scale(self) -> f32 {
        match self {
            Role::Core => 1.5,
            Role::Control => 1.2,
            Role::Movement => 0.6,
            Role::Defense => 0.8,
            Role::Attack => 1.0,
        }
    }

    /// The role's name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Core => "core",
            Role::Control => "control",
            Role::Movement => "movement",
            Role::Defense => "defense",
            Role::Attack => "attack",
        }
    }

    /// The role's colour before a creature's own shift, as red, green, blue in `[0, 1]`.
    pub fn base_colour(self) -> [f32; 3] {
        hsv_to_rgb(self.hue(), 0.7, 1.0)
    }

    /// The role's base hue in degrees, before the creature's own shift.
    fn hue(self) -> f32 {
        match self {
            Role::Core => 42.0,
            Role::Control => 188.0,
            Role::Movement => 128.0,
            Role::Defense => 268.0,
            Role::Attack => 350.0,
        }
    }
}

/// Everything one block makes: fixed traits and the starting state of the particles.
#[derive(Clone, Debug)]
pub struct Creature {
    /// The block's height, used as the creature's label.
    pub height: u64,
    /// The block's nonce, the seed of every stream.
    pub nonce: u32,
    /// Confirmations at birth; they set the mutation chance.
    pub confirmations: u64,
    /// Force-matrix entries that mutated.
    pub mutations: u32,
    /// `matrix[a * ROLES + b]`: how role `a` is drawn to (positive) or pushed from role `b`.
    pub matrix: [f32; ROLES * ROLES],
    /// Role modifiers, the same for every creature: see [`Role::scale`].
    pub role_scales: [f32; ROLES],
    /// Group boundaries and force fields.
    pub params: PhysicsParams,
    /// One mass per particle.
    pub masses: Vec<f32>,
    /// Membrane bonds: pairs of particle indices, flat (`[a0, b0, a1, b1, ...]`), and their
    /// rest lengths.
    pub bonds: Vec<u32>,
    pub rest_lengths: Vec<f32>,
    /// Starting positions and velocities, `[x, y, z, ...]`.
    pub positions: Vec<f32>,
    pub velocities: Vec<f32>,
    /// Per role: red, green, blue in `[0, 1]`, then a size; `palette[role * 4 ..][..4]`.
    pub palette: [f32; ROLES * 4],
}

impl Creature {
    /// The creature born from `block`, with `confirmations` setting its mutations.
    pub fn from_block(block: &Block, confirmations: u64) -> Self {
        Self::from_seed(block.height, block.nonce, confirmations)
    }

    /// The creature of a nonce; `height` is only a label.
    pub fn from_seed(height: u64, nonce: u32, confirmations: u64) -> Self {
        let mut traits = Stream::Traits.generator(nonce);
        let mut physics = Stream::Physics.generator(nonce);

        let sizes = deal_groups(&mut traits);
        let groups = group_starts(&sizes);
        let mut matrix = draw_matrix(&mut physics);
        let mutations = mutate(&mut matrix, &mut traits, mutation_chance(confirmations));
        let masses = draw_masses(&mut physics, &groups);
        let fields = draw_fields(&mut physics);
        let (bonds, rest_lengths) = membrane(&groups);
        let positions = formation(&mut Stream::Formation.generator(nonce), &groups);
        let velocities = headings(&mut Stream::Behaviour.generator(nonce), &groups);
        let palette = draw_palette(&mut Stream::Visual.generator(nonce));

        Self {
            height,
            nonce,
            confirmations,
            mutations,
            matrix,
            role_scales: Role::ALL.map(Role::scale),
            params: PhysicsParams::new(groups, fields),
            masses,
            bonds,
            rest_lengths,
            positions,
            velocities,
            palette,
        }
    }

    /// The number of particles in each role group.
    pub fn group_sizes(&self) -> [usize; ROLES] {
        let g = self.params.groups;
        std::array::from_fn(|r| (g[r + 1] - g[r]) as usize)
    }

    /// The force matrix followed by the role modifiers: the 30 numbers `calculateForces` reads.
    pub fn matrix_with_scales(&self) -> Vec<f32> {
        self.matrix
            .iter()
            .chain(&self.role_scales)
            .copied()
            .collect()
    }
}

/// The mutation chance for a number of confirmations: 1, 5, 10, 25, 50 and 100 % from 10k,
/// 50k, 100k, 250k, 500k and 1M confirmations; none below 10k.
pub fn mutation_chance(confirmations: u64) -> f32 {
    const STEPS: [(u64, f32); 6] = [
        (1_000_000, 1.0),
        (500_000, 0.5),
        (250_000, 0.25),
        (100_000, 0.1),
        (50_000, 0.05),
        (10_000, 0.01),
    ];
    STEPS
        .iter()
        .find(|(at, _)| confirmations >= *at)
        .map_or(0.0, |&(_, p)| p)
}

/// Deals the particles into role groups (see the module docs for the rule).
fn deal_groups(rng: &mut Mulberry32) -> [usize; ROLES] {
    let mut sizes = [MIN_GROUP; ROLES];
    let mut left = PARTICLES - MIN_GROUP * ROLES;
    while left > 0 {
        let role = rng.below(ROLES as u32) as usize;
        if sizes[role] < MAX_GROUP {
            sizes[role] += 1;
            left -= 1;
        }
    }
    sizes
}

/// Where each group starts in the buffers, plus the end.
fn group_starts(sizes: &[usize; ROLES]) -> [u32; ROLES + 1] {
    let mut starts = [0u32; ROLES + 1];
    for r in 0..ROLES {
        starts[r + 1] = starts[r] + sizes[r] as u32;
    }
    starts
}

fn draw_matrix(rng: &mut Mulberry32) -> [f32; ROLES * ROLES] {
    std::array::from_fn(|_| rng.signed())
}

/// Redraws each matrix entry with probability `chance`; returns how many changed.
fn mutate(matrix: &mut [f32; ROLES * ROLES], rng: &mut Mulberry32, chance: f32) -> u32 {
    let mut count = 0;
    for entry in matrix.iter_mut() {
        if rng.chance(chance) {
            *entry = rng.signed();
            count += 1;
        }
    }
    count
}

/// Masses around one, heavier for the core.
fn draw_masses(rng: &mut Mulberry32, groups: &[u32; ROLES + 1]) -> Vec<f32> {
    let mut masses = Vec::with_capacity(PARTICLES);
    for (r, role) in Role::ALL.iter().enumerate() {
        let base = if *role == Role::Core { 1.4 } else { 1.0 };
        for _ in groups[r]..groups[r + 1] {
            masses.push(base * rng.range(0.8, 1.2));
        }
    }
    masses
}

/// A pull towards the centre that holds the creature together, a swirl around it, and a
/// repelling spot somewhere inside it.
fn draw_fields(rng: &mut Mulberry32) -> [ForceField; FIELD_COUNT] {
    let spin = if rng.chance(0.5) { 1.0 } else { -1.0 };
    let spot = [rng.range(-40.0, 40.0), rng.range(-40.0, 40.0), 0.0];
    [
        ForceField {
            kind: FieldKind::Attraction,
            falloff: Falloff::Linear,
            centre: [0.0; 3],
            direction: [0.0; 3],
            strength: rng.range(0.4, 1.0),
            radius: 160.0,
        },
        ForceField {
            kind: FieldKind::Vortex,
            falloff: Falloff::Quadratic,
            centre: [0.0; 3],
            direction: [0.0, 0.0, spin],
            strength: rng.range(0.5, 1.5),
            radius: 90.0,
        },
        ForceField {
            kind: FieldKind::Repulsion,
            falloff: Falloff::Exponential,
            centre: spot,
            direction: [0.0; 3],
            strength: rng.range(4.0, 10.0),
            radius: 28.0,
        },
    ]
}

/// The defense group closes into a ring: each particle bonded to the next at the spacing of
/// a circle of radius [`MEMBRANE_RADIUS`].
fn membrane(groups: &[u32; ROLES + 1]) -> (Vec<u32>, Vec<f32>) {
    let (start, end) = (
        groups[Role::Defense as usize],
        groups[Role::Defense as usize + 1],
    );
    let n = end - start;
    let spacing = 2.0 * std::f32::consts::PI * MEMBRANE_RADIUS / n as f32;
    let bonds: Vec<u32> = (0..n)
        .flat_map(|k| [start + k, start + (k + 1) % n])
        .collect();
    let rest = vec![spacing; n as usize];
    (bonds, rest)
}

/// The radius the membrane settles at.
pub const MEMBRANE_RADIUS: f32 = 54.0;

/// Starting positions: the core in the middle, the membrane as a polygon around it, the
/// other groups scattered in discs at random spots inside; a thin layer in depth.
fn formation(rng: &mut Mulberry32, groups: &[u32; ROLES + 1]) -> Vec<f32> {
    let mut positions = Vec::with_capacity(PARTICLES * 3);
    for (r, role) in Role::ALL.iter().enumerate() {
        let n = groups[r + 1] - groups[r];
        match role {
            Role::Defense => ring(&mut positions, n, MEMBRANE_RADIUS),
            _ => {
                let (centre, spread) = match role {
                    Role::Core => ([0.0, 0.0], 22.0),
                    _ => (point_in_disc(rng, 26.0), rng.range(16.0, 26.0)),
                };
                for _ in 0..n {
                    let [x, y] = point_in_disc(rng, spread);
                    positions.extend([centre[0] + x, centre[1] + y, rng.range(-0.8, 0.8)]);
                }
            }
        }
    }
    positions
}

/// `n` points on a circle, built by rotating one step at a time. The step's sine and cosine
/// come from short Taylor series in `f64` (the step is below 0.15 rad, where nine terms are
/// exact to the last bit of an `f32`), so no platform maths library is involved.
fn ring(out: &mut Vec<f32>, n: u32, radius: f32) {
    let step = std::f64::consts::TAU / f64::from(n.max(1));
    let (s, c) = small_angle_sin_cos(step);
    let (s, c) = (s as f32, c as f32);
    let (mut x, mut y) = (radius, 0.0f32);
    for _ in 0..n {
        out.extend([x, y, 0.0]);
        (x, y) = (x * c - y * s, x * s + y * c);
    }
}

/// Sine and cosine of a small angle by their Taylor series, basic arithmetic only.
fn small_angle_sin_cos(x: f64) -> (f64, f64) {
    let (mut sin, mut cos) = (0.0, 0.0);
    let mut term = 1.0;
    for k in 0..18 {
        // `term` is x^k / k!; even powers feed the cosine, odd ones the sine.
        let sign = if (k / 2) % 2 == 0 { 1.0 } else { -1.0 };
        if k % 2 == 0 {
            cos += sign * term;
        } else {
            sin += sign * term;
        }
        term *= x / f64::from(k + 1);
    }
    (sin, cos)
}

/// A uniform point in a disc, by rejection (no trigonometry).
fn point_in_disc(rng: &mut Mulberry32, radius: f32) -> [f32; 2] {
    loop {
        let (x, y) = (rng.signed(), rng.signed());
        if x * x + y * y <= 1.0 {
            return [x * radius, y * radius];
        }
    }
}

/// Each group sets off in its own direction, at a modest speed, with some scatter.
fn headings(rng: &mut Mulberry32, groups: &[u32; ROLES + 1]) -> Vec<f32> {
    let mut velocities = Vec::with_capacity(PARTICLES * 3);
    for r in 0..ROLES {
        let [hx, hy] = point_in_disc(rng, 3.0);
        for _ in groups[r]..groups[r + 1] {
            velocities.extend([hx + rng.range(-1.0, 1.0), hy + rng.range(-1.0, 1.0), 0.0]);
        }
    }
    velocities
}

/// Each role keeps its hue family, shifted a little per creature, with its own size.
fn draw_palette(rng: &mut Mulberry32) -> [f32; ROLES * 4] {
    let shift = rng.range(-18.0, 18.0);
    let mut palette = [0.0; ROLES * 4];
    for (r, role) in Role::ALL.iter().enumerate() {
        let hue = (role.hue() + shift + rng.range(-6.0, 6.0) + 360.0) % 360.0;
        let [red, green, blue] = hsv_to_rgb(hue, rng.range(0.55, 0.85), 1.0);
        let size = match role {
            Role::Core => 1.35,
            Role::Defense => 1.1,
            _ => 1.0,
        } * rng.range(0.9, 1.1);
        palette[r * 4..r * 4 + 4].copy_from_slice(&[red, green, blue, size]);
    }
    palette
}

/// HSV (hue in degrees) to RGB, arithmetic only.
fn hsv_to_rgb(hue: f32, saturation: f32, value: f32) -> [f32; 3] {
    let h = hue / 60.0;
    let sector = h as u32 % 6;
    let f = h - h.floor();
    let (p, q, t) = (
        value * (1.0 - saturation),
        value * (1.0 - saturation * f),
        value * (1.0 - saturation * (1.0 - f)),
    );
    match sector {
        0 => [value, t, p],
        1 => [q, value, p],
        2 => [p, value, t],
        3 => [p, q, value],
        4 => [t, p, value],
        _ => [value, p, q],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_sizes_stay_within_bounds_for_many_nonces() {
        let mut seeds = Mulberry32::new(9);
        for _ in 0..2_000 {
            let sizes = deal_groups(&mut Stream::Traits.generator(seeds.next_u32()));
            assert_eq!(sizes.iter().sum::<usize>(), PARTICLES);
            assert!(
                sizes.iter().all(|s| (MIN_GROUP..=MAX_GROUP).contains(s)),
                "{sizes:?}"
            );
        }
    }

    #[test]
    fn same_nonce_gives_identical_creature() {
        let a = Creature::from_seed(1, 0xDEAD_BEEF, 20_000);
        let b = Creature::from_seed(2, 0xDEAD_BEEF, 20_000);
        assert_eq!(a.positions, b.positions);
        assert_eq!(a.velocities, b.velocities);
        assert_eq!(a.matrix, b.matrix);
        assert_eq!(a.masses, b.masses);
        assert_eq!(a.group_sizes(), b.group_sizes());
        assert_eq!(a.palette, b.palette);
    }

    #[test]
    fn different_nonces_give_different_creatures() {
        let a = Creature::from_seed(0, 1, 0);
        let b = Creature::from_seed(0, 2, 0);
        assert_ne!(a.matrix, b.matrix);
        assert_ne!(a.positions, b.positions);
    }

    #[test]
    fn force_matrix_lies_in_unit_range() {
        let c = Creature::from_seed(0, 77, 2_000_000);
        assert!(c.matrix.iter().all(|v| (-1.0..=1.0).contains(v)));
        assert_eq!(c.matrix_with_scales()[25..], [1.5, 1.2, 0.6, 0.8, 1.0]);
    }

    #[test]
    fn mutation_chance_follows_confirmation_steps() {
        assert_eq!(mutation_chance(9_999), 0.0);
        assert_eq!(mutation_chance(10_000), 0.01);
        assert_eq!(mutation_chance(260_000), 0.25);
        assert_eq!(mutation_chance(1_000_000), 1.0);
        assert_eq!(Creature::from_seed(0, 5, 1_000_000).mutations, 25);
        assert_eq!(Creature::from_seed(0, 5, 0).mutations, 0);
    }

    #[test]
    fn buffers_have_one_entry_per_particle() {
        let c = Creature::from_seed(0, 3, 0);
        assert_eq!(c.positions.len(), PARTICLES * 3);
        assert_eq!(c.velocities.len(), PARTICLES * 3);
        assert_eq!(c.masses.len(), PARTICLES);
        assert_eq!(c.bonds.len(), 2 * c.group_sizes()[Role::Defense as usize]);
    }
}
