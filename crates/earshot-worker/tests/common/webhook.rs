//! A local webhook receiver for the webhook sink's tests: it logs every request and
//! answers by a scripted status per event id and attempt.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use earshot_worker::sink::{EVENT_ID_HEADER, SIGNATURE_HEADER};
use earshot_worker::{BackoffConfig, WebhookOptions};

pub const SECRET: &str = "s3cr3t-for-tests";

/// One request the test receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub event_id: String,
    pub signature: String,
    pub body: Bytes,
}

/// Answers by event id, the number of times it has seen that id (1-based) and the body.
pub type Answer = Arc<dyn Fn(&str, u32, &[u8]) -> StatusCode + Send + Sync>;

#[derive(Clone)]
pub struct Receiver {
    log: Arc<Mutex<Vec<Received>>>,
    seen: Arc<Mutex<BTreeMap<String, u32>>>,
    answer: Answer,
}

impl Receiver {
    pub fn requests(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }

    pub fn count_for(&self, id: &str) -> u32 {
        self.seen.lock().unwrap().get(id).copied().unwrap_or(0)
    }

    /// Event ids answered 2xx.
    pub fn accepted(&self) -> Vec<String> {
        let mut n: BTreeMap<String, u32> = BTreeMap::new();
        let mut out = vec![];
        for r in self.requests() {
            let k = n.entry(r.event_id.clone()).or_insert(0);
            *k += 1;
            if (self.answer)(&r.event_id, *k, &r.body).is_success() {
                out.push(r.event_id);
            }
        }
        out
    }
}

async fn hook(State(rx): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let event_id = h(EVENT_ID_HEADER);
    let n = {
        let mut seen = rx.seen.lock().unwrap();
        let n = seen.entry(event_id.clone()).or_insert(0);
        *n += 1;
        *n
    };
    let status = (rx.answer)(&event_id, n, &body);
    rx.log.lock().unwrap().push(Received {
        event_id,
        signature: h(SIGNATURE_HEADER),
        body,
    });
    status
}

/// Starts a receiver on 127.0.0.1:0; returns its URL.
pub async fn receiver(answer: Answer) -> (String, Receiver) {
    let rx = Receiver {
        log: Arc::default(),
        seen: Arc::default(),
        answer,
    };
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(rx.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/hook"), rx)
}

pub fn webhook_opts() -> WebhookOptions {
    WebhookOptions {
        secret: Some(SECRET.into()),
        timeout: Duration::from_secs(5),
        attempts: 3,
        backoff: BackoffConfig::new(Duration::from_millis(1), Duration::from_millis(10)),
    }
}
