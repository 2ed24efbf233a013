#!/usr/bin/env bash
# bench_cluster.sh [RUNS=3] [DURATION_S=15] [CONCURRENCY=64]
# Segment writes/s of one `earshot serve --no-asr` on a standalone redis-server, on a
# local 3-primary Redis Cluster, and on a 3+3 cluster with EARSHOT_REDIS_WAIT=1, in the
# same session with the same client load: ../shared/bench/segments.sh (wrk, 100
# sessions), the three set-ups interleaved run by run. Also prints Redis CPU per segment
# and the append script's usec_per_call (INFO commandstats), the per-command cost the
# README's paper estimate starts from. Loopback only; everything it starts is stopped on
# exit. On one machine all Redis processes share its cores: this measures the cluster's
# overhead, not how it scales.
# Needs: wrk, curl, redis-server, redis-cli; EARSHOT_BIN (default target/release/earshot).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}; DUR=${2:-15}; CONC=${3:-64}
BENCH=$(cd ../shared/bench && pwd)
BIN=${EARSHOT_BIN:-target/release/earshot}
[[ -x "$BIN" ]] || { echo "no $BIN: cargo build --release -p earshot" >&2; exit 2; }
PORT=18081 KEY=benchkey
BASE=${BASE_PORT:-7100}        # standalone: BASE; clusters: BASE+1.. (bus ports +10000)
WORK=$(mktemp -d /tmp/earshot-bench-cluster.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}" "${EPID:-}"; do [[ -n "$p" ]] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

node() {  # node PORT [extra args...]: a redis-server in its own dir; prints its pid
  local port=$1; shift
  mkdir -p "$WORK/$port"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$WORK/$port" --save '' --appendonly no \
    --daemonize no --logfile "$WORK/$port/log" "$@" &
  PIDS+=($!)
  for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
}

cluster() {  # cluster REPLICAS PORT...: forms a cluster and waits until it is ok
  local replicas=$1; shift
  for p in "$@"; do node "$p" --cluster-enabled yes --cluster-config-file nodes.conf; done
  redis-cli --cluster create $(printf '127.0.0.1:%s ' "$@") --cluster-replicas "$replicas" \
    --cluster-yes >/dev/null
  for _ in $(seq 200); do
    ok=1
    for p in "$@"; do redis-cli -p "$p" cluster info | grep -q cluster_state:ok || ok=0; done
    [[ $ok == 1 ]] && break; sleep 0.1
  done
}

node "$BASE"
SA="redis://127.0.0.1:$BASE/0"
C3=($((BASE + 1)) $((BASE + 2)) $((BASE + 3)))
cluster 0 "${C3[@]}"
C6=($((BASE + 4)) $((BASE + 5)) $((BASE + 6)) $((BASE + 7)) $((BASE + 8)) $((BASE + 9)))
cluster 1 "${C6[@]}"
sleep 2   # the 3+3 cluster's replicas finish their first sync

pids_of() { local out=""; for p in "$@"; do out+="${out:+,}$(redis-cli -p "$p" info server | sed -n 's/^process_id:\([0-9]*\).*/\1/p')"; done; echo "$out"; }
url_of() { local out=""; for p in "$@"; do out+="${out:+,}127.0.0.1:$p"; done; echo "redis+cluster://$out"; }
stat_reset() { for p in "$@"; do redis-cli -p "$p" flushall >/dev/null 2>&1 || true; redis-cli -p "$p" config resetstat >/dev/null; done; }
# calls and usec of the append script (EVALSHA), summed over nodes
script_cost() {
  for p in "$@"; do redis-cli -p "$p" info commandstats | grep '^cmdstat_evalsha:' || true; done |
    sed 's/.*calls=\([0-9]*\),usec=\([0-9]*\),.*/\1 \2/' |
    awk '{ c += $1; u += $2 } END { if (c) printf "evalsha_calls=%d usec_per_call=%.2f", c, u / c }'
}

one() {  # one NAME URL WAIT PORTS...
  local name=$1 url=$2 wait=$3; shift 3
  stat_reset "$@"
  REDIS_URL="$url" EARSHOT_REDIS_WAIT="$wait" EARSHOT_API_KEYS="bench:$KEY" \
    EARSHOT_LISTEN="127.0.0.1:$PORT" RUST_LOG=warn "$BIN" serve --no-asr >"$WORK/serve.log" 2>&1 &
  EPID=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
  local out
  out=$(CPU_PIDS="redis=$(pids_of "$@") server=$EPID" "$BENCH/segments.sh" \
    "http://127.0.0.1:$PORT" "$KEY" "$DUR" "$CONC" | tail -2)
  echo "$name: $(tail -1 <<<"$out") | $(head -1 <<<"$out" | grep -o 'redis_cores=[^ ]*\|server_cores=[^ ]*\|other_cores=[^ ]*\|wrk_cores=[^ ]*' | tr '\n' ' ')$(script_cost "$@")"
  kill "$EPID"; wait "$EPID" 2>/dev/null || true; EPID=
}

for run in $(seq "$RUNS"); do
  echo "# run $run"
  one standalone "$SA" 0 "$BASE"
  one cluster-3 "$(url_of "${C3[@]}")" 0 "${C3[@]}"
  one cluster-3+3-wait1 "$(url_of "${C6[@]}")" 1 "${C6[@]}"
done
