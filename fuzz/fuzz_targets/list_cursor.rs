//! The `GET /v1/sessions` cursor (opaque hex from the client) through the public
//! `MemoryStore::list_sessions` (the decoder itself is crate-private and shared by both
//! stores): a garbage cursor is `BadCursor`, never a panic.
#![no_main]

use std::sync::{Arc, OnceLock};

use earshot_core::config::StoreConfig;
use earshot_core::{NewSession, SessionId, TenantId};
use earshot_store::{MemoryStore, Store};
use libfuzzer_sys::fuzz_target;

struct Fixture {
    rt: tokio::runtime::Runtime,
    store: Arc<MemoryStore>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let store = Arc::new(MemoryStore::new(StoreConfig::default()));
        rt.block_on(async {
            for i in 0..5 {
                store
                    .create_session(NewSession {
                        session_id: SessionId::parse(&format!("s{i}")).expect("id"),
                        tenant_id: TenantId::parse("t").expect("tenant"),
                        language: "en".into(),
                        metadata: Default::default(),
                    })
                    .await
                    .expect("create");
            }
        });
        Fixture { rt, store }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(cursor) = std::str::from_utf8(data) else {
        return;
    };
    let f = fixture();
    let page =
        f.rt.block_on(f.store.list_sessions("t", 2, Some(cursor)))
            .expect("the memory store does not fail");
    if let Ok(page) = page {
        assert!(page.sessions.len() <= 2);
    }
});
