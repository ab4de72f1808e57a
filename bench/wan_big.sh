#!/usr/bin/env bash
# A big image over a slow, far link: the 1 GiB random OCI layout (four 256 MiB layers, gzip as
# stored) pushed into docker-registry behind bench/latency_proxy.py with BENCH_RTT ms of round
# trip and a BENCH_RATE_MBIT link shared by every connection, each way. The link limit is the
# blobs' bytes at that rate; the ratio says how close ocipush comes to it. Cold pushes (fresh
# registry, empty digest cache), medians of BENCH_RUNS. In the same rounds: curl sends the same
# blobs over the same link (POST, then one monolithic PUT per blob, all at once: the protocol's
# floor, nothing read or hashed on the way), and skopeo copies the layout (BENCH_SKOPEO=0
# leaves it out).
#
#   bash bench/wan_big.sh                             # 50 ms, 400 Mbit/s, 3 runs
#   BENCH_RTT=100 BENCH_RATE_MBIT=200 bash bench/wan_big.sh
set -euo pipefail
shopt -s inherit_errexit

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${BENCH_DIR:-/tmp/ocipush-bench}
RUNS=${BENCH_RUNS:-3}
RTT=${BENCH_RTT:-50}
RATE=${BENCH_RATE_MBIT:-400}
SKOPEO=${BENCH_SKOPEO:-1}
mkdir -p "$WORK"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

require_tools docker-registry curl python3 skopeo
ensure_ocipush
FIXTURES=$WORK/fixtures
ensure_fixtures "$FIXTURES" random-oci
LAYOUT=$FIXTURES/random-oci
BYTES=$(find "$LAYOUT/blobs" -type f -printf '%s\n' | awk '{s += $1} END {print s}')

trap stop_far_registry EXIT
# start: a fresh registry behind the proxy, on a quiet disk; sets PORT (the proxy's).
start() {
    stop_far_registry
    sync
    start_far_registry wan "$RTT" "$RATE"
}
ocipush_push() { OCIPUSH_CACHE_DIR=$REG_DIR/cache "$OCIPUSH_BIN" push -q --plain-http ${BENCH_OCIPUSH_FLAGS:-} "$LAYOUT" "127.0.0.1:$PORT/wan/random:1"; }
curl_push() { bash "$ROOT/bench/curl_put.sh" "$PORT" wan/curl "$LAYOUT/blobs/sha256"; }
skopeo_push() { HOME=$REG_DIR skopeo copy -q --dest-tls-verify=false "oci:$LAYOUT:bench-random:1" "docker://127.0.0.1:$PORT/wan/skopeo:1"; }

limit=$(awk -v b="$BYTES" -v r="$RATE" 'BEGIN { printf "%.3f", b * 8 / (r * 1e6) }')
ocipush_runs="" skopeo_runs="" curl_runs=""
for _ in $(seq "$RUNS"); do
    start; ocipush_runs="$ocipush_runs $(timed ocipush_push)"
    start; curl_runs="$curl_runs $(timed curl_push)"
    if [ "$SKOPEO" = 1 ]; then start; skopeo_runs="$skopeo_runs $(timed skopeo_push)"; fi
done
ocipush=$(echo "$ocipush_runs" | median)
curl=$(echo "$curl_runs" | median)
skopeo="-"
[ "$SKOPEO" = 1 ] && skopeo=$(echo "$skopeo_runs" | median)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3fx", a / b }'; }
echo "| RTT (ms) | link (Mbit/s) | bytes | link limit (s) | curl (s) | ocipush (s) | ocipush / limit | ocipush / curl | skopeo (s) |"
echo "|---|---|---|---|---|---|---|---|---|"
echo "| $RTT | $RATE | $BYTES | $limit | $curl | $ocipush | $(ratio "$ocipush" "$limit") | $(ratio "$ocipush" "$curl") | $skopeo |"
echo "rounds: ocipush$ocipush_runs; curl$curl_runs; skopeo$skopeo_runs" >&2
