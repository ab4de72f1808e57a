#!/usr/bin/env bash
# Fails unless this vendored libdeflate-sys is exactly the crates.io libdeflate-sys 1.26.1
# package, minus ocipush/removed-paths.txt, plus ocipush.patch and ocipush-build.patch —
# besides ocipush's own files (OCIPUSH.md, the patches, ocipush/). A hand edit of a vendored
# file that is not in a patch is caught here (see OCIPUSH.md, "Updating").
#
# The package comes from Cargo's download cache when it is there, else from static.crates.io
# (or the file named by $LIBDEFLATE_SYS_CRATE); either way its SHA-256 must be the one below.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
version=1.26.1
sha256=d7870e5fbd2766179a937c725fb11f4ca0ef025d982beb61bd3ce755425bd19c
name="libdeflate-sys-$version"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

crate="${LIBDEFLATE_SYS_CRATE:-}"
if [ -z "$crate" ]; then
    crate=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"$name.crate" 2>/dev/null | head -n1 || true)
fi
if [ -z "$crate" ]; then
    crate="$work/$name.crate"
    curl -sSfL --retry 3 -o "$crate" "https://static.crates.io/crates/libdeflate-sys/$name.crate"
fi
echo "$sha256  $crate" | sha256sum --check --quiet -

tar -xzf "$crate" -C "$work"
upstream="$work/$name"
while read -r path; do
    case "$path" in '' | '#'*) continue ;; esac
    if [ ! -e "$upstream/$path" ]; then
        echo "error: ocipush/removed-paths.txt names $path, which the $name package does not have" >&2
        exit 1
    fi
    rm -rf "${upstream:?}/$path"
done < "$here/ocipush/removed-paths.txt"
for patch in ocipush.patch ocipush-build.patch; do
    patch --quiet --forward --no-backup-if-mismatch -p1 -d "$upstream" < "$here/$patch"
done

if ! diff -r \
    --exclude=OCIPUSH.md --exclude=ocipush.patch --exclude=ocipush-build.patch --exclude=ocipush \
    "$upstream" "$here"; then
    echo "error: vendor/libdeflate-sys is not $name with ocipush's patches applied" >&2
    echo "hint: put the change into ocipush.patch or ocipush-build.patch (see OCIPUSH.md, \"Updating\")" >&2
    exit 1
fi
echo "vendor/libdeflate-sys is $name + ocipush.patch + ocipush-build.patch"
