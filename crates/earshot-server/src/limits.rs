//! Per-tenant abuse limits, so one tenant (or one leaked key) cannot
//! take the service from the others:
//!
//! - a request rate per tenant: a token bucket (GCRA, the `governor` crate) refilled at
//!   `tenant_rps` with room for `tenant_burst`; over it, `/v1` requests get **429
//!   `rate_limited`** with `Retry-After`. Off by default (`0`), because a single-tenant
//!   deployment's throughput is bounded by the machine, not by policy, and the segment
//!   benchmark drives ~30k req/s through one tenant;
//! - concurrent live WebSocket audio streams per tenant: over `tenant_max_streams` the
//!   upgrade request gets **429 `too_many_streams`** before upgrading. Counted in the
//!   store, so the limit holds across nodes (see [`crate::tenant_streams`]);
//! - the size of a request head: hyper (behind [`crate::conn::serve`]) already refuses
//!   heads over its read buffer ([`crate::conn::HEAD_BUFFER_BYTES`], 431), more than
//!   100 headers (431) and URIs over 65 534 bytes (414), closing the
//!   connection. [`head_limits`] adds tighter limits in the JSON error shape: total
//!   header bytes (431) and URI length (414).
//!
//! Limits apply after authentication ([`crate::auth`]), so the tenant is known and
//! unauthenticated requests can never spend a tenant's budget.

use std::num::NonZeroU32;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use earshot_core::TenantId;
use earshot_store::DynStore;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::auth::Tenant;
use crate::error::ApiError;
use crate::state::AppState;
use crate::tenant_streams::{self, StreamSlot};

/// Default of `tenant_max_streams`: live audio streams per tenant.
pub const DEFAULT_TENANT_MAX_STREAMS: usize = 16;
/// Default largest request head (all header names and values), bytes.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 32 * 1024;
/// Default longest request target (path and query), bytes.
pub const DEFAULT_MAX_URI_BYTES: usize = 8 * 1024;

/// The limit settings (flags of `earshot serve`). Zero means unlimited everywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Sustained requests per second per tenant on `/v1` routes; 0 = unlimited.
    pub tenant_rps: u32,
    /// Requests a tenant may send at once above the sustained rate; 0 = same as
    /// `tenant_rps` (one second's worth).
    pub tenant_burst: u32,
    /// Live WebSocket audio streams per tenant; 0 = unlimited.
    pub tenant_max_streams: usize,
    /// Largest total size of request header names and values; 0 = hyper's limit only.
    pub max_header_bytes: usize,
    /// Longest request target (path and query); 0 = hyper's limit only.
    pub max_uri_bytes: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            tenant_rps: 0,
            tenant_burst: 0,
            tenant_max_streams: DEFAULT_TENANT_MAX_STREAMS,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_uri_bytes: DEFAULT_MAX_URI_BYTES,
        }
    }
}

/// The live limiters, shared by every request through `AppState`.
pub struct Limits {
    rate: Option<RequestRate>,
    max_streams: usize,
}

impl Limits {
    /// Builds the limiters for `cfg`.
    pub fn new(cfg: &LimitsConfig) -> Self {
        Self {
            rate: RequestRate::new(cfg.tenant_rps, cfg.tenant_burst),
            max_streams: cfg.tenant_max_streams,
        }
    }

    /// Whether a request rate is enforced (else the middleware is not even installed).
    pub fn rate_limited(&self) -> bool {
        self.rate.is_some()
    }

    /// Spends one request of `tenant`'s budget, or says when to retry (429).
    pub fn check_rate(&self, tenant: &TenantId) -> Result<(), ApiError> {
        match &self.rate {
            Some(rate) => rate.check(tenant),
            None => Ok(()),
        }
    }

    /// Takes one of `tenant`'s live stream slots in `store` (every node counts in the
    /// same place), held for `ttl` unless renewed, or refuses with 429.
    pub async fn acquire_stream(
        &self,
        store: &DynStore,
        tenant: &TenantId,
        ttl: Duration,
    ) -> Result<StreamSlot, ApiError> {
        tenant_streams::acquire(store, tenant, self.max_streams, ttl).await
    }
}

/// Requests per second per tenant: one GCRA cell per request, keyed by tenant. The
/// keys are configured tenants only (the check runs after authentication), so the map
/// cannot grow with attacker input.
pub struct RequestRate {
    limiter: DefaultKeyedRateLimiter<TenantId>,
    clock: DefaultClock,
}

impl RequestRate {
    /// `None` when `rps` is 0 (unlimited).
    pub fn new(rps: u32, burst: u32) -> Option<Self> {
        let rps = NonZeroU32::new(rps)?;
        let burst = NonZeroU32::new(burst).unwrap_or(rps);
        let limiter = RateLimiter::keyed(Quota::per_second(rps).allow_burst(burst));
        let clock = limiter.clock().clone();
        Some(Self { limiter, clock })
    }

    /// Spends one cell of `tenant`'s bucket, or answers 429 with the whole seconds until
    /// the next cell (at least 1, as `Retry-After` has second resolution).
    pub fn check(&self, tenant: &TenantId) -> Result<(), ApiError> {
        self.limiter.check_key(tenant).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            metrics::counter!("earshot_tenant_limited_total", "limit" => "rate").increment(1);
            ApiError {
                retry_after: Some(secs.max(1)),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "too many requests for this tenant; retry after the Retry-After seconds",
                )
            }
        })
    }
}

/// Middleware on the `/v1` routes, inside [`crate::auth::authenticate`]: spends one
/// request of the caller's rate budget (429 with `Retry-After` past it).
pub async fn rate_limit(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    req: Request,
    next: Next,
) -> Response {
    if let Err(e) = state.limits.check_rate(&tenant) {
        return e.into_response();
    }
    next.run(req).await
}

/// Middleware on every route: refuses request heads larger than configured (431) and
/// request targets longer than configured (414) before any handler runs. hyper has
/// already bounded what reached memory (see the module docs); this keeps what the
/// service itself processes (ids, queries, keys) small.
pub async fn head_limits(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let cfg = &state.config.limits;
    if let Err(e) = check_head(cfg, &req) {
        return e.into_response();
    }
    next.run(req).await
}

/// The checks of [`head_limits`], apart so they can be tested without a server.
pub fn check_head(cfg: &LimitsConfig, req: &Request) -> Result<(), ApiError> {
    if cfg.max_uri_bytes > 0 {
        let uri_len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
        if uri_len > cfg.max_uri_bytes {
            return Err(ApiError::new(
                StatusCode::URI_TOO_LONG,
                "uri_too_long",
                format!(
                    "the request target is longer than {} bytes",
                    cfg.max_uri_bytes
                ),
            ));
        }
    }
    if cfg.max_header_bytes > 0 {
        let size: usize = req
            .headers()
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len())
            .sum();
        if size > cfg.max_header_bytes {
            return Err(ApiError::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
                format!(
                    "the request headers are larger than {} bytes",
                    cfg.max_header_bytes
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(s: &str) -> TenantId {
        TenantId::parse(s).expect("valid tenant")
    }

    #[test]
    fn rate_is_per_tenant_with_a_burst() {
        let rate = RequestRate::new(1, 3).expect("enabled");
        let (a, b) = (tenant("a"), tenant("b"));
        for _ in 0..3 {
            rate.check(&a).expect("within the burst");
        }
        let e = rate.check(&a).expect_err("burst spent");
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(e.code, "rate_limited");
        assert_eq!(e.retry_after, Some(1));
        rate.check(&b).expect("another tenant has its own bucket");
    }

    #[test]
    fn zero_rate_is_unlimited_and_zero_burst_is_one_second() {
        assert!(RequestRate::new(0, 10).is_none());
        let limits = Limits::new(&LimitsConfig::default());
        assert!(!limits.rate_limited());
        for _ in 0..10_000 {
            limits.check_rate(&tenant("a")).expect("unlimited");
        }
        let rate = RequestRate::new(5, 0).expect("enabled");
        for _ in 0..5 {
            rate.check(&tenant("a")).expect("burst = rps");
        }
        assert!(rate.check(&tenant("a")).is_err());
    }

    #[test]
    fn slow_rates_ask_for_a_longer_wait() {
        let rate = RequestRate::new(1, 1).expect("enabled");
        rate.check(&tenant("a")).expect("first");
        let e = rate.check(&tenant("a")).expect_err("second");
        assert_eq!(e.retry_after, Some(1));
    }

    #[test]
    fn head_limits_check_uri_and_header_sizes() {
        let cfg = LimitsConfig {
            max_header_bytes: 100,
            max_uri_bytes: 20,
            ..LimitsConfig::default()
        };
        let req = |uri: &str, header: usize| {
            Request::builder()
                .uri(uri)
                .header("x-pad", "a".repeat(header))
                .body(axum::body::Body::empty())
                .expect("request")
        };
        assert!(check_head(&cfg, &req("/v1/x?a=b", 10)).is_ok());
        let e = check_head(&cfg, &req(&format!("/v1/{}", "x".repeat(30)), 10)).unwrap_err();
        assert_eq!(e.status, StatusCode::URI_TOO_LONG);
        let e = check_head(&cfg, &req("/v1", 200)).unwrap_err();
        assert_eq!(e.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        let off = LimitsConfig {
            max_header_bytes: 0,
            max_uri_bytes: 0,
            ..LimitsConfig::default()
        };
        assert!(check_head(&off, &req(&format!("/v1/{}", "x".repeat(30)), 200)).is_ok());
    }
}
