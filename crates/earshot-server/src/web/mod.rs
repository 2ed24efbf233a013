//! `GET /` and its assets: the live-captions web app, compiled into the
//! binary so a user needs nothing but `earshot serve` and a browser. The app is plain ES
//! modules and one stylesheet under `crates/earshot-server/web/`; it talks only to the
//! public API, same origin, so it needs no server code beyond serving these files.
//!
//! Every response carries a strict Content-Security-Policy (own scripts, styles and
//! connections only): the page holds an API key, so nothing foreign may run in it.

mod assets;

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::error::ApiError;
use crate::state::AppState;

/// Where the assets are served from (the page links them with this prefix).
pub const ASSET_PREFIX: &str = "/app/";

/// Same-origin everything; `'self'` in `connect-src` also covers the page's own `ws:`/`wss:`
/// origin. `blob:` lets a transcript download be saved from memory.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; media-src 'self' blob:; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The web app's routes (no authentication: the page asks for a key itself).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/app/server.json", get(server_info))
        .route("/app/{*file}", get(asset))
}

/// What the page needs to know before its first API call: whether to ask for a key. (A
/// probe would tell too, but a refused probe is an error in every visitor's console.)
async fn server_info(State(state): State<AppState>) -> Response {
    let mut resp = axum::Json(serde_json::json!({
        "keys_required": !state.tenants.is_open(),
    }))
    .into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

async fn index() -> Response {
    serve(assets::INDEX)
}

async fn asset(Path(file): Path<String>) -> Response {
    match assets::find(&file) {
        Some(a) => serve(a),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such file in the web app",
        )
        .into_response(),
    }
}

fn serve(a: &assets::Asset) -> Response {
    let mut resp = (StatusCode::OK, a.body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(a.content_type),
    );
    // Small files, changed with every release: revalidate rather than risk a stale app.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_the_page_links_is_embedded() {
        let html = std::str::from_utf8(assets::INDEX.body).unwrap();
        let mut linked = 0;
        for part in html.split(ASSET_PREFIX).skip(1) {
            let name = part.split('"').next().unwrap();
            assert!(
                assets::find(name).is_some(),
                "{name} is linked but not embedded"
            );
            linked += 1;
        }
        assert!(linked >= 2, "the page links its script and stylesheet");
    }

    #[test]
    fn every_module_import_is_embedded() {
        for a in assets::ALL {
            if !a.content_type.starts_with("text/javascript") {
                continue;
            }
            let src = std::str::from_utf8(a.body).unwrap();
            for line in src.lines().filter(|l| l.starts_with("import ")) {
                let spec = line.rsplit(['"', '\'']).nth(1).unwrap();
                let name = spec.trim_start_matches("./");
                assert!(
                    assets::find(name).is_some(),
                    "{} imports {spec}, which is not embedded",
                    a.name
                );
            }
        }
    }

    #[test]
    fn unknown_and_traversing_names_are_not_found() {
        assert!(assets::find("../Cargo.toml").is_none());
        assert!(assets::find("nope.js").is_none());
        assert!(assets::find("").is_none());
    }
}
