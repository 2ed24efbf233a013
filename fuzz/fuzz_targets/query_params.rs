//! Query strings of `GET /v1/sessions` (`ListQuery`) and the WebSocket stream route
//! (`StreamQuery`), decoded as axum's `Query` does (serde_urlencoded), then validated;
//! `StreamDecoder::from_names` on the declared encoding and rate; and the `?api_key=`
//! lookup of the auth layer.
#![no_main]

use axum::http::Request;
use earshot_asr::StreamDecoder;
use earshot_server::auth::query_api_key;
use earshot_server::routes::stream::StreamQuery;
use earshot_server::validate::ListQuery;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(q) = serde_urlencoded::from_bytes::<ListQuery>(data) {
        if let Ok(n) = q.limit() {
            assert!((1..=200).contains(&n));
        }
    }
    if let Ok(q) = serde_urlencoded::from_bytes::<StreamQuery>(data) {
        if let Ok(p) = q.validate() {
            assert!((8_000..=48_000).contains(&p.sample_rate));
        }
        // The audio layer's own name parsing (what `earshot transcribe`/tests use).
        if let (Some(enc), Some(rate)) = (q.encoding.as_deref(), q.sample_rate.as_deref()) {
            if let Ok(rate) = rate.parse::<u32>() {
                let _ = StreamDecoder::from_names(enc, rate);
            }
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(req) = Request::builder()
            .uri(format!("/v1/sessions/x/stream?{s}"))
            .body(())
        {
            let (parts, ()) = req.into_parts();
            let _ = query_api_key(&parts);
        }
    }
});
