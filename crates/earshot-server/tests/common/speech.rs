//! Live speech as a client sees it: a server with the real tiny.en model on one decode
//! slot, the shared clips, and (from [`super::live`]) the WebSocket client.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use earshot_asr::{
    AdmissionConfig, Engine, EngineConfig, Scheduler, SchedulerConfig, StreamConfig,
};
use earshot_server::{Speech, SpeechStatus};
use earshot_testsupport::speech::{audio_dir, model_path};

#[allow(unused_imports)]
pub use super::live::{connect, run_stream, s16le, Seen, Ws};
use super::TestApp;

pub fn engine() -> Option<Arc<Engine>> {
    static ENGINE: OnceLock<Option<Arc<Engine>>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            model_path().map(|p| Engine::load(EngineConfig::new(p)).expect("model loads"))
        })
        .clone()
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
    let engine = engine()?;
    let sched = Scheduler::with_config(
        engine,
        SchedulerConfig {
            decode_slots: 1,
            max_streams,
            admission,
        },
    );
    let speech = Speech {
        scheduler: sched,
        stream: StreamConfig::default(),
        idle_timeout: idle,
        model_name: "ggml-tiny.en.bin".into(),
    };
    Some(TestApp::start_speech(SpeechStatus::Ready(Arc::new(speech))).await)
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
