//! A throwaway Redis Cluster owned by one test binary: 6 `redis-server` processes with
//! `--cluster-enabled yes` (3 primaries, 3 replicas) joined by
//! `redis-cli --cluster create`, each in its own temporary directory. Killed on drop.
//!
//! A cluster takes a few seconds to form, so a test binary starts one and shares it
//! (see [`RedisCluster::shared`]); tests keep apart by flushing or by using their own ids.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::redis_server::{find_binary, RedisServer, RedisServerBuilder};

/// How long the cluster gets to report `cluster_state:ok` on every node.
const FORM_TIMEOUT: Duration = Duration::from_secs(60);
/// Primaries; each gets one replica.
const PRIMARIES: usize = 3;
/// How often to retry with fresh ports when another process takes one meanwhile.
const ATTEMPTS: usize = 3;

/// A running 6-node cluster on `127.0.0.1`.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts 3 primaries and 3 replicas and waits until every node reports
    /// `cluster_state:ok` and sees its replicas; panics with the reason if it cannot.
    pub fn start() -> Self {
        Self::start_with(false, None)
    }

    /// Like [`RedisCluster::start`], with every node also serving TLS (certificates
    /// signed by `ca`) and the cluster bus and replication over TLS; clients connect
    /// through [`RedisCluster::tls_url`]. The plain ports stay open for the test's own
    /// checks.
    pub fn start_tls(ca: &crate::TestCa) -> Self {
        Self::start_with(false, Some(ca))
    }

    fn start_with(die_with_parent: bool, tls: Option<&crate::TestCa>) -> Self {
        let mut last = String::new();
        for _ in 0..ATTEMPTS {
            match Self::try_start(die_with_parent, tls) {
                Ok(c) => return c,
                Err(e) => last = e,
            }
        }
        panic!("Redis Cluster did not form after {ATTEMPTS} attempts: {last}");
    }

    /// One cluster for the whole test binary, started on first use. Statics are never
    /// dropped, so its processes are killed and its directories removed by an `atexit`
    /// hook when the test binary exits; if the binary is killed instead, the nodes die
    /// with the thread that started them, which parks until the process ends.
    pub fn shared() -> &'static RedisCluster {
        SHARED.get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = tx.send(std::panic::catch_unwind(|| Self::start_with(true, None)));
                loop {
                    std::thread::park();
                }
            });
            let cluster = match rx.recv() {
                Ok(Ok(c)) => c,
                Ok(Err(panic)) => std::panic::resume_unwind(panic),
                Err(_) => panic!("the cluster starter thread died"),
            };
            // SAFETY: registers a plain `extern "C" fn` with no arguments, as atexit wants.
            unsafe {
                libc::atexit(kill_shared);
            }
            cluster
        })
    }

    fn try_start(die_with_parent: bool, tls: Option<&crate::TestCa>) -> Result<Self, String> {
        let ports = free_cluster_ports(PRIMARIES * 2)?;
        let mut nodes = Vec::with_capacity(ports.len());
        for &port in &ports {
            let mut builder = RedisServer::builder();
            if die_with_parent {
                builder = builder.die_with_parent();
            }
            if let Some(ca) = tls {
                // The bus port is the plain port's +10000 (which is known free), not the
                // TLS port's.
                builder = builder
                    .tls(ca)
                    .arg("--tls-cluster")
                    .arg("yes")
                    .arg("--tls-replication")
                    .arg("yes")
                    .arg("--cluster-port")
                    .arg((port + 10000).to_string());
            }
            nodes.push(
                builder
                    .arg("--cluster-enabled")
                    .arg("yes")
                    .arg("--cluster-node-timeout")
                    .arg("2000")
                    .arg("--cluster-config-file")
                    .arg("nodes.conf")
                    .try_start_on(port)?,
            );
        }
        let cli = find_cli(&find_binary());
        let mut cmd = Command::new(&cli);
        cmd.arg("--cluster").arg("create");
        for &port in &ports {
            cmd.arg(format!("127.0.0.1:{port}"));
        }
        cmd.args(["--cluster-replicas", "1", "--cluster-yes"]);
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", cli.display()))?;
        if !out.status.success() {
            return Err(format!(
                "redis-cli --cluster create failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let cluster = Self { nodes };
        cluster.wait_formed(FORM_TIMEOUT)?;
        Ok(cluster)
    }

    /// `redis+cluster://127.0.0.1:p1,127.0.0.1:p2,...` over every node.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        format!("redis+cluster://{}", seeds.join(","))
    }

    /// `rediss+cluster://127.0.0.1:t1,...` over every node's TLS port; panics unless
    /// started with [`RedisCluster::start_tls`].
    pub fn tls_url(&self) -> String {
        let seeds: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.tls_port()))
            .collect();
        format!("rediss+cluster://{}", seeds.join(","))
    }

    /// The nodes, in creation order (the first 3 started as primaries).
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// Mutable access, e.g. to kill a primary with [`RedisServer::stop_refusing`].
    pub fn nodes_mut(&mut self) -> &mut [RedisServer] {
        &mut self.nodes
    }

    /// Ports of the nodes that are primaries right now (failover changes this).
    pub fn primary_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.is_running())
            .filter(|n| {
                cli(n.port(), &["ROLE"])
                    .map(|r| r.starts_with("master"))
                    .unwrap_or(false)
            })
            .map(|n| n.port())
            .collect()
    }

    /// Runs a command on one node with `redis-cli` and returns its raw output.
    pub fn cli(&self, port: u16, args: &[&str]) -> Result<String, String> {
        cli(port, args)
    }

    /// `FLUSHALL` on every primary, so a test starts on an empty keyspace.
    pub fn flush_all(&self) {
        for port in self.primary_ports() {
            cli(port, &["FLUSHALL"]).unwrap_or_else(|e| panic!("FLUSHALL on {port}: {e}"));
        }
    }

    /// Waits until every running node says `cluster_state:ok`, all 16384 slots are
    /// assigned, and there are 3 primaries that each have a replica online.
    pub fn wait_formed(&self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.formed() {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if Instant::now() > deadline {
                return Err(format!("cluster not ready within {timeout:?}: {last}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn formed(&self) -> Result<(), String> {
        let mut primaries = 0;
        for node in self.nodes.iter().filter(|n| n.is_running()) {
            let info = cli(node.port(), &["CLUSTER", "INFO"])?;
            if !info.contains("cluster_state:ok") || !info.contains("cluster_slots_ok:16384") {
                return Err(format!("node {}: {}", node.port(), info.trim()));
            }
            let role = cli(node.port(), &["INFO", "replication"])?;
            if role.contains("role:master") {
                if !role.contains("connected_slaves:1") {
                    return Err(format!("primary {} has no replica yet", node.port()));
                }
                primaries += 1;
            } else if !role.contains("master_link_status:up") {
                return Err(format!("replica {} is not in sync yet", node.port()));
            }
        }
        if primaries == PRIMARIES {
            Ok(())
        } else {
            Err(format!("{primaries} primaries"))
        }
    }
}

static SHARED: OnceLock<RedisCluster> = OnceLock::new();

/// Kills the shared cluster's processes and removes their directories at exit.
extern "C" fn kill_shared() {
    if let Some(cluster) = SHARED.get() {
        for node in &cluster.nodes {
            if let Some(pid) = node.pid() {
                // SAFETY: signalling a child process we started; a stale pid is harmless
                // because our own children are not reaped before this runs.
                unsafe {
                    libc::kill(pid as libc::pid_t, libc::SIGKILL);
                }
            }
            let _ = std::fs::remove_dir_all(node.dir());
        }
    }
}

/// `redis-cli -p <port> <args>`.
fn cli(port: u16, args: &[&str]) -> Result<String, String> {
    let bin = find_cli(&find_binary());
    let out = Command::new(&bin)
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// `redis-cli` beside `redis-server`, else from `PATH`.
fn find_cli(server: &Path) -> std::path::PathBuf {
    let beside = server.with_file_name("redis-cli");
    if beside.is_file() {
        beside
    } else {
        "redis-cli".into()
    }
}

/// `n` distinct ports that are free, each with its cluster bus port (+10000) free too.
fn free_cluster_ports(n: usize) -> Result<Vec<u16>, String> {
    let mut held = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..n * 50 {
        if ports.len() == n {
            return Ok(ports);
        }
        let Ok(l) = TcpListener::bind(("127.0.0.1", 0)) else {
            continue;
        };
        let Ok(port) = l.local_addr().map(|a| a.port()) else {
            continue;
        };
        let Some(bus) = port.checked_add(10000) else {
            continue;
        };
        if let Ok(b) = TcpListener::bind(("127.0.0.1", bus)) {
            // Hold both until all are chosen, so we never pick the same pair twice.
            held.push((l, b));
            ports.push(port);
        }
    }
    Err(format!("found only {} of {n} free port pairs", ports.len()))
}

impl RedisServerBuilder {
    /// Starts on a given port, for callers that chose the port themselves.
    fn try_start_on(self, port: u16) -> Result<RedisServer, String> {
        RedisServer::start_on(self, port)
    }
}
