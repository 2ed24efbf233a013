#!/usr/bin/env bash
# rss_sessions.sh [SESSIONS=10000] [SEGMENTS_PER_SESSION=3]: RSS of `earshot serve` on the
# embedded store holding that many sessions (each with a few ~80-byte segments).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}; SEGS=${2:-3}; PORT=18081
cargo build --release -p earshot >/dev/null 2>&1 || cargo build --release -p earshot
EARSHOT_LISTEN="127.0.0.1:$PORT" RUST_LOG=warn ./target/release/earshot serve --no-asr >/dev/null 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
rss() { awk '/VmRSS/ { print $2 }' "/proc/$PID/status"; }
echo "rss_idle_kb=$(rss)"
python3 - "$PORT" "$N" "$SEGS" <<'PY'
import http.client, json, sys
port, n, segs = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
c = http.client.HTTPConnection("127.0.0.1", port)
text = "the quarterly report shows revenue growth in all regions and we expect margins"
for i in range(n):
    c.request("POST", "/v1/sessions", json.dumps({"session_id": f"rss-{i}", "metadata": {"k": "v"}}),
              {"Content-Type": "application/json"}); r = c.getresponse(); r.read(); assert r.status == 201, r.status
    for s in range(segs):
        c.request("POST", f"/v1/sessions/rss-{i}/segments", json.dumps({"text": text, "start_ms": s * 2000, "end_ms": s * 2000 + 1900}),
                  {"Content-Type": "application/json"}); r = c.getresponse(); r.read(); assert r.status == 201
PY
echo "sessions=$N segments=$((N * SEGS)) rss_kb=$(rss) stream_len_capped_at=10000"
