//! `GET /v1/events`: Server-Sent Events of the caller's tenant, from every event stream
//! (every partition on a cluster). `Last-Event-ID` or `?since=` resumes after that
//! event (the id format is `EventCursor`'s): missed entries are read from the store
//! first, then the live feed continues without gaps or repeats. Where that is no
//! longer possible (the entries after the resume point, or after where a slow
//! subscriber fell behind, were trimmed from a stream) the client gets an explicit
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
use earshot_core::StreamId;
use earshot_store::{DynStore, StoreError};
use futures::stream::{self, Stream, StreamExt};
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
/// The SSE event type of the missed-events signal.
pub const GAP_EVENT: &str = "gap";

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
    /// True until the start of a catch-up checked that the streams still hold what
    /// follows `cursor`.
    check_gap: bool,
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
            if self.catching_up && self.check_gap {
                self.check_gap = false;
                match self.trimmed_past_cursor().await {
                    Ok(Some(oldest)) => return Some(self.gap(oldest)),
                    Ok(None) => {}
                    Err(e) => return Some(self.store_failed(&e)),
                }
            }
            if self.catching_up {
                match self.catch_up().await {
                    Ok(more) => self.catching_up = more,
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

    /// The first partition whose oldest entry still stored is newer than the cursor's
    /// position in it, with that entry: everything between them was trimmed before this
    /// subscriber got it (or nothing was there, when the position itself was the last
    /// entry trimmed: the store cannot tell these apart, so the signal errs on the side
    /// of saying so).
    async fn trimmed_past_cursor(&self) -> Result<Option<(usize, StreamId)>, StoreError> {
        for (p, stream) in self.streams.iter().enumerate() {
            let at = self.cursor.get(p);
            if at == StreamId::ZERO {
                continue; // "from the beginning": whatever is retained is everything
            }
            let oldest = self.store.read_stream(stream, StreamId::ZERO, 1).await?;
            if let Some(oldest) = oldest.first().map(|e| e.id).filter(|o| *o > at) {
                return Ok(Some((p, oldest)));
            }
        }
        Ok(None)
    }

    /// The `gap` event: `after` is the last id the client had, `resumes_at` the oldest
    /// entry still stored (of `partition`, on a cluster). Its `id:` is `after`, so a
    /// reconnect does not skip further.
    fn gap(&self, (partition, oldest): (usize, StreamId)) -> SseEvent {
        tracing::info!(after = %self.cursor, partition, resumes_at = %oldest, "sse subscriber missed trimmed events");
        let mut data = serde_json::json!({
            "after": self.cursor.to_string(),
            "resumes_at": oldest.to_string(),
            "message": "events after `after` and before `resumes_at` were trimmed from the stream before they could be sent; some may be missing",
        });
        if self.streams.len() > 1 {
            data["partition"] = partition.into();
        }
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
    let streams = state.store.event_streams();
    let resume = resume_point(&headers, q.since.as_deref(), streams.len())?;
    // Subscribe before reading the store, so nothing published in between is missed.
    let rx = state.hub.subscribe();
    let check_gap = resume.is_some();
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
        check_gap,
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
