//! The one error type of audio input, shared by file decoding and live streams, so the
//! server can map every failure to a status (415 / 413 / 422) or a WebSocket error frame
//! without knowing which decoder produced it.

/// Why audio could not be turned into samples. Each variant says whether it is the caller's
/// *format* (the server answers 415), too much audio (413) or broken *content* (422 / WS
/// error + close 1008); see [`AudioError::is_unsupported_format`] and [`AudioError::code`].
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
    /// The audio really holds more than the allowed duration (counted while decoding, never
    /// taken from a header); decoding stopped there.
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
    /// invalid (HTTP 422), too long (413) or the failure is local I/O.
    pub fn is_unsupported_format(&self) -> bool {
        matches!(
            self,
            AudioError::UnsupportedFormat(_) | AudioError::UnsupportedEncoding(_)
        )
    }

    /// True when the audio is longer than the caller allowed (HTTP 413).
    pub fn is_too_long(&self) -> bool {
        matches!(self, AudioError::TooLong(_))
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
