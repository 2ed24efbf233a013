//! Several models in one `earshot serve` (the real binary, `EARSHOT_MODELS`), with the
//! real tiny.en (f16) and base (q5_0, multilingual) of `shared/models`: the OpenAI
//! models list, a transcription on each model, the OpenAI default name, an unknown name,
//! a live stream on the non-default model, and each model's decode cost metered apart.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use earshot_testsupport::metric;
use earshot_testsupport::speech::{audio_dir, shared_model, wer};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

struct Serve {
    child: Child,
    base: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_cmd(envs: &[(&str, String)]) -> (Command, u16) {
    let port = earshot_testsupport::free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_earshot"));
    cmd.arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("EARSHOT_LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    (cmd, port)
}

/// Starts the server and waits until `/readyz` says ready (both models loaded).
async fn start(envs: &[(&str, String)]) -> Serve {
    let (mut cmd, port) = serve_cmd(envs);
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let serve = Serve {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let ready = reqwest::get(format!("{}/readyz", serve.base))
            .await
            .is_ok_and(|r| r.status() == 200);
        if ready {
            return serve;
        }
        assert!(
            Instant::now() < deadline,
            "earshot serve never became ready"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn transcribe(serve: &Serve, model: &str) -> reqwest::Response {
    let wav = std::fs::read(audio_dir().join("goforward.wav")).unwrap();
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(wav).file_name("goforward.wav"),
        )
        .text("model", model.to_owned());
    reqwest::Client::new()
        .post(format!("{}/v1/audio/transcriptions", serve.base))
        .multipart(form)
        .send()
        .await
        .unwrap()
}

async fn get_json(url: String) -> (u16, Value) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Streams goforward.wav (with silence around it, 4× real time) on `query` and returns
/// the final texts and the `completed` frame.
async fn stream(serve: &Serve, session: &str, query: &str) -> (String, Value) {
    let url = format!(
        "{}/v1/sessions/{session}/stream?{query}",
        serve.base.replace("http://", "ws://")
    );
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("upgrade");
    let (mut tx, mut rx) = ws.split();
    let mut r = hound::WavReader::open(audio_dir().join("goforward.wav")).unwrap();
    let clip: Vec<i16> = r.samples::<i16>().map(|s| s.unwrap()).collect();
    let pad = vec![0i16; 16 * 600];
    let audio: Vec<u8> = [pad.as_slice(), &clip, &pad]
        .concat()
        .iter()
        .flat_map(|s| s.to_le_bytes())
        .collect();
    // A send fails only when the server ended the stream: its error frame says why.
    for chunk in audio.chunks(3200) {
        if tx
            .send(Message::Binary(chunk.to_vec().into()))
            .await
            .is_err()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let _ = tx
        .send(Message::Text(r#"{"type":"finalize"}"#.into()))
        .await;
    let mut finals = Vec::new();
    let mut completed = Value::Null;
    let read = async {
        while let Some(Ok(msg)) = rx.next().await {
            if let Message::Text(t) = msg {
                let v: Value = serde_json::from_str(&t).unwrap();
                match v["type"].as_str() {
                    Some("final") => finals.push(v["text"].as_str().unwrap().to_owned()),
                    Some("completed") => completed = v,
                    Some("error") => panic!("error frame: {v}"),
                    _ => {}
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(120), read)
        .await
        .expect("the stream ended");
    (finals.join(" "), completed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_models_serve_side_by_side() {
    let (Some(tiny), Some(base)) = (
        shared_model("ggml-tiny.en.bin"),
        shared_model("ggml-base-q5_0.bin"),
    ) else {
        return;
    };
    // The uploads below keep a slot busy just before the stream; room for the stream
    // whatever this machine's speed (admission itself is tested in the scheduler).
    let serve = start(&[
        (
            "EARSHOT_MODELS",
            format!("tiny.en={},base={}", tiny.display(), base.display()),
        ),
        ("EARSHOT_DECODE_SLOTS", "4".into()),
        ("EARSHOT_ADMISSION_TARGET", "1.0".into()),
    ])
    .await;

    // /readyz names what is loaded.
    let (_, ready) = get_json(format!("{}/readyz", serve.base)).await;
    assert_eq!(ready["models"], serde_json::json!(["tiny.en", "base"]));
    assert_eq!(ready["default_model"], "tiny.en");

    // The OpenAI list, with what tells the models apart.
    let (status, list) = get_json(format!("{}/v1/models", serve.base)).await;
    assert_eq!(status, 200);
    assert_eq!(list["object"], "list");
    let data = list["data"].as_array().unwrap();
    let ids: Vec<&str> = data.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["tiny.en", "base"]);
    for m in data {
        assert_eq!(m["object"], "model");
        assert!(m["created"].as_u64().unwrap() > 1_600_000_000, "{m}");
        assert!(m["owned_by"].is_string());
    }
    assert_eq!(
        (
            &data[0]["default"],
            &data[0]["weights"],
            &data[0]["multilingual"]
        ),
        (&Value::Bool(true), &Value::from("f16"), &Value::Bool(false))
    );
    assert_eq!(
        (
            &data[1]["default"],
            &data[1]["weights"],
            &data[1]["multilingual"]
        ),
        (
            &Value::Bool(false),
            &Value::from("q5_0"),
            &Value::Bool(true)
        )
    );
    let (status, one) = get_json(format!("{}/v1/models/base", serve.base)).await;
    assert_eq!((status, one["id"].as_str()), (200, Some("base")));
    let (status, one) = get_json(format!("{}/v1/models/whisper-1", serve.base)).await;
    assert_eq!((status, one["id"].as_str()), (200, Some("tiny.en")));
    let (status, err) = get_json(format!("{}/v1/models/large-v3", serve.base)).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (404, Some("model_not_found"))
    );

    // A transcription on each model hears the clip; whisper-1 is the default.
    for (asked, used) in [
        ("base", "base"),
        ("tiny.en", "tiny.en"),
        ("whisper-1", "tiny.en"),
    ] {
        let r = transcribe(&serve, asked).await;
        assert_eq!(r.status(), 200, "model={asked}");
        assert_eq!(r.headers()["x-earshot-model"], used);
        let text = r.json::<Value>().await.unwrap()["text"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            wer("go forward ten meters", &text) <= 0.25,
            "{asked}: {text:?}"
        );
    }

    // An unknown model: 400 in the error shape, naming the loaded ones.
    let r = transcribe(&serve, "large-v3").await;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "unknown_model");
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(msg.contains("tiny.en") && msg.contains("base"), "{msg}");

    // Before any stream: tiny.en's cost is its prior, base's a larger prior (its size).
    let metrics = || async {
        reqwest::get(format!("{}/metrics", serve.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let text = metrics().await;
    let tiny_cost = metric(&text, r#"earshot_asr_stream_cost{model="tiny.en"}"#).expect(&text);
    let base_prior = metric(&text, r#"earshot_asr_stream_cost{model="base"}"#).expect(&text);
    assert!(base_prior > 2.0 * tiny_cost, "{base_prior} vs {tiny_cost}");

    // A live stream on base: the session says which model heard it, and base's meter (not
    // tiny's) is charged with its decodes.
    let (finals, completed) = stream(&serve, "on-base", "model=base").await;
    assert!(wer("go forward ten meters", &finals) <= 0.25, "{finals:?}");
    assert_eq!(
        completed["session"]["metadata"]["model"], "base",
        "{completed}"
    );
    let text = metrics().await;
    let base_cost = metric(&text, r#"earshot_asr_stream_cost{model="base"}"#).unwrap();
    assert!(
        (base_cost - base_prior).abs() > 1e-9,
        "base's cost was measured"
    );
    assert_eq!(
        metric(&text, r#"earshot_asr_stream_cost{model="tiny.en"}"#),
        Some(tiny_cost),
        "tiny.en was not charged for base's stream"
    );

    // An unknown stream model is refused before the upgrade.
    let url = format!(
        "{}/v1/sessions/s2/stream?model=nope",
        serve.base.replace("http://", "ws://")
    );
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 400);
            let body = String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default());
            assert!(
                body.contains("unknown_model") && body.contains("tiny.en"),
                "{body}"
            );
        }
        other => panic!("expected a 400, got {other:?}"),
    }
}

#[test]
fn contradictory_model_settings_stop_the_server_with_the_reason() {
    for (envs, says) in [
        (
            vec![
                ("EARSHOT_MODELS", "a=/x.bin".to_owned()),
                ("EARSHOT_MODEL", "/y.bin".to_owned()),
            ],
            "not both",
        ),
        (
            vec![
                ("EARSHOT_MODELS", "a=/x.bin,b=/y.bin".to_owned()),
                ("EARSHOT_DEFAULT_MODEL", "c".to_owned()),
            ],
            "EARSHOT_DEFAULT_MODEL=c is not in EARSHOT_MODELS (a, b)",
        ),
        (
            vec![("EARSHOT_MODELS", "a=/x.bin,a=/y.bin".to_owned())],
            "twice",
        ),
    ] {
        let (mut cmd, _) = serve_cmd(&envs);
        let out = cmd.output().unwrap();
        assert!(!out.status.success(), "{envs:?} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{envs:?}: {err}");
    }
}
