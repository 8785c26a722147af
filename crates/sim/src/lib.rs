//! Bitcoin Protozoa creatures simulated as worker-pool tasks.

pub mod block;
pub mod rng;
