//! Calls about the store itself rather than its data: liveness, pruning, the figures
//! the metrics poller publishes, and shutting down.

use std::sync::atomic::Ordering;

use earshot_core::keys::EVENT_STREAM;

use super::stream::Stream;
use super::MemoryStore;
use crate::api::*;

impl MemoryStore {
    pub(super) fn ping_impl(&self) -> StoreResult<()> {
        self.run("ping", |_, _| Ok(()))
    }

    /// Expired sessions leave their tenant index the moment they expire (every call
    /// drops due keys first), so there is never anything left over to prune.
    pub(super) fn prune_expired_impl(&self) -> StoreResult<u64> {
        self.run("prune_expired", |_, _| Ok(0))
    }

    pub(super) fn stats_impl(&self) -> StoreResult<StoreStats> {
        self.run("stats", |st, _| {
            let streams: u64 = st.streams.values().map(Stream::approx_bytes).sum();
            Ok(StoreStats {
                used_memory_bytes: st.keys.approx_bytes() + streams,
                evicted_keys: 0,
                stream_length: st.streams.get(EVENT_STREAM).map(Stream::len).unwrap_or(0),
            })
        })
    }

    pub(super) fn close_impl(&self) {
        self.closed.store(true, Ordering::Release);
        // Wake blocked readers so they notice.
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
    }
}
