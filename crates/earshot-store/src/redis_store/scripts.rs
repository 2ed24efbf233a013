//! The server-side Lua scripts: each is one atomic round trip for a write whose parts
//! belong together (api.md §2), especially where a value computed inside the write (the
//! next `seq`, the full transcript) must appear in the published event. Run with
//! `EVALSHA`, falling back to `EVAL` when the server does not have them cached yet.
//!
//! Event fields computed in Rust (`Event::to_fields`) are passed as trailing `ARGV`
//! pairs, so the field names and order are defined in one place.

use std::sync::LazyLock;

use redis::Script;

/// Creates a session if its id is free.
///
/// KEYS: metadata, transcript, segments, cache, tenant index, event stream.
/// ARGV: ttl_ms, maxlen, score, session_id, n (hash items), n hash items, event pairs.
/// Returns 1 if created, 0 if the id exists.
pub(super) static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
-- Leftovers of an earlier session with this id (expired metadata, old cache).
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
local n = tonumber(ARGV[5])
local h = {}
for i = 6, 5 + n do h[#h + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(h))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[5], ARGV[3], ARGV[4])
redis.call('PEXPIRE', KEYS[5], ARGV[1])
local ev = {}
for i = 6 + n, #ARGV do ev[#ev + 1] = ARGV[i] end
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[2], '*', unpack(ev))
return 1
"#,
    )
});

/// Appends one final segment: gap-free seq from `HINCRBY segment_count`, chunk and
/// segment JSON, TTL refresh of the session keys and the tenant index, and the
/// `transcript_segment` event carrying that seq.
///
/// KEYS: metadata, transcript, segments, tenant index, event stream.
/// ARGV: tenant, text, json tail, start_ms, end_ms, ttl_ms, maxlen, timestamp, session_id.
/// Returns {0} not found (or another tenant's), {1} completed, {2, seq, event id}.
pub(super) static APPEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local m = redis.call('HMGET', KEYS[1], 'tenant_id', 'status')
if not m[1] or m[1] ~= ARGV[1] then return {0} end
if m[2] == 'completed' then return {1} end
local seq = redis.call('HINCRBY', KEYS[1], 'segment_count', 1) - 1
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('RPUSH', KEYS[3], '{"seq":' .. seq .. ARGV[3])
for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[6]) end
local id = redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[7], '*',
  'event_type', 'transcript_segment', 'session_id', ARGV[9], 'tenant_id', ARGV[1],
  'timestamp', ARGV[8], 'seq', seq, 'text', ARGV[2], 'start_ms', ARGV[4], 'end_ms', ARGV[5])
return {2, seq, id}
"#,
    )
});

/// Completes a session once: status and `completed_at`, TTL refresh, the cached
/// transcript JSON, and `transcript_completed` with the chunks joined by one space.
/// A repeat changes and publishes nothing.
///
/// KEYS: metadata, transcript, segments, cache, tenant index, event stream.
/// ARGV: tenant, completed_at, ttl_ms, cache_ttl_ms, maxlen, cache JSON prefix
/// (`{"session_id":"<id>","text":`), event pairs (without transcript/segment_count).
/// Returns {0} not found, {1, hash, text} already completed, {2, hash, text} completed now.
pub(super) static COMPLETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local m = redis.call('HMGET', KEYS[1], 'tenant_id', 'status')
if not m[1] or m[1] ~= ARGV[1] then return {0} end
local text = table.concat(redis.call('LRANGE', KEYS[2], 0, -1), ' ')
if m[2] == 'completed' then return {1, redis.call('HGETALL', KEYS[1]), text} end
redis.call('HSET', KEYS[1], 'status', 'completed', 'completed_at', ARGV[2])
local count = redis.call('HGET', KEYS[1], 'segment_count') or '0'
for _, k in ipairs({KEYS[1], KEYS[2], KEYS[3], KEYS[5]}) do
  redis.call('PEXPIRE', k, ARGV[3])
end
local segs = redis.call('LRANGE', KEYS[3], 0, -1)
redis.call('SET', KEYS[4],
  ARGV[6] .. cjson.encode(text) .. ',"segments":[' .. table.concat(segs, ',') .. ']}',
  'PX', ARGV[4])
local ev = {}
for i = 7, #ARGV do ev[#ev + 1] = ARGV[i] end
ev[#ev + 1] = 'transcript'
ev[#ev + 1] = text
ev[#ev + 1] = 'segment_count'
ev[#ev + 1] = count
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[5], '*', unpack(ev))
return {2, redis.call('HGETALL', KEYS[1]), text}
"#,
    )
});

/// Reads a transcript: from the cache entry for a completed session (rebuilding and
/// re-caching it if it expired), from the lists otherwise.
///
/// KEYS: metadata, transcript, segments, cache.
/// ARGV: tenant, cache JSON prefix, cache_ttl_ms.
/// Returns {0} not found, {1, cached JSON}, {2, chunks, segment JSONs}.
pub(super) static TRANSCRIPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local m = redis.call('HMGET', KEYS[1], 'tenant_id', 'status')
if not m[1] or m[1] ~= ARGV[1] then return {0} end
if m[2] ~= 'completed' then
  return {2, redis.call('LRANGE', KEYS[2], 0, -1), redis.call('LRANGE', KEYS[3], 0, -1)}
end
local c = redis.call('GET', KEYS[4])
if c then return {1, c} end
local text = table.concat(redis.call('LRANGE', KEYS[2], 0, -1), ' ')
local segs = redis.call('LRANGE', KEYS[3], 0, -1)
c = ARGV[2] .. cjson.encode(text) .. ',"segments":[' .. table.concat(segs, ',') .. ']}'
redis.call('SET', KEYS[4], c, 'PX', ARGV[3])
return {1, c}
"#,
    )
});

/// Deletes every key of a session (its live-stream lock included), unindexes it and
/// publishes `session_deleted`.
///
/// KEYS: metadata, transcript, segments, cache, tenant index, event stream, stream lock.
/// ARGV: tenant, session_id, maxlen, event pairs. Returns 1 if deleted, 0 if not found.
pub(super) static DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local t = redis.call('HGET', KEYS[1], 'tenant_id')
if not t or t ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[7])
redis.call('ZREM', KEYS[5], ARGV[2])
local ev = {}
for i = 4, #ARGV do ev[#ev + 1] = ARGV[i] end
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[3], '*', unpack(ev))
return 1
"#,
    )
});

/// Compare-and-delete: releases a lock only for its owner. KEYS: lock. ARGV: token.
pub(super) static UNLOCK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#,
    )
});

/// Compare-and-`PEXPIRE`: extends a lock only for its owner. KEYS: lock. ARGV: token, ms.
pub(super) static EXTEND_LOCK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"#,
    )
});

/// `XAUTOCLAIM` plus each claimed entry's delivery count, atomically. Claims with
/// `JUSTID` and counts the delivery itself (`XCLAIM ... RETRYCOUNT`), so an entry trimmed
/// while pending never reaches the caller as a nil: Redis 6.2 leaves such entries in the
/// PEL and answers nil for them; here they are acknowledged and reported as deleted, as
/// Redis 7 does.
///
/// KEYS: stream. ARGV: group, consumer, min_idle_ms, start, count.
/// Returns {next, claimed entries, deleted ids, delivery counts}.
pub(super) static AUTOCLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4],
  'COUNT', ARGV[5], 'JUSTID')
local claimed, counts, deleted = {}, {}, r[3] or {}
for _, id in ipairs(r[2]) do
  local e = redis.call('XRANGE', KEYS[1], id, id)
  if e[1] then
    local p = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
    local n = 1
    if p[1] then n = p[1][4] + 1 end
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'RETRYCOUNT', n, 'JUSTID')
    claimed[#claimed + 1] = e[1]
    counts[#counts + 1] = n
  else
    redis.call('XACK', KEYS[1], ARGV[1], id)
    deleted[#deleted + 1] = id
  end
end
return {r[1], claimed, deleted, counts}
"#,
    )
});

/// The consumer's own pending entries above a cursor (`XREADGROUP ... <after>`, which
/// counts as a delivery) plus each one's delivery count (`XPENDING`), atomically.
/// Entries trimmed from the stream come back with nil fields.
///
/// KEYS: stream. ARGV: group, consumer, count, after.
/// Returns {entries, delivery counts}.
pub(super) static OWN_PENDING: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local r = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3],
  'STREAMS', KEYS[1], ARGV[4])
local entries = {}
if r and r[1] then entries = r[1][2] end
local counts = {}
for i, e in ipairs(entries) do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], e[1], e[1], 1)
  if p[1] then counts[i] = p[1][4] else counts[i] = 0 end
end
return {entries, counts}
"#,
    )
});

/// Gives a consumer's read-but-unattempted entries back: for each id still pending for
/// that consumer, `XCLAIM` to itself with a large `IDLE` (any reclaim takes it next) and
/// `RETRYCOUNT` restoring the count it had before the read; `JUSTID` adds no delivery.
///
/// KEYS: stream. ARGV: group, consumer, idle_ms, then (id, count) pairs.
pub(super) static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
for i = 4, #ARGV, 2 do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  if p[1] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i],
      'IDLE', ARGV[3], 'RETRYCOUNT', ARGV[i + 1], 'JUSTID')
  end
end
return 0
"#,
    )
});
