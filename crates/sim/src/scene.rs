//! A scene: creatures side by side, stepped frame by frame, directly or on a worker pool.
//!
//! ## The frame loop
//!
//! Each frame runs, per creature, forces, then behaviour, then integration (with
//! constraints), then render preparation (with level of detail). On a pool this is one
//! [`StepCreature`] task per creature per frame, which chains the stages in that order on one
//! worker; the scene waits for every creature's task before it starts the next frame. That is
//! the dependency graph the original intended (each stage depends on the previous stage of
//! the same creature, and each frame on the previous frame) expressed without dependency
//! support in the pool: the stages of one creature are strictly sequential anyway, and running
//! them in one task saves four hand-overs per creature per frame. Creatures are independent,
//! so a frame's tasks run in parallel, one creature per task.
//!
//! ## Determinism
//!
//! Work is split by creature, never by worker count: each creature's frame is one sequential
//! computation over its own buffers, so the final state is bit-identical whatever the number
//! of workers, and identical to [`Scene::step_direct`], which calls the same function on the
//! calling thread. [`Scene::checksum`] hashes that state.

use std::path::Path;

use protozoa_workers::buffer::SharedBuffer;
use protozoa_workers::{TaskError, TaskHandle, WorkerPool};

use crate::creature::Creature;
use crate::frame::{step_creature, Body, CreatureTraits, RenderBuffers, SimState};
use crate::image::{self, CreatureView, ImageError};
use crate::physics::DISH_RADIUS;
use crate::tasks::{StepCreature, StepInput, StepOutput};

/// The distance between neighbouring creatures' centres in the world.
const SPACING: f32 = 2.0 * DISH_RADIUS + 20.0;
/// How high above the scene's middle the camera hangs.
const CAMERA_HEIGHT: f32 = 150.0;

/// Why a frame could not be run.
#[derive(Debug, thiserror::Error)]
pub enum SceneError {
    /// The pool refused a task (closed, terminated, or without the `stepCreature` handler).
    #[error("the pool refused a frame task: {0}")]
    Refused(String),
    /// A creature's frame task ended without a value.
    #[error("creature #{height}: {error}")]
    Task { height: u64, error: TaskError },
    /// A creature's buffers were lost with a failed task; the scene cannot go on.
    #[error("the scene lost a creature's state in an earlier failed frame")]
    Lost,
}

/// One creature in the scene: its traits and, between frames, its buffers.
struct Member {
    traits: CreatureTraits,
    buffers: Option<(Body, RenderBuffers)>,
}

/// Creatures and the frame count.
pub struct Scene {
    members: Vec<Member>,
    camera: SharedBuffer<f32>,
    frame: u64,
    scratch: SimState,
}

impl Scene {
    /// A scene of `creatures`, laid out on a square grid in the world in the given order.
    pub fn new(creatures: &[Creature]) -> Self {
        let columns = (1..).find(|c| c * c >= creatures.len().max(1)).unwrap_or(1);
        let middle = (columns - 1) as f32 * SPACING / 2.0;
        let members = creatures
            .iter()
            .enumerate()
            .map(|(k, creature)| {
                let (col, row) = ((k % columns) as f32, (k / columns) as f32);
                let offset = [col * SPACING - middle, middle - row * SPACING, 0.0];
                let n = creature.masses.len();
                Member {
                    traits: CreatureTraits::new(creature, offset),
                    buffers: Some((Body::new(creature), RenderBuffers::new(n))),
                }
            })
            .collect();
        Self {
            members,
            camera: SharedBuffer::from(vec![0.0, 0.0, CAMERA_HEIGHT]),
            frame: 0,
            scratch: SimState::default(),
        }
    }

    /// The number of creatures.
    pub fn creatures(&self) -> usize {
        self.members.len()
    }

    /// The number of particles over all creatures.
    pub fn particles(&self) -> usize {
        self.members.iter().map(|m| m.traits.particles()).sum()
    }

    /// Frames run so far.
    pub fn frame(&self) -> u64 {
        self.frame
    }

    /// Runs one frame with every kernel called on this thread, creature after creature.
    pub fn step_direct(&mut self) -> Result<(), SceneError> {
        let camera = self.camera_position();
        for member in &mut self.members {
            let (body, render) = member.buffers.as_mut().ok_or(SceneError::Lost)?;
            step_creature(&mut self.scratch, &member.traits, camera, body, render);
        }
        self.frame += 1;
        Ok(())
    }

    /// Runs one frame on `pool` (built with [`crate::handlers`]): one task per creature,
    /// then waits for all of them.
    pub fn step_on_pool(&mut self, pool: &WorkerPool) -> Result<(), SceneError> {
        // Hand every creature's buffers to its task.
        let mut handles = Vec::with_capacity(self.members.len());
        let mut refused = None;
        for member in &mut self.members {
            let (body, render) = member.buffers.take().ok_or(SceneError::Lost)?;
            let input = StepInput {
                traits: member.traits.clone(),
                camera: self.camera.clone(),
                body,
                render,
            };
            match pool.submit::<StepCreature>(input) {
                Ok(handle) => handles.push(Some(handle)),
                Err(error) => {
                    refused.get_or_insert_with(|| error.reason().to_string());
                    let input = error.into_input();
                    member.buffers = Some((input.body, input.render));
                    handles.push(None);
                }
            }
        }

        // Take every result back before reporting any failure, so buffers are not lost
        // needlessly.
        let mut failure = refused.map(SceneError::Refused);
        for (member, handle) in self.members.iter_mut().zip(handles) {
            let Some(handle) = handle else { continue };
            if let Err(error) = collect(member, handle) {
                failure.get_or_insert(error);
            }
        }
        match failure {
            Some(error) => Err(error),
            None => {
                self.frame += 1;
                Ok(())
            }
        }
    }

    /// FNV-1a (64-bit) over every creature's positions and velocities, as `f32` bits, in
    /// creature order: equal checksums mean bit-identical states.
    pub fn checksum(&self) -> u64 {
        let mut hash: u64 = 0xCBF2_9CE4_8422_2325;
        for (body, _) in self.members.iter().filter_map(|m| m.buffers.as_ref()) {
            for value in body.positions.iter().chain(body.velocities.iter()) {
                for byte in value.to_bits().to_le_bytes() {
                    hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01B3);
                }
            }
        }
        hash
    }

    /// The creatures' render buffers, for the picture.
    pub fn views(&self) -> Vec<CreatureView<'_>> {
        self.members
            .iter()
            .filter_map(|m| {
                let (_, render) = m.buffers.as_ref()?;
                Some(CreatureView {
                    height: m.traits.height,
                    offset: m.traits.offset,
                    positions: &render.positions,
                    scales: &render.scales,
                    colours: &render.colours,
                    opacities: &render.opacities,
                })
            })
            .collect()
    }

    /// Writes the picture of the current frame to `path` as a PNG.
    pub fn write_png(&self, path: &Path) -> Result<(), ImageError> {
        image::write_png(&self.views(), self.frame, path)
    }

    fn camera_position(&self) -> [f32; 3] {
        [self.camera[0], self.camera[1], self.camera[2]]
    }
}

/// Waits for a creature's frame task and puts its buffers back.
fn collect(member: &mut Member, handle: TaskHandle<StepOutput>) -> Result<(), SceneError> {
    let output = handle.wait().map_err(|error| SceneError::Task {
        height: member.traits.height,
        error,
    })?;
    member.buffers = Some((output.body, output.render));
    Ok(())
}
