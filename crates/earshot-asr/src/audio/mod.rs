//! Audio in: whole-file decoding and the streaming frame decoder, both ending in 16 kHz mono
//! `f32` samples in `[-1, 1]`, which is what whisper.cpp and the VAD consume.
//!
//! * [`decode_file`] / [`decode_bytes`] (and their `_limited` forms with a duration cap):
//!   WAV through `hound`, mp3 / flac / ogg-vorbis (and WAV codecs `hound` does not read)
//!   through `symphonia`, decoded block by block: channels are averaged to mono and
//!   resampled incrementally, and decoding stops as soon as the audio passes the cap
//!   ([`file`]).
//! * [`StreamDecoder`]: raw `pcm_s16le` / `pcm_f32le` / `pcm_mulaw` frames of any size, at any
//!   rate from 8000 to 48000 Hz, resampled incrementally. Bytes that do not complete a sample are
//!   carried over to the next frame ([`stream`]).
//! * [`StreamResampler`]: the band-limited resampler both use ([`resample`]).
//!
//! Every failure is an [`AudioError`]; nothing here panics on hostile input.

mod error;
mod file;
pub mod resample;
mod sink;
pub mod stream;

use std::path::Path;

pub use error::AudioError;
pub use resample::{downmix, resample_to_16k, StreamResampler};
pub use stream::{f32_to_i16, i16_to_mulaw, mulaw_to_i16, AudioEncoding, StreamDecoder};

/// The sample rate everything downstream of this module works at (whisper's input rate).
pub const TARGET_RATE: u32 = 16_000;
/// Lowest declared rate a raw stream may have.
pub const MIN_STREAM_RATE: u32 = 8_000;
/// Highest declared rate a raw stream may have.
pub const MAX_STREAM_RATE: u32 = 48_000;
/// The cap of [`decode_file`] / [`decode_bytes`] (4 hours: 920 MB of 16 kHz samples), for
/// local use where the caller chose the file; servers pass their own, smaller cap to the
/// `_limited` forms.
pub const MAX_DECODED_SECONDS: u64 = 4 * 3600;

/// Decoded audio: 16 kHz mono samples plus what the source declared (for logs / API output).
#[derive(Debug, Clone)]
pub struct DecodedAudio {
    /// 16 kHz mono `f32` samples in `[-1, 1]`.
    pub samples: Vec<f32>,
    /// The source's sample rate.
    pub source_rate: u32,
    /// The source's channel count.
    pub source_channels: u16,
}

impl DecodedAudio {
    /// Duration in seconds.
    pub fn duration_secs(&self) -> f64 {
        self.samples.len() as f64 / TARGET_RATE as f64
    }
}

/// Decode a whole audio file (format sniffed from its bytes, the extension only as a hint),
/// refusing more than [`MAX_DECODED_SECONDS`].
pub fn decode_file(path: impl AsRef<Path>) -> Result<DecodedAudio, AudioError> {
    decode_file_limited(path, MAX_DECODED_SECONDS)
}

/// [`decode_file`] with [`AudioError::TooLong`] as soon as the file holds more than
/// `max_seconds` of audio. The file is read as it is decoded, never whole.
pub fn decode_file_limited(
    path: impl AsRef<Path>,
    max_seconds: u64,
) -> Result<DecodedAudio, AudioError> {
    let path = path.as_ref();
    let ext = path.extension().and_then(|e| e.to_str());
    file::decode(file::Input::File(path), ext, max_seconds)
}

/// Decode a whole in-memory audio file (an upload body), refusing more than
/// [`MAX_DECODED_SECONDS`].
pub fn decode_bytes(bytes: &[u8]) -> Result<DecodedAudio, AudioError> {
    decode_bytes_limited(bytes, None, MAX_DECODED_SECONDS)
}

/// [`decode_bytes`] with a file-extension hint (`"mp3"`, ...) for formats without a magic number.
pub fn decode_bytes_with_hint(
    bytes: &[u8],
    ext_hint: Option<&str>,
) -> Result<DecodedAudio, AudioError> {
    decode_bytes_limited(bytes, ext_hint, MAX_DECODED_SECONDS)
}

/// [`decode_bytes_with_hint`] with [`AudioError::TooLong`] as soon as the audio holds more
/// than `max_seconds`: memory and CPU stay bounded by the cap whatever the header says.
pub fn decode_bytes_limited(
    bytes: &[u8],
    ext_hint: Option<&str>,
    max_seconds: u64,
) -> Result<DecodedAudio, AudioError> {
    file::decode(file::Input::Bytes(bytes), ext_hint, max_seconds)
}

/// NaN and infinities (a corrupt float WAV) become silence; the rest is clamped to `[-1, 1]`.
fn sanitize(v: f32) -> f32 {
    if v.is_finite() {
        v.clamp(-1.0, 1.0)
    } else {
        0.0
    }
}
