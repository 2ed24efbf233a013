//! Real processes, real faults (issue 4): `earshot serve` and `earshot worker` binaries on
//! a test-started redis-server, a local webhook receiver, and the faults an operator
//! meets: a worker killed with SIGKILL mid-batch, Redis restarting under load, a webhook
//! that fails for a while or for good, a sink slower than the producers.
//!
//! Every test checks what a user would notice: nothing acknowledged is lost, duplicates
//! stay within one batch, nothing hangs. Timing bounds are only generous "did not
//! hang" limits; waiting is done by polling a condition.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use earshot_core::{Event, EventKind};
use earshot_testsupport::{free_port, RedisServer};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tempfile::TempDir;

/// Generous bound for "it happened eventually"; never a performance assertion.
const PATIENCE: Duration = Duration::from_secs(30);
const STREAM: &str = "transcription_events";
const DEAD: &str = "transcription_events:dead";
const SECRET: &str = "faults-test-secret";
const KEY: &str = "faults-key-0001";

// ---------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------

/// A child `earshot` process; stdout and stderr go to files (a pipe nobody reads would
/// eventually block it), shown when an assertion about it fails. Killed on drop.
struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(dir: &Path, name: &str, args: &[&str], envs: &[(&str, String)]) -> Self {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_earshot"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn earshot {name}: {e}"));
        Self {
            name: name.to_owned(),
            child,
            log,
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn signal(&self, sig: i32) {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(self.pid(), sig) };
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics with the process's log if it exited.
    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("{} exited ({status}):\n{}", self.name, self.log());
        }
    }

    /// SIGKILL, and wait until the kernel has reaped it.
    fn kill9(&mut self) {
        self.signal(libc::SIGKILL);
        let _ = self.child.wait();
    }

    /// Resident set size in KiB, from /proc/<pid>/status.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/<pid>/status")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("----- {} log -----\n{}", self.name, self.log());
        }
    }
}

/// `earshot serve --no-asr` on a free port, once `/healthz` answers.
async fn serve(dir: &Path, redis: &RedisServer, envs: &[(&str, String)]) -> (Proc, String) {
    let port = free_port();
    let mut all = vec![
        ("EARSHOT_LISTEN", format!("127.0.0.1:{port}")),
        ("REDIS_URL", redis.url()),
        ("EARSHOT_API_KEYS", format!("faults:{KEY}")),
    ];
    all.extend(envs.iter().cloned());
    let mut p = Proc::spawn(dir, "serve", &["serve", "--no-asr"], &all);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + PATIENCE;
    loop {
        p.assert_running();
        if let Ok(r) = http.get(format!("{base}/healthz")).send().await {
            if r.status().is_success() {
                break;
            }
        }
        assert!(Instant::now() < deadline, "earshot serve did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (p, base)
}

/// `earshot worker --group G --consumer C --sink SINK ...`, once it has joined the group.
async fn worker(
    dir: &Path,
    redis: &RedisServer,
    group: &str,
    consumer: &str,
    sink: &str,
    extra: &[&str],
) -> Proc {
    let mut args = vec![
        "worker",
        "--group",
        group,
        "--consumer",
        consumer,
        "--sink",
        sink,
        "--webhook-secret",
        SECRET,
    ];
    args.extend_from_slice(extra);
    let mut p = Proc::spawn(
        dir,
        &format!("worker-{consumer}"),
        &args,
        &[("REDIS_URL", redis.url())],
    );
    let mut con = connect(redis).await;
    let deadline = Instant::now() + PATIENCE;
    // A consumer shows up in XINFO CONSUMERS with its first XREADGROUP / XAUTOCLAIM.
    while !consumers(&mut con, group).await.contains_key(consumer) {
        p.assert_running();
        assert!(
            Instant::now() < deadline,
            "worker {consumer} never joined group {group}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    p
}

// ---------------------------------------------------------------------------------
// Direct Redis reads and writes
// ---------------------------------------------------------------------------------

/// A direct connection for the test's own reads and writes. The client's default
/// 500 ms response timeout is too short for a 48 MB publish on a busy machine.
async fn connect(redis: &RedisServer) -> redis::aio::MultiplexedConnection {
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(Some(PATIENCE));
    redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .expect("connect to the test redis-server")
}

/// XADDs `n` well-formed `transcript_segment` events (text of about `text_len` bytes),
/// as `earshot serve` would, in one MULTI/EXEC (a reader sees all of them at once or
/// none); returns their stream ids in order.
async fn publish(
    con: &mut redis::aio::MultiplexedConnection,
    tag: &str,
    n: usize,
    text_len: usize,
) -> Vec<String> {
    let mut p = redis::pipe();
    p.atomic();
    for i in 0..n {
        let mut text = format!("{tag} segment {i} ");
        while text.len() < text_len {
            text.push_str("lorem ipsum ");
        }
        let ev = Event {
            session_id: format!("{tag}-session"),
            tenant_id: "faults".into(),
            timestamp: earshot_core::time::now_rfc3339(),
            kind: EventKind::TranscriptSegment {
                seq: i as u64,
                text,
                start_ms: Some(i as i64 * 1000),
                end_ms: Some(i as i64 * 1000 + 900),
            },
        };
        let c = p.cmd("XADD").arg(STREAM).arg("*");
        for (k, v) in ev.to_fields() {
            c.arg(k).arg(v);
        }
    }
    p.query_async(con).await.expect("XADD")
}

/// A scalar reply as a string.
fn text(v: &redis::Value) -> String {
    match v {
        redis::Value::Int(i) => i.to_string(),
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::Nil => "nil".into(),
        other => format!("{other:?}"),
    }
}

/// Flattens a RESP2 key/value array (or a RESP3 map) into strings.
fn kv(v: &redis::Value) -> HashMap<String, String> {
    match v {
        redis::Value::Array(items) => items
            .chunks(2)
            .filter(|p| p.len() == 2)
            .map(|p| (text(&p[0]), text(&p[1])))
            .collect(),
        redis::Value::Map(pairs) => pairs.iter().map(|(k, v)| (text(k), text(v))).collect(),
        _ => HashMap::new(),
    }
}

/// `XINFO GROUPS` of the event stream, by group name.
async fn groups(
    con: &mut redis::aio::MultiplexedConnection,
) -> HashMap<String, HashMap<String, String>> {
    let v: redis::Value = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(STREAM)
        .query_async(con)
        .await
        .unwrap_or(redis::Value::Array(vec![]));
    let redis::Value::Array(items) = v else {
        return HashMap::new();
    };
    items
        .iter()
        .map(kv)
        .map(|m| (m.get("name").cloned().unwrap_or_default(), m))
        .collect()
}

/// `XINFO CONSUMERS` of `group`: consumer name -> pending count.
async fn consumers(
    con: &mut redis::aio::MultiplexedConnection,
    group: &str,
) -> HashMap<String, u64> {
    let v: redis::Value = match redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg(STREAM)
        .arg(group)
        .query_async(con)
        .await
    {
        Ok(v) => v,
        Err(_) => return HashMap::new(), // no stream or no group yet
    };
    let redis::Value::Array(items) = v else {
        return HashMap::new();
    };
    items
        .iter()
        .map(kv)
        .map(|m| {
            (
                m.get("name").cloned().unwrap_or_default(),
                m.get("pending").and_then(|p| p.parse().ok()).unwrap_or(0),
            )
        })
        .collect()
}

/// (pending, lag) of a group; lag is `None` where Redis cannot tell.
async fn group_state(
    con: &mut redis::aio::MultiplexedConnection,
    group: &str,
) -> (u64, Option<u64>) {
    let g = groups(con).await.remove(group).expect("group exists");
    (
        g["pending"].parse().unwrap(),
        g.get("lag").and_then(|l| l.parse().ok()),
    )
}

async fn xlen(con: &mut redis::aio::MultiplexedConnection, key: &str) -> u64 {
    redis::cmd("XLEN").arg(key).query_async(con).await.unwrap()
}

/// Every entry of a stream, as field maps with `"_id"` added.
async fn xrange(
    con: &mut redis::aio::MultiplexedConnection,
    key: &str,
) -> Vec<HashMap<String, String>> {
    let v: redis::Value = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query_async(con)
        .await
        .unwrap();
    let redis::Value::Array(entries) = v else {
        return vec![];
    };
    entries
        .iter()
        .filter_map(|e| match e {
            redis::Value::Array(pair) if pair.len() == 2 => {
                let mut m = kv(&pair[1]);
                m.insert("_id".into(), text(&pair[0]));
                Some(m)
            }
            _ => None,
        })
        .collect()
}

/// Polls an async condition until it holds; panics after `PATIENCE`.
macro_rules! wait_for {
    ($what:expr, $cond:expr) => {{
        let deadline = Instant::now() + PATIENCE;
        loop {
            if $cond {
                break;
            }
            assert!(Instant::now() < deadline, "timed out waiting: {}", $what);
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }};
}

// ---------------------------------------------------------------------------------
// A webhook receiver
// ---------------------------------------------------------------------------------

/// What the receiver does with the n-th request (1-based) on a path.
#[derive(Debug, Clone, Copy)]
enum Reply {
    Status(u16),
    /// Never answers (a stalled receiver, or a network black hole).
    Hang,
    /// Answers with the status after a pause (a slow receiver).
    After(Duration, u16),
}

type Behaviour = Arc<dyn Fn(&str, usize) -> Reply + Send + Sync>;

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    /// The body's `"id"` (the stream id).
    id: String,
    /// `X-Earshot-Signature` matched an HMAC of the body computed here.
    signed: bool,
    /// `X-Earshot-Event-Id` equals the body's id.
    id_header_ok: bool,
    /// What was answered; 0 = still hanging.
    status: u16,
}

#[derive(Default)]
struct HookLog {
    requests: Vec<Received>,
    per_path: HashMap<String, usize>,
}

#[derive(Clone)]
struct Hook {
    url: String,
    log: Arc<Mutex<HookLog>>,
    behaviour: Arc<Mutex<Behaviour>>,
}

impl Hook {
    async fn start(behaviour: impl Fn(&str, usize) -> Reply + Send + Sync + 'static) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let hook = Self {
            url,
            log: Arc::default(),
            behaviour: Arc::new(Mutex::new(Arc::new(behaviour))),
        };
        let h = hook.clone();
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let h = h.clone();
            async move { h.handle(uri, headers, body).await }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        hook
    }

    fn set_behaviour(&self, b: impl Fn(&str, usize) -> Reply + Send + Sync + 'static) {
        *self.behaviour.lock().unwrap() = Arc::new(b);
    }

    async fn handle(&self, uri: Uri, headers: HeaderMap, body: Bytes) -> StatusCode {
        let path = uri.path().to_owned();
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(&body);
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let id = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["id"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let mut rec = Received {
            path: path.clone(),
            signed: header("x-earshot-signature") == expected,
            id_header_ok: !id.is_empty() && header("x-earshot-event-id") == id,
            id,
            status: 0,
        };
        let reply = {
            let mut log = self.log.lock().unwrap();
            let n = log.per_path.entry(path.clone()).or_insert(0);
            *n += 1;
            let n = *n;
            let behaviour = self.behaviour.lock().unwrap().clone();
            behaviour(&path, n)
        };
        let status = match reply {
            Reply::Status(s) => s,
            Reply::After(d, s) => {
                tokio::time::sleep(d).await;
                s
            }
            Reply::Hang => {
                self.log.lock().unwrap().requests.push(rec);
                std::future::pending::<()>().await;
                unreachable!()
            }
        };
        rec.status = status;
        self.log.lock().unwrap().requests.push(rec);
        StatusCode::from_u16(status).unwrap()
    }

    fn requests(&self) -> Vec<Received> {
        self.log.lock().unwrap().requests.clone()
    }

    /// Ids answered with 2xx, in order, with repeats.
    fn delivered(&self, path: Option<&str>) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| (200..300).contains(&r.status))
            .filter(|r| path.is_none_or(|p| r.path == p))
            .map(|r| r.id)
            .collect()
    }

    fn hanging(&self, path: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.status == 0 && r.path == path)
            .count()
    }

    /// Every request carried a valid signature and a matching event-id header.
    fn assert_all_signed(&self) {
        let reqs = self.requests();
        assert!(!reqs.is_empty());
        for r in &reqs {
            assert!(r.signed, "bad or missing X-Earshot-Signature: {r:?}");
            assert!(
                r.id_header_ok,
                "X-Earshot-Event-Id differs from body id: {r:?}"
            );
        }
    }
}

fn counts(ids: &[String]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for id in ids {
        *m.entry(id.clone()).or_insert(0) += 1;
    }
    m
}

// ---------------------------------------------------------------------------------
// The faults
// ---------------------------------------------------------------------------------

/// `kill -9` of a worker holding a batch: its peer reclaims the batch after
/// `--claim-idle` and delivers it; the dead worker's deliveries that were never
/// acknowledged are the only duplicates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_batch_peer_reclaims_everything() {
    const BATCH: usize = 8;
    let dir = TempDir::new().unwrap();
    let redis = RedisServer::start();
    let mut con = connect(&redis).await;
    // Receiver: worker a's 4th request never gets an answer, so `a` is stuck inside its
    // first batch with 3 events delivered but not yet acknowledged.
    let hook = Hook::start(|path, n| {
        if path == "/a" && n >= 4 {
            Reply::Hang
        } else {
            Reply::Status(200)
        }
    })
    .await;
    let mut published = publish(&mut con, "before", 40, 64).await;
    let opts = [
        "--claim-idle",
        "1s",
        "--batch",
        "8",
        "--block",
        "200ms",
        // Longer than the test: a's stuck request never times out and retries.
        "--webhook-timeout",
        "120s",
    ];
    let mut a = worker(
        dir.path(),
        &redis,
        "g",
        "a",
        &format!("webhook:{}/a", hook.url),
        &opts,
    )
    .await;
    wait_for!("a stuck mid-batch", hook.hanging("/a") == 1);
    let a_delivered = hook.delivered(Some("/a"));
    assert_eq!(a_delivered.len(), 3);
    assert_eq!(
        consumers(&mut con, "g").await["a"],
        BATCH as u64,
        "a holds one whole batch, unacknowledged"
    );

    let mut b = worker(
        dir.path(),
        &redis,
        "g",
        "b",
        &format!("webhook:{}/b", hook.url),
        &opts,
    )
    .await;
    a.kill9();
    published.extend(publish(&mut con, "after", 20, 64).await);

    let want: BTreeSet<String> = published.iter().cloned().collect();
    wait_for!("every event delivered by someone", {
        b.assert_running();
        let got: BTreeSet<String> = hook.delivered(None).into_iter().collect();
        want.is_subset(&got)
    });
    wait_for!(
        "group drained",
        group_state(&mut con, "g").await == (0, Some(0))
    );
    let delivered = hook.delivered(None);
    eprintln!(
        "sigkill: {} deliveries of {} events, a delivered {} before dying",
        delivered.len(),
        want.len(),
        a_delivered.len()
    );
    let dups: Vec<(String, usize)> = counts(&delivered)
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .collect();
    assert!(
        dups.len() <= BATCH && dups.iter().all(|(_, n)| *n == 2),
        "at most one batch delivered twice: {dups:?}"
    );
    for (id, _) in &dups {
        assert!(
            a_delivered.contains(id),
            "only a's unacknowledged deliveries repeat: {id}"
        );
    }
    assert_eq!(
        delivered.len(),
        want.len() + dups.len(),
        "nothing outside the stream was delivered"
    );
    assert!(
        consumers(&mut con, "g")
            .await
            .get("a")
            .copied()
            .unwrap_or(0)
            == 0
    );
    assert_eq!(xlen(&mut con, DEAD).await, 0);
    hook.assert_all_signed();
    assert!(
        b.log().contains("reclaimed"),
        "b says it reclaimed:\n{}",
        b.log()
    );
}

/// Redis (AOF, appendfsync always) is killed while clients append segments through
/// `earshot serve`, stays down for a while, and comes back on the same port. Clients get
/// prompt 503s with `Retry-After` meanwhile, never a hang, and every segment that was
/// answered 201 is in the transcript afterwards at the seq it was given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_under_load_loses_no_acknowledged_segment() {
    const CLIENTS: usize = 6;
    const REDIS_TIMEOUT: Duration = Duration::from_secs(1);
    // Every request answers within the store timeout plus this (generous) slack.
    const SLACK: Duration = Duration::from_secs(4);
    let dir = TempDir::new().unwrap();
    let mut redis = RedisServer::builder().appendonly(true).start();
    let (_serve, base) = serve(
        dir.path(),
        &redis,
        &[("EARSHOT_REDIS_TIMEOUT", "1s".into())],
    )
    .await;
    // A downstream worker rides out the same outages.
    let jsonl = dir.path().join("events.jsonl");
    let mut downstream = worker(
        dir.path(),
        &redis,
        "archive",
        "w",
        &format!("jsonl:{}", jsonl.display()),
        &["--redis-timeout", "1s", "--block", "200ms", "--batch", "16"],
    )
    .await;
    let http = reqwest::Client::builder()
        .timeout(REDIS_TIMEOUT + SLACK)
        .build()
        .unwrap();
    for c in 0..CLIENTS {
        let r = http
            .post(format!("{base}/v1/sessions"))
            .bearer_auth(KEY)
            .json(&json!({"session_id": format!("load-{c}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }

    /// What one client saw.
    #[derive(Default)]
    struct Seen {
        /// text -> seq, for every 201.
        acked: BTreeMap<String, u64>,
        /// Every text sent, in order (201 or not).
        sent: Vec<String>,
        ok: usize,
        unavailable: usize,
        /// 503s without a usable Retry-After, other statuses, transport errors.
        wrong: Vec<String>,
        slowest: Duration,
    }
    let stop = Arc::new(AtomicBool::new(false));
    let seen: Vec<Arc<Mutex<Seen>>> = (0..CLIENTS).map(|_| Arc::default()).collect();
    let mut tasks = Vec::new();
    for (c, seen) in seen.iter().enumerate() {
        let (http, base, stop, seen) = (http.clone(), base.clone(), stop.clone(), seen.clone());
        tasks.push(tokio::spawn(async move {
            let url = format!("{base}/v1/sessions/load-{c}/segments");
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let text = format!("client {c} line {i}");
                i += 1;
                seen.lock().unwrap().sent.push(text.clone());
                let t0 = Instant::now();
                let r = http
                    .post(&url)
                    .bearer_auth(KEY)
                    .json(&json!({"text": text, "start_ms": i * 1000, "end_ms": i * 1000 + 900}))
                    .send()
                    .await;
                let took = t0.elapsed();
                let outcome = match r {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let retry_after = r
                            .headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.parse::<u64>().ok());
                        let body: Value = r.json().await.unwrap_or(Value::Null);
                        (status, retry_after, body)
                    }
                    Err(e) => (0, None, json!(e.to_string())),
                };
                let back_off = outcome.0 != 201;
                {
                    let mut s = seen.lock().unwrap();
                    s.slowest = s.slowest.max(took);
                    match outcome {
                        (201, _, body) => {
                            s.ok += 1;
                            s.acked.insert(text, body["seq"].as_u64().expect("seq"));
                        }
                        (503, Some(secs), body)
                            if secs >= 1 && body["error"]["code"] == "store_unavailable" =>
                        {
                            s.unavailable += 1;
                        }
                        other => s.wrong.push(format!("{text}: {other:?} after {took:?}")),
                    }
                }
                if back_off {
                    // A polite client pauses on 503 (Retry-After says 1 s; this one is
                    // impatient, to keep the load up).
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }));
    }
    let snapshot = |f: &dyn Fn(&Seen) -> usize| -> Vec<usize> {
        seen.iter().map(|s| f(&s.lock().unwrap())).collect()
    };

    // Enough writes per phase that every client is mid-flight when Redis goes away.
    let progress = |since: &[usize], n: usize| {
        snapshot(&|s| s.ok)
            .iter()
            .zip(since)
            .all(|(now, then)| now - then >= n)
    };
    wait_for!("every client got 201s", progress(&[0; CLIENTS], 20));
    // Two outages: killed with the port held by a listener that never answers (every
    // call runs into the timeout), then killed with the port closed (refused at once).
    for held in [true, false] {
        let unavailable_before = snapshot(&|s| s.unavailable);
        tokio::task::block_in_place(|| {
            if held {
                redis.stop()
            } else {
                redis.stop_refusing()
            }
        });
        let down_at = Instant::now();
        let ok_at_stop = snapshot(&|s| s.ok);
        wait_for!(
            "clients see 503s for a couple of seconds",
            down_at.elapsed() >= Duration::from_secs(2)
                && snapshot(&|s| s.unavailable)
                    .iter()
                    .zip(&unavailable_before)
                    .all(|(now, then)| now > then)
        );
        let ok_while_down: usize = snapshot(&|s| s.ok)
            .iter()
            .zip(&ok_at_stop)
            .map(|(now, then)| now - then)
            .sum();
        // A request Redis answered just before it died may still complete; none after.
        assert!(
            ok_while_down <= CLIENTS,
            "{ok_while_down} segments acknowledged while Redis was down"
        );
        tokio::task::block_in_place(|| redis.restart());
        let ok_at_restart = snapshot(&|s| s.ok);
        wait_for!(
            "every client gets 201s again after the restart",
            progress(&ok_at_restart, 20)
        );
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }

    let events = xrange(&mut connect(&redis).await, STREAM).await;
    // Every event, including those of the writes around the outages, reached the
    // worker's file; repeats (an XACK lost with Redis) stay within one batch.
    let stream_ids: BTreeSet<String> = events.iter().map(|e| e["_id"].clone()).collect();
    let written = || -> Vec<String> {
        std::fs::read_to_string(&jsonl)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).expect("one JSON object per line");
                v["id"].as_str().expect("id").to_owned()
            })
            .collect()
    };
    wait_for!("the worker archived every event", {
        downstream.assert_running();
        let got: BTreeSet<String> = written().into_iter().collect();
        got == stream_ids
    });
    let lines = written().len();
    eprintln!(
        "redis restart: worker wrote {lines} lines for {} events",
        stream_ids.len()
    );
    assert!(
        lines - stream_ids.len() <= 16,
        "duplicates within one batch"
    );
    for (c, seen) in seen.iter().enumerate() {
        let s = std::mem::take(&mut *seen.lock().unwrap());
        eprintln!(
            "redis restart: client {c}: sent {} ok {} 503 {} slowest {:?}",
            s.sent.len(),
            s.ok,
            s.unavailable,
            s.slowest
        );
        assert!(
            s.wrong.is_empty(),
            "client {c}: unexpected answers {:?}",
            s.wrong
        );
        assert!(
            s.slowest <= REDIS_TIMEOUT + SLACK,
            "client {c}: a request took {:?}",
            s.slowest
        );
        let r = http
            .get(format!("{base}/v1/sessions/load-{c}/transcript"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let t: Value = r.json().await.unwrap();
        let segs = t["segments"].as_array().unwrap();
        let session: Value = http
            .get(format!("{base}/v1/sessions/load-{c}"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            session["segment_count"].as_u64().unwrap() as usize,
            segs.len(),
            "client {c}: segment_count agrees with the segments"
        );
        for (i, seg) in segs.iter().enumerate() {
            assert_eq!(
                seg["seq"].as_u64(),
                Some(i as u64),
                "client {c}: gap-free seq"
            );
        }
        let stored: Vec<&str> = segs.iter().map(|s| s["text"].as_str().unwrap()).collect();
        for (text, &seq) in &s.acked {
            assert_eq!(
                stored.get(seq as usize).copied(),
                Some(text.as_str()),
                "client {c}: acknowledged segment lost or moved"
            );
        }
        // Nothing invented, nothing reordered: the stored texts are a subsequence of
        // what this (only) writer sent, in order; the extra ones are 503s that had in
        // fact been written.
        let mut sent = s.sent.iter();
        for text in &stored {
            assert!(
                sent.any(|x| x == text),
                "client {c}: {text:?} stored out of order or never sent"
            );
        }
        assert!(stored.len() >= s.acked.len());
        assert!(stored.len() <= s.sent.len());
        // A 503 does not say the write did not happen: Redis may have applied it just
        // before it died. Those are the only extra segments.
        eprintln!(
            "redis restart: client {c}: {} stored although answered 503",
            stored.len() - s.acked.len()
        );
        // The event went out with the write (one atomic write): exactly one
        // transcript_segment per stored segment, with the same seq and text.
        let session = format!("load-{c}");
        let published: Vec<(u64, String)> = events
            .iter()
            .filter(|e| e["event_type"] == "transcript_segment" && e["session_id"] == session)
            .map(|e| (e["seq"].parse().unwrap(), e["text"].clone()))
            .collect();
        let expected: Vec<(u64, String)> = stored
            .iter()
            .enumerate()
            .map(|(i, t)| (i as u64, (*t).to_owned()))
            .collect();
        assert_eq!(published, expected, "client {c}: events match the segments");
    }
}

/// A webhook that answers 500 for a while, then recovers: every event arrives signed,
/// nothing is dead-lettered, the group ends with nothing pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_500s_then_recovers_everything_delivered() {
    const FAILURES: usize = 6;
    let dir = TempDir::new().unwrap();
    let redis = RedisServer::start();
    let mut con = connect(&redis).await;
    let hook = Hook::start(|_, n| {
        if n <= FAILURES {
            Reply::Status(500)
        } else {
            Reply::Status(200)
        }
    })
    .await;
    let published = publish(&mut con, "flaky", 12, 64).await;
    let mut w = worker(
        dir.path(),
        &redis,
        "g",
        "w",
        &format!("webhook:{}/hook", hook.url),
        &[
            "--claim-idle",
            "1s",
            "--batch",
            "8",
            "--block",
            "200ms",
            "--webhook-attempts",
            "2",
            "--webhook-timeout",
            "2s",
        ],
    )
    .await;
    let want: BTreeSet<String> = published.iter().cloned().collect();
    wait_for!("every event delivered", {
        w.assert_running();
        let got: BTreeSet<String> = hook.delivered(None).into_iter().collect();
        got == want
    });
    wait_for!(
        "group drained",
        group_state(&mut con, "g").await == (0, Some(0))
    );
    let failed = hook.requests().iter().filter(|r| r.status == 500).count();
    assert_eq!(failed, FAILURES, "the receiver did fail first");
    assert_eq!(xlen(&mut con, DEAD).await, 0, "nothing dead-lettered");
    hook.assert_all_signed();
    let dups = hook.delivered(None).len() - want.len();
    assert_eq!(
        dups, 0,
        "a failed attempt is retried, a success is not repeated"
    );
}

/// A webhook that never recovers: after `--max-deliveries` every entry is in
/// `transcription_events:dead` with the reason, acknowledged in the group, and the
/// worker keeps running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_that_never_recovers_dead_letters_after_max_deliveries() {
    const MAX_DELIVERIES: u64 = 2;
    let dir = TempDir::new().unwrap();
    let redis = RedisServer::start();
    let mut con = connect(&redis).await;
    let hook = Hook::start(|_, _| Reply::Status(503)).await;
    let published = publish(&mut con, "doomed", 3, 64).await;
    let mut w = worker(
        dir.path(),
        &redis,
        "g",
        "w",
        &format!("webhook:{}/hook", hook.url),
        &[
            "--claim-idle",
            "1s",
            "--batch",
            "8",
            "--block",
            "200ms",
            "--webhook-attempts",
            "1",
            "--webhook-timeout",
            "2s",
            "--max-deliveries",
            &MAX_DELIVERIES.to_string(),
        ],
    )
    .await;
    wait_for!("all dead-lettered", {
        w.assert_running();
        xlen(&mut con, DEAD).await >= published.len() as u64
    });
    let dead = xrange(&mut con, DEAD).await;
    let originals: BTreeSet<String> = dead.iter().map(|d| d["original_id"].clone()).collect();
    assert_eq!(dead.len(), published.len(), "each entry dead-lettered once");
    assert_eq!(originals, published.iter().cloned().collect());
    for d in &dead {
        assert!(
            d["reason"].contains("503"),
            "the reason names the failure: {d:?}"
        );
        assert_eq!(d["group"], "g");
        assert!(d["delivery_count"].parse::<u64>().unwrap() > MAX_DELIVERIES);
        assert_eq!(
            d["event_type"], "transcript_segment",
            "the event is kept whole"
        );
        assert!(d["text"].starts_with("doomed segment"));
    }
    assert_eq!(group_state(&mut con, "g").await, (0, Some(0)));
    let attempts = counts(
        &hook
            .requests()
            .into_iter()
            .map(|r| r.id)
            .collect::<Vec<_>>(),
    );
    for id in &published {
        let n = attempts.get(id).copied().unwrap_or(0);
        assert!(
            (1..=MAX_DELIVERIES as usize).contains(&n),
            "{id}: tried {n} times, at most --max-deliveries"
        );
    }
    assert!(hook.delivered(None).is_empty());
    hook.assert_all_signed();
    // Still alive and serving: a new event after the outage of the receiver is delivered.
    hook.set_behaviour(|_, _| Reply::Status(200));
    let late = publish(&mut con, "late", 1, 16).await;
    wait_for!("a later event is delivered", hook.delivered(None) == late);
    w.assert_running();
}

/// A sink slower than the producers: the group's lag grows and `earshot serve` shows it
/// as `earshot_consumer_group_lag{group}`, while the worker's memory stays bounded (it
/// holds one batch, not the backlog). Once the sink is fast again the lag drains to 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_sink_lag_is_visible_and_worker_memory_bounded() {
    const BACKLOG: usize = 1_500;
    const TEXT: usize = 32 * 1024; // 1500 x 32 KiB = ~48 MiB of backlog
    let dir = TempDir::new().unwrap();
    let redis = RedisServer::start();
    let mut con = connect(&redis).await;
    let (_serve, base) = serve(
        dir.path(),
        &redis,
        &[("EARSHOT_STATS_INTERVAL", "200ms".into())],
    )
    .await;
    let hook = Hook::start(|_, _| Reply::After(Duration::from_millis(20), 200)).await;
    let mut w = worker(
        dir.path(),
        &redis,
        "slow",
        "w",
        &format!("webhook:{}/hook", hook.url),
        &["--batch", "8", "--block", "200ms"],
    )
    .await;
    // Warm up: the worker has made HTTP requests and parsed a few big events.
    let warm = publish(&mut con, "warm", 16, TEXT).await;
    wait_for!(
        "warm-up delivered",
        hook.delivered(None).len() >= warm.len()
    );
    let rss_before = w.rss_kib();

    let mut published = warm;
    published.extend(publish(&mut con, "backlog", BACKLOG, TEXT).await);
    let http = reqwest::Client::new();
    let lag_metric = || async {
        let text = http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        earshot_testsupport::metric(&text, r#"earshot_consumer_group_lag{group="slow"}"#)
    };
    let mut rss_max = rss_before;
    // Checked on every sample: a worker that buffers the backlog fails here at once.
    let rss_bound = 2 * rss_before + 20 * 1024;
    let mut sample = |w: &Proc| {
        rss_max = rss_max.max(w.rss_kib());
        assert!(
            rss_max < rss_bound,
            "worker memory grew with the backlog: {rss_before} KiB -> {rss_max} KiB"
        );
    };
    wait_for!("lag visible on serve's /metrics", {
        sample(&w);
        lag_metric()
            .await
            .is_some_and(|l| l >= (BACKLOG / 2) as f64)
    });
    // Keep watching the worker's memory while it works through part of the backlog.
    let progress = hook.delivered(None).len() + 50;
    wait_for!("the slow worker makes progress", {
        w.assert_running();
        sample(&w);
        hook.delivered(None).len() >= progress
    });
    let (pending, lag) = group_state(&mut con, "slow").await;
    eprintln!(
        "slow sink: rss {rss_before} KiB -> max {rss_max} KiB, pending {pending}, lag {lag:?}"
    );
    assert!(pending <= 8, "at most one batch held: pending {pending}");
    assert!(lag.unwrap_or(0) >= (BACKLOG / 2) as u64, "lag {lag:?}");

    // The receiver speeds up; the backlog drains and the gauge follows.
    hook.set_behaviour(|_, _| Reply::Status(200));
    let want: BTreeSet<String> = published.iter().cloned().collect();
    wait_for!("backlog delivered", {
        w.assert_running();
        let got: BTreeSet<String> = hook.delivered(None).into_iter().collect();
        want.is_subset(&got)
    });
    wait_for!("lag gauge back to 0", lag_metric().await == Some(0.0));
    assert_eq!(group_state(&mut con, "slow").await, (0, Some(0)));
    assert_eq!(hook.delivered(None).len(), want.len(), "no duplicates");
}
