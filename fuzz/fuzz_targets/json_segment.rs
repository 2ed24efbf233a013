//! `POST /v1/sessions/{id}/segments` bodies: JSON parsing then validation never panic,
//! and whatever validates respects the documented bounds.
#![no_main]

use earshot_server::body::parse_json;
use earshot_server::validate::{SegmentBody, MAX_SEGMENT_TEXT};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = parse_json::<SegmentBody>(data) else {
        return;
    };
    if let Ok(seg) = body.validate() {
        assert!(!seg.text.is_empty() && seg.text.len() <= MAX_SEGMENT_TEXT);
        assert_eq!(seg.text.trim(), seg.text);
        assert!(seg.start_ms.is_none_or(|v| v >= 0));
        assert!(seg.end_ms.is_none_or(|v| v >= 0));
        if let (Some(a), Some(b)) = (seg.start_ms, seg.end_ms) {
            assert!(a <= b);
        }
    }
});
