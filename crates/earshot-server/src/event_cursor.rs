//! The SSE resume id (`id:` of each event, sent back as `Last-Event-ID` or `?since=`):
//! the last stream id seen on every event stream, comma-separated in partition order.
//!
//! With one event stream (standalone Redis, the embedded store) that is just the stream
//! entry id, `1700000000000-0`, exactly as before partitions existed. On a cluster with
//! N partitions it is N ids, `1700000000000-0,0-0,1700000000001-3,…`: each event's id
//! says where every partition stood when it was sent, so resuming from it re-reads
//! nothing already sent and skips nothing on any partition. A single id given on a
//! cluster means "after this id on every partition" (a point in time).

use std::fmt;

use earshot_core::StreamId;

/// Position in every event stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventCursor(Vec<StreamId>);

/// A resume id that is not one id nor one per partition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a stream id (<ms>-<seq>) or {partitions} comma-separated stream ids")]
pub struct BadCursor {
    pub partitions: usize,
}

impl EventCursor {
    /// The cursor from per-partition positions.
    pub fn new(ids: Vec<StreamId>) -> Self {
        Self(ids)
    }

    /// Parses a resume id for `partitions` event streams.
    pub fn parse(raw: &str, partitions: usize) -> Result<Self, BadCursor> {
        let bad = BadCursor { partitions };
        let ids = raw
            .trim()
            .split(',')
            .map(|p| p.trim().parse::<StreamId>().map_err(|_| bad.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        match ids.len() {
            n if n == partitions => Ok(Self(ids)),
            1 => Ok(Self(vec![ids[0]; partitions])),
            _ => Err(bad),
        }
    }

    /// Where partition `p` stands.
    pub fn get(&self, p: usize) -> StreamId {
        self.0.get(p).copied().unwrap_or_default()
    }

    /// Moves partition `p` to `id` if that is further; false if it was already there.
    pub fn advance(&mut self, p: usize, id: StreamId) -> bool {
        match self.0.get_mut(p) {
            Some(at) if id > *at => {
                *at = id;
                true
            }
            _ => false,
        }
    }

    /// Number of partitions.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True without partitions (never for a store's cursor).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for EventCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, id) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{id}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_stream_is_the_plain_entry_id() {
        let c = EventCursor::parse("1700-3", 1).unwrap();
        assert_eq!(c.to_string(), "1700-3");
        assert_eq!(c.get(0), StreamId::new(1700, 3));
    }

    #[test]
    fn partitions_round_trip_and_a_single_id_applies_to_all() {
        let mut c = EventCursor::parse("5-0", 3).unwrap();
        assert_eq!(c.to_string(), "5-0,5-0,5-0");
        assert!(c.advance(1, StreamId::new(9, 1)));
        assert!(!c.advance(1, StreamId::new(9, 0)), "never moves back");
        assert_eq!(c.to_string(), "5-0,9-1,5-0");
        assert_eq!(EventCursor::parse(&c.to_string(), 3).unwrap(), c);
        assert!(EventCursor::parse("1-0,2-0", 3).is_err());
        assert!(EventCursor::parse("soon", 1).is_err());
    }
}
