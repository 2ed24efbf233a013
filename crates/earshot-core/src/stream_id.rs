//! Redis stream entry ids (`<ms>-<seq>`), shared by both stores, SSE resume and workers.

use std::fmt;
use std::str::FromStr;

/// Why a stream id (from `Last-Event-ID`, `?since=` or a store) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid stream id {0:?}: expected <milliseconds>-<sequence> or <milliseconds>")]
pub struct StreamIdError(pub String);

/// A stream entry id. Ordered as Redis orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    /// `0-0`: before every entry.
    pub const ZERO: StreamId = StreamId { ms: 0, seq: 0 };
    /// The largest id.
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub const fn new(ms: u64, seq: u64) -> Self {
        Self { ms, seq }
    }

    /// The smallest id strictly greater than this one (for exclusive range starts).
    pub fn successor(self) -> Self {
        match self.seq.checked_add(1) {
            Some(seq) => Self { ms: self.ms, seq },
            None => Self {
                ms: self.ms.saturating_add(1),
                seq: 0,
            },
        }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl FromStr for StreamId {
    type Err = StreamIdError;

    /// Accepts `<ms>-<seq>` or a bare `<ms>` (meaning `<ms>-0`), as Redis does.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || StreamIdError(s.chars().take(64).collect());
        let digits = |p: &str| -> Result<u64, StreamIdError> {
            if p.is_empty() || p.len() > 20 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err());
            }
            p.parse().map_err(|_| err())
        };
        match s.split_once('-') {
            Some((ms, seq)) => Ok(Self::new(digits(ms)?, digits(seq)?)),
            None => Ok(Self::new(digits(s)?, 0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_orders() {
        let a: StreamId = "1700000000000-5".parse().unwrap();
        assert_eq!(a, StreamId::new(1_700_000_000_000, 5));
        assert_eq!("17".parse::<StreamId>().unwrap(), StreamId::new(17, 0));
        assert!(StreamId::new(1, 9) < StreamId::new(2, 0));
        for bad in [
            "",
            "-",
            "1-",
            "-1",
            "a-b",
            "1-2-3",
            "+1-2",
            " 1-2",
            "99999999999999999999999-0",
        ] {
            assert!(bad.parse::<StreamId>().is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn display_round_trips(ms in any::<u64>(), seq in any::<u64>()) {
            let id = StreamId::new(ms, seq);
            prop_assert_eq!(id.to_string().parse::<StreamId>().unwrap(), id);
        }

        #[test]
        fn never_panics_on_garbage(s in ".{0,40}") {
            let _ = s.parse::<StreamId>();
        }
    }
}
