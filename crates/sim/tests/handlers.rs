//! The simulation's handlers run through a real pool: each task type gives what its kernel
//! gives when called directly, bad buffers fail as errors, and a scene on the pool matches the
//! same scene stepped directly, bit for bit, whatever the number of workers.

use protozoa_sim::behaviour::calculate_behaviour;
use protozoa_sim::creature::Creature;
use protozoa_sim::frame::{step_creature, Body, CreatureTraits, RenderBuffers, SimState};
use protozoa_sim::grid::Grid;
use protozoa_sim::physics::{apply_constraints, calculate_forces, update_positions};
use protozoa_sim::render::{calculate_lod, prepare_render, RenderOut};
use protozoa_sim::scene::Scene;
use protozoa_sim::tasks::*;
use protozoa_workers::buffer::{SharedBuffer, TransferBuffer};
use protozoa_workers::{TaskError, WorkerPool};

fn pool(workers: usize) -> WorkerPool {
    WorkerPool::builder(protozoa_sim::handlers())
        .workers(workers)
        .build()
        .expect("pool starts")
}

fn creature() -> Creature {
    Creature::from_seed(878_976, 0x1234_5678, 50_000)
}

fn creatures(count: u32) -> Vec<Creature> {
    (0..count)
        .map(|k| Creature::from_seed(u64::from(k), 1000 + k, 0))
        .collect()
}

#[test]
fn calculate_forces_task_matches_the_kernel() {
    let c = creature();
    let mut expected = vec![0.0; c.positions.len()];
    calculate_forces(
        &mut Grid::new(),
        &c.positions,
        &c.masses,
        &c.matrix_with_scales(),
        &c.params,
        &mut expected,
    );

    let input = ForcesInput {
        positions: c.positions.clone().into(),
        masses: c.masses.clone().into(),
        matrix: c.matrix_with_scales().into(),
        params: c.params,
        accelerations: TransferBuffer::zeroed(c.positions.len()),
    };
    let output = pool(2)
        .submit::<CalculateForces>(input)
        .expect("submitted")
        .wait()
        .expect("ran");
    assert_eq!(&*output.accelerations, &expected[..]);
    assert_eq!(&*output.positions, &c.positions[..]);
}

#[test]
fn physics_stages_through_the_pool_match_direct_calls() {
    let c = creature();
    let pool = pool(2);
    let n3 = c.positions.len();

    // Directly: behaviour on zero accelerations, integration, constraints.
    let (mut x, mut v, mut acc) = (c.positions.clone(), c.velocities.clone(), vec![0.0; n3]);
    calculate_behaviour(
        &mut Grid::new(),
        &mut Vec::new(),
        &x,
        &v,
        &c.params,
        &mut acc,
    );
    update_positions(&mut x, &mut v, &acc);
    apply_constraints(&mut x, &mut v, &c.masses, &c.bonds, &c.rest_lengths);

    // The same stages as tasks, the buffers handed from one to the next.
    let motion = Motion {
        positions: c.positions.clone().into(),
        velocities: c.velocities.clone().into(),
        accelerations: TransferBuffer::zeroed(n3),
    };
    let input = BehaviourInput {
        motion,
        params: c.params,
    };
    let motion = pool
        .submit::<CalculateBehavior>(input)
        .expect("submitted")
        .wait()
        .expect("ran");
    let motion = pool
        .submit::<UpdatePositions>(motion)
        .expect("submitted")
        .wait()
        .expect("ran");
    let body = Body {
        positions: motion.positions,
        velocities: motion.velocities,
    };
    let input = ConstraintsInput {
        body,
        masses: c.masses.clone().into(),
        bonds: c.bonds.clone().into(),
        rest_lengths: c.rest_lengths.clone().into(),
    };
    let body = pool
        .submit::<ApplyConstraints>(input)
        .expect("submitted")
        .wait()
        .expect("ran");

    assert_eq!(&*body.positions, &x[..]);
    assert_eq!(&*body.velocities, &v[..]);
}

#[test]
fn render_tasks_match_direct_calls() {
    let c = creature();
    let n = c.masses.len();
    let traits = CreatureTraits::new(&c, [100.0, -50.0, 0.0]);
    let pool = pool(1);

    let mut expected = RenderBuffers::new(n);
    let out = RenderOut {
        positions: &mut expected.positions,
        scales: &mut expected.scales,
        colours: &mut expected.colours,
        opacities: &mut expected.opacities,
    };
    prepare_render(
        &c.positions,
        &c.velocities,
        &c.params,
        &c.palette,
        traits.offset,
        out,
    );
    calculate_lod(&expected.positions, [0.0, 0.0, 150.0], &mut expected.lod);

    let input = RenderInput {
        body: Body::new(&c),
        traits,
        render: RenderBuffers::new(n),
    };
    let output = pool
        .submit::<PrepareRender>(input)
        .expect("submitted")
        .wait()
        .expect("ran");
    let lod = LodBuffers {
        positions: output.render.positions.clone(),
        camera: SharedBuffer::from(vec![0.0, 0.0, 150.0]),
        lod: TransferBuffer::zeroed(n),
    };
    let lod = pool
        .submit::<CalculateLod>(lod)
        .expect("submitted")
        .wait()
        .expect("ran");

    assert_eq!(output.render.positions, expected.positions);
    assert_eq!(output.render.colours, expected.colours);
    assert_eq!(output.render.scales, expected.scales);
    assert_eq!(output.render.opacities, expected.opacities);
    assert_eq!(lod.lod, expected.lod);
}

#[test]
fn step_creature_task_matches_a_direct_step() {
    let c = creature();
    let traits = CreatureTraits::new(&c, [0.0; 3]);
    let (mut body, mut render) = (Body::new(&c), RenderBuffers::new(c.masses.len()));
    step_creature(
        &mut SimState::default(),
        &traits,
        [0.0; 3],
        &mut body,
        &mut render,
    );

    let input = StepInput {
        traits: traits.clone(),
        camera: SharedBuffer::from(vec![0.0; 3]),
        body: Body::new(&c),
        render: RenderBuffers::new(c.masses.len()),
    };
    let output = pool(2)
        .submit::<StepCreature>(input)
        .expect("submitted")
        .wait()
        .expect("ran");
    assert_eq!(output.body, body);
    assert_eq!(output.render, render);
}

#[test]
fn mismatched_buffers_fail_without_panicking() {
    let c = creature();
    let input = ForcesInput {
        positions: TransferBuffer::zeroed(3),
        masses: c.masses.clone().into(),
        matrix: c.matrix_with_scales().into(),
        params: c.params,
        accelerations: TransferBuffer::zeroed(c.positions.len()),
    };
    let error = pool(1)
        .submit::<CalculateForces>(input)
        .expect("submitted")
        .wait();
    match error {
        Err(TaskError::Failed { error, .. }) => assert!(error.message().contains("positions")),
        other => panic!("expected a failed task naming the buffer, got {other:?}"),
    }
}

#[test]
fn scene_on_the_pool_matches_the_direct_scene() {
    let creatures = creatures(5);
    let mut direct = Scene::new(&creatures);
    let mut pooled = Scene::new(&creatures);
    let pool = pool(2);
    for _ in 0..10 {
        direct.step_direct().expect("direct frame");
        pooled.step_on_pool(&pool).expect("pool frame");
    }
    assert_eq!(direct.checksum(), pooled.checksum());
    assert_eq!(pooled.frame(), 10);
}

#[test]
fn one_two_and_three_workers_give_the_same_checksum() {
    let creatures = creatures(7);
    let checksums: Vec<u64> = (1..=3)
        .map(|workers| {
            let pool = pool(workers);
            let mut scene = Scene::new(&creatures);
            for _ in 0..8 {
                scene.step_on_pool(&pool).expect("frame");
            }
            scene.checksum()
        })
        .collect();
    assert_eq!(checksums[0], checksums[1]);
    assert_eq!(checksums[1], checksums[2]);
}

#[test]
fn a_closed_pool_refuses_the_frame_and_keeps_the_scene() {
    let creatures = creatures(2);
    let mut scene = Scene::new(&creatures);
    let before = scene.checksum();
    let pool = pool(1);
    pool.close();
    assert!(scene.step_on_pool(&pool).is_err());
    assert_eq!(scene.checksum(), before);
    assert!(scene.step_direct().is_ok(), "the buffers were handed back");
}

#[test]
fn chained_frame_equals_the_stages_run_one_by_one() {
    let c = creature();
    let traits = CreatureTraits::new(&c, [0.0; 3]);
    let (mut body, mut render) = (Body::new(&c), RenderBuffers::new(c.masses.len()));
    let mut state = SimState::default();

    let (mut x, mut v) = (c.positions.clone(), c.velocities.clone());
    let (mut grid, mut sight, mut acc) = (Grid::new(), Vec::new(), vec![0.0; x.len()]);
    let matrix = c.matrix_with_scales();
    for _ in 0..30 {
        step_creature(&mut state, &traits, [0.0; 3], &mut body, &mut render);

        calculate_forces(&mut grid, &x, &c.masses, &matrix, &c.params, &mut acc);
        calculate_behaviour(&mut grid, &mut sight, &x, &v, &c.params, &mut acc);
        update_positions(&mut x, &mut v, &acc);
        apply_constraints(&mut x, &mut v, &c.masses, &c.bonds, &c.rest_lengths);
    }
    assert_eq!(&*body.positions, &x[..]);
    assert_eq!(&*body.velocities, &v[..]);
}
