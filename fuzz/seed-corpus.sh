#!/usr/bin/env bash
# Writes starting inputs for the fuzz targets into fuzz/corpus/<target>/ (not committed):
# real archives made from the repository's example image, so the archive fuzzer starts from
# valid tar, gzip, index.json and manifest.json structure instead of guessing it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
corpus="$here/corpus"
mkdir -p "$corpus/archive" "$corpus/reference" "$corpus/www_authenticate"

# oci-archive: the example OCI layout as a tarball, plain and gzipped.
tar -cf "$corpus/archive/hello-oci.tar" -C "$repo/examples/hello-oci" .
gzip -c "$corpus/archive/hello-oci.tar" > "$corpus/archive/hello-oci.tar.gz"

# docker-archive (legacy layout): manifest.json, config and one layer from the same blobs.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
layout="$repo/examples/hello-oci"
manifest_digest=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"].split(":")[1])' "$layout/index.json")
python3 - "$layout" "$manifest_digest" "$work" <<'PY'
import gzip, json, os, shutil, sys
layout, digest, work = sys.argv[1:4]
blob = lambda d: os.path.join(layout, "blobs", "sha256", d.split(":")[1])
manifest = json.load(open(blob("sha256:" + digest)))
config = manifest["config"]["digest"].split(":")[1]
shutil.copy(blob(manifest["config"]["digest"]), os.path.join(work, config + ".json"))
layers = []
for i, layer in enumerate(manifest["layers"]):
    os.makedirs(os.path.join(work, f"l{i}"))
    data = open(blob(layer["digest"]), "rb").read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    open(os.path.join(work, f"l{i}", "layer.tar"), "wb").write(data)
    layers.append(f"l{i}/layer.tar")
json.dump([{"Config": config + ".json", "RepoTags": ["hello:1"], "Layers": layers}],
          open(os.path.join(work, "manifest.json"), "w"))
PY
tar -cf "$corpus/archive/hello-docker.tar" -C "$work" .

# The archive target reads its first byte as the length of a sparse tail (see its source): the
# real archives get none, and one more input is a long-name header claiming 1 GiB with a 1 GiB
# tail behind it, the shape that made the tar readers allocate what the header claimed.
for seed in "$corpus"/archive/hello-*; do
    { printf '\0'; cat "$seed"; } > "$seed.tmp" && mv "$seed.tmp" "$seed"
done
python3 - "$corpus/archive/long-name-1gib" <<'PY'
import sys, tarfile
header = tarfile.TarInfo("././@LongLink")
header.size, header.type = 1 << 30, tarfile.GNUTYPE_LONGNAME
open(sys.argv[1], "wb").write(bytes([128]) + header.tobuf(format=tarfile.GNU_FORMAT) + b"a" * 3584)
PY

printf 'localhost:5000/team/app:1.0' > "$corpus/reference/tagged"
printf 'app@sha256:%064d' 0 > "$corpus/reference/digest"
printf 'Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull,push"' \
    > "$corpus/www_authenticate/bearer"
printf 'Basic realm="registry"' > "$corpus/www_authenticate/basic"
printf 'Bearer realm="https://a/token",service="a", Basic realm="x, y"\nNegotiate abc==' \
    > "$corpus/www_authenticate/several"
echo "seed corpus written to $corpus"
