//! `GET /v1/events`: Server-Sent Events of the caller's tenant, from every event stream
//! (every partition on a cluster). `Last-Event-ID` or `?since=` resumes after that
//! event (the id format is `EventCursor`'s): missed entries are read from the store
//! first, then the live feed continues without gaps or repeats.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use earshot_store::DynStore;
use futures::stream::{self, Stream};
use serde::Deserialize;
use tokio::sync::broadcast::{self, error::RecvError};

use crate::auth::Tenant;
use crate::error::{truncate, ApiError, ApiResult};
use crate::event_cursor::EventCursor;
use crate::hub::HubEntry;
use crate::state::AppState;

/// `?since=`.
#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    pub since: Option<String>,
}

/// Reads the resume point for `partitions` event streams from `Last-Event-ID`
/// (preferred) or `?since=`.
pub fn resume_point(
    headers: &HeaderMap,
    since: Option<&str>,
    partitions: usize,
) -> ApiResult<Option<EventCursor>> {
    let raw = match headers.get("last-event-id") {
        Some(v) => Some(v.to_str().map_err(|_| {
            ApiError::bad_request("invalid_last_event_id", "Last-Event-ID is not ASCII")
        })?),
        None => since,
    };
    raw.map(|r| {
        EventCursor::parse(r, partitions).map_err(|e| {
            ApiError::bad_request(
                "invalid_stream_id",
                format!("{:?} is not an event id: {e}", truncate(r, 40)),
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
    /// The event streams, by partition.
    streams: Vec<String>,
    /// Everything up to here has been considered (sent or filtered out), per partition.
    cursor: EventCursor,
    /// True while re-reading the store (at start with a resume point, or after lag).
    catching_up: bool,
    /// Events to send, each with its SSE id (the cursor right after it).
    ready: VecDeque<(Arc<HubEntry>, String)>,
    done: bool,
}

impl Feed {
    fn take(&mut self, entry: Arc<HubEntry>) {
        if !self.cursor.advance(entry.partition, entry.id) {
            return;
        }
        if entry.tenant_id == self.tenant {
            let id = self.cursor.to_string();
            self.ready.push_back((entry, id));
        }
    }

    /// One page of every partition after the cursor; true if any had more.
    async fn catch_up(&mut self) -> Result<bool, earshot_store::StoreError> {
        let mut more = false;
        for p in 0..self.streams.len() {
            let entries = self
                .store
                .read_stream(&self.streams[p], self.cursor.get(p), CATCH_UP_PAGE)
                .await?;
            more |= entries.len() >= CATCH_UP_PAGE;
            for e in &entries {
                self.take(Arc::new(HubEntry::from_stream(p, e)));
            }
        }
        Ok(more)
    }

    async fn next_event(&mut self) -> Option<SseEvent> {
        loop {
            if let Some((e, id)) = self.ready.pop_front() {
                return Some(
                    SseEvent::default()
                        .id(id)
                        .event(e.event_type.clone())
                        .data(e.data.clone()),
                );
            }
            if self.done {
                return None;
            }
            if self.catching_up {
                match self.catch_up().await {
                    Ok(more) => self.catching_up = more,
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
    let streams = state.store.event_streams();
    let resume = resume_point(&headers, q.since.as_deref(), streams.len())?;
    // Subscribe before reading the store, so nothing published in between is missed.
    let rx = state.hub.subscribe();
    let cursor = match resume {
        Some(c) => c,
        None => {
            let mut heads = Vec::with_capacity(streams.len());
            for stream in &streams {
                heads.push(state.store.last_stream_id(stream).await?);
            }
            EventCursor::new(heads)
        }
    };
    let feed = Feed {
        store: state.store.clone(),
        tenant: tenant.as_str().to_owned(),
        rx,
        streams,
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
