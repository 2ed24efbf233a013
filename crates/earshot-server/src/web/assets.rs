//! The embedded files of the web app: one table, so the router, the tests and the page
//! agree on what exists.

/// One embedded file.
pub struct Asset {
    /// Name under [`super::ASSET_PREFIX`].
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_bytes!(concat!("../../web/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// The page itself, served at `/`.
pub const INDEX: &Asset = &asset!("index.html", "text/html; charset=utf-8");

/// Everything under [`super::ASSET_PREFIX`].
pub const ALL: &[Asset] = &[
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("icon.svg", "image/svg+xml"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("keys.js", JS),
    asset!("live.js", JS),
    asset!("kept-audio.js", JS),
    asset!("mic.js", JS),
    asset!("capture-worklet.js", JS),
    asset!("captions.js", JS),
    asset!("history.js", JS),
    asset!("upload.js", JS),
    asset!("events.js", JS),
    asset!("format.js", JS),
];

/// The asset called `name`, if embedded (names are matched exactly, so no path tricks).
pub fn find(name: &str) -> Option<&'static Asset> {
    ALL.iter().find(|a| a.name == name)
}
