//! The end of whole-file decoding: decoded blocks at the source rate and layout go in,
//! 16 kHz mono comes out, and the frames that really arrived are counted against the
//! caller's duration cap before any work is spent on them. Separate from the container
//! code so that both decoders (hound, symphonia) share one cap and one downmix.

use super::resample::StreamResampler;
use super::{sanitize, AudioError, DecodedAudio, TARGET_RATE};

/// Highest source rate accepted in a file (far above any real recording).
const MAX_FILE_RATE: u32 = 384_000;

/// Downmixes, resamples and collects decoded blocks, counting the source frames that
/// really arrived against the cap.
pub(super) struct MonoSink {
    rate: u32,
    channels: usize,
    resampler: Option<StreamResampler>,
    mono: Vec<f32>,
    out: Vec<f32>,
    in_frames: u64,
    max_in_frames: u64,
    max_seconds: u64,
}

impl MonoSink {
    pub(super) fn new(rate: u32, channels: u16, max_seconds: u64) -> Result<Self, AudioError> {
        if channels == 0 {
            return Err(AudioError::BadChannels(0));
        }
        if rate == 0 || rate > MAX_FILE_RATE {
            return Err(AudioError::BadSampleRate {
                rate,
                min: 1,
                max: MAX_FILE_RATE,
            });
        }
        let resampler = if rate == TARGET_RATE {
            None
        } else {
            Some(StreamResampler::new(rate)?)
        };
        Ok(Self {
            rate,
            channels: channels as usize,
            resampler,
            mono: Vec::new(),
            out: Vec::new(),
            in_frames: 0,
            max_in_frames: max_seconds.saturating_mul(rate as u64),
            max_seconds,
        })
    }

    /// Takes interleaved samples (a trailing partial frame is dropped).
    pub(super) fn push(&mut self, interleaved: &[f32]) -> Result<(), AudioError> {
        let ch = self.channels;
        self.in_frames += (interleaved.len() / ch) as u64;
        if self.in_frames > self.max_in_frames {
            return Err(AudioError::TooLong(self.max_seconds));
        }
        self.mono.clear();
        if ch == 1 {
            self.mono.extend(interleaved.iter().map(|v| sanitize(*v)));
        } else {
            self.mono.extend(
                interleaved
                    .chunks_exact(ch)
                    .map(|f| f.iter().map(|v| sanitize(*v)).sum::<f32>() / ch as f32),
            );
        }
        match &mut self.resampler {
            None => self.out.extend_from_slice(&self.mono),
            Some(r) => self.out.extend(r.push(&self.mono)?),
        }
        Ok(())
    }

    /// Whether a decoded block has the layout this sink was made for.
    pub(super) fn matches(&self, rate: u32, channels: u16) -> bool {
        self.rate == rate && self.channels == channels as usize
    }

    pub(super) fn finish(mut self) -> Result<DecodedAudio, AudioError> {
        if self.in_frames == 0 {
            return Err(AudioError::Empty);
        }
        if let Some(r) = &mut self.resampler {
            self.out.extend(r.finish()?);
        }
        self.out.shrink_to_fit();
        Ok(DecodedAudio {
            samples: self.out,
            source_rate: self.rate,
            source_channels: self.channels as u16,
        })
    }
}
