#!/usr/bin/env bash
# bench_segments.sh [RUNS=3] [DURATION_S=20] [CONCURRENCY=64] [REDIS_PORT=6390]
# The segment-write benchmark of ../shared/bench, run for earshot and for the Python
# reference in the same session, on the same private Redis, then the store's own
# ceiling (redis_limit.sh). Loopback only; bounded in time. Needs wrk, redis-server,
# redis-tools, and the reference's venv (PYTHON=..., see ../shared/bench/README.md).
# QUIET_WAIT (s, default 60): how long to wait for an idle machine before each run.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}; DUR=${2:-20}; CONC=${3:-64}; RPORT=${4:-6390}
BENCH=$(cd ../shared/bench && pwd)
export QUIET_WAIT=${QUIET_WAIT:-60}
PORT=18080 KEY=benchkey
cargo build --release -p earshot >/dev/null 2>&1 || cargo build --release -p earshot

redis-server --port "$RPORT" --save '' --appendonly no --daemonize yes --pidfile "/tmp/earshot-bench-redis-$RPORT.pid" >/dev/null
trap 'redis-cli -p "$RPORT" shutdown nosave >/dev/null 2>&1 || true; kill "${EPID:-0}" 2>/dev/null || true' EXIT
sleep 0.5
RPID=$(cat "/tmp/earshot-bench-redis-$RPORT.pid")

echo "## earshot serve (release, --no-asr) on redis://127.0.0.1:$RPORT"
REDIS_URL="redis://127.0.0.1:$RPORT/0" EARSHOT_API_KEYS="bench:$KEY" EARSHOT_LISTEN="127.0.0.1:$PORT" \
  RUST_LOG=warn ./target/release/earshot serve --no-asr >/tmp/earshot-bench-serve.log 2>&1 &
EPID=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
for run in $(seq "$RUNS"); do
  redis-cli -p "$RPORT" flushall >/dev/null; redis-cli -p "$RPORT" config resetstat >/dev/null
  CPU_PIDS="redis=$RPID server=$EPID" "$BENCH/segments.sh" "http://127.0.0.1:$PORT" "$KEY" "$DUR" "$CONC" | tail -2
  "$BENCH/check_store.sh" "$RPORT"
done
kill "$EPID"; wait "$EPID" 2>/dev/null || true; EPID=

echo "## Python reference (2 uvicorn workers), same Redis"
PYTHON=${PYTHON:-/tmp/seedvenv/bin/python} "$BENCH/run_seed_python.sh" "$RPORT" "$RUNS" "$DUR" "$CONC" 2 | grep -E "segments/s|store:|run |#" || true

echo "## the store's ceiling"
redis-cli -p "$RPORT" flushall >/dev/null
"$BENCH/redis_limit.sh" "$RPORT" | tail -12
