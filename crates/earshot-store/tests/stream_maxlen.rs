//! `EARSHOT_STREAM_MAXLEN=0` means "no length cap" on both backends (it used to empty
//! the embedded store's stream on every write while Redis kept about one node).

mod support;

use earshot_core::config::StoreConfig;
use earshot_core::keys::EVENT_STREAM;
use support::*;

conformance!(maxlen_zero_keeps_every_event);

async fn maxlen_zero_keeps_every_event(kind: Kind) {
    let h = Harness::with_config(
        kind,
        StoreConfig {
            stream_maxlen: 0,
            ..StoreConfig::default()
        },
    )
    .await;
    for i in 0..300 {
        create(&h.store, "t", &format!("s{i}")).await;
    }
    h.store
        .add_entry(EVENT_STREAM, &fields(&[("k", "v")]))
        .await
        .unwrap();
    assert_eq!(h.store.stream_len(EVENT_STREAM).await.unwrap(), 301);
}
