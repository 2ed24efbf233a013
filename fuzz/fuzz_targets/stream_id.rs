//! Stream ids from `Last-Event-ID` and `?since=`: `StreamId::from_str` and the SSE
//! route's `resume_point` never panic; a parsed id prints back to an equal id.
#![no_main]

use std::str::FromStr;

use axum::http::{HeaderMap, HeaderValue};
use earshot_core::StreamId;
use earshot_server::routes::events::resume_point;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First byte: where the value arrives; the rest is the value.
    let Some((&mode, raw)) = data.split_first() else {
        return;
    };
    if let Ok(s) = std::str::from_utf8(raw) {
        if let Ok(id) = StreamId::from_str(s) {
            assert_eq!(id.to_string().parse::<StreamId>(), Ok(id));
            assert!(id.successor() >= id);
        }
    }
    let mut headers = HeaderMap::new();
    let since = if mode & 1 == 0 {
        if let Ok(v) = HeaderValue::from_bytes(raw) {
            headers.insert("last-event-id", v);
        }
        None
    } else {
        std::str::from_utf8(raw).ok()
    };
    let _ = resume_point(&headers, since);
});
