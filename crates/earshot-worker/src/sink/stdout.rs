//! The `stdout` sink: one JSON line per event, for piping into another program.

use async_trait::async_trait;
use earshot_store::StreamEntry;
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use super::{payload_line, Sink, SinkError};

/// Writes one JSON line per event to standard output, flushed per batch.
pub struct StdoutSink {
    out: Mutex<tokio::io::Stdout>,
}

impl StdoutSink {
    /// A sink on the process's standard output.
    pub fn new() -> Self {
        Self {
            out: Mutex::new(tokio::io::stdout()),
        }
    }
}

impl Default for StdoutSink {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Sink for StdoutSink {
    fn name(&self) -> &'static str {
        "stdout"
    }

    async fn deliver(&self, entry: &StreamEntry) -> Result<(), SinkError> {
        let mut line = payload_line(entry);
        line.push('\n');
        // A closed or full pipe may be fixed by whoever reads it; never dead-letter for it.
        self.out
            .lock()
            .await
            .write_all(line.as_bytes())
            .await
            .map_err(|e| SinkError::Retryable(format!("stdout: {e}")))
    }

    async fn flush(&self) -> Result<(), SinkError> {
        self.out
            .lock()
            .await
            .flush()
            .await
            .map_err(|e| SinkError::Retryable(format!("stdout: {e}")))
    }
}
