//! Delivery counts as a worker relies on them to dead-letter poison events, on both
//! backends: re-reading one's own pending entries counts (and reports) a delivery,
//! walks the PEL by cursor and hands back trimmed entries so they can be acknowledged;
//! a released entry is reclaimable at once with its count restored.

mod support;

use std::time::Duration;

use earshot_core::StreamId;
use earshot_store::*;
use support::*;

conformance!(
    own_pending_reports_delivery_counts_and_walks_by_cursor,
    own_pending_hands_back_trimmed_entries_without_fields,
    released_entries_are_reclaimable_at_once_without_a_spent_delivery,
    release_leaves_other_consumers_entries_alone,
);

async fn add(h: &Harness, n: usize) -> Vec<StreamId> {
    h.store
        .create_group("s", "g", GroupStart::New)
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            h.store
                .add_entry("s", &fields(&[("i", &i.to_string())]))
                .await
                .unwrap(),
        );
    }
    ids
}

async fn own_pending_reports_delivery_counts_and_walks_by_cursor(kind: Kind) {
    let h = Harness::new(kind).await;
    let ids = add(&h, 3).await;
    h.store
        .read_group("s", "g", "c", 10, Duration::from_millis(10))
        .await
        .unwrap();
    let first = h
        .store
        .read_own_pending("s", "g", "c", StreamId::ZERO, 2)
        .await
        .unwrap();
    let got: Vec<_> = first
        .iter()
        .map(|c| (c.entry.id, c.delivery_count))
        .collect();
    assert_eq!(
        got,
        [(ids[0], 2), (ids[1], 2)],
        "the re-read is the second delivery"
    );
    assert_eq!(first[0].entry.field("i"), Some("0"));
    let rest = h
        .store
        .read_own_pending("s", "g", "c", ids[1], 10)
        .await
        .unwrap();
    let got: Vec<_> = rest
        .iter()
        .map(|c| (c.entry.id, c.delivery_count))
        .collect();
    assert_eq!(got, [(ids[2], 2)], "the cursor skips what was already read");
    let again = h
        .store
        .read_own_pending("s", "g", "c", StreamId::ZERO, 10)
        .await
        .unwrap();
    assert!(again.iter().all(|c| c.delivery_count == 3), "{again:?}");
    assert!(h
        .store
        .read_own_pending("s", "g", "c", ids[2], 10)
        .await
        .unwrap()
        .is_empty());
}

async fn own_pending_hands_back_trimmed_entries_without_fields(kind: Kind) {
    let h = Harness::new(kind).await;
    let ids = add(&h, 3).await;
    h.store
        .read_group("s", "g", "c", 10, Duration::from_millis(10))
        .await
        .unwrap();
    h.store.trim_stream_before("s", ids[1]).await.unwrap();
    let mine = h
        .store
        .read_own_pending("s", "g", "c", StreamId::ZERO, 10)
        .await
        .unwrap();
    let got: Vec<_> = mine.iter().map(|c| c.entry.id).collect();
    assert_eq!(got, ids, "the trimmed one is still pending and is reported");
    assert!(mine[0].entry.fields.is_empty(), "{mine:?}");
    assert!(!mine[1].entry.fields.is_empty());
    assert_eq!(h.store.ack("s", "g", &[ids[0]]).await.unwrap(), 1);
}

async fn released_entries_are_reclaimable_at_once_without_a_spent_delivery(kind: Kind) {
    let h = Harness::new(kind).await;
    let ids = add(&h, 3).await;
    h.store
        .read_group("s", "g", "slow", 10, Duration::from_millis(10))
        .await
        .unwrap();
    // Just read: not reclaimable for an hour.
    let none = h
        .store
        .autoclaim(
            "s",
            "g",
            "peer",
            Duration::from_secs(3600),
            StreamId::ZERO,
            10,
        )
        .await
        .unwrap();
    assert!(none.claimed.is_empty());
    // The slow consumer attempted only the first; it hands the other two back with the
    // count they had before its read.
    h.store
        .release("s", "g", "slow", &[(ids[1], 0), (ids[2], 0)])
        .await
        .unwrap();
    let claim = h
        .store
        .autoclaim(
            "s",
            "g",
            "peer",
            Duration::from_secs(3600),
            StreamId::ZERO,
            10,
        )
        .await
        .unwrap();
    let got: Vec<_> = claim
        .claimed
        .iter()
        .map(|c| (c.entry.id, c.delivery_count))
        .collect();
    assert_eq!(got, [(ids[1], 1), (ids[2], 1)], "first real delivery");
    assert_eq!(claim.claimed[0].entry.field("i"), Some("1"));
}

async fn release_leaves_other_consumers_entries_alone(kind: Kind) {
    let h = Harness::new(kind).await;
    let ids = add(&h, 1).await;
    h.store
        .read_group("s", "g", "owner", 10, Duration::from_millis(10))
        .await
        .unwrap();
    h.store
        .release("s", "g", "intruder", &[(ids[0], 0)])
        .await
        .unwrap();
    let claim = h
        .store
        .autoclaim(
            "s",
            "g",
            "peer",
            Duration::from_secs(3600),
            StreamId::ZERO,
            10,
        )
        .await
        .unwrap();
    assert!(claim.claimed.is_empty(), "{claim:?}");
    let mine = h
        .store
        .read_own_pending("s", "g", "owner", StreamId::ZERO, 10)
        .await
        .unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].delivery_count, 2);
}
