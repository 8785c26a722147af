//! Bitcoin Protozoa creatures simulated as worker-pool tasks.

pub mod behaviour;
pub mod block;
pub mod creature;
pub mod fetch;
pub mod font;
pub mod frame;
pub mod grid;
pub mod image;
pub mod physics;
pub mod render;
pub mod rng;
pub mod scene;
pub mod tasks;

pub use tasks::handlers;
