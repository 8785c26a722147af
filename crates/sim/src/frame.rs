//! One creature's frame: the data a frame reads and writes, and the stages chained in order
//! (forces, behaviour, integration, constraints, render preparation, level of detail).
//!
//! The same [`step_creature`] runs whether a scene steps directly on the calling thread or as
//! a `stepCreature` task on a worker, so both give the same bits. The worker-owned
//! [`SimState`] only holds scratch space that every stage overwrites before reading, so which
//! worker runs a creature, and what it ran before, cannot change the result.

use protozoa_workers::buffer::{SharedBuffer, TransferBuffer};
use serde::{Deserialize, Serialize};

use crate::behaviour::SIGHT;
use crate::behaviour::{add_pair_sight, add_sight, clear_sight, finish_behaviour};
use crate::creature::Creature;
use crate::grid::Grid;
use crate::physics::{add_pair_force, add_to, apply_constraints, build_grid, finish_forces};
use crate::physics::{update_positions, PhysicsParams, GRID_RADIUS};
use crate::render::{calculate_lod, prepare_render, RenderOut};

/// A worker's scratch space for the simulation kernels.
#[derive(Debug, Default)]
pub struct SimState {
    /// The spatial grid, rebuilt by every stage that searches neighbours.
    pub grid: Grid,
    /// Accelerations between the force, behaviour and integration stages.
    pub accelerations: Vec<f32>,
    /// What each particle sees of its group mates, for flocking.
    pub sight: Vec<f32>,
}

/// A creature's fixed traits, shared read-only with every task that needs them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreatureTraits {
    /// The block height, the creature's label.
    pub height: u64,
    pub params: PhysicsParams,
    pub masses: SharedBuffer<f32>,
    /// The 5 x 5 force matrix followed by the 5 role modifiers.
    pub matrix: SharedBuffer<f32>,
    /// Flat pairs of bonded particles.
    pub bonds: SharedBuffer<u32>,
    pub rest_lengths: SharedBuffer<f32>,
    /// Per role: red, green, blue, size.
    pub palette: SharedBuffer<f32>,
    /// Where the creature's frame sits in the world.
    pub offset: [f32; 3],
}

impl CreatureTraits {
    /// The traits of `creature`, placed at `offset`.
    pub fn new(creature: &Creature, offset: [f32; 3]) -> Self {
        Self {
            height: creature.height,
            params: creature.params,
            masses: SharedBuffer::from(creature.masses.clone()),
            matrix: SharedBuffer::from(creature.matrix_with_scales()),
            bonds: SharedBuffer::from(creature.bonds.clone()),
            rest_lengths: SharedBuffer::from(creature.rest_lengths.clone()),
            palette: SharedBuffer::from(creature.palette.to_vec()),
            offset,
        }
    }

    /// The number of particles.
    pub fn particles(&self) -> usize {
        self.params.particles()
    }

    /// Checks that every buffer fits the particle count, so no kernel can index out of
    /// bounds.
    pub fn validate(&self) -> Result<(), String> {
        let n = self.particles();
        let bonds_ok = self.bonds.iter().all(|&i| (i as usize) < n);
        let groups_ok = self.params.groups.windows(2).all(|w| w[0] <= w[1]);
        check_len("masses", self.masses.len(), n)?;
        check_len("matrix", self.matrix.len(), 30)?;
        check_len("palette", self.palette.len(), 20)?;
        check_len(
            "rest_lengths",
            self.rest_lengths.len(),
            self.bonds.len() / 2,
        )?;
        if !bonds_ok || self.bonds.len() % 2 != 0 {
            return Err("bonds must be pairs of particle indices".into());
        }
        if !groups_ok {
            return Err("role groups must not overlap".into());
        }
        Ok(())
    }
}

/// The particles' moving state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Body {
    /// `[x, y, z, ...]` in the creature's own frame.
    pub positions: TransferBuffer<f32>,
    pub velocities: TransferBuffer<f32>,
}

impl Body {
    /// The starting state of `creature`.
    pub fn new(creature: &Creature) -> Self {
        Self {
            positions: TransferBuffer::from(creature.positions.clone()),
            velocities: TransferBuffer::from(creature.velocities.clone()),
        }
    }

    /// Checks both buffers hold three numbers per particle.
    pub fn validate(&self, particles: usize) -> Result<(), String> {
        check_len("positions", self.positions.len(), 3 * particles)?;
        check_len("velocities", self.velocities.len(), 3 * particles)
    }
}

/// What a renderer reads per particle, refilled every frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RenderBuffers {
    /// World positions, `[x, y, z, ...]`.
    pub positions: TransferBuffer<f32>,
    pub scales: TransferBuffer<f32>,
    /// `[r, g, b, ...]`.
    pub colours: TransferBuffer<f32>,
    pub opacities: TransferBuffer<f32>,
    /// Level of detail from the camera distance.
    pub lod: TransferBuffer<f32>,
}

impl RenderBuffers {
    /// Zeroed buffers for `particles` particles.
    pub fn new(particles: usize) -> Self {
        Self {
            positions: TransferBuffer::zeroed(3 * particles),
            scales: TransferBuffer::zeroed(particles),
            colours: TransferBuffer::zeroed(3 * particles),
            opacities: TransferBuffer::zeroed(particles),
            lod: TransferBuffer::zeroed(particles),
        }
    }

    /// Checks every buffer fits the particle count.
    pub fn validate(&self, particles: usize) -> Result<(), String> {
        check_len("render positions", self.positions.len(), 3 * particles)?;
        check_len("scales", self.scales.len(), particles)?;
        check_len("colours", self.colours.len(), 3 * particles)?;
        check_len("opacities", self.opacities.len(), particles)?;
        check_len("lod", self.lod.len(), particles)
    }

    /// Borrows the buffers `prepareRender` fills.
    pub fn out(&mut self) -> RenderOut<'_> {
        RenderOut {
            positions: &mut self.positions,
            scales: &mut self.scales,
            colours: &mut self.colours,
            opacities: &mut self.opacities,
        }
    }
}

/// Fails with a message naming `what` unless `len == expected`.
pub(crate) fn check_len(what: &str, len: usize, expected: usize) -> Result<(), String> {
    if len == expected {
        Ok(())
    } else {
        Err(format!("{what} holds {len} numbers, expected {expected}"))
    }
}

/// Runs one frame of one creature: forces, then behaviour, then integration and constraints,
/// then render preparation and level of detail. The buffers must have been validated.
///
/// The force and behaviour stages share one grid and one sweep over its close pairs; each
/// pair adds to the force sums and to the flocking sight in the order the separate kernels
/// ([`crate::physics::calculate_forces`], [`crate::behaviour::calculate_behaviour`]) would,
/// so the result is the same bits as running them one after the other.
pub fn step_creature(
    state: &mut SimState,
    traits: &CreatureTraits,
    camera: [f32; 3],
    body: &mut Body,
    render: &mut RenderBuffers,
) {
    let n = traits.particles();
    let SimState {
        grid,
        accelerations: acc,
        sight,
    } = state;
    let (x, v) = (&mut body.positions, &mut body.velocities);
    let (masses, params, matrix) = (&traits.masses, &traits.params, &traits.matrix);

    // Forces and behaviour: one sweep over the close pairs.
    acc.clear();
    acc.resize(3 * n, 0.0);
    clear_sight(sight, n);
    build_grid(grid, x, params);
    grid.for_each_neighbourhood(GRID_RADIUS, |a, near| {
        let (mut own_force, mut own_sight) = ([0.0; 3], [0.0; SIGHT]);
        for (b, d, d2) in near {
            add_pair_force(matrix, &mut own_force, acc, a, b, d, d2);
            add_pair_sight(&mut own_sight, sight, x, v, a, b, d, d2);
        }
        add_to(acc, a.index, own_force);
        add_sight(sight, a.index, &own_sight);
    });
    finish_forces(x, masses, matrix, params, acc);
    finish_behaviour(sight, x, v, acc);

    // Integration, then constraints.
    update_positions(x, v, acc);
    apply_constraints(x, v, masses, &traits.bonds, &traits.rest_lengths);

    // What the renderer needs.
    prepare_render(x, v, params, &traits.palette, traits.offset, render.out());
    calculate_lod(&render.positions, camera, &mut render.lod);
}
