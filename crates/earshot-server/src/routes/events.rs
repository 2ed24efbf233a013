//! `GET /v1/events`: Server-Sent Events of the caller's tenant. `Last-Event-ID` or
//! `?since=<stream id>` resumes after that entry: missed entries are read from the
//! store first, then the live feed continues without gaps or repeats. Where that is no
//! longer possible (the entries after the resume point, or after where a slow
//! subscriber fell behind, were trimmed from the stream) the client gets an explicit
//! `gap` event instead of a silent skip. The feed ends at server shutdown, so open
//! subscriptions never hold it up; clients reconnect with `Last-Event-ID`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use earshot_core::keys::EVENT_STREAM;
use earshot_core::StreamId;
use earshot_store::{DynStore, StoreError};
use futures::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast::{self, error::RecvError};

use crate::auth::Tenant;
use crate::error::{truncate, ApiError, ApiResult};
use crate::hub::HubEntry;
use crate::state::AppState;

/// `?since=`.
#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    pub since: Option<String>,
}

/// Reads the resume point from `Last-Event-ID` (preferred) or `?since=`.
pub fn resume_point(headers: &HeaderMap, since: Option<&str>) -> ApiResult<Option<StreamId>> {
    let raw = match headers.get("last-event-id") {
        Some(v) => Some(v.to_str().map_err(|_| {
            ApiError::bad_request("invalid_last_event_id", "Last-Event-ID is not ASCII")
        })?),
        None => since,
    };
    raw.map(|r| {
        r.trim().parse::<StreamId>().map_err(|_| {
            ApiError::bad_request(
                "invalid_stream_id",
                format!(
                    "{:?} is not a stream id (<milliseconds>-<sequence>)",
                    truncate(r, 40)
                ),
            )
        })
    })
    .transpose()
}

/// Page size of catch-up reads.
const CATCH_UP_PAGE: usize = 256;
/// The SSE event type of the missed-events signal.
pub const GAP_EVENT: &str = "gap";

struct Feed {
    store: DynStore,
    tenant: String,
    rx: broadcast::Receiver<Arc<HubEntry>>,
    /// Everything up to here has been considered (sent or filtered out).
    cursor: StreamId,
    /// True while re-reading the store (at start with a resume point, or after lag).
    catching_up: bool,
    /// True until the start of a catch-up checked that the stream still holds what
    /// follows `cursor`.
    check_gap: bool,
    ready: VecDeque<Arc<HubEntry>>,
    done: bool,
}

impl Feed {
    fn take(&mut self, entry: Arc<HubEntry>) {
        if entry.id <= self.cursor {
            return;
        }
        self.cursor = entry.id;
        if entry.tenant_id == self.tenant {
            self.ready.push_back(entry);
        }
    }

    async fn next_event(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(e) = self.ready.pop_front() {
                return Some(
                    SseEvent::default()
                        .id(e.id.to_string())
                        .event(e.event_type.clone())
                        .data(e.data.clone()),
                );
            }
            if self.done {
                return None;
            }
            if self.catching_up && self.check_gap {
                self.check_gap = false;
                match self.trimmed_past_cursor().await {
                    Ok(Some(oldest)) => return Some(self.gap(oldest)),
                    Ok(None) => {}
                    Err(e) => return Some(self.store_failed(&e)),
                }
            }
            if self.catching_up {
                match self
                    .store
                    .read_stream(EVENT_STREAM, self.cursor, CATCH_UP_PAGE)
                    .await
                {
                    Ok(entries) => {
                        if entries.len() < CATCH_UP_PAGE {
                            self.catching_up = false;
                        }
                        for e in &entries {
                            self.take(Arc::new(HubEntry::from_stream(e)));
                        }
                    }
                    Err(e) => return Some(self.store_failed(&e)),
                }
                continue;
            }
            match self.rx.recv().await {
                Ok(entry) => self.take(entry),
                Err(RecvError::Lagged(_)) => {
                    self.catching_up = true;
                    self.check_gap = true;
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }

    /// The oldest entry still in the stream, if it is newer than `cursor`: everything
    /// between them was trimmed before this subscriber got it (or nothing was there, when
    /// `cursor` itself was the last entry trimmed: the store cannot tell these apart, so
    /// the signal errs on the side of saying so).
    async fn trimmed_past_cursor(&self) -> Result<Option<StreamId>, StoreError> {
        if self.cursor == StreamId::ZERO {
            return Ok(None); // "from the beginning": whatever is retained is everything
        }
        let oldest = self
            .store
            .read_stream(EVENT_STREAM, StreamId::ZERO, 1)
            .await?;
        Ok(oldest
            .first()
            .map(|e| e.id)
            .filter(|oldest| *oldest > self.cursor))
    }

    /// The `gap` event: `after` is the last id the client had, `resumes_at` the oldest
    /// entry still stored. Its `id:` is `after`, so a reconnect does not skip further.
    fn gap(&self, oldest: StreamId) -> SseEvent {
        tracing::info!(after = %self.cursor, resumes_at = %oldest, "sse subscriber missed trimmed events");
        let data = serde_json::json!({
            "after": self.cursor.to_string(),
            "resumes_at": oldest.to_string(),
            "message": "events after `after` and before `resumes_at` were trimmed from the stream before they could be sent; some may be missing",
        });
        SseEvent::default()
            .id(self.cursor.to_string())
            .event(GAP_EVENT)
            .data(data.to_string())
    }

    fn store_failed(&mut self, e: &StoreError) -> SseEvent {
        tracing::warn!(error = %e, "sse catch-up failed; closing so the client resumes");
        self.done = true;
        SseEvent::default()
            .event("error")
            .data(r#"{"code":"store_unavailable","message":"reconnect with Last-Event-ID"}"#)
    }
}

/// The SSE handler.
pub async fn events(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    headers: HeaderMap,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let resume = resume_point(&headers, q.since.as_deref())?;
    // Subscribe before reading the store, so nothing published in between is missed.
    let rx = state.hub.subscribe();
    let cursor = match resume {
        Some(id) => id,
        None => state.store.last_stream_id(EVENT_STREAM).await?,
    };
    let feed = Feed {
        store: state.store.clone(),
        tenant: tenant.as_str().to_owned(),
        rx,
        cursor,
        catching_up: true,
        check_gap: resume.is_some(),
        ready: VecDeque::new(),
        done: false,
    };
    let stream = sse_stream(feed).take_until(state.shutdown.clone().cancelled_owned());
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

fn sse_stream(feed: Feed) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    stream::unfold(feed, |mut feed| async move {
        feed.next_event().await.map(|e| (Ok(e), feed))
    })
}
