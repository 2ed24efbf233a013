//! Quantization and header reading on small hand-built model files: which tensors are
//! re-encoded and which are copied, and that every kind of bad input (not ggml, cut short
//! anywhere, already quantized, lengths that lie) is a clear error, never a panic or a
//! huge allocation. The real models are checked in `real_models.rs`.

use earshot_ggml::blocks::{dequantize_q5_0, dequantize_q8_0, Q5_0_BLOCK, Q8_0_BLOCK};
use earshot_ggml::quantize::quantize;
use earshot_ggml::{GgmlError, QuantType, WeightType};

const D: i32 = 32;
const VOCAB: i32 = 40;
const MELS: i32 = 4;
const CTX: i32 = 8;

/// Byte length of everything before the first tensor.
const HEADER_LEN: usize = 4 + 44 + 8 + 24 + 4 + 9 + 10;

/// The tensors of a whisper model with one encoder and one decoder layer of width 32, in
/// the converters' order: (name, ggml type, shape).
fn tensors() -> Vec<(String, i32, Vec<i32>)> {
    let mut t: Vec<(String, i32, Vec<i32>)> = Vec::new();
    let mut add =
        |name: &str, ttype: i32, ne: &[i32]| t.push((name.to_owned(), ttype, ne.to_vec()));
    add("encoder.positional_embedding", 0, &[D, CTX]);
    add("encoder.conv1.weight", 1, &[3, MELS, D]);
    add("encoder.conv1.bias", 0, &[1, D]);
    add("encoder.conv2.weight", 1, &[3, D, D]);
    add("encoder.conv2.bias", 0, &[1, D]);
    let layer = |add: &mut dyn FnMut(&str, i32, &[i32]), p: &str, cross: bool| {
        let mut attn = |a: &str| {
            add(&format!("{p}.{a}_ln.weight"), 0, &[D]);
            add(&format!("{p}.{a}_ln.bias"), 0, &[D]);
            add(&format!("{p}.{a}.query.weight"), 1, &[D, D]);
            add(&format!("{p}.{a}.query.bias"), 0, &[D]);
            add(&format!("{p}.{a}.key.weight"), 1, &[D, D]);
            add(&format!("{p}.{a}.value.weight"), 1, &[D, D]);
            add(&format!("{p}.{a}.value.bias"), 0, &[D]);
            add(&format!("{p}.{a}.out.weight"), 1, &[D, D]);
            add(&format!("{p}.{a}.out.bias"), 0, &[D]);
        };
        attn("attn");
        if cross {
            attn("cross_attn");
        }
        add(&format!("{p}.mlp_ln.weight"), 0, &[D]);
        add(&format!("{p}.mlp_ln.bias"), 0, &[D]);
        add(&format!("{p}.mlp.0.weight"), 1, &[D, 4 * D]);
        add(&format!("{p}.mlp.0.bias"), 0, &[4 * D]);
        add(&format!("{p}.mlp.2.weight"), 1, &[4 * D, D]);
        add(&format!("{p}.mlp.2.bias"), 0, &[D]);
    };
    layer(&mut add, "encoder.blocks.0", false);
    add("encoder.ln_post.weight", 0, &[D]);
    add("encoder.ln_post.bias", 0, &[D]);
    add("decoder.positional_embedding", 0, &[D, CTX]);
    add("decoder.token_embedding.weight", 1, &[D, VOCAB]);
    layer(&mut add, "decoder.blocks.0", true);
    add("decoder.ln.weight", 0, &[D]);
    add("decoder.ln.bias", 0, &[D]);
    // Rows of 48 values are not whole blocks: whisper.cpp leaves such a tensor f16. Stands
    // in for the last decoder tensor so the count stays whisper's.
    t.pop();
    t.push(("decoder.odd.weight".into(), 1, vec![48, 2]));
    t
}

/// A ggml model file with `ftype` in its header.
fn model(ftype: i32) -> Vec<u8> {
    let mut b = Vec::new();
    let i = |b: &mut Vec<u8>, v: i32| b.extend_from_slice(&v.to_le_bytes());
    i(&mut b, 0x6767_6d6c);
    for v in [VOCAB, CTX, D, 2, 1, CTX, D, 2, 1, MELS, ftype] {
        i(&mut b, v);
    }
    i(&mut b, 2);
    i(&mut b, 3);
    for k in 0..6 {
        b.extend_from_slice(&(k as f32 * 0.5).to_le_bytes());
    }
    i(&mut b, 2);
    for tok in [&b"hello"[..], &b" world"[..]] {
        b.extend_from_slice(&(tok.len() as u32).to_le_bytes());
        b.extend_from_slice(tok);
    }
    assert_eq!(b.len(), HEADER_LEN);
    for (name, ttype, ne) in tensors() {
        i(&mut b, ne.len() as i32);
        i(&mut b, name.len() as i32);
        i(&mut b, ttype);
        for &n in &ne {
            i(&mut b, n);
        }
        b.extend_from_slice(name.as_bytes());
        let n: i32 = ne.iter().product();
        for k in 0..n {
            let v = ((k * 7919) % 97) as f32 / 50.0 - 0.97;
            if ttype == 0 {
                b.extend_from_slice(&v.to_le_bytes());
            } else {
                b.extend_from_slice(&half::f16::from_f32(v).to_le_bytes());
            }
        }
    }
    b
}

fn run(
    input: &[u8],
    kind: QuantType,
) -> Result<(Vec<u8>, earshot_ggml::QuantizeReport), GgmlError> {
    let mut out = Vec::new();
    let r = quantize(input, input.len() as u64, &mut out, kind)?;
    Ok((out, r))
}

/// (name, type, data) of each tensor of a model file.
fn walk(b: &[u8]) -> Vec<(String, i32, Vec<u8>)> {
    let rd = |at: usize| i32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let mut at = HEADER_LEN;
    let mut out = Vec::new();
    while at < b.len() {
        let (dims, name_len, ttype) = (rd(at) as usize, rd(at + 4) as usize, rd(at + 8));
        let ne: Vec<usize> = (0..dims).map(|k| rd(at + 12 + 4 * k) as usize).collect();
        at += 12 + 4 * dims;
        let name = String::from_utf8(b[at..at + name_len].to_vec()).unwrap();
        at += name_len;
        let n: usize = ne.iter().product();
        let size = match ttype {
            0 => 4 * n,
            1 => 2 * n,
            8 => n / 32 * Q8_0_BLOCK,
            6 => n / 32 * Q5_0_BLOCK,
            t => panic!("type {t}"),
        };
        out.push((name, ttype, b[at..at + size].to_vec()));
        at += size;
    }
    out
}

fn f16_values(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(2)
        .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
        .collect()
}

#[test]
fn only_2d_f16_weights_with_whole_blocks_are_quantized() {
    let input = model(1);
    let before = walk(&input);
    for kind in [QuantType::Q8_0, QuantType::Q5_0] {
        let (out, report) = run(&input, kind).expect("quantizes");
        assert_eq!(report.tensors, 50);
        assert_eq!(report.quantized, 17, "{kind:?}");
        assert_eq!(report.out_bytes, out.len() as u64);
        // ftype 2007 / 2008, the rest of the header unchanged.
        let ftype = i32::from_le_bytes(out[44..48].try_into().unwrap());
        assert_eq!(ftype, if kind == QuantType::Q8_0 { 2007 } else { 2008 });
        assert_eq!(out[..44], input[..44]);
        assert_eq!(out[48..HEADER_LEN], input[48..HEADER_LEN]);
        let after = walk(&out);
        assert_eq!(after.len(), before.len());
        for ((name, t_in, d_in), (name_out, t_out, d_out)) in before.iter().zip(&after) {
            assert_eq!(name, name_out);
            let two_d_weight = name.ends_with(".weight")
                && *t_in == 1
                && !name.starts_with("encoder.conv")
                && name != "decoder.odd.weight"
                && !name.contains("_ln.")
                && !name.contains("ln_post")
                && !name.starts_with("decoder.ln");
            if !two_d_weight {
                assert_eq!((t_in, d_in), (t_out, d_out), "{name} is copied as is");
                continue;
            }
            let src = f16_values(d_in);
            let (block, tol, want) = match kind {
                QuantType::Q8_0 => (Q8_0_BLOCK, 0.97 / 127.0, 8),
                QuantType::Q5_0 => (Q5_0_BLOCK, 0.97 / 16.0, 6),
            };
            assert_eq!(*t_out, want, "{name} is quantized");
            for (k, chunk) in d_out.chunks_exact(block).enumerate() {
                let got = match kind {
                    QuantType::Q8_0 => dequantize_q8_0(chunk.try_into().unwrap()).to_vec(),
                    QuantType::Q5_0 => dequantize_q5_0(chunk.try_into().unwrap()).to_vec(),
                };
                for (j, g) in got.iter().enumerate() {
                    assert!(
                        (g - src[k * 32 + j]).abs() <= tol,
                        "{name} block {k} value {j}"
                    );
                }
            }
        }
    }
}

#[test]
fn the_output_is_deterministic() {
    let input = model(1);
    assert_eq!(
        run(&input, QuantType::Q5_0).unwrap().0,
        run(&input, QuantType::Q5_0).unwrap().0
    );
}

#[test]
fn not_a_model_is_said_plainly() {
    for bad in [&b""[..], &b"RIFF....WAVEfmt "[..], &b"gg"[..]] {
        let e = run(bad, QuantType::Q8_0).unwrap_err();
        assert!(matches!(e, GgmlError::NotGgml), "{e}");
        assert!(e.to_string().contains("not a whisper.cpp ggml model"));
    }
}

#[test]
fn a_file_cut_anywhere_is_truncated_or_malformed_never_a_panic() {
    let input = model(1);
    let cuts = (0..HEADER_LEN + 200).chain((HEADER_LEN + 200..input.len()).step_by(61));
    for cut in cuts {
        let e = run(&input[..cut], QuantType::Q5_0).unwrap_err();
        assert!(
            matches!(
                e,
                GgmlError::NotGgml
                    | GgmlError::Truncated { .. }
                    | GgmlError::MissingTensors { .. }
                    | GgmlError::Malformed(_)
            ),
            "cut at {cut}: {e}"
        );
    }
    // Cut inside the last tensor's data: the message says where.
    let e = run(&input[..input.len() - 3], QuantType::Q5_0).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("truncated") && msg.contains("decoder.odd.weight"),
        "{msg}"
    );
}

#[test]
fn quantized_and_f32_inputs_are_refused() {
    let e = run(&model(2007), QuantType::Q5_0).unwrap_err();
    assert!(
        matches!(e, GgmlError::AlreadyQuantized(ref t) if t == "q8_0"),
        "{e}"
    );
    assert!(e.to_string().contains("quantize the f16 model instead"));
    let e = run(&model(0), QuantType::Q8_0).unwrap_err();
    assert!(matches!(e, GgmlError::NotF16(ref t) if t == "f32"), "{e}");
}

#[test]
fn lengths_that_lie_are_caught_before_allocating() {
    // A vocabulary entry claiming 4 GB, a tensor claiming 2^31 × 2^31 values: both must fail
    // on the file's real length, not try to allocate.
    let mut input = model(1);
    let vocab_at = HEADER_LEN - 19;
    input[vocab_at..vocab_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let e = run(&input, QuantType::Q8_0).unwrap_err();
    assert!(matches!(e, GgmlError::Malformed(_)), "{e}");

    let mut input = model(1);
    let t = HEADER_LEN;
    input[t + 12..t + 16].copy_from_slice(&i32::MAX.to_le_bytes());
    input[t + 16..t + 20].copy_from_slice(&i32::MAX.to_le_bytes());
    let e = run(&input, QuantType::Q8_0).unwrap_err();
    assert!(matches!(e, GgmlError::Truncated { .. }), "{e}");

    let mut input = model(1);
    input[t..t + 4].copy_from_slice(&1000i32.to_le_bytes());
    let e = run(&input, QuantType::Q8_0).unwrap_err();
    assert!(matches!(e, GgmlError::Malformed(_)), "{e}");
}

#[test]
fn a_file_cut_between_tensors_is_truncated() {
    let input = model(1);
    let e = run(&input[..HEADER_LEN], QuantType::Q8_0).unwrap_err();
    assert!(
        matches!(e, GgmlError::MissingTensors { have: 0, want: 50 }),
        "{e}"
    );
    // Cut right after the first tensor (the positional embedding, 32×8 f32).
    let first = HEADER_LEN + 12 + 8 + "encoder.positional_embedding".len() + 4 * 32 * 8;
    let e = run(&input[..first], QuantType::Q8_0).unwrap_err();
    assert!(e.to_string().contains("holds 1 of the 50 tensors"), "{e}");
}

#[test]
fn header_info_reads_size_languages_and_weights() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.bin");
    std::fs::write(&p, model(2008)).unwrap();
    let info = earshot_ggml::read_info(&p).unwrap();
    assert_eq!(info.weights, WeightType::Q5_0);
    assert!(!info.multilingual());
    assert_eq!(info.size_class(), None, "one layer is no whisper size");
    assert_eq!(info.hparams.n_audio_state, 32);
    assert_eq!(info.hparams.tensor_count(), 50);
}

#[test]
fn quantize_file_leaves_nothing_behind_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in.bin");
    let dst = dir.path().join("out.bin");
    let input = model(1);
    std::fs::write(&src, &input[..input.len() - 10]).unwrap();
    assert!(earshot_ggml::quantize_file(&src, &dst, QuantType::Q8_0).is_err());
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "only the input remains");
    std::fs::write(&src, &input).unwrap();
    let r = earshot_ggml::quantize_file(&src, &dst, QuantType::Q8_0).unwrap();
    assert_eq!(std::fs::metadata(&dst).unwrap().len(), r.out_bytes);
}
