//! The server-side Lua scripts: each is one atomic round trip for a write whose parts
//! belong together, especially where a value computed inside the write (the
//! next `seq`, the full transcript) must appear in the published event. Run with
//! `EVALSHA`, falling back to `EVAL` when the server does not have them cached yet.
//!
//! Event fields computed in Rust (`Event::to_fields`) are passed as trailing `ARGV`
//! pairs, so the field names and order are defined in one place.

use std::sync::LazyLock;

use redis::Script;

/// Creates a session if its id is free.
///
/// KEYS: metadata, transcript, segments, cache, tenant index, event stream, idempotency.
/// ARGV: ttl_ms, maxlen, score, session_id, n (hash items), n hash items, event pairs.
/// Returns 1 if created, 0 if the id exists.
pub(super) static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
-- Leftovers of an earlier session with this id (expired metadata, old cache).
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[7])
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
/// `transcript_segment` event carrying that seq. With an idempotency key, a key seen
/// before answers its first seq (same body fingerprint) or {4} (another body) and writes
/// nothing visible; a new key is recorded in the same write. Past the session's segment
/// or byte limit it answers {5} and writes nothing.
///
/// A repeat rewrites the idempotency hash's own TTL unchanged: a write that reaches the
/// replicas, so `WAIT` after it (`EARSHOT_REDIS_WAIT`) also covers the first append,
/// which may have come over another connection and not be replicated yet.
///
/// KEYS: metadata, transcript, segments, tenant index, event stream, idempotency.
/// ARGV: tenant, text, json tail, ttl_ms, maxlen, idempotency key ('' for none), body
/// fingerprint, max segments, max bytes, position of the seq value among the event
/// pairs, event pairs (from `Event::to_fields`, seq as a placeholder).
/// Returns {0} not found (or another tenant's), {1} completed, {2, seq, event id},
/// {3, seq} repeated, {4} key reused, {5} full.
pub(super) static APPEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local m = redis.call('HMGET', KEYS[1], 'tenant_id', 'status', 'segment_count', 'text_bytes')
if not m[1] or m[1] ~= ARGV[1] then return {0} end
if ARGV[6] ~= '' then
  local prior = redis.call('HGET', KEYS[6], ARGV[6])
  if prior then
    local sep = string.find(prior, ':', 1, true)
    if string.sub(prior, sep + 1) ~= ARGV[7] then return {4} end
    local ttl = redis.call('PTTL', KEYS[6])
    if ttl > 0 then redis.call('PEXPIRE', KEYS[6], ttl) end
    return {3, tonumber(string.sub(prior, 1, sep - 1))}
  end
end
if m[2] == 'completed' then return {1} end
local bytes = tonumber(m[4] or '0') + string.len(ARGV[2])
if tonumber(m[3] or '0') >= tonumber(ARGV[8]) or bytes > tonumber(ARGV[9]) then return {5} end
local seq = redis.call('HINCRBY', KEYS[1], 'segment_count', 1) - 1
redis.call('HSET', KEYS[1], 'text_bytes', bytes)
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('RPUSH', KEYS[3], '{"seq":' .. seq .. ARGV[3])
if ARGV[6] ~= '' then redis.call('HSET', KEYS[6], ARGV[6], seq .. ':' .. ARGV[7]) end
for _, i in ipairs({1, 2, 3, 4, 6}) do redis.call('PEXPIRE', KEYS[i], ARGV[4]) end
local ev = {}
for i = 11, #ARGV do ev[#ev + 1] = ARGV[i] end
ev[tonumber(ARGV[10])] = seq
local id = redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[5], '*', unpack(ev))
return {2, seq, id}
"#,
    )
});

/// Completes a session once: status and `completed_at`, TTL refresh and the
/// `transcript_completed` event, whose text the caller read and bounded beforehand.
/// The caller passes the `segment_count` its text covers; if an append came in since,
/// nothing is written and the caller reads again. No list is read here, so completing
/// a large session never holds Redis for everyone else.
///
/// KEYS: metadata, transcript, segments, tenant index, event stream, idempotency.
/// ARGV: tenant, completed_at, ttl_ms, maxlen, expected segment_count, event pairs.
/// Returns {0} not found, {1} already completed, {2, hash} completed now, {3} changed.
pub(super) static COMPLETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local m = redis.call('HMGET', KEYS[1], 'tenant_id', 'status', 'segment_count')
if not m[1] or m[1] ~= ARGV[1] then return {0} end
if m[2] == 'completed' then return {1} end
if (m[3] or '0') ~= ARGV[5] then return {3} end
redis.call('HSET', KEYS[1], 'status', 'completed', 'completed_at', ARGV[2])
for _, i in ipairs({1, 2, 3, 4, 6}) do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
local ev = {}
for i = 6, #ARGV do ev[#ev + 1] = ARGV[i] end
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[4], '*', unpack(ev))
return {2, redis.call('HGETALL', KEYS[1])}
"#,
    )
});

/// Deletes every key of a session (its live-stream lock included), unindexes it and
/// publishes `session_deleted`.
///
/// KEYS: metadata, transcript, segments, cache, tenant index, event stream, idempotency,
/// stream lock.
/// ARGV: tenant, session_id, maxlen, event pairs. Returns 1 if deleted, 0 if not found.
pub(super) static DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local t = redis.call('HGET', KEYS[1], 'tenant_id')
if not t or t ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[7], KEYS[8])
redis.call('ZREM', KEYS[5], ARGV[2])
local ev = {}
for i = 4, #ARGV do ev[#ev + 1] = ARGV[i] end
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[3], '*', unpack(ev))
return 1
"#,
    )
});

/// Sets an existing session's language, only for its tenant (never re-creating an
/// expired hash), and publishes `language_detected`.
/// KEYS: metadata, event stream. ARGV: tenant, language, maxlen, event pairs. Returns 1 if
/// set, else 0.
pub(super) static SET_LANGUAGE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('HGET', KEYS[1], 'tenant_id') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'language', ARGV[2])
local ev = {}
for i = 4, #ARGV do ev[#ev + 1] = ARGV[i] end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(ev))
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
