//! Whole-file decoding (`decode_bytes`): any bytes must give samples or a typed error.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = earshot_asr::decode_bytes(data) {
        assert!(d.samples.iter().all(|v| v.is_finite() && v.abs() <= 1.0));
    }
});
