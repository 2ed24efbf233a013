//! The session service: what every route does to sessions, written once between the
//! routes and the store. The JSON routes, the live stream and the upload route all
//! create, find, append to and record sessions through it, so the rules (who may see a
//! session, when an append may be retried, how a recognised segment becomes a stored
//! one) cannot drift apart between them, and no route needs another route's code.
//!
//! * [`append`]: appends with an idempotency key and safe retries;
//! * [`upload`]: a transcribed file recorded as a completed session.

mod append;
mod upload;

use std::collections::BTreeMap;

use earshot_core::{NewSession, Session, SessionId, SessionStatus, TenantId};
use earshot_store::{CompleteOutcome, CreateOutcome, DynStore};

pub use append::{AppendError, IdempotencyKey};
pub use upload::{segment_from_asr, words_from_asr, RecordedUpload};

use crate::error::{ApiError, ApiResult};

/// Session operations above the store. Cheap to clone.
#[derive(Clone)]
pub struct SessionService {
    store: DynStore,
    /// How long a keyed append may take, its retries included (see [`append`]).
    append_budget: std::time::Duration,
}

impl SessionService {
    /// `store_timeout` is the store's command timeout (`EARSHOT_REDIS_TIMEOUT`): a keyed
    /// append is retried for at most twice that, one write plus its `WAIT`.
    pub fn new(store: DynStore, store_timeout: std::time::Duration) -> Self {
        Self {
            store,
            append_budget: store_timeout * 2,
        }
    }

    /// Creates a session; 409 `session_exists` if the id is taken in any tenant.
    pub async fn create(&self, new: NewSession) -> ApiResult<Session> {
        let id = new.session_id.as_str().to_owned();
        match self.store.create_session(new).await? {
            CreateOutcome::Created(session) => Ok(session),
            CreateOutcome::AlreadyExists => Err(ApiError::conflict(
                "session_exists",
                format!(
                    "session {:?} already exists",
                    crate::error::truncate(&id, 80)
                ),
            )),
        }
    }

    /// The session a live stream writes into: created if new, 409 if completed, and 404
    /// if another tenant owns the id (existence must not leak).
    pub async fn find_or_create(
        &self,
        tenant: &TenantId,
        id: &SessionId,
        language: &str,
        metadata: BTreeMap<String, String>,
    ) -> ApiResult<Session> {
        let existing = self.store.get_session(tenant.as_str(), id.as_str()).await?;
        let session = match existing {
            Some(s) => s,
            None => {
                let new = NewSession {
                    session_id: id.clone(),
                    tenant_id: tenant.clone(),
                    language: language.to_owned(),
                    metadata,
                };
                match self.store.create_session(new).await? {
                    CreateOutcome::Created(s) => s,
                    // Created meanwhile by another connection, or another tenant's id.
                    CreateOutcome::AlreadyExists => self
                        .store
                        .get_session(tenant.as_str(), id.as_str())
                        .await?
                        .ok_or_else(|| ApiError::session_not_found(id.as_str()))?,
                }
            }
        };
        if session.status == SessionStatus::Completed {
            return Err(ApiError::session_completed());
        }
        Ok(session)
    }

    /// Completes a session (idempotent); 404 if it is not the tenant's.
    pub async fn complete(&self, tenant: &str, id: &str) -> ApiResult<(Session, String)> {
        match self.store.complete_session(tenant, id).await? {
            CompleteOutcome::Completed {
                session,
                transcript,
                ..
            } => Ok((session, transcript)),
            CompleteOutcome::NotFound => Err(ApiError::session_not_found(id)),
        }
    }

    /// The store, for the calls that need no rules of their own (get, list, delete).
    pub fn store(&self) -> &DynStore {
        &self.store
    }
}
