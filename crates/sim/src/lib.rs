//! Bitcoin Protozoa creatures simulated as worker-pool tasks.
