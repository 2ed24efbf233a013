//! The router: every route of the HTTP API, authentication (see [`crate::auth`]), the
//! body limit and body deadline (see [`crate::conn`]), per-tenant limits (see [`crate::limits`]), the cross-site guard
//! (see [`crate::origin`]), panic catching and metrics; the web app at `/` (see [`crate::web`]).

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;

use crate::error::ApiError;
use crate::routes::{events, health, models, openai, sessions, stream};
use crate::state::AppState;
use crate::{auth, limits};

/// Builds the application.
pub fn router(state: AppState) -> Router {
    let max_body = state.config.max_json_body;
    let max_upload = state.config.max_upload_bytes;
    let v1 = Router::new()
        .route("/v1/sessions", post(sessions::create).get(sessions::list))
        .route(
            "/v1/sessions/{id}",
            get(sessions::get).delete(sessions::delete),
        )
        .route("/v1/sessions/{id}/segments", post(sessions::append_segment))
        .route("/v1/sessions/{id}/complete", post(sessions::complete))
        .route("/v1/sessions/{id}/transcript", get(sessions::transcript))
        .route(auth::STREAM_ROUTE, get(stream::stream))
        .route("/v1/events", get(events::events))
        .route("/v1/models", get(models::list))
        .route("/v1/models/{id}", get(models::get))
        .layer(DefaultBodyLimit::max(max_body));
    let uploads = Router::new()
        .route("/v1/audio/transcriptions", post(openai::transcriptions))
        .route("/v1/audio/translations", post(openai::translations))
        .layer(DefaultBodyLimit::max(max_upload));
    let (v1, uploads) = if state.limits.rate_limited() {
        let rate = || axum::middleware::from_fn_with_state(state.clone(), limits::rate_limit);
        (v1.route_layer(rate()), uploads.route_layer(rate()))
    } else {
        (v1, uploads)
    };
    // Added last, so it runs first: the rate limiter and the handlers read its tenant.
    let authenticate =
        || axum::middleware::from_fn_with_state(state.tenants.clone(), auth::authenticate);
    let (v1, uploads) = (
        v1.route_layer(authenticate()),
        uploads.route_layer(authenticate()),
    );
    Router::new()
        .merge(v1)
        .merge(uploads)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .merge(crate::web::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::origin::guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limits::head_limits,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::conn::body_deadline,
        ))
        .layer(axum::middleware::from_fn(crate::metrics::track_http))
        .layer(CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                use axum::response::IntoResponse;
                tracing::error!("a request handler panicked");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
                .into_response()
            },
        ))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept that method",
    )
}
