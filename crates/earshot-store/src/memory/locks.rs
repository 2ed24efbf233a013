//! Per-session NX locks (owner token, TTL) and per-tenant live-stream slots.

use std::time::Duration;

use super::MemoryStore;
use crate::api::*;
use crate::common::new_lock_token;

impl MemoryStore {
    pub(super) fn try_lock_impl(
        &self,
        session_id: &str,
        purpose: &str,
        ttl: Duration,
    ) -> StoreResult<Option<LockToken>> {
        let name = self.keys.lock(session_id, purpose);
        self.run("try_lock", |st, now| {
            if st.keys.lock(&name).is_some() {
                return Ok(None);
            }
            let token = new_lock_token();
            st.keys.set_lock(&name, token.0.clone(), now + ttl);
            Ok(Some(token))
        })
    }

    pub(super) fn extend_lock_impl(
        &self,
        session_id: &str,
        purpose: &str,
        token: &LockToken,
        ttl: Duration,
    ) -> StoreResult<bool> {
        let name = self.keys.lock(session_id, purpose);
        self.run("extend_lock", |st, now| match st.keys.lock(&name) {
            Some(l) if l.token == token.0 => {
                st.keys.set_lock(&name, token.0.clone(), now + ttl);
                Ok(true)
            }
            _ => Ok(false),
        })
    }

    pub(super) fn unlock_impl(
        &self,
        session_id: &str,
        purpose: &str,
        token: &LockToken,
    ) -> StoreResult<bool> {
        let name = self.keys.lock(session_id, purpose);
        self.run("unlock", |st, _| match st.keys.lock(&name) {
            Some(l) if l.token == token.0 => {
                st.keys.drop_lock(&name);
                Ok(true)
            }
            _ => Ok(false),
        })
    }

    pub(super) fn lock_remaining_impl(
        &self,
        session_id: &str,
        purpose: &str,
    ) -> StoreResult<Option<Duration>> {
        let name = self.keys.lock(session_id, purpose);
        self.run("lock_remaining", |st, now| {
            Ok(st
                .keys
                .lock(&name)
                .map(|l| l.expires.saturating_duration_since(now)))
        })
    }

    pub(super) fn acquire_slot_impl(
        &self,
        tenant: &str,
        max: u64,
        ttl: Duration,
    ) -> StoreResult<Option<LockToken>> {
        self.run("acquire_stream_slot", |st, now| {
            Ok(st.slots.acquire(tenant, max, ttl, now))
        })
    }

    pub(super) fn extend_slot_impl(
        &self,
        tenant: &str,
        token: &LockToken,
        ttl: Duration,
    ) -> StoreResult<bool> {
        self.run("extend_stream_slot", |st, now| {
            Ok(st.slots.extend(tenant, token, ttl, now))
        })
    }

    pub(super) fn release_slot_impl(&self, tenant: &str, token: &LockToken) -> StoreResult<bool> {
        self.run("release_stream_slot", |st, _| {
            Ok(st.slots.release(tenant, token))
        })
    }

    pub(super) fn slots_held_impl(&self, tenant: &str) -> StoreResult<u64> {
        self.run("stream_slots_held", |st, now| {
            Ok(st.slots.held(tenant, now))
        })
    }
}
