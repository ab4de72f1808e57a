#!/usr/bin/env bash
# Two ocipush builds run alternately, so that a host's drift lands on both alike: each round
# pushes SOURCE cold (a fresh docker-registry, an empty digest cache, the input read into the
# page cache first, `sync` after) with A, then with B. Prints each time and the medians.
#
#   bash bench/ab.sh /path/to/ocipush-before /path/to/ocipush-after [SOURCE] [ROUNDS]
#
# SOURCE defaults to the bench fixtures' random OCI layout (bench/run.sh writes it).
set -euo pipefail
A=$1 B=$2
SOURCE=${3:-/tmp/ocipush-bench/fixtures-256/random-oci}
ROUNDS=${4:-7}
WORK=$(mktemp -d /tmp/ocipush-ab.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# once BIN NAME: one timed cold push; prints "NAME SECONDS".
once() {
    local bin=$1 name=$2 dir port pid start end
    dir=$(mktemp -d "$WORK/reg.XXXX")
    port=$(free_port)
    printf 'version: 0.1\nlog: {level: error}\nstorage:\n  filesystem: {rootdirectory: %s/data}\nhttp: {addr: 127.0.0.1:%s}\n' "$dir" "$port" >"$dir/config.yml"
    env -u REGISTRY_AUTH_FILE docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
    find -L "$SOURCE" -type f -exec cat {} + >/dev/null
    start=$(date +%s%N)
    OCIPUSH_CACHE_DIR=$dir/cache "$bin" push -q --plain-http "$SOURCE" "127.0.0.1:$port/bench/ab:1" >/dev/null
    end=$(date +%s%N)
    echo "$name $(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f", (e - s) / 1e9 }')"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    rm -rf "$dir"
    sync
}

for _ in $(seq "$ROUNDS"); do
    once "$A" A
    once "$B" B
done | tee "$WORK/times"
for name in A B; do
    grep "^$name " "$WORK/times" | awk '{print $2}' | sort -n |
        awk -v n="$name" '{a[NR]=$1} END {printf "%s median %s (min %s, max %s)\n", n, a[int((NR+1)/2)], a[1], a[NR]}'
done
