//! One `earshot serve` process of a multi-node deployment: the real binary on a free
//! port, pointed at the binary's shared Redis Cluster, its log in a file (shown when a
//! test fails), killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use earshot_testsupport::free_port;
use serde_json::Value;

/// The keys every node accepts. The tests of this binary share one cluster and run at
/// once, so each test has a tenant of its own (SSE delivers a whole tenant's events).
pub const KEYS: &str = "acme:acme-key-0001,zeta:zeta-key-0001,lima:lima-key-0001";
pub const ACME: &str = "acme-key-0001";
pub const ZETA: &str = "zeta-key-0001";
pub const LIMA: &str = "lima-key-0001";

/// Longest a node may take to answer `/readyz` (a model load on a busy machine).
const START_PATIENCE: Duration = Duration::from_secs(120);

pub struct Node {
    pub name: String,
    child: Child,
    log: PathBuf,
    pub base: String,
    http: reqwest::Client,
}

impl Node {
    /// Starts `earshot serve` with `envs` on top of the cluster URL and the keys, and
    /// waits until it is ready.
    pub async fn start(dir: &Path, name: &str, redis_url: &str, envs: &[(&str, String)]) -> Self {
        let port = free_port();
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_earshot"));
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .env("EARSHOT_LISTEN", format!("127.0.0.1:{port}"))
            .env("REDIS_URL", redis_url)
            .env("EARSHOT_API_KEYS", KEYS)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn earshot serve");
        let mut node = Self {
            name: name.to_owned(),
            child,
            log,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        let deadline = Instant::now() + START_PATIENCE;
        loop {
            if let Some(status) = node.child.try_wait().unwrap() {
                panic!("{name} exited ({status}):\n{}", node.log());
            }
            if let Ok(r) = node.http.get(format!("{}/readyz", node.base)).send().await {
                if r.status().is_success() {
                    return node;
                }
            }
            assert!(Instant::now() < deadline, "{name} never became ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: the node dies holding whatever it held (locks, stream slots).
    pub fn kill9(&mut self) {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGKILL) };
        let _ = self.child.wait();
    }

    /// `ws://…` for a path.
    pub fn ws(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base.replace("http://", "ws://"))
    }

    /// A request with `key`'s bearer token.
    pub fn req(&self, method: reqwest::Method, key: &str, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key)
    }

    /// A JSON request; returns the status and the body (null if none).
    pub async fn json(
        &self,
        method: reqwest::Method,
        key: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = self.req(method, key, path);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("----- {} log -----\n{}", self.name, self.log());
        }
    }
}
