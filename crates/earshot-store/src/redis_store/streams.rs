//! Plain stream calls: range reads, blocking reads, append, trim, length.

use std::time::Duration;

use earshot_core::StreamId;
use redis::Value;

use super::conn::MAX_BLOCK;
use super::{reply, RedisStore};
use crate::api::*;

/// `BLOCK` milliseconds: at least 1 (0 would mean "forever" to Redis), at most
/// `MAX_BLOCK` (so a dedicated connection's response timeout always exceeds it).
pub(super) fn block_ms(block: Duration) -> u64 {
    (block.min(MAX_BLOCK).as_millis() as u64).max(1)
}

impl RedisStore {
    pub(super) async fn read_stream_impl(
        &self,
        stream: &str,
        after: StreamId,
        count: usize,
    ) -> StoreResult<Vec<StreamEntry>> {
        if after == StreamId::MAX || count == 0 {
            return Ok(Vec::new());
        }
        let r = self
            .conns
            .query::<Value>(
                redis::cmd("XRANGE")
                    .arg(stream)
                    .arg(format!("({after}"))
                    .arg("+")
                    .arg("COUNT")
                    .arg(count),
            )
            .await?;
        reply::entries(r)
    }

    pub(super) async fn wait_stream_impl(
        &self,
        stream: &str,
        after: StreamId,
        count: usize,
        block: Duration,
    ) -> StoreResult<Vec<StreamEntry>> {
        if block.is_zero() {
            return self.read_stream_impl(stream, after, count).await;
        }
        let stream = stream.to_owned();
        let r = self
            .conns
            .run_blocking(None, block, |mut c| async move {
                redis::cmd("XREAD")
                    .arg("COUNT")
                    .arg(count.max(1))
                    .arg("BLOCK")
                    .arg(block_ms(block))
                    .arg("STREAMS")
                    .arg(stream)
                    .arg(after.to_string())
                    .query_async::<Value>(&mut c)
                    .await
            })
            .await?;
        reply::read_reply(r)
    }

    pub(super) async fn last_stream_id_impl(&self, stream: &str) -> StoreResult<StreamId> {
        let r = self
            .conns
            .query::<Value>(
                redis::cmd("XREVRANGE")
                    .arg(stream)
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(1),
            )
            .await?;
        Ok(reply::entries(r)?.first().map(|e| e.id).unwrap_or_default())
    }

    pub(super) async fn add_entry_impl(
        &self,
        stream: &str,
        fields: &[(String, String)],
    ) -> StoreResult<StreamId> {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(stream)
            .arg("MAXLEN")
            .arg("~")
            .arg(self.maxlen())
            .arg("*");
        for (k, v) in fields {
            cmd.arg(k).arg(v);
        }
        let r = self.conns.query::<Value>(&cmd).await?;
        reply::stream_id(r)
    }

    /// Exact `XTRIM MINID` (not `~`): retention means no event older than the cut is
    /// kept. It runs periodically, so the exactness costs little.
    pub(super) async fn trim_impl(&self, stream: &str, min_id: StreamId) -> StoreResult<u64> {
        let r = self
            .conns
            .query::<Value>(
                redis::cmd("XTRIM")
                    .arg(stream)
                    .arg("MINID")
                    .arg(min_id.to_string()),
            )
            .await?;
        Ok(reply::int(r)?.max(0) as u64)
    }

    pub(super) async fn stream_len_impl(&self, stream: &str) -> StoreResult<u64> {
        let r = self
            .conns
            .query::<Value>(redis::cmd("XLEN").arg(stream))
            .await?;
        Ok(reply::int(r)?.max(0) as u64)
    }
}
