//! One client flooding a live stream must not hurt anyone else: while it sends speech
//! as fast as its socket takes it (at 48 kHz float, the costliest format to resample)
//! and then a frame larger than the server reads, `/healthz` and another tenant's append
//! keep answering, and the flooding client is told `frame_too_large` with close 1009.

mod common;

use std::time::Duration;

use common::live::{connect, script, Step};
use common::speech::{clip_i16, speech_app};
use common::{TestApp, ACME, GLOBEX};

/// How long any one probe may take before the test calls it a hang: generous, since the
/// machine is shared; a starved runtime takes far longer.
const HANG: Duration = Duration::from_secs(2);

/// The shared clips, `seconds` of them at least, as 48 kHz mono f32le (each sample
/// repeated three times: the resampler does the same work on it as on real 48 kHz audio).
fn speech_48k_f32(seconds: usize) -> Vec<u8> {
    let clips: Vec<i16> = earshot_testsupport::speech::references()
        .iter()
        .flat_map(|(file, _)| clip_i16(file))
        .collect();
    let mut out = Vec::new();
    while out.len() < seconds * 48_000 * 4 {
        for s in &clips {
            let f = (*s as f32 / 32768.0).to_le_bytes();
            for _ in 0..3 {
                out.extend_from_slice(&f);
            }
        }
    }
    out
}

/// `/healthz` and an append by another tenant, each within [`HANG`].
async fn probe(app: &TestApp, n: usize) {
    let health = tokio::time::timeout(HANG, app.client.get(app.url("/healthz")).send())
        .await
        .unwrap_or_else(|_| panic!("/healthz took over {HANG:?} during the flood"))
        .unwrap();
    assert_eq!(health.status(), 200);
    let seq = tokio::time::timeout(HANG, app.append(GLOBEX, "other", &format!("line {n}")))
        .await
        .unwrap_or_else(|_| panic!("another tenant's append took over {HANG:?} during the flood"));
    assert_eq!(seq, n as u64, "every append stored once, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_stream_leaves_health_and_other_tenants_answering() {
    let Some(app) = speech_app(4, Duration::from_secs(30)).await else {
        return;
    };
    app.create(GLOBEX, "other").await;
    let ws = connect(
        &app,
        "/v1/sessions/flood/stream?sample_rate=48000&encoding=pcm_f32le",
        ACME,
    )
    .await
    .expect("stream opens");
    // 30 s of speech in 100 ms frames with no pause, then one frame of 8 MiB.
    let flood = tokio::spawn(script(
        ws,
        vec![
            Step::Paced {
                bytes: speech_48k_f32(30),
                frame: 19_200,
                pause: Duration::ZERO,
            },
            Step::Paced {
                bytes: vec![0u8; 8 << 20],
                frame: 8 << 20,
                pause: Duration::ZERO,
            },
        ],
    ));
    let mut n = 0;
    while !flood.is_finished() {
        probe(&app, n).await;
        n += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = flood.await.unwrap();
    assert!(n >= 3, "the flood ended before it was probed ({n} probes)");
    let errors = seen.of_type("error");
    assert_eq!(
        errors.first().map(|e| e["code"].clone()),
        Some("frame_too_large".into()),
        "closed with {:?} {:?} after {} frames, the last {:?}",
        seen.close,
        seen.close_reason,
        seen.frames.len(),
        seen.frames.last()
    );
    assert_eq!(seen.close, Some(1009), "{:?}", seen.close_reason);
    // The flood was transcribed as it was paced, not dropped.
    assert!(!seen.of_type("final").is_empty(), "{:?}", seen.frames);
    probe(&app, n).await;
}
