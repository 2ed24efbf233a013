//! JSON shapes that more than one route answers with, written once.

use earshot_core::Session;
use serde_json::{json, Value};

/// A session as JSON with its full `transcript` text (the `complete` route and a stream's
/// `completed` message).
pub fn session_with_transcript(session: &Session, transcript: String) -> Value {
    let mut v = serde_json::to_value(session).unwrap_or_else(|_| json!({}));
    if let Value::Object(m) = &mut v {
        m.insert("transcript".into(), Value::String(transcript));
    }
    v
}
