//! The `jsonl:PATH` sink: appends one JSON line per event to a file and makes each
//! batch durable (`fdatasync`) before the worker acknowledges it.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use earshot_store::StreamEntry;
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use super::{payload_line, Sink, SinkError, SinkSpecError};

/// Appends JSON lines to a file (created if missing), `sync_data` per batch.
pub struct JsonlSink {
    path: PathBuf,
    file: Mutex<tokio::fs::File>,
}

impl JsonlSink {
    /// Opens `path` for appending, creating it if needed.
    pub async fn open(path: &Path) -> Result<Self, SinkSpecError> {
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await
            .map_err(|e| SinkSpecError::Open {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            path: path.to_owned(),
            file: Mutex::new(file),
        })
    }

    fn err(&self, e: std::io::Error) -> SinkError {
        // Disk full, quota, a remounted volume: all may clear, so retry rather than drop.
        SinkError::Retryable(format!("{}: {e}", self.path.display()))
    }
}

#[async_trait]
impl Sink for JsonlSink {
    fn name(&self) -> &'static str {
        "jsonl"
    }

    async fn deliver(&self, entry: &StreamEntry) -> Result<(), SinkError> {
        let mut line = payload_line(entry);
        line.push('\n');
        let mut f = self.file.lock().await;
        // One write per line: with O_APPEND, concurrent writers do not interleave lines.
        f.write_all(line.as_bytes())
            .await
            .map_err(|e| self.err(e))?;
        f.flush().await.map_err(|e| self.err(e))
    }

    async fn flush(&self) -> Result<(), SinkError> {
        let mut f = self.file.lock().await;
        f.flush().await.map_err(|e| self.err(e))?;
        f.sync_data().await.map_err(|e| self.err(e))
    }
}
