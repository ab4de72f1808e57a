#!/usr/bin/env bash
# Builds rebase_check.c twice against the vendored libdeflate — as ocipush builds it, and with the
# level-1 hash table rebased every 32 KiB, 40000 bytes and 64 KiB (inside every call) — and fails
# unless all print the same output hash. Run by .ci/run.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
lib="$here/../libdeflate"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
build() {
    "${CC:-cc}" -O2 "$@" -I"$lib" -o "$work/check" "$here/rebase_check.c" \
        "$lib/lib/deflate_compress.c" "$lib/lib/gzip_compress.c" "$lib/lib/crc32.c" \
        "$lib/lib/utils.c" "$lib/lib/x86/cpu_features.c" "$lib/lib/arm/cpu_features.c"
    "$work/check"
}
expected="$(build)"
for size in 32768 40000 65536; do
    got="$(build -DHT_REBASE_SIZE="$size")"
    if [ "$got" != "$expected" ]; then
        echo "error: rebasing every $size bytes changes level 1's output ($got, not $expected)" >&2
        exit 1
    fi
done
echo "level 1 output unchanged by the hash-table rebase: $expected"
