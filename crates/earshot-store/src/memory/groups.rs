//! Consumer-group calls: create, read new and own pending entries, release, ack,
//! autoclaim, dead-letter, and the group listing.

use std::time::Duration;

use earshot_core::StreamId;

use super::stream::Stream;
use super::MemoryStore;
use crate::api::*;
use crate::common::{dead_letter_fields, dead_letter_stream};
use crate::metrics;

impl MemoryStore {
    pub(super) fn create_group_impl(
        &self,
        stream: &str,
        group: &str,
        start: GroupStart,
    ) -> StoreResult<bool> {
        self.run("create_group", |st, _| {
            Ok(st
                .streams
                .entry(stream.to_owned())
                .or_default()
                .create_group(group, start))
        })
    }

    pub(super) async fn read_group_impl(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> StoreResult<Vec<StreamEntry>> {
        metrics::timed(
            "read_group",
            self.blocking(block, |st, now| {
                let s = st.group_stream(stream, group)?;
                s.read_group(group, consumer, count, now)
                    .ok_or_else(|| StoreError::NoGroup(group.to_owned()))
            }),
        )
        .await
    }

    pub(super) fn read_own_pending_impl(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        after: StreamId,
        count: usize,
    ) -> StoreResult<Vec<ClaimedEntry>> {
        self.run("read_own_pending", |st, now| {
            let s = st.group_stream(stream, group)?;
            s.read_own_pending(group, consumer, after, count, now)
                .ok_or_else(|| StoreError::NoGroup(group.to_owned()))
        })
    }

    pub(super) fn release_impl(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        entries: &[(StreamId, u64)],
    ) -> StoreResult<()> {
        self.run("release", |st, _| {
            if let Some(s) = st.streams.get_mut(stream) {
                s.release(group, consumer, entries);
            }
            Ok(())
        })
    }

    pub(super) fn ack_impl(&self, stream: &str, group: &str, ids: &[StreamId]) -> StoreResult<u64> {
        self.run("ack", |st, _| {
            Ok(st
                .streams
                .get_mut(stream)
                .map(|s| s.ack(group, ids))
                .unwrap_or(0))
        })
    }

    pub(super) fn autoclaim_impl(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        start: StreamId,
        count: usize,
    ) -> StoreResult<AutoClaim> {
        self.run("autoclaim", |st, now| {
            let s = st.group_stream(stream, group)?;
            s.autoclaim(group, consumer, min_idle, start, count, now)
                .ok_or_else(|| StoreError::NoGroup(group.to_owned()))
        })
    }

    pub(super) fn dead_letter_impl(
        &self,
        stream: &str,
        group: &str,
        entry: &StreamEntry,
        reason: &str,
        delivery_count: u64,
    ) -> StoreResult<StreamId> {
        let dead = dead_letter_stream(stream);
        let fields = dead_letter_fields(group, entry, reason, delivery_count);
        self.run("dead_letter", |st, _| {
            let id = st.add(&dead, fields.into(), self.config.maxlen());
            if let Some(s) = st.streams.get_mut(stream) {
                s.ack(group, &[entry.id]);
            }
            Ok(id)
        })
    }

    pub(super) fn groups_impl(&self, stream: &str) -> StoreResult<Vec<GroupInfo>> {
        self.run("groups", |st, _| {
            Ok(st
                .streams
                .get(stream)
                .map(Stream::groups)
                .unwrap_or_default())
        })
    }
}
