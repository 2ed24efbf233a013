//! `GET /v1/events`: Server-Sent Events of the caller's tenant. `Last-Event-ID` or
//! `?since=<stream id>` resumes after that entry: missed entries are read from the
//! store first, then the live feed continues without gaps or repeats.

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
use earshot_store::DynStore;
use futures::stream::{self, Stream};
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

struct Feed {
    store: DynStore,
    tenant: String,
    rx: broadcast::Receiver<Arc<HubEntry>>,
    /// Everything up to here has been considered (sent or filtered out).
    cursor: StreamId,
    /// True while re-reading the store (at start with a resume point, or after lag).
    catching_up: bool,
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
                    Err(e) => {
                        tracing::warn!(error = %e, "sse catch-up failed; closing so the client resumes");
                        self.done = true;
                        return Some(
                            SseEvent::default()
                                .event("error")
                                .data(r#"{"code":"store_unavailable","message":"reconnect with Last-Event-ID"}"#),
                        );
                    }
                }
                continue;
            }
            match self.rx.recv().await {
                Ok(entry) => self.take(entry),
                Err(RecvError::Lagged(_)) => self.catching_up = true,
                Err(RecvError::Closed) => return None,
            }
        }
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
        ready: VecDeque::new(),
        done: false,
    };
    let stream = sse_stream(feed);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

fn sse_stream(feed: Feed) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    stream::unfold(feed, |mut feed| async move {
        feed.next_event().await.map(|e| (Ok(e), feed))
    })
}
