//! Browsers as a threat: without API keys earshot listens on loopback, and any web page
//! the user visits can send requests there. This guard refuses what only a foreign page
//! would send, before authentication:
//!
//! - a `Host` that is not a loopback name, the listen address or a configured name
//!   (**403 `host_not_allowed`**): a page on `evil.example` whose name was re-pointed at
//!   127.0.0.1 (DNS rebinding) sends `Host: evil.example`, and is then same-origin with
//!   us in the browser's eyes, so the `Origin` check alone would not stop it;
//! - a state-changing request (any method but GET, HEAD, OPTIONS) or a WebSocket upgrade
//!   whose `Origin` is neither the server's own (same scheme-less authority as `Host`)
//!   nor a configured one (**403 `origin_not_allowed`**). A form or `text/plain` POST and a
//!   WebSocket need no CORS preflight, so the browser would send them; reads need CORS,
//!   which earshot never grants, so GETs are left alone.
//!
//! Requests without `Origin` (curl, SDKs, servers) are not browsers' cross-site requests
//! and pass. With API keys both checks are off unless configured: a bearer key is not
//! sent by the browser on its own, so a foreign page cannot use it, and proxies in front
//! of a keyed server often rewrite `Host`. Configuring allowed origins (or hosts) turns
//! the same checks on in keyed mode.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

/// Allowed origins and host names (flags of `earshot serve`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginConfig {
    /// Origins (`https://app.example.com`) allowed besides the server's own; `*` allows any.
    pub allowed_origins: Vec<String>,
    /// Host names (`earshot.internal`, port ignored) accepted besides loopback names
    /// and the listen address.
    pub allowed_hosts: Vec<String>,
}

/// The checks in force for one server.
#[derive(Debug, Clone)]
pub struct OriginPolicy {
    check_hosts: bool,
    check_origins: bool,
    listen: SocketAddr,
    origins: Vec<String>,
    any_origin: bool,
    hosts: Vec<String>,
}

impl OriginPolicy {
    /// The policy for a server on `listen`; `open` is true without API keys.
    pub fn new(cfg: &OriginConfig, open: bool, listen: SocketAddr) -> Self {
        let origins: Vec<String> = cfg
            .allowed_origins
            .iter()
            .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
            .filter(|o| !o.is_empty())
            .collect();
        let hosts: Vec<String> = cfg
            .allowed_hosts
            .iter()
            .map(|h| host_name(h.trim()).to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        Self {
            check_hosts: open || !hosts.is_empty(),
            check_origins: open || !origins.is_empty(),
            any_origin: origins.iter().any(|o| o == "*"),
            listen,
            origins,
            hosts,
        }
    }

    /// Refuses the request, or lets it through.
    pub fn check(&self, req: &Request) -> Result<(), ApiError> {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()));
        if self.check_hosts {
            if let Some(host) = host {
                if !self.host_allowed(host) {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        "host_not_allowed",
                        "this server does not answer to that Host name; add it to \
                         EARSHOT_ALLOWED_HOSTS if it is yours",
                    ));
                }
            }
        }
        if self.check_origins && (state_changing(req.method()) || is_websocket(req)) {
            if let Some(origin) = req.headers().get(header::ORIGIN) {
                let origin = origin.to_str().unwrap_or("null");
                if !self.origin_allowed(origin, host) {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        "origin_not_allowed",
                        "cross-site requests are refused; add the page's origin to \
                         EARSHOT_ALLOWED_ORIGINS to allow it",
                    ));
                }
            }
        }
        Ok(())
    }

    fn host_allowed(&self, host: &str) -> bool {
        let name = host_name(host).to_ascii_lowercase();
        if name == "localhost" {
            return true;
        }
        if let Ok(ip) = name.parse::<IpAddr>() {
            if ip.is_loopback() || ip == self.listen.ip() {
                return true;
            }
        }
        self.hosts.contains(&name)
    }

    fn origin_allowed(&self, origin: &str, host: Option<&str>) -> bool {
        if self.any_origin {
            return true;
        }
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        if self.origins.contains(&origin) {
            return true;
        }
        // Same origin: the page was served by this authority (the scheme is the proxy's).
        match (origin.split_once("://"), host) {
            (Some((scheme, authority)), Some(host)) => {
                matches!(scheme, "http" | "https") && authority.eq_ignore_ascii_case(host)
            }
            _ => false,
        }
    }
}

fn state_changing(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn is_websocket(req: &Request) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// `name`, `name:port`, `[v6]` or `[v6]:port` → the name or address alone.
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        // A bare IPv6 address has more than one colon and no port.
        Some((name, _)) if !name.contains(':') => name,
        _ => host,
    }
}

/// Middleware applying the server's [`OriginPolicy`].
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Err(e) = state.origins.check(&req) {
        metrics::counter!("earshot_cross_site_refused_total", "code" => e.code).increment(1);
        return e.into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: Method, host: &str, origin: Option<&str>) -> Request {
        let mut b = Request::builder().method(method).uri("/v1/sessions");
        b = b.header(header::HOST, host);
        if let Some(o) = origin {
            b = b.header(header::ORIGIN, o);
        }
        b.body(axum::body::Body::empty()).unwrap()
    }

    fn open() -> OriginPolicy {
        OriginPolicy::new(
            &OriginConfig::default(),
            true,
            "127.0.0.1:8080".parse().unwrap(),
        )
    }

    #[test]
    fn host_names_are_split_from_ports() {
        assert_eq!(host_name("localhost:8080"), "localhost");
        assert_eq!(host_name("[::1]:8080"), "::1");
        assert_eq!(host_name("[::1]"), "::1");
        assert_eq!(host_name("::1"), "::1");
        assert_eq!(host_name("example.com"), "example.com");
    }

    #[test]
    fn open_mode_takes_loopback_hosts_and_refuses_others() {
        let p = open();
        for host in [
            "127.0.0.1:8080",
            "localhost:8080",
            "[::1]:8080",
            "LOCALHOST",
        ] {
            assert!(p.check(&req(Method::GET, host, None)).is_ok(), "{host}");
        }
        let e = p
            .check(&req(Method::GET, "evil.example:8080", None))
            .unwrap_err();
        assert_eq!(
            (e.status, e.code),
            (StatusCode::FORBIDDEN, "host_not_allowed")
        );
    }

    #[test]
    fn foreign_origins_are_refused_on_writes_only() {
        let p = open();
        let host = "127.0.0.1:8080";
        let e = p
            .check(&req(Method::POST, host, Some("https://evil.example")))
            .unwrap_err();
        assert_eq!(e.code, "origin_not_allowed");
        assert!(p.check(&req(Method::POST, host, Some("null"))).is_err());
        assert!(p
            .check(&req(Method::POST, host, Some("http://127.0.0.1:8080")))
            .is_ok());
        assert!(p.check(&req(Method::POST, host, None)).is_ok());
        assert!(p
            .check(&req(Method::GET, host, Some("https://evil.example")))
            .is_ok());
    }

    #[test]
    fn keyed_mode_checks_only_what_is_configured() {
        let listen = "0.0.0.0:8080".parse().unwrap();
        let none = OriginPolicy::new(&OriginConfig::default(), false, listen);
        assert!(none
            .check(&req(Method::POST, "api.example", Some("https://x.example")))
            .is_ok());
        let cfg = OriginConfig {
            allowed_origins: vec!["https://app.example/".into()],
            allowed_hosts: vec![],
        };
        let some = OriginPolicy::new(&cfg, false, listen);
        assert!(some
            .check(&req(
                Method::POST,
                "api.example",
                Some("https://APP.example")
            ))
            .is_ok());
        assert!(some
            .check(&req(Method::POST, "api.example", Some("https://x.example")))
            .is_err());
        assert!(
            some.check(&req(Method::POST, "anything.example", None))
                .is_ok(),
            "hosts are not checked unless configured"
        );
    }
}
