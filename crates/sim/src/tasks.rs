//! The task types of the original's workers, and [`handlers`] registering them for a pool.
//!
//! Every simulation task takes its buffers by value and hands them back in its output
//! ([`TransferBuffer`]s move, they are never copied); read-only data ([`SharedBuffer`]s) is
//! shared. A task whose buffers do not fit its particle count fails with a permanent error
//! naming the buffer, never a panic.
//!
//! Besides the original's eight task types there is [`StepCreature`]: one whole frame of one
//! creature, the stages chained on one worker (see [`crate::scene`] for why).

use protozoa_workers::buffer::{SharedBuffer, TransferBuffer};
use protozoa_workers::{HandlerError, Handlers, Task};
use serde::{Deserialize, Serialize};

use crate::behaviour::calculate_behaviour;
use crate::block::Block;
use crate::fetch::{fetch_block, fetch_confirmations, FetchError, FetchRequest};
use crate::frame::{check_len, step_creature, Body, CreatureTraits, RenderBuffers, SimState};
use crate::physics::{apply_constraints, calculate_forces, update_positions, PhysicsParams};
use crate::render::{calculate_lod, prepare_render};

/// The handlers for every task type of this crate, on workers whose state is a [`SimState`].
pub fn handlers() -> Handlers<SimState> {
    Handlers::new(|_| Ok(SimState::default()))
        .handler::<CalculateForces>(|state, input, _| {
            input.validate().map_err(invalid)?;
            let ForcesInput {
                positions,
                masses,
                matrix,
                params,
                mut accelerations,
            } = input;
            calculate_forces(
                &mut state.grid,
                &positions,
                &masses,
                &matrix,
                &params,
                &mut accelerations,
            );
            Ok(ForcesOutput {
                positions,
                accelerations,
            })
        })
        .handler::<CalculateBehavior>(|state, input, _| {
            input
                .motion
                .validate(input.params.particles())
                .map_err(invalid)?;
            let Motion {
                positions,
                velocities,
                mut accelerations,
            } = input.motion;
            calculate_behaviour(
                &mut state.grid,
                &mut state.sight,
                &positions,
                &velocities,
                &input.params,
                &mut accelerations,
            );
            Ok(Motion {
                positions,
                velocities,
                accelerations,
            })
        })
        .handler::<UpdatePositions>(|_, mut motion, _| {
            motion
                .validate(motion.positions.len() / 3)
                .map_err(invalid)?;
            update_positions(
                &mut motion.positions,
                &mut motion.velocities,
                &motion.accelerations,
            );
            Ok(motion)
        })
        .handler::<ApplyConstraints>(|_, input, _| {
            input.validate().map_err(invalid)?;
            let ConstraintsInput {
                mut body,
                masses,
                bonds,
                rest_lengths,
            } = input;
            apply_constraints(
                &mut body.positions,
                &mut body.velocities,
                &masses,
                &bonds,
                &rest_lengths,
            );
            Ok(body)
        })
        .handler::<PrepareRender>(|_, input, _| {
            input.validate().map_err(invalid)?;
            let RenderInput {
                body,
                traits,
                mut render,
            } = input;
            let out = render.out();
            prepare_render(
                &body.positions,
                &body.velocities,
                &traits.params,
                &traits.palette,
                traits.offset,
                out,
            );
            Ok(RenderOutput { body, render })
        })
        .handler::<CalculateLod>(|_, mut input, _| {
            input.validate().map_err(invalid)?;
            let camera = [input.camera[0], input.camera[1], input.camera[2]];
            calculate_lod(&input.positions, camera, &mut input.lod);
            Ok(input)
        })
        .handler::<StepCreature>(|state, input, _| {
            let StepInput {
                traits,
                camera,
                mut body,
                mut render,
            } = input;
            validate_step(&traits, &camera, &body, &render).map_err(invalid)?;
            step_creature(
                state,
                &traits,
                [camera[0], camera[1], camera[2]],
                &mut body,
                &mut render,
            );
            Ok(StepOutput { body, render })
        })
        .async_handler::<FetchBlock, _>(|_, request, _| async move {
            fetch_block(&request).await.map_err(fetch_failed)
        })
        .async_handler::<FetchConfirmations, _>(|_, request, _| async move {
            fetch_confirmations(&request).await.map_err(fetch_failed)
        })
}

/// A bad buffer never gets better on a retry.
fn invalid(message: String) -> HandlerError {
    HandlerError::new(message).permanent()
}

/// A fetch already retried what could be retried.
fn fetch_failed(error: FetchError) -> HandlerError {
    HandlerError::new(error.to_string()).permanent()
}

/// Positions, velocities and accelerations of one creature, handed through the physics
/// stages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Motion {
    pub positions: TransferBuffer<f32>,
    pub velocities: TransferBuffer<f32>,
    pub accelerations: TransferBuffer<f32>,
}

impl Motion {
    fn validate(&self, particles: usize) -> Result<(), String> {
        check_len("positions", self.positions.len(), 3 * particles)?;
        check_len("velocities", self.velocities.len(), 3 * particles)?;
        check_len("accelerations", self.accelerations.len(), 3 * particles)
    }
}

/// `calculateForces`: the accelerations from role-pair forces and force fields.
pub struct CalculateForces;

/// The input of [`CalculateForces`]; `accelerations` is overwritten and handed back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForcesInput {
    pub positions: TransferBuffer<f32>,
    pub masses: SharedBuffer<f32>,
    /// The 5 x 5 force matrix followed by the 5 role modifiers.
    pub matrix: SharedBuffer<f32>,
    pub params: PhysicsParams,
    pub accelerations: TransferBuffer<f32>,
}

impl ForcesInput {
    fn validate(&self) -> Result<(), String> {
        let n = self.params.particles();
        check_len("positions", self.positions.len(), 3 * n)?;
        check_len("masses", self.masses.len(), n)?;
        check_len("matrix", self.matrix.len(), 30)?;
        check_len("accelerations", self.accelerations.len(), 3 * n)
    }
}

/// The output of [`CalculateForces`]: its buffers handed back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForcesOutput {
    pub positions: TransferBuffer<f32>,
    pub accelerations: TransferBuffer<f32>,
}

impl Task for CalculateForces {
    const NAME: &'static str = "calculateForces";
    type Input = ForcesInput;
    type Output = ForcesOutput;
}

/// `calculateBehavior`: adds flocking steering to the accelerations.
pub struct CalculateBehavior;

/// The input of [`CalculateBehavior`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BehaviourInput {
    pub motion: Motion,
    pub params: PhysicsParams,
}

impl Task for CalculateBehavior {
    const NAME: &'static str = "calculateBehavior";
    type Input = BehaviourInput;
    type Output = Motion;
}

/// `updatePositions`: one damped, speed-capped integration step.
pub struct UpdatePositions;

impl Task for UpdatePositions {
    const NAME: &'static str = "updatePositions";
    type Input = Motion;
    type Output = Motion;
}

/// `applyConstraints`: bonds and the dish.
pub struct ApplyConstraints;

/// The input of [`ApplyConstraints`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConstraintsInput {
    pub body: Body,
    pub masses: SharedBuffer<f32>,
    /// Flat pairs of particle indices.
    pub bonds: SharedBuffer<u32>,
    pub rest_lengths: SharedBuffer<f32>,
}

impl ConstraintsInput {
    fn validate(&self) -> Result<(), String> {
        let n = self.masses.len();
        self.body.validate(n)?;
        check_len(
            "rest_lengths",
            self.rest_lengths.len(),
            self.bonds.len() / 2,
        )?;
        if self.bonds.len() % 2 != 0 || self.bonds.iter().any(|&i| i as usize >= n) {
            return Err("bonds must be pairs of particle indices".into());
        }
        Ok(())
    }
}

impl Task for ApplyConstraints {
    const NAME: &'static str = "applyConstraints";
    type Input = ConstraintsInput;
    type Output = Body;
}

/// `prepareRender`: world positions, scales, colours and opacities.
pub struct PrepareRender;

/// The input of [`PrepareRender`]; `render` is refilled and handed back with `body`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RenderInput {
    pub body: Body,
    pub traits: CreatureTraits,
    pub render: RenderBuffers,
}

impl RenderInput {
    fn validate(&self) -> Result<(), String> {
        self.traits.validate()?;
        self.body.validate(self.traits.particles())?;
        self.render.validate(self.traits.particles())
    }
}

/// The output of [`PrepareRender`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RenderOutput {
    pub body: Body,
    pub render: RenderBuffers,
}

impl Task for PrepareRender {
    const NAME: &'static str = "prepareRender";
    type Input = RenderInput;
    type Output = RenderOutput;
}

/// `calculateLOD`: a level of detail per particle from the camera distance.
pub struct CalculateLod;

/// The input and output of [`CalculateLod`]: `lod` is refilled from `positions`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LodBuffers {
    /// World positions, `[x, y, z, ...]`.
    pub positions: TransferBuffer<f32>,
    /// The camera position, `[x, y, z]`.
    pub camera: SharedBuffer<f32>,
    pub lod: TransferBuffer<f32>,
}

impl LodBuffers {
    fn validate(&self) -> Result<(), String> {
        check_len("camera", self.camera.len(), 3)?;
        check_len("positions", self.positions.len(), 3 * self.lod.len())
    }
}

impl Task for CalculateLod {
    const NAME: &'static str = "calculateLOD";
    type Input = LodBuffers;
    type Output = LodBuffers;
}

/// One frame of one creature, every stage in order on one worker.
pub struct StepCreature;

/// The input of [`StepCreature`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepInput {
    pub traits: CreatureTraits,
    /// The camera position, `[x, y, z]`.
    pub camera: SharedBuffer<f32>,
    pub body: Body,
    pub render: RenderBuffers,
}

/// The output of [`StepCreature`]: the buffers handed back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepOutput {
    pub body: Body,
    pub render: RenderBuffers,
}

impl Task for StepCreature {
    const NAME: &'static str = "stepCreature";
    type Input = StepInput;
    type Output = StepOutput;
}

fn validate_step(
    traits: &CreatureTraits,
    camera: &[f32],
    body: &Body,
    render: &RenderBuffers,
) -> Result<(), String> {
    traits.validate()?;
    check_len("camera", camera.len(), 3)?;
    body.validate(traits.particles())?;
    render.validate(traits.particles())
}

/// `fetchBlock`: a checked block record from the HTTP API.
pub struct FetchBlock;

impl Task for FetchBlock {
    const NAME: &'static str = "fetchBlock";
    type Input = FetchRequest;
    type Output = Block;
}

/// `fetchConfirmations`: a block's confirmations as the HTTP API counts them.
pub struct FetchConfirmations;

impl Task for FetchConfirmations {
    const NAME: &'static str = "fetchConfirmations";
    type Input = FetchRequest;
    type Output = u64;
}
