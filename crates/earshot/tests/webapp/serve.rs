//! `earshot serve` as a user runs it (the real binary), on a fixed port so that a restart
//! keeps the page's origin, with its log kept for failure messages.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Serve {
    child: Option<Child>,
    port: u16,
    envs: Vec<(String, String)>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Serve {
    /// Starts the server with `envs` (plus the test model) and waits until `/readyz` is 200.
    pub async fn start(model: &std::path::Path, envs: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut all: Vec<(String, String)> = envs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        all.push(("EARSHOT_MODEL".into(), model.display().to_string()));
        let mut s = Self {
            child: None,
            port: free_port(),
            envs: all,
            log: dir.path().join("serve.log"),
            _dir: dir,
        };
        s.spawn().await;
        s
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_earshot"));
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("EARSHOT_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log);
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("spawn earshot serve"));
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = client
                .get(format!("{}/readyz", self.base()))
                .timeout(Duration::from_secs(5))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if ready {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("earshot serve exited with {status}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "earshot serve not ready within 60 s:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM (what a deploy sends), waits for the process to finish its graceful
    /// shutdown, then starts it again on the same port.
    pub async fn restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let status = tokio::task::spawn_blocking(move || child.wait())
                .await
                .unwrap()
                .unwrap();
            assert!(status.success(), "graceful shutdown failed: {status}");
        }
        self.spawn().await;
    }
}

impl Serve {
    /// SIGKILL, as a crash or the kernel's out-of-memory killer would: no `draining`, no
    /// lock released, the audio it had read but not finalized gone with it.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            tokio::task::spawn_blocking(move || child.wait())
                .await
                .unwrap()
                .unwrap();
        }
    }

    /// Starts the server again on the same port, after [`Self::kill`].
    pub async fn start_again(&mut self) {
        assert!(self.child.is_none(), "the server is still running");
        self.spawn().await;
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
