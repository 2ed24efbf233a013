//! Consumer-group calls: create, read new and own pending entries, ack, autoclaim,
//! dead-letter, and `XINFO GROUPS`.

use std::time::Duration;

use earshot_core::StreamId;
use redis::Value;

use super::streams::block_ms;
use super::{reply, scripts, RedisStore};
use crate::api::*;
use crate::common::{dead_letter_fields, dead_letter_stream};

/// The idle time a released entry gets: longer than any sensible `--claim-idle`, and
/// still a time after 1970 (Redis replaces an `IDLE` before the epoch with "now").
const RELEASED_IDLE: Duration = Duration::from_secs(365 * 24 * 3600);

impl RedisStore {
    pub(super) async fn create_group_impl(
        &self,
        stream: &str,
        group: &str,
        start: GroupStart,
    ) -> StoreResult<bool> {
        let stream = stream.to_owned();
        let group = group.to_owned();
        let start = match start {
            GroupStart::New => "$",
            GroupStart::Beginning => "0",
        };
        self.conns
            .run(|mut c| async move {
                let r = redis::cmd("XGROUP")
                    .arg("CREATE")
                    .arg(stream)
                    .arg(group)
                    .arg(start)
                    .arg("MKSTREAM")
                    .query_async::<Value>(&mut c)
                    .await;
                match r {
                    Ok(_) => Ok(true),
                    Err(e) if e.code() == Some("BUSYGROUP") => Ok(false),
                    Err(e) => Err(e),
                }
            })
            .await
    }

    pub(super) async fn read_group_impl(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> StoreResult<Vec<StreamEntry>> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(group)
            .arg(consumer)
            .arg("COUNT")
            .arg(count.max(1));
        if !block.is_zero() {
            cmd.arg("BLOCK").arg(block_ms(block));
        }
        cmd.arg("STREAMS").arg(stream).arg(">");
        let r = if block.is_zero() {
            self.conns
                .run_group(Some(group), |mut c| async move {
                    cmd.query_async::<Value>(&mut c).await
                })
                .await?
        } else {
            self.conns
                .run_blocking(Some(group), block, |mut c| async move {
                    cmd.query_async::<Value>(&mut c).await
                })
                .await?
        };
        reply::read_reply(r)
    }

    pub(super) async fn read_own_pending_impl(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        after: StreamId,
        count: usize,
    ) -> StoreResult<Vec<ClaimedEntry>> {
        let stream = stream.to_owned();
        let args = [
            group.to_owned(),
            consumer.to_owned(),
            count.max(1).to_string(),
            after.to_string(),
        ];
        let r = self
            .conns
            .run_group(Some(group), |mut c| async move {
                let mut inv = scripts::OWN_PENDING.prepare_invoke();
                inv.key(&stream);
                for a in &args {
                    inv.arg(a);
                }
                inv.invoke_async::<Value>(&mut c).await
            })
            .await?;
        let mut parts = reply::array(r)?.into_iter();
        let (Some(entries), Some(counts)) = (parts.next(), parts.next()) else {
            return Err(StoreError::Protocol("short own-pending reply".into()));
        };
        let counts = reply::array(counts)?
            .into_iter()
            .map(reply::int)
            .collect::<StoreResult<Vec<_>>>()?;
        let mut out = Vec::new();
        for (i, item) in reply::array(entries)?.into_iter().enumerate() {
            let entry = reply::entry_or_trimmed(item)?;
            let delivery_count = counts.get(i).copied().unwrap_or(0).max(0) as u64;
            out.push(ClaimedEntry {
                entry,
                delivery_count,
            });
        }
        Ok(out)
    }

    pub(super) async fn release_impl(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        entries: &[(StreamId, u64)],
    ) -> StoreResult<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let stream = stream.to_owned();
        let mut args = vec![
            group.to_owned(),
            consumer.to_owned(),
            RELEASED_IDLE.as_millis().to_string(),
        ];
        for (id, count) in entries {
            args.push(id.to_string());
            args.push(count.to_string());
        }
        self.conns
            .run_group(Some(group), |mut c| async move {
                let mut inv = scripts::RELEASE.prepare_invoke();
                inv.key(&stream);
                for a in &args {
                    inv.arg(a);
                }
                inv.invoke_async::<Value>(&mut c).await
            })
            .await?;
        Ok(())
    }

    pub(super) async fn ack_impl(
        &self,
        stream: &str,
        group: &str,
        ids: &[StreamId],
    ) -> StoreResult<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut cmd = redis::cmd("XACK");
        cmd.arg(stream).arg(group);
        for id in ids {
            cmd.arg(id.to_string());
        }
        let r = self.conns.query::<Value>(&cmd).await?;
        Ok(reply::int(r)?.max(0) as u64)
    }

    pub(super) async fn autoclaim_impl(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        start: StreamId,
        count: usize,
    ) -> StoreResult<AutoClaim> {
        let stream = stream.to_owned();
        let args = [
            group.to_owned(),
            consumer.to_owned(),
            (min_idle.as_millis() as u64).to_string(),
            start.to_string(),
            count.max(1).to_string(),
        ];
        let r = self
            .conns
            .run_group(Some(group), |mut c| async move {
                let mut inv = scripts::AUTOCLAIM.prepare_invoke();
                inv.key(&stream);
                for a in &args {
                    inv.arg(a);
                }
                inv.invoke_async::<Value>(&mut c).await
            })
            .await?;
        let mut parts = reply::array(r)?.into_iter();
        let (Some(next), Some(claimed), deleted, counts) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(StoreError::Protocol("short XAUTOCLAIM reply".into()));
        };
        let counts = match counts {
            Some(v) => reply::array(v)?
                .into_iter()
                .map(reply::int)
                .collect::<StoreResult<Vec<_>>>()?,
            None => Vec::new(),
        };
        let mut out = AutoClaim {
            next: reply::stream_id(next)?,
            ..AutoClaim::default()
        };
        for (i, item) in reply::array(claimed)?.into_iter().enumerate() {
            if let Some(entry) = reply::entry(item)? {
                let delivery_count = counts.get(i).copied().unwrap_or(0).max(0) as u64;
                out.claimed.push(ClaimedEntry {
                    entry,
                    delivery_count,
                });
            }
        }
        if let Some(deleted) = deleted {
            out.deleted = reply::array(deleted)?
                .into_iter()
                .map(reply::stream_id)
                .collect::<StoreResult<_>>()?;
        }
        Ok(out)
    }

    /// `MULTI; XADD <stream>:dead ...; XACK; EXEC`.
    pub(super) async fn dead_letter_impl(
        &self,
        stream: &str,
        group: &str,
        entry: &StreamEntry,
        reason: &str,
        delivery_count: u64,
    ) -> StoreResult<StreamId> {
        let fields = dead_letter_fields(group, entry, reason, delivery_count);
        let mut p = redis::pipe();
        p.atomic();
        p.cmd("XADD")
            .arg(dead_letter_stream(stream))
            .arg("MAXLEN")
            .arg("~")
            .arg(self.maxlen())
            .arg("*");
        for (k, v) in &fields {
            p.arg(k).arg(v);
        }
        p.cmd("XACK")
            .arg(stream)
            .arg(group)
            .arg(entry.id.to_string())
            .ignore();
        let r = self
            .conns
            .run(|mut c| async move { p.query_async::<Vec<Value>>(&mut c).await })
            .await?;
        match r.into_iter().next() {
            Some(id) => reply::stream_id(id),
            None => Err(StoreError::Protocol("empty MULTI reply".into())),
        }
    }

    pub(super) async fn groups_impl(&self, stream: &str) -> StoreResult<Vec<GroupInfo>> {
        let stream = stream.to_owned();
        let r = self
            .conns
            .run(|mut c| async move {
                match redis::cmd("XINFO")
                    .arg("GROUPS")
                    .arg(stream)
                    .query_async::<Value>(&mut c)
                    .await
                {
                    Err(e) if e.to_string().contains("no such key") => Ok(Value::Array(vec![])),
                    other => other,
                }
            })
            .await?;
        let mut out = Vec::new();
        for g in reply::array(r)? {
            let fields = reply::pairs(g)?;
            let get = |name: &str| {
                fields
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.as_str())
                    .unwrap_or("")
            };
            let num = |name: &str| get(name).parse::<u64>().ok();
            out.push(GroupInfo {
                name: get("name").to_owned(),
                consumers: num("consumers").unwrap_or(0),
                pending: num("pending").unwrap_or(0),
                last_delivered: get("last-delivered-id").parse().map_err(|_| {
                    StoreError::Protocol("bad last-delivered-id in XINFO GROUPS".into())
                })?,
                lag: num("lag"),
            });
        }
        Ok(out)
    }
}
