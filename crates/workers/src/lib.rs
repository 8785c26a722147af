//! protozoa-workers: a worker pool whose every task settles.
