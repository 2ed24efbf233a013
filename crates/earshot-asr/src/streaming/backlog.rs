//! Bounds the audio a stream may have waiting, in seconds of audio, and paces a client that
//! sends faster than the stream is transcribed.
//!
//! The socket reader reserves each frame's bytes before queueing it; when the stream's
//! backlog is full the reservation waits, the reader stops reading, and TCP flow control
//! slows the client down. A client replaying a file at 10x real time is therefore paced to
//! what the machine can transcribe, and memory per stream stays bounded whatever it sends.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::audio::AudioEncoding;

/// A frame longer than the backlog allows (in seconds of audio at the declared format).
#[derive(Debug, thiserror::Error)]
#[error("a frame of {bytes} bytes holds more than {max_ms} ms of audio")]
pub struct FrameTooLarge {
    /// The frame's size.
    pub bytes: usize,
    /// The largest audio one frame may hold.
    pub max_ms: u64,
}

/// The audio budget of one stream.
#[derive(Debug, Clone)]
pub struct Backlog {
    sem: Arc<Semaphore>,
    bytes_per_s: usize,
    max_frame_bytes: usize,
}

/// Bytes of one queued frame; dropping it (after the frame is transcribed) frees them.
#[derive(Debug)]
pub struct BacklogPermit {
    _permit: Option<OwnedSemaphorePermit>,
}

impl Backlog {
    /// At most `max_audio` waiting, frames of at most `max_frame` of audio, for audio of
    /// `encoding` at `sample_rate` Hz.
    pub fn new(
        encoding: AudioEncoding,
        sample_rate: u32,
        max_audio: Duration,
        max_frame: Duration,
    ) -> Self {
        let bytes_per_s = encoding.sample_bytes() * sample_rate as usize;
        let budget = (bytes_per_s as f64 * max_audio.as_secs_f64()) as usize;
        let max_frame_bytes = ((bytes_per_s as f64 * max_frame.as_secs_f64()) as usize).min(budget);
        Backlog {
            sem: Arc::new(Semaphore::new(budget.max(1))),
            bytes_per_s,
            max_frame_bytes: max_frame_bytes.max(encoding.sample_bytes()),
        }
    }

    /// The largest frame accepted, in bytes.
    pub fn max_frame_bytes(&self) -> usize {
        self.max_frame_bytes
    }

    /// Reserve room for a frame of `bytes`, waiting while the backlog is full.
    pub async fn reserve(&self, bytes: usize) -> Result<BacklogPermit, FrameTooLarge> {
        if bytes > self.max_frame_bytes {
            return Err(FrameTooLarge {
                bytes,
                max_ms: (self.max_frame_bytes as u64 * 1000) / self.bytes_per_s.max(1) as u64,
            });
        }
        if bytes == 0 {
            return Ok(BacklogPermit { _permit: None });
        }
        let permit = self
            .sem
            .clone()
            .acquire_many_owned(bytes as u32)
            .await
            .expect("the backlog semaphore is never closed");
        Ok(BacklogPermit {
            _permit: Some(permit),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_backlog_makes_the_sender_wait() {
        // 1 s of 16 kHz s16le = 32000 bytes; frames of up to 0.5 s.
        let b = Backlog::new(
            AudioEncoding::PcmS16le,
            16_000,
            Duration::from_secs(1),
            Duration::from_millis(500),
        );
        assert_eq!(b.max_frame_bytes(), 16_000);
        assert!(
            b.reserve(16_002).await.is_err(),
            "a frame over 0.5 s is refused"
        );
        let first = b.reserve(16_000).await.unwrap();
        let _second = b.reserve(16_000).await.unwrap();
        let third = tokio::time::timeout(Duration::from_millis(50), b.reserve(3_200)).await;
        assert!(third.is_err(), "the backlog is full: the sender waits");
        drop(first);
        let third = tokio::time::timeout(Duration::from_millis(50), b.reserve(3_200)).await;
        assert!(third.is_ok(), "transcribed audio makes room");
    }
}
