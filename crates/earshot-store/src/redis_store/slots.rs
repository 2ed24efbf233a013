//! Per-tenant live-stream slots on Redis, so a tenant's stream limit holds across every
//! node of a deployment: `tenant:<t>:streams` is a sorted set of slot tokens scored by
//! when each expires. Each call is one script that first drops expired slots, so the
//! slots of a node that died without giving them back stop counting after their TTL,
//! like its stream locks. Expiry is judged by the Redis server's clock (`TIME`), never a
//! node's, so nodes with skewed clocks agree.

use std::sync::LazyLock;
use std::time::Duration;

use redis::{Script, Value};

use super::{reply, RedisStore};
use crate::api::{LockToken, StoreResult};
use crate::common::{new_lock_token, ttl_ms};
use crate::metrics::timed;

/// Lua: `now` in ms by the server's clock, and expired slots dropped.
const PRUNE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
"#;

/// Lua: the key lives at least as long as the slot just written (`ttl`).
const KEEP_KEY: &str = r#"
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
"#;

/// KEYS: slots. ARGV: max (0 = none), token, ttl_ms. 1 if taken, 0 if all are held.
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"{PRUNE}
local max = tonumber(ARGV[1])
if max > 0 and redis.call('ZCARD', KEYS[1]) >= max then return 0 end
local ttl = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[2])
{KEEP_KEY}
return 1
"#
    ))
});

/// KEYS: slots. ARGV: token, ttl_ms. 1 if extended, 0 if the slot had expired.
static EXTEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"{PRUNE}
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], 'XX', now + ttl, ARGV[1])
{KEEP_KEY}
return 1
"#
    ))
});

/// KEYS: slots. Unexpired slots held.
static HELD: LazyLock<Script> =
    LazyLock::new(|| Script::new(&format!("{PRUNE}\nreturn redis.call('ZCARD', KEYS[1])\n")));

impl RedisStore {
    pub(super) async fn slot_acquire(
        &self,
        tenant: &str,
        max: u64,
        ttl: Duration,
    ) -> StoreResult<Option<LockToken>> {
        let key = self.keys.tenant_streams(tenant);
        let token = new_lock_token();
        let value = token.0.clone();
        timed("acquire_stream_slot", async {
            let r = self
                .conns
                .run(|mut c| async move {
                    ACQUIRE
                        .key(key)
                        .arg(max)
                        .arg(value)
                        .arg(ttl_ms(ttl))
                        .invoke_async::<Value>(&mut c)
                        .await
                })
                .await?;
            Ok((reply::int(r)? == 1).then_some(token))
        })
        .await
    }

    pub(super) async fn slot_extend(
        &self,
        tenant: &str,
        token: &LockToken,
        ttl: Duration,
    ) -> StoreResult<bool> {
        let key = self.keys.tenant_streams(tenant);
        let value = token.0.clone();
        timed("extend_stream_slot", async {
            let r = self
                .conns
                .run(|mut c| async move {
                    EXTEND
                        .key(key)
                        .arg(value)
                        .arg(ttl_ms(ttl))
                        .invoke_async::<Value>(&mut c)
                        .await
                })
                .await?;
            Ok(reply::int(r)? == 1)
        })
        .await
    }

    pub(super) async fn slot_release(&self, tenant: &str, token: &LockToken) -> StoreResult<bool> {
        let key = self.keys.tenant_streams(tenant);
        let value = token.0.clone();
        timed("release_stream_slot", async {
            let r = self
                .conns
                .query::<Value>(redis::cmd("ZREM").arg(key).arg(value))
                .await?;
            Ok(reply::int(r)? == 1)
        })
        .await
    }

    pub(super) async fn slots_held(&self, tenant: &str) -> StoreResult<u64> {
        let key = self.keys.tenant_streams(tenant);
        timed("stream_slots_held", async {
            let r = self
                .conns
                .run(|mut c| async move { HELD.key(key).invoke_async::<Value>(&mut c).await })
                .await?;
            Ok(reply::int(r)?.max(0) as u64)
        })
        .await
    }

    pub(super) async fn lock_pttl(&self, key: String) -> StoreResult<Option<Duration>> {
        timed("lock_remaining", async {
            let r = self
                .conns
                .query::<Value>(redis::cmd("PTTL").arg(key))
                .await?;
            let ms = reply::int(r)?;
            // -2: no key; -1: no TTL, which a lock never lacks.
            Ok((ms >= 0).then(|| Duration::from_millis(ms as u64)))
        })
        .await
    }
}
