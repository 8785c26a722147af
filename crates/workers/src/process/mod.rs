//! Process workers: the pieces that let a pool run its handlers in child processes.
//!
//! - [`wire`]: the framed, versioned protocol between pool and worker;
//! - [`channel`]: that protocol over a private Unix socket, with descriptors alongside;
//! - [`codec`]: task inputs and outputs as postcard bytes, per task type;
//! - [`handoff`]: large buffers inside those bytes replaced by shared memory segments;
//! - [`shm`]: sealed shared memory segments and the caches that keep them mapped;
//! - [`child`]: starting, limiting, killing and reaping a worker process;
//! - [`worker_side`]: the loop a worker process runs to serve the pool;
//! - [`host`]: that loop running a pool's `Handlers`, as a thread worker would, and the
//!   program's entry point [`serve_if_worker`];
//! - [`proxy`]: the pool's side, where each worker thread's state is a connection to its own
//!   worker process and each handler forwards its tasks there ([`ProcessOptions`]).
//!
//! Linux only: sealed memory files and the parent-death signal have no portable equivalent.

pub mod channel;
pub mod child;
pub mod codec;
pub mod handoff;
pub mod host;
pub mod proxy;
pub mod shm;
pub mod wire;
pub mod worker_side;

pub use host::serve_if_worker;
pub use proxy::{ProcessOptions, Proxy};
