//! A throwaway `redis-server` process owned by one test.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a fresh server gets to answer `PING` before the start counts as failed.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How many free ports to try if another process grabs ours between probe and bind.
const START_ATTEMPTS: usize = 5;

/// Options for [`RedisServer`]; `RedisServer::start()` uses the defaults.
#[derive(Debug, Clone, Default)]
pub struct RedisServerBuilder {
    appendonly: bool,
    extra_args: Vec<String>,
    /// Linux: the server gets SIGKILL when the thread that started it exits, so a
    /// killed test binary leaves no server behind.
    die_with_parent: bool,
    /// Serve TLS on a second port with these PEM files: (certificate, key, CA).
    tls: Option<(PathBuf, PathBuf, PathBuf)>,
}

impl RedisServerBuilder {
    /// Persist every write with `--appendonly yes --appendfsync always`, so data
    /// survives [`RedisServer::stop`] + [`RedisServer::restart`].
    pub fn appendonly(mut self, on: bool) -> Self {
        self.appendonly = on;
        self
    }

    /// Any other `redis-server` argument, e.g. `["--maxmemory", "10mb"]`.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.extra_args.push(arg.into());
        self
    }

    /// Also serve TLS, with a server certificate for `127.0.0.1` signed by `ca`, on a
    /// port of its own ([`RedisServer::tls_url`]). The plain port stays open for the
    /// test's own checks. Clients need no certificate unless `--tls-auth-clients yes`
    /// is added with [`RedisServerBuilder::arg`].
    pub fn tls(mut self, ca: &crate::TestCa) -> Self {
        self.tls = Some((ca.server_cert(), ca.server_key(), ca.ca_cert()));
        self
    }

    /// Kill the server when the starting thread exits (see the field).
    pub(crate) fn die_with_parent(mut self) -> Self {
        self.die_with_parent = true;
        self
    }

    /// Starts the server; panics with a clear message if it cannot.
    pub fn start(self) -> RedisServer {
        let binary = find_binary();
        let dir = tempfile::Builder::new()
            .prefix("earshot-redis-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temp dir for redis-server: {e}"));
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            let tls_port = self.tls.as_ref().map(|_| free_port());
            match spawn(&binary, &self, dir.path(), port, tls_port) {
                Ok(child) => {
                    return RedisServer {
                        binary,
                        options: self,
                        dir,
                        port,
                        tls_port,
                        child: Some(child),
                        reservation: None,
                    }
                }
                Err(e) => last_error = e,
            }
        }
        panic!("redis-server did not start after {START_ATTEMPTS} attempts: {last_error}");
    }
}

/// A running `redis-server` on `127.0.0.1:<port>` in its own temporary directory.
/// Killed (and its directory removed) on drop.
#[derive(Debug)]
pub struct RedisServer {
    binary: PathBuf,
    options: RedisServerBuilder,
    dir: TempDir,
    port: u16,
    /// The TLS port, when started with [`RedisServerBuilder::tls`].
    tls_port: Option<u16>,
    child: Option<Child>,
    /// Held while the server is stopped so nobody else takes the port before `restart`.
    reservation: Option<TcpListener>,
}

impl RedisServer {
    /// Starts a server on a port the caller chose (a cluster needs its bus port,
    /// +10000, free too), in a fresh temporary directory.
    pub(crate) fn start_on(options: RedisServerBuilder, port: u16) -> Result<Self, String> {
        let binary = find_binary();
        let dir = tempfile::Builder::new()
            .prefix("earshot-redis-")
            .tempdir()
            .map_err(|e| format!("cannot create a temp dir for redis-server: {e}"))?;
        let tls_port = options.tls.as_ref().map(|_| free_port());
        let child = spawn(&binary, &options, dir.path(), port, tls_port)?;
        Ok(RedisServer {
            binary,
            options,
            dir,
            port,
            tls_port,
            child: Some(child),
            reservation: None,
        })
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts a server with no persistence (`--save '' --appendonly no`).
    pub fn start() -> Self {
        Self::builder().start()
    }

    /// Options (AOF persistence, extra arguments).
    pub fn builder() -> RedisServerBuilder {
        RedisServerBuilder::default()
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `rediss://127.0.0.1:<tls port>`; panics unless started with TLS.
    pub fn tls_url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.tls_port())
    }

    /// The TLS port; panics unless started with TLS.
    pub fn tls_port(&self) -> u16 {
        self.tls_port
            .expect("this redis-server was not started with TLS")
    }

    /// The TCP port, stable across `stop`/`restart`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's working directory (AOF files live here).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// True while the process runs.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the server and waits for it to exit. The port stays reserved for
    /// `restart`: while stopped, a listener that never answers holds it, so clients
    /// see a server that does not respond (connect succeeds, replies never come) — the
    /// hardest kind of outage for a client.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if self.reservation.is_none() {
            // Best effort: if binding fails the port is simply refused while stopped.
            self.reservation = TcpListener::bind(("127.0.0.1", self.port)).ok();
        }
    }

    /// Kills the server without holding the port, so clients get "connection refused".
    pub fn stop_refusing(&mut self) {
        self.stop();
        self.reservation = None;
    }

    /// Starts the server again on the same port and directory (AOF data survives).
    pub fn restart(&mut self) {
        self.stop();
        self.reservation = None;
        match spawn(
            &self.binary,
            &self.options,
            self.dir.path(),
            self.port,
            self.tls_port,
        ) {
            Ok(child) => self.child = Some(child),
            Err(e) => panic!("redis-server did not restart on port {}: {e}", self.port),
        }
    }
}

/// Runs `redis-server` on `port` in `dir` and waits until it answers `PING`.
fn spawn(
    binary: &Path,
    options: &RedisServerBuilder,
    dir: &Path,
    port: u16,
    tls_port: Option<u16>,
) -> Result<Child, String> {
    let mut cmd = Command::new(binary);
    cmd.arg("--port")
        .arg(port.to_string())
        .arg("--bind")
        .arg("127.0.0.1")
        .arg("--dir")
        .arg(dir)
        .arg("--logfile")
        .arg(dir.join("redis.log"))
        .arg("--daemonize")
        .arg("no")
        .arg("--protected-mode")
        .arg("no")
        .arg("--save")
        .arg("");
    if options.appendonly {
        cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
    } else {
        cmd.args(["--appendonly", "no"]);
    }
    if let (Some((cert, key, ca)), Some(tls_port)) = (&options.tls, tls_port) {
        cmd.arg("--tls-port")
            .arg(tls_port.to_string())
            .arg("--tls-cert-file")
            .arg(cert)
            .arg("--tls-key-file")
            .arg(key)
            .arg("--tls-ca-cert-file")
            .arg(ca)
            .args(["--tls-auth-clients", "no"]);
    }
    cmd.args(&options.extra_args);
    if options.die_with_parent {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe and touches only the child being started.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(dir.join("redis.log")).unwrap_or_default();
            return Err(format!("exited with {status}: {log}"));
        }
        if answers_ping(addr) {
            return Ok(child);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("no PONG on port {port} within {START_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `redis-server` from `$REDIS_SERVER`, `PATH` or `/usr/bin`; panics with what to do.
pub(crate) fn find_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("REDIS_SERVER") {
        return PathBuf::from(p);
    }
    let from_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("redis-server"))
            .find(|p| p.is_file())
    });
    if let Some(p) = from_path {
        return p;
    }
    let fallback = PathBuf::from("/usr/bin/redis-server");
    if fallback.is_file() {
        return fallback;
    }
    panic!(
        "redis-server not found (looked in $REDIS_SERVER, PATH and /usr/bin). The Redis tests \
         start their own server: install it (`apt-get install redis-server`) or run `make test`, \
         which installs it."
    );
}

/// A port the kernel just handed out, for a test process (redis, `earshot serve`) to bind
/// right after.
pub fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot find a free port: {e}"))
}

/// True if the server at `addr` answers `PING` with `+PONG` (not `-LOADING`).
fn answers_ping(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(100)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(n) => buf[..n].starts_with(b"+PONG"),
        Err(_) => false,
    }
}
