//! A live stream whose node dies: the client reconnects to another node with
//! `resume_after_seq`, is refused while the dead node's stream lock lives, is let in as
//! soon as it has expired, resends the audio no stored final covers, and the session
//! ends with every sentence once.

use std::time::{Duration, Instant};

use earshot_core::keys::{Keys, DEFAULT_EVENT_PARTITIONS, STREAM_LOCK};
use earshot_testsupport::speech::{model_path, wer};
use earshot_testsupport::tts::{silence, speak};
use earshot_testsupport::RedisCluster;
use reqwest::Method;
use serde_json::Value;

use crate::node::{Node, ZETA};
use crate::stream::{of_type, Heard, LiveClient};

/// Short, so the test waits seconds, not the default 30 s.
const LOCK_TTL_SECS: u64 = 6;
const RATE: usize = 16_000;
/// 100 ms frames, sent at twice real time.
const FRAME: usize = RATE / 10;
const PACE: Duration = Duration::from_millis(50);

const SENTENCES: [&str; 4] = [
    "The dog ran across the garden.",
    "A yellow submarine crossed the harbor.",
    "My grandmother baked an apple pie on Sunday.",
    "The astronaut waved from the window.",
];
/// Words of each sentence found in no other. tiny.en mishears some of espeak's words
/// (and differently with different context), so a sentence counts as heard when any of
/// its words is, and as doubled when any is there twice.
const MARKERS: [&[&str]; 4] = [
    &["across", "garden"],
    &["submarine", "crossed", "harbor"],
    &["grandmother", "apple", "sunday"],
    &["astronaut", "waved", "window"],
];

/// The script spoken, with a pause after each sentence; returns the samples and where
/// each sentence starts and ends (samples).
fn script() -> (Vec<i16>, Vec<(usize, usize)>) {
    let mut audio = silence(500);
    let mut spans = Vec::new();
    for s in SENTENCES {
        let start = audio.len();
        audio.extend(speak("en-us", s));
        spans.push((start, audio.len()));
        audio.extend(silence(1200));
    }
    (audio, spans)
}

/// Milliseconds the session's stream lock still lives, by asking the cluster itself
/// (negative: gone).
async fn lock_pttl(cluster: &RedisCluster, session: &str) -> i64 {
    let nodes: Vec<String> = cluster
        .nodes()
        .iter()
        .map(|n| format!("redis://127.0.0.1:{}", n.port()))
        .collect();
    let client = redis::cluster::ClusterClient::new(nodes).unwrap();
    let mut con = client.get_async_connection().await.unwrap();
    let key = Keys::cluster(DEFAULT_EVENT_PARTITIONS).lock(session, STREAM_LOCK);
    redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut con)
        .await
        .unwrap()
}

fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_stream_moves_to_another_node_when_its_node_dies() {
    let Some(model) = model_path() else {
        return;
    };
    let cluster = RedisCluster::shared();
    let dir = crate::tempdir();
    let envs = [
        ("EARSHOT_MODEL", model.display().to_string()),
        ("EARSHOT_STREAM_LOCK_TTL", format!("{LOCK_TTL_SECS}s")),
    ];
    let mut a = Node::start(dir.path(), "node-a", &cluster.url(), &envs).await;
    let b = Node::start(dir.path(), "node-b", &cluster.url(), &envs).await;
    let (audio, spans) = script();
    let session = "moving-1";
    let query = format!("sample_rate=16000&encoding=pcm_s16le&api_key={ZETA}");

    // Stream into A until it has sent two finals and we are inside the third sentence.
    let mut ws = LiveClient::connect(&a.ws(&format!("/v1/sessions/{session}/stream?{query}")))
        .await
        .expect("A accepts the stream");
    let (third_start, third_end) = spans[2];
    let kill_at = third_start + (third_end - third_start) / 2;
    let mut finals_from_a: Vec<Value> = Vec::new();
    let mut sent = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while finals_from_a.len() < 2 || sent < kill_at {
        assert!(Instant::now() < deadline, "A sent {finals_from_a:?}");
        while let Ok(h) = ws.rx.try_recv() {
            match h {
                Heard::Msg(m) if m["type"] == "final" => finals_from_a.push(m),
                Heard::Msg(m) if m["type"] == "error" => panic!("A: {m}"),
                Heard::Msg(_) => {}
                Heard::Closed(code) => panic!("A closed the stream early ({code:?})"),
            }
        }
        if sent < kill_at {
            let end = (sent + FRAME).min(kill_at);
            assert!(ws.send(&audio[sent..end]).await, "A went away");
            sent = end;
        }
        tokio::time::sleep(PACE).await;
    }
    a.kill9();
    let last_seen = finals_from_a.last().unwrap()["seq"].as_u64().unwrap();

    // The dead node's lock outlives it; B refuses while it lives...
    assert!(
        lock_pttl(cluster, session).await > 0,
        "A's lock is still there"
    );
    let resume = format!("/v1/sessions/{session}/stream?{query}&resume_after_seq={last_seen}");
    let first = LiveClient::connect(&b.ws(&resume)).await;
    let refused = first.err().expect("B refuses while A's lock lives");
    assert_eq!(refused.status, 409);
    assert_eq!(
        refused.body["error"]["code"], "stream_active",
        "{refused:?}"
    );
    let retry = refused.retry_after.expect("the refusal says when to retry");
    assert!(
        (1..=LOCK_TTL_SECS).contains(&retry),
        "Retry-After {retry} is at most the lock's TTL"
    );
    // ...and lets the client in as soon as it has expired: an attempt made once the
    // lock is gone is never refused.
    let deadline = Instant::now() + Duration::from_secs(LOCK_TTL_SECS + 60);
    let mut ws = loop {
        let gone_before = lock_pttl(cluster, session).await < 0;
        match LiveClient::connect(&b.ws(&resume)).await {
            Ok(ws) => break ws,
            Err(r) => {
                assert_eq!(r.status, 409, "{r:?}");
                assert!(!gone_before, "B refused after A's lock had expired: {r:?}");
            }
        }
        assert!(Instant::now() < deadline, "B never accepted the stream");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // B holds the lock now, so the stored transcript is all A will ever have written:
    // resend the audio after its last final.
    let (st, stored) = b
        .json(
            Method::GET,
            ZETA,
            &format!("/v1/sessions/{session}/transcript"),
            None,
        )
        .await;
    assert_eq!(st, 200, "{stored}");
    let stored_segments = stored["segments"].as_array().unwrap().clone();
    let resume_ms = stored_segments
        .last()
        .map_or(0, |s| s["end_ms"].as_u64().unwrap()) as usize;
    let mut at = (resume_ms * RATE / 1000).min(audio.len());
    while at < audio.len() {
        let end = (at + FRAME).min(audio.len());
        assert!(ws.send(&audio[at..end]).await, "B went away");
        at = end;
        tokio::time::sleep(PACE).await;
    }
    assert!(ws.send_text(r#"{"type":"finalize"}"#).await);
    let (msgs, code) = ws.until_closed().await;
    assert_eq!(code, Some(1000), "{msgs:?}");
    assert!(of_type(&msgs, "error").is_empty(), "{msgs:?}");

    // B first replayed exactly the stored finals the client had not seen.
    let replayed: Vec<u64> = of_type(&msgs, "final")
        .iter()
        .map(|f| f["seq"].as_u64().unwrap())
        .take_while(|&s| (s as usize) < stored_segments.len())
        .collect();
    let missed: Vec<u64> = (last_seen + 1..stored_segments.len() as u64).collect();
    assert_eq!(replayed, missed, "replay of the finals the client missed");

    // The session: gap-free seqs across both nodes, every sentence once.
    let (_, done) = b
        .json(
            Method::GET,
            ZETA,
            &format!("/v1/sessions/{session}/transcript"),
            None,
        )
        .await;
    let seqs: Vec<u64> = done["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
    // B's finals continue where A's stored ones ended: the session's times never go back.
    let starts: Vec<i64> = done["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["start_ms"].as_i64().unwrap())
        .collect();
    assert!(
        starts.windows(2).all(|w| w[0] <= w[1]),
        "start_ms went backwards across the move: {starts:?}"
    );
    let text = done["text"].as_str().unwrap().to_owned();
    let completed = &of_type(&msgs, "completed")[0]["transcript"];
    assert_eq!(completed, &Value::from(text.clone()));
    let said = words(&text);
    let count = |w: &str| said.iter().filter(|s| *s == w).count();
    for (sentence, markers) in SENTENCES.iter().zip(MARKERS) {
        assert!(
            markers.iter().any(|m| count(m) > 0),
            "{sentence:?} missing from {text:?}"
        );
        for m in markers {
            assert!(count(m) <= 1, "{m:?} of {sentence:?} doubled in {text:?}");
        }
    }
    // A sanity bound on the rest (tiny.en on synthetic speech is far from perfect).
    let w = wer(&SENTENCES.join(" "), &text);
    assert!(w <= 0.5, "WER {w:.2}: {text:?}");
}
