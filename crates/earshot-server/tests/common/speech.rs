//! Servers with a real model behind one decode slot (tiny.en unless a test loads another),
//! the shared clips, and (from [`super::live`]) the WebSocket client.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use earshot_asr::{
    AdmissionConfig, Engine, EngineConfig, Scheduler, SchedulerConfig, StreamConfig,
};
use earshot_server::{Speech, SpeechStatus};
use earshot_testsupport::speech::{audio_dir, model_path};

#[allow(unused_imports)]
pub use super::live::{connect, open, play, run_stream, s16le, script, Seen, Step, Ws};
use super::TestApp;

/// The name the default test model is served under.
pub const TINY: &str = "ggml-tiny.en.bin";

/// Loads a model with the default settings.
pub fn load(path: &Path) -> Arc<Engine> {
    Engine::load(EngineConfig::new(path)).expect("model loads")
}

/// The default test model (tiny.en), loaded once per test binary, or `None` when no model
/// is available and none is required.
pub fn engine() -> Option<Arc<Engine>> {
    static ENGINE: OnceLock<Option<Arc<Engine>>> = OnceLock::new();
    ENGINE
        .get_or_init(|| model_path().map(|p| load(&p)))
        .clone()
}

/// `engine` served as `model_name` behind one decode slot.
pub fn speech(
    engine: Arc<Engine>,
    model_name: &str,
    max_streams: usize,
    admission: AdmissionConfig,
    idle: Duration,
) -> SpeechStatus {
    let scheduler = Scheduler::with_config(
        engine,
        SchedulerConfig {
            decode_slots: 1,
            max_streams,
            admission,
        },
    );
    SpeechStatus::Ready(Arc::new(Speech {
        scheduler,
        stream: StreamConfig::default(),
        idle_timeout: idle,
        model_name: model_name.into(),
    }))
}

/// The default model with two streams and a 30 s idle timeout, for apps a test
/// configures itself; `None` (the test returns) without a model.
pub fn speech_ready() -> Option<SpeechStatus> {
    Some(speech(
        engine()?,
        TINY,
        2,
        AdmissionConfig::default(),
        Duration::from_secs(30),
    ))
}

/// A server on the embedded store with `engine` served as `model_name`.
pub async fn app_on(engine: Arc<Engine>, model_name: &str) -> TestApp {
    let s = speech(
        engine,
        model_name,
        2,
        AdmissionConfig::default(),
        Duration::from_secs(30),
    );
    TestApp::start_speech(s).await
}

/// A speech app, or `None` (test returns) when no model is available and not required.
pub async fn speech_app(max_streams: usize, idle: Duration) -> Option<TestApp> {
    speech_app_with(max_streams, AdmissionConfig::default(), idle).await
}

pub async fn speech_app_with(
    max_streams: usize,
    admission: AdmissionConfig,
    idle: Duration,
) -> Option<TestApp> {
    let s = speech(engine()?, TINY, max_streams, admission, idle);
    Some(TestApp::start_speech(s).await)
}

pub fn clip_i16(file: &str) -> Vec<i16> {
    let mut r = hound::WavReader::open(audio_dir().join(file)).expect("clip");
    assert_eq!(r.spec().sample_rate, 16_000);
    r.samples::<i16>().map(|s| s.unwrap()).collect()
}

pub fn reference(file: &str) -> String {
    earshot_testsupport::speech::references()
        .into_iter()
        .find(|(f, _)| f == file)
        .map(|(_, r)| r)
        .expect("reference")
}

/// A clip surrounded by silence, as a live microphone would send it.
pub fn with_silence(samples: &[i16], ms: usize) -> Vec<i16> {
    let pad = vec![0i16; ms * 16];
    [pad.as_slice(), samples, pad.as_slice()].concat()
}
