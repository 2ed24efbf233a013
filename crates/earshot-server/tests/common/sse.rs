//! A minimal Server-Sent Events reader over a streaming response body.

use futures::StreamExt;

pub struct SseEvent {
    pub id: String,
    pub event: String,
    pub data: String,
}

/// A minimal SSE parser over a streaming response body.
pub struct SseReader {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: String,
}

impl SseReader {
    pub fn new(resp: reqwest::Response) -> Self {
        Self {
            body: resp.bytes_stream().boxed(),
            buf: String::new(),
        }
    }

    pub async fn next_event(&mut self) -> SseEvent {
        loop {
            if let Some(pos) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..pos + 2).collect();
                let mut e = SseEvent {
                    id: String::new(),
                    event: String::new(),
                    data: String::new(),
                };
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        e.id = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        e.event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        e.data.push_str(v.trim_start());
                    }
                }
                if !e.event.is_empty() {
                    return e;
                }
                continue;
            }
            let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), self.body.next())
                .await
                .expect("an SSE event within 10 s")
                .expect("stream open")
                .expect("body chunk");
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}
