//! Test support shared by the crates' test suites.
//!
//! Tests that need Redis start their own `redis-server` with [`RedisServer::start`]: a
//! free port, a fresh temporary directory, no persistence unless asked for. So a test
//! never talks to a Redis somebody else started (nor the machine's one on 6379) and
//! never sees another test's data. A server starts in a few tens of milliseconds.
//! Cluster tests use [`RedisCluster`]: six nodes, one cluster shared by a test binary.
//! Tests that check `/metrics` read it with [`metric`].

pub mod audio;
pub mod forced;
mod metrics;
mod redis_cluster;
mod redis_server;
pub mod speech;
pub mod spoken;
mod tls;
pub mod tts;

pub use metrics::metric;
pub use redis_cluster::RedisCluster;
pub use redis_server::{free_port, RedisServer, RedisServerBuilder};
pub use tls::TestCa;
