//! The WebSocket frame decoder: the first bytes choose encoding, rate and frame splits; the
//! rest is the audio. Any input must decode (or be rejected at construction) without a panic,
//! and the output must not depend on how the bytes were split.
#![no_main]
use earshot_asr::{AudioEncoding, StreamDecoder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let enc = [
        AudioEncoding::PcmS16le,
        AudioEncoding::PcmF32le,
        AudioEncoding::PcmMulaw,
    ][data[0] as usize % 3];
    let rate = 7_000 + u16::from_le_bytes([data[1], data[2]]) as u32; // 7000..72535, some invalid
    let split = 1 + data[3] as usize;
    let body = &data[4..];
    let Ok(mut a) = StreamDecoder::new(enc, rate) else {
        return;
    };
    let mut b = StreamDecoder::new(enc, rate).expect("same args");
    let mut x = Vec::new();
    for chunk in body.chunks(split) {
        x.extend(a.push(chunk).expect("raw PCM never fails"));
    }
    x.extend(a.finish().expect("finish"));
    let mut y = b.push(body).expect("whole");
    y.extend(b.finish().expect("finish"));
    assert_eq!(x.len(), y.len());
    for (p, q) in x.iter().zip(&y) {
        assert!(p.is_finite() && p.abs() <= 1.0);
        assert!((p - q).abs() < 1e-5);
    }
});
