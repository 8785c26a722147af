//! Bitcoin Protozoa creatures simulated as worker-pool tasks.

pub mod block;
pub mod creature;
pub mod grid;
pub mod physics;
pub mod rng;
