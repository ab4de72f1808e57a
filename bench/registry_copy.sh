#!/usr/bin/env bash
# Registry to registry: ocipush (`push docker://…`) against `skopeo copy` and `skopeo sync`,
# between two docker-registry instances on this machine (plain HTTP), in the same run. Two sets:
# `big`, the 1 GiB OCI image of four random 256 MiB layers (bench-fixtures' random-oci), and
# `small`, 30 images of about 3 MiB with nothing in common (bench-fixtures' independent/), all
# seeded into the source registry once. Every measured copy goes into a fresh destination
# registry, with empty caches (ocipush's digest cache, skopeo's blob-info cache under a
# throwaway HOME), so nothing is known beforehand; ocipush's warm run repeats its own copy
# (everything already at the destination). Medians of BENCH_RUNS.
#
#   bash bench/registry_copy.sh
#   BENCH_RUNS=5 BENCH_SETS=small bash bench/registry_copy.sh
#   OCIPUSH_BIN=/path/to/ocipush bash bench/registry_copy.sh
set -euo pipefail
shopt -s inherit_errexit

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${BENCH_DIR:-/tmp/ocipush-bench}
RUNS=${BENCH_RUNS:-3}
SETS=${BENCH_SETS:-"big small"}
mkdir -p "$WORK"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

require_tools docker-registry curl python3 skopeo
ensure_ocipush
FIXTURES=$WORK/fixtures
ensure_fixtures "$FIXTURES" random-oci independent

PIDS=() DIRS=() SCRATCH=""
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    for dir in "${DIRS[@]}" $SCRATCH; do rm -rf "$dir"; done
}
trap cleanup EXIT

# registry: starts a docker-registry on a free port; sets ADDR to its HOST:PORT (not in a
# subshell: the process and its directory are remembered for the clean-up).
registry() {
    local dir port
    dir=$(mktemp -d "$WORK/copy.XXXXXX")
    port=$(free_port)
    DIRS+=("$dir")
    start_distribution "$dir" "$port"
    PIDS+=("$STARTED_PID")
    ADDR=127.0.0.1:$port
}
# stop_last: stops the most recent registry (a destination done with).
stop_last() {
    local last=$((${#PIDS[@]} - 1))
    kill "${PIDS[$last]}" 2>/dev/null || true
    wait "${PIDS[$last]}" 2>/dev/null || true
    rm -rf "${DIRS[$last]}"
    unset "PIDS[$last]" "DIRS[$last]"
    PIDS=("${PIDS[@]}") DIRS=("${DIRS[@]}")
}
registry; SRC=$ADDR
SCRATCH=$(mktemp -d "$WORK/copy-home.XXXXXX")
echo "==> seeding $SRC" >&2
"$OCIPUSH_BIN" push -q --plain-http "$FIXTURES/random-oci" "$SRC/big/random:1" >/dev/null
"$OCIPUSH_BIN" push -q --plain-http -r "$SRC/lib" "$FIXTURES/independent" >/dev/null
LIST=$SCRATCH/small.list
YAML=$SCRATCH/small.yaml
: >"$LIST"
{
    echo "$SRC:"
    echo "  tls-verify: false"
    echo "  images:"
} >"$YAML"
for i in $(seq -f '%02g' 0 29); do
    echo "docker://$SRC/lib/solo-$i:1" >>"$LIST"
    echo "    lib/solo-$i: [\"1\"]" >>"$YAML"
done

# Each tool with caches of its own, empty at every measurement.
fresh_env() {
    rm -rf "$SCRATCH/home" && mkdir -p "$SCRATCH/home"
    export HOME=$SCRATCH/home OCIPUSH_CACHE_DIR=$SCRATCH/home/ocipush-cache
}
ocipush_big() { "$OCIPUSH_BIN" push -q --plain-http --src-plain-http "docker://$SRC/big/random:1" "$1/big/random:1"; }
ocipush_small() { "$OCIPUSH_BIN" push -q --plain-http --src-plain-http -r "$1/mirror" --from-file "$LIST"; }
skopeo_copy_big() { skopeo copy -q --src-tls-verify=false --dest-tls-verify=false "docker://$SRC/big/random:1" "docker://$1/big/random:1"; }
skopeo_sync_big() { skopeo sync --src docker --dest docker --src-tls-verify=false --dest-tls-verify=false "$SRC/big/random" "$1/sync"; }
skopeo_copy_small() {
    sed 's|^docker://||' "$LIST" | xargs -P 4 -I{} sh -c 'skopeo copy -q --src-tls-verify=false --dest-tls-verify=false "docker://{}" "docker://'"$1"'/skopeo/$(basename {})"'
}
skopeo_sync_small() { skopeo sync --src yaml --dest docker --dest-tls-verify=false "$YAML" "$1/sync"; }

echo "| set | ocipush cold (s) | ocipush warm (s) | warm per image (ms) | skopeo copy (s) | skopeo sync (s) | skopeo copy / ocipush | skopeo sync / ocipush |"
echo "|---|---|---|---|---|---|---|---|"
for set in $SETS; do
    images=1
    [ "$set" = small ] && images=30
    colds="" warms="" copies="" syncs=""
    for _ in $(seq "$RUNS"); do
        fresh_env; registry; dest=$ADDR
        colds="$colds $(timed "ocipush_$set" "$dest")"
        warms="$warms $(timed "ocipush_$set" "$dest")"
        stop_last
        fresh_env; registry; dest=$ADDR
        copies="$copies $(timed "skopeo_copy_$set" "$dest")"
        stop_last
        fresh_env; registry; dest=$ADDR
        syncs="$syncs $(timed "skopeo_sync_$set" "$dest")"
        stop_last
    done
    cold=$(echo "$colds" | median) warm=$(echo "$warms" | median)
    copy=$(echo "$copies" | median) sync=$(echo "$syncs" | median)
    per_image=$(awk -v w="$warm" -v n="$images" 'BEGIN { printf "%.0f", w * 1000 / n }')
    ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
    echo "| $set | $cold | $warm | $per_image | $copy | $sync | $(ratio "$copy" "$cold") | $(ratio "$sync" "$cold") |"
    echo "$set rounds: ocipush cold$colds; warm$warms; skopeo copy$copies; skopeo sync$syncs" >&2
done
