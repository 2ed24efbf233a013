//! The `list_sessions` cursor both backends issue: the position (start-time score and
//! session id) of the last session of a page, hex-encoded so callers treat it as opaque.

use earshot_core::SessionId;

use crate::api::BadCursor;

/// Where the previous page ended: the next page holds sessions strictly older in
/// (score, id) order, so sessions created meanwhile (newer) never shift it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Position {
    pub score: u64,
    pub id: String,
}

impl Position {
    /// The opaque cursor string.
    pub fn encode(&self) -> String {
        hex::encode(format!("{}:{}", self.score, self.id))
    }

    /// Reads a cursor back; anything we did not issue is `BadCursor`.
    pub fn decode(raw: &str) -> Result<Self, BadCursor> {
        if raw.len() > 256 {
            return Err(BadCursor);
        }
        let bytes = hex::decode(raw).map_err(|_| BadCursor)?;
        let text = String::from_utf8(bytes).map_err(|_| BadCursor)?;
        let (score, id) = text.split_once(':').ok_or(BadCursor)?;
        if score.is_empty() || !score.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BadCursor);
        }
        let score = score.parse().map_err(|_| BadCursor)?;
        let id = SessionId::parse(id).map_err(|_| BadCursor)?;
        Ok(Self {
            score,
            id: id.as_str().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_garbage() {
        let p = Position {
            score: 1_700_000_000_123,
            id: "abc_-9".into(),
        };
        assert_eq!(Position::decode(&p.encode()), Ok(p));
        for bad in [
            "",
            "zz",
            "abc",
            "3a",
            &hex::encode("x:abc"),
            &hex::encode("1:a/b"),
        ] {
            assert_eq!(Position::decode(bad), Err(BadCursor), "{bad:?}");
        }
    }
}
