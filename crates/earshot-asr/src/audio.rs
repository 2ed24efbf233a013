//! Audio in: whole-file decoding and the streaming frame decoder, both ending in 16 kHz mono
//! `f32` samples in `[-1, 1]`, which is what whisper.cpp and the VAD consume.
//!
//! * [`decode_file`] / [`decode_bytes`]: WAV through `hound` (fast path, exact), mp3 / flac /
//!   ogg-vorbis (and WAV codecs `hound` does not read) through `symphonia`; channels are
//!   averaged to mono and the result is resampled with `rubato`'s band-limited sinc resampler.
//! * [`StreamDecoder`]: raw `pcm_s16le` / `pcm_f32le` / `pcm_mulaw` frames of any size, at any
//!   rate from 8000 to 48000 Hz, resampled incrementally. Bytes that do not complete a sample are
//!   carried over to the next frame.
//!
//! Every failure is an [`AudioError`]; nothing here panics on hostile input.

use std::io::Cursor;
use std::path::Path;

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{
    Async, FixedAsync, Indexing, Resampler, SincInterpolationParameters, SincInterpolationType,
    WindowFunction,
};
use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;

/// The sample rate everything downstream of this module works at (whisper's input rate).
pub const TARGET_RATE: u32 = 16_000;
/// Lowest declared rate a raw stream may have.
pub const MIN_STREAM_RATE: u32 = 8_000;
/// Highest declared rate a raw stream may have.
pub const MAX_STREAM_RATE: u32 = 48_000;
/// Sanity cap for a decoded file (4 hours at 16 kHz), so that a tiny compressed file that
/// claims an absurd length cannot make us allocate without bound.
pub const MAX_DECODED_SECONDS: u64 = 4 * 3600;

/// Why audio could not be turned into samples. Each variant says whether it is the caller's
/// *format* (the server answers 415) or broken *content* (422 / WS error + close 1008); see
/// [`AudioError::is_unsupported_format`] and [`AudioError::code`].
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// Zero bytes (or a header with no samples at all).
    #[error("the audio is empty (0 bytes or no samples)")]
    Empty,
    /// Bytes that match no container we decode (garbage, or e.g. a video/AAC file).
    #[error(
        "unsupported or unrecognised audio format: {0}; supported: WAV, MP3, FLAC, Ogg Vorbis"
    )]
    UnsupportedFormat(String),
    /// A raw stream encoding name we do not know.
    #[error("unsupported encoding {0:?}; supported: pcm_s16le, pcm_f32le, pcm_mulaw")]
    UnsupportedEncoding(String),
    /// The container was recognised but its header ends early.
    #[error("truncated audio header: {0}")]
    TruncatedHeader(String),
    /// The container was recognised but the content is corrupt.
    #[error("malformed audio: {0}")]
    Malformed(String),
    /// A declared sample rate outside what we accept.
    #[error("unsupported sample rate {rate} Hz; accepted: {min}..={max} Hz")]
    BadSampleRate {
        /// The declared rate.
        rate: u32,
        /// Lowest accepted.
        min: u32,
        /// Highest accepted.
        max: u32,
    },
    /// A declared channel count we cannot downmix (0).
    #[error("unsupported channel count {0}")]
    BadChannels(u32),
    /// The decoded audio is longer than [`MAX_DECODED_SECONDS`].
    #[error("audio too long: more than {0} seconds")]
    TooLong(u64),
    /// Reading the file failed (not found, permission...).
    #[error("cannot read audio file: {0}")]
    Io(#[from] std::io::Error),
    /// The resampler refused its configuration (should not happen for accepted rates).
    #[error("resampling failed: {0}")]
    Resample(String),
}

impl AudioError {
    /// True when the *format* is not one we support (HTTP 415); false when the content is
    /// invalid (HTTP 422) or the failure is local I/O.
    pub fn is_unsupported_format(&self) -> bool {
        matches!(
            self,
            AudioError::UnsupportedFormat(_) | AudioError::UnsupportedEncoding(_)
        )
    }

    /// A stable snake_case code for API error bodies / WebSocket error frames.
    pub fn code(&self) -> &'static str {
        match self {
            AudioError::Empty => "empty_audio",
            AudioError::UnsupportedFormat(_) => "unsupported_audio_format",
            AudioError::UnsupportedEncoding(_) => "unsupported_encoding",
            AudioError::TruncatedHeader(_) => "truncated_audio",
            AudioError::Malformed(_) => "malformed_audio",
            AudioError::BadSampleRate { .. } => "bad_sample_rate",
            AudioError::BadChannels(_) => "bad_channels",
            AudioError::TooLong(_) => "audio_too_long",
            AudioError::Io(_) => "io_error",
            AudioError::Resample(_) => "resample_error",
        }
    }
}

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

/// Decode a whole audio file (format sniffed from its bytes, the extension only as a hint).
pub fn decode_file(path: impl AsRef<Path>) -> Result<DecodedAudio, AudioError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path)?;
    let ext = path.extension().and_then(|e| e.to_str());
    decode_bytes_with_hint(&bytes, ext)
}

/// Decode a whole in-memory audio file (an upload body).
pub fn decode_bytes(bytes: &[u8]) -> Result<DecodedAudio, AudioError> {
    decode_bytes_with_hint(bytes, None)
}

/// [`decode_bytes`] with a file-extension hint (`"mp3"`, ...) for formats without a magic number.
pub fn decode_bytes_with_hint(
    bytes: &[u8],
    ext_hint: Option<&str>,
) -> Result<DecodedAudio, AudioError> {
    if bytes.is_empty() {
        return Err(AudioError::Empty);
    }
    if bytes.starts_with(b"RIFF") || bytes.starts_with(b"RIFX") || bytes.starts_with(b"RF64") {
        if bytes.len() < 44 {
            return Err(AudioError::TruncatedHeader(format!(
                "a WAV header needs at least 44 bytes, got {}",
                bytes.len()
            )));
        }
        match decode_wav_hound(bytes) {
            Ok(d) => return finish(d),
            // hound does not read e.g. mu-law / ADPCM WAV: let symphonia try.
            Err(WavOutcome::NotForHound) => {}
            Err(WavOutcome::Fail(e)) => return Err(e),
        }
    }
    finish(decode_symphonia(bytes, ext_hint)?)
}

/// Interleaved `f32` samples at the source rate, before downmix/resampling.
struct RawPcm {
    interleaved: Vec<f32>,
    rate: u32,
    channels: u16,
}

fn finish(raw: RawPcm) -> Result<DecodedAudio, AudioError> {
    if raw.channels == 0 {
        return Err(AudioError::BadChannels(0));
    }
    if raw.rate == 0 || raw.rate > 384_000 {
        return Err(AudioError::BadSampleRate {
            rate: raw.rate,
            min: 1,
            max: 384_000,
        });
    }
    let mono = downmix(&raw.interleaved, raw.channels as usize);
    if mono.is_empty() {
        return Err(AudioError::Empty);
    }
    let samples = resample_to_16k(&mono, raw.rate)?;
    Ok(DecodedAudio {
        samples,
        source_rate: raw.rate,
        source_channels: raw.channels,
    })
}

enum WavOutcome {
    NotForHound,
    Fail(AudioError),
}

fn decode_wav_hound(bytes: &[u8]) -> Result<RawPcm, WavOutcome> {
    let reader = match hound::WavReader::new(Cursor::new(bytes)) {
        Ok(r) => r,
        Err(hound::Error::Unsupported) => return Err(WavOutcome::NotForHound),
        // Reading from memory, an I/O error can only mean "ran out of bytes" (hound reports
        // short reads as ErrorKind::Other).
        Err(hound::Error::IoError(_)) => {
            return Err(WavOutcome::Fail(AudioError::TruncatedHeader(
                "the WAV header ends before its data chunk".into(),
            )))
        }
        Err(hound::Error::FormatError(msg)) => {
            // hound rejects some valid-but-exotic headers; give symphonia a chance first.
            return match decode_symphonia(bytes, Some("wav")) {
                Ok(_) => Err(WavOutcome::NotForHound),
                Err(_) => Err(WavOutcome::Fail(AudioError::Malformed(format!(
                    "WAV: {msg}"
                )))),
            };
        }
        Err(e) => return Err(WavOutcome::Fail(AudioError::Malformed(format!("WAV: {e}")))),
    };
    let spec = reader.spec();
    if spec.channels == 0 {
        return Err(WavOutcome::Fail(AudioError::BadChannels(0)));
    }
    if spec.sample_rate == 0 {
        return Err(WavOutcome::Fail(AudioError::BadSampleRate {
            rate: 0,
            min: 1,
            max: 384_000,
        }));
    }
    let max_samples = MAX_DECODED_SECONDS * spec.sample_rate as u64 * spec.channels as u64;
    if reader.len() as u64 > max_samples {
        return Err(WavOutcome::Fail(AudioError::TooLong(MAX_DECODED_SECONDS)));
    }
    let interleaved = read_hound_samples(reader, spec).map_err(WavOutcome::Fail)?;
    Ok(RawPcm {
        interleaved,
        rate: spec.sample_rate,
        channels: spec.channels,
    })
}

fn read_hound_samples(
    reader: hound::WavReader<Cursor<&[u8]>>,
    spec: hound::WavSpec,
) -> Result<Vec<f32>, AudioError> {
    let mut out = Vec::with_capacity(reader.len() as usize);
    // A body shorter than its header claims (a recorder that died, a streamed WAV with a
    // placeholder size) keeps what was read; garbage in the middle is an error.
    match spec.sample_format {
        hound::SampleFormat::Float => {
            for s in reader.into_samples::<f32>() {
                match s {
                    Ok(v) => out.push(sanitize(v)),
                    Err(e) => {
                        handle_tail_error(e, out.len())?;
                        break;
                    }
                }
            }
        }
        hound::SampleFormat::Int => {
            let bits = spec.bits_per_sample.clamp(1, 32);
            let scale = 1.0 / (1u64 << (bits - 1)) as f32;
            for s in reader.into_samples::<i32>() {
                match s {
                    Ok(v) => out.push((v as f32 * scale).clamp(-1.0, 1.0)),
                    Err(e) => {
                        handle_tail_error(e, out.len())?;
                        break;
                    }
                }
            }
        }
    }
    Ok(out)
}

fn handle_tail_error(e: hound::Error, read_so_far: usize) -> Result<(), AudioError> {
    match e {
        hound::Error::IoError(_) => {
            if read_so_far == 0 {
                Err(AudioError::Empty)
            } else {
                tracing::debug!(
                    read_so_far,
                    "WAV body shorter than its header says; keeping what was read"
                );
                Ok(())
            }
        }
        other => Err(AudioError::Malformed(format!("WAV: {other}"))),
    }
}

fn sanitize(v: f32) -> f32 {
    if v.is_finite() {
        v.clamp(-1.0, 1.0)
    } else {
        0.0
    }
}

fn map_sym_err(e: SymError) -> AudioError {
    match e {
        SymError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            AudioError::TruncatedHeader(format!("stream ends early: {io}"))
        }
        SymError::IoError(io) => AudioError::Malformed(io.to_string()),
        SymError::DecodeError(m) => AudioError::Malformed(m.to_string()),
        SymError::Unsupported(m) => AudioError::UnsupportedFormat(m.to_string()),
        SymError::LimitError(m) => AudioError::Malformed(format!("limit reached: {m}")),
        other => AudioError::Malformed(other.to_string()),
    }
}

/// symphonia is a large parser of untrusted bytes and some malformed headers make it
/// panic (found by fuzzing: symphonia-format-riff 0.6.1 computes a WAV's block align as
/// `channels * bytes_per_sample` in `u16`, which overflows for a huge channel count, and
/// its probe finds a RIFF header anywhere in the first MiB, so no up-front check of ours
/// can rule that out). A panic inside it becomes a typed error for this one file instead
/// of a failed request or an aborted `earshot transcribe`.
fn decode_symphonia(bytes: &[u8], ext_hint: Option<&str>) -> Result<RawPcm, AudioError> {
    std::panic::catch_unwind(|| decode_symphonia_unguarded(bytes, ext_hint)).unwrap_or_else(|_| {
        Err(AudioError::Malformed(
            "the audio decoder failed on this file's headers".into(),
        ))
    })
}

fn decode_symphonia_unguarded(bytes: &[u8], ext_hint: Option<&str>) -> Result<RawPcm, AudioError> {
    let owned = bytes.to_vec();
    let mss = MediaSourceStream::new(
        Box::new(Cursor::new(owned)),
        MediaSourceStreamOptions::default(),
    );
    let mut hint = Hint::new();
    if let Some(ext) = ext_hint {
        hint.with_extension(ext);
    }
    let mut format = symphonia::default::get_probe()
        .probe(
            &hint,
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| match e {
            SymError::Unsupported(_) => {
                AudioError::UnsupportedFormat("no WAV/MP3/FLAC/Ogg signature found".into())
            }
            other => map_sym_err(other),
        })?;
    let track = format
        .default_track(TrackType::Audio)
        .ok_or_else(|| AudioError::UnsupportedFormat("the file has no audio track".into()))?;
    let track_id = track.id;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or_else(|| AudioError::UnsupportedFormat("the audio track has no codec".into()))?
        .clone();
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(|e| match e {
            SymError::Unsupported(m) => {
                AudioError::UnsupportedFormat(format!("unsupported codec ({m})"))
            }
            other => map_sym_err(other),
        })?;

    let mut interleaved: Vec<f32> = Vec::new();
    let mut rate = params.sample_rate.unwrap_or(0);
    let mut channels = params
        .channels
        .as_ref()
        .map(|c| c.count() as u16)
        .unwrap_or(0);
    let mut chunk: Vec<f32> = Vec::new();
    let mut decode_errors = 0usize;
    let mut decoded_packets = 0usize;
    loop {
        let packet = match format.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            // A cut-off last packet: keep what we have.
            Err(SymError::IoError(io)) if io.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(SymError::ResetRequired) => break,
            Err(e) => {
                if decoded_packets == 0 {
                    return Err(map_sym_err(e));
                }
                tracing::debug!(error = %e, "stopping at a demux error after {decoded_packets} packets");
                break;
            }
        };
        if packet.track_id != track_id {
            continue;
        }
        match decoder.decode(&packet) {
            Ok(buf) => {
                decoded_packets += 1;
                let spec = buf.spec();
                if rate == 0 {
                    rate = spec.rate();
                }
                let ch = spec.channels().count() as u16;
                if channels == 0 {
                    channels = ch;
                }
                if ch == 0 || ch != channels || spec.rate() != rate {
                    return Err(AudioError::Malformed(
                        "the stream changes its sample rate or channel count".into(),
                    ));
                }
                chunk.resize(buf.samples_interleaved(), 0.0);
                buf.copy_to_slice_interleaved(&mut chunk[..]);
                interleaved.extend(chunk.iter().map(|v| sanitize(*v)));
                let limit = MAX_DECODED_SECONDS * rate.max(1) as u64 * channels.max(1) as u64;
                if interleaved.len() as u64 > limit {
                    return Err(AudioError::TooLong(MAX_DECODED_SECONDS));
                }
            }
            // Skip a corrupt packet, as players do; fail only if nothing decodes.
            Err(SymError::DecodeError(m)) => {
                decode_errors += 1;
                tracing::debug!(error = m, "skipping an undecodable packet");
                if decode_errors > 64 && decoded_packets == 0 {
                    return Err(AudioError::Malformed(m.to_string()));
                }
            }
            Err(e) => {
                if decoded_packets == 0 {
                    return Err(map_sym_err(e));
                }
                break;
            }
        }
    }
    if interleaved.is_empty() {
        return Err(if decode_errors > 0 {
            AudioError::Malformed("no packet could be decoded".into())
        } else {
            AudioError::Empty
        });
    }
    Ok(RawPcm {
        interleaved,
        rate,
        channels,
    })
}

/// Average interleaved channels to mono.
pub fn downmix(interleaved: &[f32], channels: usize) -> Vec<f32> {
    if channels <= 1 {
        return interleaved.to_vec();
    }
    interleaved
        .chunks_exact(channels)
        .map(|f| f.iter().sum::<f32>() / channels as f32)
        .collect()
}

/// Resample a whole mono clip to 16 kHz (identity at 16 kHz). Output length is
/// `ceil(len * 16000 / rate)`, aligned in time with the input (the filter delay is removed).
pub fn resample_to_16k(mono: &[f32], rate: u32) -> Result<Vec<f32>, AudioError> {
    if rate == TARGET_RATE {
        return Ok(mono.to_vec());
    }
    let mut r = StreamResampler::new(rate)?;
    let mut out = r.push(mono)?;
    out.extend(r.finish()?);
    Ok(out)
}

/// Incremental band-limited resampler (rubato's windowed-sinc `Async`, which takes any ratio,
/// unlike the FFT resampler whose block size explodes for rates like 44 099 Hz). It removes
/// the filter delay so that output sample `i` is at time `i / 16000` s of the input.
pub struct StreamResampler {
    inner: Async<f32>,
    ratio: f64,
    /// Input not yet processed (less than one chunk).
    pending: Vec<f32>,
    /// Output frames still to drop at the start (the filter delay).
    to_trim: usize,
    in_total: u64,
    out_total: u64,
    out_buf: Vec<f32>,
}

impl std::fmt::Debug for StreamResampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamResampler")
            .field("ratio", &self.ratio)
            .finish()
    }
}

impl StreamResampler {
    /// A resampler from `rate` Hz to 16 kHz. Chunks of 10 ms of input keep added latency low.
    pub fn new(rate: u32) -> Result<Self, AudioError> {
        if rate == 0 {
            return Err(AudioError::BadSampleRate {
                rate,
                min: 1,
                max: 384_000,
            });
        }
        let ratio = TARGET_RATE as f64 / rate as f64;
        let params = SincInterpolationParameters {
            sinc_len: 128,
            f_cutoff: None,
            oversampling_factor: 128,
            interpolation: SincInterpolationType::Cubic,
            window: WindowFunction::BlackmanHarris2,
        };
        let chunk = (rate as usize / 100).max(16);
        let inner = Async::<f32>::new_sinc(ratio, 1.0, &params, chunk, 1, FixedAsync::Input)
            .map_err(|e| AudioError::Resample(e.to_string()))?;
        let to_trim = inner.output_delay();
        let max_out = inner.output_frames_max();
        Ok(StreamResampler {
            inner,
            ratio,
            pending: Vec::new(),
            to_trim,
            in_total: 0,
            out_total: 0,
            out_buf: vec![0.0; max_out],
        })
    }

    fn run_chunk(
        &mut self,
        input: &[f32],
        partial: Option<usize>,
        out: &mut Vec<f32>,
    ) -> Result<(), AudioError> {
        let need = self.inner.input_frames_next();
        let in_adapter = InterleavedSlice::new(input, 1, need)
            .map_err(|e| AudioError::Resample(e.to_string()))?;
        let cap = self.out_buf.len();
        let mut out_adapter = InterleavedSlice::new_mut(&mut self.out_buf[..], 1, cap)
            .map_err(|e| AudioError::Resample(e.to_string()))?;
        let idx = partial.map(|n| Indexing::new().partial_len(n));
        let (_, written) = self
            .inner
            .process_into_buffer(&in_adapter, &mut out_adapter, idx.as_ref())
            .map_err(|e| AudioError::Resample(e.to_string()))?;
        let mut produced = &self.out_buf[..written];
        if self.to_trim > 0 {
            let t = self.to_trim.min(produced.len());
            produced = &produced[t..];
            self.to_trim -= t;
        }
        // Sinc ringing on full-scale input can overshoot; whisper and the VAD expect [-1, 1].
        out.extend(produced.iter().map(|v| v.clamp(-1.0, 1.0)));
        Ok(())
    }

    /// Feed input samples; returns the 16 kHz samples that are ready.
    pub fn push(&mut self, input: &[f32]) -> Result<Vec<f32>, AudioError> {
        self.in_total += input.len() as u64;
        self.pending.extend_from_slice(input);
        let mut out = Vec::with_capacity((input.len() as f64 * self.ratio) as usize + 16);
        let mut start = 0;
        loop {
            let need = self.inner.input_frames_next();
            if self.pending.len() - start < need {
                break;
            }
            let chunk: Vec<f32> = self.pending[start..start + need].to_vec();
            self.run_chunk(&chunk, None, &mut out)?;
            start += need;
        }
        self.pending.drain(..start);
        self.out_total += out.len() as u64;
        Ok(out)
    }

    /// Flush: process what is pending (zero-padded) and drain the filter so that the total
    /// output matches the total input duration.
    pub fn finish(&mut self) -> Result<Vec<f32>, AudioError> {
        let expected = (self.in_total as f64 * self.ratio).ceil() as u64;
        let mut out = Vec::new();
        let need = self.inner.input_frames_next();
        if !self.pending.is_empty() {
            let mut chunk = std::mem::take(&mut self.pending);
            let n = chunk.len();
            chunk.resize(need.max(n), 0.0);
            self.run_chunk(&chunk, Some(n), &mut out)?;
        }
        let zeros = vec![0.0f32; need.max(1)];
        let mut guard = 0;
        while self.out_total + (out.len() as u64) < expected && guard < 1000 {
            let need = self.inner.input_frames_next();
            let z = if zeros.len() >= need {
                &zeros[..need]
            } else {
                &zeros[..]
            };
            self.run_chunk(z, Some(0), &mut out)?;
            guard += 1;
        }
        let keep = expected.saturating_sub(self.out_total) as usize;
        out.truncate(keep);
        self.out_total += out.len() as u64;
        self.inner.reset();
        self.to_trim = self.inner.output_delay();
        self.in_total = 0;
        self.out_total = 0;
        Ok(out)
    }
}

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

    /// Fuzzer find: junk, then a RIFF/WAVE header with 64 770 channels of 16-bit PCM.
    /// symphonia's WAV reader overflowed (panicked) computing the block align.
    #[test]
    fn a_decoder_panic_on_a_malformed_header_is_a_typed_error() {
        let mut bytes = vec![0xff, 0xf3, 0xff, 0xfb];
        bytes.extend_from_slice(b"RIFF\x44\x03\0\0WAVEfmt \x10\0\0\0");
        // PCM, 0xfd02 channels, 21 436 Hz (arbitrary), byte rate, block align, 16 bits.
        bytes.extend_from_slice(&[1, 0, 2, 0xfd, 0xbc, 0x53, 0, 0]);
        bytes.extend_from_slice(&[0xef, 0x4e, 0xfd, 0, 4, 0, 16, 0]);
        bytes.extend_from_slice(b"data\x40\0\0\0");
        bytes.extend(std::iter::repeat_n(0x11, 64));
        for hint in [None, Some("wav")] {
            let got = decode_bytes_with_hint(&bytes, hint);
            assert!(got.is_err(), "{hint:?}: {got:?}");
        }
        // The same header at the start of the file, where hound looks first.
        let got = decode_bytes(&bytes[4..]);
        assert!(got.is_err(), "{got:?}");
    }

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

    #[test]
    fn resample_lengths() {
        for rate in [8000u32, 22050, 44100, 48000, 44099] {
            let n = rate as usize; // one second
            let x: Vec<f32> = (0..n).map(|i| (i as f32 * 0.01).sin() * 0.5).collect();
            let y = resample_to_16k(&x, rate).unwrap();
            assert_eq!(y.len(), 16000, "rate {rate}");
        }
    }
}
