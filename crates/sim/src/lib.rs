//! # protozoa-sim
//!
//! Bitcoin Protozoa: every Bitcoin block yields a creature of 500 particles whose shape and
//! behaviour are drawn from the block's nonce. This crate is the simulation's model and its
//! workloads, written as handlers that any `protozoa-workers` pool can run: it registers them
//! like any user would and knows nothing of the pool's insides.
//!
//! ## Where things are
//!
//! - [`block`]: block records, the embedded real main-chain headers (hash and proof of work
//!   checked when loaded), `blockinfo` JSON files, confirmations against a settable tip.
//! - [`fetch`]: the same records from an HTTP API, with retries and a time limit.
//! - [`rng`]: Mulberry32 and the named random streams; [`creature`]: what a nonce makes.
//! - [`grid`], [`physics`], [`behaviour`], [`render`]: the kernels, on flat `f32` buffers.
//! - [`frame`]: one creature's frame, the stages chained; [`tasks`]: the task types and
//!   [`handlers`]; [`scene`]: many creatures stepped frame by frame, directly or on a pool.
//! - [`image`] and [`font`]: the picture of the last frame.
//!
//! ## Determinism
//!
//! The same block gives the same creature, and the same frames give the same bits, on any
//! machine and with any number of workers: random numbers are integer arithmetic, the kernels
//! use only basic arithmetic and square roots (no platform maths library), every sum is taken
//! in an order that depends only on the data, and work is split by creature.
//!
//! ## Example
//!
//! ```
//! use protozoa_sim::block::BlockSet;
//! use protozoa_sim::creature::Creature;
//! use protozoa_sim::scene::Scene;
//! use protozoa_workers::WorkerPool;
//!
//! let blocks = BlockSet::embedded()?;
//! let creatures: Vec<Creature> = blocks
//!     .newest(3)
//!     .iter()
//!     .map(|block| Creature::from_block(block, blocks.confirmations(block)))
//!     .collect();
//!
//! // Three frames on a pool, and the same frames on this thread: the same bits.
//! let pool = WorkerPool::builder(protozoa_sim::handlers()).workers(2).build()?;
//! let (mut pooled, mut direct) = (Scene::new(&creatures), Scene::new(&creatures));
//! for _ in 0..3 {
//!     pooled.step_on_pool(&pool)?;
//!     direct.step_direct()?;
//! }
//! assert_eq!(pooled.checksum(), direct.checksum());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Limits
//!
//! - The HTTP client speaks plain `http://` only; TLS would need a TLS stack.
//! - A frame is one task per creature (see [`scene`]): the pool has no task dependencies yet,
//!   so the stages of a creature are chained inside the task instead of as dependent tasks.

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
