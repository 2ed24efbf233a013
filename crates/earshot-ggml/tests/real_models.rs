//! The real models of `shared/models`: quantizing the f16 tiny.en to q8_0 gives, byte for
//! byte, the q8_0 file shipped beside it (made with whisper.cpp's rules by another
//! implementation), and the headers say what each model is. That whisper.cpp loads and
//! transcribes with a q5_0 made here is tested through the CLI (`earshot` crate,
//! `tests/quantize.rs`).

use std::io::Read;

use earshot_ggml::{quantize_file, read_info, QuantType, WeightType};
use earshot_testsupport::speech::shared_model;
use sha2::{Digest, Sha256};

fn sha256(path: &std::path::Path) -> String {
    let mut f = std::fs::File::open(path).unwrap();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    format!("{:x}", h.finalize())
}

#[test]
fn tiny_en_q8_0_is_byte_identical_to_the_reference_quantization() {
    let (Some(f16), Some(reference)) = (
        shared_model("ggml-tiny.en.bin"),
        shared_model("ggml-tiny.en-q8_0.bin"),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ggml-tiny.en-q8_0.bin");
    let report = quantize_file(&f16, &out, QuantType::Q8_0).expect("quantizes");
    assert_eq!(report.tensors, 167, "tiny has 4+4 layers");
    assert_eq!(
        report.out_bytes,
        std::fs::metadata(&reference).unwrap().len()
    );
    assert_eq!(
        sha256(&out),
        sha256(&reference),
        "same bytes as the reference q8_0"
    );
}

#[test]
fn headers_say_size_languages_and_weights() {
    let (Some(tiny), Some(base)) = (
        shared_model("ggml-tiny.en.bin"),
        shared_model("ggml-base-q5_0.bin"),
    ) else {
        return;
    };
    let t = read_info(&tiny).unwrap();
    assert_eq!(
        (t.size_class(), t.multilingual(), t.weights),
        (Some("tiny"), false, WeightType::F16)
    );
    assert!((t.relative_compute() - 1.0).abs() < 1e-9);
    let b = read_info(&base).unwrap();
    assert_eq!(
        (b.size_class(), b.multilingual(), b.weights),
        (Some("base"), true, WeightType::Q5_0)
    );
    assert!(b.relative_compute() > 2.0, "{}", b.relative_compute());
    // Quantizing a quantized model is refused with a reason.
    let dir = tempfile::tempdir().unwrap();
    let e = quantize_file(&base, &dir.path().join("x.bin"), QuantType::Q8_0).unwrap_err();
    assert!(e.to_string().contains("already quantized (q5_0)"), "{e}");
    assert!(!dir.path().join("x.bin").exists());
}
