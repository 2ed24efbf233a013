//! WebSocket text frames from the client: `ClientMessage::parse` never panics and never
//! accepts an endpointing value outside the documented range.
#![no_main]

use earshot_server::ws_protocol::{ClientMessage, ENDPOINTING_RANGE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ClientMessage::Configure {
        endpointing_ms: Some(ms),
        ..
    }) = ClientMessage::parse(text)
    {
        assert!((ENDPOINTING_RANGE.0..=ENDPOINTING_RANGE.1).contains(&ms));
    }
});
