//! Whole-file decoding (`decode_bytes`): any bytes must give samples or a typed error.
//!
//! `decode_bytes` turns a panic inside symphonia (a third-party parser with known
//! overflow panics on malformed headers) into `AudioError::Malformed`. libfuzzer-sys's
//! panic hook would abort on that caught panic, so the hook here only prints: a panic
//! that escapes `decode_bytes` is still a crash (libfuzzer-sys aborts on it).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| std::panic::set_hook(Box::new(|info| eprintln!("panic: {info}"))));
    if let Ok(d) = earshot_asr::decode_bytes(data) {
        assert!(d.samples.iter().all(|v| v.is_finite() && v.abs() <= 1.0));
    }
});
