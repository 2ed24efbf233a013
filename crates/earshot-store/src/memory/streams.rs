//! Plain stream calls: range reads, blocking reads, append, trim, length.

use std::time::Duration;

use earshot_core::StreamId;

use super::stream::Stream;
use super::MemoryStore;
use crate::api::*;
use crate::metrics;

impl MemoryStore {
    pub(super) fn read_stream_impl(
        &self,
        stream: &str,
        after: StreamId,
        count: usize,
    ) -> StoreResult<Vec<StreamEntry>> {
        self.run("read_stream", |st, _| {
            Ok(st
                .streams
                .get(stream)
                .map(|s| s.range_after(after, count))
                .unwrap_or_default())
        })
    }

    pub(super) async fn wait_stream_impl(
        &self,
        stream: &str,
        after: StreamId,
        count: usize,
        block: Duration,
    ) -> StoreResult<Vec<StreamEntry>> {
        metrics::timed(
            "wait_stream",
            self.blocking(block, |st, _| {
                Ok(st
                    .streams
                    .get(stream)
                    .map(|s| s.range_after(after, count))
                    .unwrap_or_default())
            }),
        )
        .await
    }

    pub(super) fn last_stream_id_impl(&self, stream: &str) -> StoreResult<StreamId> {
        self.run("last_stream_id", |st, _| {
            Ok(st
                .streams
                .get(stream)
                .map(Stream::last_entry_id)
                .unwrap_or_default())
        })
    }

    pub(super) fn add_entry_impl(
        &self,
        stream: &str,
        fields: &[(String, String)],
    ) -> StoreResult<StreamId> {
        self.run("add_entry", |st, _| {
            Ok(st.add(stream, fields.into(), self.config.maxlen()))
        })
    }

    pub(super) fn trim_impl(&self, stream: &str, min_id: StreamId) -> StoreResult<u64> {
        self.run("trim_stream_before", |st, _| {
            Ok(st
                .streams
                .get_mut(stream)
                .map(|s| s.trim_before(min_id))
                .unwrap_or(0))
        })
    }

    pub(super) fn stream_len_impl(&self, stream: &str) -> StoreResult<u64> {
        self.run("stream_len", |st, _| {
            Ok(st.streams.get(stream).map(Stream::len).unwrap_or(0))
        })
    }
}
