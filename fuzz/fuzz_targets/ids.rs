//! Session and tenant ids from URL paths, bodies and `EARSHOT_API_KEYS`: the parsers
//! never panic and accept exactly the documented patterns (ids become Redis keys).
#![no_main]

use earshot_core::{SessionId, TenantId};
use earshot_server::validate::path_session_id;
use earshot_server::Tenants;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let pattern = |extra: &[u8]| {
        !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
    };
    assert_eq!(SessionId::parse(s).is_ok(), pattern(b"_-"));
    assert_eq!(path_session_id(s).is_ok(), pattern(b"_-"));
    assert_eq!(TenantId::parse(s).is_ok(), pattern(b"_-."));
    if let Ok(id) = SessionId::parse(s) {
        assert_eq!(id.as_str(), s);
    }
    // The key list parser, and a lookup with the same text as the presented key.
    if let Ok(t) = Tenants::parse(s) {
        let _ = t.tenant_for(Some(s));
        let _ = t.tenant_count();
    }
});
