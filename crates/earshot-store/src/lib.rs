//! The `Store` seam: the one interface through which sessions, segments, events, locks
//! and the tenant index are written and read.
//!
//! Two backends implement it and pass the same conformance suite (`tests/`):
//! - [`RedisStore`] (module `redis_store`): one shared multiplexed, auto-reconnecting
//!   client; dedicated connections only for blocking stream reads.
//! - [`MemoryStore`] (module `memory`): the embedded default, same semantics,
//!   process-local.
//!
//! Callers never see Redis commands, so Redis Cluster can be added behind this trait
//! without touching them.

mod api;
mod common;
mod cursor;
pub mod memory;
pub mod metrics;
pub mod redis_store;

pub use api::*;
pub use memory::MemoryStore;
pub use redis_store::{RedisLimits, RedisStore};
