//! The non-stream keys of the embedded store — sessions (metadata, chunks, segments),
//! tenant indexes, cached transcripts and locks — with Redis-like TTLs.
//!
//! Every expiring key has one entry in an expiry queue ordered by deadline, so expired
//! keys are removed in O(log n) each, on the next call, without scanning everything
//! and without unbounded growth.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use earshot_core::{Segment, Session, Transcript};

/// A stored session: what `session:<id>:metadata`, `:transcript` and `:segments` hold
/// (the chunks are the segments' texts, so they are not stored twice).
#[derive(Debug, Clone)]
pub(super) struct SessionRec {
    pub session: Session,
    /// Tenant-index score: start time in ms.
    pub score: u64,
    pub segments: Vec<Segment>,
    /// Bytes of segment text, for the session size limit.
    pub text_bytes: u64,
    /// `session:<id>:idempotency`: key → (first seq, body fingerprint).
    pub idempotency: HashMap<String, (u64, String)>,
    pub expires: Instant,
}

impl SessionRec {
    /// The full transcript: chunks joined by one space.
    pub fn transcript(&self) -> Transcript {
        let chunks: Vec<&str> = self.segments.iter().map(|s| s.text.as_str()).collect();
        Transcript {
            session_id: self.session.session_id.clone(),
            text: Transcript::join_chunks(&chunks),
            segments: self.segments.clone(),
        }
    }
}

/// What an expiry-queue entry removes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum ExpKey {
    Session(String),
    Cache(String),
    Lock(String),
}

/// A lock key's holder.
#[derive(Debug, Clone)]
pub(super) struct LockRec {
    pub token: String,
    pub expires: Instant,
}

/// A cached transcript of a completed session.
#[derive(Debug, Clone)]
pub(super) struct CacheRec {
    pub transcript: Transcript,
    pub expires: Instant,
}

/// Sessions, tenant indexes, cache entries and locks.
#[derive(Debug, Default)]
pub(super) struct Keyspace {
    sessions: HashMap<String, SessionRec>,
    /// tenant -> (score, id), iterated newest first.
    tenants: HashMap<String, BTreeSet<(u64, String)>>,
    cache: HashMap<String, CacheRec>,
    locks: HashMap<String, LockRec>,
    expiry: BTreeSet<(Instant, ExpKey)>,
}

impl Keyspace {
    /// Removes every key whose TTL has passed.
    pub fn expire_due(&mut self, now: Instant) {
        while let Some((at, _)) = self.expiry.first() {
            if *at > now {
                break;
            }
            let Some((_, key)) = self.expiry.pop_first() else {
                break;
            };
            match key {
                ExpKey::Session(id) => self.drop_session(&id),
                ExpKey::Cache(id) => {
                    self.cache.remove(&id);
                }
                ExpKey::Lock(name) => {
                    self.locks.remove(&name);
                }
            }
        }
    }

    fn reschedule(&mut self, key: ExpKey, old: Option<Instant>, new: Instant) {
        if let Some(old) = old {
            self.expiry.remove(&(old, key.clone()));
        }
        self.expiry.insert((new, key));
    }

    // ---- sessions -------------------------------------------------------------

    pub fn session(&self, id: &str) -> Option<&SessionRec> {
        self.sessions.get(id)
    }

    /// The session if it belongs to `tenant` (another tenant's is "missing").
    pub fn session_of(&self, tenant: &str, id: &str) -> Option<&SessionRec> {
        self.sessions
            .get(id)
            .filter(|r| r.session.tenant_id == tenant)
    }

    pub fn session_of_mut(&mut self, tenant: &str, id: &str) -> Option<&mut SessionRec> {
        self.sessions
            .get_mut(id)
            .filter(|r| r.session.tenant_id == tenant)
    }

    pub fn insert_session(&mut self, rec: SessionRec) {
        let id = rec.session.session_id.clone();
        self.drop_session(&id);
        self.tenants
            .entry(rec.session.tenant_id.clone())
            .or_default()
            .insert((rec.score, id.clone()));
        self.reschedule(ExpKey::Session(id.clone()), None, rec.expires);
        self.sessions.insert(id, rec);
    }

    /// Refreshes the TTL of a session's keys (every write does).
    pub fn touch_session(&mut self, id: &str, expires: Instant) {
        let Some(rec) = self.sessions.get_mut(id) else {
            return;
        };
        let old = std::mem::replace(&mut rec.expires, expires);
        self.reschedule(ExpKey::Session(id.to_owned()), Some(old), expires);
    }

    /// Removes a session's keys, its cache entry and its tenant-index entry.
    pub fn drop_session(&mut self, id: &str) {
        let Some(rec) = self.sessions.remove(id) else {
            return;
        };
        self.expiry
            .remove(&(rec.expires, ExpKey::Session(id.to_owned())));
        self.drop_cache(id);
        let tenant = &rec.session.tenant_id;
        if let Some(index) = self.tenants.get_mut(tenant) {
            index.remove(&(rec.score, id.to_owned()));
            if index.is_empty() {
                self.tenants.remove(tenant);
            }
        }
    }

    /// Up to `limit` of the tenant's sessions strictly after `after` (newest first).
    pub fn page(
        &self,
        tenant: &str,
        after: Option<(u64, &str)>,
        limit: usize,
    ) -> Vec<(u64, &SessionRec)> {
        let Some(index) = self.tenants.get(tenant) else {
            return Vec::new();
        };
        let iter: Box<dyn Iterator<Item = &(u64, String)>> = match after {
            Some((score, id)) => Box::new(index.range(..(score, id.to_owned())).rev()),
            None => Box::new(index.iter().rev()),
        };
        iter.filter_map(|(score, id)| self.sessions.get(id).map(|r| (*score, r)))
            .take(limit)
            .collect()
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Entries in all tenant indexes (expired sessions leave them as they expire).
    #[cfg(test)]
    pub fn indexed(&self) -> usize {
        self.tenants.values().map(BTreeSet::len).sum()
    }

    /// Rough payload size, for `stats()`.
    pub fn approx_bytes(&self) -> u64 {
        let sessions: u64 = self
            .sessions
            .values()
            .map(|r| {
                256 + r
                    .segments
                    .iter()
                    .map(|s| 2 * s.text.len() as u64 + 96)
                    .sum::<u64>()
                    + r.idempotency
                        .keys()
                        .map(|k| k.len() as u64 + 112)
                        .sum::<u64>()
                    + r.session
                        .metadata
                        .iter()
                        .map(|(k, v)| (k.len() + v.len() + 32) as u64)
                        .sum::<u64>()
            })
            .sum();
        let cache: u64 = self
            .cache
            .values()
            .map(|c| 128 + 2 * c.transcript.text.len() as u64)
            .sum();
        sessions + cache + 96 * self.locks.len() as u64
    }

    // ---- cache ------------------------------------------------------------------

    pub fn cached(&self, id: &str) -> Option<&Transcript> {
        self.cache.get(id).map(|c| &c.transcript)
    }

    pub fn put_cache(&mut self, id: &str, transcript: Transcript, expires: Instant) {
        let old = self.cache.insert(
            id.to_owned(),
            CacheRec {
                transcript,
                expires,
            },
        );
        self.reschedule(
            ExpKey::Cache(id.to_owned()),
            old.map(|c| c.expires),
            expires,
        );
    }

    fn drop_cache(&mut self, id: &str) {
        if let Some(c) = self.cache.remove(id) {
            self.expiry
                .remove(&(c.expires, ExpKey::Cache(id.to_owned())));
        }
    }

    // ---- locks ------------------------------------------------------------------

    pub fn lock(&self, name: &str) -> Option<&LockRec> {
        self.locks.get(name)
    }

    pub fn set_lock(&mut self, name: &str, token: String, expires: Instant) {
        let old = self
            .locks
            .insert(name.to_owned(), LockRec { token, expires });
        self.reschedule(
            ExpKey::Lock(name.to_owned()),
            old.map(|l| l.expires),
            expires,
        );
    }

    pub fn drop_lock(&mut self, name: &str) {
        if let Some(l) = self.locks.remove(name) {
            self.expiry
                .remove(&(l.expires, ExpKey::Lock(name.to_owned())));
        }
    }
}
