//! The hot write path, `Store::append_segment` (one atomic write: chunk, segment JSON,
//! seq, TTL refresh, event), on both backends: one caller in a loop, and 64 concurrent
//! tasks each appending to its own session (many live streams at once). Redis runs on a
//! throwaway `redis-server` started by the bench.
//!
//! `cargo bench -p earshot-store --bench append` (add `-- --quick` for a short run).

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use earshot_core::config::StoreConfig;
use earshot_core::{NewSegment, NewSession, SessionId, TenantId};
use earshot_store::{DynStore, MemoryStore, RedisStore};
use earshot_testsupport::RedisServer;

const TASKS: u64 = 64;

fn segment() -> NewSegment {
    NewSegment {
        text: "the quick brown fox jumps over the lazy dog".into(),
        start_ms: Some(1_000),
        end_ms: Some(2_500),
        words: Vec::new(),
    }
}

async fn make_session(store: &DynStore, id: &str) {
    store
        .create_session(NewSession {
            session_id: SessionId::parse(id).expect("valid id"),
            tenant_id: TenantId::parse("bench").expect("valid tenant"),
            language: "en-US".into(),
            metadata: Default::default(),
        })
        .await
        .expect("create session");
}

fn bench_backend(c: &mut Criterion, rt: &tokio::runtime::Runtime, name: &str, store: DynStore) {
    rt.block_on(async {
        make_session(&store, "seq").await;
        for t in 0..TASKS {
            make_session(&store, &format!("par{t}")).await;
        }
    });
    let mut group = c.benchmark_group(format!("append_segment/{name}"));
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));

    let seg = segment();
    group.bench_function("sequential", |b| {
        b.to_async(rt).iter(|| async {
            store
                .append_segment("bench", "seq", &seg)
                .await
                .expect("append")
        })
    });

    group.bench_function("64_concurrent_sessions", |b| {
        b.to_async(rt).iter_custom(|iters| {
            let store = store.clone();
            async move {
                let per_task = iters.div_ceil(TASKS);
                let start = Instant::now();
                let tasks: Vec<_> = (0..TASKS)
                    .map(|t| {
                        let store = store.clone();
                        tokio::spawn(async move {
                            let id = format!("par{t}");
                            let seg = segment();
                            for _ in 0..per_task {
                                store
                                    .append_segment("bench", &id, &seg)
                                    .await
                                    .expect("append");
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.expect("task");
                }
                // Time per append, as if `iters` appends had been made.
                start
                    .elapsed()
                    .mul_f64(iters as f64 / (per_task * TASKS) as f64)
            }
        })
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let memory: DynStore = Arc::new(MemoryStore::new(StoreConfig::default()));
    bench_backend(c, &rt, "memory", memory);

    let server = RedisServer::start();
    let redis: DynStore = rt.block_on(async {
        Arc::new(
            RedisStore::connect(&server.url(), StoreConfig::default())
                .await
                .expect("connect"),
        )
    });
    bench_backend(c, &rt, "redis", redis);
    drop(server);
}

criterion_group!(append, benches);
criterion_main!(append);
