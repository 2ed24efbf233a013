//! An in-memory Redis stream: ordered entries, `MAXLEN`/`MINID` trimming and consumer
//! groups with pending-entries lists, following Redis 7's observable rules (including
//! how `XINFO GROUPS` computes `lag` and how `XAUTOCLAIM` counts trimmed entries).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use earshot_core::StreamId;

use crate::api::{AutoClaim, ClaimedEntry, GroupInfo, GroupStart, StreamEntry};

/// An entry's fields, shared between the stream and the readers it is handed to.
pub(super) type Fields = Arc<[(String, String)]>;

/// One pending (delivered, unacknowledged) entry of a group.
#[derive(Debug, Clone)]
struct Pending {
    consumer: String,
    delivery_count: u64,
    /// `None` once released: idle longer than any `min_idle`.
    delivered_at: Option<Instant>,
}

/// A consumer group: its read position and its pending-entries list.
#[derive(Debug, Default)]
struct Group {
    last_delivered: StreamId,
    /// Redis' `entries-read` counter; `None` when it is not known.
    entries_read: Option<u64>,
    pel: BTreeMap<StreamId, Pending>,
    consumers: BTreeMap<String, ()>,
}

/// A stream key.
#[derive(Debug, Default)]
pub(super) struct Stream {
    entries: BTreeMap<StreamId, Fields>,
    last_id: StreamId,
    entries_added: u64,
    groups: BTreeMap<String, Group>,
}

impl Stream {
    /// Appends an entry with an id above every id so far (even if the clock stepped
    /// back), then trims to at most `maxlen` entries.
    pub fn add(&mut self, fields: Fields, now_ms: u64, maxlen: u64) -> StreamId {
        let id = if now_ms > self.last_id.ms {
            StreamId::new(now_ms, 0)
        } else {
            self.last_id.successor()
        };
        self.entries.insert(id, fields);
        self.last_id = id;
        self.entries_added += 1;
        while self.entries.len() as u64 > maxlen {
            self.entries.pop_first();
        }
        id
    }

    /// Removes entries with ids below `min_id`; returns how many.
    pub fn trim_before(&mut self, min_id: StreamId) -> u64 {
        let keep = self.entries.split_off(&min_id);
        let removed = self.entries.len() as u64;
        self.entries = keep;
        removed
    }

    pub fn len(&self) -> u64 {
        self.entries.len() as u64
    }

    /// The newest entry's id, `0-0` when empty.
    pub fn last_entry_id(&self) -> StreamId {
        self.entries
            .last_key_value()
            .map(|(id, _)| *id)
            .unwrap_or_default()
    }

    /// Up to `count` entries with ids strictly greater than `after`.
    pub fn range_after(&self, after: StreamId, count: usize) -> Vec<StreamEntry> {
        if after == StreamId::MAX {
            return Vec::new();
        }
        self.entries
            .range(after.successor()..)
            .take(count)
            .map(|(id, f)| entry(*id, f))
            .collect()
    }

    /// Rough payload size, for `stats()`.
    pub fn approx_bytes(&self) -> u64 {
        self.entries
            .values()
            .map(|f| {
                32 + f
                    .iter()
                    .map(|(k, v)| (k.len() + v.len() + 16) as u64)
                    .sum::<u64>()
            })
            .sum()
    }

    // ---- groups -----------------------------------------------------------------

    /// `XGROUP CREATE`; false if the group exists.
    pub fn create_group(&mut self, name: &str, start: GroupStart) -> bool {
        if self.groups.contains_key(name) {
            return false;
        }
        let last_delivered = match start {
            GroupStart::New => self.last_id,
            GroupStart::Beginning => StreamId::ZERO,
        };
        self.groups.insert(
            name.to_owned(),
            Group {
                last_delivered,
                ..Group::default()
            },
        );
        true
    }

    pub fn has_group(&self, name: &str) -> bool {
        self.groups.contains_key(name)
    }

    /// `XREADGROUP ... >`: entries after the group's last-delivered id, now pending for
    /// `consumer`. `None` if there is no such group.
    pub fn read_group(
        &mut self,
        group: &str,
        consumer: &str,
        count: usize,
        now: Instant,
    ) -> Option<Vec<StreamEntry>> {
        let estimate = self.estimator();
        let g = self.groups.get_mut(group)?;
        g.consumers.entry(consumer.to_owned()).or_default();
        let mut out = Vec::new();
        for (id, f) in self
            .entries
            .range(g.last_delivered.successor()..)
            .take(count)
        {
            g.entries_read = match g.entries_read {
                Some(n) => Some(n + 1),
                None => estimate.distance(*id),
            };
            g.last_delivered = *id;
            g.pel.insert(
                *id,
                Pending {
                    consumer: consumer.to_owned(),
                    delivery_count: 1,
                    delivered_at: Some(now),
                },
            );
            out.push(entry(*id, f));
        }
        Some(out)
    }

    /// `XREADGROUP ... <after>`: the consumer's own pending entries above `after`. Like
    /// Redis, re-reading counts as a delivery, and a trimmed entry comes back with no
    /// fields (and no new count).
    pub fn read_own_pending(
        &mut self,
        group: &str,
        consumer: &str,
        after: StreamId,
        count: usize,
        now: Instant,
    ) -> Option<Vec<ClaimedEntry>> {
        let g = self.groups.get_mut(group)?;
        g.consumers.entry(consumer.to_owned()).or_default();
        let mut out = Vec::new();
        if after == StreamId::MAX {
            return Some(out);
        }
        for (id, p) in g
            .pel
            .range_mut(after.successor()..)
            .filter(|(_, p)| p.consumer == consumer)
            .take(count)
        {
            let entry = match self.entries.get(id) {
                Some(f) => {
                    p.delivery_count += 1;
                    p.delivered_at = Some(now);
                    entry(*id, f)
                }
                None => StreamEntry {
                    id: *id,
                    fields: Vec::new(),
                },
            };
            out.push(ClaimedEntry {
                entry,
                delivery_count: p.delivery_count,
            });
        }
        Some(out)
    }

    /// Gives the consumer's pending `entries` back: idle for any reclaim, delivery count
    /// set to the given one. Ids pending for someone else, or not at all, are skipped.
    pub fn release(&mut self, group: &str, consumer: &str, entries: &[(StreamId, u64)]) {
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        for (id, count) in entries {
            if let Some(p) = g.pel.get_mut(id).filter(|p| p.consumer == consumer) {
                p.delivery_count = *count;
                p.delivered_at = None;
            }
        }
    }

    /// `XACK`; ids not pending are ignored. A missing group acknowledges nothing.
    pub fn ack(&mut self, group: &str, ids: &[StreamId]) -> u64 {
        let Some(g) = self.groups.get_mut(group) else {
            return 0;
        };
        ids.iter().filter(|id| g.pel.remove(id).is_some()).count() as u64
    }

    /// `XAUTOCLAIM` with Redis 7 semantics: scan the PEL from `start` for at most
    /// `count * 10` ids; trimmed entries are dropped from the PEL and reported (they
    /// count against `count`), entries idle at least `min_idle` change owner and get
    /// their delivery count incremented. `None` if there is no such group.
    pub fn autoclaim(
        &mut self,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        start: StreamId,
        count: usize,
        now: Instant,
    ) -> Option<AutoClaim> {
        let g = self.groups.get_mut(group)?;
        let mut out = AutoClaim::default();
        let mut budget = count;
        let mut attempts = count.saturating_mul(10);
        let ids: Vec<StreamId> = g.pel.range(start..).map(|(id, _)| *id).collect();
        let mut iter = ids.into_iter().peekable();
        while attempts > 0 && budget > 0 {
            let Some(id) = iter.next() else { break };
            attempts -= 1;
            let Some(fields) = self.entries.get(&id) else {
                g.pel.remove(&id);
                out.deleted.push(id);
                budget -= 1;
                continue;
            };
            let Some(p) = g.pel.get_mut(&id) else {
                continue;
            };
            if p.delivered_at
                .is_some_and(|at| now.saturating_duration_since(at) < min_idle)
            {
                continue;
            }
            p.consumer = consumer.to_owned();
            p.delivery_count += 1;
            p.delivered_at = Some(now);
            let delivery_count = p.delivery_count;
            g.consumers.entry(consumer.to_owned()).or_default();
            out.claimed.push(ClaimedEntry {
                entry: entry(id, fields),
                delivery_count,
            });
            budget -= 1;
        }
        out.next = iter.peek().copied().unwrap_or(StreamId::ZERO);
        Some(out)
    }

    /// `XINFO GROUPS`.
    pub fn groups(&self) -> Vec<GroupInfo> {
        let estimate = self.estimator();
        self.groups
            .iter()
            .map(|(name, g)| {
                let lag = if self.entries_added == 0 {
                    Some(0)
                } else {
                    g.entries_read
                        .or_else(|| estimate.distance(g.last_delivered))
                        .map(|read| self.entries_added.saturating_sub(read))
                };
                GroupInfo {
                    name: name.clone(),
                    consumers: g.consumers.len() as u64,
                    pending: g.pel.len() as u64,
                    last_delivered: g.last_delivered,
                    lag,
                }
            })
            .collect()
    }

    fn estimator(&self) -> Estimator {
        Estimator {
            entries_added: self.entries_added,
            len: self.entries.len() as u64,
            first: self.entries.first_key_value().map(|(id, _)| *id),
            last_id: self.last_id,
        }
    }
}

/// Redis' `streamEstimateDistanceFromFirstEverEntry`: how many entries were ever added
/// up to and including `id`, when that can be known (no `XDEL` here, so only trimming
/// makes it unknown).
struct Estimator {
    entries_added: u64,
    len: u64,
    first: Option<StreamId>,
    last_id: StreamId,
}

impl Estimator {
    fn distance(&self, id: StreamId) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.len == 0 && id <= self.last_id {
            return Some(self.entries_added);
        }
        if id == self.last_id {
            return Some(self.entries_added);
        }
        if id > self.last_id {
            return None;
        }
        let first = self.first?;
        if id < first {
            Some(self.entries_added - self.len)
        } else if id == first {
            Some(self.entries_added - self.len + 1)
        } else {
            None
        }
    }
}

fn entry(id: StreamId, fields: &Fields) -> StreamEntry {
    StreamEntry {
        id,
        fields: fields.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: &str) -> Fields {
        Arc::from(vec![("a".to_owned(), v.to_owned())])
    }

    #[test]
    fn ids_stay_monotonic_when_the_clock_steps_back() {
        let mut s = Stream::default();
        let a = s.add(f("1"), 1000, 100);
        let b = s.add(f("2"), 900, 100);
        let c = s.add(f("3"), 1000, 100);
        let d = s.add(f("4"), 1001, 100);
        assert_eq!(a, StreamId::new(1000, 0));
        assert_eq!(b, StreamId::new(1000, 1));
        assert_eq!(c, StreamId::new(1000, 2));
        assert_eq!(d, StreamId::new(1001, 0));
    }

    #[test]
    fn lag_follows_redis_after_trimming() {
        let mut s = Stream::default();
        for i in 1..=3 {
            s.add(f("x"), i, 100);
        }
        s.create_group("g", GroupStart::Beginning);
        s.create_group("g2", GroupStart::New);
        assert_eq!(s.groups()[0].lag, Some(3));
        s.read_group("g", "c", 2, Instant::now());
        assert_eq!(s.groups()[0].lag, Some(1));
        s.trim_before(StreamId::MAX);
        s.add(f("x"), 10, 100);
        let gs = s.groups();
        assert_eq!(gs[0].lag, Some(2));
        assert_eq!(gs[1].lag, Some(1));
    }
}
