//! Authentication, once per request: a middleware on the `/v1` routes finds the caller's
//! tenant from `Authorization: Bearer <key>` (or `?api_key=` on the WebSocket stream
//! route only, for browsers that cannot set headers there) and puts it in the request
//! extensions, where the rate limiter and the handlers' [`Tenant`] extractor read it.
//! Extensions are set only by server code, never by the client.

use std::sync::Arc;

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use earshot_core::TenantId;

use crate::error::ApiError;
use crate::tenants::Tenants;

/// The only route that accepts the key as `?api_key=`.
pub const STREAM_ROUTE: &str = "/v1/sessions/{id}/stream";

/// The caller's tenant, as [`authenticate`] found it.
#[derive(Debug, Clone)]
pub struct Tenant(pub TenantId);

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(axum::http::header::AUTHORIZATION)?;
    let value = value.to_str().ok()?;
    let (scheme, key) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
}

/// The `api_key` query parameter.
fn query_api_key(parts: &Parts) -> Option<String> {
    let q = parts.uri.query()?;
    serde_urlencoded::from_str::<Vec<(String, String)>>(q)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == "api_key")
        .map(|(_, v)| v)
}

/// The key the request presents: the bearer header, or `?api_key=` on [`STREAM_ROUTE`].
fn presented_key(parts: &Parts) -> Option<String> {
    bearer(parts).map(str::to_owned).or_else(|| {
        let on_stream_route = parts
            .extensions
            .get::<MatchedPath>()
            .is_some_and(|p| p.as_str() == STREAM_ROUTE);
        on_stream_route.then(|| query_api_key(parts)).flatten()
    })
}

/// Middleware (a route layer, so the matched route is known): 401 for a missing or
/// unknown key, otherwise the tenant goes into the request extensions.
pub async fn authenticate(
    State(tenants): State<Arc<Tenants>>,
    req: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = req.into_parts();
    let Some(tenant) = tenants.tenant_for(presented_key(&parts).as_deref()) else {
        return ApiError::unauthorized().into_response();
    };
    parts.extensions.insert(Tenant(tenant));
    next.run(Request::from_parts(parts, body)).await
}

impl<S: Send + Sync> FromRequestParts<S> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        // Absent only on a route [`authenticate`] does not cover: refuse, never guess.
        parts
            .extensions
            .get::<Tenant>()
            .cloned()
            .ok_or_else(ApiError::unauthorized)
    }
}
