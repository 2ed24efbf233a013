//! A real headless Chromium, driven over WebDriver by chromedriver, with a fake microphone
//! that plays a WAV file once. Tests find everything through the page's `data-testid`
//! hooks, and wait for conditions, never for a fixed time.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// Where screenshots go (kept after the run, for people to look at).
pub fn shots_dir() -> PathBuf {
    let dir = std::env::var_os("EARSHOT_SHOTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/webapp-shots"));
    std::fs::create_dir_all(&dir).expect("create the screenshot directory");
    dir
}

fn find_program(names: &[&str], env: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Some(PathBuf::from(p));
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .flat_map(|d| names.iter().map(move |n| d.join(n)))
        .find(|p| p.is_file())
}

/// chromium and chromedriver, or `None` (with a notice) when they are missing and not
/// required. Under CI (`EARSHOT_REQUIRE_MODEL=1` or `EARSHOT_REQUIRE_BROWSER=1`) a
/// missing browser fails the test: the web app must not go untested there.
pub fn programs() -> Option<(PathBuf, PathBuf)> {
    let chrome = find_program(&["chromium", "chromium-browser", "google-chrome"], "CHROME");
    let driver = find_program(&["chromedriver"], "CHROMEDRIVER");
    match (chrome, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        _ => {
            let required = ["EARSHOT_REQUIRE_MODEL", "EARSHOT_REQUIRE_BROWSER"]
                .iter()
                .any(|v| std::env::var(v).as_deref() == Ok("1"));
            let msg = "chromium and chromedriver are needed for the web app's browser tests: \
                       `apt-get install chromium chromium-driver` (make test does it), or set \
                       CHROME / CHROMEDRIVER";
            if required {
                panic!("{msg}");
            }
            eprintln!("NOTICE: skipping: {msg}");
            None
        }
    }
}

/// What the browser is started with.
pub struct Options<'a> {
    /// The fake microphone's audio (played once, then silence).
    pub mic_wav: Option<&'a Path>,
    /// Where downloads land.
    pub downloads: &'a Path,
}

/// A browser session; chromedriver is killed on drop.
pub struct Browser {
    pub client: Client,
    driver: Child,
    driver_port: u16,
    session: String,
    pub name: String,
    /// Console entries read so far (chromedriver hands each out once).
    console: std::sync::Mutex<Vec<(String, String)>>,
    /// The emulated viewport.
    size: std::sync::Mutex<(u64, u64)>,
}

/// chromedriver's log command (`POST /session/{id}/se/log`), for the browser console.
#[derive(Debug)]
struct GetLog;

impl WebDriverCompatibleCommand for GetLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({"type": "browser"}).to_string()),
        )
    }
}

/// A DevTools command through chromedriver (`POST /session/{id}/goog/cdp/execute`).
#[derive(Debug)]
struct Cdp(Value);

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.0.to_string()))
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium; `name` prefixes screenshots.
    pub async fn launch(name: &str, opts: Options<'_>) -> Self {
        let (chrome, driver_bin) = programs().expect("checked by the caller");
        let port = free_port();
        let log =
            std::fs::File::create(std::env::temp_dir().join(format!("chromedriver-{name}.log")))
                .expect("chromedriver log file");
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", driver_bin.display()));
        let mut args = vec![
            "--headless=new".to_owned(),
            // CI containers run as root, where Chromium's sandbox cannot start.
            "--no-sandbox".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-gpu".into(),
            "--no-first-run".into(),
            "--disable-extensions".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--window-size=1280,1000".into(),
            "--use-fake-ui-for-media-stream".into(),
            "--use-fake-device-for-media-stream".into(),
        ];
        if let Some(wav) = opts.mic_wav {
            args.push(format!(
                "--use-file-for-fake-audio-capture={}%noloop",
                wav.display()
            ));
        }
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chrome,
                "args": args,
                "prefs": {
                    "download.default_directory": opts.downloads,
                    "download.prompt_for_download": false,
                    "download.directory_upgrade": true,
                },
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        });
        let caps = match caps {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        let client = loop {
            match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("no WebDriver session from {}: {e}", driver_bin.display()),
            }
        };
        let session = client.session_id().await.ok().flatten().unwrap_or_default();
        let b = Self {
            client,
            driver,
            driver_port: port,
            session,
            name: name.to_owned(),
            console: Default::default(),
            size: std::sync::Mutex::new((1280, 900)),
        };
        b.viewport(1280, 900).await;
        b
    }

    /// The element with `data-testid="id"`.
    pub async fn by_id(&self, id: &str) -> Element {
        self.client
            .find(Locator::Css(&format!("[data-testid=\"{id}\"]")))
            .await
            .unwrap_or_else(|e| panic!("no element data-testid={id}: {e}"))
    }

    /// Every element with `data-testid="id"`.
    pub async fn all(&self, id: &str) -> Vec<Element> {
        self.client
            .find_all(Locator::Css(&format!("[data-testid=\"{id}\"]")))
            .await
            .unwrap_or_default()
    }

    /// The visible text of `data-testid="id"`.
    pub async fn text(&self, id: &str) -> String {
        self.by_id(id).await.text().await.unwrap_or_default()
    }

    /// Runs `script` in the page and returns its value.
    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Polls `check` every 200 ms until it returns `Some`, failing after `timeout` with
    /// `what` and the page's status line; the generous timeouts only bound a broken run.
    pub async fn wait<T, F, Fut>(&self, what: &str, timeout: Duration, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = check().await {
                return v;
            }
            if Instant::now() > deadline {
                let status = self
                    .js("const s = document.querySelector('[data-testid=status]'); return s ? s.textContent : ''")
                    .await;
                self.shot(&format!("FAILED-{}", what.replace(' ', "-")))
                    .await;
                panic!(
                    "timed out after {timeout:?} waiting for {what}; status line: {status}; console: {:#?}",
                    self.console().await
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until the status line's `data-state` is `state`.
    pub async fn wait_state(&self, state: &str, timeout: Duration) {
        self.wait(&format!("status {state}"), timeout, || async {
            let s = self.by_id("status").await.attr("data-state").await.ok()??;
            (s == state).then_some(())
        })
        .await
    }

    /// Emulates a screen of `width` × `height` CSS pixels (a phone when narrow).
    pub async fn viewport(&self, width: u64, height: u64) {
        *self.size.lock().unwrap() = (width, height);
        self.metrics(width, height).await;
    }

    async fn metrics(&self, width: u64, height: u64) {
        self.client
            .issue_cmd(Cdp(json!({
                "cmd": "Emulation.setDeviceMetricsOverride",
                "params": {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
            })))
            .await
            .expect("set the viewport");
    }

    /// Saves a screenshot of the whole page as `<name>-<stage>.png`.
    pub async fn shot(&self, stage: &str) -> PathBuf {
        let (w, h) = *self.size.lock().unwrap();
        // A viewport as tall as the page, so the picture shows all of it.
        let full = self
            .js("return Math.ceil(document.documentElement.scrollHeight)")
            .await
            .as_u64()
            .unwrap_or(h);
        self.metrics(w, full.clamp(h, 4000)).await;
        let png = self.client.screenshot().await.expect("screenshot");
        self.metrics(w, h).await;
        let path = shots_dir().join(format!("{}-{stage}.png", self.name));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// Every browser console entry since the start: `(level, message)`.
    pub async fn console(&self) -> Vec<(String, String)> {
        let v = self.client.issue_cmd(GetLog).await.unwrap_or(Value::Null);
        let mut seen = self.console.lock().unwrap();
        for e in v.as_array().into_iter().flatten() {
            seen.push((
                e["level"].as_str().unwrap_or_default().to_owned(),
                e["message"].as_str().unwrap_or_default().to_owned(),
            ));
        }
        seen.clone()
    }

    /// Console errors (`SEVERE`) whose message matches none of `allowed`.
    pub async fn console_errors(&self, allowed: &[&str]) -> Vec<String> {
        self.console()
            .await
            .into_iter()
            .filter(|(level, msg)| level == "SEVERE" && !allowed.iter().any(|a| msg.contains(a)))
            .map(|(_, msg)| msg)
            .collect()
    }

    /// Ends the session (and Chromium with it).
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Also on a failed test: ask chromedriver to quit Chromium, or it outlives us.
        if !self.session.is_empty() {
            use std::io::{Read, Write};
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.driver_port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let req = format!(
                    "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                    self.session
                );
                if s.write_all(req.as_bytes()).is_ok() {
                    let _ = s.read_to_end(&mut Vec::new());
                }
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
