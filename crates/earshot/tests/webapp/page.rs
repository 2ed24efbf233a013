//! What every web app test shares: the prerequisites, the one-at-a-time lock, the set-up
//! (a server and a browser whose microphone speaks), and reading the page as a person sees
//! it (captions, status states), through `data-testid` hooks.

use std::path::{Path, PathBuf};
use std::time::Duration;

use earshot_testsupport::speech::{model_path, normalize, wer};
use serde_json::Value;

use crate::browser::{self, Browser, Options};
use crate::clip;
use crate::serve::Serve;

pub(crate) static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Generous bounds for a loaded CI machine; they only end a broken run.
pub(crate) const PAGE: Duration = Duration::from_secs(30);
pub(crate) const SPEECH: Duration = Duration::from_secs(240);

/// Console messages the browser itself prints when the server is away (a restart), which
/// the page cannot prevent; anything else at error level fails the test.
pub(crate) const NETWORK_NOISE: &[&str] = &["net::ERR_", "WebSocket connection to"];

/// The model, and whether the browser is there; `None` skips (outside CI only).
pub(crate) fn prerequisites() -> Option<PathBuf> {
    browser::programs()?;
    model_path()
}

/// What the caption box shows: `(seq, text)` of each final, in page order.
pub(crate) async fn finals(b: &Browser) -> Vec<(u64, String)> {
    let v = b
        .js(r#"return [...document.querySelectorAll('[data-testid="transcript"] [data-testid="final"]')]
                .map(f => [Number(f.dataset.seq), f.textContent.trim()])"#)
        .await;
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_u64().unwrap(), p[1].as_str().unwrap().to_owned()))
        .collect()
}

pub(crate) fn joined(f: &[(u64, String)]) -> String {
    f.iter()
        .map(|(_, t)| t.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Records, in the page, the order in which partials and finals first appear and every
/// state the status line goes through (a person sees them even if a poll would not).
pub(crate) async fn observe(b: &Browser) {
    b.js(r#"
        window.__seen = [];
        window.__states = [];
        window.__colors = ["", ""];
        const t = document.querySelector('[data-testid="transcript"]');
        new MutationObserver(() => {
          for (const k of ["partial", "final"]) {
            const e = t.querySelector(`[data-testid="${k}"]`);
            if (!window.__seen.includes(k) && e) {
              window.__seen.push(k);
              window.__colors[k === "partial" ? 0 : 1] = getComputedStyle(e).color;
            }
          }
        }).observe(t, { childList: true, subtree: true, characterData: true });
        const s = document.querySelector('[data-testid="status"]');
        new MutationObserver(() => {
          const st = s.dataset.state;
          if (window.__states[window.__states.length - 1] !== st) window.__states.push(st);
        }).observe(s, { attributes: true, attributeFilter: ["data-state"] });
        return true;"#)
        .await;
}

pub(crate) async fn strings(b: &Browser, expr: &str) -> Vec<String> {
    b.js(&format!("return {expr}"))
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// Asserts finals are numbered 0, 1, 2… once each: nothing shown twice, nothing skipped.
pub(crate) fn assert_gap_free(f: &[(u64, String)]) {
    let seqs: Vec<u64> = f.iter().map(|(s, _)| *s).collect();
    let expected: Vec<u64> = (0..seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "finals shown once each, in order: {f:?}");
}

/// Waits for `name` in the download directory, complete, and returns its text.
pub(crate) async fn downloaded(b: &Browser, dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    b.wait(&format!("download {name}"), PAGE, || async {
        // Chromium writes `<name>.crdownload` and renames it when done.
        std::fs::read_to_string(&path)
            .ok()
            .filter(|s| !s.is_empty())
    })
    .await
}

/// Clicks `button` (Start, or Retry) and waits for live captions to cover `reference`, then
/// Stop and `completed`; returns the session id and the finals shown.
pub(crate) async fn speak(
    b: &Browser,
    button: &str,
    reference: &str,
    stage: &str,
) -> (String, Vec<(u64, String)>) {
    b.by_id(button).await.click().await.unwrap();
    b.wait_state("live", PAGE).await;
    let id = b.text("session-id").await;
    assert!(id.starts_with("live-"), "session id shown: {id:?}");
    b.wait("the first final", SPEECH, || async {
        (!finals(b).await.is_empty()).then_some(())
    })
    .await;
    b.shot(&format!("{stage}-live")).await;
    // The speech ends 3 s before the fake microphone's audio does: wait until the
    // captions hold (about) all of it, then stop as a person would.
    let reference_words = reference.split_whitespace().count();
    b.wait("captions of the whole speech", SPEECH, || async {
        let f = finals(b).await;
        let words = joined(&f).split_whitespace().count();
        (words + 2 >= reference_words || wer(reference, &joined(&f)) < 0.2).then_some(())
    })
    .await;
    b.by_id("stop").await.click().await.unwrap();
    b.wait_state("completed", SPEECH).await;
    (id, finals(b).await)
}

/// A test's server and browser, and what the fake microphone says.
pub(crate) struct Setup {
    /// Declared first, so it is dropped (and Chromium quit) before the server goes.
    pub b: Browser,
    pub server: Serve,
    /// The reference text of the speech (empty with a silent microphone).
    pub reference: String,
    /// Where each clip starts and ends in the speech (ms).
    pub spans: Vec<(u64, u64)>,
    /// Where the browser's downloads land.
    pub downloads: PathBuf,
    /// Holds the speech WAV, which Chromium reads only once Start is pressed.
    _dir: tempfile::TempDir,
}

/// Starts `earshot serve` on `model` with `envs`, and a browser named `name` whose fake
/// microphone says `clips` (silent when there are none); the page is not opened.
pub(crate) async fn launch(
    model: &Path,
    name: &str,
    clips: &[&str],
    envs: &[(&str, &str)],
) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let downloads = dir.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let wav = dir.path().join("speech.wav");
    let (reference, spans) = if clips.is_empty() {
        (String::new(), Vec::new())
    } else {
        clip::speech_wav(clips, &wav)
    };
    let server = Serve::start(model, envs).await;
    let b = Browser::launch(
        name,
        Options {
            mic_wav: (!clips.is_empty()).then_some(wav.as_path()),
            downloads: &downloads,
        },
    )
    .await;
    Setup {
        b,
        server,
        reference,
        spans,
        downloads,
        _dir: dir,
    }
}

/// [`launch`], then the app opened with Start ready and the page [`observe`]d.
pub(crate) async fn launch_with_mic(
    model: &Path,
    name: &str,
    clips: &[&str],
    envs: &[(&str, &str)],
) -> Setup {
    let s = launch(model, name, clips, envs).await;
    open(&s.b, &s.server).await;
    observe(&s.b).await;
    s
}

/// The body of a `GET` of `url`, as text.
pub(crate) async fn get_text(url: &str) -> String {
    let r = reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    r.text()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: reading the body: {e}"))
}

/// Opens the app served by `server` and waits until Start can be pressed.
pub(crate) async fn open(b: &Browser, server: &Serve) {
    b.client.goto(&format!("{}/", server.base())).await.unwrap();
    b.wait("Start enabled", PAGE, || async {
        b.by_id("start")
            .await
            .is_enabled()
            .await
            .ok()?
            .then_some(())
    })
    .await;
}

/// The session's transcript as the server stored it (`GET /v1/sessions/{id}/transcript`).
pub(crate) async fn stored(server: &Serve, id: &str) -> Value {
    reqwest::get(format!("{}/v1/sessions/{id}/transcript", server.base()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// How many times `word` is in `text`, compared as the WER is (case, punctuation, digits).
pub(crate) fn count(text: &str, word: &str) -> usize {
    normalize(text).iter().filter(|w| *w == word).count()
}

/// Counts, in the page, the audio bytes it sends over WebSockets: the test's clock of how
/// far the fake microphone has got in its speech (see [`audio_sent_ms`]).
pub(crate) async fn count_audio_sent(b: &Browser) {
    b.js(r#"
        window.__audioBytes = 0;
        const send = WebSocket.prototype.send;
        WebSocket.prototype.send = function (data) {
          if (typeof data !== "string") window.__audioBytes += data.byteLength;
          return send.call(this, data);
        };
        return true;"#)
        .await;
}

/// Milliseconds of audio sent so far (16 kHz `pcm_s16le`: 32 bytes a millisecond). On a
/// first connection, where nothing is sent twice, that is how far the speech has got.
pub(crate) async fn audio_sent_ms(b: &Browser) -> u64 {
    b.js("return window.__audioBytes").await.as_u64().unwrap() / 32
}
