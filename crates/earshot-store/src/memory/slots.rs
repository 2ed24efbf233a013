//! Per-tenant live-stream slots in process, with the semantics of the Redis store's
//! `tenant:<t>:streams`: a slot is a token that expires unless extended, and every
//! operation first forgets the expired ones.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::api::LockToken;
use crate::common::new_lock_token;

/// Slot tokens and when each expires, per tenant.
#[derive(Debug, Default)]
pub(super) struct Slots {
    by_tenant: HashMap<String, HashMap<String, Instant>>,
}

impl Slots {
    /// The tenant's unexpired slots (an expiry at `now` has passed, as on Redis).
    fn live(&mut self, tenant: &str, now: Instant) -> &mut HashMap<String, Instant> {
        let slots = self.by_tenant.entry(tenant.to_owned()).or_default();
        slots.retain(|_, expires| *expires > now);
        slots
    }

    /// Drops the tenant's entry once it holds nothing, so the map stays bounded by the
    /// tenants with live streams.
    fn tidy(&mut self, tenant: &str) {
        if self.by_tenant.get(tenant).is_some_and(HashMap::is_empty) {
            self.by_tenant.remove(tenant);
        }
    }

    pub fn acquire(
        &mut self,
        tenant: &str,
        max: u64,
        ttl: Duration,
        now: Instant,
    ) -> Option<LockToken> {
        let slots = self.live(tenant, now);
        let taken = if max > 0 && slots.len() as u64 >= max {
            None
        } else {
            let token = new_lock_token();
            slots.insert(token.0.clone(), now + ttl);
            Some(token)
        };
        self.tidy(tenant);
        taken
    }

    pub fn extend(&mut self, tenant: &str, token: &LockToken, ttl: Duration, now: Instant) -> bool {
        let extended = match self.live(tenant, now).get_mut(&token.0) {
            Some(expires) => {
                *expires = now + ttl;
                true
            }
            None => false,
        };
        self.tidy(tenant);
        extended
    }

    pub fn release(&mut self, tenant: &str, token: &LockToken) -> bool {
        let released = self
            .by_tenant
            .get_mut(tenant)
            .is_some_and(|s| s.remove(&token.0).is_some());
        self.tidy(tenant);
        released
    }

    pub fn held(&mut self, tenant: &str, now: Instant) -> u64 {
        let n = self.live(tenant, now).len() as u64;
        self.tidy(tenant);
        n
    }
}
