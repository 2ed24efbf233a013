#!/usr/bin/env bash
# scripts/soak.sh [DURATION_S=60] [CONNECTIONS=64] [SSE_SUBSCRIBERS=200]
#
# Load + soak of the whole pipeline on loopback, bounded in time (~DURATION_S + 30 s):
#   private redis-server (free port, --save '' --appendonly no)
#   earshot serve --no-asr (release build) with EARSHOT_API_KEYS=bench:benchkey
#   2 x earshot worker in one group (--sink jsonl:$WORK/wN.jsonl)
#   SSE_SUBSCRIBERS connections on GET /v1/events (examples/sse_subscribers.rs)
#   /work/shared/bench/segments.sh (wrk) for DURATION_S with CONNECTIONS connections
# while sampling the RSS of serve and the workers every 5 s. At the end it prints
# throughput and latency, errors, RSS over time, the consumer-group lag, what every SSE
# subscriber and the workers received against what was published, and check_store.sh.
#
# Env: BENCH_DIR (default ../shared/bench beside the repo), SOAK_NO_BUILD=1 (use the existing
# release build), KEEP=1 (keep the work directory with logs and jsonl outputs).
# The machine is shared: read the other_cores figure of segments.sh before trusting
# absolute numbers.
set -euo pipefail

DUR="${1:-60}"
CONC="${2:-64}"
SUBS="${3:-200}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BENCH="${BENCH_DIR:-$(cd "$(dirname "$0")/../../shared/bench" && pwd)}"
WORK="$(mktemp -d /tmp/earshot-soak.XXXXXX)"
BIN="$ROOT/target/release/earshot"
SSE_BIN="$ROOT/target/release/examples/sse_subscribers"
GROUP=soak
PIDS=()

cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [[ "${KEEP:-0}" == 1 ]]; then echo "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

for tool in redis-server redis-cli wrk curl; do
  command -v "$tool" >/dev/null || { echo "$tool not found" >&2; exit 2; }
done

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
wait_for() {  # wait_for WHAT SECONDS CMD...
  local what=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    (( SECONDS < deadline )) || { echo "timed out waiting for $what" >&2; exit 1; }
    sleep 0.1
  done
}

if [[ "${SOAK_NO_BUILD:-0}" != 1 ]]; then
  echo "== building (release)"
  (cd "$ROOT" && cargo build --release -q -p earshot --bin earshot --example sse_subscribers)
fi
T0=$SECONDS

RP=$(free_port)
redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
  --dir "$WORK" --logfile "$WORK/redis.log" &
RPID=$!; PIDS+=("$RPID")
RCLI=(redis-cli -p "$RP")
wait_for "redis on $RP" 10 "${RCLI[@]}" ping

SP=$(free_port)
BASE="http://127.0.0.1:$SP"
REDIS_URL="redis://127.0.0.1:$RP/0" EARSHOT_API_KEYS=bench:benchkey EARSHOT_LISTEN="127.0.0.1:$SP" \
  EARSHOT_STATS_INTERVAL=1s RUST_LOG=warn "$BIN" serve --no-asr >"$WORK/serve.log" 2>&1 &
SPID=$!; PIDS+=("$SPID")
wait_for "earshot serve on $SP" 20 curl -sf "$BASE/healthz"

WPIDS=()
for w in w1 w2; do
  REDIS_URL="redis://127.0.0.1:$RP/0" RUST_LOG=warn "$BIN" worker --group "$GROUP" --consumer "$w" \
    --sink "jsonl:$WORK/$w.jsonl" >"$WORK/$w.log" 2>&1 &
  WPIDS+=($!); PIDS+=($!)
done

SSE_DRAIN_QUIET_MS=2000 SSE_DRAIN_MAX_S=15 "$SSE_BIN" "$BASE" benchkey "$SUBS" >"$WORK/sse.out" 2>"$WORK/sse.err" &
SSEPID=$!; PIDS+=("$SSEPID")
wait_for "$SUBS SSE subscribers" 20 grep -q '^connected' "$WORK/sse.out"
"${RCLI[@]}" config resetstat >/dev/null

echo "== redis :$RP  serve :$SP (pid $SPID)  workers ${WPIDS[*]}  sse pid $SSEPID  work $WORK"
(
  t=0
  while :; do
    echo "$t $(rss_kib "$SPID") $(rss_kib "${WPIDS[0]}") $(rss_kib "${WPIDS[1]}")"
    sleep 5; t=$((t + 5))
  done
) >"$WORK/rss.txt" &
SAMPLER=$!; PIDS+=("$SAMPLER")

CPU_PIDS="redis=$RPID server=$SPID workers=${WPIDS[0]},${WPIDS[1]} sse=$SSEPID" \
  "$BENCH/segments.sh" "$BASE" benchkey "$DUR" "$CONC" | tee "$WORK/segments.txt"
kill "$SAMPLER" 2>/dev/null || true
echo "$(( ((SECONDS - T0) / 5) * 5 )) $(rss_kib "$SPID") $(rss_kib "${WPIDS[0]}") $(rss_kib "${WPIDS[1]}")" >>"$WORK/rss.txt"

group_field() {  # group_field NAME -> value of that XINFO GROUPS field for $GROUP
  "${RCLI[@]}" xinfo groups transcription_events | awk -v f="$1" -v g="$GROUP" '
    { a[NR] = $0 } END { for (i = 1; i < NR; i += 2) if (a[i] == "name" && a[i + 1] == g) start = i
      for (i = start; i < NR; i += 2) if (a[i] == f) { print a[i + 1]; exit } }'
}
LAG_END=$(group_field lag); PENDING_END=$(group_field pending)
# Give the workers a bounded moment to catch up, then read the lag again.
deadline=$((SECONDS + 15))
while [[ "$(group_field lag)" != 0 || "$(group_field pending)" != 0 ]] && (( SECONDS < deadline )); do sleep 0.5; done
LAG_DRAINED=$(group_field lag); PENDING_DRAINED=$(group_field pending); DRAIN_S=$((15 - (deadline - SECONDS)))

kill -TERM "$SSEPID"
wait "$SSEPID" 2>/dev/null || true
PUBLISHED=$("${RCLI[@]}" xinfo stream transcription_events | awk 'prev == "entries-added" { print; exit } { prev = $0 }')
STORE=$("$BENCH/check_store.sh" "$RP" 2>"$WORK/check_store.err")

# What the workers wrote: every line carries "id" (the stream id).
cat "$WORK"/w1.jsonl "$WORK"/w2.jsonl 2>/dev/null | sed -n 's/.*"id":"\([0-9-]*\)".*/\1/p' | sort >"$WORK/ids.txt"
W_LINES=$(wc -l <"$WORK/ids.txt")
W_UNIQUE=$(uniq "$WORK/ids.txt" | wc -l)
W1_LINES=$(wc -l <"$WORK/w1.jsonl" 2>/dev/null || echo 0)
W2_LINES=$(wc -l <"$WORK/w2.jsonl" 2>/dev/null || echo 0)

echo
echo "== soak summary (duration ${DUR}s, $CONC connections, $SUBS SSE subscribers; shared 2-core machine)"
tail -1 "$WORK/segments.txt"
echo "rss_kib over time (t_s serve worker1 worker2):"
sed 's/^/  /' "$WORK/rss.txt"
awk 'NR == 2 { s0 = $2 } { s = $2; if ($2 > m) m = $2 } END {
  g = s - s0; printf "serve_rss: after_warmup_kib=%d end_kib=%d max_kib=%d growth_kib=%d verdict=%s\n",
    s0, s, m, g, (g > 0.25 * s0 + 10240) ? "GREW" : "flat" }' "$WORK/rss.txt"
echo "consumer_group[$GROUP]: lag_at_end=$LAG_END pending_at_end=$PENDING_END" \
  "lag_after_${DRAIN_S}s=$LAG_DRAINED pending_after=$PENDING_DRAINED"
echo "published_events=$PUBLISHED (XINFO STREAM entries-added)"
echo "workers: lines=$W_LINES (w1=$W1_LINES w2=$W2_LINES) unique_ids=$W_UNIQUE duplicates=$((W_LINES - W_UNIQUE))" \
  "missing=$((PUBLISHED - W_UNIQUE))"
SSE_LINE=$(grep '^sse:' "$WORK/sse.out" || echo "sse: no summary (see $WORK/sse.err)")
echo "$SSE_LINE published=$PUBLISHED"
if [[ -s "$WORK/sse.err" ]]; then echo "sse errors: $(sort "$WORK/sse.err" | uniq -c | head -5 | tr '\n' ';')"; fi
echo "$STORE"
if [[ -s "$WORK/check_store.err" ]]; then head -5 "$WORK/check_store.err"; fi
echo "serve warnings/errors in log: $(grep -c -E 'WARN|ERROR' "$WORK/serve.log" || true)"
echo "wall_s=$((SECONDS - T0))"
