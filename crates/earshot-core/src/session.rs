//! Sessions, segments and transcripts as the API and the stores see them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{SessionId, TenantId};

/// Lifecycle of a session: appends are accepted only while `Active`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionStatus {
    Active,
    Completed,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Completed => "completed",
        }
    }
}

/// The session object of the HTTP API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub session_id: String,
    pub tenant_id: String,
    pub language: String,
    pub status: SessionStatus,
    pub started_at: String,
    pub completed_at: Option<String>,
    pub segment_count: u64,
    pub metadata: BTreeMap<String, String>,
}

/// Hash field prefix under which user metadata is stored.
pub const META_PREFIX: &str = "meta.";

impl Session {
    /// Rebuilds a session from its `session:<id>:metadata` hash. `None` if the hash
    /// lacks the fields every session has (missing or foreign data).
    pub fn from_hash<'a, I>(session_id: &str, fields: I) -> Option<Self>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut s = Session {
            session_id: session_id.to_owned(),
            tenant_id: String::new(),
            language: String::new(),
            status: SessionStatus::Active,
            started_at: String::new(),
            completed_at: None,
            segment_count: 0,
            metadata: BTreeMap::new(),
        };
        let mut has_tenant = false;
        for (k, v) in fields {
            match k {
                "tenant_id" => {
                    s.tenant_id = v.to_owned();
                    has_tenant = true;
                }
                "language" => s.language = v.to_owned(),
                "status" => {
                    s.status = if v == "completed" {
                        SessionStatus::Completed
                    } else {
                        SessionStatus::Active
                    }
                }
                "started_at" => s.started_at = v.to_owned(),
                "completed_at" if !v.is_empty() => s.completed_at = Some(v.to_owned()),
                "segment_count" => s.segment_count = v.parse().unwrap_or(0),
                _ => {
                    if let Some(name) = k.strip_prefix(META_PREFIX) {
                        s.metadata.insert(name.to_owned(), v.to_owned());
                    }
                }
            }
        }
        has_tenant.then_some(s)
    }

    /// The hash fields written when the session is created.
    pub fn to_hash(&self) -> Vec<(String, String)> {
        let mut out = vec![
            ("tenant_id".to_owned(), self.tenant_id.clone()),
            ("started_at".to_owned(), self.started_at.clone()),
            ("language".to_owned(), self.language.clone()),
            ("status".to_owned(), self.status.as_str().to_owned()),
            ("segment_count".to_owned(), self.segment_count.to_string()),
        ];
        if let Some(c) = &self.completed_at {
            out.push(("completed_at".to_owned(), c.clone()));
        }
        for (k, v) in &self.metadata {
            out.push((format!("{META_PREFIX}{k}"), v.clone()));
        }
        out
    }
}

/// What a caller asks for when creating a session.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub session_id: SessionId,
    pub tenant_id: TenantId,
    pub language: String,
    pub metadata: BTreeMap<String, String>,
}

/// A recognised word: its times (ms, inside its segment's span) and the recogniser's
/// confidence in it (0-1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Word {
    pub word: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub probability: f32,
}

/// A final segment to append. `text` is already trimmed and non-empty.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSegment {
    pub text: String,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    /// The words of recognised speech; empty for text appended by a client.
    pub words: Vec<Word>,
}

/// A stored final segment, as in `session:<id>:segments`
/// (`{seq,text,start_ms,end_ms[,words]}`). `words` is left out when empty, so segments
/// stored before words existed read back unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub seq: u64,
    pub text: String,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub words: Vec<Word>,
}

impl Segment {
    /// The JSON stored in the segments list. Field order is fixed: seq first.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("segment serializes")
    }

    /// The part of the JSON after `{"seq":<n>`, so a server-side script that computes
    /// `seq` can prepend it: `'{"seq":' .. seq .. tail`.
    pub fn json_tail(seg: &NewSegment) -> String {
        let full = Segment {
            seq: 0,
            text: seg.text.clone(),
            start_ms: seg.start_ms,
            end_ms: seg.end_ms,
            words: seg.words.clone(),
        }
        .to_json();
        full["{\"seq\":0".len()..].to_owned()
    }
}

/// A session's transcript: the chunks joined by one space, and its segments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    pub session_id: String,
    pub text: String,
    pub segments: Vec<Segment>,
}

impl Transcript {
    /// Joins chunks as the original did: `" ".join(chunks)`.
    pub fn join_chunks<S: AsRef<str>>(chunks: &[S]) -> String {
        let mut out = String::new();
        for (i, c) in chunks.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(c.as_ref());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_tail_recomposes_the_segment() {
        let seg = NewSegment {
            text: "he said \"hi\" ünï".into(),
            start_ms: Some(10),
            end_ms: None,
            words: Vec::new(),
        };
        let tail = Segment::json_tail(&seg);
        let json = format!("{{\"seq\":7{tail}");
        let back: Segment = serde_json::from_str(&json).unwrap();
        assert_eq!(back.seq, 7);
        assert_eq!(back.text, seg.text);
        assert_eq!(back.start_ms, Some(10));
        assert_eq!(back.end_ms, None);
    }

    #[test]
    fn words_round_trip_and_old_segments_read_without_them() {
        let seg = NewSegment {
            text: "hi there".into(),
            start_ms: Some(100),
            end_ms: Some(900),
            words: vec![
                Word {
                    word: "hi".into(),
                    start_ms: 100,
                    end_ms: 400,
                    probability: 0.875,
                },
                Word {
                    word: "there".into(),
                    start_ms: 450,
                    end_ms: 900,
                    probability: 0.5,
                },
            ],
        };
        let json = format!("{{\"seq\":3{}", Segment::json_tail(&seg));
        assert!(json.ends_with(
            r#""words":[{"word":"hi","start_ms":100,"end_ms":400,"probability":0.875},{"word":"there","start_ms":450,"end_ms":900,"probability":0.5}]}"#
        ), "{json}");
        let back: Segment = serde_json::from_str(&json).unwrap();
        assert_eq!(back.words, seg.words);
        // As stored before segments had words.
        let old: Segment =
            serde_json::from_str(r#"{"seq":0,"text":"a","start_ms":1,"end_ms":2}"#).unwrap();
        assert!(old.words.is_empty());
        assert_eq!(
            old.to_json(),
            r#"{"seq":0,"text":"a","start_ms":1,"end_ms":2}"#
        );
    }

    #[test]
    fn hash_round_trips_with_metadata() {
        let s = Session {
            session_id: "s1".into(),
            tenant_id: "acme".into(),
            language: "en-US".into(),
            status: SessionStatus::Completed,
            started_at: "2026-11-26T00:00:00.000000Z".into(),
            completed_at: Some("2026-11-26T00:01:00.000000Z".into()),
            segment_count: 3,
            metadata: [("caller".to_owned(), "bob".to_owned())].into(),
        };
        let h = s.to_hash();
        let back = Session::from_hash("s1", h.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        assert_eq!(back, Some(s));
        assert_eq!(Session::from_hash("x", [("language", "en")]), None);
    }

    #[test]
    fn chunks_join_with_one_space() {
        assert_eq!(Transcript::join_chunks(&["a b", "c"]), "a b c");
        assert_eq!(Transcript::join_chunks::<&str>(&[]), "");
    }
}
