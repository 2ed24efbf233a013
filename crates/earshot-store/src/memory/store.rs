//! `Store` for `MemoryStore`: every call handed to the file that does its job
//! (`sessions`, `transcripts`, `streams`, `groups`, `locks`, `housekeeping`).

use std::time::Duration;

use async_trait::async_trait;
use earshot_core::{NewSegment, NewSession, Segment, Session, StreamId, Transcript};

use super::MemoryStore;
use crate::api::*;

#[async_trait]
impl Store for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> StoreResult<()> {
        self.ping_impl()
    }

    async fn create_session(&self, new: NewSession) -> StoreResult<CreateOutcome> {
        self.create_session_impl(new)
    }

    async fn get_session(&self, tenant: &str, id: &str) -> StoreResult<Option<Session>> {
        self.get_session_impl(tenant, id)
    }

    async fn list_sessions(
        &self,
        tenant: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> StoreResult<Result<SessionPage, BadCursor>> {
        self.list_sessions_impl(tenant, limit, cursor)
    }

    async fn append_segment_once(
        &self,
        tenant: &str,
        id: &str,
        segment: &NewSegment,
        key: Option<&str>,
    ) -> StoreResult<AppendOutcome> {
        self.append_segment_impl(tenant, id, segment, key)
    }

    async fn set_language(&self, tenant: &str, id: &str, language: &str) -> StoreResult<bool> {
        self.set_language_impl(tenant, id, language)
    }

    async fn complete_session(&self, tenant: &str, id: &str) -> StoreResult<CompleteOutcome> {
        self.complete_session_impl(tenant, id)
    }

    async fn transcript(&self, tenant: &str, id: &str) -> StoreResult<Option<Transcript>> {
        self.transcript_impl(tenant, id)
    }

    async fn segments_from(
        &self,
        tenant: &str,
        id: &str,
        from: u64,
    ) -> StoreResult<Option<Vec<Segment>>> {
        self.segments_from_impl(tenant, id, from)
    }

    async fn prune_expired(&self) -> StoreResult<u64> {
        self.prune_expired_impl()
    }

    async fn delete_session(&self, tenant: &str, id: &str) -> StoreResult<bool> {
        self.delete_session_impl(tenant, id)
    }

    async fn read_stream(
        &self,
        stream: &str,
        after: StreamId,
        count: usize,
    ) -> StoreResult<Vec<StreamEntry>> {
        self.read_stream_impl(stream, after, count)
    }

    async fn wait_stream(
        &self,
        stream: &str,
        after: StreamId,
        count: usize,
        block: Duration,
    ) -> StoreResult<Vec<StreamEntry>> {
        self.wait_stream_impl(stream, after, count, block).await
    }

    async fn last_stream_id(&self, stream: &str) -> StoreResult<StreamId> {
        self.last_stream_id_impl(stream)
    }

    async fn add_entry(&self, stream: &str, fields: &[(String, String)]) -> StoreResult<StreamId> {
        self.add_entry_impl(stream, fields)
    }

    async fn trim_stream_before(&self, stream: &str, min_id: StreamId) -> StoreResult<u64> {
        self.trim_impl(stream, min_id)
    }

    async fn stream_len(&self, stream: &str) -> StoreResult<u64> {
        self.stream_len_impl(stream)
    }

    async fn create_group(
        &self,
        stream: &str,
        group: &str,
        start: GroupStart,
    ) -> StoreResult<bool> {
        self.create_group_impl(stream, group, start)
    }

    async fn read_group(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> StoreResult<Vec<StreamEntry>> {
        self.read_group_impl(stream, group, consumer, count, block)
            .await
    }

    async fn read_own_pending(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        after: StreamId,
        count: usize,
    ) -> StoreResult<Vec<ClaimedEntry>> {
        self.read_own_pending_impl(stream, group, consumer, after, count)
    }

    async fn release(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        entries: &[(StreamId, u64)],
    ) -> StoreResult<()> {
        self.release_impl(stream, group, consumer, entries)
    }

    async fn ack(&self, stream: &str, group: &str, ids: &[StreamId]) -> StoreResult<u64> {
        self.ack_impl(stream, group, ids)
    }

    async fn autoclaim(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        start: StreamId,
        count: usize,
    ) -> StoreResult<AutoClaim> {
        self.autoclaim_impl(stream, group, consumer, min_idle, start, count)
    }

    async fn dead_letter(
        &self,
        stream: &str,
        group: &str,
        entry: &StreamEntry,
        reason: &str,
        delivery_count: u64,
    ) -> StoreResult<StreamId> {
        self.dead_letter_impl(stream, group, entry, reason, delivery_count)
    }

    async fn groups(&self, stream: &str) -> StoreResult<Vec<GroupInfo>> {
        self.groups_impl(stream)
    }

    async fn try_lock(
        &self,
        session_id: &str,
        purpose: &str,
        ttl: Duration,
    ) -> StoreResult<Option<LockToken>> {
        self.try_lock_impl(session_id, purpose, ttl)
    }

    async fn extend_lock(
        &self,
        session_id: &str,
        purpose: &str,
        token: &LockToken,
        ttl: Duration,
    ) -> StoreResult<bool> {
        self.extend_lock_impl(session_id, purpose, token, ttl)
    }

    async fn unlock(
        &self,
        session_id: &str,
        purpose: &str,
        token: &LockToken,
    ) -> StoreResult<bool> {
        self.unlock_impl(session_id, purpose, token)
    }

    async fn lock_remaining(
        &self,
        session_id: &str,
        purpose: &str,
    ) -> StoreResult<Option<Duration>> {
        self.lock_remaining_impl(session_id, purpose)
    }

    async fn acquire_stream_slot(
        &self,
        tenant: &str,
        max: u64,
        ttl: Duration,
    ) -> StoreResult<Option<LockToken>> {
        self.acquire_slot_impl(tenant, max, ttl)
    }

    async fn extend_stream_slot(
        &self,
        tenant: &str,
        token: &LockToken,
        ttl: Duration,
    ) -> StoreResult<bool> {
        self.extend_slot_impl(tenant, token, ttl)
    }

    async fn release_stream_slot(&self, tenant: &str, token: &LockToken) -> StoreResult<bool> {
        self.release_slot_impl(tenant, token)
    }

    async fn stream_slots_held(&self, tenant: &str) -> StoreResult<u64> {
        self.slots_held_impl(tenant)
    }

    async fn stats(&self) -> StoreResult<StoreStats> {
        self.stats_impl()
    }

    async fn close(&self) {
        self.close_impl();
    }
}
