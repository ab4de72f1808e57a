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
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_tools docker-registry curl python3

# once BIN NAME: one timed cold push; prints "NAME SECONDS".
once() {
    local bin=$1 name=$2 dir port pid
    dir=$(mktemp -d "$WORK/reg.XXXX")
    port=$(free_port)
    start_distribution "$dir" "$port"
    pid=$STARTED_PID
    find -L "$SOURCE" -type f -exec cat {} + >/dev/null
    echo "$name $(OCIPUSH_CACHE_DIR=$dir/cache timed "$bin" push -q --plain-http "$SOURCE" "127.0.0.1:$port/bench/ab:1")"
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
