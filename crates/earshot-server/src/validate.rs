//! Validation of untrusted request values, turning them into domain types or a clear
//! 4xx. Kept apart from the handlers so it can be tested (and fuzzed) on its own.

use std::collections::BTreeMap;

use earshot_core::{NewSegment, SessionId};
use serde::Deserialize;

use crate::error::ApiError;

/// Most user metadata entries per session.
pub const MAX_METADATA_ENTRIES: usize = 64;
/// Longest metadata key, in bytes.
pub const MAX_METADATA_KEY: usize = 128;
/// Longest metadata value, in bytes.
pub const MAX_METADATA_VALUE: usize = 4096;
/// Longest segment text after trimming, in bytes.
pub const MAX_SEGMENT_TEXT: usize = 65_536;

/// A session id from a URL path. An id that cannot be valid cannot exist: 404.
pub fn path_session_id(raw: &str) -> Result<SessionId, ApiError> {
    SessionId::parse(raw).map_err(|_| ApiError::session_not_found(raw))
}

/// `POST /v1/sessions` body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSessionBody {
    pub session_id: Option<String>,
    pub language: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// A validated create request.
#[derive(Debug)]
pub struct CreateSession {
    pub session_id: SessionId,
    pub language: String,
    pub metadata: BTreeMap<String, String>,
}

/// Checks a BCP-47-ish language tag: 2-35 chars of letters, digits and '-'.
pub fn language(raw: Option<&str>) -> Result<String, ApiError> {
    let lang = raw.unwrap_or("en-US").trim();
    let ok = (2..=35).contains(&lang.len())
        && lang.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && lang.as_bytes()[0].is_ascii_alphabetic();
    if ok {
        Ok(lang.to_owned())
    } else {
        Err(ApiError::invalid(
            "language must be a language tag such as \"en\" or \"en-US\"",
        ))
    }
}

impl CreateSessionBody {
    /// Validates ids, language and metadata bounds.
    pub fn validate(self) -> Result<CreateSession, ApiError> {
        let session_id = match self.session_id.as_deref() {
            None => SessionId::random(),
            Some(raw) => SessionId::parse(raw)
                .map_err(|e| ApiError::invalid(format!("{e} (pattern [A-Za-z0-9_-]{{1,64}})")))?,
        };
        if self.metadata.len() > MAX_METADATA_ENTRIES {
            return Err(ApiError::invalid(format!(
                "metadata may have at most {MAX_METADATA_ENTRIES} entries"
            )));
        }
        for (k, v) in &self.metadata {
            if k.is_empty() || k.len() > MAX_METADATA_KEY || k.chars().any(char::is_control) {
                return Err(ApiError::invalid(format!(
                    "metadata keys must be 1 to {MAX_METADATA_KEY} bytes without control characters"
                )));
            }
            if v.len() > MAX_METADATA_VALUE {
                return Err(ApiError::invalid(format!(
                    "metadata values must be at most {MAX_METADATA_VALUE} bytes"
                )));
            }
        }
        Ok(CreateSession {
            session_id,
            language: language(self.language.as_deref())?,
            metadata: self.metadata,
        })
    }
}

/// `POST /v1/sessions/{id}/segments` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentBody {
    pub text: String,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
}

impl SegmentBody {
    /// Trims the text and checks its size and the times.
    pub fn validate(self) -> Result<NewSegment, ApiError> {
        let text = self.text.trim();
        if text.is_empty() {
            return Err(ApiError::invalid("text must not be empty"));
        }
        if text.len() > MAX_SEGMENT_TEXT {
            return Err(ApiError::invalid(format!(
                "text must be at most {MAX_SEGMENT_TEXT} bytes"
            )));
        }
        for (name, v) in [("start_ms", self.start_ms), ("end_ms", self.end_ms)] {
            if v.is_some_and(|v| v < 0) {
                return Err(ApiError::invalid(format!("{name} must not be negative")));
            }
        }
        if let (Some(a), Some(b)) = (self.start_ms, self.end_ms) {
            if b < a {
                return Err(ApiError::invalid("end_ms must not be before start_ms"));
            }
        }
        Ok(NewSegment {
            text: text.to_owned(),
            start_ms: self.start_ms,
            end_ms: self.end_ms,
            words: Vec::new(),
        })
    }
}

/// `?limit=&cursor=` of `GET /v1/sessions`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

impl ListQuery {
    /// The page size, 1..=200 (default 50); anything else is a malformed query (400).
    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.limit.as_deref() {
            None => Ok(50),
            Some(raw) => match raw.parse::<usize>() {
                Ok(n) if (1..=200).contains(&n) => Ok(n),
                _ => Err(ApiError::bad_request(
                    "invalid_query",
                    "limit must be an integer from 1 to 200",
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_rules() {
        let ok = SegmentBody {
            text: "  hi  ".into(),
            start_ms: Some(1),
            end_ms: Some(2),
        };
        assert_eq!(ok.validate().unwrap().text, "hi");
        for bad in [
            SegmentBody {
                text: "   ".into(),
                start_ms: None,
                end_ms: None,
            },
            SegmentBody {
                text: "x".repeat(65_537),
                start_ms: None,
                end_ms: None,
            },
            SegmentBody {
                text: "x".into(),
                start_ms: Some(-1),
                end_ms: None,
            },
            SegmentBody {
                text: "x".into(),
                start_ms: Some(5),
                end_ms: Some(4),
            },
        ] {
            assert_eq!(bad.validate().unwrap_err().status.as_u16(), 422);
        }
        let exact = SegmentBody {
            text: "x".repeat(65_536),
            start_ms: None,
            end_ms: None,
        };
        assert!(exact.validate().is_ok());
    }

    #[test]
    fn create_rules() {
        let b = CreateSessionBody {
            session_id: Some("../x".into()),
            ..Default::default()
        };
        assert_eq!(b.validate().unwrap_err().status.as_u16(), 422);
        let b = CreateSessionBody::default().validate().unwrap();
        assert_eq!(b.language, "en-US");
        assert_eq!(b.session_id.as_str().len(), 32);
        assert!(language(Some("en us")).is_err());
        assert!(language(Some("")).is_err());
    }

    #[test]
    fn list_limits() {
        let q = |l: &str| {
            ListQuery {
                limit: Some(l.into()),
                cursor: None,
            }
            .limit()
        };
        assert_eq!(q("200").unwrap(), 200);
        for bad in ["0", "201", "-1", "ten", ""] {
            assert_eq!(q(bad).unwrap_err().status.as_u16(), 400);
        }
    }
}
