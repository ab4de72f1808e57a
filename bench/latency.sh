#!/usr/bin/env bash
# ocipush against a registry far away: docker-registry behind bench/latency_proxy.py, which
# delays every byte by RTT/2 each way (connection set-up included). Two sets of 30 images from
# the bench fixtures: `shared` (small.tar: an 8 MiB shared base and a 2 MiB layer each, one
# tarball) and `independent` (independent/: 30 tarballs of about 3 MiB, nothing in common).
# Each is pushed with one `-r` run, cold (fresh registry, empty digest cache) and warm (the
# same push again), medians of BENCH_RUNS, at each RTT of BENCH_RTTS; the warm push's requests
# are counted in the registry's access log, and the round trips the RTT added are derived from
# the first RTT's cold and warm times. skopeo copies the same 30 images cold, four at a time
# (`skopeo copy docker-archive:…`, its fastest way here), once per set and RTT (BENCH_SKOPEO=0
# leaves it out). BENCH_REGISTRY=ocipush puts the embedded registry (`ocipush serve`, which
# stores a small blob sent whole in its upload POST) behind the proxy instead.
#
#   bash bench/latency.sh                              # RTT 0 and 50 ms, 3 runs each
#   BENCH_RTTS="0 20 100" BENCH_RUNS=5 bash bench/latency.sh
#   OCIPUSH_BIN=/path/to/other/ocipush bash bench/latency.sh   # another build, same steps
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${BENCH_DIR:-/tmp/ocipush-bench}
RUNS=${BENCH_RUNS:-3}
RTTS=${BENCH_RTTS:-"0 50"}
SKOPEO=${BENCH_SKOPEO:-1}
REGISTRY=${BENCH_REGISTRY:-distribution}
mkdir -p "$WORK"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

require_tools docker-registry curl python3 skopeo
ensure_ocipush
FIXTURES=$WORK/fixtures-small
BENCH_LAYER_MIB=1 ensure_fixtures "$FIXTURES" small.tar independent
set_source() {
    case $1 in
        shared) SOURCE=$FIXTURES/small.tar ;;
        independent) SOURCE=$FIXTURES/independent ;;
    esac
}

trap stop_far_registry EXIT
# start RTT_MS: a fresh registry (access log on) behind a proxy; sets PORT (the proxy's).
start() { start_far_registry latency "$1" "" info; }

# Requests the registry logged: distribution's access log, or `ocipush serve -v`'s events.
requests() { grep -c '"\(GET\|HEAD\|POST\|PUT\|PATCH\|DELETE\) /v2/\|request method=' "$REG_DIR/log" || true; }

# push: one `-r` push of the set's 30 images.
push() { OCIPUSH_CACHE_DIR=$REG_DIR/cache "$OCIPUSH_BIN" push -q --plain-http -r "127.0.0.1:$PORT/far" "$SOURCE"; }

# skopeo_push: skopeo copying the set's 30 images, four at a time.
skopeo_push() {
    if [ -d "$SOURCE" ]; then
        for f in "$SOURCE"/*.tar; do echo "docker-archive:$f"; done
    else
        for i in $(seq 0 29); do printf 'docker-archive:%s:small-%02d:1\n' "$SOURCE" "$i"; done
    fi | xargs -P 4 -I{} sh -c 'name=$(echo "{}" | md5sum | cut -c1-8); skopeo copy -q --dest-tls-verify=false "{}" "docker://127.0.0.1:'"$PORT"'/skopeo/$name:1" >/dev/null'
}

echo "| set | RTT (ms) | cold (s) | warm (s) | warm requests | round trips added, cold | round trips added, warm | skopeo cold, 4 at a time (s) |"
echo "|---|---|---|---|---|---|---|---|"
for set in shared independent; do
    set_source "$set"
    first_rtt="" first_cold="" first_warm=""
    for rtt in $RTTS; do
        colds="" warms="" reqs=""
        for _ in $(seq "$RUNS"); do
            start "$rtt"
            colds="$colds $(timed push)"
            before=$(requests)
            warms="$warms $(timed push)"
            reqs=$(( $(requests) - before ))
        done
        cold=$(echo "$colds" | median) warm=$(echo "$warms" | median)
        added_cold="-" added_warm="-"
        if [ -z "$first_rtt" ]; then
            first_rtt=$rtt first_cold=$cold first_warm=$warm
        elif [ "$rtt" != "$first_rtt" ]; then
            added_cold=$(awk -v a="$cold" -v b="$first_cold" -v r="$rtt" -v f="$first_rtt" 'BEGIN { printf "%.1f", (a - b) * 1000 / (r - f) }')
            added_warm=$(awk -v a="$warm" -v b="$first_warm" -v r="$rtt" -v f="$first_rtt" 'BEGIN { printf "%.1f", (a - b) * 1000 / (r - f) }')
        fi
        skopeo_cold="-"
        if [ "$SKOPEO" = 1 ]; then
            start "$rtt"
            skopeo_cold=$(timed skopeo_push)
        fi
        echo "| $set | $rtt | $cold | $warm | $reqs | $added_cold | $added_warm | $skopeo_cold |"
        echo "$set rtt $rtt rounds: cold$colds; warm$warms" >&2
    done
done
