//! `earshot model quantize` as a user runs it: a q5_0 tiny.en made from the shared f16
//! model is loaded by whisper.cpp and hears the clip's words (`earshot transcribe`); bad
//! inputs end with a clear message and nothing written; `model list` and `model fetch`
//! know the quantized variants.

use std::process::{Command, Output};

use earshot_testsupport::speech::{audio_dir, shared_model, wer};

fn earshot() -> Command {
    Command::new(env!("CARGO_BIN_EXE_earshot"))
}

fn quantize(input: &std::path::Path, output: &std::path::Path, kind: &str) -> Output {
    earshot()
        .args(["model", "quantize"])
        .arg(input)
        .arg(output)
        .args(["--type", kind])
        .output()
        .unwrap()
}

#[test]
fn a_q5_0_tiny_en_made_here_transcribes_the_clip() {
    let Some(f16) = shared_model("ggml-tiny.en.bin") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let q5 = dir.path().join("ggml-tiny.en-q5_0.bin");
    let out = quantize(&f16, &q5, "q5_0");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("quantized to q5_0"), "{said}");
    let size = std::fs::metadata(&q5).unwrap().len();
    let f16_size = std::fs::metadata(&f16).unwrap().len();
    // q5_0 keeps 5.5 of 16 bits of every matrix value; the conv kernels and f32 parts stay.
    assert!(size < f16_size * 2 / 5, "{size} of {f16_size}");

    let out = earshot()
        .args(["transcribe", "--quiet", "--threads", "1", "--model"])
        .arg(&q5)
        .arg(audio_dir().join("goforward.wav"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        wer("go forward ten meters", &text) <= 0.25,
        "the q5_0 model heard {text:?}"
    );
}

#[test]
fn bad_inputs_are_refused_with_the_reason_and_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("out.bin");
    let fails = |input: &std::path::Path, kind: &str, says: &str| {
        let out = quantize(input, &out_path, kind);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{} accepted", input.display());
        assert!(err.contains(says), "{}: {err}", input.display());
        assert!(!err.contains("panicked"), "{err}");
        assert!(!out_path.exists(), "nothing left behind");
        assert!(!dir.path().join("out.bin.part").exists());
    };
    fails(
        &audio_dir().join("goforward.wav"),
        "q8_0",
        "not a whisper.cpp ggml model",
    );
    fails(&dir.path().join("missing.bin"), "q8_0", "missing.bin");

    let Some(f16) = shared_model("ggml-tiny.en.bin") else {
        return;
    };
    // A download cut off half way: the header promises more than is there.
    let cut = dir.path().join("cut.bin");
    let bytes = std::fs::read(&f16).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    fails(&cut, "q5_0", "truncated");
    if let Some(q8) = shared_model("ggml-tiny.en-q8_0.bin") {
        fails(&q8, "q5_0", "already quantized (q8_0)");
    }
    let out = quantize(&f16, &out_path, "q4_k");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not q8_0 or q5_0"));
}

#[test]
fn list_and_fetch_know_the_quantized_variants() {
    let home = tempfile::tempdir().unwrap();
    let models = home.path().join("data/earshot/models");
    std::fs::create_dir_all(&models).unwrap();
    // A locally made model shows with what its header says.
    if let Some(q8) = shared_model("ggml-tiny.en-q8_0.bin") {
        std::fs::copy(q8, models.join("ggml-mine-q8_0.bin")).unwrap();
    }
    let out = earshot()
        .args(["model", "list"])
        .env("HOME", home.path())
        .env("XDG_DATA_HOME", home.path().join("data"))
        .current_dir(home.path())
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for line in ["tiny.en-q8_0", "base-q5_1", "base-q8_0", "medium-q5_0"] {
        assert!(
            list.lines().any(|l| l.starts_with(line)),
            "{line} in {list}"
        );
    }
    if models.join("ggml-mine-q8_0.bin").exists() {
        let mine = list
            .lines()
            .find(|l| l.starts_with("mine-q8_0"))
            .unwrap_or("");
        assert!(mine.contains("q8_0") && mine.contains("(local)"), "{list}");
    }
    // q5_0 of base is not published: fetch says how to make it instead of a 404.
    let out = earshot()
        .args(["model", "fetch", "base-q5_0", "--dir"])
        .arg(home.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("earshot model quantize base"), "{err}");
}
