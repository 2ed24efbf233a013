//! Test harness: a real earshot server on 127.0.0.1:<free port> over either backend.
//! Redis-backed apps get their own `redis-server` from `earshot-testsupport`.

#![allow(dead_code)]

pub mod live;
pub mod speech;
pub mod sse;
pub mod upload;

use std::time::Duration;

use earshot_core::config::StoreConfig;
use earshot_server::{Server, ServerConfig, Tenants};
use earshot_store::{DynStore, MemoryStore, RedisStore};
use earshot_testsupport::RedisServer;
use reqwest::{Client, RequestBuilder, Response};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub const ACME: &str = "acme-key-0001";
pub const GLOBEX: &str = "globex-key-0001";

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Memory,
    Redis,
}

pub struct TestApp {
    pub addr: std::net::SocketAddr,
    pub base: String,
    pub client: Client,
    pub store: DynStore,
    pub redis: Option<RedisServer>,
    pub shutdown: CancellationToken,
}

pub fn store_config() -> StoreConfig {
    StoreConfig {
        command_timeout: Duration::from_secs(1),
        ..StoreConfig::default()
    }
}

/// The server settings every harness app starts from.
pub fn test_server_config() -> ServerConfig {
    ServerConfig {
        store: store_config(),
        max_json_body: 128 * 1024,
        ..ServerConfig::default()
    }
}

impl TestApp {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, store_config()).await
    }

    pub async fn start_with(backend: Backend, cfg: StoreConfig) -> Self {
        let (store, redis) = open_store(backend, cfg.clone()).await;
        Self::start_on(store, redis, cfg).await
    }

    /// An app on a store the test opened itself (e.g. on a Redis Cluster).
    pub async fn start_on_store(store: DynStore, cfg: StoreConfig) -> Self {
        Self::start_on(store, None, cfg).await
    }

    /// An app on a Redis the test configured itself (e.g. with AOF).
    pub async fn start_on_redis(server: RedisServer, cfg: StoreConfig) -> Self {
        let store = redis_store(&server, cfg.clone()).await;
        Self::start_on(store, Some(server), cfg).await
    }

    async fn start_on(store: DynStore, redis: Option<RedisServer>, cfg: StoreConfig) -> Self {
        let config = ServerConfig {
            store: cfg,
            ..test_server_config()
        };
        Self::start_custom(store, redis, config, earshot_server::SpeechStatus::Disabled).await
    }

    /// An app with speech recognition, on the embedded store.
    pub async fn start_speech(speech: earshot_server::SpeechStatus) -> Self {
        Self::start_with_speech(test_server_config(), speech).await
    }

    /// An app on the embedded store with the given server settings (limits, sizes).
    pub async fn start_with_config(config: ServerConfig) -> Self {
        Self::start_with_speech(config, earshot_server::SpeechStatus::Disabled).await
    }

    /// An app on the embedded store with the given settings and speech engine.
    pub async fn start_with_speech(
        config: ServerConfig,
        speech: earshot_server::SpeechStatus,
    ) -> Self {
        let store = std::sync::Arc::new(MemoryStore::new(config.store.clone()));
        Self::start_custom(store, None, config, speech).await
    }

    /// An app with no API keys (the single open tenant `default`, as on a laptop).
    pub async fn start_open(config: ServerConfig) -> Self {
        let store = std::sync::Arc::new(MemoryStore::new(config.store.clone()));
        Self::start_tenants(
            store,
            None,
            config,
            earshot_server::SpeechStatus::Disabled,
            Tenants::open(),
        )
        .await
    }

    /// An app with speech recognition on the given backend.
    pub async fn start_speech_on(backend: Backend, speech: earshot_server::SpeechStatus) -> Self {
        let config = test_server_config();
        let (store, redis) = open_store(backend, config.store.clone()).await;
        Self::start_custom(store, redis, config, speech).await
    }

    async fn start_custom(
        store: DynStore,
        redis: Option<RedisServer>,
        config: ServerConfig,
        speech: earshot_server::SpeechStatus,
    ) -> Self {
        let tenants = Tenants::parse(&format!("acme:{ACME},globex:{GLOBEX}")).unwrap();
        Self::start_tenants(store, redis, config, speech, tenants).await
    }

    async fn start_tenants(
        store: DynStore,
        redis: Option<RedisServer>,
        config: ServerConfig,
        speech: earshot_server::SpeechStatus,
        tenants: Tenants,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let shutdown = CancellationToken::new();
        let server = Server::start(
            listener,
            store.clone(),
            tenants,
            config,
            speech,
            shutdown.clone(),
        )
        .await
        .unwrap();
        let addr = server.addr();
        let base = format!("http://{addr}");
        tokio::spawn(server.wait());
        Self {
            addr,
            base,
            client: Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap(),
            store,
            redis,
            shutdown,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn get(&self, key: &str, path: &str) -> RequestBuilder {
        self.client.get(self.url(path)).bearer_auth(key)
    }

    /// The JSON body of a `GET` as the tenant of `key`.
    pub async fn get_json(&self, key: &str, path: &str) -> Value {
        self.get(key, path)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The text of `/metrics`.
    pub async fn metrics(&self) -> String {
        let r = self.client.get(self.url("/metrics")).send().await.unwrap();
        r.text().await.unwrap()
    }

    /// How many sessions the tenant of `key` sees in its list.
    pub async fn session_count(&self, key: &str) -> usize {
        let v = self.get_json(key, "/v1/sessions").await;
        v["sessions"].as_array().unwrap().len()
    }

    pub fn post(&self, key: &str, path: &str) -> RequestBuilder {
        self.client.post(self.url(path)).bearer_auth(key)
    }

    pub fn delete(&self, key: &str, path: &str) -> RequestBuilder {
        self.client.delete(self.url(path)).bearer_auth(key)
    }

    /// Creates a session with the given id for the tenant of `key`.
    pub async fn create(&self, key: &str, id: &str) -> Value {
        let r = self
            .post(key, "/v1/sessions")
            .json(&serde_json::json!({"session_id": id}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "create {id}");
        r.json().await.unwrap()
    }

    /// Appends a segment and returns its seq.
    pub async fn append(&self, key: &str, id: &str, text: &str) -> u64 {
        let r = self
            .post(key, &format!("/v1/sessions/{id}/segments"))
            .json(&serde_json::json!({"text": text}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "append to {id}");
        r.json::<Value>().await.unwrap()["seq"].as_u64().unwrap()
    }

    /// Every entry of every event stream (one per partition on a cluster), as JSON.
    pub async fn events(&self) -> Vec<Value> {
        let mut all = Vec::new();
        for stream in self.store.event_streams() {
            let entries = self
                .store
                .read_stream(&stream, earshot_core::StreamId::ZERO, 100_000)
                .await
                .unwrap();
            all.extend(entries.iter().map(|e| e.to_json()));
        }
        all
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Asserts the API's error shape and status, and returns the error code.
pub async fn expect_error(resp: Response, status: u16) -> String {
    assert_eq!(resp.status().as_u16(), status, "status of {}", resp.url());
    let retry = resp.headers().get("retry-after").is_some();
    let body: Value = resp.json().await.expect("error body is JSON");
    let code = body["error"]["code"]
        .as_str()
        .expect("error.code")
        .to_owned();
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "error.message present: {body}"
    );
    if status == 503 {
        assert!(retry, "503 carries Retry-After");
    }
    code
}

/// Instantiates each listed async test fn for both backends.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name(super::common::Backend::Memory).await }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name(super::common::Backend::Redis).await }
            )*
        }
    };
}

/// Sends raw bytes on a fresh connection (for requests no HTTP client would send: a
/// foreign `Host`, a browser's `Origin`) and returns the response: its head and
/// `Content-Length` bytes of body, or what came until the server closed (at most 10 s).
pub async fn raw_exchange(addr: std::net::SocketAddr, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = String::from_utf8_lossy(&out).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())?
            });
            if len.is_some_and(|n| body.len() >= n) {
                return text;
            }
        }
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => out.extend_from_slice(&buf[..n]),
            _ => return text,
        }
    }
}

/// The status code of a raw HTTP/1.1 response.
pub fn raw_status(resp: &str) -> u16 {
    resp.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {resp:?}"))
}

/// The `error.code` of a raw response in the API's error shape.
pub fn raw_error_code(resp: &str) -> String {
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or_default();
    let v: Value = serde_json::from_str(body.trim())
        .unwrap_or_else(|e| panic!("error body is not JSON ({e}): {resp:?}"));
    v["error"]["code"].as_str().expect("error.code").to_owned()
}

/// A fresh store of the given kind; a Redis one on its own `redis-server`.
async fn open_store(backend: Backend, cfg: StoreConfig) -> (DynStore, Option<RedisServer>) {
    match backend {
        Backend::Memory => (std::sync::Arc::new(MemoryStore::new(cfg)), None),
        Backend::Redis => {
            let server = RedisServer::start();
            (redis_store(&server, cfg).await, Some(server))
        }
    }
}

async fn redis_store(server: &RedisServer, cfg: StoreConfig) -> DynStore {
    let store = RedisStore::connect(&server.url(), cfg)
        .await
        .expect("connect to the test redis");
    std::sync::Arc::new(store)
}
