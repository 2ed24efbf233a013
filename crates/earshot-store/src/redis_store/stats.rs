//! The figures the metrics poller publishes: memory and evictions from `INFO` (summed
//! over every primary on a cluster) and the length of every event stream.

use futures::future::try_join_all;
use redis::Value;

use super::{reply, RedisStore};
use crate::api::*;

impl RedisStore {
    pub(super) async fn stats_impl(&self) -> StoreResult<StoreStats> {
        // Separate commands, not one pipeline: on a cluster `INFO` goes to every
        // primary and each `XLEN` to its stream's node.
        let memory = self
            .conns
            .query::<Value>(redis::cmd("INFO").arg("memory"))
            .await?;
        let evicted = self
            .conns
            .query::<Value>(redis::cmd("INFO").arg("stats"))
            .await?;
        let memory = reply::info_sum(memory, "used_memory")?;
        let evicted = reply::info_sum(evicted, "evicted_keys")?;
        let streams = self.keys.event_streams();
        let lengths = try_join_all(streams.iter().map(|s| self.stream_len_impl(s))).await?;
        Ok(StoreStats {
            used_memory_bytes: memory,
            evicted_keys: evicted,
            stream_length: lengths.into_iter().sum(),
        })
    }
}
