//! protozoa-workers: a worker pool whose every task settles.

#[cfg(target_os = "linux")]
pub mod process;
