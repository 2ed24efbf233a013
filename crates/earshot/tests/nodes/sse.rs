//! A minimal Server-Sent Events reader over a real node's `GET /v1/events`.

use std::time::Duration;

use serde_json::Value;

pub struct SseEvent {
    pub event: String,
    pub data: Value,
}

pub struct Sse {
    resp: reqwest::Response,
    buf: String,
}

impl Sse {
    pub fn new(resp: reqwest::Response) -> Self {
        assert_eq!(resp.status(), 200, "SSE refused");
        Self {
            resp,
            buf: String::new(),
        }
    }

    /// The next event (comments and keep-alives skipped); panics after 20 s without one.
    pub async fn next(&mut self) -> SseEvent {
        loop {
            if let Some(pos) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..pos + 2).collect();
                let (mut event, mut data) = (String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if !event.is_empty() {
                    let data = serde_json::from_str(&data).unwrap_or(Value::Null);
                    return SseEvent { event, data };
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(20), self.resp.chunk())
                .await
                .expect("an SSE event within 20 s")
                .expect("SSE body")
                .expect("SSE stream still open");
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}
