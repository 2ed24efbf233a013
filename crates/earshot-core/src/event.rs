//! The events published on `transcription_events`, their stream fields
//! (flat strings, as the original wrote them) and their JSON form (SSE, sinks).

use serde_json::{Map, Value};

/// What happened, with the fields that only that kind of event carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    SessionStarted {
        language: String,
    },
    TranscriptSegment {
        seq: u64,
        text: String,
        start_ms: Option<i64>,
        end_ms: Option<i64>,
    },
    TranscriptCompleted {
        /// The full transcript, or its first segments when it is longer than
        /// [`COMPLETED_TRANSCRIPT_MAX_BYTES`] (then `transcript_truncated` is true and
        /// the whole text is at `GET /v1/sessions/{id}/transcript`).
        transcript: String,
        segment_count: u64,
        transcript_truncated: bool,
    },
    /// A language was detected from the session's speech after the session started
    /// (whose `session_started` said `auto`); the session's `language` is now this code.
    LanguageDetected {
        language: String,
    },
    SessionDeleted,
}

/// Most transcript text one `transcript_completed` event carries. Every consumer (the
/// stream, each SSE client, each sink) holds a copy, so a session of megabytes must not
/// put megabytes into each of them.
pub const COMPLETED_TRANSCRIPT_MAX_BYTES: usize = 64 * 1024;

/// The text a `transcript_completed` event carries for these chunks: all of them joined
/// by one space if that fits in [`COMPLETED_TRANSCRIPT_MAX_BYTES`], else the longest
/// prefix of whole chunks that fits, and `true`.
pub fn completed_transcript<S: AsRef<str>>(chunks: &[S]) -> (String, bool) {
    let mut out = String::new();
    for (i, c) in chunks.iter().enumerate() {
        let c = c.as_ref();
        let sep = usize::from(i > 0);
        if out.len() + sep + c.len() > COMPLETED_TRANSCRIPT_MAX_BYTES {
            return (out, true);
        }
        if sep == 1 {
            out.push(' ');
        }
        out.push_str(c);
    }
    (out, false)
}

impl EventKind {
    /// The `event_type` field value.
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::SessionStarted { .. } => "session_started",
            Self::TranscriptSegment { .. } => "transcript_segment",
            Self::TranscriptCompleted { .. } => "transcript_completed",
            Self::LanguageDetected { .. } => "language_detected",
            Self::SessionDeleted => "session_deleted",
        }
    }
}

/// One event as written to the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub session_id: String,
    pub tenant_id: String,
    /// RFC 3339 UTC.
    pub timestamp: String,
    pub kind: EventKind,
}

/// Why stream fields could not be read as an event (a foreign or damaged entry).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventParseError {
    #[error("missing field {0}")]
    Missing(&'static str),
    #[error("unknown event_type {0:?}")]
    UnknownType(String),
    #[error("field {0} is not a number")]
    NotANumber(&'static str),
}

fn opt_num(v: Option<i64>) -> String {
    v.map(|n| n.to_string()).unwrap_or_default()
}

impl Event {
    /// The stream entry fields, in the original's order. Absent numbers are `""`.
    pub fn to_fields(&self) -> Vec<(&'static str, String)> {
        let mut f = vec![
            ("event_type", self.kind.event_type().to_owned()),
            ("session_id", self.session_id.clone()),
            ("tenant_id", self.tenant_id.clone()),
            ("timestamp", self.timestamp.clone()),
        ];
        match &self.kind {
            EventKind::SessionStarted { language } | EventKind::LanguageDetected { language } => {
                f.push(("language", language.clone()))
            }
            EventKind::TranscriptSegment {
                seq,
                text,
                start_ms,
                end_ms,
            } => {
                f.push(("seq", seq.to_string()));
                f.push(("text", text.clone()));
                f.push(("start_ms", opt_num(*start_ms)));
                f.push(("end_ms", opt_num(*end_ms)));
            }
            EventKind::TranscriptCompleted {
                transcript,
                segment_count,
                transcript_truncated,
            } => {
                f.push(("transcript", transcript.clone()));
                f.push(("segment_count", segment_count.to_string()));
                f.push(("transcript_truncated", transcript_truncated.to_string()));
            }
            EventKind::SessionDeleted => {}
        }
        f
    }

    /// Reads an event back from stream fields.
    pub fn from_fields<K: AsRef<str>, V: AsRef<str>>(
        fields: &[(K, V)],
    ) -> Result<Self, EventParseError> {
        let get = |name: &'static str| {
            fields
                .iter()
                .find(|(k, _)| k.as_ref() == name)
                .map(|(_, v)| v.as_ref())
        };
        let req = |name: &'static str| get(name).ok_or(EventParseError::Missing(name));
        let num = |name: &'static str| -> Result<u64, EventParseError> {
            req(name)?
                .parse()
                .map_err(|_| EventParseError::NotANumber(name))
        };
        let opt = |name: &'static str| -> Result<Option<i64>, EventParseError> {
            match get(name) {
                None | Some("") => Ok(None),
                Some(v) => v
                    .parse()
                    .map(Some)
                    .map_err(|_| EventParseError::NotANumber(name)),
            }
        };
        let kind = match req("event_type")? {
            "session_started" => EventKind::SessionStarted {
                language: get("language").unwrap_or_default().to_owned(),
            },
            "transcript_segment" => EventKind::TranscriptSegment {
                seq: num("seq")?,
                text: req("text")?.to_owned(),
                start_ms: opt("start_ms")?,
                end_ms: opt("end_ms")?,
            },
            "transcript_completed" => EventKind::TranscriptCompleted {
                transcript: req("transcript")?.to_owned(),
                segment_count: num("segment_count")?,
                // Absent in entries written before the field existed: they carried it all.
                transcript_truncated: get("transcript_truncated") == Some("true"),
            },
            "language_detected" => EventKind::LanguageDetected {
                language: req("language")?.to_owned(),
            },
            "session_deleted" => EventKind::SessionDeleted,
            other => return Err(EventParseError::UnknownType(other.to_owned())),
        };
        Ok(Event {
            session_id: req("session_id")?.to_owned(),
            tenant_id: req("tenant_id")?.to_owned(),
            timestamp: req("timestamp")?.to_owned(),
            kind,
        })
    }

    /// The JSON object sent to SSE clients and sinks: the stream fields with numbers
    /// as JSON numbers and absent ones as `null`.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("event_type".into(), self.kind.event_type().into());
        m.insert("session_id".into(), self.session_id.clone().into());
        m.insert("tenant_id".into(), self.tenant_id.clone().into());
        m.insert("timestamp".into(), self.timestamp.clone().into());
        match &self.kind {
            EventKind::SessionStarted { language } | EventKind::LanguageDetected { language } => {
                m.insert("language".into(), language.clone().into());
            }
            EventKind::TranscriptSegment {
                seq,
                text,
                start_ms,
                end_ms,
            } => {
                m.insert("seq".into(), (*seq).into());
                m.insert("text".into(), text.clone().into());
                m.insert("start_ms".into(), (*start_ms).into());
                m.insert("end_ms".into(), (*end_ms).into());
            }
            EventKind::TranscriptCompleted {
                transcript,
                segment_count,
                transcript_truncated,
            } => {
                m.insert("transcript".into(), transcript.clone().into());
                m.insert("segment_count".into(), (*segment_count).into());
                m.insert(
                    "transcript_truncated".into(),
                    (*transcript_truncated).into(),
                );
            }
            EventKind::SessionDeleted => {}
        }
        Value::Object(m)
    }
}

/// JSON for stream fields that may not be one of our events: known events get typed
/// values, anything else is passed through as a flat object of strings.
pub fn fields_to_json<K: AsRef<str>, V: AsRef<str>>(fields: &[(K, V)]) -> Value {
    match Event::from_fields(fields) {
        Ok(e) => e.to_json(),
        Err(_) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.as_ref().to_owned(), Value::from(v.as_ref())))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: EventKind) -> Event {
        Event {
            session_id: "s".into(),
            tenant_id: "t".into(),
            timestamp: "2026-11-26T00:00:00.000000Z".into(),
            kind,
        }
    }

    #[test]
    fn fields_round_trip_for_every_kind() {
        for kind in [
            EventKind::SessionStarted {
                language: "en-US".into(),
            },
            EventKind::TranscriptSegment {
                seq: 3,
                text: "hello".into(),
                start_ms: None,
                end_ms: Some(20),
            },
            EventKind::TranscriptCompleted {
                transcript: "a b".into(),
                segment_count: 2,
                transcript_truncated: false,
            },
            EventKind::TranscriptCompleted {
                transcript: "a".into(),
                segment_count: 9,
                transcript_truncated: true,
            },
            EventKind::LanguageDetected {
                language: "fr".into(),
            },
            EventKind::SessionDeleted,
        ] {
            let e = ev(kind);
            let fields = e.to_fields();
            assert_eq!(Event::from_fields(&fields).unwrap(), e);
        }
    }

    #[test]
    fn segment_json_has_typed_numbers() {
        let e = ev(EventKind::TranscriptSegment {
            seq: 1,
            text: "x".into(),
            start_ms: Some(5),
            end_ms: None,
        });
        let j = e.to_json();
        assert_eq!(j["seq"], 1);
        assert_eq!(j["start_ms"], 5);
        assert!(j["end_ms"].is_null());
        assert_eq!(j["event_type"], "transcript_segment");
    }

    #[test]
    fn completed_transcript_is_cut_at_a_chunk_boundary() {
        assert_eq!(completed_transcript(&["a b", "c"]), ("a b c".into(), false));
        let big = "x".repeat(COMPLETED_TRANSCRIPT_MAX_BYTES / 2);
        let (text, cut) = completed_transcript(&[big.as_str(), "y", big.as_str()]);
        assert!(cut);
        assert_eq!(text, format!("{big} y"));
        let (text, cut) = completed_transcript(&["z".repeat(COMPLETED_TRANSCRIPT_MAX_BYTES + 1)]);
        assert!(cut);
        assert_eq!(text, "");
    }

    #[test]
    fn foreign_entries_pass_through() {
        let j = fields_to_json(&[("x", "1")]);
        assert_eq!(j["x"], "1");
        assert!(Event::from_fields(&[("event_type", "nope")]).is_err());
    }
}
