//! Whole audio files (an upload body or a file on disk) to 16 kHz mono, decoded as a
//! stream: one WAV block or one compressed packet at a time is downmixed, resampled and
//! appended, and decoding stops as soon as the audio passes the caller's duration cap.
//! Nothing is sized from what a header claims, so a small file that claims (or really
//! decodes to) hours of audio costs at most the cap's worth of 16 kHz samples.
//!
//! WAV goes through `hound` (fast, exact); everything else, and WAV codecs `hound` does
//! not read, through `symphonia`.

use std::io::{BufReader, Cursor, Read};
use std::path::Path;

use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;

use super::sink::MonoSink;
use super::{AudioError, DecodedAudio};

/// About this many samples (all channels) are handed to the sink at once on the WAV path.
const WAV_BLOCK_SAMPLES: usize = 16 * 1024;

/// Where the audio comes from: reopened when `hound` declines a WAV and `symphonia` tries.
#[derive(Clone, Copy)]
pub(super) enum Input<'a> {
    Bytes(&'a [u8]),
    File(&'a Path),
}

impl Input<'_> {
    fn reader(&self) -> std::io::Result<Box<dyn Read + '_>> {
        Ok(match *self {
            Input::Bytes(b) => Box::new(Cursor::new(b)),
            Input::File(p) => Box::new(BufReader::new(std::fs::File::open(p)?)),
        })
    }

    fn media_source(&self) -> std::io::Result<Box<dyn MediaSource>> {
        Ok(match *self {
            // symphonia needs an owned source; an upload is already bounded by the body limit.
            Input::Bytes(b) => Box::new(Cursor::new(b.to_vec())),
            Input::File(p) => Box::new(std::fs::File::open(p)?),
        })
    }

    /// The first bytes (for the container sniff) and the total length.
    fn head(&self) -> std::io::Result<(Vec<u8>, u64)> {
        match *self {
            Input::Bytes(b) => Ok((b[..b.len().min(44)].to_vec(), b.len() as u64)),
            Input::File(p) => {
                let f = std::fs::File::open(p)?;
                let len = f.metadata()?.len();
                let mut head = Vec::with_capacity(44);
                f.take(44).read_to_end(&mut head)?;
                Ok((head, len))
            }
        }
    }
}

/// Decodes `input`, refusing it with [`AudioError::TooLong`] as soon as it holds more than
/// `max_seconds` of audio.
pub(super) fn decode(
    input: Input<'_>,
    ext_hint: Option<&str>,
    max_seconds: u64,
) -> Result<DecodedAudio, AudioError> {
    let (head, len) = input.head()?;
    if len == 0 {
        return Err(AudioError::Empty);
    }
    if head.starts_with(b"RIFF") || head.starts_with(b"RIFX") || head.starts_with(b"RF64") {
        if len < 44 {
            return Err(AudioError::TruncatedHeader(format!(
                "a WAV header needs at least 44 bytes, got {len}"
            )));
        }
        match decode_wav_hound(input, max_seconds)? {
            HoundOutcome::Decoded(d) => return Ok(d),
            // hound does not read e.g. mu-law / ADPCM WAV: let symphonia try.
            HoundOutcome::Declined => {}
            // hound rejects some valid-but-exotic headers; symphonia may read them.
            HoundOutcome::FormatError(msg) => {
                return decode_symphonia(input, Some("wav"), max_seconds).map_err(|e| {
                    if e.is_too_long() {
                        e
                    } else {
                        AudioError::Malformed(format!("WAV: {msg}"))
                    }
                })
            }
        }
    }
    decode_symphonia(input, ext_hint, max_seconds)
}

enum HoundOutcome {
    Decoded(DecodedAudio),
    Declined,
    FormatError(String),
}

fn decode_wav_hound(input: Input<'_>, max_seconds: u64) -> Result<HoundOutcome, AudioError> {
    let reader = match hound::WavReader::new(input.reader()?) {
        Ok(r) => r,
        Err(hound::Error::Unsupported) => return Ok(HoundOutcome::Declined),
        // An I/O error while parsing the header means "ran out of bytes" (hound reports
        // short reads as ErrorKind::Other).
        Err(hound::Error::IoError(_)) => {
            return Err(AudioError::TruncatedHeader(
                "the WAV header ends before its data chunk".into(),
            ))
        }
        Err(hound::Error::FormatError(msg)) => {
            return Ok(HoundOutcome::FormatError(msg.to_owned()))
        }
        Err(e) => return Err(AudioError::Malformed(format!("WAV: {e}"))),
    };
    let spec = reader.spec();
    let mut sink = MonoSink::new(spec.sample_rate, spec.channels, max_seconds)?;
    // Whole frames only: a block that split a frame would shift every channel after it.
    let ch = spec.channels.max(1) as usize;
    let block_len = (WAV_BLOCK_SAMPLES / ch).max(1) * ch;
    let mut block: Vec<f32> = Vec::with_capacity(block_len);
    let mut read = 0usize;
    // A body shorter than its header claims (a recorder that died, a streamed WAV with a
    // placeholder size) keeps what was read; garbage in the middle is an error.
    let mut on_sample = |v: Result<f32, hound::Error>| -> Result<bool, AudioError> {
        match v {
            Ok(v) => {
                block.push(v);
                read += 1;
                if block.len() == block_len {
                    sink.push(&block)?;
                    block.clear();
                }
                Ok(true)
            }
            Err(e) => {
                tail_error(e, read)?;
                Ok(false)
            }
        }
    };
    match spec.sample_format {
        hound::SampleFormat::Float => {
            for s in reader.into_samples::<f32>() {
                if !on_sample(s)? {
                    break;
                }
            }
        }
        hound::SampleFormat::Int => {
            let bits = spec.bits_per_sample.clamp(1, 32);
            let scale = 1.0 / (1u64 << (bits - 1)) as f32;
            for s in reader.into_samples::<i32>() {
                if !on_sample(s.map(|v| v as f32 * scale))? {
                    break;
                }
            }
        }
    }
    sink.push(&block)?;
    sink.finish().map(HoundOutcome::Decoded)
}

fn tail_error(e: hound::Error, read_so_far: usize) -> Result<(), AudioError> {
    match e {
        hound::Error::IoError(_) if read_so_far == 0 => Err(AudioError::Empty),
        hound::Error::IoError(_) => {
            tracing::debug!(
                read_so_far,
                "WAV body shorter than its header says; keeping what was read"
            );
            Ok(())
        }
        other => Err(AudioError::Malformed(format!("WAV: {other}"))),
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
fn decode_symphonia(
    input: Input<'_>,
    ext_hint: Option<&str>,
    max_seconds: u64,
) -> Result<DecodedAudio, AudioError> {
    std::panic::catch_unwind(|| decode_symphonia_unguarded(input, ext_hint, max_seconds))
        .unwrap_or_else(|_| {
            Err(AudioError::Malformed(
                "the audio decoder failed on this file's headers".into(),
            ))
        })
}

fn decode_symphonia_unguarded(
    input: Input<'_>,
    ext_hint: Option<&str>,
    max_seconds: u64,
) -> Result<DecodedAudio, AudioError> {
    let mss = MediaSourceStream::new(input.media_source()?, MediaSourceStreamOptions::default());
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

    // Created at the first decoded packet: some containers only say their rate there.
    let mut sink: Option<MonoSink> = None;
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
                let ch = spec.channels().count() as u16;
                let sink = match &mut sink {
                    Some(s) => s,
                    None => sink.insert(MonoSink::new(
                        params.sample_rate.unwrap_or(spec.rate()),
                        params.channels.as_ref().map_or(ch, |c| c.count() as u16),
                        max_seconds,
                    )?),
                };
                if !sink.matches(spec.rate(), ch) {
                    return Err(AudioError::Malformed(
                        "the stream changes its sample rate or channel count".into(),
                    ));
                }
                chunk.resize(buf.samples_interleaved(), 0.0);
                buf.copy_to_slice_interleaved(&mut chunk[..]);
                sink.push(&chunk)?;
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
    match sink {
        Some(s) => s.finish(),
        None if decode_errors > 0 => {
            Err(AudioError::Malformed("no packet could be decoded".into()))
        }
        None => Err(AudioError::Empty),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 16 kHz WAV with `channels` channels; channel 0 carries `ramp`, the others silence.
    fn wav_ramp_on_channel_0(channels: u16, frames: usize) -> Vec<u8> {
        let spec = hound::WavSpec {
            channels,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut cur = Cursor::new(Vec::new());
        let mut w = hound::WavWriter::new(&mut cur, spec).unwrap();
        for i in 0..frames {
            w.write_sample((i % 30_000) as i16).unwrap();
            for _ in 1..channels {
                w.write_sample(0i16).unwrap();
            }
        }
        w.finalize().unwrap();
        cur.into_inner()
    }

    #[test]
    fn channels_stay_aligned_across_blocks_whatever_their_count() {
        for channels in [3u16, 6, 7] {
            let frames = 3 * WAV_BLOCK_SAMPLES;
            let d = decode(
                Input::Bytes(&wav_ramp_on_channel_0(channels, frames)),
                None,
                60,
            )
            .unwrap();
            assert_eq!(d.samples.len(), frames, "{channels} channels");
            for i in [0, WAV_BLOCK_SAMPLES, frames - 1] {
                let want = (i % 30_000) as f32 / 32768.0 / channels as f32;
                assert!(
                    (d.samples[i] - want).abs() < 1e-6,
                    "{channels} channels, frame {i}: {} != {want}",
                    d.samples[i]
                );
            }
        }
    }

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
            let got = decode(Input::Bytes(&bytes), hint, 60);
            assert!(got.is_err(), "{hint:?}: {got:?}");
        }
        // The same header at the start of the file, where hound looks first.
        let got = decode(Input::Bytes(&bytes[4..]), None, 60);
        assert!(got.is_err(), "{got:?}");
    }
}
