//! A typed task, a blocking wait, a handler's error, and the same task by name with JSON.
//!
//! Run with `cargo run --release -p protozoa-workers --example quick_start`.

use protozoa_workers::{HandlerError, Handlers, Task, TaskError, WorkerPool};
use serde_json::json;

/// The mean position of a creature's particles, given as (x, y) pairs.
struct Centroid;

impl Task for Centroid {
    const NAME: &'static str = "centroid";
    type Input = Vec<[f32; 2]>;
    type Output = [f32; 2];
}

fn centroid(points: &[[f32; 2]]) -> Result<[f32; 2], HandlerError> {
    if points.is_empty() {
        return Err(HandlerError::new(
            "a creature without particles has no centroid",
        ));
    }
    let n = points.len() as f32;
    let (x, y) = points
        .iter()
        .fold((0.0, 0.0), |(x, y), p| (x + p[0], y + p[1]));
    Ok([x / n, y / n])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Every worker runs the same handlers; these keep no state of their own.
    let handlers =
        Handlers::stateless().handler::<Centroid>(|_state, points, _task| centroid(&points));
    let pool = WorkerPool::builder(handlers).workers(2).build()?;

    // Typed: the input is checked at compile time and the result comes back typed.
    let handle = pool.submit::<Centroid>(vec![[0.0, 0.0], [2.0, 0.0], [1.0, 3.0]])?;
    let task = handle.id();
    let [x, y] = handle.wait()?;
    println!("task {task}: centroid ({x}, {y})");

    // A handler's error reaches the caller with its message.
    match pool.submit::<Centroid>(Vec::new())?.wait() {
        Err(TaskError::Failed { error, .. }) => println!("empty creature: {}", error.message()),
        other => println!("unexpected: {other:?}"),
    }

    // By name, with JSON: for callers that do not link the task's Rust type.
    let value = pool
        .submit_json("centroid", json!([[1.0, 1.0], [3.0, 3.0]]))?
        .wait()?;
    println!("by name: {value}");

    // Stop intake, let everything finish, and wait for the worker threads.
    pool.close();
    pool.join();
    Ok(())
}
