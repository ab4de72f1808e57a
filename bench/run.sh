#!/usr/bin/env bash
# ocipush against skopeo and against the raw upload limit (curl), in the same run, on the same
# machine, into the same kind of registry (CNCF distribution, `docker-registry`, plain HTTP on
# loopback). Prints a markdown table of medians, ratios and peak RSS.
#
#   bash bench/run.sh                    # full: 1 GiB images, 5 runs each (about 15 minutes)
#   BENCH_RUNS=1 BENCH_LAYER_MIB=32 bash bench/run.sh   # a quick trial
#   BENCH_ONLY="random-oci curl" bash bench/run.sh      # some rows only (text-docker
#                                    random-docker text-oci random-oci curl small daemon)
#
# Cold: a fresh registry (empty storage), an empty ocipush digest cache and skopeo's blob-info
# cache deleted; the input files read into the page cache just before (for curl too).
# Warm: the same image pushed again into the registry that has it.
# The curl limit sends the very bytes ocipush sent (the gzip layers, the config), one monolithic
# PUT per blob, all blobs in parallel: no reading of archives, no hashing, no compression.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${BENCH_DIR:-/tmp/ocipush-bench}
RUNS=${BENCH_RUNS:-5}
LAYER_MIB=${BENCH_LAYER_MIB:-256}
export BENCH_LAYER_MIB=$LAYER_MIB

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
require_tools docker-registry skopeo curl python3 /usr/bin/time

echo "==> building (release)" >&2
(cd "$ROOT" && cargo build -q --release -p ocipush -p ocipush-testkit --bin ocipush --bin bench-fixtures)
OCIPUSH=$ROOT/target/release/ocipush
FIXTURES=$WORK/fixtures-$LAYER_MIB
if [ ! -f "$FIXTURES/.done" ]; then
    echo "==> writing fixtures ($LAYER_MIB MiB layers) to $FIXTURES" >&2
    rm -rf "$FIXTURES"
    "$ROOT/target/release/bench-fixtures" "$FIXTURES"
    touch "$FIXTURES/.done"
fi

REG_PID=""
REG_DIR=""
PORT=""
start_registry() {
    stop_registry
    REG_DIR=$(mktemp -d "$WORK/registry.XXXXXX")
    PORT=$(free_port)
    start_distribution "$REG_DIR" "$PORT" error "  delete: {enabled: true}"
    REG_PID=$STARTED_PID
}
stop_registry() {
    if [ -n "$REG_PID" ]; then kill "$REG_PID" 2>/dev/null || true; wait "$REG_PID" 2>/dev/null || true; fi
    REG_PID=""
    if [ -n "$REG_DIR" ]; then
        rm -rf "$REG_DIR"
        # The next timed run starts on a quiet disk: the deletion's journal commit (and its
        # discards: / is mounted with `discard` here) done, not landing on that run's fsyncs.
        sync
    fi
    REG_DIR=""
}
trap stop_registry EXIT

clear_caches() {
    rm -rf "$WORK/ocipush-cache"
    rm -f /var/lib/containers/cache/blob-info-cache-v1.boltdb "$HOME/.local/share/containers/cache/blob-info-cache-v1.boltdb"
}

# in_page_cache PATH...: reads every file under PATH (symlinks followed) so that each tool starts
# with its input in memory. The kernel here drops cold file pages on its own (DAMON pageout), so
# without this a run could read from disk or not, depending on what ran before it.
in_page_cache() {
    find -L "$@" -type f -exec cat {} + >/dev/null
}

# record FILE CMD... : runs CMD, appends "wall_seconds max_rss_kib" to FILE.
record() {
    local out=$1
    shift
    local start end
    start=$(date +%s%N)
    /usr/bin/time -f "%M" -o "$WORK/time.$$" "$@" >/dev/null 2>"$WORK/stderr.$$" || {
        echo "error: $* failed:" >&2
        cat "$WORK/stderr.$$" >&2
        exit 1
    }
    end=$(date +%s%N)
    echo "$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f", (e - s) / 1e9 }') $(cat "$WORK/time.$$")" >>"$out"
}

med_time() { awk '{print $1}' "$1" | median; }
max_rss_mib() { awk 'BEGIN{m=0} {if ($2>m) m=$2} END {printf "%.0f", m/1024}' "$1"; }

export OCIPUSH_CACHE_DIR=$WORK/ocipush-cache
OCIPUSH_PUSH=("$OCIPUSH" push -q --plain-http)
SKOPEO_PUSH=(skopeo copy -q --insecure-policy --dest-tls-verify=false)

# curl_limit RESULT BLOB_DIR REPO: uploads every file of BLOB_DIR (named by digest hex) in parallel.
curl_limit() {
    local out=$1 dir=$2 repo=$3
    in_page_cache "$dir"
    record "$out" bash "$ROOT/bench/curl_put.sh" "$PORT" "$repo" "$dir"
}

# blobs_of OCI_DIR OUT_DIR: the config and layer blobs of the layout's only image.
blobs_of() {
    local layout=$1 out=$2
    rm -rf "$out"
    mkdir -p "$out"
    python3 - "$layout" "$out" <<'EOF'
import json, os, sys
layout, out = sys.argv[1], sys.argv[2]
index = json.load(open(os.path.join(layout, "index.json")))
digest = index["manifests"][0]["digest"].split(":")[1]
manifest = json.load(open(os.path.join(layout, "blobs/sha256", digest)))
for d in [manifest["config"]] + manifest["layers"]:
    h = d["digest"].split(":")[1]
    os.symlink(os.path.join(os.path.abspath(layout), "blobs/sha256", h), os.path.join(out, h))
EOF
}

RESULTS=$WORK/results
rm -rf "$RESULTS"
mkdir -p "$RESULTS"
ONLY=${BENCH_ONLY:-text-docker random-docker text-oci random-oci curl small daemon}
wanted() { case " $ONLY " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# bench_cold NAME SOURCE_FOR_OCIPUSH SOURCE_FOR_SKOPEO [CURL_BLOB_DIR]: cold runs of ocipush, skopeo
# and (with a blob directory) the curl limit, the three side by side in each round, so that a
# slower or faster stretch of the machine falls on all of them alike; then the warm runs.
bench_cold() {
    local name=$1 src=$2 skopeo_src=$3 curl_dir=${4:-}
    for _ in $(seq "$RUNS"); do
        start_registry; clear_caches; in_page_cache "$src"
        record "$RESULTS/$name.ocipush" "${OCIPUSH_PUSH[@]}" "$src" "127.0.0.1:$PORT/bench/$name:1"
        start_registry; clear_caches; in_page_cache "$src"
        record "$RESULTS/$name.skopeo" "${SKOPEO_PUSH[@]}" "$skopeo_src" "docker://127.0.0.1:$PORT/bench/$name:1"
        if [ -n "$curl_dir" ]; then
            start_registry
            curl_limit "$RESULTS/$name.curl" "$curl_dir" bench/curl
        fi
    done
    # Warm: the image is in the registry (and in each tool's cache) already.
    start_registry; clear_caches
    "${OCIPUSH_PUSH[@]}" "$src" "127.0.0.1:$PORT/bench/$name:1" >/dev/null
    for _ in $(seq "$RUNS"); do
        record "$RESULTS/$name.ocipush-warm" "${OCIPUSH_PUSH[@]}" "$src" "127.0.0.1:$PORT/bench/$name:1"
    done
    "${SKOPEO_PUSH[@]}" "$skopeo_src" "docker://127.0.0.1:$PORT/bench/$name-s:1" >/dev/null
    for _ in $(seq "$RUNS"); do
        record "$RESULTS/$name.skopeo-warm" "${SKOPEO_PUSH[@]}" "$skopeo_src" "docker://127.0.0.1:$PORT/bench/$name-s:1"
    done
}

# The curl limit's inputs, made before any timing: the bytes ocipush sends for the docker-save
# text image (pushed once, copied back as an OCI layout) and the random OCI layout's own blobs.
TEXT_CURL=""
RANDOM_CURL=""
if wanted curl; then
    if wanted text-docker; then
        echo "==> the text image's gzip blobs, for its curl limit" >&2
        start_registry; clear_caches
        "${OCIPUSH_PUSH[@]}" "$FIXTURES/text.tar" "127.0.0.1:$PORT/bench/gz:1" >/dev/null
        rm -rf "$WORK/text-gz"
        skopeo copy -q --insecure-policy --src-tls-verify=false "docker://127.0.0.1:$PORT/bench/gz:1" "oci:$WORK/text-gz:x"
        blobs_of "$WORK/text-gz" "$WORK/text-gz-blobs"
        TEXT_CURL=$WORK/text-gz-blobs
    fi
    if wanted random-oci; then
        blobs_of "$FIXTURES/random-oci" "$WORK/random-blobs"
        RANDOM_CURL=$WORK/random-blobs
    fi
fi

if wanted text-docker; then
    echo "==> docker-save text image" >&2
    bench_cold text-docker "$FIXTURES/text.tar" "docker-archive:$FIXTURES/text.tar" "$TEXT_CURL"
fi
if wanted random-docker; then
    echo "==> docker-save random image" >&2
    bench_cold random-docker "$FIXTURES/random.tar" "docker-archive:$FIXTURES/random.tar"
fi
if wanted text-oci; then
    echo "==> OCI layout text image" >&2
    bench_cold text-oci "$FIXTURES/text-oci" "oci:$FIXTURES/text-oci:bench-text:1"
fi
if wanted random-oci; then
    echo "==> OCI layout random image" >&2
    bench_cold random-oci "$FIXTURES/random-oci" "oci:$FIXTURES/random-oci:bench-random:1" "$RANDOM_CURL"
fi

if wanted small; then
echo "==> 30 small images" >&2
for _ in $(seq "$RUNS"); do
    start_registry; clear_caches
    record "$RESULTS/small.ocipush" "${OCIPUSH_PUSH[@]}" -r "127.0.0.1:$PORT/small" "$FIXTURES/small.tar"
    start_registry; clear_caches
    cat >"$WORK/skopeo-small.sh" <<EOF
set -e
for i in \$(seq 0 29); do
    skopeo copy -q --insecure-policy --dest-tls-verify=false "docker-archive:$FIXTURES/small.tar:@\$i" "docker://127.0.0.1:$PORT/small/small-\$i:1"
done
EOF
    record "$RESULTS/small.skopeo" bash "$WORK/skopeo-small.sh"
done
fi
if wanted daemon; then
echo "==> daemon: ocipush and docker push of the text image from a real dockerd" >&2
# Its own dockerd (vfs, own socket and data root). Cold: a fresh registry (docker's layer
# upload cache is per registry address, and every fresh registry gets a new port) and an empty
# ocipush digest cache. Warm: pushed again into the registry that has it.
DK=$WORK/dockerd
rm -rf "$DK"; mkdir -p "$DK"
dockerd --storage-driver=vfs --iptables=false --ip6tables=false --bridge=none \
    --data-root="$DK/data" --exec-root="$DK/exec" --pidfile="$DK/d.pid" \
    --host="unix://$DK/d.sock" >"$DK/log" 2>&1 &
DK_PID=$!
trap 'stop_registry; kill $DK_PID 2>/dev/null || true' EXIT
export DOCKER_HOST="unix://$DK/d.sock"
for _ in $(seq 300); do docker version >/dev/null 2>&1 && break; sleep 0.2; done
docker load -q -i "$FIXTURES/text.tar" >/dev/null
for _ in $(seq "$RUNS"); do
    start_registry; clear_caches
    record "$RESULTS/daemon.ocipush" "${OCIPUSH_PUSH[@]}" bench-text:1 "127.0.0.1:$PORT/bench/daemon:1"
    start_registry
    docker tag bench-text:1 "127.0.0.1:$PORT/bench/daemon-d:1"
    record "$RESULTS/daemon.docker" docker push -q "127.0.0.1:$PORT/bench/daemon-d:1"
    docker rmi -f "127.0.0.1:$PORT/bench/daemon-d:1" >/dev/null
    # The export alone: what a push from the daemon cannot beat (issue 21 asks for 1.25x).
    record "$RESULTS/daemon.save" sh -c "docker save bench-text:1 > /dev/null"
done
start_registry; clear_caches
"${OCIPUSH_PUSH[@]}" bench-text:1 "127.0.0.1:$PORT/bench/daemon:1" >/dev/null
docker tag bench-text:1 "127.0.0.1:$PORT/bench/daemon-d:1"
docker push -q "127.0.0.1:$PORT/bench/daemon-d:1" >/dev/null
for _ in $(seq "$RUNS"); do
    record "$RESULTS/daemon.ocipush-warm" "${OCIPUSH_PUSH[@]}" bench-text:1 "127.0.0.1:$PORT/bench/daemon:1"
    record "$RESULTS/daemon.docker-warm" docker push -q "127.0.0.1:$PORT/bench/daemon-d:1"
done
kill "$DK_PID"; wait "$DK_PID" 2>/dev/null || true
unset DOCKER_HOST
fi
stop_registry

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
per_round() { awk '{printf "%s%s", sep, $1; sep=" "}' "$1"; }
round_ratios() { paste -d' ' "$1" "$2" | awk '{printf "%s%.2f", sep, $1 / $3; sep=" "}'; }
{
    have_rows=""
    for f in "$RESULTS"/text-docker.ocipush "$RESULTS"/random-docker.ocipush "$RESULTS"/text-oci.ocipush "$RESULTS"/random-oci.ocipush "$RESULTS"/small.ocipush; do
        [ -f "$f" ] && have_rows=1
    done
    if [ -n "$have_rows" ]; then
    echo "| image | ocipush cold (s) | skopeo cold (s) | skopeo/ocipush | curl limit (s) | ocipush/curl | ocipush warm (ms) | skopeo warm (ms) | ocipush peak RSS (MiB) | skopeo peak RSS (MiB) |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    fi
    for name in text-docker random-docker text-oci random-oci; do
        [ -f "$RESULTS/$name.ocipush" ] || continue
        o=$(med_time "$RESULTS/$name.ocipush"); s=$(med_time "$RESULTS/$name.skopeo")
        ow=$(med_time "$RESULTS/$name.ocipush-warm"); sw=$(med_time "$RESULTS/$name.skopeo-warm")
        if [ -f "$RESULTS/$name.curl" ]; then c=$(med_time "$RESULTS/$name.curl"); cr=$(ratio "$o" "$c"); else c="-"; cr="-"; fi
        echo "| $name | $o | $s | $(ratio "$s" "$o") | $c | $cr | $(awk -v x="$ow" 'BEGIN{printf "%.0f", x*1000}') | $(awk -v x="$sw" 'BEGIN{printf "%.0f", x*1000}') | $(max_rss_mib "$RESULTS/$name.ocipush") | $(max_rss_mib "$RESULTS/$name.skopeo") |"
    done
    if [ -f "$RESULTS/small.ocipush" ]; then
        o=$(med_time "$RESULTS/small.ocipush"); s=$(med_time "$RESULTS/small.skopeo")
        echo "| 30 small images | $o | $s | $(ratio "$s" "$o") | - | - | - | - | $(max_rss_mib "$RESULTS/small.ocipush") | $(max_rss_mib "$RESULTS/small.skopeo") |"
    fi
    if [ -f "$RESULTS/daemon.ocipush" ]; then
        o=$(med_time "$RESULTS/daemon.ocipush"); d=$(med_time "$RESULTS/daemon.docker")
        ow=$(med_time "$RESULTS/daemon.ocipush-warm"); dw=$(med_time "$RESULTS/daemon.docker-warm")
        echo
        if [ -f "$RESULTS/daemon.save" ]; then sv=$(med_time "$RESULTS/daemon.save"); svr=$(ratio "$o" "$sv"); else sv="-"; svr="-"; fi
        echo "| daemon image (text) | ocipush cold (s) | docker push cold (s) | docker/ocipush | docker save alone (s) | ocipush/save | ocipush warm (ms) | docker push warm (ms) | docker/ocipush warm | ocipush peak RSS (MiB) |"
        echo "|---|---|---|---|---|---|---|---|---|---|"
        echo "| text, from dockerd | $o | $d | $(ratio "$d" "$o") | $sv | $svr | $(awk -v x="$ow" 'BEGIN{printf "%.0f", x*1000}') | $(awk -v x="$dw" 'BEGIN{printf "%.0f", x*1000}') | $(ratio "$dw" "$ow") | $(max_rss_mib "$RESULTS/daemon.ocipush") |"
    fi
    # Each round's own ratios (the runs of a round are back to back), to show the spread.
    for name in text-docker random-docker text-oci random-oci; do
        [ -f "$RESULTS/$name.ocipush" ] || continue
        echo
        echo "$name rounds: ocipush $(per_round "$RESULTS/$name.ocipush"); skopeo/ocipush $(round_ratios "$RESULTS/$name.skopeo" "$RESULTS/$name.ocipush")"
        if [ -f "$RESULTS/$name.curl" ]; then
            echo "$name rounds: curl $(per_round "$RESULTS/$name.curl"); ocipush/curl $(round_ratios "$RESULTS/$name.ocipush" "$RESULTS/$name.curl")"
        fi
    done
} | tee "$WORK/results.md"
echo "(medians of $RUNS runs; layers of $LAYER_MIB MiB, 4 per big image; $(nproc) cores)"
