//! `POST /v1/sessions` bodies: JSON parsing then validation never panic, and whatever
//! validates has a valid id, language tag and bounded metadata.
#![no_main]

use earshot_core::SessionId;
use earshot_server::body::parse_json;
use earshot_server::validate::{
    CreateSessionBody, MAX_METADATA_ENTRIES, MAX_METADATA_KEY, MAX_METADATA_VALUE,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = parse_json::<CreateSessionBody>(data) else {
        return;
    };
    if let Ok(c) = body.validate() {
        assert!(SessionId::parse(c.session_id.as_str()).is_ok());
        assert!((2..=35).contains(&c.language.len()));
        assert!(c.metadata.len() <= MAX_METADATA_ENTRIES);
        for (k, v) in &c.metadata {
            assert!(!k.is_empty() && k.len() <= MAX_METADATA_KEY);
            assert!(v.len() <= MAX_METADATA_VALUE);
        }
    }
});
