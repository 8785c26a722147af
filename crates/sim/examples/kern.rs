use protozoa_sim::block::BlockSet;
use protozoa_sim::creature::Creature;
use protozoa_sim::frame::*;
use protozoa_sim::grid::Grid;
use protozoa_sim::{behaviour, physics};
use std::time::Instant;
fn best(mut f: impl FnMut()) -> f64 {
    (0..7)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..200 {
                f()
            }
            t.elapsed().as_secs_f64() * 1e6 / 200.0
        })
        .fold(f64::MAX, f64::min)
}
fn main() {
    let set = BlockSet::embedded().unwrap();
    let c = Creature::from_block(&set.newest(1)[0], 1);
    let traits = CreatureTraits::new(&c, [0.0; 3]);
    let mut body = Body::new(&c);
    let mut render = RenderBuffers::new(500);
    let mut st = SimState::default();
    for _ in 0..200 {
        step_creature(&mut st, &traits, [0.0; 3], &mut body, &mut render);
    }
    let mut grid = Grid::new();
    let mut acc = vec![0.0; 1500];
    let pos = body.positions.clone();
    println!(
        "forces {:.1} us",
        best(|| physics::calculate_forces(
            &mut grid,
            &pos,
            &traits.masses,
            &traits.matrix,
            &traits.params,
            &mut acc
        ))
    );
    println!(
        "build {:.1} us",
        best(|| physics::build_grid(&mut grid, &pos, &traits.params))
    );
    let mut sight = Vec::new();
    println!(
        "behaviour {:.1} us",
        best(|| behaviour::calculate_behaviour(
            &mut grid,
            &mut sight,
            &pos,
            &body.velocities,
            &traits.params,
            &mut acc
        ))
    );
    let mut b2 = body.clone();
    println!(
        "whole step {:.1} us",
        best(|| step_creature(&mut st, &traits, [0.0; 3], &mut b2, &mut render))
    );
}
