//! Raw sample frames of a live stream (`?encoding=` on the WebSocket route): the
//! encodings, G.711 μ-law, and [`StreamDecoder`], which turns frames split anywhere into
//! 16 kHz mono samples as they arrive. Kept apart from whole-file decoding because it
//! holds per-connection state (a carried partial sample, the resampler) and never sees a
//! container.

use super::resample::StreamResampler;
use super::{sanitize, AudioError, MAX_STREAM_RATE, MIN_STREAM_RATE, TARGET_RATE};

/// The raw sample encodings a WebSocket stream may declare (`?encoding=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioEncoding {
    /// Signed 16-bit little-endian PCM.
    PcmS16le,
    /// 32-bit IEEE float little-endian PCM.
    PcmF32le,
    /// 8-bit G.711 μ-law.
    PcmMulaw,
}

impl AudioEncoding {
    /// Bytes per sample.
    pub fn sample_bytes(self) -> usize {
        match self {
            AudioEncoding::PcmS16le => 2,
            AudioEncoding::PcmF32le => 4,
            AudioEncoding::PcmMulaw => 1,
        }
    }

    /// The wire name (`pcm_s16le`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            AudioEncoding::PcmS16le => "pcm_s16le",
            AudioEncoding::PcmF32le => "pcm_f32le",
            AudioEncoding::PcmMulaw => "pcm_mulaw",
        }
    }
}

impl std::fmt::Display for AudioEncoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for AudioEncoding {
    type Err = AudioError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "pcm_s16le" | "linear16" | "s16le" => Ok(AudioEncoding::PcmS16le),
            "pcm_f32le" | "f32le" => Ok(AudioEncoding::PcmF32le),
            "pcm_mulaw" | "mulaw" | "ulaw" => Ok(AudioEncoding::PcmMulaw),
            other => Err(AudioError::UnsupportedEncoding(
                other.chars().take(64).collect(),
            )),
        }
    }
}

/// G.711 μ-law byte to linear 16-bit sample.
pub fn mulaw_to_i16(byte: u8) -> i16 {
    let u = !byte;
    let sign = u & 0x80;
    let exponent = (u >> 4) & 0x07;
    let mantissa = (u & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    if sign != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// Linear 16-bit sample to G.711 μ-law (for tests and tools that make μ-law input).
pub fn i16_to_mulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut s = sample as i32;
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(CLIP) + BIAS;
    let mut exponent = 7;
    let mut mask = 0x4000;
    while exponent > 0 && (s & mask) == 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !((sign | (exponent << 4) | mantissa) as u8)
}

/// Decodes raw audio frames of a live stream into 16 kHz mono `f32`, frame by frame.
///
/// Frames may be split anywhere: an incomplete trailing sample (e.g. the odd byte of
/// `pcm_s16le`) is kept and completed by the next frame.
#[derive(Debug)]
pub struct StreamDecoder {
    encoding: AudioEncoding,
    rate: u32,
    carry: Vec<u8>,
    resampler: Option<StreamResampler>,
    scratch: Vec<f32>,
}

impl StreamDecoder {
    /// A decoder for `encoding` at `rate` Hz (8000..=48000), mono.
    pub fn new(encoding: AudioEncoding, rate: u32) -> Result<Self, AudioError> {
        if !(MIN_STREAM_RATE..=MAX_STREAM_RATE).contains(&rate) {
            return Err(AudioError::BadSampleRate {
                rate,
                min: MIN_STREAM_RATE,
                max: MAX_STREAM_RATE,
            });
        }
        let resampler = if rate == TARGET_RATE {
            None
        } else {
            Some(StreamResampler::new(rate)?)
        };
        Ok(StreamDecoder {
            encoding,
            rate,
            carry: Vec::with_capacity(4),
            resampler,
            scratch: Vec::new(),
        })
    }

    /// A decoder from the query-string names (`encoding=pcm_s16le&sample_rate=16000`).
    pub fn from_names(encoding: &str, rate: u32) -> Result<Self, AudioError> {
        Self::new(encoding.parse()?, rate)
    }

    /// The declared encoding.
    pub fn encoding(&self) -> AudioEncoding {
        self.encoding
    }

    /// The declared input rate.
    pub fn input_rate(&self) -> u32 {
        self.rate
    }

    /// Bytes carried over, waiting for the rest of their sample.
    pub fn pending_bytes(&self) -> usize {
        self.carry.len()
    }

    /// Decode one frame; returns the 16 kHz samples now available (possibly none).
    pub fn push(&mut self, frame: &[u8]) -> Result<Vec<f32>, AudioError> {
        let width = self.encoding.sample_bytes();
        self.scratch.clear();
        let mut rest = frame;
        if !self.carry.is_empty() {
            let need = width - self.carry.len();
            if rest.len() < need {
                self.carry.extend_from_slice(rest);
                return Ok(Vec::new());
            }
            let mut sample = [0u8; 4];
            sample[..self.carry.len()].copy_from_slice(&self.carry);
            sample[self.carry.len()..width].copy_from_slice(&rest[..need]);
            self.scratch.push(self.decode_one(&sample[..width]));
            self.carry.clear();
            rest = &rest[need..];
        }
        let whole = rest.len() / width * width;
        for s in rest[..whole].chunks_exact(width) {
            let v = self.decode_one(s);
            self.scratch.push(v);
        }
        self.carry.extend_from_slice(&rest[whole..]);
        match &mut self.resampler {
            None => Ok(std::mem::take(&mut self.scratch)),
            Some(r) => r.push(&self.scratch),
        }
    }

    /// End of stream: flush the resampler (a dangling partial sample is dropped).
    pub fn finish(&mut self) -> Result<Vec<f32>, AudioError> {
        self.carry.clear();
        match &mut self.resampler {
            None => Ok(Vec::new()),
            Some(r) => r.finish(),
        }
    }

    fn decode_one(&self, b: &[u8]) -> f32 {
        match self.encoding {
            AudioEncoding::PcmS16le => i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0,
            AudioEncoding::PcmF32le => sanitize(f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            AudioEncoding::PcmMulaw => mulaw_to_i16(b[0]) as f32 / 32768.0,
        }
    }
}

/// Convert `f32` samples to 16-bit PCM (saturating), e.g. for the VAD.
pub fn f32_to_i16(samples: &[f32]) -> Vec<i16> {
    samples
        .iter()
        .map(|v| (sanitize(*v) * 32767.0).round() as i16)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mulaw_roundtrip_is_close() {
        for s in (-32000i32..32000).step_by(97) {
            let s = s as i16;
            let back = mulaw_to_i16(i16_to_mulaw(s));
            let err = (back as i32 - s as i32).abs();
            assert!(err <= (s as i32).abs() / 16 + 8, "{s} -> {back}");
        }
    }

    #[test]
    fn odd_byte_is_carried() {
        let mut d = StreamDecoder::new(AudioEncoding::PcmS16le, 16000).unwrap();
        let bytes: Vec<u8> = (0..100i16).flat_map(|v| (v * 100).to_le_bytes()).collect();
        let mut all = Vec::new();
        for piece in bytes.chunks(3) {
            all.extend(d.push(piece).unwrap());
        }
        assert_eq!(all.len(), 100);
        assert!((all[7] - 700.0 / 32768.0).abs() < 1e-6);
    }
}
