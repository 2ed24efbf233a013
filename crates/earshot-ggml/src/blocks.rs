//! The q8_0 and q5_0 block encoders, bit for bit as ggml's reference quantizers
//! (`quantize_row_q8_0_ref`, `quantize_row_q5_0_ref`), so a model made here is the file
//! whisper.cpp's `quantize` would make, and whisper.cpp reads it with its own kernels.
//!
//! Both work on blocks of [`QK`] values with one f16 scale `d` per block:
//!
//! ```text
//! q8_0: f16 d; i8 qs[32]                    d = amax / 127, q = round(x / d)       34 bytes
//! q5_0: f16 d; u8 qh[4]; u8 qs[16]          d = max / -16 (max = the value of largest |x|),
//!       q = min(31, trunc(x / d + 16.5)); qs[j] = q[j] & 15 | (q[j+16] & 15) << 4,
//!       qh bit j = bit 4 of q[j], bit j+16 = bit 4 of q[j+16]                   22 bytes
//! ```
//!
//! The arithmetic is f32 throughout (`x * (1/d)`, not `x / d`), and rounding is C's
//! `roundf` (half away from zero) and truncating casts, exactly as ggml does them: a
//! different rounding would change a few values per tensor and the file would no longer be
//! the reference one.

use half::f16;

/// Values per block.
pub const QK: usize = 32;
/// Bytes of one q8_0 block.
pub const Q8_0_BLOCK: usize = 2 + QK;
/// Bytes of one q5_0 block.
pub const Q5_0_BLOCK: usize = 2 + 4 + QK / 2;

/// Encodes one block of 32 values as q8_0 into `out` (34 bytes).
pub fn q8_0(x: &[f32; QK], out: &mut [u8; Q8_0_BLOCK]) {
    let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    out[..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
    for (o, v) in out[2..].iter_mut().zip(x) {
        *o = ((v * id).round() as i8) as u8;
    }
}

/// Encodes one block of 32 values as q5_0 into `out` (22 bytes).
pub fn q5_0(x: &[f32; QK], out: &mut [u8; Q5_0_BLOCK]) {
    // The signed value of largest magnitude (the first, when several tie), as ggml picks it.
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    let d = max / -16.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    out[..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
    let quant = |v: f32| -> u8 { ((v * id + 16.5) as i8).min(31) as u8 };
    let mut qh: u32 = 0;
    for j in 0..QK / 2 {
        let q0 = quant(x[j]);
        let q1 = quant(x[j + QK / 2]);
        out[6 + j] = (q0 & 0x0F) | ((q1 & 0x0F) << 4);
        qh |= (((q0 & 0x10) >> 4) as u32) << j;
        qh |= (((q1 & 0x10) >> 4) as u32) << (j + QK / 2);
    }
    out[2..6].copy_from_slice(&qh.to_le_bytes());
}

/// Decodes a q8_0 block (for tests and checks).
pub fn dequantize_q8_0(b: &[u8; Q8_0_BLOCK]) -> [f32; QK] {
    let d = f16::from_le_bytes([b[0], b[1]]).to_f32();
    std::array::from_fn(|i| b[2 + i] as i8 as f32 * d)
}

/// Decodes a q5_0 block (for tests and checks).
pub fn dequantize_q5_0(b: &[u8; Q5_0_BLOCK]) -> [f32; QK] {
    let d = f16::from_le_bytes([b[0], b[1]]).to_f32();
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    std::array::from_fn(|i| {
        let j = i % (QK / 2);
        let low = if i < QK / 2 {
            b[6 + j] & 0x0F
        } else {
            b[6 + j] >> 4
        };
        let high = ((qh >> i) & 1) as u8;
        ((low | high << 4) as i32 - 16) as f32 * d
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(scale: f32) -> [f32; QK] {
        std::array::from_fn(|i| (i as f32 - 13.0) * scale)
    }

    #[test]
    fn q8_0_round_trips_within_half_a_step() {
        let x = ramp(0.013);
        let mut b = [0u8; Q8_0_BLOCK];
        q8_0(&x, &mut b);
        let y = dequantize_q8_0(&b);
        let step = 18.0 * 0.013 / 127.0;
        for (a, b) in x.iter().zip(y) {
            assert!((a - b).abs() <= step * 0.51, "{a} vs {b}");
        }
        // The largest magnitude maps to ±127 exactly.
        assert_eq!(b[2 + 31] as i8, 127);
    }

    #[test]
    fn q5_0_round_trips_within_one_step_and_uses_the_signed_maximum() {
        let x = ramp(-0.02);
        let mut b = [0u8; Q5_0_BLOCK];
        q5_0(&x, &mut b);
        let y = dequantize_q5_0(&b);
        let step = 18.0 * 0.02 / 16.0;
        for (a, b) in x.iter().zip(y) {
            assert!((a - b).abs() <= step, "{a} vs {b}");
        }
        // d = max / -16 with max = -0.36 (the largest |x|): d > 0, and the extreme is -16 steps.
        let d = f16::from_le_bytes([b[0], b[1]]).to_f32();
        assert!(d > 0.0);
        assert!((y[31] - x[31]).abs() < 1e-3);
    }

    #[test]
    fn a_zero_block_is_all_zero_scale_and_midpoint() {
        let x = [0.0f32; QK];
        let mut b8 = [0xAAu8; Q8_0_BLOCK];
        q8_0(&x, &mut b8);
        assert!(b8.iter().all(|&v| v == 0));
        let mut b5 = [0xAAu8; Q5_0_BLOCK];
        q5_0(&x, &mut b5);
        assert_eq!(dequantize_q5_0(&b5), [0.0; QK]);
        // q = 16 for every value: low nibbles 0, every fifth bit set.
        assert_eq!(&b5[2..6], &[0xFF; 4]);
    }

    #[test]
    fn rounding_is_half_away_from_zero_like_c_roundf() {
        // amax 127 gives d = 1: x = ±2.5 must become ±3, not the even ±2.
        let mut x = [0.0f32; QK];
        x[0] = 127.0;
        x[1] = 2.5;
        x[2] = -2.5;
        let mut b = [0u8; Q8_0_BLOCK];
        q8_0(&x, &mut b);
        assert_eq!(b[3] as i8, 3);
        assert_eq!(b[4] as i8, -3);
    }
}
