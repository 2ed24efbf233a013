//! A server that nobody scrapes must not keep every latency sample it ever recorded.
//!
//! The Prometheus exporter buffers raw histogram samples until they are drained into
//! buckets, which it does on a scrape or an explicit upkeep. Found by
//! `scripts/soak.sh`: serve's RSS grew by ~25 bytes per request for as long as
//! `/metrics` was not read. This test binary counts live heap bytes with its own global
//! allocator (one test per binary, so nothing else allocates concurrently).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use earshot_core::config::StoreConfig;
use earshot_server::{Server, ServerConfig, SpeechStatus, Tenants};
use earshot_store::MemoryStore;
use tokio_util::sync::CancellationToken;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: defers every operation to the system allocator; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unscraped_latency_histograms_are_drained_in_the_background() {
    const SAMPLES: usize = 2_000_000; // ~32 MB of raw samples if kept
    const SLACK: isize = 1 << 20;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let store = Arc::new(MemoryStore::new(StoreConfig::default()));
    let config = ServerConfig {
        stats_interval: Duration::from_millis(200),
        ..ServerConfig::default()
    };
    let shutdown = CancellationToken::new();
    let _server = Server::start(
        listener,
        store,
        Tenants::open(),
        config,
        SpeechStatus::Disabled,
        shutdown.clone(),
    )
    .await
    .unwrap();

    // What the HTTP layer records for every request; /metrics is never requested.
    let h = metrics::histogram!("earshot_http_request_duration_seconds", "route" => "/upkeep");
    h.record(0.001);
    let base = live();
    let mut peak = 0;
    for _ in 0..SAMPLES / 10_000 {
        for _ in 0..10_000 {
            h.record(0.001);
        }
        peak = peak.max(live() - base);
    }
    assert!(
        peak > 2 * SLACK,
        "samples are buffered between drains ({peak} bytes at most): otherwise this test proves nothing"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while live() - base > SLACK {
        assert!(
            Instant::now() < deadline,
            "histogram samples never drained: {} bytes still held",
            live() - base
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
}
