//! Sample-rate conversion to 16 kHz, incremental so that whole files and live streams
//! both resample in bounded pieces: the whole-file decoder feeds it one packet at a
//! time, the stream decoder one frame at a time, and neither ever holds the source audio
//! at its original rate.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{
    Async, FixedAsync, Indexing, Resampler, SincInterpolationParameters, SincInterpolationType,
    WindowFunction,
};

use super::{AudioError, TARGET_RATE};

/// Average interleaved channels to mono.
pub fn downmix(interleaved: &[f32], channels: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(interleaved.len() / channels.max(1));
    downmix_into(interleaved, channels, &mut out);
    out
}

/// [`downmix`] appending to `out` (whole frames only; a trailing partial frame is dropped).
fn downmix_into(interleaved: &[f32], channels: usize, out: &mut Vec<f32>) {
    if channels <= 1 {
        out.extend_from_slice(interleaved);
        return;
    }
    out.extend(
        interleaved
            .chunks_exact(channels)
            .map(|f| f.iter().sum::<f32>() / channels as f32),
    );
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
        // Taken out so that chunks can be borrowed from it while `run_chunk` borrows self.
        let mut pending = std::mem::take(&mut self.pending);
        let mut start = 0;
        let ran = loop {
            let need = self.inner.input_frames_next();
            if pending.len() - start < need {
                break Ok(());
            }
            if let Err(e) = self.run_chunk(&pending[start..start + need], None, &mut out) {
                break Err(e);
            }
            start += need;
        };
        pending.drain(..start);
        self.pending = pending;
        ran?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resample_lengths() {
        for rate in [8000u32, 22050, 44100, 48000, 44099] {
            let n = rate as usize; // one second
            let x: Vec<f32> = (0..n).map(|i| (i as f32 * 0.01).sin() * 0.5).collect();
            let y = resample_to_16k(&x, rate).unwrap();
            assert_eq!(y.len(), 16000, "rate {rate}");
        }
    }

    #[test]
    fn pushing_in_pieces_gives_the_same_samples_as_one_push() {
        let x: Vec<f32> = (0..44_100).map(|i| (i as f32 * 0.03).sin() * 0.5).collect();
        let whole = resample_to_16k(&x, 44_100).unwrap();
        let mut r = StreamResampler::new(44_100).unwrap();
        let mut pieces = Vec::new();
        for c in x.chunks(1000) {
            pieces.extend(r.push(c).unwrap());
        }
        pieces.extend(r.finish().unwrap());
        assert_eq!(pieces.len(), whole.len());
        assert!(pieces.iter().zip(&whole).all(|(a, b)| (a - b).abs() < 1e-6));
    }
}
