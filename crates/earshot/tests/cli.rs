//! `earshot transcribe` and `earshot model` as a user runs them: the real binary, no
//! server, no Redis.

use std::process::Command;

use earshot_testsupport::speech::{audio_dir, model_path, wer};

fn earshot() -> Command {
    Command::new(env!("CARGO_BIN_EXE_earshot"))
}

#[test]
fn transcribe_writes_every_format() {
    let Some(model) = model_path() else { return };
    let clip = audio_dir().join("goforward.wav");

    let out = earshot()
        .arg("transcribe")
        .arg(&clip)
        .env("EARSHOT_MODEL", &model)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(wer("go forward ten meters", &text) <= 0.25, "{text:?}");

    let json = earshot()
        .args(["transcribe", "--format", "json"])
        .arg(&clip)
        .env("EARSHOT_MODEL", &model)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["text"].as_str().unwrap().trim(), text.trim());
    assert!(v["segments"][0]["end_ms"].as_i64().unwrap() > 0);
    assert!((v["duration"].as_f64().unwrap() - 2.79).abs() < 0.05);

    let dir = tempfile::tempdir().unwrap();
    for fmt in ["srt", "vtt"] {
        let st = earshot()
            .args(["transcribe", "--quiet", "--format", fmt, "-o"])
            .arg(dir.path())
            .arg(&clip)
            .arg(audio_dir().join("something.wav"))
            .env("EARSHOT_MODEL", &model)
            .status()
            .unwrap();
        assert!(st.success());
        let a = std::fs::read_to_string(dir.path().join(format!("goforward.{fmt}"))).unwrap();
        let b = std::fs::read_to_string(dir.path().join(format!("something.{fmt}"))).unwrap();
        assert!(a.contains("-->") && b.contains("-->"), "{fmt}: {a} {b}");
        if fmt == "vtt" {
            assert!(a.starts_with("WEBVTT"));
        } else {
            assert!(a.starts_with("1\n00:00:"));
        }
    }
}

#[test]
fn transcribe_reports_bad_files_and_keeps_going() {
    let Some(model) = model_path() else { return };
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.wav");
    std::fs::write(&junk, b"RIFF this is not really audio").unwrap();
    let out = earshot()
        .arg("transcribe")
        .arg(&junk)
        .arg(dir.path().join("missing.mp3"))
        .arg(audio_dir().join("something.wav"))
        .env("EARSHOT_MODEL", &model)
        .output()
        .unwrap();
    assert!(!out.status.success(), "failures make a non-zero exit");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("junk.wav") && err.contains("missing.mp3"),
        "{err}"
    );
    assert!(err.contains("2 of 3 files failed"), "{err}");
    // The good file was still transcribed.
    assert!(
        wer(
            "go somewhere and do something",
            &String::from_utf8_lossy(&out.stdout)
        ) <= 0.25
    );
}

#[test]
fn transcribe_refuses_a_file_longer_than_its_cap_early() {
    let Some(model) = model_path() else { return };
    let dir = tempfile::tempdir().unwrap();
    let long = dir.path().join("three-hours.flac");
    std::fs::write(
        &long,
        earshot_testsupport::audio::constant_flac(48_000, 3 * 3600),
    )
    .unwrap();
    let t = std::time::Instant::now();
    let out = earshot()
        .args(["transcribe", "--quiet"])
        .arg(&long)
        .env("EARSHOT_MODEL", &model)
        .env("EARSHOT_MAX_AUDIO_SECONDS", "60")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("three-hours.flac") && err.contains("too long"),
        "{err}"
    );
    assert!(
        t.elapsed() < std::time::Duration::from_secs(60),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn model_path_follows_the_lookup_order_and_fetch_fails_clearly_offline() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("my-model.bin");
    std::fs::write(&fake, b"x").unwrap();
    let out = earshot()
        .args(["model", "path"])
        .env("EARSHOT_MODEL", &fake)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout)
        .trim_end()
        .ends_with(fake.to_str().unwrap()));

    // No EARSHOT_MODEL, empty data directories: a clear error naming where to put a file.
    let home = tempfile::tempdir().unwrap();
    let out = earshot()
        .args(["model", "path"])
        .env_remove("EARSHOT_MODEL")
        .env("HOME", home.path())
        .env("XDG_DATA_HOME", home.path().join("data"))
        .current_dir(home.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("EARSHOT_MODEL") || err.contains("model fetch"),
        "{err}"
    );

    // Offline (no route to the model host here), fetch must fail with guidance, not hang.
    let out = earshot()
        .args(["model", "fetch", "tiny.en", "--dir"])
        .arg(home.path())
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ggml-tiny.en.bin"),
        "says which file to put where: {err}"
    );
    assert!(
        !home.path().join("ggml-tiny.en.bin").exists(),
        "no half-written model left behind"
    );

    let out = earshot().args(["model", "list"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("tiny.en"));
}
