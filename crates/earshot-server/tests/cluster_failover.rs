//! A primary of a real Redis Cluster SIGKILLed while clients append segments, with
//! `EARSHOT_REDIS_WAIT=1`: what a user of earshot sees. During the failover every
//! answer is 2xx or 503 with `Retry-After` (never another error, never a hang); sessions
//! on the other primaries keep working; once the replica is promoted earshot follows it
//! without a restart; and every segment acknowledged with a 2xx is in its transcript
//! exactly once, in order.
//!
//! This binary starts its own cluster: it kills a node, which the shared one must not see.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{store_config, TestApp, ACME};
use earshot_core::config::StoreConfig;
use earshot_core::keys::Keys;
use earshot_store::RedisStore;
use earshot_testsupport::RedisCluster;
use reqwest::Client;
use serde_json::{json, Value};
use tokio::time::Instant;

/// Client sessions; with 16 partitions they land on every primary.
const SESSIONS: usize = 18;
/// The store's command timeout (`EARSHOT_REDIS_TIMEOUT`) of the app under test.
const STORE_TIMEOUT: Duration = Duration::from_secs(2);
/// Bound against hangs: an append, its retries inside the server included, answers
/// within twice the store timeout; this allows one more for a loaded machine.
const ANSWER_BOUND: Duration = Duration::from_secs(6);
/// The client's own timeout, far past `ANSWER_BOUND`, so a hang shows as such.
const REQUEST_BOUND: Duration = Duration::from_secs(30);
/// Generous bound for cluster-side events (promotion, a node rejoining).
const PATIENCE: Duration = Duration::from_secs(60);

/// One answer a client got, with when it was sent and received.
#[derive(Debug, Clone)]
struct Answer {
    sent: Instant,
    got: Instant,
    /// HTTP status, or 0 for a transport error or a request past `REQUEST_BOUND`.
    status: u16,
    retry_after: bool,
    detail: String,
}

/// What one client (one session) saw.
#[derive(Debug, Default)]
struct Log {
    answers: Vec<Answer>,
    /// Acknowledged segments in order: (text, seq the server answered).
    acked: Vec<(String, u64)>,
}

/// Appends segment after segment to `id`, each with its own `Idempotency-Key`, retrying
/// a segment after a 503 until it is acknowledged (as a client honouring `Retry-After`
/// would, with a shorter pause to keep the test short). Stops sending new segments once
/// `stop` is set, but finishes the one in flight, so every segment sent is acknowledged.
async fn client(
    http: Client,
    base: String,
    id: String,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Log>>,
) {
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let text = format!("{id} segment {n}");
        let key = format!("{id}-{n}");
        loop {
            let sent = Instant::now();
            let r = http
                .post(format!("{base}/v1/sessions/{id}/segments"))
                .bearer_auth(ACME)
                .header("Idempotency-Key", &key)
                .json(&json!({"text": text}))
                .timeout(REQUEST_BOUND)
                .send()
                .await;
            let (status, retry_after, body) = match r {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let ra = r.headers().contains_key("retry-after");
                    (status, ra, r.text().await.unwrap_or_default())
                }
                Err(e) => (0, false, e.to_string()),
            };
            let got = Instant::now();
            let acked = (200..300).contains(&status);
            {
                let mut log = log.lock().unwrap();
                log.answers.push(Answer {
                    sent,
                    got,
                    status,
                    retry_after,
                    detail: body.clone(),
                });
                if acked {
                    let seq = serde_json::from_str::<Value>(&body).unwrap()["seq"]
                        .as_u64()
                        .unwrap();
                    log.acked.push((text.clone(), seq));
                }
            }
            if acked {
                break;
            }
            if status != 503 {
                // Anything else fails the test below; stop this client rather than spin.
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        n += 1;
    }
}

/// The port of the primary holding `key`'s slot.
fn owner(cluster: &RedisCluster, key: &str) -> u16 {
    let owners: Vec<u16> = cluster
        .primary_ports()
        .into_iter()
        .filter(|&p| cluster.cli(p, &["EXISTS", key]).unwrap().trim() == "1")
        .collect();
    assert_eq!(owners.len(), 1, "{key} on {owners:?}");
    owners[0]
}

/// Index in `cluster.nodes()` of the node replicating the primary on `port`.
fn replica_of(cluster: &RedisCluster, port: u16) -> usize {
    cluster
        .nodes()
        .iter()
        .position(|n| {
            n.port() != port
                && cluster
                    .cli(n.port(), &["INFO", "replication"])
                    .is_ok_and(|i| i.contains(&format!("master_port:{port}")))
        })
        .unwrap_or_else(|| panic!("no replica of {port}"))
}

/// Waits until `cond` holds, polling; panics with `what` after `PATIENCE`.
async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) -> Instant {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if cond() {
            return Instant::now();
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_primary_loses_no_acknowledged_segment_and_earshot_follows_the_failover() {
    let mut cluster = tokio::task::block_in_place(RedisCluster::start);
    let cfg = StoreConfig {
        redis_wait: 1,
        command_timeout: STORE_TIMEOUT,
        ..store_config()
    };
    let store = RedisStore::connect(&cluster.url(), cfg.clone())
        .await
        .expect("connect to the cluster");
    let app = TestApp::start_on_store(Arc::new(store), cfg).await;

    // Sessions over every primary; the victim is the first primary.
    let keys = Keys::cluster(16);
    let ids: Vec<String> = (0..SESSIONS).map(|i| format!("fo{i}")).collect();
    let mut home: BTreeMap<String, u16> = BTreeMap::new();
    for id in &ids {
        app.create(ACME, id).await;
        home.insert(id.clone(), owner(&cluster, &keys.metadata(id)));
    }
    let primaries = cluster.primary_ports();
    assert_eq!(primaries.len(), 3);
    for p in &primaries {
        let n = home.values().filter(|&&h| h == *p).count();
        assert!(n >= 2, "primary {p} holds {n} sessions: {home:?}");
    }
    let victim_port = primaries[0];
    let victim = cluster
        .nodes()
        .iter()
        .position(|n| n.port() == victim_port)
        .unwrap();
    let heir = replica_of(&cluster, victim_port);
    let heir_port = cluster.nodes()[heir].port();
    let on_victim = |id: &str| home[id] == victim_port;

    // Load: one client per session.
    let stop = Arc::new(AtomicBool::new(false));
    let http = Client::new();
    let logs: BTreeMap<String, Arc<Mutex<Log>>> =
        ids.iter().map(|id| (id.clone(), Arc::default())).collect();
    let tasks: Vec<_> = ids
        .iter()
        .map(|id| {
            tokio::spawn(client(
                http.clone(),
                app.base.clone(),
                id.clone(),
                stop.clone(),
                logs[id].clone(),
            ))
        })
        .collect();
    let acked = |id: &str| logs[id].lock().unwrap().acked.len();
    wait_for("every client has a segment acknowledged", || {
        ids.iter().all(|id| acked(id) >= 3)
    })
    .await;

    // SIGKILL the victim primary mid-load (the port is then refused, as after a crash).
    cluster.nodes_mut()[victim].stop_refusing();
    // After the process is reaped: a request sent earlier may rightly be acknowledged.
    let killed = Instant::now();
    let promoted = wait_for("the replica is promoted", || {
        cluster
            .cli(heir_port, &["ROLE"])
            .is_ok_and(|r| r.starts_with("master"))
    })
    .await;

    // Earshot follows the new topology by itself: the dead primary's sessions are
    // readable again through the promoted replica, without restarting anything.
    let victim_id = ids.iter().find(|id| on_victim(id)).unwrap().clone();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let r = app
            .get(ACME, &format!("/v1/sessions/{victim_id}/transcript"))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            break;
        }
        assert_eq!(r.status(), 503, "reads answer 2xx or 503 meanwhile");
        assert!(
            Instant::now() < deadline,
            "reads never recovered after promotion"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Sessions on the surviving primaries kept being acknowledged after the kill.
    let others_after_kill = |id: &str| {
        logs[id]
            .lock()
            .unwrap()
            .answers
            .iter()
            .any(|a| a.sent > killed && (200..300).contains(&a.status))
    };
    wait_for(
        "sessions on the other primaries progress during the failover",
        || {
            ids.iter()
                .filter(|id| !on_victim(id))
                .all(|id| others_after_kill(id))
        },
    )
    .await;

    // The promoted replica has no replica of its own: with EARSHOT_REDIS_WAIT=1 no
    // write to its slots can be confirmed, so none is acknowledged until the killed
    // node comes back (as a replica of the new primary).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rejoin = Instant::now();
    cluster.nodes_mut()[victim].restart();
    for id in ids.iter().filter(|id| on_victim(id)) {
        let log = logs[id].lock().unwrap();
        let early: Vec<_> = log
            .answers
            .iter()
            .filter(|a| a.sent > killed && a.got < rejoin && (200..300).contains(&a.status))
            .collect();
        assert!(
            early.is_empty(),
            "{id}: acknowledged while its primary had no replica: {early:?}"
        );
    }
    let before = |id: &str| acked(id);
    let counts: BTreeMap<String, usize> = ids.iter().map(|id| (id.clone(), before(id))).collect();
    wait_for("writes to the dead primary's slots succeed again", || {
        ids.iter().all(|id| acked(id) > counts[id])
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        tokio::time::timeout(REQUEST_BOUND * 2, t)
            .await
            .expect("clients finish")
            .expect("client did not panic");
    }

    // Every answer was a 2xx or a 503 with Retry-After, none past the bound.
    let mut unavailable = 0;
    let mut total = 0;
    for (id, log) in &logs {
        for a in &log.lock().unwrap().answers {
            total += 1;
            assert!(
                a.got - a.sent < ANSWER_BOUND,
                "{id}: an answer took {:?}: {a:?}",
                a.got - a.sent
            );
            match a.status {
                200..=299 => {}
                503 => {
                    unavailable += 1;
                    assert!(a.retry_after, "{id}: 503 without Retry-After: {a:?}");
                    assert!(a.detail.contains("store_unavailable"), "{id}: {a:?}");
                }
                _ => panic!("{id}: unexpected answer during the failover: {a:?}"),
            }
        }
    }
    assert!(unavailable > 0, "the failover window was seen by clients");

    // Every acknowledged segment is in its transcript exactly once, in order, at the
    // seq it was acknowledged with, and nothing else is.
    for id in &ids {
        let t: Value = app
            .get(ACME, &format!("/v1/sessions/{id}/transcript"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let stored: Vec<(String, u64)> = t["segments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["text"].as_str().unwrap().to_owned(),
                    s["seq"].as_u64().unwrap(),
                )
            })
            .collect();
        let acked = logs[id].lock().unwrap().acked.clone();
        assert_eq!(stored, acked, "{id}: transcript vs acknowledged segments");
    }
    eprintln!(
        "rejoin at +{:?}; failover: {total} answers, {unavailable} were 503; promotion after {:?}, \
         victim sessions {:?}",
        rejoin - killed,
        promoted - killed,
        ids.iter().filter(|id| on_victim(id)).collect::<Vec<_>>()
    );
}
