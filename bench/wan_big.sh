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
if [ -z "${OCIPUSH_BIN:-}" ]; then
    echo "==> building (release)" >&2
    (cd "$ROOT" && cargo build -q --release -p ocipush --bin ocipush)
    OCIPUSH_BIN=$ROOT/target/release/ocipush
fi
FIXTURES=$WORK/fixtures
if [ ! -d "$FIXTURES/random-oci" ]; then
    echo "==> writing fixtures to $FIXTURES" >&2
    (cd "$ROOT" && cargo build -q --release -p ocipush-testkit --bin bench-fixtures)
    "$ROOT/target/release/bench-fixtures" "$FIXTURES"
fi
LAYOUT=$FIXTURES/random-oci
BYTES=$(find "$LAYOUT/blobs" -type f -printf '%s\n' | awk '{s += $1} END {print s}')

REG_PID="" PROXY_PID="" REG_DIR=""
stop_all() {
    [ -n "$PROXY_PID" ] && { kill "$PROXY_PID" 2>/dev/null || true; wait "$PROXY_PID" 2>/dev/null || true; }
    [ -n "$REG_PID" ] && { kill "$REG_PID" 2>/dev/null || true; wait "$REG_PID" 2>/dev/null || true; }
    [ -n "$REG_DIR" ] && rm -rf "$REG_DIR"
    REG_PID="" PROXY_PID="" REG_DIR=""
}
trap stop_all EXIT

# start: a fresh registry behind the proxy; sets PORT (the proxy's).
start() {
    stop_all
    sync
    REG_DIR=$(mktemp -d "$WORK/wan.XXXXXX")
    local reg_port; reg_port=$(free_port)
    start_distribution "$REG_DIR" "$reg_port"
    REG_PID=$STARTED_PID
    PORT=$(free_port)
    start_latency_proxy "$PORT" "$reg_port" "$RTT" "$RATE" "$REG_DIR/proxy.log"
    PROXY_PID=$STARTED_PID
}
ocipush_push() { OCIPUSH_CACHE_DIR=$REG_DIR/cache "$OCIPUSH_BIN" push -q --plain-http ${BENCH_OCIPUSH_FLAGS:-} "$LAYOUT" "127.0.0.1:$PORT/wan/random:1"; }
curl_push() {
    for f in "$LAYOUT"/blobs/sha256/*; do
        (
            loc=$(curl -sf -X POST -D - -o /dev/null "http://127.0.0.1:$PORT/v2/wan/curl/blobs/uploads/" | tr -d '\r' | awk 'tolower($1)=="location:"{print $2}')
            case "$loc" in http*) ;; *) loc="http://127.0.0.1:$PORT$loc" ;; esac
            sep='?'; case "$loc" in *\?*) sep='&' ;; esac
            curl -sf -X PUT -H 'Content-Type: application/octet-stream' -T "$f" -o /dev/null "$loc${sep}digest=sha256:$(basename "$f")"
        ) &
    done
    wait
}
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
