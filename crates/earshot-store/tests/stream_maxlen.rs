//! `EARSHOT_STREAM_MAXLEN=0` means "no length cap" on both backends (it used to empty
//! the embedded store's stream on every write while Redis kept about one node).

mod support;

use earshot_core::config::StoreConfig;
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
    // On a cluster the events are spread over the partitions' streams.
    let streams = h.store.event_streams();
    h.store
        .add_entry(&streams[0], &fields(&[("k", "v")]))
        .await
        .unwrap();
    let mut total = 0;
    for stream in &streams {
        total += h.store.stream_len(stream).await.unwrap();
    }
    assert_eq!(total, 301);
}
