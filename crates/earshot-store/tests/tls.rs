//! `rediss://` and `rediss+cluster://` against real TLS-enabled `redis-server`s whose
//! certificates a throwaway CA signed: a segment written over TLS reads back, the
//! server's certificate is really checked (without the CA the connection fails), and a
//! server that demands client certificates accepts the configured one.

use std::time::Duration;

use earshot_core::config::{RedisTls, StoreConfig};
use earshot_core::{NewSegment, NewSession, SessionId, TenantId};
use earshot_store::{AppendOutcome, CreateOutcome, RedisStore, Store};
use earshot_testsupport::{RedisCluster, RedisServer, TestCa};

fn config(tls: RedisTls) -> StoreConfig {
    StoreConfig {
        redis_tls: tls,
        command_timeout: Duration::from_secs(5),
        ..StoreConfig::default()
    }
}

fn trusting(ca: &TestCa) -> RedisTls {
    RedisTls {
        ca_file: Some(ca.ca_cert()),
        ..RedisTls::default()
    }
}

/// Creates `id`, appends one segment and reads the transcript back.
async fn write_and_read(store: &RedisStore, id: &str) {
    let created = store
        .create_session(NewSession {
            session_id: SessionId::parse(id).unwrap(),
            tenant_id: TenantId::parse("acme").unwrap(),
            language: "en-US".into(),
            metadata: Default::default(),
        })
        .await
        .unwrap();
    assert!(matches!(created, CreateOutcome::Created(_)));
    let seg = NewSegment {
        text: format!("over tls {id}"),
        start_ms: Some(0),
        end_ms: Some(900),
        words: Vec::new(),
    };
    let appended = store.append_segment("acme", id, &seg).await.unwrap();
    assert!(matches!(appended, AppendOutcome::Appended { seq: 0, .. }));
    let t = store.transcript("acme", id).await.unwrap().expect("stored");
    assert_eq!(t.text, format!("over tls {id}"));
    assert_eq!(t.segments[0].end_ms, Some(900));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_over_tls_with_a_private_ca() {
    let ca = TestCa::new();
    let server = RedisServer::builder().tls(&ca).start();
    let store = RedisStore::connect(&server.tls_url(), config(trusting(&ca)))
        .await
        .unwrap();
    store
        .ping()
        .await
        .expect("TLS handshake with the private CA");
    write_and_read(&store, "tls-1").await;

    // The certificate is checked: the built-in roots do not know this CA.
    let untrusting = RedisStore::connect(&server.tls_url(), config(RedisTls::default()))
        .await
        .unwrap();
    let e = untrusting.ping().await.expect_err("unknown CA refused");
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_for_servers_that_require_them() {
    let ca = TestCa::new();
    let server = RedisServer::builder()
        .tls(&ca)
        .arg("--tls-auth-clients")
        .arg("yes")
        .start();
    let anonymous = RedisStore::connect(&server.tls_url(), config(trusting(&ca)))
        .await
        .unwrap();
    assert!(
        anonymous.ping().await.is_err(),
        "no client certificate, no entry"
    );
    let with_cert = RedisTls {
        client_cert: Some(ca.client_cert()),
        client_key: Some(ca.client_key()),
        ..trusting(&ca)
    };
    let store = RedisStore::connect(&server.tls_url(), config(with_cert))
        .await
        .unwrap();
    write_and_read(&store, "mtls-1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_over_tls_with_a_private_ca() {
    let ca = TestCa::new();
    let cluster = RedisCluster::start_tls(&ca);
    let store = RedisStore::connect(&cluster.tls_url(), config(trusting(&ca)))
        .await
        .expect("cluster over TLS");
    // Sessions over many partitions, so over the primaries, each reached over TLS.
    for i in 0..12 {
        write_and_read(&store, &format!("tls-c{i}")).await;
    }
    let untrusting = RedisStore::connect(&cluster.tls_url(), config(RedisTls::default())).await;
    assert!(untrusting.is_err(), "unknown CA refused at connect");
}
